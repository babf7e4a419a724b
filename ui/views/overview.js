// Overview: is it running, where to point tools, and ready-to-paste setups for each tool.

import { desktop, isDesktop } from '../api.js';
import { refreshDesktop, setProxyEnabled } from '../desktop.js';
import { state, subscribe } from '../store.js';
import { codeBlock, copyButton, formatTime, h, mask, toast } from '../util.js';

const TOKEN_PLACEHOLDER = '<your-access-token>';

/** Ready-to-paste setups, by tool. `base` is the API base URL (…/v1), `token` the access token. */
export function snippets(base, token) {
  return [
    ['curl', `curl ${base}/chat/completions \\
  -H "Authorization: Bearer ${token}" \\
  -H "Content-Type: application/json" \\
  -d '{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello!"}]}'`],
    ['Python', `from openai import OpenAI

client = OpenAI(base_url="${base}", api_key="${token}")
reply = client.chat.completions.create(
    model="gpt-4o",
    messages=[{"role": "user", "content": "Hello!"}],
)
print(reply.choices[0].message.content)`],
    ['Node', `import OpenAI from 'openai';

const client = new OpenAI({ baseURL: '${base}', apiKey: '${token}' });
const reply = await client.chat.completions.create({
  model: 'gpt-4o',
  messages: [{ role: 'user', content: 'Hello!' }],
});
console.log(reply.choices[0].message.content);`],
    ['bash / zsh', `export OPENAI_BASE_URL="${base}"
export OPENAI_API_KEY="${token}"`],
    ['PowerShell', `$env:OPENAI_BASE_URL = "${base}"
$env:OPENAI_API_KEY = "${token}"`],
    ['Claude Code', `export ANTHROPIC_BASE_URL="${base.replace(/\/v1$/, '')}"
export ANTHROPIC_AUTH_TOKEN="${token}"
# Claude Code asks for claude-* models: map them to yours in Settings › Model aliases
# (MODEL_ALIASES=claude-sonnet-*=gpt-4.1,claude-haiku-*=gpt-4.1-mini,*=gpt-4.1)`],
    ['aider', `aider --openai-api-base ${base} --openai-api-key ${token} --model openai/gpt-4o`],
    ['Continue', `# ~/.continue/config.yaml
models:
  - name: Company LLM (Local LLM Proxy)
    provider: openai
    model: gpt-4o
    apiBase: ${base}
    apiKey: ${token}`],
    ['Codex CLI', `# ~/.codex/config.toml
model = "gpt-4.1"  # a model your endpoint serves
model_provider = "local-llm-proxy"

[model_providers.local-llm-proxy]
name = "Local LLM Proxy"
base_url = "${base}"
env_key = "LOCAL_LLM_PROXY_KEY"
wire_api = "responses"

# and in your shell:
# export LOCAL_LLM_PROXY_KEY="${token}"`],
  ];
}

/** Runs a desktop action, reporting failure (and success, when `done` says what happened). */
async function act(action, done) {
  try {
    await action();
    if (done) toast(done);
  } catch (err) {
    toast(err.message, 'error');
  }
}

/** The desktop app's proxy controls: on/off, a free port when the chosen one is taken, start
 * at login, and the copy and token actions the tray also has. */
function proxyCard() {
  const status = state.desktopStatus;
  if (!status) return null;
  const { proxy } = status;
  const running = proxy.state === 'running';
  const line = running ? `Running on http://${proxy.address}` : proxy.state === 'failed' ? `Error: ${proxy.message}` : 'Stopped';
  const usePort = async (port) => {
    const view = await desktop.settings();
    await desktop.saveSettings({ ...view.settings, port }, {});
    await setProxyEnabled(true);
  };
  return h('section.card', { 'aria-labelledby': 'proxy-title' },
    h('h3', { id: 'proxy-title' }, 'Proxy'),
    h('div.switchrow', {},
      h('span', { id: 'proxy-state', 'data-state': proxy.state }, line),
      h(running ? 'button' : 'button.primary', {
        id: 'proxy-toggle', type: 'button', 'aria-pressed': String(running),
        onclick: () => act(() => setProxyEnabled(!running)),
      }, running ? 'Turn off' : 'Turn on')),
    proxy.suggestedPort ? h('p.error', {},
      `Port ${proxy.portInUse} is used by another program. `,
      h('button.small', { type: 'button', id: 'use-suggested-port', onclick: () => act(() => usePort(proxy.suggestedPort)) },
        `Use port ${proxy.suggestedPort} instead`)) : null,
    h('label.check', {},
      h('input', {
        type: 'checkbox', id: 'start-at-login', checked: status.startAtLogin,
        onchange: (event) => act(async () => {
          await desktop.setAutostart(event.target.checked);
          await refreshDesktop();
        }, event.target.checked ? 'Local LLM Proxy will start at login' : 'Local LLM Proxy will not start at login'),
      }),
      'Start at login'),
    h('div.actions', {},
      h('button.small', { type: 'button', disabled: !running, onclick: () => act(() => desktop.copy('envPosix'), 'bash/zsh environment copied') }, 'Copy environment (bash/zsh)'),
      h('button.small', { type: 'button', disabled: !running, onclick: () => act(() => desktop.copy('envPowerShell'), 'PowerShell environment copied') }, 'Copy environment (PowerShell)'),
      h('button.small', { type: 'button', disabled: !running, onclick: () => act(() => desktop.copy('envClaudeCode'), 'Claude Code environment copied') }, 'Copy environment (Claude Code)'),
      h('button.small', { type: 'button', disabled: !running, onclick: () => act(() => desktop.openInBrowser()) }, 'Open in browser'),
      h('button.small.danger', {
        type: 'button', id: 'regenerate-token',
        onclick: () => {
          if (!confirm('Make a new access token? Tools using the current one will get 401 until you update them.')) return;
          act(async () => {
            await desktop.regenerateToken();
            await refreshDesktop();
          }, 'New access token in effect');
        },
      }, 'Regenerate token')),
    status.warnings.map((warning) => h('p.warn', { role: 'alert' }, warning)));
}

export function render(main) {
  const root = h('div');
  main.append(root);
  let revealed = false;
  let selected = 0;

  const draw = () => {
    const { config, health } = state;
    if (!config && !isDesktop) return;
    const base = config?.apiBaseUrl ?? null;
    const token = state.token;
    const oauthToken = config?.oauth?.token;
    const statusCard = config && h('section.card', { 'aria-labelledby': 'status-title' },
      h('h3', { id: 'status-title' }, 'Status'),
      h('dl.kv', {},
        h('dt', {}, 'Proxy'), h('dd', {}, 'Running'),
        h('dt', {}, 'Mode'), h('dd', {}, config.mode === 'placeholder' ? 'Placeholder (answers generated locally)' : 'Forwarding'),
        config.target ? [h('dt', {}, 'Target'), h('dd.mono', {}, new URL(config.target).host)] : null,
        h('dt', {}, 'Auth to target'), h('dd', {}, config.authKind),
        oauthToken ? [
          h('dt', {}, 'OAuth token'),
          h('dd', {}, oauthToken.lastError
            ? h('span.error', {}, oauthToken.lastError)
            : oauthToken.validUntil ? `valid until ${formatTime(oauthToken.validUntil * 1000)} (${oauthToken.refreshCount} fetched)` : 'being fetched…'),
        ] : null,
        h('dt', {}, 'Request log'),
        h('dd', {}, health?.logStore?.ok === false ? h('span.error', {}, health.logStore.error) : 'saved'),
      ));

    const tokenShown = token ? (revealed ? token : mask(token)) : 'hidden: log in again in this tab to show it';
    const connectCard = h('section.card', {},
      h('h3', {}, 'Connect your tools'),
      h('label', { for: 'base-url' }, 'API base URL'),
      base
        ? h('div.copyfield', {}, h('code', { id: 'base-url' }, base), copyButton(() => base, 'Copy', 'Base URL copied'))
        : h('p.lede', { id: 'base-url' }, 'Turn the proxy on to get its URL.'),
      h('label', { for: 'access-token' }, 'Access token (use it as the API key)'),
      h('div.copyfield', {},
        h('code', { id: 'access-token', 'data-revealed': String(revealed) }, tokenShown),
        token ? h('button.small', { type: 'button', 'aria-pressed': String(revealed), onclick: () => { revealed = !revealed; draw(); } }, revealed ? 'Hide' : 'Reveal') : null,
        token ? copyButton(() => token, 'Copy', 'Access token copied') : null,
      ));

    const list = snippets(base ?? 'http://localhost:3000/v1', token ?? TOKEN_PLACEHOLDER);
    const tabs = h('div.tabs-inline', { role: 'tablist', 'aria-label': 'Setup for' },
      list.map(([name], i) => h('button', {
        type: 'button', role: 'tab', 'aria-selected': String(i === selected),
        onclick: () => { selected = i; draw(); },
      }, name)));
    const setupCard = base && h('section.card.wide.snippets', {},
      h('h3', {}, 'Ready-to-paste setup'),
      tabs,
      codeBlock(list[selected][1], `${list[selected][0]} setup copied`));

    root.replaceChildren(
      h('h1', {}, 'Overview'),
      h('p.lede', {}, !config
        ? 'The proxy is off. Turn it on, then point your tools at it.'
        : config.mode === 'placeholder'
          ? 'No target endpoint is configured: the proxy answers with placeholder responses so you can wire up your tools first.'
          : 'Your tools talk to this proxy; it forwards to your LLM endpoint with the right credentials.'),
      h('div.grid.overview', {}, isDesktop ? proxyCard() : null, statusCard, connectCard, setupCard),
    );
  };
  draw();
  return subscribe((_, patch) => {
    if ('config' in patch || 'health' in patch || 'token' in patch || 'desktopStatus' in patch) draw();
  });
}
