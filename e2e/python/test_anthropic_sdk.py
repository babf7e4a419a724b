"""The official Anthropic Python SDK against the proxy's /v1/messages: in placeholder mode, and
in front of a target that speaks only chat completions (and refuses what OpenAI refuses), so
every call is translated both ways. Streams are held to the Messages event grammar."""
import anthropic
import pytest

from chat_target import TEXT

MODEL = "claude-sonnet-4-5"
TOOLS = [{"name": "weather", "description": "Weather in a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]


def client(proxy, **options):
    root = proxy.base_url.removesuffix("/v1")
    return anthropic.Anthropic(base_url=root, api_key=proxy.token, max_retries=0, **options)


@pytest.fixture(autouse=True)
def text_replies(chat_target):
    chat_target.reply_tool = None
    yield


def check_grammar(events):
    """message_start, then blocks each opened before its deltas and closed once, with indexes in
    order, then message_delta and message_stop, as Claude Code requires."""
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start", kinds
    assert kinds[-2:] == ["message_delta", "message_stop"], kinds
    open_index, next_index = None, 0
    for event in events[1:-2]:
        if event.type == "content_block_start":
            assert open_index is None, kinds
            assert event.index == next_index, kinds
            open_index, next_index = event.index, next_index + 1
        elif event.type == "content_block_delta":
            assert event.index == open_index, kinds
        elif event.type == "content_block_stop":
            assert event.index == open_index, kinds
            open_index = None
        else:
            assert event.type == "ping", kinds
    assert open_index is None, kinds


def test_a_message_is_answered_through_a_chat_target(messages_proxy, chat_target):
    reply = client(messages_proxy).messages.create(
        model=MODEL, max_tokens=200, system="Be brief.", messages=[{"role": "user", "content": "Hello"}])
    assert reply.content[0].type == "text" and reply.content[0].text == TEXT
    assert reply.stop_reason == "end_turn"
    assert reply.id.startswith("msg_")
    assert reply.usage.input_tokens == 21 and reply.usage.output_tokens == 7
    sent = chat_target.received[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["body"]["max_tokens"] == 200


def test_a_stream_follows_the_messages_grammar_and_carries_the_text(messages_proxy):
    events = list(client(messages_proxy).messages.create(
        model=MODEL, max_tokens=200, stream=True, messages=[{"role": "user", "content": "Hello"}]))
    check_grammar(events)
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == TEXT
    delta = events[-2]
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens == 7 and delta.usage.input_tokens == 21


def test_messages_stream_helper_gives_the_final_message(messages_proxy):
    with client(messages_proxy).messages.stream(
            model=MODEL, max_tokens=200, messages=[{"role": "user", "content": "Hello"}]) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == TEXT
    assert final.content[0].text == TEXT


def test_tool_use_over_two_turns_with_tool_result(messages_proxy, chat_target):
    c = client(messages_proxy)
    chat_target.reply_tool = ("weather", {"city": "Paris"})
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    first = c.messages.create(model=MODEL, max_tokens=200, messages=messages, tools=TOOLS)
    assert first.stop_reason == "tool_use"
    use = first.content[-1]
    assert use.type == "tool_use" and use.name == "weather" and use.input == {"city": "Paris"}
    assert use.id.startswith("toolu_")
    chat_target.reply_tool = None
    messages += [{"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "15 C"},
                                              {"type": "text", "text": "And tomorrow?"}]}]
    second = c.messages.create(model=MODEL, max_tokens=200, messages=messages, tools=TOOLS)
    assert second.content[0].text == TEXT
    sent = chat_target.received[-1]["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "user"]
    assert sent[2] == {"role": "tool", "tool_call_id": use.id, "content": "15 C"}
    assert sent[1]["tool_calls"][0]["id"] == use.id


def test_a_streamed_tool_use_arrives_as_input_json_deltas(messages_proxy, chat_target):
    chat_target.reply_tool = ("weather", {"city": "Paris"})
    with client(messages_proxy).messages.stream(
            model=MODEL, max_tokens=200, messages=[{"role": "user", "content": "Weather?"}], tools=TOOLS) as stream:
        events = list(stream)
        final = stream.get_final_message()
    raw = [e for e in events if e.type in ("message_start", "content_block_start", "content_block_delta",
                                          "content_block_stop", "message_delta", "message_stop", "ping")]
    check_grammar(raw)
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use" and final.content[0].input == {"city": "Paris"}


def test_errors_come_as_the_sdks_own_exceptions_in_anthropics_envelope(messages_proxy):
    with pytest.raises(anthropic.AuthenticationError) as refused:
        anthropic.Anthropic(base_url=messages_proxy.base_url.removesuffix("/v1"), api_key="wrong",
                            max_retries=0).messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert refused.value.body["type"] == "error"
    assert refused.value.body["error"]["type"] == "authentication_error"
    with pytest.raises(anthropic.BadRequestError) as server_tool:
        client(messages_proxy).messages.create(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}],
            tools=[{"type": "web_search_20250305", "name": "web_search"}])
    assert "web_search" in server_tool.value.body["error"]["message"]
    assert server_tool.value.body["error"]["type"] == "invalid_request_error"


def test_a_base_url_with_v1_gets_a_404_saying_how_to_set_it(messages_proxy):
    doubled = anthropic.Anthropic(base_url=messages_proxy.base_url, api_key=messages_proxy.token, max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as missing:
        doubled.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert "ANTHROPIC_BASE_URL" in missing.value.body["error"]["message"]


def test_placeholder_mode_answers_messages_whole_and_streamed(placeholder_proxy):
    c = client(placeholder_proxy)
    reply = c.messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "Hello"}])
    assert "placeholder" in reply.content[0].text and reply.stop_reason == "end_turn"
    events = list(c.messages.create(model=MODEL, max_tokens=50, stream=True, messages=[{"role": "user", "content": "Hello"}]))
    check_grammar(events)


def test_count_tokens_counts_the_request_as_it_would_be_sent(messages_proxy, chat_target):
    c = client(messages_proxy)
    hello = c.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "Hello"}])
    # OpenAI's framing: 3 tokens around the message, "user" and "Hello" one each, 3 for the reply.
    assert hello.input_tokens == 8
    longer = c.messages.count_tokens(model=MODEL, system="Be brief.", tools=TOOLS,
                                     messages=[{"role": "user", "content": "Hello " * 50}])
    assert longer.input_tokens > hello.input_tokens + 50
    assert all(r["path"] != "/v1/messages/count_tokens" for r in chat_target.received), "counted locally"


def test_with_an_anthropic_target_the_sdks_calls_pass_through(anthropic_proxy, anthropic_target):
    """TARGET_API=anthropic: the Messages call reaches the target as the SDK wrote it."""
    from anthropic_target import TEXT as ANTHROPIC_TEXT
    anthropic_target.reply_tool = None
    c = client(anthropic_proxy)
    reply = c.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Hello"}])
    assert reply.content[0].text == ANTHROPIC_TEXT
    sent = anthropic_target.received[-1]
    assert sent["body"] == {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "Hello"}]}
    assert sent["headers"]["x-api-key"] == "sk-ant-e2e-target-key-0004"
    events = list(c.messages.create(model=MODEL, max_tokens=64, stream=True, messages=[{"role": "user", "content": "Hello"}]))
    check_grammar(events)


def test_a_gemini_target_answers_messages_through_two_translations(gemini_proxy, gemini_target):
    """Messages in, chat in the middle, Gemini out, and back."""
    from gemini_target import TEXT as GEMINI_TEXT
    gemini_target.reply_call = None
    reply = client(gemini_proxy).messages.create(
        model="gemini-2.5-flash", max_tokens=64, system="Be brief.", messages=[{"role": "user", "content": "Hello"}])
    assert reply.content[0].text == GEMINI_TEXT
    sent = gemini_target.received[-1]
    assert sent["body"]["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent["body"]["generationConfig"]["maxOutputTokens"] == 64


def test_thinking_budgets_become_efforts_and_adaptive_thinking_is_left_to_the_model(messages_proxy, chat_target):
    c = client(messages_proxy)
    c.messages.create(model="o4-mini", max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2048},
                      messages=[{"role": "user", "content": "Think"}])
    assert chat_target.received[-1]["body"]["reasoning_effort"] == "low"
    # Claude Code's default for models it does not know; gpt-4.1 would refuse an effort.
    reply = c.messages.create(model="gpt-4.1", max_tokens=100, thinking={"type": "adaptive"},
                              messages=[{"role": "user", "content": "Hello"}])
    assert reply.content[0].text == TEXT
    assert "reasoning_effort" not in chat_target.received[-1]["body"]
