// Entry point: login, the live connection, the status pill and the hash router. Each view is a
// module exporting `render(container)` that returns an optional cleanup function. In the
// desktop app there is no login, the proxy may be off, and the status comes from the app.

import { api, ApiError, desktop, isDesktop } from './api.js';
import { rememberToken, set, state, subscribe } from './store.js';
import { refreshDesktop, setProxyEnabled } from './desktop.js';
import { h, toast } from './util.js';
import * as overview from './views/overview.js';
import * as stats from './views/stats.js';
import * as calls from './views/calls.js';
import * as events from './views/events.js';
import * as settings from './views/settings.js';

const views = { overview, stats, calls, events, settings };
/** Views that show the running server's data: with the proxy off they say so instead. */
const DATA_VIEWS = new Set(['stats', 'calls', 'events']);
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
  if (isDesktop && DATA_VIEWS.has(name) && !state.config) {
    cleanup = renderProxyOff(main);
    return;
  }
  cleanup = views[name].render(main) ?? null;
}

function renderProxyOff(main) {
  const failed = state.desktopStatus?.proxy?.state === 'failed';
  main.append(h('div.empty', { id: 'proxy-off' },
    h('h2', {}, failed ? 'The proxy could not start' : 'The proxy is off'),
    h('p', {}, failed ? state.desktopStatus.proxy.message : 'Turn it on to see its calls, events and stats. Logs from earlier runs are kept.'),
    h('button.primary', { type: 'button', onclick: () => setProxyEnabled(true) }, 'Turn proxy on')));
  return null;
}

function renderStatus() {
  const pill = document.getElementById('status-pill');
  const { config, health, live } = state;
  const proxy = state.desktopStatus?.proxy;
  if (proxy && proxy.state !== 'running') {
    pill.textContent = proxy.state === 'failed' ? `Error: ${proxy.message}` : 'Stopped';
    pill.dataset.state = proxy.state === 'failed' ? 'error' : 'off';
    return;
  }
  if (!config) return;
  const logOk = health?.logStore?.ok !== false;
  const tokenError = config.oauth?.token?.lastError;
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

async function bootDesktop() {
  document.body.dataset.desktop = 'true';
  document.getElementById('logout').hidden = true;
  desktop.on('proxy-status', () => refreshDesktop().catch((err) => toast(err.message, 'error')));
  desktop.on('desktop-changed', () => refreshDesktop().catch(() => {}));
  try {
    await refreshDesktop();
  } catch (err) {
    toast(err.message, 'error');
  }
  startLive();
  route();
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
  if (state.config || isDesktop) route();
});
let wasRunning = false;
subscribe((_, patch) => {
  if ('config' in patch || 'health' in patch || 'live' in patch || 'desktopStatus' in patch) renderStatus();
  // In the desktop app the proxy can stop and start under a data view: redraw it.
  if (isDesktop && 'config' in patch && Boolean(patch.config) !== wasRunning) {
    wasRunning = Boolean(patch.config);
    if (DATA_VIEWS.has(currentView())) route();
  }
});
// Re-read status now and then: OAuth token health and the log store change without a call.
setInterval(() => {
  if (isDesktop) refreshDesktop().catch(() => {});
  else if (state.config) refreshConfig().catch(() => {});
}, 15000);

if (isDesktop) bootDesktop();
else boot();
