"""The official OpenAI Python SDK against the running proxy: what users' tools do."""
import json

import openai
import pytest
from openai import OpenAI


def client(proxy, key=None):
    return OpenAI(base_url=proxy.base_url, api_key=key or proxy.token, max_retries=0, timeout=30)


def test_chat_completion(proxy):
    response = client(proxy).chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello from Python"}],
        temperature=0.2,
    )
    assert response.object == "chat.completion"
    assert response.choices[0].finish_reason == "stop"
    assert "Hello from Python" in response.choices[0].message.content
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


def test_chat_stream_with_usage(proxy):
    stream = client(proxy).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "stream please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "stream please" in text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0


def test_completions(proxy):
    response = client(proxy).completions.create(model="gpt-3.5-turbo-instruct", prompt="Say this is a test")
    assert response.object == "text_completion"
    assert "Say this is a test" in response.choices[0].text


def test_embeddings_default_base64_and_float(proxy):
    c = client(proxy)
    # The SDK asks for base64 by default and decodes it.
    default = c.embeddings.create(model="text-embedding-3-small", input=["one", "two"], dimensions=16)
    floats = c.embeddings.create(
        model="text-embedding-3-small", input=["one", "two"], dimensions=16, encoding_format="float"
    )
    assert [len(d.embedding) for d in default.data] == [16, 16]
    for a, b in zip(default.data, floats.data):
        assert a.embedding == pytest.approx(b.embedding, abs=1e-6)
    assert default.data[0].embedding != default.data[1].embedding


def test_models(proxy):
    c = client(proxy)
    ids = [m.id for m in c.models.list()]
    assert "gpt-4o" in ids
    assert c.models.retrieve("gpt-4o").id == "gpt-4o"
    # Any id is a model without a target, as the original project answered.
    assert c.models.retrieve("gpt-4").id == "gpt-4"


def test_wrong_key_raises_authentication_error(proxy):
    with pytest.raises(openai.AuthenticationError) as raised:
        client(proxy, key="sk-wrong-key-123456").models.list()
    assert raised.value.status_code == 401
    assert raised.value.code == "invalid_api_key"
    assert "sk-wrong-key-123456" not in str(raised.value)


def test_bad_parameter_raises_bad_request(proxy):
    with pytest.raises(openai.BadRequestError) as raised:
        client(proxy).embeddings.create(model="m", input="x", encoding_format="hex")
    assert raised.value.param == "encoding_format"


# Each foreign format, as the target answers it, reaches the SDK as OpenAI: (model, expected text).
FOREIGN = [
    ("anthropic", "Let me check."),
    ("gemini", "Hello there"),
    ("cohere-v2", "Hi there"),
    ("tgi", "Deep learning is a subset"),
    ("ollama-generate", "The sky is blue."),
    ("vllm", "Answer"),
    ("openai-gaps", "Just text, no message"),
]
FOREIGN_STREAMS = [
    ("anthropic", "Let me check."),
    ("gemini", "Hello"),
    ("cohere-v2", "Hi there"),
    ("tgi", "Deep learning"),
    ("ollama", "The sky"),
    ("azure", "Azure says hi"),
    ("openai-no-done", "Old TGI"),
]


@pytest.mark.parametrize("model,text", FOREIGN)
def test_foreign_formats_parse_as_openai(foreign_proxy, model, text):
    response = client(foreign_proxy).chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert response.object == "chat.completion"
    assert response.choices[0].message.content == text
    assert response.choices[0].finish_reason in ("stop", "length", "tool_calls", "content_filter")


@pytest.mark.parametrize("model,text", FOREIGN_STREAMS)
def test_foreign_streams_parse_as_openai(foreign_proxy, model, text):
    stream = client(foreign_proxy).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].usage is not None


def test_foreign_tool_calls_parse_as_openai(foreign_proxy):
    response = client(foreign_proxy).chat.completions.create(model="anthropic", messages=[{"role": "user", "content": "hi"}])
    call = response.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    stream = client(foreign_proxy).chat.completions.create(model="anthropic", messages=[{"role": "user", "content": "hi"}], stream=True)
    arguments = "".join(
        c.choices[0].delta.tool_calls[0].function.arguments or ""
        for c in stream
        if c.choices and c.choices[0].delta.tool_calls
    )
    assert json.loads(arguments) == {"city": "Paris"}
