"""A target speaking Ollama's native API (`POST /api/chat`, `GET /api/tags`) that refuses what the
real server refuses (Go's decoder: wrong types) and, unlike it, also what it would silently
ignore: an untranslated OpenAI field (`max_tokens`, `response_format`, content parts...) is
accepted by the real Ollama and changes nothing, which would hide a wrong translation.
Errors come in Ollama's own shape, `{"error": "..."}`."""
import base64
import binascii
import http.server
import json
import threading

KEY = "ollama-e2e-target-key-0009"
TEXT = "Hello from the Ollama target."
PIECES = ["Hello", " from the", " Ollama target."]
MODELS = {"llama3.2:latest": "2025-05-04T17:37:44.706015396-07:00", "qwen3:8b": "2025-06-12T09:15:02.123456789Z"}
REQUEST_FIELDS = {"model", "messages", "stream", "format", "keep_alive", "tools", "options", "think",
                  "truncate", "shift", "logprobs", "top_logprobs"}
MESSAGE_FIELDS = {"role", "content", "thinking", "images", "tool_calls", "tool_name", "tool_call_id"}
OPTIONS = {"num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread", "num_keep", "seed",
           "num_predict", "top_k", "top_p", "min_p", "typical_p", "repeat_last_n", "temperature",
           "repeat_penalty", "presence_penalty", "frequency_penalty", "stop"}
PROMPT_EVAL_COUNT = 26
EVAL_COUNT = 7


class Invalid(Exception):
    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


def go_type_error(kind, field, go_type):
    return Invalid(f"json: cannot unmarshal {kind} into Go struct field ChatRequest.{field} of type {go_type}")


def kind_of(value):
    return {str: "string", bool: "bool", int: "number", float: "number", list: "array", dict: "object"}[type(value)]


def validate(body):
    """Raises Invalid with the server's wording (or the target's own, prefixed `mock:`)."""
    for field in body:
        if field not in REQUEST_FIELDS:
            raise Invalid(f"mock: field {field} would be ignored by Ollama")
    if "stream" in body and not isinstance(body["stream"], (bool, type(None))):
        raise go_type_error(kind_of(body["stream"]), "stream", "bool")
    called = set()
    for i, message in enumerate(body.get("messages") or []):
        for field in message:
            if field not in MESSAGE_FIELDS:
                raise Invalid(f"mock: field messages[{i}].{field} would be ignored by Ollama")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise go_type_error(kind_of(content), "messages.content", "string")
        for image in message.get("images") or []:
            try:
                base64.b64decode(image, validate=True)
            except (binascii.Error, TypeError):
                at = next((k for k, c in enumerate(image) if not (c.isalnum() or c in "+/=")), len(image))
                raise Invalid(f"illegal base64 data at input byte {at}")
        for call in message.get("tool_calls") or []:
            arguments = call.get("function", {}).get("arguments")
            if arguments is not None and not isinstance(arguments, dict):
                raise go_type_error(kind_of(arguments), "messages.tool_calls.function.arguments",
                                    "api.ToolCallFunctionArguments")
            called.add(call.get("function", {}).get("name"))
        role = (message.get("role") or "").lower()
        if role not in ("system", "user", "assistant", "tool"):
            raise Invalid(f'mock: messages[{i}].role "{role}" is not one Ollama\'s chat templates render')
        if role == "tool" and message.get("tool_name") not in called:
            raise Invalid(f"mock: messages[{i}] is a tool result without the tool_name of an earlier call")
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise go_type_error(kind_of(options), "options", "map[string]interface {}")
    for name in options:
        if name not in OPTIONS:
            raise Invalid(f"mock: field options.{name} would be ignored by Ollama")
    if not body.get("model"):
        raise Invalid("model is required")
    model = body["model"] if ":" in body["model"] else body["model"] + ":latest"
    if model not in MODELS:
        raise Invalid(f"model '{body['model']}' not found", 404)
    if body.get("think") is True and not model.startswith("qwen3"):
        raise Invalid(f'"{body["model"]}" does not support thinking')
    if "stop" in options and not isinstance(options["stop"], list):
        raise Invalid('option "stop" must be of type array', 500)
    fmt = body.get("format")
    if fmt not in (None, "", "json") and not isinstance(fmt, dict):
        raise Invalid(f"invalid format: {json.dumps(json.dumps(fmt))}; expected \"json\" or a valid JSON Schema object", 500)


class OllamaTarget(http.server.BaseHTTPRequestHandler):
    received = []
    reply_tool = None  # (name, arguments) for the next answers, or None for text

    def do_GET(self):
        self.received.append({"method": "GET", "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": None})
        if self.path != "/api/tags":
            return self.not_found()
        if not self.authorized():
            return self.send(401, {"error": "unauthorized"})
        self.send(200, {"models": [{"name": name, "model": name, "modified_at": modified, "size": 2019393189,
                                    "digest": "a80c4f17acd5", "details": {"format": "gguf", "family": "llama"}}
                                   for name, modified in MODELS.items()]})

    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        OllamaTarget.received.append({"method": "POST", "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
        if self.path != "/api/chat":
            return self.not_found()
        if not self.authorized():
            return self.send(401, {"error": "unauthorized"})
        if not isinstance(body, dict):
            return self.send(400, {"error": "invalid character looking for beginning of value"})
        try:
            validate(body)
        except Invalid as problem:
            return self.send(problem.status, {"error": str(problem)})
        if OllamaTarget.reply_tool:
            name, arguments = OllamaTarget.reply_tool
            message = {"role": "assistant", "content": "",
                       "tool_calls": [{"function": {"index": 0, "name": name, "arguments": arguments}}]}
        else:
            message = {"role": "assistant", "content": TEXT}
        done = {"model": body["model"], "created_at": "2025-06-12T09:15:02.123456789Z", "done": True,
                "done_reason": "stop", "total_duration": 4883583458, "load_duration": 1334875,
                "prompt_eval_count": PROMPT_EVAL_COUNT, "prompt_eval_duration": 342546000,
                "eval_count": EVAL_COUNT, "eval_duration": 4535599000}
        if body.get("stream", True):
            return self.stream(body["model"], message, done)
        self.send(200, {**done, "message": message})

    def stream(self, model, message, done):
        line = lambda m: {"model": model, "created_at": "2025-06-12T09:15:01.5Z", "message": m, "done": False}
        if "tool_calls" in message:
            lines = [line(message)]
        else:
            lines = [line({"role": "assistant", "content": piece}) for piece in PIECES]
        lines.append({**done, "message": {"role": "assistant", "content": ""}})
        data = "".join(json.dumps(l) + "\n" for l in lines).encode()
        self.send_response(200)
        self.send_header("content-type", "application/x-ndjson")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorized(self):
        return self.headers.get("authorization") == f"Bearer {KEY}"

    def not_found(self):
        data = b"404 page not found"
        self.send_response(404)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json; charset=utf-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def start():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), OllamaTarget)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
