"""A target speaking Anthropic's Messages API that refuses what the real API refuses (the rules
the proxy's translation must respect), answering with Anthropic's own error envelope."""
import http.server
import re
import json
import threading

KEY = "sk-ant-e2e-target-key-0004"
TEXT = "Hello from the Anthropic target."
ALLOWED = {"model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature",
           "top_p", "top_k", "tools", "tool_choice", "metadata", "thinking", "service_tier"}


class Invalid(Exception):
    pass


def validate(body):
    """Raises Invalid with the API's wording for what it would reject."""
    for field in body:
        if field not in ALLOWED:
            raise Invalid(f"{field}: Extra inputs are not permitted")
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        raise Invalid("max_tokens: Field required")
    messages = body.get("messages") or []
    if not messages:
        raise Invalid("messages: at least one message is required")
    pending = set()  # tool_use ids the next user turn must answer
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise Invalid(f'messages.{i}.role: Input should be "user" or "assistant"')
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if role == "user":
            results = [b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"]
            if pending and set(results) != pending:
                raise Invalid(f"messages.{i}: tool_use ids were found without tool_result blocks immediately after: {sorted(pending - set(results))}")
            if results and blocks[: len(results)] != [b for b in blocks if b.get("type") == "tool_result"]:
                raise Invalid(f"messages.{i}: tool_result blocks must come first")
            if not pending and results:
                raise Invalid(f"messages.{i}.content.0: unexpected `tool_use_id` found in `tool_result` blocks")
            pending = set()
        else:
            pending = {b["id"] for b in blocks if b.get("type") == "tool_use"}
            for b in blocks:
                if b.get("type") == "tool_use" and not isinstance(b.get("input"), dict):
                    raise Invalid(f"messages.{i}: tool_use.input: Input should be a valid dictionary")
        for j, b in enumerate(blocks):
            kind = b.get("type")
            if kind == "text" and not b.get("text"):
                raise Invalid(f"messages.{i}.content.{j}.text: text content blocks must be non-empty")
            if kind == "image" and b.get("source", {}).get("type") not in ("base64", "url"):
                raise Invalid(f"messages.{i}.content.{j}.image.source: invalid source")
            if kind not in ("text", "image", "tool_use", "tool_result"):
                raise Invalid(f"messages.{i}.content.{j}: Input tag '{kind}' does not match any of the expected tags")
    if pending:
        raise Invalid(f"messages.{len(messages) - 1}: tool_use ids were found without tool_result blocks immediately after")
    for tool in body.get("tools", []):
        if tool.get("input_schema", {}).get("type") != "object":
            raise Invalid("tools.0.input_schema.type: Input should be 'object'")


class AnthropicTarget(http.server.BaseHTTPRequestHandler):
    received = []
    reply_tool = None  # (name, input) for the next answers, or None for text

    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        body = json.loads(self.rfile.read(length))
        AnthropicTarget.received.append({"headers": dict(self.headers), "body": body})
        if self.path != "/v1/messages":
            return self.send(404, {"type": "error", "error": {"type": "not_found_error", "message": "Not found"}})
        if self.headers.get("x-api-key") != KEY:
            return self.send(401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
        # Any dated version: the proxy writes 2023-06-01, SDKs passing through send their own.
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", self.headers.get("anthropic-version") or ""):
            return self.send(400, {"type": "error", "error": {"type": "invalid_request_error", "message": "anthropic-version: header is required"}})
        try:
            validate(body)
        except Invalid as problem:
            return self.send(400, {"type": "error", "error": {"type": "invalid_request_error", "message": str(problem)}})
        if AnthropicTarget.reply_tool:
            name, tool_input = AnthropicTarget.reply_tool
            block = {"type": "tool_use", "id": "toolu_01E2E", "name": name, "input": tool_input}
            stop = "tool_use"
        else:
            block = {"type": "text", "text": TEXT}
            stop = "end_turn"
        if body.get("stream"):
            return self.stream(body["model"], block, stop)
        self.send(200, {"id": "msg_01E2E", "type": "message", "role": "assistant", "model": body["model"],
                        "content": [block], "stop_reason": stop, "stop_sequence": None,
                        "usage": {"input_tokens": 12, "output_tokens": 8}})

    def stream(self, model, block, stop):
        events = [("message_start", {"type": "message_start", "message": {
            "id": "msg_01E2E", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": 1}}})]
        if block["type"] == "text":
            events.append(("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}))
            for word in block["text"].split(" "):
                piece = word if events[-1][0] == "content_block_start" else " " + word
                events.append(("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}))
        else:
            events.append(("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {**block, "input": {}}}))
            events.append(("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}}))
        events += [("content_block_stop", {"type": "content_block_stop", "index": 0}),
                   ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 8}}),
                   ("message_stop", {"type": "message_stop"})]
        data = "".join(f"event: {name}\ndata: {json.dumps(payload)}\n\n" for name, payload in events).encode()
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

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
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AnthropicTarget)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
