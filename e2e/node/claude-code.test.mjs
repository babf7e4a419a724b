// The real Claude Code CLI (pinned in package.json), offline, through the proxy: in front of a
// chat-completions target scripted to call its Bash tool once, and in placeholder mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { promisify } from 'node:util';
import { startProxy } from './proxy.mjs';
import { startTarget } from './targets.mjs';

const claude = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'node_modules/.bin/claude');

/** `claude -p prompt` in a fresh directory and home, talking to `proxy` only. */
async function runClaude(proxy, prompt, args = []) {
  const cwd = mkdtempSync(path.join(tmpdir(), 'claude-code-e2e-'));
  const { stdout } = await promisify(execFile)(claude, ['-p', prompt, ...args], {
    cwd,
    timeout: 120_000,
    env: {
      PATH: process.env.PATH,
      HOME: mkdtempSync(path.join(tmpdir(), 'claude-code-home-')),
      ANTHROPIC_BASE_URL: proxy.baseURL.replace(/\/v1$/, ''),
      ANTHROPIC_AUTH_TOKEN: proxy.token,
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_TELEMETRY: '1',
      DISABLE_ERROR_REPORTING: '1',
    },
  });
  return { stdout, cwd };
}

test('Claude Code runs one Bash command through a chat-completions target', async () => {
  const target = await startTarget('chat');
  // Claude Code keeps its own model names; the proxy maps them to the endpoint's.
  const proxy = await startProxy('e2e-claude-code-token-0014', {
    TARGET_ENDPOINT: target.endpoint, TARGET_API_KEY: target.key, MODEL_ALIASES: '*=gpt-4.1',
  });
  try {
    await target.reply(['Bash', { command: 'echo proxy-works > marker.txt', description: 'Write the marker file' }]);
    const { stdout, cwd } = await runClaude(proxy, 'Write the marker file.', ['--allowedTools', 'Bash']);
    assert.equal(readFileSync(path.join(cwd, 'marker.txt'), 'utf8'), 'proxy-works\n');
    assert.match(stdout, new RegExp(target.text));
    // The command's result went back to the target as a tool message answering its call.
    const received = await target.received();
    assert.ok(received.every((r) => r.body.model === 'gpt-4.1'), 'a model name was not mapped');
    const answered = received.find((r) => r.body.messages.at(-1)?.role === 'tool');
    assert.ok(answered, 'no request carried the tool result');
    const call = answered.body.messages.at(-2).tool_calls[0];
    assert.equal(call.function.name, 'Bash');
    assert.equal(answered.body.messages.at(-1).tool_call_id, call.id);
  } finally {
    assert.equal(await proxy.stop(), 0);
    await target.stop();
  }
});

test('Claude Code gets an answer in placeholder mode', async () => {
  const proxy = await startProxy('e2e-claude-code-token-0015');
  try {
    const { stdout } = await runClaude(proxy, 'say hi');
    assert.match(stdout, /placeholder response from Local LLM Proxy/);
  } finally {
    assert.equal(await proxy.stop(), 0);
  }
});
