// The real OpenCode (`opencode run`, pinned in package.json), offline, with docs/setup.md's
// opencode.json as written, through the proxy to a chat-completions target scripted to call
// OpenCode's bash tool once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bin, forProxy, run, snippet, text, toolResults, workspace } from './cli.mjs';
import { startProxy } from './proxy.mjs';
import { startTarget } from './targets.mjs';

test('OpenCode with the setup.md config runs one bash command through the proxy and prints the answer', async (t) => {
  const target = await startTarget('chat');
  const proxy = await startProxy('e2e-opencode-token-0019', { TARGET_ENDPOINT: target.endpoint, TARGET_API_KEY: target.key });
  try {
    const space = workspace(t, 'opencode');
    const config = path.join(space.home, '.config/opencode');
    mkdirSync(config, { recursive: true });
    writeFileSync(path.join(config, 'opencode.json'), forProxy(snippet('OpenCode', 'json'), proxy));
    await target.reply(['bash', { command: 'echo proxy-works > marker.txt && cat marker.txt', description: 'Write the marker file' }]);

    // OpenCode is a Bun binary: the Node preload cannot hold it offline, its settings do. At
    // every start it installs its plugin package into ~/.config/opencode from the npm registry
    // (in the background): that goes to a closed local port.
    const { stdout } = await run(space, bin('opencode'), ['run', 'Write the marker file.'], {
      NODE_OPTIONS: undefined,
      OPENCODE_DISABLE_AUTOUPDATE: '1',
      OPENCODE_DISABLE_MODELS_FETCH: '1',
      OPENCODE_DISABLE_SHARE: '1',
      OPENCODE_DISABLE_LSP_DOWNLOAD: '1',
      OPENCODE_DISABLE_DEFAULT_PLUGINS: '1',
      npm_config_registry: 'http://127.0.0.1:9/',
    });
    assert.equal(readFileSync(path.join(space.work, 'marker.txt'), 'utf8'), 'proxy-works\n');
    assert.equal(stdout.trim(), target.text);

    const received = await target.received();
    assert.ok(received.every((r) => r.body.model === 'gpt-4o'), 'a request named another model');
    const [{ call, result, offered }, ...more] = toolResults(received);
    assert.equal(more.length, 0, 'the command ran more than once');
    assert.ok(offered.includes('bash'), `bash not offered: ${offered}`);
    assert.equal(call.function.name, 'bash');
    assert.equal(result.tool_call_id, call.id);
    assert.equal(text(result.content).trim(), 'proxy-works');
  } finally {
    assert.equal(await proxy.stop(), 0);
    await target.stop();
  }
});
