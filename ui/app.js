// Entry point: login, the live connection, the status pill and the hash router. Each view is a
// module exporting `render(container)` that returns an optional cleanup function.

import { api, ApiError } from './api.js';
import { rememberToken, set, state, subscribe } from './store.js';
import { toast } from './util.js';
import * as overview from './views/overview.js';
import * as stats from './views/stats.js';
import * as calls from './views/calls.js';
import * as events from './views/events.js';
import * as settings from './views/settings.js';

const views = { overview, stats, calls, events, settings };
let cleanup = null;
let unsubscribeLive = null;

function currentView() {
  const name = location.hash.replace(/^#\//, '').split('?')[0];
  return views[name] ? name : 'overview';
}

function route() {
  const name = currentView();
  for (const link of document.querySelectorAll('.tabs a')) {
    if (link.dataset.view === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  cleanup?.();
  const main = document.getElementById('view');
  main.replaceChildren();
  cleanup = views[name].render(main) ?? null;
}

function renderStatus() {
  const pill = document.getElementById('status-pill');
  const { config, health, live } = state;
  if (!config) return;
  const logOk = health?.logStore?.ok !== false;
  const tokenError = config.oauth?.token?.last_error;
  let text = config.mode === 'placeholder' ? 'Running · placeholder mode' : `Running · ${new URL(config.target).host}`;
  let kind = 'on';
  if (tokenError) {
    text = 'Running · OAuth token unavailable';
    kind = 'error';
  } else if (!logOk) {
    text += ' · log in memory only';
    kind = 'warn';
  } else if (live === 'retrying') {
    text = 'Reconnecting…';
    kind = 'warn';
  }
  pill.textContent = text;
  pill.dataset.state = kind;
}

async function refreshConfig() {
  const [config, health] = await Promise.all([api.config(), api.health()]);
  set({ config, health });
}

function startLive() {
  unsubscribeLive?.();
  unsubscribeLive = api.subscribe(
    {
      call: (call) => set({ liveCalls: [call, ...state.liveCalls].slice(0, 500), lastCall: call }),
      serverEvent: (event) => set({ liveEvents: [event, ...state.liveEvents].slice(0, 500), lastEvent: event }),
      stats: (stats) => set({ stats }),
      cleared: () => set({ liveCalls: [], liveEvents: [], cleared: Date.now() }),
      lagged: () => set({ cleared: Date.now() }),
    },
    (live) => set({ live }),
  );
}

async function showLogin(message) {
  const dialog = document.getElementById('login');
  const error = document.getElementById('login-error');
  error.hidden = !message;
  error.textContent = message ?? '';
  document.getElementById('logout').hidden = true;
  if (!dialog.open) dialog.showModal();
  document.getElementById('login-token').focus();
}

async function boot() {
  try {
    const { authenticated } = await api.session();
    if (!authenticated) return showLogin();
    await refreshConfig();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return showLogin();
    toast(err.message, 'error');
    return;
  }
  document.getElementById('logout').hidden = false;
  startLive();
  route();
}

document.getElementById('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = document.getElementById('login-token');
  const token = input.value.trim();
  try {
    await api.login(token);
  } catch (err) {
    const message = err.status === 401 ? 'That is not the access token of this proxy.' : err.message;
    return showLogin(message);
  }
  rememberToken(token);
  input.value = '';
  document.getElementById('login').close();
  boot();
});

// Escape must not close the login dialog: there is nothing behind it to use.
document.getElementById('login').addEventListener('cancel', (event) => event.preventDefault());

document.getElementById('logout').addEventListener('click', async () => {
  try {
    await api.logout();
  } catch (err) {
    toast(err.message, 'error');
  }
  unsubscribeLive?.();
  rememberToken(null);
  cleanup?.();
  document.getElementById('view').replaceChildren();
  showLogin();
});

window.addEventListener('hashchange', () => {
  if (state.config) route();
});
subscribe((_, patch) => {
  if ('config' in patch || 'health' in patch || 'live' in patch) renderStatus();
});
// Re-read status now and then: OAuth token health and the log store change without a call.
setInterval(() => {
  if (state.config) refreshConfig().catch(() => {});
}, 15000);

boot();
