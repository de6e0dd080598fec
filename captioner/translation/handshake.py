"""The translator WebSocket's handshake: the endpoint, the proxy the environment names, what a refusal means."""

from __future__ import annotations

import asyncio
import ipaddress
import urllib.parse
import urllib.request

import aiohttp

from ..errors import AuthError, LinkError
from .failures import ModelNotFound, RateLimited

_MAX_FRAME_BYTES = 4 * 1024 * 1024


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for a ws(s):// URL: WSS_PROXY / WS_PROXY, else HTTPS_PROXY / HTTP_PROXY.

    aiohttp's own trust_env looks only under the URL's scheme (wss_proxy), which corporate setups rarely set.
    NO_PROXY is honoured.
    """
    host = urllib.parse.urlsplit(url).hostname or ""
    # A translator on this machine (a local gateway, the demo stand-in) is never reached through a proxy.
    if not host or host == "localhost" or _loopback(host) or urllib.request.proxy_bypass(host):
        return None
    proxies = urllib.request.getproxies()
    secure = url.startswith("wss://")
    order = ("wss", "https") if secure else ("ws", "http")
    return next((proxies[k] for k in order if proxies.get(k)), None)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def open_socket(
    url: str, model: str, api_key: str, timeout_s: float, extra_headers: dict[str, str] | None = None
) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
    """The WebSocket handshake for `model`; a refusal raises what it means for retrying.

    Through the proxy the environment names, if any (a corporate proxy); TLS trusts the system's CAs, which
    SSL_CERT_FILE can replace.
    """
    headers = {**(extra_headers or {}), "Authorization": f"Bearer {api_key}"}
    # trust_env: proxy credentials from ~/.netrc as well.
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout_s), trust_env=True)
    try:
        ws = await asyncio.wait_for(
            http.ws_connect(
                f"{url}?model={model}",
                headers=headers,
                proxy=env_proxy(url),
                max_msg_size=_MAX_FRAME_BYTES,
                # The server may never answer our close frame (§4.5): do not wait 10 s for it.
                timeout=aiohttp.ClientWSTimeout(ws_close=1.5),
            ),
            timeout_s,
        )
    except aiohttp.WSServerHandshakeError as e:
        await http.close()
        if e.status in (401, 403):
            raise AuthError(f"HTTP {e.status} at handshake") from None
        if e.status == 429:
            raise RateLimited(f"HTTP {e.status} at handshake") from None
        if e.status == 404:
            raise ModelNotFound(f"model not found: the service does not know {model!r} (HTTP 404)") from None
        raise LinkError(f"HTTP {e.status} at handshake") from None
    except BaseException:
        await http.close()
        raise
    return http, ws
