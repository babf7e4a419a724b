"""Starts the real `llm-proxy` binary for the SDK tests.

Two setups, so every test runs against both: the proxy in placeholder mode, and a proxy that
forwards to a second proxy in placeholder mode (the second plays the company target, with its
access token as the target API key). The binary comes from LLM_PROXY_BIN, or the workspace's
debug build.
"""
import http.server
import importlib
import json
import os
import pathlib
import queue
import subprocess
import sys
import tempfile
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("LLM_PROXY_BIN", str(ROOT / "target" / "debug" / "llm-proxy"))


class Proxy:
    def __init__(self, token, **env):
        self.token = token
        full_env = {
            "PATH": os.environ.get("PATH", ""),
            "PROXY_PORT": "0",
            "PROXY_ACCESS_TOKEN": token,
            # A fresh log for every run: the tests must not see each other's calls.
            "PROXY_DATA_DIR": tempfile.mkdtemp(prefix="llm-proxy-e2e-"),
            "LOG_LEVEL": "warn",
            **env,
        }
        self.process = subprocess.Popen(
            [BIN], env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/"
        )
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in self.process.stdout], daemon=True).start()
        while True:
            line = lines.get(timeout=30)
            if "Listening on:" in line:
                self.addr = line.split("Listening on:")[1].strip()
                break
        self.base_url = f"http://{self.addr}/v1"

    def stop(self):
        self.process.terminate()
        assert self.process.wait(timeout=30) == 0, "llm-proxy did not exit cleanly on SIGTERM"


@pytest.fixture(scope="session")
def placeholder_proxy():
    proxy = Proxy("e2e-target-token-0001")
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def forwarding_proxy(placeholder_proxy):
    proxy = Proxy(
        "e2e-front-token-0002",
        TARGET_ENDPOINT=placeholder_proxy.base_url,
        TARGET_API_KEY=placeholder_proxy.token,
    )
    yield proxy
    proxy.stop()


FORMATS = ROOT / "crates" / "llm-proxy" / "tests" / "fixtures" / "formats"


class ForeignTarget(http.server.BaseHTTPRequestHandler):
    """A target that answers in the format named by the request's model: `anthropic` answers
    with formats/anthropic.json, or formats/anthropic.sse when the client streams."""

    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        request = json.loads(self.rfile.read(length))
        name = request["model"]
        if request.get("stream"):
            for suffix, content_type in ((".sse", "text/event-stream"), (".ndjson", "application/x-ndjson")):
                path = FORMATS / f"{name}{suffix}"
                if path.exists():
                    return self.answer(path.read_bytes(), content_type)
        return self.answer((FORMATS / f"{name}.json").read_bytes(), "application/json")

    def answer(self, body, content_type):
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def foreign_proxy():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ForeignTarget)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = Proxy("e2e-foreign-token-0003", TARGET_ENDPOINT=f"http://127.0.0.1:{server.server_port}/v1")
    yield proxy
    proxy.stop()
    server.shutdown()


@pytest.fixture(params=["placeholder", "forwarding"])
def proxy(request):
    return request.getfixturevalue(f"{request.param}_proxy")


def target_fixture(module_name, handler_name):
    """A session fixture serving one of the strict mock targets: its handler class, `port` set."""

    @pytest.fixture(scope="session")
    def fixture():
        module = importlib.import_module(module_name)
        handler = getattr(module, handler_name)
        server = module.start()
        handler.port = server.server_port
        yield handler
        server.shutdown()

    return fixture


def in_front(target, base_path, token, **env):
    """A proxy forwarding to `target` (a handler of `target_fixture`) with the target's key."""
    key = sys.modules[target.__module__].KEY
    return Proxy(token, TARGET_ENDPOINT=f"http://127.0.0.1:{target.port}{base_path}", TARGET_API_KEY=key, **env)


anthropic_target = target_fixture("anthropic_target", "AnthropicTarget")
gemini_target = target_fixture("gemini_target", "GeminiTarget")
ollama_target = target_fixture("ollama_target", "OllamaTarget")
chat_target = target_fixture("chat_target", "ChatTarget")


@pytest.fixture(scope="session")
def anthropic_proxy(anthropic_target):
    proxy = in_front(anthropic_target, "/v1", "e2e-anthropic-token-0005", TARGET_API="anthropic")
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def gemini_proxy(gemini_target):
    proxy = in_front(gemini_target, "/v1beta", "e2e-gemini-token-0006", TARGET_API="gemini")
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def ollama_proxy(ollama_target):
    proxy = in_front(ollama_target, "", "e2e-ollama-token-0008", TARGET_API="ollama")
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def messages_proxy(chat_target):
    """A proxy in front of a target that speaks only chat completions: Messages calls are
    translated."""
    proxy = in_front(chat_target, "/v1", "e2e-messages-token-0012")
    yield proxy
    proxy.stop()
