"""The official OpenAI Python SDK against a proxy with TARGET_API=anthropic, in front of a
target that validates requests as Anthropic's API does."""
import base64
import json

import openai
import pytest
from openai import OpenAI

from anthropic_target import TEXT

TOOLS = [{"type": "function", "function": {"name": "weather", "description": "Weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def client(proxy):
    return OpenAI(base_url=proxy.base_url, api_key=proxy.token, max_retries=0)


@pytest.fixture(autouse=True)
def text_replies(anthropic_target):
    anthropic_target.reply_tool = None
    yield


def test_chat_reaches_anthropic_and_parses_as_openai(anthropic_proxy, anthropic_target):
    reply = client(anthropic_proxy).chat.completions.create(
        model="claude-sonnet-4-5",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}])
    assert reply.choices[0].message.content == TEXT
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens == 12
    sent = anthropic_target.received[-1]["body"]
    assert sent["system"] == "Be brief." and sent["max_tokens"] == 4096


def test_stream_parses_as_openai_chunks(anthropic_proxy):
    stream = client(anthropic_proxy).chat.completions.create(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "Hello"}], stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == TEXT


def test_tools_over_two_turns(anthropic_proxy, anthropic_target):
    c = client(anthropic_proxy)
    anthropic_target.reply_tool = ("weather", {"city": "Paris"})
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    first = c.chat.completions.create(model="claude", messages=messages, tools=TOOLS)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    anthropic_target.reply_tool = None
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "15C"}]
    second = c.chat.completions.create(model="claude", messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == TEXT


def test_streamed_tool_call(anthropic_proxy, anthropic_target):
    anthropic_target.reply_tool = ("weather", {"city": "Rome"})
    stream = client(anthropic_proxy).chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "Rome?"}], tools=TOOLS, stream=True)
    arguments = ""
    for chunk in stream:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            arguments += call.function.arguments or ""
    assert json.loads(arguments) == {"city": "Rome"}


def test_image_as_a_data_url(anthropic_proxy, anthropic_target):
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    client(anthropic_proxy).chat.completions.create(model="claude", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}]}])
    block = anthropic_target.received[-1]["body"]["messages"][0]["content"][1]
    assert block["source"] == {"type": "base64", "media_type": "image/png", "data": png}


@pytest.mark.parametrize("param,value", [("n", 2), ("logprobs", True), ("seed", 7)])
def test_unsupported_parameters_are_a_400_naming_them(anthropic_proxy, param, value):
    with pytest.raises(openai.BadRequestError) as raised:
        client(anthropic_proxy).chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "x"}], **{param: value})
    assert raised.value.param == param
    assert raised.value.code == "unsupported_parameter"


def test_json_mode_is_a_400_naming_response_format(anthropic_proxy):
    with pytest.raises(openai.BadRequestError) as raised:
        client(anthropic_proxy).chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "x"}], response_format={"type": "json_object"})
    assert raised.value.param == "response_format"
