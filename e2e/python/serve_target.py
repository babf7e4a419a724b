"""Serves one of the strict mock targets (anthropic, chat, gemini or ollama) for the Node tests,
which share them with the Python ones. Prints one JSON line (endpoint, key, text), then serves
until its standard input closes. `POST /__reply` with {"tool": [name, arguments]} makes valid
requests get that tool call from then on; {"tool": null} makes them get text again.
`GET /__received` lists the requests received."""
import json
import sys

import anthropic_target
import chat_target
import gemini_target
import ollama_target

# The module, its handler, the handler's reply attribute, and the API's base path.
TARGETS = {
    "anthropic": (anthropic_target, anthropic_target.AnthropicTarget, "reply_tool", "/v1"),
    "chat": (chat_target, chat_target.ChatTarget, "reply_tool", "/v1"),
    "gemini": (gemini_target, gemini_target.GeminiTarget, "reply_call", "/v1beta"),
    "ollama": (ollama_target, ollama_target.OllamaTarget, "reply_tool", ""),
}


def main(name):
    module, handler, reply, base = TARGETS[name]
    serve = handler.do_POST

    def do_post(self):
        if self.path != "/__reply":
            return serve(self)
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        setattr(handler, reply, tuple(body["tool"]) if body["tool"] else None)
        self.send_response(204)
        self.end_headers()

    def do_get(self):
        if self.path != "/__received":
            return served_get(self)
        data = json.dumps(handler.received).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    served_get = getattr(handler, "do_GET", lambda self: self.send_error(404))
    handler.do_POST = do_post
    handler.do_GET = do_get
    server = module.start()
    endpoint = f"http://127.0.0.1:{server.server_port}{base}"
    print(json.dumps({"endpoint": endpoint, "key": module.KEY, "text": module.TEXT}), flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
