// A tiny store: one state object, replaced by `set`, and listeners that re-render from it.

const listeners = new Set();

export const state = {
  config: null,
  health: null,
  stats: null,
  /** The access token, when this tab knows it (typed at login); never fetched from the server. */
  token: sessionStorage.getItem('llm-proxy-token'),
  live: 'connecting',
  /** In the desktop app: the proxy's status, start at login, warnings (see ui/desktop.js). */
  desktopStatus: null,
  /** Calls and events that arrived live since the views last loaded. */
  liveCalls: [],
  liveEvents: [],
};

export function set(patch) {
  Object.assign(state, patch);
  for (const listener of listeners) listener(state, patch);
}

export function rememberToken(token) {
  if (token) sessionStorage.setItem('llm-proxy-token', token);
  else sessionStorage.removeItem('llm-proxy-token');
  set({ token });
}

/** Calls `listener(state, patch)` on every change; returns the unsubscribe function. */
export function subscribe(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
