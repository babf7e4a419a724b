// The desktop app's own state (proxy on or off, the token, start at login), kept in the store
// for the views. Only used when `isDesktop`.

import { api, desktop } from './api.js';
import { set } from './store.js';
import { toast } from './util.js';

let refreshes = 0;

/** The app's status, the token and, while the proxy runs, its configuration. A refresh that
 * a later one overtook is dropped: its older status would undo what the later one showed. */
export async function refreshDesktop() {
  const ticket = ++refreshes;
  const [desktopStatus, token] = await Promise.all([desktop.status(), desktop.token()]);
  const patch = { desktopStatus, token, config: null, health: null };
  if (desktopStatus.proxy.state === 'running') {
    try {
      Object.assign(patch, { config: await api.config(), health: await api.health() });
    } catch {
      // It stopped in between: the status event that follows refreshes again.
    }
  }
  if (ticket === refreshes) set(patch);
}

/** Turns the proxy on or off and says how it went. */
export async function setProxyEnabled(enabled) {
  const result = await desktop.setEnabled(enabled);
  await refreshDesktop();
  const proxy = result.proxy;
  if (proxy.state === 'failed') toast(`The proxy could not start: ${proxy.message}`, 'error');
  else toast(enabled ? `Proxy on at ${proxy.baseUrl}` : 'Proxy off: the port is closed');
}
