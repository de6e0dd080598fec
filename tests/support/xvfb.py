"""Xvfb for headless OBS: a free display number, and closing a window the way its close button does."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.support.procs import log_tail, reap, spawn, wait_for


def free_display(start: int = 90, stop: int = 150, skip: Sequence[int] = ()) -> int:
    """Return the first X display number in [start, stop] with neither a socket nor a lock file."""
    for n in range(start, stop + 1):
        if n in skip:
            continue
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError(f"no free X display in {start}..{stop}")


# Sends WM_DELETE_WINDOW to every top-level window whose WM_NAME starts with argv[2] on X display argv[1], i.e.
# what clicking the main window's close button does. Runs in a child process so an Xlib failure cannot take the
# test process down. Exit status 0 = sent, 1 = no such window, 2 = cannot open the display.
X11_CLOSE_SCRIPT = r"""
import ctypes, sys
from ctypes import POINTER, byref, c_char, c_char_p, c_int, c_long, c_uint, c_ulong, c_void_p
class XClientMessageEvent(ctypes.Structure):
    _fields_ = [("type", c_int), ("serial", c_ulong), ("send_event", c_int), ("display", c_void_p),
                ("window", c_ulong), ("message_type", c_ulong), ("format", c_int), ("data", c_long * 5)]
class XEvent(ctypes.Union):
    _fields_ = [("xclient", XClientMessageEvent), ("pad", c_long * 24)]
x = ctypes.CDLL("libX11.so.6")
on_error = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p)(lambda d, e: 0)
x.XSetErrorHandler(on_error)
x.XOpenDisplay.restype = c_void_p
x.XOpenDisplay.argtypes = [c_char_p]
x.XDefaultRootWindow.restype = c_ulong
x.XDefaultRootWindow.argtypes = [c_void_p]
x.XQueryTree.argtypes = [c_void_p, c_ulong, POINTER(c_ulong), POINTER(c_ulong), POINTER(POINTER(c_ulong)),
                         POINTER(c_uint)]
x.XFetchName.argtypes = [c_void_p, c_ulong, POINTER(POINTER(c_char))]
x.XInternAtom.restype = c_ulong
x.XInternAtom.argtypes = [c_void_p, c_char_p, c_int]
x.XSendEvent.argtypes = [c_void_p, c_ulong, c_int, c_long, c_void_p]
for f in (x.XFree, x.XFlush, x.XCloseDisplay):
    f.argtypes = [c_void_p]
dpy = x.XOpenDisplay(sys.argv[1].encode())
if not dpy:
    sys.exit(2)
root, parent, children, n = c_ulong(), c_ulong(), POINTER(c_ulong)(), c_uint()
x.XQueryTree(dpy, x.XDefaultRootWindow(dpy), byref(root), byref(parent), byref(children), byref(n))
windows = [children[i] for i in range(n.value)]
if children:
    x.XFree(children)
protocols = x.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
delete = x.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
sent = 0
for w in windows:
    name = POINTER(c_char)()
    if x.XFetchName(dpy, w, byref(name)) and name:
        title = ctypes.cast(name, c_char_p).value.decode(errors="replace")
        x.XFree(name)
        if title.startswith(sys.argv[2]):
            ev = XEvent()
            ev.xclient.type = 33  # ClientMessage
            ev.xclient.window = w
            ev.xclient.message_type = protocols
            ev.xclient.format = 32
            ev.xclient.data[0] = delete
            x.XSendEvent(dpy, w, 0, 0, byref(ev))
            sent += 1
x.XFlush(dpy)
x.XCloseDisplay(dpy)
sys.exit(0 if sent else 1)
"""


def start_xvfb(logs: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Xvfb on the first free display (1280x720x24, no TCP); returns the process and its display number."""
    tried: list[int] = []
    for _ in range(5):  # another run may grab the same display between our check and Xvfb's lock
        n = free_display(skip=tried)
        tried.append(n)
        log = logs / "xvfb.log"
        p = spawn(["Xvfb", f":{n}", "-screen", "0", "1280x720x24", "-nolisten", "tcp"], log)
        sock = Path(f"/tmp/.X11-unix/X{n}")
        try:
            wait_for(sock.exists, 10, f"Xvfb :{n}", p, log)
        except (RuntimeError, TimeoutError):
            reap(p)
            continue
        return p, n
    raise RuntimeError(f"could not start Xvfb (tried {tried})\n{log_tail(logs / 'xvfb.log')}")


def close_window(display: int, title_prefix: str) -> bool:
    """Send WM_DELETE_WINDOW to the windows whose title starts with title_prefix; False if none or on failure."""
    try:
        r = subprocess.run(
            [sys.executable, "-c", X11_CLOSE_SCRIPT, f":{display}", title_prefix],
            capture_output=True,
            timeout=10,
        )
    except subprocess.TimeoutExpired:
        return False
    return r.returncode == 0
