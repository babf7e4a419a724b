// The official OpenAI Node SDK against the running proxy, in both setups.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startProxy } from './proxy.mjs';

const setups = {};

before(async () => {
  setups.placeholder = await startProxy('node-target-token-0001');
  setups.forwarding = await startProxy('node-front-token-0002', {
    TARGET_ENDPOINT: setups.placeholder.baseURL,
    TARGET_API_KEY: setups.placeholder.token,
  });
});

after(async () => {
  assert.equal(await setups.forwarding.stop(), 0);
  assert.equal(await setups.placeholder.stop(), 0);
});

const client = (setup, apiKey = setup.token) => new OpenAI({ baseURL: setup.baseURL, apiKey, maxRetries: 0 });

for (const name of ['placeholder', 'forwarding']) {
  describe(name, () => {
    test('chat completion', async () => {
      const response = await client(setups[name]).chat.completions.create({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'Hello from Node' }],
      });
      assert.equal(response.object, 'chat.completion');
      assert.match(response.choices[0].message.content, /Hello from Node/);
      assert.equal(response.choices[0].finish_reason, 'stop');
    });

    test('chat stream with usage', async () => {
      const stream = await client(setups[name]).chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'node stream' }],
        stream: true,
        stream_options: { include_usage: true },
      });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
      const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
      assert.match(text, /node stream/);
      const last = chunks.at(-1);
      assert.deepEqual(last.choices, []);
      assert.ok(last.usage.total_tokens > 0);
    });

    test('completions', async () => {
      const response = await client(setups[name]).completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'test prompt' });
      assert.equal(response.object, 'text_completion');
      assert.match(response.choices[0].text, /test prompt/);
    });

    test('embeddings, base64 by default and float', async () => {
      const c = client(setups[name]);
      const b64 = await c.embeddings.create({ model: 'text-embedding-3-small', input: 'vector', dimensions: 12 });
      const floats = await c.embeddings.create({
        model: 'text-embedding-3-small', input: 'vector', dimensions: 12, encoding_format: 'float',
      });
      assert.equal(b64.data[0].embedding.length, 12);
      b64.data[0].embedding.forEach((x, i) => assert.ok(Math.abs(x - floats.data[0].embedding[i]) < 1e-6));
    });

    test('models', async () => {
      const c = client(setups[name]);
      const ids = [];
      for await (const model of c.models.list()) ids.push(model.id);
      assert.ok(ids.includes('gpt-4o'));
      assert.equal((await c.models.retrieve('gpt-4o')).id, 'gpt-4o');
      // Any id is a model without a target, as the original project answered.
      assert.equal((await c.models.retrieve('gpt-4')).id, 'gpt-4');
    });

    test('wrong key raises AuthenticationError', async () => {
      await assert.rejects(client(setups[name], 'sk-wrong-node-key').models.list(), (err) => {
        assert.ok(err instanceof OpenAI.AuthenticationError);
        assert.equal(err.status, 401);
        assert.equal(err.code, 'invalid_api_key');
        assert.ok(!String(err.message).includes('sk-wrong-node-key'));
        return true;
      });
    });
  });
}

// The Node snippet users copy from docs/setup.md, run as written with this run's URL and token.
test('the Node snippet of docs/setup.md runs as written', async () => {
  const { readFile, writeFile, rm } = await import('node:fs/promises');
  const { execFile } = await import('node:child_process');
  const setup = await readFile(new URL('../../docs/setup.md', import.meta.url), 'utf8');
  const section = setup.split('### OpenAI Node SDK\n')[1];
  const code = section.match(/```js\n([\s\S]*?)```/)[1]
    .replace('http://localhost:3000/v1', setups.placeholder.baseURL)
    .replace('llm-proxy-...', setups.placeholder.token);
  assert.ok(code.includes(setups.placeholder.token), 'the snippet no longer uses the token placeholder');
  // Beside the tests, so that `import 'openai'` finds this folder's node_modules.
  const file = new URL('./docs-snippet.tmp.mjs', import.meta.url);
  await writeFile(file, code);
  try {
    const stdout = await new Promise((resolve, reject) => {
      execFile(process.execPath, [file.pathname], { timeout: 60_000 }, (err, out, errOut) => (err ? reject(new Error(errOut || err.message)) : resolve(out)));
    });
    assert.ok(stdout.trim().length > 0, 'the snippet printed no answer');
  } finally {
    await rm(file, { force: true });
  }
});
