"""The desktop app under WebDriver: each `launch()` starts the real app (tauri-driver runs it
and attaches WebKitWebDriver to its webview) and ends it when the test is done."""

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.options import ArgOptions
from selenium.webdriver.remote.client_config import ClientConfig
from selenium.webdriver.support.ui import WebDriverWait

APP = os.environ["APP_BIN"]
ARTIFACTS = Path(os.environ["ARTIFACTS"])
HOME = Path(os.environ["HOME"])
CONFIG_DIR = HOME / ".config" / "local-llm-proxy"
DRIVER = f"http://127.0.0.1:{os.environ['TAURI_DRIVER_PORT']}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    with contextlib.closing(socket.socket()) as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def http(port, path, token=None):
    """(status, body) of a GET to the proxy."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def wait_until(condition, timeout=20, what="condition"):
    """Polls `condition` until it returns something truthy; fails with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class App:
    def __init__(self, driver):
        self.driver = driver

    def wait(self, condition, timeout=20):
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(condition)

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def click(self, css):
        """Clicks `css`, finding it again if a redraw replaced it in between."""

        def clicked(driver):
            try:
                driver.find_element(By.CSS_SELECTOR, css).click()
                return True
            except (StaleElementReferenceException, NoSuchElementException):
                return False

        self.wait(clicked)

    def find_all(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text_of(self, css, timeout=20):
        """The text of `css` once it exists and is not empty."""

        def present(driver):
            text = driver.execute_script("return document.querySelector(arguments[0])?.textContent", css)
            return (text or "").strip() or False

        return self.wait(present, timeout)

    def go(self, view):
        self.driver.execute_script(f"location.hash = '#/{view}'")

    def state_line(self, starts_with, timeout=20):
        """Waits for the overview's proxy status line to start with `starts_with`."""
        self.go("overview")
        def matches(driver):
            text = driver.execute_script("return document.querySelector('#proxy-state')?.textContent")
            return text if text and text.startswith(starts_with) else False

        return self.wait(matches, timeout)

    def token(self):
        self.go("overview")
        reveal = self.wait(lambda d: next(iter(d.find_elements(By.XPATH, "//button[normalize-space()='Reveal']")), False))
        reveal.click()
        return self.text_of("#access-token[data-revealed='true']")

    def screenshot(self, name):
        self.driver.save_screenshot(str(ARTIFACTS / name))


@pytest.fixture
def launch():
    """`launch(*args)` starts the app and returns an `App`; every one is quit at the end.
    `application` runs another executable instead (a wrapper that changes the app's
    environment, then execs it)."""
    drivers = []

    def start(*args, application=APP):
        options = ArgOptions()
        options.set_capability("browserName", "wry")
        options.set_capability("tauri:options", {"application": application, "args": list(args)})
        config = ClientConfig(remote_server_addr=DRIVER, timeout=60)
        driver = webdriver.Remote(command_executor=DRIVER, options=options, client_config=config)
        drivers.append(driver)
        return App(driver)

    yield start
    for driver in drivers:
        with contextlib.suppress(Exception):
            driver.quit()
    # The next launch must not find this one still exiting: it would take it for the running
    # instance and hand over to it (single instance).
    wait_until(lambda: not app_processes(), timeout=30, what="the app to exit")


def app_processes():
    """Process ids of running copies of the app."""
    found = subprocess.run(["pgrep", "-f", APP], capture_output=True, text=True)
    return found.stdout.split()


def write_settings(**settings):
    CONFIG_DIR.mkdir(parents=True, exist_ok=True)
    path = CONFIG_DIR / "settings.json"
    current = json.loads(path.read_text()) if path.exists() else {}
    current.update(settings)
    path.write_text(json.dumps(current))
