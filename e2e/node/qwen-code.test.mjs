// The real Qwen Code (`qwen -p`, pinned in package.json), offline, with docs/setup.md's
// environment as written, through the proxy to a chat-completions target scripted to call Qwen
// Code's run_shell_command tool once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bin, forProxy, run, snippet, text, toolResults, workspace } from './cli.mjs';
import { startProxy } from './proxy.mjs';
import { startTarget } from './targets.mjs';

/** The variables of the snippet's `export NAME="value"` lines. */
function exports(script) {
  const found = [...script.matchAll(/^export (\w+)="([^"]*)"/gm)];
  assert.ok(found.length > 0, 'the Qwen Code snippet sets no variable');
  return Object.fromEntries(found.map(([, name, value]) => [name, value]));
}

test('Qwen Code with the setup.md environment runs one run_shell_command through the proxy and prints the answer', async (t) => {
  const target = await startTarget('chat');
  const proxy = await startProxy('e2e-qwen-code-token-0020', { TARGET_ENDPOINT: target.endpoint, TARGET_API_KEY: target.key });
  try {
    const space = workspace(t, 'qwen-code');
    mkdirSync(path.join(space.home, '.qwen'));
    // Usage statistics go to Alibaba Cloud unless turned off, as docs/setup.md says.
    writeFileSync(path.join(space.home, '.qwen/settings.json'), JSON.stringify({
      privacy: { usageStatisticsEnabled: false },
      general: { enableAutoUpdate: false },
    }));
    await target.reply(['run_shell_command', { command: 'echo proxy-works > marker.txt && cat marker.txt' }]);

    // Headless Qwen Code runs a command that writes a file only in yolo mode (with
    // --allowed-tools run_shell_command it is still "denied by permission rules", as an edit).
    const env = exports(forProxy(snippet('Qwen Code', 'bash'), proxy));
    const { stdout, refused } = await run(space, bin('qwen'), ['--yolo', '-p', 'Write the marker file.'], env);
    assert.equal(readFileSync(path.join(space.work, 'marker.txt'), 'utf8'), 'proxy-works\n');
    assert.equal(stdout.trim(), target.text);
    assert.deepEqual(refused, []);

    const received = await target.received();
    assert.ok(received.every((r) => r.body.model === 'gpt-4o'), 'a request named another model');
    const [{ call, result, offered }, ...more] = toolResults(received);
    assert.equal(more.length, 0, 'the command ran more than once');
    assert.ok(offered.includes('run_shell_command'), `run_shell_command not offered: ${offered}`);
    assert.equal(call.function.name, 'run_shell_command');
    assert.equal(result.tool_call_id, call.id);
    // The result names the command and its exit code. Its output is not checked: under load
    // Qwen Code 0.24.4 now and then reports "Output: (empty)" for a command that printed.
    assert.match(text(result.content), /^Command: echo proxy-works > marker\.txt && cat marker\.txt\n/);
    assert.match(text(result.content), /\nExit Code: 0\n/);
  } finally {
    assert.equal(await proxy.stop(), 0);
    await target.stop();
  }
});
