// Settings: read-only in the browser (the desktop app edits them; the headless server takes
// environment variables, .env and flags).

import { state, subscribe } from '../store.js';
import { h } from '../util.js';

export function render(main) {
  const root = h('div');
  main.append(root);
  const draw = () => {
    const c = state.config;
    if (!c) return;
    const item = (label, value, variable) => [
      h('dt', {}, label),
      h('dd', {}, value === null || value === undefined || value === '' ? '–' : String(value), variable ? h('span.lede', {}, `  ${variable}`) : null),
    ];
    root.replaceChildren(
      h('h1', {}, 'Settings'),
      h('p.lede', {}, 'Read-only here. Change them in the desktop app, or with environment variables, a .env file or flags (llm-proxy --help) and restart.'),
      h('div.grid', {},
        h('section.card', {}, h('h3', {}, 'Proxy'), h('dl.kv', {},
          item('Listening on', `${c.host}:${c.port}`, 'PROXY_HOST, PROXY_PORT'),
          item('Base URL', c.baseUrl, 'PROXY_BASE_URL'),
          item('Access token', c.secrets.accessToken, 'PROXY_ACCESS_TOKEN'),
          item('Version', c.version))),
        h('section.card', {}, h('h3', {}, 'Target'), h('dl.kv', {},
          item('Mode', c.mode, 'USE_PLACEHOLDER_MODE'),
          item('Endpoint', c.target, 'TARGET_ENDPOINT'),
          item('Auth', c.authKind),
          item('API key', c.secrets.targetApiKey, 'TARGET_API_KEY'),
          c.oauth ? [
            item('Token endpoint', c.oauth.tokenEndpoint, 'OAUTH_TOKEN_ENDPOINT'),
            item('Client id', c.oauth.clientId, 'OAUTH_CLIENT_ID'),
            item('Client secret', c.secrets.oauthClientSecret, 'OAUTH_CLIENT_SECRET'),
            item('Scope', c.oauth.scope, 'OAUTH_SCOPE'),
            item('Refresh buffer', `${c.oauth.refreshBufferMinutes} min`, 'OAUTH_REFRESH_BUFFER_MINUTES'),
          ] : null)),
        h('section.card', {}, h('h3', {}, 'Limits'), h('dl.kv', {},
          item('Connect timeout', `${c.limits.connectTimeoutSeconds} s`, 'TARGET_CONNECT_TIMEOUT_SECONDS'),
          item('Request timeout', `${c.limits.requestTimeoutSeconds} s`, 'TARGET_TIMEOUT_SECONDS'),
          item('Stream idle timeout', `${c.limits.streamIdleTimeoutSeconds} s`, 'STREAM_IDLE_TIMEOUT_SECONDS'),
          item('Largest request', `${c.limits.maxRequestBodyMb} MB`, 'MAX_REQUEST_BODY_MB'),
          item('Shutdown grace', `${c.limits.shutdownGraceSeconds} s`, 'SHUTDOWN_GRACE_SECONDS'))),
        h('section.card', {}, h('h3', {}, 'Request log'), h('dl.kv', {},
          item('Bodies', c.logging.bodies ? `kept, up to ${c.logging.bodyMaxKb} KB each` : 'not kept', 'LOG_BODIES, LOG_BODY_MAX_KB'),
          item('Retention', `${c.logging.maxEntries} calls, ${c.logging.maxAgeDays} days`, 'LOG_MAX_ENTRIES, LOG_MAX_AGE_DAYS'),
          item('Data directory', c.dataDir, 'PROXY_DATA_DIR'),
          item('Store', c.logStore.ok ? 'saved to disk' : `in memory only: ${c.logStore.error}`))),
      ),
    );
  };
  draw();
  return subscribe((_, patch) => {
    if ('config' in patch) draw();
  });
}
