"""Browser tests: ``actas dev`` as a real process, driven by Playwright in Debian's Chromium.

``make test`` installs Chromium (``scripts/install-system-deps chromium``);
Playwright never downloads a browser here, it is pointed at
``/usr/bin/chromium``. Screenshots of the key screens go to
``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from tests.support.processes import ACTAS, actas_env, free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
TOKEN_LIFETIME = 10  # seconds: End now must sign the app out within one token lifetime
DEFAULT_TIMEOUT_MS = 45_000  # Playwright waits for conditions; this only bounds a hang
expect.set_options(timeout=DEFAULT_TIMEOUT_MS)  # expect()'s own default is only 5 s

OPERATOR_PASSWORD = "actas-demo-operator"
USER_PASSWORD = "actas-demo-user"


@dataclass
class Stack:
    actas_url: str
    app_url: str
    secret_key: str
    log: Path

    def backend(self) -> httpx.Client:
        return httpx.Client(base_url=self.actas_url, timeout=10,
                            headers={"Authorization": f"Bearer {self.secret_key}"})


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"actas dev exited:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in time:\n{log.read_text()}")


@contextlib.contextmanager
def running_stack(data_dir: Path, **env: str) -> Iterator[Stack]:
    """``actas dev`` in a process of its own, on free ports, with ``env`` added."""
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: run `scripts/install-system-deps chromium`")
    port, app_port = free_port(), free_port()
    log = data_dir / "dev.log"
    environment = actas_env(ACTAS_SESSION_TOKEN_LIFETIME=str(TOKEN_LIFETIME), **env)
    environment.pop("ACTAS_PASSWORD_HASHING")  # the demo seeds with the production preset
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*ACTAS, "dev", "--host", "localhost", "--port", str(port), "--app-port",
             str(app_port), "--data-dir", str(data_dir / "actas")],
            cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180  # a busy machine starts slowly
        actas_url, app_url = f"http://localhost:{port}", f"http://localhost:{app_port}"
        _wait(f"{actas_url}/healthz", process, log, deadline)
        _wait(f"{app_url}/", process, log, deadline)
        secret_key = (data_dir / "actas" / "dev_secret_key").read_text().strip()
        yield Stack(actas_url, app_url, secret_key, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("dev")) as running:
        yield running


# Module scope, not session: Playwright's sync API keeps an event loop running in
# this thread while it is open, and the tests after these must not run inside it.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        # As root in a container, and with no network beyond loopback.
        args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"])
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    yield context
    context.close()


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def dashboard_sign_in(page: Page, stack: Stack, email: str) -> None:
    page.goto(f"{stack.actas_url}/dashboard/sign_in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{stack.actas_url}/dashboard/users")


def user_id(stack: Stack, email: str) -> str:
    with stack.backend() as backend:
        [user] = backend.get("/v1/users", params={"email_address": email}).json()
        return str(user["id"])


@pytest.fixture
def browser_context_pair(browser: Browser) -> Iterator[tuple[BrowserContext, BrowserContext]]:
    """Two separate browsers (cookie jars): the support engineer's and an owner's."""
    first = browser.new_context(viewport={"width": 1280, "height": 900})
    second = browser.new_context(viewport={"width": 1280, "height": 900})
    for context in (first, second):
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    yield first, second
    first.close()
    second.close()
