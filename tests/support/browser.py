"""Real headless Chromium for tests, driven over the Chrome DevTools Protocol (websocket-client, no selenium)."""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import urllib.request
import zlib
from pathlib import Path
from types import TracebackType
from typing import Any

import websocket

from tests.support.procs import home_env

#: Executable names tried in order; CHROMIUM overrides.
CANDIDATES: tuple[str, ...] = ("chromium", "chromium-browser", "google-chrome")
FLAGS: tuple[str, ...] = (
    "--headless=new",
    "--no-sandbox",  # tests run as root, where the sandbox refuses to start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--remote-debugging-port=0",  # Chromium picks a free port and writes it to DevToolsActivePort
)

_OPEN: set[Browser] = set()


def chromium_path() -> str | None:
    """The Chromium executable, or None when none is installed."""
    env = os.environ.get("CHROMIUM")
    if env:
        return shutil.which(env)
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class BrowserError(RuntimeError):
    """Chromium did not start, a CDP command failed, or page JavaScript threw."""


class Browser:
    """One headless Chromium with one page; every call blocks, so run servers under test on another thread."""

    def __init__(self, *, start_timeout_s: float = 20.0, command_timeout_s: float = 15.0) -> None:
        exe = chromium_path()
        if exe is None:
            raise BrowserError(f"no Chromium found (tried {', '.join(CANDIDATES)}): apt-get install chromium")
        self.command_timeout_s = command_timeout_s
        self.tmp = Path(tempfile.mkdtemp(prefix="cdp-"))
        self.profile = self.tmp / "profile"
        self.log_path = self.tmp / "chromium.log"
        # Chromium's crash handler ignores --user-data-dir and writes under $HOME; a private HOME keeps it in tmp
        # and puts our tmp path into its command line, which leftover_pids() looks for.
        env = {**os.environ, **home_env(self.tmp / "home")}
        env.pop("DISPLAY", None)  # headless needs no X server; never draw on a developer's desktop
        self.dialogs: list[str] = []
        self.exceptions: list[str] = []
        self.console: list[str] = []
        self._next_id = 0
        self._ws: websocket.WebSocket | None = None
        t0 = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [exe, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # one process group to kill at the end
            )
        _OPEN.add(self)
        try:
            self._attach(t0 + start_timeout_s)
        except BaseException:
            self.close()
            raise
        self.start_s = time.monotonic() - t0

    def __enter__(self) -> Browser:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "<no log>"

    def _attach(self, deadline: float) -> None:
        port_file = self.profile / "DevToolsActivePort"
        port = 0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrowserError(f"chromium exited with {self.proc.returncode}\n{self._log_tail()}")
            with contextlib.suppress(OSError, ValueError, IndexError):
                port = int(port_file.read_text().splitlines()[0])
                break
            time.sleep(0.02)
        if not port:
            raise BrowserError(f"chromium wrote no DevToolsActivePort\n{self._log_tail()}")
        self.port = port
        target = None
        while time.monotonic() < deadline and target is None:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                targets = json.load(r)
            target = next((t for t in targets if t.get("type") == "page"), None)
            if target is None:
                time.sleep(0.05)
        if target is None:
            raise BrowserError("chromium has no page target")
        # Chromium refuses DevTools WebSockets that carry an Origin header it was not told to allow.
        self._ws = websocket.create_connection(
            target["webSocketDebuggerUrl"], timeout=self.command_timeout_s, suppress_origin=True
        )
        self.send("Page.enable")
        self.send("Runtime.enable")
        # OBS composites its browser source over a transparent default; headless would paint white.
        self.send("Emulation.setDefaultBackgroundColorOverride", {"color": {"r": 0, "g": 0, "b": 0, "a": 0}})

    # -- protocol

    def _handle_event(self, msg: dict[str, Any]) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Page.javascriptDialogOpening":
            self.dialogs.append(str(params.get("message")))
            # An open dialog would stall the page (and every later evaluate) until someone answers it.
            self._post("Page.handleJavaScriptDialog", {"accept": False})
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.exceptions.append(str(details.get("exception", {}).get("description") or details.get("text")))
        elif method == "Runtime.consoleAPICalled":
            args = params.get("args", [])
            self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))

    def _post(self, method: str, params: dict[str, Any] | None = None) -> int:
        if self._ws is None:
            raise BrowserError("browser is closed")
        self._next_id += 1
        self._ws.send(json.dumps({"id": self._next_id, "method": method, "params": params or {}}))
        return self._next_id

    def _read(self, deadline: float) -> dict[str, Any]:
        assert self._ws is not None
        self._ws.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            msg: dict[str, Any] = json.loads(self._ws.recv())
        except websocket.WebSocketTimeoutException:
            raise TimeoutError("no DevTools message in time") from None
        if "method" in msg:
            self._handle_event(msg)
        return msg

    def send(self, method: str, params: dict[str, Any] | None = None, timeout_s: float | None = None) -> Any:
        """Send one CDP command and return its result (events that arrive meanwhile are handled)."""
        cid = self._post(method, params)
        deadline = time.monotonic() + (timeout_s or self.command_timeout_s)
        while True:
            msg = self._read(deadline)
            if msg.get("id") == cid:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def wait_event(self, method: str, timeout_s: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            msg = self._read(deadline)
            if msg.get("method") == method:
                params: dict[str, Any] = msg.get("params", {})
                return params

    # -- what tests use

    def navigate(self, url: str, timeout_s: float = 10.0) -> None:
        """Load url and wait for its load event; raises on a network error (an HTTP error page still loads)."""
        res = self.send("Page.navigate", {"url": url}, timeout_s)
        if res.get("errorText"):
            raise BrowserError(f"navigate {url}: {res['errorText']}")
        self.wait_event("Page.loadEventFired", timeout_s)

    def evaluate(self, js: str) -> Any:
        """Value of a JavaScript expression in the page (promises awaited; must be JSON-serialisable)."""
        res = self.send("Runtime.evaluate", {"expression": js, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in res:
            d = res["exceptionDetails"]
            raise BrowserError(f"{js!r} threw: {d.get('exception', {}).get('description') or d.get('text')}")
        return res.get("result", {}).get("value")

    def wait_for(self, js_predicate: str, timeout_s: float = 5.0, interval_s: float = 0.03) -> Any:
        """Poll a JavaScript expression until it is truthy; return its value, or raise TimeoutError with the last."""
        deadline = time.monotonic() + timeout_s
        value: Any = None
        while True:
            value = self.evaluate(js_predicate)
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{js_predicate!r} still {value!r} after {timeout_s}s")
            time.sleep(interval_s)

    def screenshot(self, path: str | os.PathLike[str] | None = None, clip: dict[str, float] | None = None) -> bytes:
        """PNG of the viewport (or of clip {x, y, width, height} in CSS px); written to path if given."""
        params: dict[str, Any] = {"format": "png"}
        if clip is not None:
            params["clip"] = {**clip, "scale": 1}
        png = base64.b64decode(self.send("Page.captureScreenshot", params)["data"])
        if path is not None:
            Path(path).write_bytes(png)
        return png

    def pixel(self, x: float, y: float) -> tuple[int, int, int, int]:
        """RGBA of one CSS pixel as composited (the default background is transparent, as in OBS)."""
        return _png_first_pixel(self.screenshot(clip={"x": x, "y": y, "width": 1, "height": 1}))

    # -- shutdown

    def leftover_pids(self) -> list[int]:
        """Live processes whose command line names our temp dir (Chromium and its helpers, incl. crashpad)."""
        mark = str(self.tmp).encode()
        found = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                with contextlib.suppress(OSError):
                    if mark in (d / "cmdline").read_bytes():  # a zombie's cmdline is empty: not counted
                        found.append(int(d.name))
        return found

    def close(self) -> None:
        """Close the browser, kill its process group and any helper outside it, remove the temp dir."""
        if self._ws is not None:
            with contextlib.suppress(Exception):
                self._post("Browser.close")
            with contextlib.suppress(Exception):
                self._ws.close()
            self._ws = None
        p = self.proc
        if p.returncode is None:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        # Right after reaping the leader its group id is still not reusable while members live.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)
        # The crash handler starts its own session, so the group kill misses it; it names our HOME.
        deadline = time.monotonic() + 5
        while (pids := self.leftover_pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        _OPEN.discard(self)
        shutil.rmtree(self.tmp, ignore_errors=True)


@atexit.register
def _close_all() -> None:
    for b in list(_OPEN):
        b.close()


def _png_first_pixel(png: bytes) -> tuple[int, int, int, int]:
    """RGBA of the top-left pixel of an 8-bit RGB/RGBA PNG.

    For the first pixel every PNG filter predicts 0 (no left or upper neighbour), so it is stored raw.
    """
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise BrowserError("not a PNG")
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    depth, color_type = header[8], header[9]
    if depth != 8 or color_type not in (2, 6):
        raise BrowserError(f"unsupported PNG (bit depth {depth}, colour type {color_type})")
    raw = zlib.decompress(idat)
    if color_type == 6:
        return raw[1], raw[2], raw[3], raw[4]
    return raw[1], raw[2], raw[3], 255
