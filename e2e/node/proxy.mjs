// Starts the real `llm-proxy` binary for the SDK tests: one in placeholder mode, and one that
// forwards to it (the first plays the company target, its token the target API key).
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = process.env.LLM_PROXY_BIN ?? path.join(root, 'target/debug/llm-proxy');

export async function startProxy(token, env = {}) {
  const child = spawn(bin, [], {
    cwd: '/',
    env: {
      PATH: process.env.PATH,
      PROXY_PORT: '0',
      PROXY_ACCESS_TOKEN: token,
      // A fresh log for every run: the tests must not see each other's calls.
      PROXY_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'llm-proxy-e2e-')),
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no banner from llm-proxy')), 30_000);
    child.once('exit', (code) => reject(new Error(`llm-proxy exited with ${code}`)));
    lines.on('line', (line) => {
      const match = line.match(/Listening on:\s+(\S+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
  });
  return {
    token,
    baseURL: `http://${addr}/v1`,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      return exited;
    },
  };
}
