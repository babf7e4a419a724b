"""The desktop app in its real window (WebKitGTK under Xvfb), driven through WebDriver.

The tests share one throwaway HOME and run in file order: the first one is the app's first
run; later ones see what earlier ones saved (the token in the keychain, the settings file)."""

import os
import socket
import subprocess

from openai import OpenAI
from selenium.webdriver.common.by import By

from conftest import (
    ARTIFACTS,
    app_processes,
    CONFIG_DIR,
    HOME,
    APP,
    free_port,
    http,
    port_open,
    wait_until,
    write_settings,
)

DEFAULT_PORT = 3000
TRAY_REGION = "360x40+920+0"  # trayer sits at the top right of the 1280x800 screen
# Where trayer shows the app's one icon: the screen's top right corner, right of the window
# (1100 wide, centred: it ends at x = 1190).
TRAY_ICON_SPOT = "64x32+1216+0"
# The "on" tray icon's colours (icons/tray-on.svg): its purple square (the error icon's too;
# the off icon's is grey) and its green dot (the "on" icon's alone).
ON_ICON_PURPLE = (0x5B, 0x4F, 0xE0)
ON_ICON_GREEN = (0x22, 0xC5, 0x5E)


def grab_tray(name):
    """A screenshot of the tray area; returns the PNG's bytes."""
    path = ARTIFACTS / name
    subprocess.run(["import", "-window", "root", "-crop", TRAY_REGION, str(path)], check=True)
    return path.read_bytes()


def pixels(name):
    """The tray area's raw pixels, to compare icons."""
    return subprocess.run(
        ["convert", str(ARTIFACTS / name), "-depth", "8", "rgb:-"], check=True, capture_output=True
    ).stdout


def tray_icon_colours():
    """The distinct (r, g, b) colours in the tray icon's spot."""
    raw = subprocess.run(
        ["import", "-window", "root", "-crop", TRAY_ICON_SPOT, "-depth", "8", "rgb:-"],
        check=True,
        capture_output=True,
    ).stdout
    return {tuple(raw[i : i + 3]) for i in range(0, len(raw) - 2, 3)}


def has_colour(colours, wanted, tolerance=16):
    """Whether some colour in `colours` is within `tolerance` of `wanted` in every channel
    (scaling the icon to the tray's size blends its edges, not its solid areas)."""
    return any(all(abs(c - w) <= tolerance for c, w in zip(colour, wanted)) for colour in colours)


def keychain_lookup(account):
    found = subprocess.run(
        ["secret-tool", "lookup", "service", "local-llm-proxy", "username", account],
        capture_output=True,
        text=True,
    )
    return found.stdout.strip() if found.returncode == 0 else None


def test_first_run_opens_the_window_running_on_the_default_port(launch):
    assert not (CONFIG_DIR / "settings.json").exists(), "not a first run"
    app = launch()  # no --show: the first run opens the window by itself
    line = app.state_line("Running on", timeout=40)
    assert line == f"Running on http://127.0.0.1:{DEFAULT_PORT}"
    assert app.text_of("#base-url") == f"http://localhost:{DEFAULT_PORT}/v1"
    token = app.token()
    assert token.startswith("llm-proxy-") and len(token) == len("llm-proxy-") + 64

    status, health = http(DEFAULT_PORT, "/health")
    assert status == 200 and health["mode"] == "placeholder"
    assert http(DEFAULT_PORT, "/v1/models", token)[0] == 200
    status, body = http(DEFAULT_PORT, "/v1/models", "llm-proxy-wrong")
    assert status == 401 and body["error"]["code"] == "invalid_api_key"

    # The token lives in the OS keychain (GNOME Keyring here), not in a file.
    assert keychain_lookup("access-token") == token
    assert not (CONFIG_DIR / "secrets.json").exists()
    assert token not in (CONFIG_DIR / "settings.json").read_text()

    app.screenshot("desktop-window.png")
    # The tray shows the "on" icon (its purple square and green dot) while the proxy runs.
    wait_until(
        lambda: (colours := tray_icon_colours())
        and has_colour(colours, ON_ICON_PURPLE)
        and has_colour(colours, ON_ICON_GREEN),
        what='the tray to show the "on" icon',
    )
    grab_tray("desktop-tray.png")


def test_turning_off_closes_the_port_and_on_opens_it_and_the_icon_follows(launch):
    app = launch("--show")
    app.state_line("Running on", timeout=40)
    grab_tray("tray-on.png")
    app.click("#proxy-toggle")
    assert app.state_line("Stopped") == "Stopped"
    wait_until(lambda: not port_open(DEFAULT_PORT), what="the port to close")
    grab_tray("tray-off.png")
    assert pixels("tray-on.png") != pixels("tray-off.png"), "the tray icon did not change"

    # Data views say the proxy is off, and offer to turn it on.
    app.go("calls")
    assert "off" in app.text_of("#proxy-off h2")
    app.click("#proxy-off button")
    wait_until(lambda: port_open(DEFAULT_PORT), what="the port to open")
    assert app.state_line("Running on").endswith(f":{DEFAULT_PORT}")


def test_the_token_survives_a_restart_and_a_call_shows_in_the_log_view(launch):
    first = launch("--show")
    first.state_line("Running on", timeout=40)
    token = first.token()
    first.driver.quit()
    # An exiting process leaves /proc (as pgrep sees it) a moment before its sockets close.
    wait_until(lambda: not app_processes() and not port_open(DEFAULT_PORT), what="the first app to exit")

    app = launch("--show")
    app.state_line("Running on", timeout=40)
    assert app.token() == token, "the access token changed across a restart"

    client = OpenAI(base_url=f"http://localhost:{DEFAULT_PORT}/v1", api_key=token, max_retries=0)
    reply = client.chat.completions.create(
        model="desktop-e2e-model", messages=[{"role": "user", "content": "Hello from the desktop test"}]
    )
    assert reply.choices[0].message.content

    app.go("calls")
    row = app.wait(
        lambda d: next(
            (t for t in d.execute_script("return [...document.querySelectorAll('table tbody tr')].map(r => r.textContent)") if "desktop-e2e-model" in t),
            False,
        ),
        timeout=20,
    )
    assert "/v1/chat/completions" in row and "200" in row
    app.screenshot("desktop-calls.png")


def test_a_new_port_in_settings_moves_the_proxy(launch):
    app = launch("--show")
    app.state_line("Running on", timeout=40)
    new_port = free_port()
    app.go("settings")
    field = app.wait(lambda d: next(iter(app.find_all("#setting-port")), False))
    field.clear()
    field.send_keys(str(new_port))
    app.click("#save-settings")
    wait_until(lambda: port_open(new_port), what=f"the proxy on port {new_port}")
    wait_until(lambda: not port_open(DEFAULT_PORT), what="the old port to close")
    # The window shows the move once its refresh after saving has read the new status: wait for
    # the line (reading it at once raced that refresh in one CI run).
    expected = f"Running on http://127.0.0.1:{new_port}"
    assert app.state_line(expected) == expected
    assert http(new_port, "/health")[0] == 200
    app.go("settings")
    app.wait(lambda d: app.find_all("#setting-port"))
    app.screenshot("desktop-settings.png")


def test_invalid_settings_are_marked_where_they_are_and_not_saved(launch):
    app = launch("--show")
    app.state_line("Running on", timeout=40)
    before = (CONFIG_DIR / "settings.json").read_text()
    app.go("settings")
    endpoint = app.wait(lambda d: next(iter(app.find_all("#setting-targetEndpoint")), False))
    endpoint.clear()
    endpoint.send_keys("ftp://not-http.example.com")
    assert "http" in app.text_of("#error-targetEndpoint")  # as typed
    app.click("#save-settings")
    assert "http" in app.text_of("#error-targetEndpoint")
    assert (CONFIG_DIR / "settings.json").read_text() == before


def check_steps(app, at_least):
    """The Test connection list once it has `at_least` steps: [(mark, text)]."""
    return app.wait(
        lambda d: (
            steps := d.execute_script(
                "return [...document.querySelectorAll('#check-steps li')].map(li => [li.querySelector('.mark')?.textContent, li.textContent])"
            )
        )
        and len(steps) >= at_least
        and steps,
        timeout=60,
    )


def test_test_connection_shows_each_step_and_names_what_fails(launch):
    app = launch("--show")
    app.state_line("Running on", timeout=40)
    app.go("settings")
    app.click("#test-connection")
    steps = check_steps(app, 6)
    assert steps[0][1].startswith("okconfiguration"), steps
    assert all(mark == "ok" for mark, _ in steps), steps
    assert any("chat" in text for _, text in steps), steps

    # A target nobody listens on: saved, applied, and the target step fails with a hint.
    dead = free_port()
    endpoint = app.wait(lambda d: next(iter(app.find_all("#setting-targetEndpoint")), False))
    endpoint.clear()
    endpoint.send_keys(f"http://127.0.0.1:{dead}/v1")
    app.click("#save-settings")
    # The form is redrawn from what was saved before the toast says so.
    app.wait(lambda d: "Saved and applied" in d.execute_script("return document.querySelector('#toasts').textContent"))
    assert '"targetEndpoint": "http' in (CONFIG_DIR / "settings.json").read_text()
    app.click("#test-connection")
    steps = check_steps(app, 2)
    failed = [text for mark, text in steps if mark == "FAIL"]
    # A step failed, and the first failure names the dead target or says it refused.
    assert failed and (f"127.0.0.1:{dead}" in failed[0] or "refused" in failed[0].lower()), steps
    assert "Likely cause and fix" in failed[0], steps
    app.screenshot("desktop-test-connection.png")
    write_settings(targetEndpoint="")


def test_a_port_in_use_offers_the_next_free_one(launch):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    try:
        write_settings(port=taken)
        app = launch("--show")
        line = app.state_line("Error", timeout=40)
        assert line == f"Error: port {taken} is in use"
        button = app.wait(lambda d: next(iter(app.find_all("#use-suggested-port")), False))
        suggested = int(button.get_attribute("textContent").split()[2])
        assert suggested != taken
        button.click()
        wait_until(lambda: port_open(suggested), what="the proxy on the suggested port")
        assert app.state_line("Running on") == f"Running on http://127.0.0.1:{suggested}"
    finally:
        blocker.close()


def test_start_at_login_adds_and_removes_the_autostart_entry(launch):
    app = launch("--show")
    app.state_line("Running on", timeout=40)
    entry = HOME / ".config" / "autostart" / "Local LLM Proxy.desktop"
    assert not entry.exists()
    toasts = "return document.querySelector('#toasts').textContent"
    app.click("#start-at-login")
    wait_until(entry.exists, what="the autostart entry")
    # The entry starts this very binary (as the app sees its own path: symlinks resolved), in
    # the background.
    exec_line = f"Exec={os.path.realpath(APP)} --background"
    text = entry.read_text()
    assert exec_line in text.splitlines(), f"no line {exec_line!r} in:\n{text}"
    # The second click must land on the box redrawn from the saved choice, not a redraw in flight.
    app.wait(lambda d: "will start at login" in d.execute_script(toasts))
    assert app.driver.find_element(By.CSS_SELECTOR, "#start-at-login").is_selected()
    app.click("#start-at-login")
    wait_until(lambda: not entry.exists(), what="the autostart entry to go")
    app.wait(lambda d: "will not start at login" in d.execute_script(toasts))
    assert not app.driver.find_element(By.CSS_SELECTOR, "#start-at-login").is_selected()


def test_a_second_launch_exits_and_leaves_the_first_running(launch):
    app = launch("--show")
    line = app.state_line("Running on", timeout=40)
    port = int(line.rsplit(":", 1)[1])
    second = subprocess.run([APP], capture_output=True, text=True, timeout=60, env=os.environ)
    assert second.returncode == 0, second.stderr
    assert http(port, "/health")[0] == 200
    assert app.state_line("Running on") == line


TRAY_ICON = ("1264", "16")  # the one icon trayer shows, at the top right


def tray_menu(choose):
    """Opens the tray menu with a click on the icon and picks an item with the keyboard, as a
    user would: the first enabled item is the on/off toggle, the last is Quit."""
    wait_until(lambda: not menu_shown(), what="the previous menu to close")
    subprocess.run(["xdotool", "mousemove", *TRAY_ICON, "click", "1"], check=True)
    wait_until(menu_shown, what="the tray menu")
    subprocess.run(["import", "-window", "root", str(ARTIFACTS / "desktop-tray-menu.png")], check=True)
    subprocess.run(["xdotool", "key", *choose, "Return"], check=True)


def clipboard():
    found = subprocess.run(["xclip", "-o", "-selection", "clipboard"], capture_output=True, text=True, timeout=10)
    return found.stdout if found.returncode == 0 else ""


def menu_shown():
    """Whether the tray menu covers a patch of the screen that is otherwise bare root window
    (right of the app's window, below the tray)."""
    patch = subprocess.run(
        ["import", "-window", "root", "-crop", "60x100+1205+100", "-depth", "8", "rgb:-"],
        check=True,
        capture_output=True,
    ).stdout
    return len(set(patch)) > 2


def close_window():
    """Asks the window to close as a window manager does when its close button is clicked
    (WM_DELETE_WINDOW; Xvfb has no window manager to do it). Like a window manager, it sends
    the request only once the window says it takes it (WM_DELETE_WINDOW in its WM_PROTOCOLS)."""
    from Xlib import X, display
    from Xlib.protocol import event

    ids = subprocess.run(
        ["xdotool", "search", "--onlyvisible", "--name", "^Local LLM Proxy$"], capture_output=True, text=True
    ).stdout.split()
    assert ids, "no window to close"
    screen = display.Display()
    protocols = screen.intern_atom("WM_PROTOCOLS")
    delete = screen.intern_atom("WM_DELETE_WINDOW")
    for window_id in ids:
        window = screen.create_resource_object("window", int(window_id))

        def takes_delete():
            listed = window.get_full_property(protocols, X.AnyPropertyType)
            return listed is not None and delete in listed.value

        wait_until(takes_delete, what=f"window {window_id} to list WM_DELETE_WINDOW in WM_PROTOCOLS")
        message = event.ClientMessage(window=window, client_type=protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0]))
        window.send_event(message, event_mask=X.NoEventMask)
    screen.flush()
    screen.close()


def close_once_and_wait(timeout=20):
    """Clicks the close button once, as a user would, and waits for the window to go: a close
    request the window ignores fails the test instead of being sent again."""
    close_window()
    wait_until(
        lambda: not window_shown(),
        timeout=timeout,
        what=f"the window to close after one close request (WM_DELETE_WINDOW): still shown after {timeout} s",
    )


def window_shown():
    found = subprocess.run(
        ["xdotool", "search", "--onlyvisible", "--name", "^Local LLM Proxy$"], capture_output=True, text=True
    )
    return bool(found.stdout.split())


def test_closing_the_window_keeps_the_proxy_and_the_tray_reopens_it(launch):
    app = launch("--show")
    line = app.state_line("Running on", timeout=40)
    port = int(line.rsplit(":", 1)[1])
    assert window_shown()
    close_once_and_wait()
    assert app_processes(), "closing the window quit the app"
    assert http(port, "/health")[0] == 200, "closing the window stopped the proxy"

    # Launching the app again opens the running one's window instead of starting another.
    second = subprocess.run([APP], capture_output=True, text=True, timeout=60, env=os.environ)
    assert second.returncode == 0, second.stderr
    wait_until(window_shown, what="a second launch to bring the window back")
    assert len(app_processes()) == 1

    close_once_and_wait()
    tray_menu(["Down"] * 7)  # Open dashboard
    wait_until(window_shown, what="the window to open again from the tray")
    assert http(port, "/health")[0] == 200


def test_the_tray_menu_turns_the_proxy_off_and_on_and_quit_stops_everything(launch):
    app = launch("--show")
    line = app.state_line("Running on", timeout=40)
    port = int(line.rsplit(":", 1)[1])

    tray_menu(["Down"])  # Turn proxy off
    wait_until(lambda: not port_open(port), what="the port to close from the tray")
    assert app.state_line("Stopped") == "Stopped"  # the window follows

    tray_menu(["Down"])  # Turn proxy on
    wait_until(lambda: port_open(port), what="the port to open from the tray")
    assert app.state_line("Running on") == line

    # The copy items put exactly what a tool needs on the clipboard.
    token = app.token()
    tray_menu(["Down", "Down"])  # Copy base URL
    wait_until(lambda: clipboard() == f"http://localhost:{port}/v1", what="the base URL on the clipboard")
    tray_menu(["Down", "Down", "Down"])  # Copy access token
    wait_until(lambda: clipboard() == token, what="the token on the clipboard")
    tray_menu(["Down", "Down", "Down", "Down"])  # Copy environment (bash/zsh)
    wait_until(lambda: f'export OPENAI_API_KEY="{token}"' in clipboard(), what="the environment on the clipboard")
    assert f'export OPENAI_BASE_URL="http://localhost:{port}/v1"' in clipboard()
    tray_menu(["Down"] * 6)  # Copy environment (Claude Code)
    wait_until(lambda: f'export ANTHROPIC_AUTH_TOKEN="{token}"' in clipboard(), what="Claude Code's environment on the clipboard")
    assert f'export ANTHROPIC_BASE_URL="http://localhost:{port}"' in clipboard()

    tray_menu(["Up"])  # Quit
    wait_until(lambda: not port_open(port), what="Quit to stop the server")
    wait_until(lambda: not app_processes(), what="the app to exit")
