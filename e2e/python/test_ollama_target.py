"""The official OpenAI Python SDK against a proxy with TARGET_API=ollama, in front of a target
that decodes requests as Ollama's server does and refuses what it would silently ignore."""
import base64
import json

import openai
import pytest
from openai import OpenAI

from ollama_target import EVAL_COUNT, KEY, MODELS, PIECES, PROMPT_EVAL_COUNT, TEXT

TOOLS = [{"type": "function", "function": {"name": "weather", "description": "Weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def client(proxy):
    return OpenAI(base_url=proxy.base_url, api_key=proxy.token, max_retries=0, timeout=30)


@pytest.fixture(autouse=True)
def text_replies(ollama_target):
    ollama_target.reply_tool = None
    yield


def last_chat(target):
    return [r for r in target.received if r["path"] == "/api/chat"][-1]


def test_chat_reaches_ollama_api_chat_and_parses_as_openai(ollama_proxy, ollama_target):
    reply = client(ollama_proxy).chat.completions.create(
        model="llama3.2", max_tokens=40,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}])
    assert reply.choices[0].message.content == TEXT
    assert reply.choices[0].finish_reason == "stop"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (PROMPT_EVAL_COUNT, EVAL_COUNT)
    sent = last_chat(ollama_target)
    assert sent["headers"]["authorization"] == f"Bearer {KEY}"
    assert sent["body"]["stream"] is False
    assert sent["body"]["options"]["num_predict"] == 40
    assert sent["body"]["messages"][0] == {"role": "system", "content": "Be brief."}


def test_stream_parses_as_openai_chunks(ollama_proxy, ollama_target):
    stream = client(ollama_proxy).chat.completions.create(
        model="llama3.2", messages=[{"role": "user", "content": "Hello"}], stream=True)
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "".join(PIECES) == TEXT
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert last_chat(ollama_target)["body"]["stream"] is True


def test_tools_over_two_turns_send_object_arguments_and_the_tool_name(ollama_proxy, ollama_target):
    c = client(ollama_proxy)
    ollama_target.reply_tool = ("weather", {"city": "Paris"})
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    first = c.chat.completions.create(model="llama3.2", messages=messages, tools=TOOLS)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.id
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    ollama_target.reply_tool = None
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "15C"}]
    second = c.chat.completions.create(model="llama3.2", messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == TEXT
    history = last_chat(ollama_target)["body"]["messages"]
    assert history[1]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
    assert history[2] == {"role": "tool", "content": "15C", "tool_name": "weather"}


def test_streamed_tool_call(ollama_proxy, ollama_target):
    ollama_target.reply_tool = ("weather", {"city": "Rome"})
    stream = client(ollama_proxy).chat.completions.create(
        model="llama3.2", messages=[{"role": "user", "content": "Rome?"}], tools=TOOLS, stream=True)
    arguments = ""
    for chunk in stream:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            arguments += call.function.arguments or ""
    assert json.loads(arguments) == {"city": "Rome"}


def test_image_data_url_reaches_ollama_as_bare_base64(ollama_proxy, ollama_target):
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    client(ollama_proxy).chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}]}])
    message = last_chat(ollama_target)["body"]["messages"][0]
    assert message == {"role": "user", "content": "What is this?", "images": [png]}


def test_json_mode_reaches_ollama_as_format(ollama_proxy, ollama_target):
    c = client(ollama_proxy)
    c.chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": "x"}],
                              response_format={"type": "json_object"})
    assert last_chat(ollama_target)["body"]["format"] == "json"
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    c.chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": "x"}],
                              response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": schema}})
    assert last_chat(ollama_target)["body"]["format"] == schema


def test_models_come_from_api_tags(ollama_proxy):
    models = client(ollama_proxy).models.list()
    assert [m.id for m in models.data] == list(MODELS)


@pytest.mark.parametrize("param,value", [("n", 2), ("logprobs", True), ("logit_bias", {"1": 5}),
                                         ("tool_choice", "required")])
def test_unsupported_parameters_are_a_400_naming_them(ollama_proxy, ollama_target, param, value):
    before = len(ollama_target.received)
    with pytest.raises(openai.BadRequestError) as raised:
        client(ollama_proxy).chat.completions.create(
            model="llama3.2", messages=[{"role": "user", "content": "x"}], tools=TOOLS, **{param: value})
    assert raised.value.param == param
    assert raised.value.code == "unsupported_parameter"
    assert "TARGET_API=ollama" in raised.value.message
    assert len(ollama_target.received) == before
