// The official OpenAI Node SDK's `responses` resource against the proxy's `/v1/responses`: in
// placeholder mode, and in front of the strict chat-completions target (e2e/python/chat_target.py),
// which sees what the proxy made of each Responses request.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startProxy } from './proxy.mjs';
import { startTarget } from './targets.mjs';

let target;
const setups = {};

before(async () => {
  target = await startTarget('chat');
  setups.placeholder = await startProxy('e2e-responses-token-0018');
  setups.chat = await startProxy('e2e-responses-token-0019', {
    TARGET_ENDPOINT: target.endpoint, TARGET_API_KEY: target.key,
  });
});

after(async () => {
  assert.equal(await setups.chat.stop(), 0);
  assert.equal(await setups.placeholder.stop(), 0);
  await target.stop();
});

const client = (name) => new OpenAI({ baseURL: setups[name].baseURL, apiKey: setups[name].token, maxRetries: 0 });

/** Runs `action`, then returns what it returned and the requests the chat target got meanwhile. */
async function withReceived(action) {
  const before = (await target.received()).length;
  const result = await action();
  return { result, received: (await target.received()).slice(before).map((r) => r.body) };
}

/** A chat message's content as text, whether a string or text parts. */
const text = (content) => (typeof content === 'string' ? content : content.map((part) => part.text).join(''));

/** The answer each setup gives to a last user message `prompt`. */
function assertAnswer(name, answer, prompt) {
  if (name === 'chat') {
    assert.equal(answer, target.text);
  } else {
    assert.match(answer, /^This is a placeholder response from Local LLM Proxy/);
    assert.ok(answer.includes(`"${prompt}"`), `the placeholder does not quote "${prompt}": ${answer}`);
  }
}

/** Every event of a stream, checked for the Responses event grammar; the events. */
function assertEventOrder(events) {
  const types = events.map((e) => e.type);
  assert.equal(types[0], 'response.created', `first event: ${types[0]}`);
  assert.equal(events[0].response.status, 'in_progress');
  assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i), 'sequence_number is not 0, 1, 2, …');
  assert.equal(types.at(-1), 'response.completed', `last event: ${types.at(-1)}`);
  assert.equal(types.filter((t) => t === 'response.completed').length, 1);
  const completed = events.at(-1).response;
  assert.equal(completed.id, events[0].response.id);
  assert.equal(completed.status, 'completed');
  assert.ok(completed.usage.total_tokens > 0);
  assert.equal(completed.usage.total_tokens, completed.usage.input_tokens + completed.usage.output_tokens);
  // Each output index: one added, then one done, with the same item id; nothing about an item
  // before its added or after its done; the completed response lists the done items in order.
  const done = [];
  events.forEach((event, at) => {
    if (event.type === 'response.output_item.added') {
      assert.equal(event.output_index, done.length, 'an item was added before the previous one was done');
      const end = events.findIndex((e, i) => i > at && e.type === 'response.output_item.done' && e.output_index === event.output_index);
      assert.ok(end > at, `item ${event.output_index} added but never done`);
      assert.equal(events[end].item.id, event.item.id);
      assert.equal(event.item.status, 'in_progress');
      assert.equal(events[end].item.status, 'completed');
      for (const inner of events.slice(at + 1, end)) {
        if ('output_index' in inner) assert.equal(inner.output_index, event.output_index, `${inner.type} interleaved`);
        if ('item_id' in inner) assert.equal(inner.item_id, event.item.id);
      }
      done.push(events[end].item);
    }
  });
  assert.equal(types.filter((t) => t === 'response.output_item.done').length, done.length);
  assert.deepEqual(completed.output, done);
  return { completed, done };
}

for (const name of ['placeholder', 'chat']) {
  describe(name, () => {
    beforeEach(() => target.reply(null));

    test('responses.create returns a completed response: one assistant output_text message, usage, instructions echoed', async () => {
      const prompt = 'Hello from the Responses API';
      const { result: response, received } = await withReceived(() => client(name).responses.create({
        model: 'gpt-4.1', instructions: 'Answer briefly.', input: prompt,
      }));
      assert.equal(response.object, 'response');
      assert.match(response.id, /^resp_/);
      assert.equal(response.status, 'completed');
      assert.equal(response.model, 'gpt-4.1');
      assert.equal(response.instructions, 'Answer briefly.');
      assert.equal(response.output.length, 1);
      const [message] = response.output;
      assert.equal(message.type, 'message');
      assert.equal(message.role, 'assistant');
      assert.equal(message.status, 'completed');
      assert.equal(message.content.length, 1);
      assert.equal(message.content[0].type, 'output_text');
      assert.equal(message.content[0].text, response.output_text);
      assertAnswer(name, response.output_text, prompt);
      assert.equal(response.usage.total_tokens, response.usage.input_tokens + response.usage.output_tokens);
      assert.ok(response.usage.output_tokens > 0);
      if (name === 'chat') {
        // The mock's usage, renamed.
        assert.deepEqual([response.usage.input_tokens, response.usage.output_tokens], [21, 7]);
        assert.equal(received.length, 1);
        const { messages } = received[0];
        assert.ok(['system', 'developer'].includes(messages[0].role), `instructions became a ${messages[0].role} message`);
        assert.equal(text(messages[0].content), 'Answer briefly.');
        assert.equal(messages[1].role, 'user');
        assert.equal(text(messages[1].content), prompt);
        assert.equal(messages.length, 2);
      }
    });

    test('responses.create with stream:true: response.created first, sequence_number 0,1,2…, each item added then done, response.completed last with usage', async () => {
      const prompt = 'stream this answer';
      const stream = await client(name).responses.create({ model: 'gpt-4.1', input: prompt, stream: true });
      const events = [];
      for await (const event of stream) events.push(event);
      const { done } = assertEventOrder(events);
      assert.equal(done.length, 1);
      assert.equal(done[0].type, 'message');
      const answer = done[0].content[0].text;
      assertAnswer(name, answer, prompt);
      const deltas = events.filter((e) => e.type === 'response.output_text.delta');
      assert.ok(deltas.length > 1, 'the text came in one delta');
      assert.equal(deltas.map((e) => e.delta).join(''), answer);
      assert.equal(events.find((e) => e.type === 'response.output_text.done').text, answer);
      if (name === 'chat') assert.equal(events.at(-1).response.usage.total_tokens, 28);
    });

    test('responses.stream helper: text delta events add up to finalResponse().output_text', async () => {
      const prompt = 'helper stream';
      const stream = client(name).responses.stream({ model: 'gpt-4.1', input: prompt });
      let streamed = '';
      stream.on('response.output_text.delta', (event) => { streamed += event.delta; });
      const response = await stream.finalResponse();
      assert.equal(response.status, 'completed');
      assert.equal(streamed, response.output_text);
      assertAnswer(name, response.output_text, prompt);
    });

    test('a streamed response is stored: retrieve returns the output and usage of its response.completed', async () => {
      const c = client(name);
      const stream = await c.responses.create({ model: 'gpt-4.1', input: 'keep this stream', stream: true });
      let completed;
      for await (const event of stream) if (event.type === 'response.completed') completed = event.response;
      assert.ok(completed, 'no response.completed');
      const retrieved = await c.responses.retrieve(completed.id);
      assert.equal(retrieved.status, 'completed');
      assert.deepEqual(retrieved.output, completed.output);
      assert.deepEqual(retrieved.usage, completed.usage);
    });

    test('text.format json_schema is echoed on the response, and reaches a chat target as response_format.json_schema', async () => {
      const format = {
        type: 'json_schema', name: 'person', strict: true,
        schema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'], additionalProperties: false },
      };
      const { result: response, received } = await withReceived(() => client(name).responses.create({
        model: 'gpt-4.1', input: 'Who wrote the first program?', text: { format },
      }));
      assert.equal(response.status, 'completed');
      assert.deepEqual(response.text.format, format);
      if (name === 'chat') {
        // Chat nests the schema under `json_schema`.
        const { type, ...schema } = format;
        assert.deepEqual(received[0].response_format, { type, json_schema: schema });
      }
    });

    test('previous_response_id continues a stored response: retrieve and input_items list it, the next turn answers the new input', async () => {
      const c = client(name);
      const first = await c.responses.create({ model: 'gpt-4.1', instructions: 'Be brief.', input: 'My name is Ada.' });
      const retrieved = await c.responses.retrieve(first.id);
      assert.equal(retrieved.id, first.id);
      assert.equal(retrieved.status, 'completed');
      assert.deepEqual(retrieved.output, first.output);
      const items = [];
      for await (const item of c.responses.inputItems.list(first.id)) items.push(item);
      assert.equal(items.length, 1);
      assert.equal(items[0].type, 'message');
      assert.equal(items[0].role, 'user');
      assert.deepEqual(items[0].content.map((part) => [part.type, part.text]), [['input_text', 'My name is Ada.']]);

      const { result: second, received } = await withReceived(() => c.responses.create({
        model: 'gpt-4.1', previous_response_id: first.id, input: 'What is my name?',
      }));
      assert.equal(second.previous_response_id, first.id);
      assert.notEqual(second.id, first.id);
      assertAnswer(name, second.output_text, 'What is my name?');
      if (name === 'chat') {
        // The earlier exchange, then the new input; the first turn's instructions are not
        // carried over (OpenAI's rule for previous_response_id).
        assert.deepEqual(received[0].messages.map((m) => [m.role, text(m.content)]), [
          ['user', 'My name is Ada.'], ['assistant', target.text], ['user', 'What is my name?'],
        ]);
      }
    });

    test('responses.delete removes a stored response: retrieving it then raises NotFoundError', async () => {
      const c = client(name);
      const response = await c.responses.create({ model: 'gpt-4.1', input: 'Forget me.' });
      await c.responses.delete(response.id);
      await assert.rejects(c.responses.retrieve(response.id), OpenAI.NotFoundError);
      await assert.rejects(c.responses.delete(response.id), OpenAI.NotFoundError);
    });

    test('a response created with store:false cannot be retrieved (NotFoundError)', async () => {
      const c = client(name);
      const response = await c.responses.create({ model: 'gpt-4.1', input: 'Do not keep this.', store: false });
      assert.equal(response.status, 'completed');
      assert.equal(response.store, false);
      await assert.rejects(c.responses.retrieve(response.id), OpenAI.NotFoundError);
    });

    test('an unknown previous_response_id raises BadRequestError with code previous_response_not_found', async () => {
      await assert.rejects(client(name).responses.create({
        model: 'gpt-4.1', previous_response_id: 'resp_e2e_unknown', input: 'Continue.',
      }), (error) => {
        // OpenAI answers 400 invalid_request_error here, not 404.
        assert.ok(error instanceof OpenAI.BadRequestError, `${error.constructor.name}: ${error.message}`);
        assert.equal(error.code, 'previous_response_not_found');
        assert.equal(error.param, 'previous_response_id');
        assert.match(error.message, /resp_e2e_unknown/);
        return true;
      });
    });

    test('a wrong access token raises AuthenticationError', async () => {
      const wrong = new OpenAI({ baseURL: setups[name].baseURL, apiKey: 'sk-wrong-responses-key', maxRetries: 0 });
      await assert.rejects(wrong.responses.create({ model: 'gpt-4.1', input: 'hi' }), OpenAI.AuthenticationError);
    });

    test('retrieving an unknown response id raises NotFoundError', async () => {
      await assert.rejects(client(name).responses.retrieve('resp_e2e_unknown'), OpenAI.NotFoundError);
    });
  });
}

describe('chat target only', () => {
  beforeEach(() => target.reply(null));

  const weather = {
    type: 'function', name: 'get_weather', description: 'The weather in a city.', strict: true,
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  };

  test('function tool over two turns: a function_call item, then function_call_output answered as a tool message', async () => {
    const c = client('chat');
    await target.reply(['get_weather', { city: 'Paris' }]);
    const input = [{ role: 'user', content: 'Weather in Paris?' }];
    const { result: first, received: firstSent } = await withReceived(() => c.responses.create({
      model: 'gpt-4.1', input, tools: [weather],
    }));
    assert.deepEqual(firstSent[0].tools, [{
      type: 'function',
      function: { name: 'get_weather', description: weather.description, parameters: weather.parameters, strict: true },
    }]);
    assert.equal(first.status, 'completed');
    assert.equal(first.output.length, 1);
    const [call] = first.output;
    assert.equal(call.type, 'function_call');
    assert.equal(call.name, 'get_weather');
    assert.equal(call.call_id, 'call_e2e_1');
    assert.match(call.id, /^fc_/);
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
    assert.equal(first.output_text, '');

    // The second turn, stateless: the call and its output sent back as input items.
    const { result: second, received } = await withReceived(() => c.responses.create({
      model: 'gpt-4.1', tools: [weather], store: false,
      input: [...input, call, { type: 'function_call_output', call_id: call.call_id, output: '{"temp_c":21}' }],
    }));
    assert.equal(second.output_text, target.text);
    const { messages } = received[0];
    assert.equal(messages.length, 3);
    assert.deepEqual(messages[1].tool_calls, [{
      id: 'call_e2e_1', type: 'function', function: { name: 'get_weather', arguments: call.arguments },
    }]);
    assert.deepEqual(messages[2], { role: 'tool', tool_call_id: 'call_e2e_1', content: '{"temp_c":21}' });
  });

  test('streamed function call: arguments deltas add up to the done item\'s arguments; the item starts with empty arguments', async () => {
    await target.reply(['get_weather', { city: 'Lyon' }]);
    const stream = await client('chat').responses.create({
      model: 'gpt-4.1', input: 'Weather in Lyon?', tools: [weather], stream: true,
    });
    const events = [];
    for await (const event of stream) events.push(event);
    const { done } = assertEventOrder(events);
    assert.equal(done.length, 1);
    const [call] = done;
    assert.equal(call.type, 'function_call');
    assert.equal(call.call_id, 'call_e2e_1');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Lyon' });
    assert.equal(events.find((e) => e.type === 'response.output_item.added').item.arguments, '');
    const deltas = events.filter((e) => e.type === 'response.function_call_arguments.delta');
    assert.ok(deltas.length > 1, 'the arguments came in one delta');
    assert.equal(deltas.map((e) => e.delta).join(''), call.arguments);
    assert.equal(events.find((e) => e.type === 'response.function_call_arguments.done').arguments, call.arguments);
  });

  test('previous_response_id after a function call: the stored call is replayed before its function_call_output', async () => {
    const c = client('chat');
    await target.reply(['get_weather', { city: 'Oslo' }]);
    const first = await c.responses.create({ model: 'gpt-4.1', input: 'Weather in Oslo?', tools: [weather] });
    const [call] = first.output;
    assert.equal(call.type, 'function_call');
    const { result: second, received } = await withReceived(() => c.responses.create({
      model: 'gpt-4.1', tools: [weather], previous_response_id: first.id,
      input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"temp_c":3}' }],
    }));
    assert.equal(second.output_text, target.text);
    const { messages } = received[0];
    assert.deepEqual(messages.map((m) => m.role), ['user', 'assistant', 'tool']);
    assert.equal(messages[1].tool_calls[0].id, call.call_id);
    assert.equal(messages[2].tool_call_id, call.call_id);
  });

  test('a hosted tool the chat target cannot run (file_search) raises BadRequestError naming the tool, and nothing reaches the target', async () => {
    const { received } = await withReceived(() => assert.rejects(client('chat').responses.create({
      model: 'gpt-4.1', input: 'Search my files.', tools: [{ type: 'file_search', vector_store_ids: ['vs_e2e'] }],
    }), (error) => {
      assert.ok(error instanceof OpenAI.BadRequestError, `${error.constructor.name}: ${error.message}`);
      assert.match(error.message, /file_search/);
      return true;
    }));
    assert.equal(received.length, 0);
  });

  test('a function_call_output answering no call raises BadRequestError', async () => {
    await assert.rejects(client('chat').responses.create({
      model: 'gpt-4.1',
      input: [{ role: 'user', content: 'hi' }, { type: 'function_call_output', call_id: 'call_nowhere', output: 'x' }],
    }), (error) => {
      assert.ok(error instanceof OpenAI.BadRequestError, `${error.constructor.name}: ${error.message}`);
      return true;
    });
  });

  for (const stream of [false, true]) {
    test(`a 400 from the target (reasoning_effort refused for gpt-4.1) raises BadRequestError with the target's message${stream ? ', streamed, before any event' : ''}`, async () => {
      const { received } = await withReceived(() => assert.rejects(client('chat').responses.create({
        model: 'gpt-4.1', input: 'Think hard.', reasoning: { effort: 'low' }, stream,
      }), (error) => {
        assert.ok(error instanceof OpenAI.BadRequestError, `${error.constructor.name}: ${error.message}`);
        assert.match(error.message, /reasoning_effort/);
        return true;
      }));
      // The target did get it: the refusal is the target's, passed on.
      assert.equal(received.length, 1);
      assert.equal(received[0].reasoning_effort, 'low');
    });
  }
});
