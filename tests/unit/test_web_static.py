"""The dashboard's and overlay's files in captioner/web/static: declared for the wheel, and what the server serves."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from importlib import resources
from pathlib import Path

import aiohttp

from captioner.status import Status
from captioner.web import dashboard
from captioner.web import server as http
from captioner.web.overlay import OverlayHub

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "captioner" / "web" / "static"


def packaged(name: str) -> str:
    """A static file as the installed package has it (what the server reads), not the source tree's copy."""
    return (resources.files("captioner.web") / "static" / name).read_text(encoding="utf-8")


def assert_served(template: str, body: str, name: str) -> None:
    """Every literal piece of template (the text between its @@NAME@@ placeholders) is in body, in order."""
    pos = 0
    for part in re.split(r"@@\w+@@", template):
        found = body.find(part, pos)
        assert found >= 0, f"{name}: {part[:80]!r} not served (after offset {pos})"
        pos = found + len(part)


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status, await r.text()


async def test_server_serves_the_packaged_files() -> None:
    hub = OverlayHub()
    hub.set_languages(["ja"])
    runner, port = await http.start(Status("test"), "127.0.0.1", 0, hub)
    try:
        status, page = await _get(f"http://127.0.0.1:{port}/")
        assert status == 200
        status, overlay = await _get(f"http://127.0.0.1:{port}/overlay?lang=ja")
        assert status == 200
    finally:
        await runner.cleanup()

    assert "<title>captioner dashboard</title>" in page and "<title>captions: ja</title>" in overlay
    for name in ("dashboard.html", "dashboard.css", "dashboard.js"):
        assert_served(packaged(name), page, name)
    for name in ("overlay.html", "overlay.css", "overlay.js"):
        assert_served(packaged(name), overlay, name)
    # The JS and CSS are inlined whole, and the scripts get the server's values, not their placeholders.
    assert "<style>\n" + packaged("dashboard.css") + "</style>" in page
    assert "<script>\n" + packaged("overlay.js") + "</script>" in overlay
    pinned = f"POLL_MS = {dashboard.POLL_MS}, RECENT = {dashboard.RECENT_FINALS}, MAX_STREAMS = {dashboard.MAX_STREAMS}"
    assert pinned in page
    assert "@@" not in page and "@@" not in overlay


def test_every_static_file_is_declared_as_package_data() -> None:
    """A static file not matched here would be missing from the wheel: the page would fail only once installed."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        patterns = tomllib.load(f)["tool"]["setuptools"]["package-data"]["captioner.web"]
    files = sorted(p.relative_to(STATIC.parent).as_posix() for p in STATIC.rglob("*") if p.is_file())
    assert files, "no static files found"
    for rel in files:
        assert any(fnmatch.fnmatch(rel, pattern) for pattern in patterns), f"{rel} is not in package-data"
