"""Where the desktop app keeps the secrets typed in its Settings view, in its real window.

With a Secret Service on the session bus (GNOME Keyring, unlocked, as scripts/test-desktop
starts it) the secrets go there and into no file; on a session bus with no Secret Service the
app keeps them in a private (0600) file and says so in the window.

Runs after test_app.py in the same throwaway HOME (the first-run test must come first)."""

import base64
import json
import os
import secrets
import shlex
import stat
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from openai import OpenAI
from selenium.webdriver.support.select import Select

from conftest import APP, CONFIG_DIR, HOME, app_processes, free_port, wait_until, write_settings

SERVICE = "local-llm-proxy"
KEYRINGS_DIR = HOME / ".local" / "share" / "keyrings"  # GNOME Keyring's own (encrypted) store
DATA_DIR = HOME / ".local" / "share" / "local-llm-proxy"  # the request log
OAUTH_ACCESS_TOKEN = "mock-oauth-access-token"


def keychain_lookup(account):
    """The secret stored for `account`, looked up by every attribute keyring's Secret Service
    store gives an entry (`service`, `username`, `target`, `application`), or None."""
    found = subprocess.run(
        [
            "secret-tool", "lookup",
            "service", SERVICE,
            "username", account,
            "target", "default",
            "application", "rust-keyring",
        ],
        capture_output=True,
        text=True,
    )
    return found.stdout.strip() if found.returncode == 0 else None


class MockTarget(ThreadingHTTPServer):
    """An OpenAI-style target and an OAuth token server on 127.0.0.1 that record the
    Authorization header of every request."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), MockHandler)
        self.seen = []  # (path, Authorization header)
        self.port = self.server_address[1]


class MockHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append((self.path, self.headers.get("Authorization")))
        if self.path == "/oauth/token":
            body = {"access_token": OAUTH_ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600}
        elif self.path == "/v1/chat/completions":
            body = {
                "id": "chatcmpl-desktop-e2e",
                "object": "chat.completion",
                "created": 1767225600,
                "model": "desktop-e2e-secrets-model",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def mock_target():
    server = MockTarget()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def encodings(value):
    """`value` as it could sit in a file: as is, and as any longer Base64 text holding it would
    show it (standard and URL-safe alphabets, at each of the three byte alignments, without
    the characters that also carry the neighbouring bytes' bits)."""
    raw = value.encode()
    forms = {raw}
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * shift + raw)
            forms.add(text[(shift * 8 + 5) // 6 : (shift + len(raw)) * 8 // 6])
    return forms


def files_holding(root, values, skip=()):
    """Every file under `root` (but not under `skip`), and those holding one of `values` in
    plain text or Base64: (scanned, [(path, which value)])."""
    forms = {name: encodings(value) for name, value in values.items()}
    scanned, found = [], []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = [d for d in subdirs if Path(directory, d) not in skip]
        for name in names:
            path = Path(directory, name)
            if not path.is_file() or path.is_symlink():
                continue
            content = path.read_bytes()
            scanned.append(path)
            found += [(path, which) for which, wanted in forms.items() if any(f in content for f in wanted)]
    return scanned, found


def save_and_wait_until_stored(app, secret_field):
    """Saves the Settings form and waits for it to be redrawn from what was saved: the
    secret's field then says a value is stored (the save command has returned, the proxy has
    restarted on the new settings)."""
    app.click("#save-settings")
    app.wait(
        lambda d: (
            d.execute_script("return document.querySelector(arguments[0])?.placeholder", f"#setting-{secret_field}")
            or ""
        ).startswith("Stored")
    )


def call_through_the_proxy(port, token, model):
    client = OpenAI(base_url=f"http://localhost:{port}/v1", api_key=token, max_retries=0)
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}])
    assert reply.choices[0].message.content == "Hello"


def logged_models(app):
    app.go("calls")
    return app.driver.execute_script(
        "return [...document.querySelectorAll('table tbody tr')].map(r => r.textContent).join('\\n')"
    )


def test_api_key_and_client_secret_saved_in_settings_are_in_gnome_keyring_reach_the_target_and_are_in_no_file(
    launch, mock_target
):
    api_key = f"sk-desktop-keychain-{secrets.token_hex(20)}"
    client_secret = f"client-secret-desktop-keychain-{secrets.token_hex(20)}"
    client_id = "desktop-e2e-client"
    app = launch("--show")
    line = app.state_line("Running on", timeout=40)
    port = int(line.rsplit(":", 1)[1])
    token = app.token()

    # The API key, typed in Settings as a user would.
    app.go("settings")
    endpoint = app.wait(lambda d: next(iter(app.find_all("#setting-targetEndpoint")), False))
    endpoint.clear()
    endpoint.send_keys(f"http://127.0.0.1:{mock_target.port}/v1")
    Select(app.find("#setting-auth")).select_by_value("api-key")
    app.find("#setting-targetApiKey").send_keys(api_key)
    save_and_wait_until_stored(app, "targetApiKey")
    assert keychain_lookup("target-api-key") == api_key
    call_through_the_proxy(port, token, "desktop-e2e-api-key")
    assert ("/v1/chat/completions", f"Bearer {api_key}") in mock_target.seen, mock_target.seen

    # Then OAuth client credentials: the client secret goes to the keychain too.
    app.go("settings")
    app.wait(lambda d: app.find_all("#setting-auth"))
    Select(app.find("#setting-auth")).select_by_value("oauth")
    app.find("#setting-oauth-tokenEndpoint").send_keys(f"http://127.0.0.1:{mock_target.port}/oauth/token")
    app.find("#setting-oauth-clientId").send_keys(client_id)
    app.find("#setting-oauthClientSecret").send_keys(client_secret)
    save_and_wait_until_stored(app, "oauthClientSecret")
    assert keychain_lookup("oauth-client-secret") == client_secret
    assert keychain_lookup("target-api-key") == api_key, "switching to OAuth lost the stored API key"
    call_through_the_proxy(port, token, "desktop-e2e-oauth")
    basic = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    assert ("/oauth/token", basic) in mock_target.seen, mock_target.seen
    assert ("/v1/chat/completions", f"Bearer {OAUTH_ACCESS_TOKEN}") in mock_target.seen, mock_target.seen

    # Both calls are in the request log before the app quits, so the log's files are searched too.
    app.wait(lambda d: all(model in logged_models(app) for model in ("desktop-e2e-api-key", "desktop-e2e-oauth")))
    app.screenshot("desktop-secrets-keychain.png")
    app.driver.quit()
    wait_until(lambda: not app_processes(), what="the app to exit")

    scanned, found = files_holding(
        HOME,
        {"target API key": api_key, "OAuth client secret": client_secret, "access token": token},
        skip={KEYRINGS_DIR},
    )
    assert CONFIG_DIR / "settings.json" in scanned
    assert any(DATA_DIR in path.parents for path in scanned), f"no request log under {DATA_DIR}: {scanned}"
    assert not (CONFIG_DIR / "secrets.json").exists()
    assert not found, f"secrets in files: {found}"
    write_settings(auth="none", targetEndpoint="")


@pytest.fixture
def bus_without_secret_service(tmp_path):
    """A session bus on which nothing provides org.freedesktop.secrets: the desktop's other
    services can be started on it, GNOME Keyring's cannot. Yields its address."""
    services = tmp_path / "dbus-services"
    services.mkdir()
    for service in Path("/usr/share/dbus-1/services").glob("*.service"):
        text = service.read_text()
        if "keyring" not in text.lower() and "secret" not in text.lower():
            (services / service.name).symlink_to(service)
    config = tmp_path / "session-without-secrets.conf"
    config.write_text(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <keep_umask/>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <servicedir>{services}</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
""")
    daemon = subprocess.Popen(
        ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        address = daemon.stdout.readline().strip()
        assert address, f"dbus-daemon printed no address (exit status {daemon.poll()})"
        yield address
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def bus_names(method, address=None):
    """The names `org.freedesktop.DBus.<method>` lists on the bus at `address` (default: the
    session's)."""
    bus = f"--bus={address}" if address else "--session"
    return subprocess.run(
        ["dbus-send", bus, "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
         f"org.freedesktop.DBus.{method}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_without_a_secret_service_the_secrets_go_to_a_0600_file_and_the_window_warns(
    bus_without_secret_service, launch, tmp_path
):
    # The check below sees GNOME Keyring's name where there is one: on the tests' own bus.
    assert '"org.freedesktop.secrets"' in bus_names("ListActivatableNames")
    for method in ("ListActivatableNames", "ListNames"):
        assert '"org.freedesktop.secrets"' not in bus_names(method, bus_without_secret_service)

    # Its own HOME, so the files it writes are its alone; the app execs with that session bus
    # instead of the tests' one.
    home = tmp_path / "home"
    config_dir = home / ".config" / "local-llm-proxy"
    config_dir.mkdir(parents=True)
    (config_dir / "settings.json").write_text(json.dumps({"port": free_port()}))
    wrapper = tmp_path / "local-llm-proxy-without-secret-service"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"exec env -u GNOME_KEYRING_CONTROL HOME={shlex.quote(str(home))}"
        f" DBUS_SESSION_BUS_ADDRESS={shlex.quote(bus_without_secret_service)} {shlex.quote(APP)} \"$@\"\n"
    )
    wrapper.chmod(0o755)
    secrets_file = config_dir / "secrets.json"

    app = launch("--show", application=str(wrapper))
    app.state_line("Running on", timeout=40)
    # The warning is in the overview, visible, naming the file.
    warning = app.wait(
        lambda d: next(
            (w for w in d.find_elements("css selector", "p.warn") if str(secrets_file) in w.text and w.is_displayed()),
            False,
        )
    )
    assert f"Secrets are kept in {secrets_file} instead, readable only by you." in warning.text, warning.text
    assert "org.freedesktop.secrets" in warning.text, warning.text  # why: no Secret Service
    token = app.token()
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert json.loads(secrets_file.read_text()) == {"access-token": token}

    # A target API key typed in Settings goes to the same file.
    api_key = f"sk-desktop-file-{secrets.token_hex(20)}"
    app.go("settings")
    endpoint = app.wait(lambda d: next(iter(app.find_all("#setting-targetEndpoint")), False))
    endpoint.clear()
    endpoint.send_keys(f"http://127.0.0.1:{free_port()}/v1")
    Select(app.find("#setting-auth")).select_by_value("api-key")
    app.find("#setting-targetApiKey").send_keys(api_key)
    save_and_wait_until_stored(app, "targetApiKey")
    note = f"No keychain answered: secrets are kept in {secrets_file}, readable only by you."
    app.wait(lambda d: any(note == p.text and p.is_displayed() for p in d.find_elements("css selector", "p.help")))
    app.screenshot("desktop-secrets-file.png")
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert json.loads(secrets_file.read_text()) == {"access-token": token, "target-api-key": api_key}
    assert keychain_lookup("target-api-key") != api_key, "it reached GNOME Keyring after all"
