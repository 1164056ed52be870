"""A headless Chromium driven over the DevTools protocol: open a page, read it with
JavaScript, take a screenshot. For the dashboard's test and its screenshot; it needs
Debian's `chromium` (scripts/install-test-deps.sh installs it) and nothing from PyPI
but `websockets`, which uvicorn[standard] brings.

    with Chromium("http://127.0.0.1:8001/ui") as browser:
        browser.wait_for("document.querySelectorAll('#members tbody tr').length === 3")
        browser.screenshot(Path("docs/dashboard.png"))
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from node.tools.local_cluster import free_ports

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


class BrowserError(RuntimeError):
    pass


class Chromium:
    """One headless Chromium process showing `url`; stopped by PID (its process group) on exit."""

    def __init__(self, url: str, width: int = 1280, height: int = 900, timeout: float = 30.0) -> None:
        self.url, self.width, self.height, self.timeout = url, width, height, timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.ws: ClientConnection | None = None
        self.profile = Path(tempfile.mkdtemp(prefix="gossip-chromium-"))
        self.ids = itertools.count(1)
        self.stack = contextlib.ExitStack()  # the DevTools connection

    def __enter__(self) -> Chromium:
        binary = find_browser()
        if binary is None:
            raise BrowserError(f"no browser found (looked for {', '.join(BROWSERS)})")
        port = free_ports(1)[0]
        with (self.profile / "chromium.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-extensions", "--hide-scrollbars", f"--window-size={self.width},{self.height}",
                 f"--remote-debugging-port={port}", f"--user-data-dir={self.profile}", self.url],
                stdout=subprocess.DEVNULL, stderr=log,
                start_new_session=True,  # its helper processes share its group, stopped with it
            )
        try:
            self.ws = self.stack.enter_context(connect(self._page_socket(port), max_size=None,
                                                       open_timeout=self.timeout))
            self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                      deviceScaleFactor=1, mobile=False)
            self._wait_loaded(self.url)
        except BaseException:
            self.close()
            raise
        return self

    def _page_socket(self, port: int) -> str:
        """The DevTools address of the page Chromium opened, once it listens."""
        deadline = time.monotonic() + self.timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                log = (self.profile / "chromium.log").read_text(errors="replace")[-2000:]
                raise BrowserError(f"chromium exited with {self.proc.returncode}:\n{log}")
            with contextlib.suppress(httpx.HTTPError, ValueError):
                targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=1).json()
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    return str(pages[0]["webSocketDebuggerUrl"])
            if time.monotonic() > deadline:
                raise BrowserError(f"chromium did not open its DevTools port within {self.timeout} s")
            time.sleep(0.1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result (events in between are skipped)."""
        assert self.ws is not None
        request_id = next(self.ids)
        self.ws.send(json.dumps({"id": request_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=self.timeout))
            if message.get("id") == request_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if a promise)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20.0, what: str = "") -> Any:
        """Poll until the expression is truthy in the page; its value. BrowserError at the deadline."""
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(expression)):
            if time.monotonic() > deadline:
                page = self.evaluate("document.body ? document.body.innerText : ''")
                raise BrowserError(
                    f"timed out after {timeout} s waiting for {what or expression}; page:\n{page}"
                )
            time.sleep(0.1)
        return value

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self._wait_loaded(url)

    def _wait_loaded(self, url: str) -> None:
        page = json.dumps(url.split("?")[0])  # (a page may rewrite its query)
        self.wait_for(f"location.href.startsWith({page}) && document.readyState === 'complete'",
                      self.timeout, f"{url} to load")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stack.close()
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            with contextlib.suppress(ProcessLookupError):  # helpers it left behind, in its own group
                os.killpg(self.proc.pid, signal.SIGKILL)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
