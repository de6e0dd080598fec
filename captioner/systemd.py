"""systemd's notify protocol without libsystemd: READY, STOPPING, STATUS lines and watchdog pings."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable

from .status import Status
from .ticks import until_next

log = logging.getLogger(__name__)


def notify(message: str) -> None:
    """sd_notify: one datagram to $NOTIFY_SOCKET, if systemd gave us one."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(path)
            sock.sendall(message.encode())
    except OSError as e:
        log.debug("sd_notify failed: %s", e)


def watchdog_interval_s(default_s: float) -> tuple[float, bool]:
    """How often to ping (half of WatchdogSec, at most `default_s`) and whether systemd watches at all."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    if usec.isdigit() and int(usec) > 0:
        return min(default_s, int(usec) / 2e6), True
    return default_s, False


async def heartbeat(status: Status, tick: Callable[[], None], every_s: float) -> None:
    """Watchdog pings from the event loop (a hung loop stops them), a STATUS line, and `tick` each time."""
    interval, watched = watchdog_interval_s(every_s)
    while True:
        links = ", ".join(f"{name} {link.state.value}" for name, link in status.links.items())
        count = sum(o.final_count for o in status.languages.values())
        notify(f"WATCHDOG=1\nSTATUS={count} captions; {links}" if watched else f"STATUS={count} captions; {links}")
        tick()
        await asyncio.sleep(until_next(asyncio.get_running_loop().time(), interval))  # with the other ticks
