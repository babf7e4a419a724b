// Settings: read-only in the browser (the headless server takes environment variables, .env
// and flags); editable in the desktop app, where saving applies them by restarting the
// listener and "Test connection" runs the same checks as `llm-proxy check`.

import { desktop, isDesktop } from '../api.js';
import { refreshDesktop } from '../desktop.js';
import { state, subscribe } from '../store.js';
import { h, toast } from '../util.js';

export function render(main) {
  if (isDesktop) return renderEditor(main);
  return renderReadOnly(main);
}

/** Field checks the window can make as the user types; the app checks everything again. */
function checkField(name, value) {
  const isUrl = (text) => {
    try {
      const url = new URL(text);
      return url.protocol === 'http:' || url.protocol === 'https:';
    } catch {
      return false;
    }
  };
  switch (name) {
    case 'port': {
      const port = Number(value);
      return Number.isInteger(port) && port >= 1 && port <= 65535 ? null : 'Choose a port between 1 and 65535.';
    }
    case 'host':
      return /^[0-9.]+$|:/.test(value.trim()) ? null : 'Enter an IP address, such as 127.0.0.1.';
    case 'targetEndpoint':
    case 'oauth.tokenEndpoint':
      return value.trim() === '' || isUrl(value.trim()) ? null : 'Use an http:// or https:// URL.';
    case 'logMaxEntries':
    case 'logMaxAgeDays':
    case 'oauth.refreshBufferMinutes':
      return /^\d+$/.test(String(value)) ? null : 'Enter a whole number.';
    default:
      return null;
  }
}

const SECRET_FIELDS = new Set(['targetApiKey', 'oauthClientSecret']);

function renderEditor(main) {
  const root = h('div');
  main.append(root);
  let view = null;
  let stopSteps = null;

  const field = (name, label, input, help) => {
    const override = view.overridden.find((o) => o.field === name);
    if (override) {
      input.disabled = true;
      input.title = `Set by the environment variable ${override.variable}, which wins over this setting.`;
    }
    input.id = `setting-${name.replace('.', '-')}`;
    input.name = name;
    input.addEventListener('input', () => showError(name, checkField(name, input.type === 'checkbox' ? input.checked : input.value)));
    return h('div.field', { 'data-field': name },
      input.type === 'checkbox'
        ? h('label.check', { for: input.id }, input, label)
        : [h('label', { for: input.id }, label), input],
      override ? h('p.override', {}, `Overridden by ${override.variable}`) : null,
      help ? h('p.help', {}, help) : null,
      h('p.field-error', { id: `error-${name.replace('.', '-')}`, role: 'alert', hidden: true }));
  };
  const text = (value, attrs = {}) => h('input', { type: 'text', value: value ?? '', spellcheck: 'false', ...attrs });
  const number = (value, attrs = {}) => h('input', { type: 'number', value: String(value), ...attrs });
  const checkbox = (checked) => h('input', { type: 'checkbox', checked });
  const secret = (isSet) => h('input', {
    type: 'password', autocomplete: 'off', spellcheck: 'false',
    placeholder: isSet ? 'Stored in the keychain: leave blank to keep it' : 'Not set',
  });

  function showError(name, message) {
    const el = root.querySelector(`#error-${name.replace('.', '-')}`);
    if (!el) return;
    el.hidden = !message;
    el.textContent = message ?? '';
    el.closest('.field')?.classList.toggle('invalid', Boolean(message));
  }

  function collect() {
    const value = (name) => root.querySelector(`[name="${name}"]`);
    const settings = structuredClone(view.settings);
    settings.port = Number(value('port').value);
    settings.host = value('host').value.trim();
    settings.placeholder = value('placeholder').checked;
    settings.targetEndpoint = value('targetEndpoint').value.trim();
    settings.targetApi = value('targetApi').value;
    settings.modelAliases = value('modelAliases').value.trim();
    settings.auth = value('auth').value;
    settings.oauth.tokenEndpoint = value('oauth.tokenEndpoint').value.trim();
    settings.oauth.clientId = value('oauth.clientId').value.trim();
    settings.oauth.scope = value('oauth.scope').value.trim();
    settings.oauth.audience = value('oauth.audience').value.trim();
    settings.oauth.refreshBufferMinutes = Number(value('oauth.refreshBufferMinutes').value);
    settings.logBodies = value('logBodies').checked;
    settings.logMaxEntries = Number(value('logMaxEntries').value);
    settings.logMaxAgeDays = Number(value('logMaxAgeDays').value);
    settings.startProxyAtLaunch = value('startProxyAtLaunch').checked;
    const secrets = {};
    for (const name of SECRET_FIELDS) {
      const typed = value(name).value;
      if (typed !== '') secrets[name] = typed;
    }
    return { settings, secrets };
  }

  function showAuth() {
    const mode = root.querySelector('[name="auth"]').value;
    for (const section of root.querySelectorAll('[data-auth]')) section.hidden = section.dataset.auth !== mode;
  }

  async function save(event) {
    event.preventDefault();
    for (const el of root.querySelectorAll('.field-error')) showError(el.id.replace(/^error-/, '').replace('-', '.'), null);
    const { settings, secrets } = collect();
    const button = root.querySelector('#save-settings');
    button.disabled = true;
    try {
      const status = await desktop.saveSettings(settings, secrets);
      await refreshDesktop();
      await load();
      const proxy = status.proxy;
      if (proxy.state === 'failed') toast(`Saved, but the proxy could not start: ${proxy.message}`, 'error');
      else toast(proxy.state === 'running' ? `Saved and applied: running on http://${proxy.address}` : 'Saved: applied when the proxy is turned on');
    } catch (err) {
      for (const { field: name, message } of err.fields ?? []) showError(name, message);
      toast(err.message, 'error');
    } finally {
      button.disabled = false;
    }
  }

  async function testConnection() {
    const list = root.querySelector('#check-steps');
    const button = root.querySelector('#test-connection');
    list.replaceChildren();
    button.disabled = true;
    stopSteps?.();
    stopSteps = desktop.on('check-step', (step) => {
      list.append(h(`li.step.${step.ok ? 'ok' : 'fail'}`, {},
        h('span.mark', {}, step.ok ? 'ok' : 'FAIL'),
        h('strong', {}, step.name),
        ` ${step.detail} `,
        h('span.lede', {}, `(${step.ms} ms)`),
        step.hint ? h('p.help', {}, `Likely cause and fix: ${step.hint}`) : null));
    });
    try {
      const result = await desktop.testConnection();
      toast(result.passed ? 'All checks passed' : 'Some checks failed: see the likely causes', result.passed ? 'info' : 'error');
    } catch (err) {
      list.append(h('li.step.fail', {}, h('span.mark', {}, 'FAIL'), ` ${err.message}`));
    } finally {
      button.disabled = false;
    }
  }

  function draw() {
    const s = view.settings;
    const storage = view.secretStorage.kind === 'keychain'
      ? 'Secrets are kept in the system keychain.'
      : `No keychain answered: secrets are kept in ${view.secretStorage.path}, readable only by you.`;
    const auth = h('select', {},
      [['none', 'None'], ['api-key', 'API key'], ['oauth', 'OAuth 2.0 client credentials']].map(([value, label]) =>
        h('option', { value, selected: s.auth === value }, label)));
    auth.addEventListener('change', showAuth);
    const targetApi = h('select', {},
      [['openai', 'OpenAI chat completions'], ['anthropic', 'Anthropic Messages'], ['gemini', 'Google Gemini'], ['ollama', 'Ollama (native /api/chat)'], ['responses', 'OpenAI with the Responses API']].map(([value, label]) =>
        h('option', { value, selected: s.targetApi === value }, label)));
    const form = h('form', { id: 'settings-form', novalidate: true },
      h('div.grid', {},
        h('section.card', {}, h('h3', {}, 'Proxy'),
          field('port', 'Port', number(s.port, { min: 1, max: 65535 }), 'Tools use http://localhost:PORT/v1.'),
          field('host', 'Listen on', text(s.host), '127.0.0.1: this computer only. 0.0.0.0: every network (tools then need PROXY_ALLOWED_HOSTS).'),
          field('startProxyAtLaunch', 'Start the proxy when the app starts', checkbox(s.startProxyAtLaunch)),
          h('div.field', {}, h('label.check', { for: 'setting-startAtLogin' },
            h('input', {
              type: 'checkbox', id: 'setting-startAtLogin', checked: s.startAtLogin,
              onchange: async (event) => {
                try {
                  await desktop.setAutostart(event.target.checked);
                  view.settings.startAtLogin = event.target.checked;
                  toast(event.target.checked ? 'Local LLM Proxy will start at login' : 'Local LLM Proxy will not start at login');
                } catch (err) {
                  event.target.checked = !event.target.checked;
                  toast(err.message, 'error');
                }
              },
            }),
            'Start Local LLM Proxy at login')),
          h('p.help', {}, 'Applies at once, like the tray menu\'s Start at login.')),
        h('section.card', {}, h('h3', {}, 'Target'),
          field('targetEndpoint', 'Target endpoint', text(s.targetEndpoint, { type: 'url', placeholder: 'https://llm.example.com/v1' }), 'The API\'s base URL: ending in /v1 (OpenAI, Anthropic), /v1beta (Gemini), or the server\'s root (Ollama). Empty: placeholder mode.'),
          field('targetApi', 'Target API', targetApi, 'What the target speaks. Tools always speak OpenAI\'s API to the proxy; for any other, chat requests and answers are translated.'),
          field('modelAliases', 'Model aliases', text(s.modelAliases, { placeholder: 'claude-sonnet-*=gpt-4.1,claude-haiku-*=gpt-4.1-mini,*=gpt-4.1' }), 'Model names tools ask for, mapped to your endpoint\'s: pattern=model, tried in order (* matches anything).'),
          field('placeholder', 'Placeholder mode (answer locally, do not forward)', checkbox(s.placeholder)),
          field('auth', 'Authentication', auth),
          h('div', { 'data-auth': 'api-key' },
            field('targetApiKey', 'API key', secret(view.secretsSet.targetApiKey), 'Sent as a bearer token (as x-api-key to Anthropic, x-goog-api-key to Gemini).')),
          h('div', { 'data-auth': 'oauth' },
            field('oauth.tokenEndpoint', 'Token endpoint', text(s.oauth.tokenEndpoint, { type: 'url', placeholder: 'https://login.example.com/oauth2/token' })),
            field('oauth.clientId', 'Client id', text(s.oauth.clientId)),
            field('oauthClientSecret', 'Client secret', secret(view.secretsSet.oauthClientSecret)),
            field('oauth.scope', 'Scope (optional)', text(s.oauth.scope)),
            field('oauth.audience', 'Audience (optional)', text(s.oauth.audience)),
            field('oauth.refreshBufferMinutes', 'Refresh minutes before expiry', number(s.oauth.refreshBufferMinutes, { min: 0 }))),
          h('p.help', {}, storage)),
        h('section.card', {}, h('h3', {}, 'Request log'),
          field('logBodies', 'Keep request and response bodies', checkbox(s.logBodies)),
          field('logMaxEntries', 'Calls kept', number(s.logMaxEntries, { min: 1 })),
          field('logMaxAgeDays', 'Days kept', number(s.logMaxAgeDays, { min: 1 })))),
      h('div.toolbar', {},
        h('button.primary', { type: 'submit', id: 'save-settings' }, 'Save and apply'),
        h('button', { type: 'button', id: 'test-connection', onclick: testConnection }, 'Test connection'),
        h('span.spacer'),
        h('span.lede', {}, `Saved in ${view.settingsFile}`)),
      h('ol', { id: 'check-steps', class: 'steps', 'aria-live': 'polite' }));
    form.addEventListener('submit', save);
    root.replaceChildren(
      h('h1', {}, 'Settings'),
      h('p.lede', {}, view.overridden.length
        ? 'Environment variables (or a .env file) override some settings: those are shown greyed out.'
        : 'Saving applies the settings at once: a running proxy restarts on them.'),
      form);
    showAuth();
  }

  async function load() {
    view = await desktop.settings();
    draw();
  }
  load().catch((err) => toast(err.message, 'error'));
  return () => stopSteps?.();
}

function renderReadOnly(main) {
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
          item('Target API', c.targetApi, 'TARGET_API'),
          item('Model aliases', c.modelAliases || 'none', 'MODEL_ALIASES'),
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
