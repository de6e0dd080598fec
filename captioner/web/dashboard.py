"""Operator dashboard at GET /: one self-contained page that polls /status and calls POST /control/<action>."""

from __future__ import annotations

import base64
import hashlib
from typing import Final

from aiohttp import web

from . import assets

#: How often the page polls /status.
POLL_MS: Final = 1000
#: Finals kept per language on the page.
RECENT_FINALS: Final = 5
#: At most this many languages get an event stream; the rest follow /status. Browsers allow 6 connections per
#: server over HTTP/1.1 and every open stream holds one: the polls and the control buttons need the others.
MAX_STREAMS: Final = 4

# The page is static/dashboard.html with its CSS and JS inlined: one response, nothing else to fetch, and a CSP
# that names the two by hash. The JS gets the constants above through its @@NAME@@ placeholders.
_STYLE: Final = assets.inline("dashboard.css")
_SCRIPT: Final = assets.fill(
    assets.inline("dashboard.js"), {"POLL_MS": POLL_MS, "RECENT": RECENT_FINALS, "MAX_STREAMS": MAX_STREAMS}
)
PAGE: Final = assets.fill(assets.text("dashboard.html"), {"STYLE": _STYLE, "SCRIPT": _SCRIPT})


def _csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


#: Only this page's own script and style run, it talks only to this daemon, and no other site can frame it (its
#: buttons steer the daemon). Should a caption ever slip past the escaping, the browser still runs nothing of it.
CSP: Final = "; ".join(
    (
        "default-src 'none'",
        f"script-src {_csp_hash(_SCRIPT)}",
        f"style-src {_csp_hash(_STYLE)}",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

HEADERS: Final = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


async def dashboard_page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html", charset="utf-8", headers=HEADERS)


def add_routes(app: web.Application) -> None:
    """Register GET / (the dashboard) on app."""
    app.router.add_get("/", dashboard_page)
