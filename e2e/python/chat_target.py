"""A target that speaks only OpenAI's chat completions and refuses what OpenAI refuses: unknown
request arguments, roles it does not have, tool messages that answer no call of the message
before them, arguments that are not JSON text. It answers with a text, or, when
`ChatTarget.reply_tool` names a tool the request offers and the conversation does not end with
a tool result, with a call of it (a list of them names several tools, called at once, with ids
call_e2e_1, call_e2e_2...); whole or streamed (usage last, when asked for). A text answer is
`ChatTarget.reply_text` when set (aider reads shell commands from its answer's text), else TEXT,
and ends with `ChatTarget.reply_finish` when set ("length": cut short at max_tokens), else "stop"."""
import http.server
import json
import re
import threading

KEY = "chat-e2e-target-key-0011"
TEXT = "Hello from the chat target."
ALLOWED = {"model", "messages", "max_tokens", "max_completion_tokens", "stream", "stream_options",
           "temperature", "top_p", "stop", "tools", "tool_choice", "parallel_tool_calls", "user",
           "reasoning_effort", "response_format", "seed", "n", "presence_penalty", "frequency_penalty",
           "logit_bias", "logprobs", "top_logprobs", "metadata", "store", "service_tier",
           "prompt_cache_key", "safety_identifier", "verbosity"}
ROLES = {"system", "developer", "user", "assistant", "tool"}


class Invalid(Exception):
    pass


def validate(body):
    for field in body:
        if field not in ALLOWED:
            raise Invalid(f"Unrecognized request argument supplied: {field}")
    # Only the reasoning models take an effort; OpenAI refuses it for the others (gpt-4.1...).
    if "reasoning_effort" in body and not re.match(r"(o\d|gpt-5)", body.get("model", "")):
        raise Invalid("Unsupported parameter: 'reasoning_effort' is not supported with this model.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Invalid("[] is too short - 'messages'")
    open_calls = set()
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ROLES:
            raise Invalid(f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.")
        if role == "tool":
            if message.get("tool_call_id") not in open_calls:
                raise Invalid(f"Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.")
            open_calls.discard(message["tool_call_id"])
            continue
        if open_calls:
            raise Invalid("An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. "
                          f"The following tool_call_ids did not have response messages: {', '.join(sorted(open_calls))}")
        for call in message.get("tool_calls") or []:
            arguments = call.get("function", {}).get("arguments")
            if not isinstance(arguments, str):
                raise Invalid(f"Invalid type for 'messages[{i}].tool_calls[0].function.arguments': expected a string.")
            json.loads(arguments)
            open_calls.add(call["id"])
    if open_calls:
        raise Invalid("An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'.")


class ChatTarget(http.server.BaseHTTPRequestHandler):
    received = []
    reply_tool = None  # (name, arguments), or a list of them, for the next answers, or None for text
    reply_finish = None  # the finish_reason of the next text answers, or None for "stop"
    reply_text = None  # the content of the next text answers, or None for TEXT

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        ChatTarget.received.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
        if self.path != "/v1/chat/completions":
            return self.send(404, {"error": {"message": f"Unknown path {self.path}", "type": "invalid_request_error", "param": None, "code": None}})
        if self.headers.get("authorization") != f"Bearer {KEY}":
            return self.send(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})
        try:
            validate(body)
        except (Invalid, ValueError) as problem:
            return self.send(400, {"error": {"message": str(problem), "type": "invalid_request_error", "param": None, "code": None}})
        usage = {"prompt_tokens": 21, "completion_tokens": 7, "total_tokens": 28}
        offered = {tool.get("function", {}).get("name") for tool in body.get("tools") or []}
        replies = ChatTarget.reply_tool
        replies = replies if isinstance(replies, list) else [replies] if replies else []
        calls = replies and all(name in offered for name, _ in replies)
        if calls and body["messages"][-1].get("role") != "tool":
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": f"call_e2e_{k}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
                for k, (name, arguments) in enumerate(replies, 1)]}
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": ChatTarget.reply_text or TEXT}
            finish = ChatTarget.reply_finish or "stop"
        if body.get("stream"):
            return self.stream(body, message, finish, usage)
        self.send(200, {"id": "chatcmpl-e2e", "object": "chat.completion", "created": 1767225600, "model": body["model"],
                        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}], "usage": usage})

    def stream(self, body, message, finish, usage):
        base = {"id": "chatcmpl-e2e", "object": "chat.completion.chunk", "created": 1767225600, "model": body["model"]}
        chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
        for k, call in enumerate(message.get("tool_calls") or []):
            arguments = call["function"]["arguments"]
            chunks.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": k, "id": call["id"], "type": "function",
                           "function": {"name": call["function"]["name"], "arguments": ""}}]}, "finish_reason": None}]})
            for at in range(0, len(arguments), 5):
                chunks.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": k, "function": {"arguments": arguments[at:at + 5]}}]}, "finish_reason": None}]})
        if not message.get("tool_calls"):
            for word in message["content"].split(" "):
                piece = word if len(chunks) == 1 else " " + word
                chunks.append({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**base, "choices": [], "usage": usage})
        data = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("content-length", str(len(data.encode())))
        self.end_headers()
        self.wfile.write(data.encode())

    def send(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def start():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ChatTarget)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
