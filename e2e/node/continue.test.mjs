// The real Continue CLI (`cn`, pinned in package.json), offline, with docs/setup.md's
// ~/.continue/config.yaml as written, through the proxy to a chat-completions target scripted to
// call Continue's Bash tool once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bin, forProxy, run, snippet, text, toolResults, workspace } from './cli.mjs';
import { startProxy } from './proxy.mjs';
import { startTarget } from './targets.mjs';

// At every start `cn` asks api.continue.dev for its latest version (sending the machine's id);
// nothing turns that off, so the test refuses it and lets nothing else out.
const KNOWN_TRAFFIC = ['api.continue.dev:443'];

test('Continue CLI with the setup.md config runs one Bash command through the proxy and prints the answer', async (t) => {
  const target = await startTarget('chat');
  const proxy = await startProxy('e2e-continue-token-0018', { TARGET_ENDPOINT: target.endpoint, TARGET_API_KEY: target.key });
  try {
    const space = workspace(t, 'continue');
    mkdirSync(path.join(space.home, '.continue'));
    writeFileSync(path.join(space.home, '.continue/config.yaml'), forProxy(snippet('Continue (VS Code, JetBrains)', 'yaml'), proxy));
    await target.reply(['Bash', { command: 'echo proxy-works > marker.txt && cat marker.txt' }]);

    const { stdout, refused } = await run(space, bin('cn'), ['-p', '--allow', 'Bash', 'Write the marker file.']);
    assert.equal(readFileSync(path.join(space.work, 'marker.txt'), 'utf8'), 'proxy-works\n');
    assert.equal(stdout.trim(), target.text);
    assert.deepEqual(refused.filter((host) => !KNOWN_TRAFFIC.includes(host)), []);

    const received = await target.received();
    assert.ok(received.every((r) => r.body.model === 'gpt-4o'), 'a request named another model');
    const [{ call, result, offered }, ...more] = toolResults(received);
    assert.equal(more.length, 0, 'the command ran more than once');
    assert.ok(offered.includes('Bash'), `Bash not offered: ${offered}`);
    assert.equal(call.function.name, 'Bash');
    assert.equal(result.tool_call_id, call.id);
    assert.equal(text(result.content).trim(), 'proxy-works');
  } finally {
    assert.equal(await proxy.stop(), 0);
    await target.stop();
  }
});
