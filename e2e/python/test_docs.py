"""The snippets users copy from docs/setup.md, run as written (with this run's URL and token)
against the real proxy: a doc that drifts from the product fails here."""

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SETUP = (ROOT / "docs" / "setup.md").read_text()


def snippet(heading, language):
    """The first `language` code block after `### heading`."""
    section = SETUP.split(f"### {heading}\n", 1)[1]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


def as_for(code, proxy):
    return code.replace("http://localhost:3000/v1", proxy.base_url).replace("llm-proxy-...", proxy.token)


def test_the_python_sdk_snippet_runs_as_written(placeholder_proxy):
    code = as_for(snippet("OpenAI Python SDK", "python"), placeholder_proxy)
    assert placeholder_proxy.token in code, "the snippet no longer uses the token placeholder"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip(), "the snippet printed no answer"


def test_the_curl_snippet_runs_as_written(placeholder_proxy):
    code = as_for(snippet("curl", "bash"), placeholder_proxy)
    run = subprocess.run(["bash", "-c", code.rstrip() + " --fail-with-body -sS"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert '"chat.completion"' in run.stdout


def test_the_environment_snippet_is_what_the_sdk_reads(placeholder_proxy):
    exports = as_for(snippet("Any tool that reads the standard variables", "bash"), placeholder_proxy)
    code = exports + "\n" + sys.executable + " -c 'from openai import OpenAI; print(OpenAI().models.list().data[0].id)'"
    run = subprocess.run(["bash", "-c", code], capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip()
