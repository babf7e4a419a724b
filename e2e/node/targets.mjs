// The strict mock targets of the Python tests (e2e/python/*_target.py), served to the Node
// tests by e2e/python/serve_target.py: one validation per API, whichever SDK drives it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const pythonDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../python');

/** Starts the `name` target (anthropic, chat, gemini, ollama); its endpoint, key and text. */
export async function startTarget(name) {
  const child = spawn('python3', ['serve_target.py', name], { cwd: pythonDir, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const info = await new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the ${name} target exited with ${code}`)));
    lines.once('line', (line) => resolve(JSON.parse(line)));
  });
  return {
    ...info,
    /** Valid requests get this tool call ([name, arguments]) from now on, or text (null). */
    async reply(tool) {
      const response = await fetch(`${info.endpoint.replace(/\/v1(beta)?$/, '')}/__reply`, {
        method: 'POST', body: JSON.stringify({ tool }),
      });
      assert.equal(response.status, 204);
    },
    /** Every request the target received. */
    async received() {
      const response = await fetch(`${info.endpoint.replace(/\/v1(beta)?$/, '')}/__received`);
      return response.json();
    },
    stop() {
      child.stdin.end();
      return new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

