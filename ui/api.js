// The data layer: the only module that knows where data comes from. In a browser it speaks the
// dashboard API over HTTP (a session cookie after login) and listens on /api/events. In the
// desktop app's window it calls the app's commands and listens to its events instead: the same
// core functions answer both, and the window keeps working while the proxy is off. Views call
// these functions and never fetch themselves.

const tauri = globalThis.__TAURI__;

/** True in the desktop app's window. */
export const isDesktop = Boolean(tauri?.core?.invoke);

export class ApiError extends Error {
  constructor(status, message, fields = []) {
    super(message);
    this.status = status;
    /** For refused settings: `[{field, message}]`. */
    this.fields = fields;
  }
}

async function request(method, path, body) {
  const init = { method, headers: { accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, `The proxy cannot be reached (${err.message}). Is it running?`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message = data?.error?.message ?? `HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return data;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

const httpApi = {
  login: (token) => request('POST', '/api/login', { token }),
  logout: () => request('POST', '/api/logout'),
  session: () => request('GET', '/api/session'),
  config: () => request('GET', '/api/config'),
  health: () => request('GET', '/health'),
  stats: () => request('GET', '/api/stats'),
  /** The table's rows: summaries, without the headers and bodies a whole listing carries. */
  calls: (params = {}) => request('GET', `/api/logs/api-calls${query({ ...params, fields: 'summary' })}`),
  call: (id) => request('GET', `/api/logs/api-calls/${encodeURIComponent(id)}`),
  events: (params = {}) => request('GET', `/api/logs/server-events${query(params)}`),
  clearLogs: () => request('DELETE', '/api/logs'),

  /** Live updates: calls `handlers[name](data)` for call, serverEvent, stats, cleared, lagged. */
  subscribe(handlers, onState) {
    const source = new EventSource('/api/events', { withCredentials: true });
    for (const name of ['call', 'serverEvent', 'stats', 'cleared', 'lagged']) {
      source.addEventListener(name, (event) => {
        let data = null;
        try {
          data = JSON.parse(event.data);
        } catch {
          data = event.data;
        }
        handlers[name]?.(data);
      });
    }
    source.onopen = () => onState?.('open');
    source.onerror = () => onState?.(source.readyState === EventSource.CLOSED ? 'closed' : 'retrying');
    return () => source.close();
  },
};

/** Calls a desktop command; its errors arrive as `{message, status, fields}`. */
async function invoke(command, args) {
  try {
    return await tauri.core.invoke(command, args);
  } catch (err) {
    throw new ApiError(err?.status ?? 0, err?.message ?? String(err), err?.fields ?? []);
  }
}

function clean(params) {
  return Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== ''));
}

/** Listens to a desktop event; returns the function that stops listening. */
function listen(name, callback) {
  let stop = null;
  let stopped = false;
  tauri.event.listen(name, (event) => callback(event.payload)).then((unlisten) => {
    if (stopped) unlisten();
    else stop = unlisten;
  });
  return () => {
    stopped = true;
    stop?.();
  };
}

const desktopApi = {
  // The window is the app's own: no login.
  login: async () => ({ ok: true }),
  logout: async () => ({ ok: true }),
  session: async () => ({ authenticated: true }),
  config: () => invoke('api_config'),
  health: () => invoke('api_health'),
  stats: () => invoke('api_stats'),
  calls: (params = {}) => invoke('api_calls', { params: clean({ ...params, fields: 'summary' }) }),
  call: (id) => invoke('api_call', { id: Number(id) }),
  events: (params = {}) => invoke('api_events', { params: clean(params) }),
  clearLogs: () => invoke('api_clear_logs'),
  subscribe(handlers, onState) {
    onState?.('open');
    return listen('live', ({ name, data }) => {
      let parsed = data;
      try {
        parsed = JSON.parse(data);
      } catch {
        // `lagged` carries a bare number.
      }
      handlers[name]?.(parsed);
    });
  },
};

export const api = isDesktop ? desktopApi : httpApi;

/** What only the desktop app can do; `null` in a browser. */
export const desktop = isDesktop
  ? {
      status: () => invoke('status'),
      setEnabled: (enabled) => invoke('set_proxy_enabled', { enabled }),
      token: () => invoke('access_token'),
      regenerateToken: () => invoke('regenerate_access_token'),
      settings: () => invoke('get_settings'),
      saveSettings: (settings, secrets) => invoke('save_settings', { settings, secrets }),
      copy: (what) => invoke('copy_to_clipboard', { what }),
      setAutostart: (enabled) => invoke('set_autostart', { enabled }),
      openInBrowser: () => invoke('open_in_browser'),
      testConnection: () => invoke('test_connection'),
      /** `proxy-status`, `desktop-changed`, `check-step`. */
      on: listen,
    }
  : null;
