"""The official OpenAI Python SDK against a proxy with TARGET_API=gemini, in front of a target
that validates requests as Google's Gemini API does."""
import base64
import json

import openai
import pytest
from openai import OpenAI

from gemini_target import TEXT

MODEL = "gemini-2.5-flash"
TOOLS = [{"type": "function", "function": {"name": "weather", "description": "Weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def client(proxy):
    return OpenAI(base_url=proxy.base_url, api_key=proxy.token, max_retries=0)


@pytest.fixture(autouse=True)
def text_replies(gemini_target):
    gemini_target.reply_call = None
    yield


def test_chat_reaches_gemini_and_parses_as_openai(gemini_proxy, gemini_target):
    reply = client(gemini_proxy).chat.completions.create(
        model=MODEL, messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}])
    assert reply.choices[0].message.content == TEXT
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens == 12
    sent = gemini_target.received[-1]
    assert sent["path"] == f"/v1beta/models/{MODEL}:generateContent"
    assert sent["headers"]["x-goog-api-key"] == "gemini-e2e-target-key-0007"
    assert "authorization" not in {name.lower() for name in sent["headers"]}
    assert sent["body"]["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert sent["body"]["contents"] == [{"role": "user", "parts": [{"text": "Hello"}]}]


def test_stream_parses_as_openai_chunks(gemini_proxy, gemini_target):
    stream = client(gemini_proxy).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hello"}], stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == TEXT
    sent = gemini_target.received[-1]
    assert sent["path"] == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert "alt=sse" in sent["query"]


def test_tools_over_two_turns(gemini_proxy, gemini_target):
    c = client(gemini_proxy)
    gemini_target.reply_call = ("weather", {"city": "Paris"})
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    first = c.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    gemini_target.reply_call = None
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "15C"}]
    second = c.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == TEXT
    contents = gemini_target.received[-1]["body"]["contents"]
    assert contents[1]["parts"] == [{"functionCall": {"name": "weather", "args": {"city": "Paris"}}}]
    assert contents[2]["parts"] == [{"functionResponse": {"name": "weather", "response": {"content": "15C"}}}]


def test_image_as_a_data_url(gemini_proxy, gemini_target):
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    client(gemini_proxy).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}]}])
    part = gemini_target.received[-1]["body"]["contents"][0]["parts"][1]
    assert part == {"inlineData": {"mimeType": "image/png", "data": png}}


def test_json_schema_mode(gemini_proxy, gemini_target):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    client(gemini_proxy).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "A city, as JSON"}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "strict": True, "schema": schema}})
    config = gemini_target.received[-1]["body"]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == schema


@pytest.mark.parametrize("param,value", [("logprobs", True), ("logit_bias", {"1": 5}), ("top_logprobs", 2)])
def test_unsupported_parameters_are_a_400_naming_them(gemini_proxy, gemini_target, param, value):
    before = len(gemini_target.received)
    with pytest.raises(openai.BadRequestError) as raised:
        client(gemini_proxy).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}], **{param: value})
    assert raised.value.param == param
    assert "TARGET_API=gemini" in raised.value.message
    assert len(gemini_target.received) == before


def test_model_list_comes_from_gemini(gemini_proxy):
    ids = [model.id for model in client(gemini_proxy).models.list()]
    assert MODEL in ids
