"""Simon Willison's `llm` CLI (pinned in requirements.txt), offline, with docs/setup.md's
extra-openai-models.yaml as written, through the proxy to a chat-completions target that refuses
what OpenAI refuses. `llm` has no shell tool of its own: the tool call is one of a Python function
given with --functions, which runs a command."""
import json
import pathlib
import subprocess
import sys

import pytest
import yaml

from chat_target import TEXT
from test_docs import as_for, snippet

LLM = pathlib.Path(sys.executable).parent / "llm"
RUN_COMMAND = '''
import subprocess

def run_command(command: str) -> str:
    "Run a shell command and return what it printed."
    return subprocess.run(command, shell=True, capture_output=True, text=True, check=True).stdout
'''


@pytest.fixture(autouse=True)
def text_replies(chat_target):
    chat_target.reply_tool = None
    yield
    chat_target.reply_tool = None


@pytest.fixture
def llm(tmp_path, messages_proxy):
    """Runs `llm args` in a fresh directory with a throwaway HOME holding setup.md's model
    file (in the folder `llm logs path` names) and the token set with `llm keys set`."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home")}
    work = tmp_path / "work"
    work.mkdir()

    def run(*args):
        done = subprocess.run([str(LLM), *args], cwd=work, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    folder = pathlib.Path(run("logs", "path").strip()).parent
    folder.mkdir(parents=True, exist_ok=True)
    models = as_for(snippet("llm", "yaml"), messages_proxy)
    (folder / "extra-openai-models.yaml").write_text(models)
    [model] = yaml.safe_load(models)
    run("keys", "set", model["api_key_name"], "--value", messages_proxy.token)
    run.model = model["model_id"]
    run.work = work
    return run


def test_llm_with_the_setup_md_model_file_prints_the_answer(llm, chat_target):
    before = len(chat_target.received)
    assert llm("-m", llm.model, "Hello!").strip() == TEXT
    [sent] = chat_target.received[before:]
    assert sent["body"]["model"] == "gpt-4o"
    assert sent["body"]["messages"] == [{"role": "user", "content": "Hello!"}]


def test_llm_calls_a_function_that_runs_a_command_and_prints_the_answer(llm, chat_target):
    chat_target.reply_tool = ("run_command", {"command": "echo proxy-works > marker.txt && cat marker.txt"})
    before = len(chat_target.received)
    out = llm("-m", llm.model, "--functions", RUN_COMMAND, "Write the marker file.")
    assert out.strip() == TEXT
    assert (llm.work / "marker.txt").read_text() == "proxy-works\n"
    first, second = (r["body"] for r in chat_target.received[before:])
    assert [tool["function"]["name"] for tool in first["tools"]] == ["run_command"]
    [call] = second["messages"][-2]["tool_calls"]
    assert call["function"]["name"] == "run_command"
    assert json.loads(call["function"]["arguments"]) == {"command": "echo proxy-works > marker.txt && cat marker.txt"}
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": call["id"], "content": "proxy-works\n"}
