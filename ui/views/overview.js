// Overview: is it running, where to point tools, and ready-to-paste setups for each tool.

import { state, subscribe } from '../store.js';
import { codeBlock, copyButton, formatTime, h, mask } from '../util.js';

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
    ['aider', `aider --openai-api-base ${base} --openai-api-key ${token} --model openai/gpt-4o`],
    ['Continue', `# ~/.continue/config.yaml
models:
  - name: Company LLM (Local LLM Proxy)
    provider: openai
    model: gpt-4o
    apiBase: ${base}
    apiKey: ${token}`],
    ['Codex CLI', `# ~/.codex/config.toml
model = "gpt-4o"
model_provider = "local-llm-proxy"

[model_providers.local-llm-proxy]
name = "Local LLM Proxy"
base_url = "${base}"
env_key = "LOCAL_LLM_PROXY_KEY"
wire_api = "chat"

# and in your shell:
# export LOCAL_LLM_PROXY_KEY="${token}"`],
  ];
}

export function render(main) {
  const root = h('div');
  main.append(root);
  let revealed = false;
  let selected = 0;

  const draw = () => {
    const { config, health } = state;
    if (!config) return;
    const base = config.apiBaseUrl;
    const token = state.token;
    const oauthToken = config.oauth?.token;
    const statusCard = h('section.card', { 'aria-labelledby': 'status-title' },
      h('h3', { id: 'status-title' }, 'Status'),
      h('dl.kv', {},
        h('dt', {}, 'Proxy'), h('dd', {}, 'Running'),
        h('dt', {}, 'Mode'), h('dd', {}, config.mode === 'placeholder' ? 'Placeholder (answers generated locally)' : 'Forwarding'),
        config.target ? [h('dt', {}, 'Target'), h('dd.mono', {}, new URL(config.target).host)] : null,
        h('dt', {}, 'Auth to target'), h('dd', {}, config.authKind),
        oauthToken ? [
          h('dt', {}, 'OAuth token'),
          h('dd', {}, oauthToken.last_error
            ? h('span.error', {}, oauthToken.last_error)
            : oauthToken.valid_until ? `valid until ${formatTime(oauthToken.valid_until * 1000)} (${oauthToken.refresh_count} fetched)` : 'being fetched…'),
        ] : null,
        h('dt', {}, 'Request log'),
        h('dd', {}, health?.logStore?.ok === false ? h('span.error', {}, health.logStore.error) : 'saved'),
      ));

    const tokenShown = token ? (revealed ? token : mask(token)) : 'hidden: log in again in this tab to show it';
    const connectCard = h('section.card', {},
      h('h3', {}, 'Connect your tools'),
      h('label', { for: 'base-url' }, 'API base URL'),
      h('div.copyfield', {}, h('code', { id: 'base-url' }, base), copyButton(() => base, 'Copy', 'Base URL copied')),
      h('label', { for: 'access-token' }, 'Access token (use it as the API key)'),
      h('div.copyfield', {},
        h('code', { id: 'access-token', 'data-revealed': String(revealed) }, tokenShown),
        token ? h('button.small', { type: 'button', 'aria-pressed': String(revealed), onclick: () => { revealed = !revealed; draw(); } }, revealed ? 'Hide' : 'Reveal') : null,
        token ? copyButton(() => token, 'Copy', 'Access token copied') : null,
      ));

    const list = snippets(base, token ?? TOKEN_PLACEHOLDER);
    const tabs = h('div.tabs-inline', { role: 'tablist', 'aria-label': 'Setup for' },
      list.map(([name], i) => h('button', {
        type: 'button', role: 'tab', 'aria-selected': String(i === selected),
        onclick: () => { selected = i; draw(); },
      }, name)));
    const setupCard = h('section.card.wide.snippets', {},
      h('h3', {}, 'Ready-to-paste setup'),
      tabs,
      codeBlock(list[selected][1], `${list[selected][0]} setup copied`));

    root.replaceChildren(
      h('h1', {}, 'Overview'),
      h('p.lede', {}, config.mode === 'placeholder'
        ? 'No target endpoint is configured: the proxy answers with placeholder responses so you can wire up your tools first.'
        : 'Your tools talk to this proxy; it forwards to your LLM endpoint with the right credentials.'),
      h('div.grid.overview', {}, statusCard, connectCard, setupCard),
    );
  };
  draw();
  return subscribe((_, patch) => {
    if ('config' in patch || 'health' in patch || 'token' in patch) draw();
  });
}
