// The official OpenAI Node SDK against proxies that translate for targets speaking only their
// own API (TARGET_API=anthropic, gemini, ollama). The targets are the strict mocks of the
// Python tests (e2e/python/*_target.py), which refuse what the real APIs refuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startProxy } from './proxy.mjs';
import { startTarget } from './targets.mjs';

const PNG = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg==';
const TOOLS = [{
  type: 'function',
  function: {
    name: 'weather', description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
}];
// Per API: a model its mock knows, and a parameter it cannot express.
const APIS = {
  anthropic: { model: 'claude-sonnet-4-5', refused: ['logit_bias', { 50256: -100 }], json: false },
  gemini: { model: 'gemini-2.5-flash', refused: ['logit_bias', { 50256: -100 }], json: true },
  ollama: { model: 'llama3.2', refused: ['n', 2], json: true },
};

for (const [api, { model, refused, json }] of Object.entries(APIS)) {
  test(`TARGET_API=${api}: the Node SDK's chat, stream, tools, image, JSON mode and a refused parameter`, async (t) => {
    const target = await startTarget(api);
    const proxy = await startProxy(`e2e-node-${api}-token-0010`, {
      TARGET_ENDPOINT: target.endpoint, TARGET_API: api, TARGET_API_KEY: target.key,
    });
    const client = new OpenAI({ baseURL: proxy.baseURL, apiKey: proxy.token, maxRetries: 0 });
    try {
      await t.test('a chat completion', async () => {
        const reply = await client.chat.completions.create({
          model, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello' }],
        });
        assert.equal(reply.choices[0].message.content, target.text);
        assert.equal(reply.choices[0].finish_reason, 'stop');
        assert.ok(reply.usage.prompt_tokens > 0);
      });

      await t.test('a stream', async () => {
        const stream = await client.chat.completions.create({
          model, stream: true, stream_options: { include_usage: true },
          messages: [{ role: 'user', content: 'Hello' }],
        });
        let text = '';
        let usage = null;
        for await (const chunk of stream) {
          text += chunk.choices[0]?.delta?.content ?? '';
          usage = chunk.usage ?? usage;
        }
        assert.equal(text, target.text);
        assert.ok(usage.prompt_tokens > 0);
      });

      await t.test('tools over two turns', async () => {
        await target.reply(['weather', { city: 'Paris' }]);
        const messages = [{ role: 'user', content: 'Weather in Paris?' }];
        const first = await client.chat.completions.create({ model, messages, tools: TOOLS });
        assert.equal(first.choices[0].finish_reason, 'tool_calls');
        const call = first.choices[0].message.tool_calls[0];
        assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
        await target.reply(null);
        messages.push(first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '15 C and sunny' });
        const second = await client.chat.completions.create({ model, messages, tools: TOOLS });
        assert.equal(second.choices[0].message.content, target.text);
      });

      await t.test('an image', async () => {
        const reply = await client.chat.completions.create({
          model, messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: PNG } }] }],
        });
        assert.equal(reply.choices[0].message.content, target.text);
      });

      await t.test(json ? 'JSON mode with a schema' : 'JSON mode is refused by name', async () => {
        const request = {
          model, messages: [{ role: 'user', content: 'A city as JSON' }],
          response_format: { type: 'json_schema', json_schema: { name: 'city', strict: true, schema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'], additionalProperties: false } } },
        };
        if (json) {
          const reply = await client.chat.completions.create(request);
          assert.equal(reply.choices[0].message.content, target.text);
        } else {
          await assert.rejects(client.chat.completions.create(request), (err) => {
            assert.ok(err instanceof OpenAI.BadRequestError, String(err));
            assert.equal(err.param, 'response_format');
            return true;
          });
        }
      });

      await t.test(`${refused[0]} is a 400 naming it`, async () => {
        await assert.rejects(
          client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Hi' }], [refused[0]]: refused[1] }),
          (err) => {
            assert.ok(err instanceof OpenAI.BadRequestError, String(err));
            assert.equal(err.param, refused[0]);
            assert.match(err.message, new RegExp(`TARGET_API=${api}`));
            return true;
          },
        );
      });
    } finally {
      assert.equal(await proxy.stop(), 0);
      await target.stop();
    }
  });
}
