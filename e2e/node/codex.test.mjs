// The real Codex CLI (pinned in package.json), offline, through the proxy's `/v1/responses`: in
// front of a chat-completions target scripted to call Codex's shell tool once, and in
// placeholder mode. Codex keeps its default tool list (it declares `exec_command`, a
// `namespace` of sub-agent tools and a hosted `web_search` tool, among others); only what would
// reach the network is turned off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { startProxy } from './proxy.mjs';
import { startTarget } from './targets.mjs';

const codex = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'node_modules/.bin/codex');

// Codex's catalog entry for the endpoint's model. Without one Codex prints "warning: Model
// metadata for `gpt-4.1` not found. Defaulting to fallback metadata; this can degrade
// performance and cause issues." These are the fields Codex 0.171.0 requires; no reasoning
// levels and no verbosity, as gpt-4.1 takes neither.
const catalog = {
  models: [{
    slug: 'gpt-4.1',
    display_name: 'GPT-4.1',
    supported_reasoning_levels: [],
    shell_type: 'unified_exec',
    visibility: 'list',
    supported_in_api: true,
    priority: 1,
    support_verbosity: false,
    truncation_policy: { mode: 'tokens', limit: 10000 },
    experimental_supported_tools: [],
    base_instructions: 'You are a coding agent in a terminal. Run shell commands with the exec_command tool.',
  }],
};

/**
 * `codex exec prompt` in a fresh directory with a throwaway CODEX_HOME whose provider is
 * `proxy`. TMPDIR is moved out of the directory holding CODEX_HOME: Codex refuses to make its
 * helper binaries under the temporary directory and warns.
 */
async function runCodex(t, proxy, prompt) {
  const base = mkdtempSync(path.join(tmpdir(), 'codex-e2e-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const [home, tmp, cwd] = ['home', 'tmp', 'work'].map((name) => path.join(base, name));
  [home, tmp, cwd].forEach((dir) => mkdirSync(dir));
  writeFileSync(path.join(home, 'catalog.json'), JSON.stringify(catalog));
  writeFileSync(path.join(home, 'config.toml'), [
    'model = "gpt-4.1"',
    'model_provider = "proxy"',
    `model_catalog_json = ${JSON.stringify(path.join(home, 'catalog.json'))}`,
    'check_for_update_on_startup = false',
    '',
    '[analytics]',
    'enabled = false',
    '',
    // Plugins run `git ls-remote https://github.com/openai/plugins.git` at startup.
    '[features]',
    'plugins = false',
    'remote_plugin = false',
    'apps = false',
    '',
    '[model_providers.proxy]',
    'name = "Local LLM Proxy"',
    `base_url = ${JSON.stringify(proxy.baseURL)}`,
    'env_key = "LOCAL_LLM_PROXY_KEY"',
    'wire_api = "responses"',
    // A failure must show at once, not after Codex's retries.
    'request_max_retries = 0',
    'stream_max_retries = 0',
    '',
  ].join('\n'));
  // The command runs unsandboxed: it is the test's own, in the test's own directory, and
  // Codex's sandbox (bubblewrap) is not what is under test.
  const child = spawn(codex, [
    'exec', '--skip-git-repo-check', '--sandbox', 'danger-full-access', '--color', 'never', prompt,
  ], {
    cwd,
    timeout: 120_000,
    // Codex reads stdin to its end before it starts: it must be closed, not an open pipe.
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      HOME: home,
      CODEX_HOME: home,
      TMPDIR: tmp,
      LOCAL_LLM_PROXY_KEY: proxy.token,
    },
  });
  let [stdout, stderr] = ['', ''];
  child.stdout.on('data', (chunk) => { stdout += chunk; });
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const [code, signal] = await once(child, 'close');
  assert.equal(code, 0, `codex exec ended with ${code ?? signal}\nstdout: ${stdout}\nstderr: ${stderr}`);
  return { stdout, stderr, cwd };
}

/** What Codex printed on stderr that says something went wrong: errors, retries, warnings. */
function troubles(stderr) {
  return stderr.split('\n').filter((line) => /\b(error|warning|reconnecting)\b|stream disconnected/i.test(line));
}

test('Codex exec runs one exec_command call through the proxy to a chat-completions target and prints the final text', async (t) => {
  const target = await startTarget('chat');
  const proxy = await startProxy('e2e-codex-token-0016', {
    TARGET_ENDPOINT: target.endpoint, TARGET_API_KEY: target.key,
  });
  try {
    await target.reply(['exec_command', { cmd: 'echo proxy-works > marker.txt' }]);
    const { stdout, stderr, cwd } = await runCodex(t, proxy, 'Write the marker file.');
    assert.equal(readFileSync(path.join(cwd, 'marker.txt'), 'utf8'), 'proxy-works\n');
    assert.equal(stdout.trim(), target.text);
    assert.deepEqual(troubles(stderr), []);

    const received = await target.received();
    assert.equal(received.length, 2, `the target got ${received.length} requests, not 2`);
    assert.ok(received.every((r) => r.body.model === 'gpt-4.1'));
    // The first request offers exec_command as a chat function and the prompt as the last
    // user message.
    const [first, second] = received.map((r) => r.body);
    const offered = first.tools.map((tool) => tool.function?.name);
    assert.ok(offered.includes('exec_command'), `exec_command not offered: ${offered}`);
    assert.ok(first.tools.every((tool) => tool.type === 'function'), 'a tool the chat target cannot take was sent');
    assert.equal(first.messages.at(-1).role, 'user');
    assert.match(JSON.stringify(first.messages.at(-1).content), /Write the marker file\./);
    // The second carries the call and the command's result, answering it.
    const [call] = second.messages.at(-2).tool_calls;
    assert.equal(call.id, 'call_e2e_1');
    assert.equal(call.function.name, 'exec_command');
    assert.deepEqual(JSON.parse(call.function.arguments), { cmd: 'echo proxy-works > marker.txt' });
    const result = second.messages.at(-1);
    assert.equal(result.role, 'tool');
    assert.equal(result.tool_call_id, 'call_e2e_1');
    assert.match(JSON.stringify(result.content), /Process exited with code 0/);
  } finally {
    assert.equal(await proxy.stop(), 0);
    await target.stop();
  }
});

test('Codex exec prints the placeholder answer quoting its prompt when the proxy has no target', async (t) => {
  const proxy = await startProxy('e2e-codex-token-0017');
  try {
    const { stdout, stderr } = await runCodex(t, proxy, 'say hi to the placeholder');
    assert.match(stdout, /^This is a placeholder response from Local LLM Proxy/);
    assert.match(stdout, /"say hi to the placeholder"/);
    assert.deepEqual(troubles(stderr), []);
  } finally {
    assert.equal(await proxy.stop(), 0);
  }
});
