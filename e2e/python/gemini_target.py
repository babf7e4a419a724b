"""A target speaking Google's Gemini API (`/v1beta/models/{model}:generateContent`,
`:streamGenerateContent?alt=sse`, `GET /v1beta/models`) that refuses what the real API refuses
(the rules the proxy's translation must respect), answering with Google's own error envelope in
the real API's words where they are known."""
import http.server
import json
import threading
import urllib.parse

KEY = "gemini-e2e-target-key-0007"
TEXT = "Hello from the Gemini target."
MODELS = ("gemini-2.5-flash", "gemini-2.5-pro")
# The fields of each message the target reads; anything else is an unknown name.
FIELDS = {
    "": {"model", "contents", "tools", "toolConfig", "safetySettings", "systemInstruction",
         "generationConfig", "cachedContent"},
    "content": {"role", "parts"},
    "part": {"text", "inlineData", "functionCall", "functionResponse", "fileData", "thought",
             "thoughtSignature"},
    "generation_config": {"stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema",
                          "candidateCount", "maxOutputTokens", "temperature", "topP", "topK", "seed",
                          "presencePenalty", "frequencyPenalty", "thinkingConfig", "responseModalities"},
    "tool": {"functionDeclarations", "googleSearch", "codeExecution", "urlContext"},
    "function_declaration": {"name", "description", "parameters", "parametersJsonSchema", "response",
                             "responseJsonSchema", "behavior"},
    "schema": {"type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
               "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
               "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum"},
    "tool_config": {"functionCallingConfig"},
    "function_calling_config": {"mode", "allowedFunctionNames"},
}


class Invalid(Exception):
    pass


def known(kind, obj, path):
    """Raises Invalid for a field of `obj` that message `kind` does not have."""
    if not isinstance(obj, dict):
        raise Invalid(f"Invalid value at '{path}', {json.dumps(obj)}")
    for name in obj:
        if name not in FIELDS[kind]:
            at = f" at '{path}'" if path else ""
            raise Invalid(f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.')


def schema(obj, path):
    """Gemini's own Schema: JSON Schema keywords outside it are unknown names."""
    known("schema", obj, path)
    for k, value in enumerate((obj.get("properties") or {}).values()):
        schema(value, f"{path}.properties[{k}].value")
    if "items" in obj:
        schema(obj["items"], f"{path}.items")
    for k, value in enumerate(obj.get("anyOf") or []):
        schema(value, f"{path}.any_of[{k}]")


def parts_of(content, path):
    parts = content.get("parts") or []
    if not parts:
        raise Invalid(f"* GenerateContentRequest.{path}.parts: contents.parts must not be empty.\n")
    for j, part in enumerate(parts):
        known("part", part, f"{path}.parts[{j}]")
        data = [name for name in ("text", "inlineData", "functionCall", "functionResponse", "fileData")
                if part.get(name) not in (None, "")]
        if len(data) != 1:
            raise Invalid(f"* GenerateContentRequest.{path}.parts[{j}].data: required oneof field 'data' "
                          "must have one initialized field\n")
        for name in ("functionCall", "functionResponse"):
            if name in part and not isinstance(part[name].get("args" if name == "functionCall" else "response", {}), dict):
                raise Invalid(f"Invalid value at '{path}.parts[{j}]' (type.googleapis.com/google.protobuf.Struct)")
    return parts


def validate(body):
    """Raises Invalid with the API's wording for what it would reject."""
    known("", body, "")
    contents = body.get("contents") or []
    if not contents:
        raise Invalid("* GenerateContentRequest.contents: contents is not specified\n")
    if "systemInstruction" in body:
        system = body["systemInstruction"]
        known("content", system, "system_instruction")
        if system.get("role") not in (None, "user"):
            raise Invalid("* GenerateContentRequest.system_instruction.role: must be unset or 'user'\n")
        parts_of(system, "system_instruction")
    calls = 0  # functionCall parts of the previous content, when it was a model turn
    previous = None
    for i, content in enumerate(contents):
        known("content", content, f"contents[{i}]")
        role = content.get("role", "user")
        if role not in ("user", "model"):
            raise Invalid("Please use a valid role: user, model.")
        parts = parts_of(content, f"contents[{i}]")
        n_calls = sum("functionCall" in p for p in parts)
        n_responses = sum("functionResponse" in p for p in parts)
        if n_calls and previous != "user":
            raise Invalid("Please ensure that function call turn comes immediately after a user turn "
                          "or after a function response turn.")
        if n_responses:
            if role != "user" or not calls:
                raise Invalid("Please ensure that function response turn comes immediately after a "
                              "function call turn.")
            if n_responses != calls:
                raise Invalid("Please ensure that the number of function response parts is equal to the "
                              "number of function call parts of the function call turn.")
        calls = n_calls if role == "model" else 0
        previous = role
    for i, tool in enumerate(body.get("tools") or []):
        known("tool", tool, f"tools[{i}]")
        for k, declaration in enumerate(tool.get("functionDeclarations") or []):
            path = f"tools[{i}].function_declarations[{k}]"
            known("function_declaration", declaration, path)
            if "parameters" in declaration:
                schema(declaration["parameters"], f"{path}.parameters")
    if "toolConfig" in body:
        known("tool_config", body["toolConfig"], "tool_config")
        calling = body["toolConfig"].get("functionCallingConfig", {})
        known("function_calling_config", calling, "tool_config.function_calling_config")
        if calling.get("mode", "AUTO") not in ("AUTO", "ANY", "NONE", "VALIDATED"):
            raise Invalid(f"Invalid value at 'tool_config.function_calling_config.mode', \"{calling['mode']}\"")
    config = body.get("generationConfig", {})
    known("generation_config", config, "generation_config")
    if "responseSchema" in config:
        schema(config["responseSchema"], "generation_config.response_schema")
    if ("responseSchema" in config or "responseJsonSchema" in config) and \
            config.get("responseMimeType") != "application/json":
        raise Invalid("* GenerateContentRequest.generation_config.response_mime_type: must be "
                      "application/json when a response schema is set\n")


def error(code, status, message):
    return {"error": {"code": code, "message": message, "status": status}}


class GeminiTarget(http.server.BaseHTTPRequestHandler):
    received = []
    reply_call = None  # (name, args) for the next answers, or None for text

    def credential_error(self):
        key = self.headers.get("x-goog-api-key")
        if key is not None:
            return None if key == KEY else (400, error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."))
        if (self.headers.get("authorization") or "").startswith("Bearer ") and self.headers["authorization"][7:].strip():
            return None
        return (403, error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without "
                           "established identity). Please use API Key or other form of API consumer identity to call this API."))

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        GeminiTarget.received.append({"method": "GET", "path": url.path, "query": url.query,
                                      "headers": dict(self.headers), "body": None})
        if url.path != "/v1beta/models":
            return self.send(404, error(404, "NOT_FOUND", "Method not found."))
        problem = self.credential_error()
        if problem:
            return self.send(*problem)
        self.send(200, {"models": [{"name": f"models/{name}", "version": "001", "displayName": name,
                                    "supportedGenerationMethods": ["generateContent", "countTokens"]}
                                   for name in MODELS]})

    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        raw = self.rfile.read(length)
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        GeminiTarget.received.append({"method": "POST", "path": url.path, "query": url.query,
                                      "headers": dict(self.headers), "body": body})
        problem = self.credential_error()
        if problem:
            return self.send(*problem)
        prefix = "/v1beta/models/"
        model, _, method = url.path[len(prefix):].rpartition(":") if url.path.startswith(prefix) else ("", "", "")
        if method not in ("generateContent", "streamGenerateContent") or model not in MODELS:
            return self.send(404, error(404, "NOT_FOUND", f"models/{model} is not found for API version v1beta, or is not "
                                        f"supported for {method}. Call ListModels to see the list of available models "
                                        "and their supported methods."))
        if not isinstance(body, dict):
            return self.send(400, error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."))
        try:
            validate(body)
        except Invalid as problem:
            return self.send(400, error(400, "INVALID_ARGUMENT", str(problem)))
        if GeminiTarget.reply_call:
            name, args = GeminiTarget.reply_call
            pieces = [[{"functionCall": {"name": name, "args": args}}]]
        else:
            words = TEXT.split(" ")
            pieces = [[{"text": word if k == 0 else " " + word}] for k, word in enumerate(words)]
        usage = {"promptTokenCount": 12, "candidatesTokenCount": 8, "totalTokenCount": 20}

        def response(parts, last):
            candidate = {"content": {"parts": parts, "role": "model"}, "index": 0}
            if last:
                candidate["finishReason"] = "STOP"
            return {"candidates": [candidate],
                    "usageMetadata": usage if last else {"promptTokenCount": 12, "totalTokenCount": 12},
                    "modelVersion": model, "responseId": "e2e-gemini-response"}

        if method == "generateContent":
            return self.send(200, response([part for piece in pieces for part in piece], True))
        events = [response(piece, k == len(pieces) - 1) for k, piece in enumerate(pieces)]
        if query.get("alt") != "sse":
            return self.send(200, events)  # without alt=sse the real API answers one JSON array
        data = "".join(f"data: {json.dumps(event)}\r\n\r\n" for event in events).encode()
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json; charset=UTF-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def start():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), GeminiTarget)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
