"""OpenAI's Responses API (`POST /v1/responses`) through the proxy: the official OpenAI Python SDK
and the OpenAI Agents SDK, in placeholder mode and in front of a target that speaks only chat
completions (and refuses what OpenAI refuses), so every call is translated both ways. What the
target received is checked from its recording; what the proxy sent back is validated, event by
event and object by object, against the schemas of OpenAI's own openapi.yaml
(fixtures/responses-schemas.json, made by extract_responses_schemas.py)."""
import asyncio
import json
import os
import sys
import urllib.error
import urllib.request

# Set before the Agents SDK is imported: its tracing would upload to OpenAI.
os.environ["OPENAI_AGENTS_DISABLE_TRACING"] = "1"

import openai
import pytest
from openai import OpenAI

from chat_target import TEXT
from conftest import in_front
from responses_schema import check_error, check_event, check_item_list, check_response

MODEL = "gpt-4.1"
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city", "strict": False,
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
TIME = {"type": "function", "name": "get_time", "description": "Time in a city", "strict": False,
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
SQL = {"type": "custom", "name": "run_sql", "description": "Runs one SQL query"}
ANSWER_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
                 "additionalProperties": False}
# Web search is not among them: Codex declares it by default, so it is left out, not refused.
BUILT_IN_TOOLS = [
    {"type": "file_search", "vector_store_ids": ["vs_e2e"]},
    {"type": "code_interpreter", "container": {"type": "auto"}},
    {"type": "computer_use_preview", "display_width": 1024, "display_height": 768, "environment": "linux"},
    {"type": "image_generation"},
    {"type": "mcp", "server_label": "e2e", "server_url": "https://mcp.example.invalid/sse"},
]


@pytest.fixture(scope="session")
def responses_proxy(chat_target):
    """A proxy in front of a target that speaks only chat completions."""
    proxy = in_front(chat_target, "/v1", "e2e-responses-token-0013")
    yield proxy
    proxy.stop()


@pytest.fixture(autouse=True)
def text_replies(chat_target):
    chat_target.reply_tool = chat_target.reply_finish = None
    yield
    chat_target.reply_tool = chat_target.reply_finish = None


def client(proxy, **options):
    return OpenAI(base_url=proxy.base_url, api_key=proxy.token, max_retries=0, timeout=30, **options)


def sent_since(chat_target, mark):
    """The chat request bodies the target received after `mark` requests."""
    return [r["body"] for r in chat_target.received[mark:]]


def text_of(content):
    """A chat message's text: a string, or the text parts of a content array."""
    if isinstance(content, list):
        return "".join(part["text"] for part in content if part.get("type") == "text")
    return content


def conversation(messages):
    """(role, text) for each chat message, tool calls as (name, arguments, id), tool results with their id."""
    turns = []
    for m in messages:
        if m.get("tool_calls"):
            turns.append((m["role"], [(c["function"]["name"], json.loads(c["function"]["arguments"]), c["id"])
                                      for c in m["tool_calls"]]))
        elif m["role"] == "tool":
            turns.append(("tool", m["tool_call_id"], text_of(m["content"])))
        else:
            turns.append((m["role"], text_of(m["content"])))
    return turns


# --- raw HTTP, for what the SDK hides: the wire bodies validated against the spec -------------

def post(proxy, body):
    """POSTs `body` to /v1/responses: (status, content type, body bytes)."""
    return call(proxy, "POST", "/responses", body)


def call(proxy, method, path, body=None):
    request = urllib.request.Request(
        proxy.base_url + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"authorization": f"Bearer {proxy.token}", "content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.headers.get("content-type", ""), answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers.get("content-type", ""), refused.read()


def sse_events(raw):
    """The events of a Responses stream as (event name, data), `[DONE]` lines (which OpenAI does not
    send, and the SDKs skip) left out."""
    events = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[len("event:"):].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:"):].removeprefix(" "))
        if data and data != ["[DONE]"]:
            events.append((name, json.loads("\n".join(data))))
    return events


def check_stream_grammar(events):
    """What OpenAI's streams do and the SDKs' accumulators rely on: each SSE event named by its
    data's `type`; `sequence_number` 0, 1, 2...; `response.created` then `response.in_progress`
    first and one terminal event last, all of one response id; each output item added at the next
    `output_index`, its events naming its id and index between its added and done; deltas adding
    up to each done text; the final output being the done items in order."""
    for name, data in events:
        assert name == data["type"], (name, data["type"])
    data = [d for _, d in events]
    kinds = [d["type"] for d in data]
    assert [d.get("sequence_number") for d in data] == list(range(len(data))), kinds
    assert kinds[:2] == ["response.created", "response.in_progress"], kinds
    assert kinds[-1] in ("response.completed", "response.incomplete", "response.failed"), kinds
    assert sum(k in ("response.completed", "response.incomplete", "response.failed") for k in kinds) == 1, kinds
    assert len({d["response"]["id"] for d in data if "response" in d}) == 1, kinds
    assert data[0]["response"]["status"] == "in_progress" and data[0]["response"]["output"] == []
    open_items, done_items, deltas = {}, [], {}
    for d in data[2:-1]:
        kind = d["type"]
        if kind == "response.output_item.added":
            assert d["output_index"] == len(done_items) + len(open_items), kinds
            open_items[d["output_index"]] = d["item"]
            continue
        if kind == "error":
            continue
        index = d["output_index"]
        assert index in open_items, f"{kind} for output_index {index}, which is not open: {kinds}"
        item = open_items[index]
        if kind == "response.output_item.done":
            assert d["item"]["id"] == item["id"] and d["item"]["type"] == item["type"], (item, d["item"])
            done_items.append(d["item"])
            del open_items[index]
            final = d["item"]
            if final["type"] == "message":
                texts = [part.get("text") for part in final["content"]]
                assert texts == [deltas.pop((item["id"], i), "") for i in range(len(texts))], (texts, kinds)
            elif final["type"] == "function_call":
                assert final["arguments"] == deltas.pop((item["id"], "arguments"), ""), kinds
            elif final["type"] == "custom_tool_call":
                assert final["input"] == deltas.pop((item["id"], "input"), ""), kinds
            continue
        assert d["item_id"] == item["id"], (kind, d["item_id"], item["id"])
        if kind == "response.output_text.delta":
            key = (item["id"], d["content_index"])
            deltas[key] = deltas.get(key, "") + d["delta"]
        elif kind == "response.output_text.done":
            assert d["text"] == deltas.get((item["id"], d["content_index"]), ""), kinds
        elif kind == "response.content_part.done" and d["part"]["type"] == "output_text":
            assert d["part"]["text"] == deltas.get((item["id"], d["content_index"]), ""), kinds
        elif kind == "response.function_call_arguments.delta":
            key = (item["id"], "arguments")
            deltas[key] = deltas.get(key, "") + d["delta"]
        elif kind == "response.function_call_arguments.done":
            assert d["arguments"] == deltas.get((item["id"], "arguments"), ""), kinds
        elif kind == "response.custom_tool_call_input.delta":
            key = (item["id"], "input")
            deltas[key] = deltas.get(key, "") + d["delta"]
        elif kind == "response.custom_tool_call_input.done":
            assert d["input"] == deltas.get((item["id"], "input"), ""), kinds
    assert not open_items, f"items never done: {open_items}"
    assert data[-1]["response"]["output"] == done_items, kinds


# Each scenario: the proxy fixture, the tool the chat target calls (or None for text), the
# target's finish_reason for a text (None for "stop"), the body.
SCENARIOS = {
    "placeholder-text": ("placeholder_proxy", None, None, {"model": MODEL, "input": "Hello from Python"}),
    "chat-text": ("responses_proxy", None, None, {"model": MODEL, "instructions": "Be brief.", "input": "Hello"}),
    "chat-function-call": ("responses_proxy", ("get_weather", {"city": "Paris"}), None,
                           {"model": MODEL, "input": "Weather in Paris?", "tools": [WEATHER]}),
    "chat-parallel-function-calls": ("responses_proxy", [("get_weather", {"city": "Paris"}), ("get_time", {"city": "Rome"})],
                                     None, {"model": MODEL, "input": "Weather in Paris, time in Rome?",
                                            "tools": [WEATHER, TIME]}),
    "chat-custom-tool-call": ("responses_proxy", ("run_sql", {"input": "SELECT 1"}), None,
                              {"model": MODEL, "input": "Count to one in SQL", "tools": [SQL]}),
    "chat-json-schema": ("responses_proxy", None, None, {"model": MODEL, "input": "Answer in JSON", "text": {
        "format": {"type": "json_schema", "name": "answer", "schema": ANSWER_SCHEMA, "strict": True}}}),
    "chat-cut-short": ("responses_proxy", None, "length", {"model": MODEL, "input": "Hello", "max_output_tokens": 7}),
}


def scenario(request, chat_target, name):
    """The proxy and body of a scenario, and the status its Response must end with."""
    fixture, reply_tool, reply_finish, body = SCENARIOS[name]
    chat_target.reply_tool, chat_target.reply_finish = reply_tool, reply_finish
    return request.getfixturevalue(fixture), body, "incomplete" if reply_finish == "length" else "completed"


# --- the schemas themselves ---------------------------------------------------------------------

def minimal_response():
    return {"id": "resp_e2e", "object": "response", "created_at": 1767225600, "status": "completed", "error": None,
            "incomplete_details": None, "instructions": None, "model": MODEL, "tools": [], "parallel_tool_calls": True,
            "metadata": {}, "tool_choice": "auto", "temperature": 1.0, "top_p": 1.0, "user": None,
            "output": [{"id": "msg_e2e", "type": "message", "role": "assistant", "status": "completed",
                        "content": [{"type": "output_text", "text": "Hi", "annotations": [], "logprobs": []}]}],
            "usage": {"input_tokens": 1, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                      "output_tokens": 1, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 2}}


def test_the_spec_schemas_accept_a_valid_response_and_refuse_broken_ones():
    check_response(minimal_response())
    check_event({"type": "response.completed", "sequence_number": 3, "response": minimal_response()})
    check_event({"type": "response.created", "sequence_number": 0, "response": {**minimal_response(), "usage": None}})
    for broken in ({k: v for k, v in minimal_response().items() if k != "id"},
                   {**minimal_response(), "status": "done"},
                   {**minimal_response(), "output": [{"type": "message", "role": "assistant", "content": "Hi"}]}):
        with pytest.raises(AssertionError):
            check_response(broken)
    with pytest.raises(AssertionError):
        check_event({"type": "response.completed", "response": minimal_response()})
    with pytest.raises(AssertionError):
        check_event({"type": "response.output_text.delta", "sequence_number": 4, "item_id": "msg_e2e",
                     "output_index": 0, "content_index": 0, "delta": 7, "logprobs": []})
    with pytest.raises(AssertionError, match="no stream event of type"):
        check_event({"type": "response.invented", "sequence_number": 0})


# --- every body the proxy sends, against the spec -----------------------------------------------

@pytest.mark.parametrize("name", SCENARIOS)
def test_a_whole_response_matches_the_spec_response_schema_with_the_expected_status(request, chat_target, name):
    proxy, body, ending = scenario(request, chat_target, name)
    status, content_type, raw = post(proxy, body)
    assert status == 200, raw
    assert content_type.startswith("application/json")
    check_response(json.loads(raw))
    assert json.loads(raw)["status"] == ending


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_streamed_event_matches_its_spec_event_schema_up_to_the_expected_terminal_event(request, chat_target, name):
    proxy, body, ending = scenario(request, chat_target, name)
    status, content_type, raw = post(proxy, {**body, "stream": True})
    assert status == 200, raw
    assert content_type.startswith("text/event-stream")
    events = sse_events(raw)
    assert events, raw
    for _, event in events:
        check_event(event)
    assert events[-1][1]["type"] == f"response.{ending}"


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_stream_follows_the_responses_event_grammar(request, chat_target, name):
    proxy, body, _ = scenario(request, chat_target, name)
    status, _, raw = post(proxy, {**body, "stream": True})
    assert status == 200, raw
    check_stream_grammar(sse_events(raw))


def test_a_stored_response_and_its_input_items_match_the_spec_schemas(responses_proxy):
    status, _, raw = post(responses_proxy, {"model": MODEL, "input": "Store me"})
    assert status == 200, raw
    created = json.loads(raw)
    status, _, raw = call(responses_proxy, "GET", f"/responses/{created['id']}")
    assert status == 200, raw
    check_response(json.loads(raw))
    status, _, raw = call(responses_proxy, "GET", f"/responses/{created['id']}/input_items")
    assert status == 200, raw
    check_item_list(json.loads(raw))


REFUSALS = {
    "unknown-previous-response-id": ("POST", "/responses", {"model": MODEL, "input": "x", "previous_response_id": "resp_e2e_unknown"}),
    "built-in-tool": ("POST", "/responses", {"model": MODEL, "input": "x", "tools": [BUILT_IN_TOOLS[0]]}),
    "unknown-response": ("GET", "/responses/resp_e2e_unknown", None),
    "unknown-response-input-items": ("GET", "/responses/resp_e2e_unknown/input_items", None),
    "unknown-response-delete": ("DELETE", "/responses/resp_e2e_unknown", None),
}


@pytest.mark.parametrize("name", REFUSALS)
def test_a_refusal_matches_the_spec_error_schema(responses_proxy, name):
    status, content_type, raw = call(responses_proxy, *REFUSALS[name])
    assert status in (400, 404), raw
    assert content_type.startswith("application/json")
    check_error(json.loads(raw))


# --- the OpenAI SDK in placeholder mode ---------------------------------------------------------

def test_create_in_placeholder_mode_answers_a_completed_message_quoting_the_input_with_usage(placeholder_proxy):
    response = client(placeholder_proxy).responses.create(model=MODEL, input="Hello from Python")
    assert response.object == "response" and response.status == "completed"
    assert response.id.startswith("resp_")
    assert response.output[0].type == "message" and response.output[0].role == "assistant"
    assert "Hello from Python" in response.output_text
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens > 0


def test_stream_in_placeholder_mode_gives_text_deltas_adding_up_to_the_final_response(placeholder_proxy):
    with client(placeholder_proxy).responses.stream(model=MODEL, input="stream please") as stream:
        events = list(stream)
        final = stream.get_final_response()
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert "stream please" in streamed
    assert final.output_text == streamed
    assert final.status == "completed"
    assert events[-1].type == "response.completed" and events[-1].response.id == final.id


# --- the OpenAI SDK in front of a chat-completions target ---------------------------------------

def test_create_through_a_chat_target_maps_instructions_input_max_tokens_temperature_and_usage(responses_proxy, chat_target):
    mark = len(chat_target.received)
    response = client(responses_proxy).responses.create(
        model=MODEL, instructions="Be brief.", input="Hello", max_output_tokens=50, temperature=0.2)
    assert response.output_text == TEXT
    assert response.status == "completed"
    assert response.usage.input_tokens == 21 and response.usage.output_tokens == 7 and response.usage.total_tokens == 28
    (sent,) = sent_since(chat_target, mark)
    assert chat_target.received[-1]["path"] == "/v1/chat/completions"
    assert sent["model"] == MODEL
    assert conversation(sent["messages"]) in ([("system", "Be brief."), ("user", "Hello")],
                                              [("developer", "Be brief."), ("user", "Hello")])
    assert sent.get("max_completion_tokens", sent.get("max_tokens")) == 50
    assert sent["temperature"] == 0.2


def test_stream_through_a_chat_target_gives_the_targets_text_and_usage(responses_proxy, chat_target):
    mark = len(chat_target.received)
    with client(responses_proxy).responses.stream(model=MODEL, input="Hello") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == TEXT
    assert final.output_text == TEXT
    assert final.usage.input_tokens == 21 and final.usage.output_tokens == 7
    (sent,) = sent_since(chat_target, mark)
    assert sent["stream"] is True


def test_create_with_stream_true_yields_typed_events_ending_completed(responses_proxy):
    events = list(client(responses_proxy).responses.create(model=MODEL, input="Hello", stream=True))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == TEXT


def test_function_tool_over_two_turns_sends_chat_functions_then_a_tool_message(responses_proxy, chat_target):
    c = client(responses_proxy)
    chat_target.reply_tool = ("get_weather", {"city": "Paris"})
    mark = len(chat_target.received)
    first = c.responses.create(model=MODEL, input="Weather in Paris?", tools=[WEATHER])
    (call,) = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.call_id == "call_e2e_1"
    assert json.loads(call.arguments) == {"city": "Paris"}
    (sent,) = sent_since(chat_target, mark)
    (tool,) = sent["tools"]
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "get_weather"
    assert tool["function"]["description"] == "Weather in a city"
    assert tool["function"]["parameters"] == WEATHER["parameters"]

    mark = len(chat_target.received)
    second = c.responses.create(model=MODEL, tools=[WEATHER], input=[
        {"role": "user", "content": "Weather in Paris?"},
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "15 C"},
    ])
    assert second.output_text == TEXT
    (sent,) = sent_since(chat_target, mark)
    assert conversation(sent["messages"]) == [
        ("user", "Weather in Paris?"),
        ("assistant", [("get_weather", {"city": "Paris"}, "call_e2e_1")]),
        ("tool", "call_e2e_1", "15 C"),
    ]


def test_a_streamed_function_call_arrives_as_argument_deltas_and_a_function_call_item(responses_proxy, chat_target):
    chat_target.reply_tool = ("get_weather", {"city": "Paris"})
    with client(responses_proxy).responses.stream(model=MODEL, input="Weather?", tools=[WEATHER]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert json.loads(arguments) == {"city": "Paris"}
    (done,) = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert done.arguments == arguments
    (call,) = final.output
    assert call.type == "function_call" and call.name == "get_weather" and call.call_id == "call_e2e_1"
    assert json.loads(call.arguments) == {"city": "Paris"}


def test_parallel_function_calls_come_as_items_and_go_back_as_one_assistant_message(responses_proxy, chat_target):
    c = client(responses_proxy)
    chat_target.reply_tool = [("get_weather", {"city": "Paris"}), ("get_time", {"city": "Rome"})]
    first = c.responses.create(model=MODEL, input="Weather in Paris, time in Rome?", tools=[WEATHER, TIME])
    assert [(item.type, item.name, item.call_id, json.loads(item.arguments)) for item in first.output] == [
        ("function_call", "get_weather", "call_e2e_1", {"city": "Paris"}),
        ("function_call", "get_time", "call_e2e_2", {"city": "Rome"})]
    assert len({item.id for item in first.output}) == 2
    with c.responses.stream(model=MODEL, input="Weather in Paris, time in Rome?", tools=[WEATHER, TIME]) as stream:
        streamed = stream.get_final_response()
    assert [(item.name, item.call_id, item.arguments) for item in streamed.output] == [
        (item.name, item.call_id, item.arguments) for item in first.output]

    mark = len(chat_target.received)
    second = c.responses.create(model=MODEL, tools=[WEATHER, TIME], input=[
        {"role": "user", "content": "Weather in Paris, time in Rome?"},
        *[item.model_dump(exclude_none=True) for item in first.output],
        {"type": "function_call_output", "call_id": "call_e2e_1", "output": "15 C"},
        {"type": "function_call_output", "call_id": "call_e2e_2", "output": "noon"},
    ])
    assert second.output_text == TEXT
    (sent,) = sent_since(chat_target, mark)
    assert conversation(sent["messages"]) == [
        ("user", "Weather in Paris, time in Rome?"),
        ("assistant", [("get_weather", {"city": "Paris"}, "call_e2e_1"), ("get_time", {"city": "Rome"}, "call_e2e_2")]),
        ("tool", "call_e2e_1", "15 C"),
        ("tool", "call_e2e_2", "noon"),
    ]


def test_output_items_replayed_as_input_become_the_chat_history(responses_proxy, chat_target):
    """The stateless way (Codex, store=false): each turn sends the whole conversation back."""
    c = client(responses_proxy)
    first = c.responses.create(model=MODEL, input="Hello", store=False)
    mark = len(chat_target.received)
    c.responses.create(model=MODEL, store=False, input=[
        {"role": "user", "content": [{"type": "input_text", "text": "Hello"}]},
        *[item.model_dump(exclude_none=True) for item in first.output],
        {"role": "user", "content": [{"type": "input_text", "text": "Again"}]},
    ])
    (sent,) = sent_since(chat_target, mark)
    assert conversation(sent["messages"]) == [("user", "Hello"), ("assistant", TEXT), ("user", "Again")]


def test_an_input_image_reaches_the_target_as_a_chat_image_url_part(responses_proxy, chat_target):
    url = "data:image/png;base64,iVBORw0KGgo="
    mark = len(chat_target.received)
    client(responses_proxy).responses.create(model=MODEL, input=[{"role": "user", "content": [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": url, "detail": "low"}]}])
    (sent,) = sent_since(chat_target, mark)
    (message,) = sent["messages"]
    assert message["role"] == "user"
    assert message["content"] == [{"type": "text", "text": "What is this?"},
                                  {"type": "image_url", "image_url": {"url": url, "detail": "low"}}]


def test_a_wrong_key_raises_authentication_error_for_responses(responses_proxy, chat_target):
    mark = len(chat_target.received)
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=responses_proxy.base_url, api_key="sk-wrong-key-123456", max_retries=0).responses.create(
            model=MODEL, input="x")
    assert sent_since(chat_target, mark) == []


def test_a_custom_tool_is_offered_as_a_function_with_one_string_input_and_answered_as_a_custom_tool_call(
        responses_proxy, chat_target):
    c = client(responses_proxy)
    chat_target.reply_tool = ("run_sql", {"input": "SELECT 1"})
    mark = len(chat_target.received)
    first = c.responses.create(model=MODEL, input="Count to one in SQL", tools=[SQL])
    (call,) = first.output
    assert call.type == "custom_tool_call" and call.name == "run_sql"
    assert call.input == "SELECT 1" and call.call_id == "call_e2e_1"
    (sent,) = sent_since(chat_target, mark)
    (tool,) = sent["tools"]
    assert tool["type"] == "function" and tool["function"]["name"] == "run_sql"
    parameters = tool["function"]["parameters"]
    assert parameters["type"] == "object" and parameters["required"] == ["input"]
    assert list(parameters["properties"]) == ["input"] and parameters["properties"]["input"]["type"] == "string"

    mark = len(chat_target.received)
    second = c.responses.create(model=MODEL, tools=[SQL], input=[
        {"role": "user", "content": "Count to one in SQL"},
        call.model_dump(exclude_none=True),
        {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "1"},
    ])
    assert second.output_text == TEXT
    (sent,) = sent_since(chat_target, mark)
    assert conversation(sent["messages"]) == [
        ("user", "Count to one in SQL"),
        ("assistant", [("run_sql", {"input": "SELECT 1"}, "call_e2e_1")]),
        ("tool", "call_e2e_1", "1"),
    ]


def test_a_streamed_custom_tool_call_arrives_as_input_deltas(responses_proxy, chat_target):
    chat_target.reply_tool = ("run_sql", {"input": "SELECT 1"})
    with client(responses_proxy).responses.stream(model=MODEL, input="SQL?", tools=[SQL]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert "".join(e.delta for e in events if e.type == "response.custom_tool_call_input.delta") == "SELECT 1"
    (call,) = final.output
    assert call.type == "custom_tool_call" and call.input == "SELECT 1" and call.call_id == "call_e2e_1"


def test_previous_response_id_sends_the_stored_turns_before_the_new_input(responses_proxy, chat_target):
    c = client(responses_proxy)
    first = c.responses.create(model=MODEL, instructions="Be brief.", input="My name is Ada.")
    mark = len(chat_target.received)
    second = c.responses.create(model=MODEL, previous_response_id=first.id, input="What is my name?")
    assert second.output_text == TEXT
    assert second.previous_response_id == first.id
    (sent,) = sent_since(chat_target, mark)
    # Instructions are not carried over from the previous response (OpenAI's documented rule).
    assert conversation(sent["messages"]) == [("user", "My name is Ada."), ("assistant", TEXT), ("user", "What is my name?")]


def test_previous_response_id_with_a_function_call_output_continues_the_call(responses_proxy, chat_target):
    c = client(responses_proxy)
    chat_target.reply_tool = ("get_weather", {"city": "Paris"})
    first = c.responses.create(model=MODEL, input="Weather in Paris?", tools=[WEATHER])
    (call,) = first.output
    mark = len(chat_target.received)
    second = c.responses.create(model=MODEL, previous_response_id=first.id, tools=[WEATHER], input=[
        {"type": "function_call_output", "call_id": call.call_id, "output": "15 C"}])
    assert second.output_text == TEXT
    (sent,) = sent_since(chat_target, mark)
    assert conversation(sent["messages"]) == [
        ("user", "Weather in Paris?"),
        ("assistant", [("get_weather", {"city": "Paris"}, "call_e2e_1")]),
        ("tool", "call_e2e_1", "15 C"),
    ]


def test_a_streamed_response_is_stored_and_can_be_continued(responses_proxy, chat_target):
    c = client(responses_proxy)
    with c.responses.stream(model=MODEL, input="Remember 42.") as stream:
        final = stream.get_final_response()
    assert c.responses.retrieve(final.id).output_text == TEXT
    mark = len(chat_target.received)
    c.responses.create(model=MODEL, previous_response_id=final.id, input="What number?")
    (sent,) = sent_since(chat_target, mark)
    assert conversation(sent["messages"]) == [("user", "Remember 42."), ("assistant", TEXT), ("user", "What number?")]


def test_text_format_json_schema_reaches_the_target_as_response_format_json_schema(responses_proxy, chat_target):
    mark = len(chat_target.received)
    response = client(responses_proxy).responses.create(model=MODEL, input="Answer in JSON", text={
        "format": {"type": "json_schema", "name": "answer", "schema": ANSWER_SCHEMA, "strict": True}})
    assert response.output_text == TEXT
    assert response.text.format.type == "json_schema" and response.text.format.name == "answer"
    (sent,) = sent_since(chat_target, mark)
    assert sent["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": ANSWER_SCHEMA, "strict": True}}


def test_a_target_cut_short_at_max_tokens_gives_an_incomplete_response(responses_proxy, chat_target):
    chat_target.reply_finish = "length"
    c = client(responses_proxy)
    whole = c.responses.create(model=MODEL, input="Hello", max_output_tokens=7)
    assert whole.status == "incomplete" and whole.incomplete_details.reason == "max_output_tokens"
    assert whole.output_text == TEXT
    with c.responses.stream(model=MODEL, input="Hello", max_output_tokens=7) as stream:
        events = list(stream)
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"


@pytest.mark.parametrize("choice,sent", [
    ("required", "required"),
    ("none", "none"),
    ({"type": "function", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
], ids=["required", "none", "function"])
def test_tool_choice_and_parallel_tool_calls_reach_the_target_in_chat_form(responses_proxy, chat_target, choice, sent):
    mark = len(chat_target.received)
    client(responses_proxy).responses.create(model=MODEL, input="Weather?", tools=[WEATHER], tool_choice=choice,
                                             parallel_tool_calls=False)
    (body,) = sent_since(chat_target, mark)
    assert body["tool_choice"] == sent
    assert body["parallel_tool_calls"] is False


def test_retrieve_and_input_items_give_the_stored_response_and_its_input_until_deleted(responses_proxy):
    c = client(responses_proxy)
    created = c.responses.create(model=MODEL, instructions="Be brief.", input="Keep this")
    retrieved = c.responses.retrieve(created.id)
    assert retrieved.id == created.id and retrieved.status == "completed"
    assert retrieved.output_text == created.output_text == TEXT
    assert [item.id for item in retrieved.output] == [item.id for item in created.output]
    items = c.responses.input_items.list(created.id).data
    assert [(item.type, item.role) for item in items] == [("message", "user")]
    assert [part.text for part in items[0].content] == ["Keep this"]
    assert items[0].id
    assert c.responses.delete(created.id) is None
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        c.responses.input_items.list(created.id)
    with pytest.raises(openai.NotFoundError):
        c.responses.delete(created.id)


def test_input_items_list_newest_first_by_default_and_oldest_first_when_asked(responses_proxy):
    c = client(responses_proxy)
    created = c.responses.create(model=MODEL, input=[{"role": "user", "content": "one"},
                                                     {"role": "assistant", "content": "two"},
                                                     {"role": "user", "content": "three"}])
    texts = lambda page: [item.content[0].text for item in page.data]  # noqa: E731
    assert texts(c.responses.input_items.list(created.id, order="asc")) == ["one", "two", "three"]
    # OpenAI's default order is newest first.
    assert texts(c.responses.input_items.list(created.id)) == ["three", "two", "one"]


def test_input_items_page_by_limit_through_every_item(responses_proxy):
    c = client(responses_proxy)
    created = c.responses.create(model=MODEL, input=[{"role": "user", "content": word} for word in "abcd"])
    first_page = c.responses.input_items.list(created.id, limit=1)
    assert len(first_page.data) == 1 and first_page.has_more
    # The SDK follows `after` = the page's last id until has_more is false.
    assert [item.content[0].text for item in first_page] == ["d", "c", "b", "a"]
    assert [item.content[0].text for item in c.responses.input_items.list(created.id, limit=3, order="asc")] == list("abcd")


def test_a_response_with_store_false_cannot_be_retrieved(responses_proxy):
    c = client(responses_proxy)
    created = c.responses.create(model=MODEL, input="Forget this", store=False)
    assert created.output_text == TEXT
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(created.id)


def test_an_unknown_previous_response_id_raises_bad_request_naming_it_without_calling_the_target(
        responses_proxy, chat_target):
    # OpenAI answers 400 invalid_request_error, code previous_response_not_found (not GET's 404).
    mark = len(chat_target.received)
    with pytest.raises(openai.BadRequestError) as raised:
        client(responses_proxy).responses.create(model=MODEL, input="x", previous_response_id="resp_e2e_unknown")
    assert raised.value.status_code == 400
    assert raised.value.param == "previous_response_id"
    assert raised.value.code == "previous_response_not_found"
    assert "resp_e2e_unknown" in raised.value.message
    assert sent_since(chat_target, mark) == []


@pytest.mark.parametrize("tool", BUILT_IN_TOOLS, ids=[t["type"] for t in BUILT_IN_TOOLS])
def test_a_built_in_tool_raises_bad_request_naming_it_without_calling_the_target(responses_proxy, chat_target, tool):
    mark = len(chat_target.received)
    with pytest.raises(openai.BadRequestError) as raised:
        client(responses_proxy).responses.create(model=MODEL, input="x", tools=[tool])
    assert raised.value.status_code == 400
    assert tool["type"] in raised.value.message
    assert sent_since(chat_target, mark) == []


def test_web_search_is_left_out_of_what_the_target_gets_and_the_answer_still_comes(responses_proxy, chat_target):
    mark = len(chat_target.received)
    response = client(responses_proxy).responses.create(
        model=MODEL, input="x", tools=[{"type": "web_search", "external_web_access": False}, WEATHER])
    assert response.output_text == TEXT
    [sent] = sent_since(chat_target, mark)
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["get_weather"]


def test_a_target_refusal_raises_bad_request_with_the_targets_message_whole_and_streamed(responses_proxy, chat_target):
    # The strict target refuses reasoning_effort for a model that is not a reasoning model, as OpenAI does.
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as raised:
            client(responses_proxy).responses.create(model=MODEL, input="x", reasoning={"effort": "low"}, stream=stream)
        assert "reasoning_effort" in raised.value.message, stream


# --- through the other target APIs (Anthropic, Gemini, Ollama), by way of chat completions ------

# Each target API: its proxy fixture, its target fixture, the target's attribute scripting a tool
# call, and a model it serves.
FOREIGN = {
    "anthropic": ("anthropic_proxy", "anthropic_target", "reply_tool", "claude-sonnet-4-5"),
    "gemini": ("gemini_proxy", "gemini_target", "reply_call", "gemini-2.5-flash"),
    "ollama": ("ollama_proxy", "ollama_target", "reply_tool", "llama3.2"),
}


@pytest.fixture(params=FOREIGN)
def foreign(request):
    """(proxy, the target's scripting function, the target's text, model) for one target API."""
    proxy_fixture, target_fixture, attribute, model = FOREIGN[request.param]
    target = request.getfixturevalue(target_fixture)

    def reply_tool(tool):
        setattr(target, attribute, tool)

    reply_tool(None)
    yield request.getfixturevalue(proxy_fixture), reply_tool, sys.modules[target.__module__].TEXT, model
    reply_tool(None)


def test_a_function_call_and_its_output_over_two_turns_through_each_target_api(foreign):
    proxy, reply_tool, text, model = foreign
    reply_tool(("get_weather", {"city": "Paris"}))
    status, _, raw = post(proxy, {"model": model, "input": "Weather in Paris?", "tools": [WEATHER]})
    assert status == 200, raw
    first = json.loads(raw)
    check_response(first)
    (call,) = first["output"]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == {"city": "Paris"}
    reply_tool(None)
    status, _, raw = post(proxy, {"model": model, "tools": [WEATHER], "input": [
        {"role": "user", "content": "Weather in Paris?"}, call,
        {"type": "function_call_output", "call_id": call["call_id"], "output": "15 C"}]})
    assert status == 200, raw
    second = json.loads(raw)
    check_response(second)
    assert [part["text"] for item in second["output"] for part in item["content"]] == [text]


@pytest.mark.parametrize("tool", [None, ("get_weather", {"city": "Paris"})], ids=["text", "function-call"])
def test_a_stream_through_each_target_api_matches_the_spec_schemas_and_the_event_grammar(foreign, tool):
    proxy, reply_tool, text, model = foreign
    reply_tool(tool)
    status, _, raw = post(proxy, {"model": model, "input": "Weather in Paris?", "tools": [WEATHER], "stream": True})
    assert status == 200, raw
    events = sse_events(raw)
    for _, event in events:
        check_event(event)
    check_stream_grammar(events)
    (item,) = events[-1][1]["response"]["output"]
    if tool:
        assert item["type"] == "function_call" and json.loads(item["arguments"]) == {"city": "Paris"}
    else:
        assert item["type"] == "message" and item["content"][0]["text"] == text


# --- the OpenAI Agents SDK ----------------------------------------------------------------------

def agents_run(proxy, streamed, paths):
    """Runs an agent with the Agents SDK's default (Responses) model and one function tool:
    (the tool's calls, the final output)."""
    from agents import Agent, RunConfig, Runner, function_tool, set_tracing_disabled
    from agents.models.openai_provider import OpenAIProvider

    set_tracing_disabled(True)
    calls = []

    @function_tool
    def get_weather(city: str) -> str:
        """Weather in a city."""
        calls.append(city)
        return f"15 C in {city}"

    async def record(request):
        paths.append((request.method, request.url.path))

    async def run():
        openai_client = openai.AsyncOpenAI(
            base_url=proxy.base_url, api_key=proxy.token, max_retries=0, timeout=30,
            http_client=openai.DefaultAsyncHttpxClient(event_hooks={"request": [record]}))
        config = RunConfig(model_provider=OpenAIProvider(openai_client=openai_client), tracing_disabled=True)
        agent = Agent(name="Weather", instructions="Answer with the weather.", tools=[get_weather])
        if streamed:
            result = Runner.run_streamed(agent, "Weather in Paris?", run_config=config)
            async for _ in result.stream_events():
                pass
        else:
            result = await Runner.run(agent, "Weather in Paris?", run_config=config)
        return result.final_output

    return calls, asyncio.run(run())


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_streamed"])
def test_agents_sdk_runs_its_function_tool_then_answers_through_a_chat_target(responses_proxy, chat_target, streamed):
    chat_target.reply_tool = ("get_weather", {"city": "Paris"})
    mark = len(chat_target.received)
    paths = []
    calls, output = agents_run(responses_proxy, streamed, paths)
    assert calls == ["Paris"]
    assert output == TEXT
    assert paths == [("POST", "/v1/responses")] * 2
    first, second = sent_since(chat_target, mark)
    assert [t["function"]["name"] for t in first["tools"]] == ["get_weather"]
    assert bool(first.get("stream")) is streamed
    assert conversation(second["messages"])[-2:] == [
        ("assistant", [("get_weather", {"city": "Paris"}, "call_e2e_1")]),
        ("tool", "call_e2e_1", "15 C in Paris"),
    ]
