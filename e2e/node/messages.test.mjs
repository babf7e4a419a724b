// The official Anthropic Node SDK against the proxy's /v1/messages, in front of a target that
// speaks only chat completions: create, stream, tool_use over two turns, errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startProxy } from './proxy.mjs';
import { startTarget } from './targets.mjs';

const MODEL = 'claude-sonnet-4-5';
const TOOLS = [{
  name: 'weather', description: 'Weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
}];

test('the Anthropic Node SDK through a chat-completions target', async (t) => {
  const target = await startTarget('chat');
  const proxy = await startProxy('e2e-node-messages-token-0013', {
    TARGET_ENDPOINT: target.endpoint, TARGET_API_KEY: target.key,
  });
  const root = proxy.baseURL.replace(/\/v1$/, '');
  const client = new Anthropic({ baseURL: root, apiKey: proxy.token, maxRetries: 0 });
  try {
    await t.test('messages.create', async () => {
      const reply = await client.messages.create({
        model: MODEL, max_tokens: 100, system: 'Be brief.', messages: [{ role: 'user', content: 'Hello' }],
      });
      assert.equal(reply.content[0].text, target.text);
      assert.equal(reply.stop_reason, 'end_turn');
      assert.ok(reply.id.startsWith('msg_'));
      assert.equal(reply.usage.input_tokens, 21);
    });

    await t.test('messages.stream: events in order, the final message', async () => {
      const stream = client.messages.stream({ model: MODEL, max_tokens: 100, messages: [{ role: 'user', content: 'Hello' }] });
      const kinds = [];
      stream.on('streamEvent', (event) => kinds.push(event.type));
      const final = await stream.finalMessage();
      assert.equal(final.content[0].text, target.text);
      assert.equal(kinds[0], 'message_start');
      assert.deepEqual(kinds.slice(-2), ['message_delta', 'message_stop']);
      assert.ok(kinds.includes('content_block_start') && kinds.includes('content_block_stop'));
    });

    await t.test('tool_use over two turns, streamed', async () => {
      await target.reply(['weather', { city: 'Paris' }]);
      const messages = [{ role: 'user', content: 'Weather in Paris?' }];
      const first = await client.messages.stream({ model: MODEL, max_tokens: 100, messages, tools: TOOLS }).finalMessage();
      assert.equal(first.stop_reason, 'tool_use');
      const use = first.content.find((block) => block.type === 'tool_use');
      assert.deepEqual(use.input, { city: 'Paris' });
      messages.push({ role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '15 C' }] });
      const second = await client.messages.create({ model: MODEL, max_tokens: 100, messages, tools: TOOLS });
      assert.equal(second.content[0].text, target.text);
      await target.reply(null);
    });

    await t.test('errors are the SDK\'s own exception classes', async () => {
      const wrong = new Anthropic({ baseURL: root, apiKey: 'wrong', maxRetries: 0 });
      await assert.rejects(
        wrong.messages.create({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
        (err) => err instanceof Anthropic.AuthenticationError && err.error.error.type === 'authentication_error',
      );
      await assert.rejects(
        client.messages.create({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'web_search_20250305', name: 'web_search' }] }),
        (err) => err instanceof Anthropic.BadRequestError && /web_search/.test(err.message),
      );
    });
  } finally {
    assert.equal(await proxy.stop(), 0);
    await target.stop();
  }
});
