// The data layer: the only module that knows where data comes from. In a browser it speaks the
// dashboard API over HTTP (a session cookie after login) and listens on /api/events; in the
// desktop window the app may provide the same functions as commands. Views call these
// functions and never fetch themselves.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
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

export const api = {
  login: (token) => request('POST', '/api/login', { token }),
  logout: () => request('POST', '/api/logout'),
  session: () => request('GET', '/api/session'),
  config: () => request('GET', '/api/config'),
  health: () => request('GET', '/health'),
  stats: () => request('GET', '/api/stats'),
  calls: (params = {}) => request('GET', `/api/logs/api-calls${query(params)}`),
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
