// What the tests of real command-line tools share: a throwaway home and working directory, the
// tool run to its end with nothing but the loopback reachable, and the settings of docs/setup.md
// as a user copies them.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const setup = readFileSync(path.join(here, '../../docs/setup.md'), 'utf8');

/** The path of an installed package's executable (node_modules/.bin/name). */
export function bin(name) {
  return path.join(here, 'node_modules/.bin', name);
}

/** The first `language` code block after `### heading` in docs/setup.md. */
export function snippet(heading, language) {
  const section = setup.split(`\n### ${heading}\n`)[1];
  assert.ok(section, `docs/setup.md has no "### ${heading}" section`);
  const match = section.match(new RegExp('```' + language + '\\n([\\s\\S]*?)```'));
  assert.ok(match, `docs/setup.md's "${heading}" section has no ${language} block`);
  return match[1];
}

/** A snippet of docs/setup.md with this run's proxy in place of localhost:3000 and its token. */
export function forProxy(text, proxy) {
  assert.ok(text.includes('http://localhost:3000/v1'), 'the snippet no longer names the base URL');
  assert.ok(text.includes('llm-proxy-...'), 'the snippet no longer names the token');
  return text.replaceAll('http://localhost:3000/v1', proxy.baseURL).replaceAll('llm-proxy-...', proxy.token);
}

/** A fresh directory with `home`, `work` and `tmp` in it, removed after the test. */
export function workspace(t, name) {
  const base = mkdtempSync(path.join(tmpdir(), `${name}-e2e-`));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const dirs = Object.fromEntries(['home', 'work', 'tmp'].map((dir) => [dir, path.join(base, dir)]));
  Object.values(dirs).forEach((dir) => mkdirSync(dir));
  return { ...dirs, refusedLog: path.join(base, 'refused.log') };
}

/**
 * Runs `command args` in `space.work` with HOME set to `space.home`, only PATH and `env` beside
 * them, stdin closed, and (for Node tools) every connection but to the loopback refused. Fails
 * unless it exits with 0; returns its output and the connections it tried that were refused.
 */
export async function run(space, command, args, env = {}) {
  const child = spawn(command, args, {
    cwd: space.work,
    timeout: 120_000,
    stdio: ['ignore', 'pipe', 'pipe'],
    // An `env` entry set to undefined removes the variable.
    env: Object.fromEntries(Object.entries({
      PATH: process.env.PATH,
      HOME: space.home,
      TMPDIR: space.tmp,
      NODE_OPTIONS: `--import ${path.join(here, 'offline.mjs')}`,
      E2E_REFUSED_LOG: space.refusedLog,
      ...env,
    }).filter(([, value]) => value !== undefined)),
  });
  let [stdout, stderr] = ['', ''];
  child.stdout.on('data', (chunk) => { stdout += chunk; });
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const [code, signal] = await once(child, 'close');
  assert.equal(code, 0, `${path.basename(command)} ended with ${code ?? signal}\nstdout: ${stdout}\nstderr: ${stderr}`);
  const refused = existsSync(space.refusedLog) ? readFileSync(space.refusedLog, 'utf8').trim().split('\n') : [];
  return { stdout, stderr, refused };
}

/**
 * The requests of `received` (a target's list) that carry a tool result: the call before it,
 * its result, and the tools the request offered.
 */
export function toolResults(received) {
  return received
    .filter((request) => request.body.messages.at(-1)?.role === 'tool')
    .map(({ body }) => ({
      call: body.messages.at(-2).tool_calls[0],
      result: body.messages.at(-1),
      offered: (body.tools ?? []).map((tool) => tool.function.name),
    }));
}

/** The text of a tool message's content, a string or a list of text parts. */
export function text(content) {
  return typeof content === 'string' ? content : content.map((part) => part.text).join('');
}
