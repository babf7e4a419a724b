"""aider (pinned in e2e/tools/requirements.txt, its own venv), offline, with docs/setup.md's
command line as written, through the proxy to a chat-completions target that refuses what OpenAI
refuses. aider calls no tools: it proposes shell commands in a ```bash block of its answer and
asks before it runs them; the target's answer proposes one, and aider is told yes."""
import pathlib
import shlex
import subprocess

import pytest

from test_docs import as_for, snippet

ROOT = pathlib.Path(__file__).resolve().parents[2]
AIDER = ROOT / "e2e" / "tools" / ".venv" / "bin" / "aider"
ANSWER = "Run this:\n\n```bash\necho proxy-works > marker.txt\n```\n"
# The model's context window and prices, which aider otherwise fetches from GitHub at startup;
# the weak model (for summaries) is looked up too.
METADATA = """{
  "openai/gpt-4o": {"max_input_tokens": 128000, "max_output_tokens": 16384, "input_cost_per_token": 0,
                    "output_cost_per_token": 0, "litellm_provider": "openai", "mode": "chat"},
  "gpt-4o-mini": {"max_input_tokens": 128000, "max_output_tokens": 16384, "input_cost_per_token": 0,
                  "output_cost_per_token": 0, "litellm_provider": "openai", "mode": "chat"}
}"""


@pytest.fixture(autouse=True)
def scripted_answer(chat_target):
    chat_target.reply_tool = None
    chat_target.reply_text = ANSWER
    yield
    chat_target.reply_text = None


def test_aider_with_the_setup_md_command_runs_the_shell_command_it_proposes(tmp_path, messages_proxy, chat_target):
    assert AIDER.exists(), f"{AIDER} is missing: scripts/test makes e2e/tools/.venv"
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / ".aider.model.metadata.json").write_text(METADATA)
    command = shlex.split(as_for(snippet("aider", "bash"), messages_proxy))
    assert command[0] == "aider"
    before = len(chat_target.received)
    done = subprocess.run(
        [str(AIDER), *command[1:], "--message", "Write the marker file.",
         # Offline: no git repository, no update check, no analytics, no release notes.
         "--no-git", "--no-check-update", "--analytics-disable", "--no-show-release-notes",
         # Plain input() prompts, answered from stdin.
         "--no-fancy-input"],
        input="y\n", cwd=work, capture_output=True, text=True, timeout=120,
        # litellm fetches its own price list from GitHub when imported unless told not to.
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == "", done.stderr
    assert "Run this:" in done.stdout, "the answer was not printed"
    assert "Run shell command? (Y)es/(N)o/(D)on't ask again [Yes]: " in done.stdout
    assert "Running echo proxy-works > marker.txt" in done.stdout
    assert (work / "marker.txt").read_text() == "proxy-works\n"

    [sent] = chat_target.received[before:]
    assert sent["body"]["model"] == "gpt-4o"
    assert "tools" not in sent["body"]
    assert any(m["role"] == "user" and "Write the marker file." in str(m["content"]) for m in sent["body"]["messages"])
