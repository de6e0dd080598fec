"""The package's import graph: no cycles, and the pure modules import none of the modules that do I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "captioner"

# Modules that talk to the outside world (a device, the sound server, a socket, OBS, a process, a file the daemon
# writes) or wire such modules together. Their logic is tested end to end against real OBS, PulseAudio and HTTP.
IO = {
    "__main__",  # the CLI
    "app",  # wires and supervises every part below
    "cli_tools",  # `captioner devices` / `check`: PortAudio, pactl, OBS and the translator once each
    "inputs.audio",  # PortAudio / libpulse capture, and the capture thread -> event loop hand-over
    "inputs.audio_devices",  # PortAudio's input list, pactl's monitor name, and the capture backend for a device
    "inputs.pulse",  # libpulse-simple through ctypes, pactl
    "inputs.pulse_stream",  # libpulse's record stream through ctypes, read from the event loop
    "voice",  # PortAudio playback
    "obs",  # obs-websocket, on a worker thread: caption texts, stream captions, screenshots
    "obs_client",  # obsws-python's clients, and each request we make of OBS
    "fonts",  # asks fontconfig (fc-match) which installed family has a language's glyphs
    "obs_watch",  # OBS's stream, recording, scene and mute state, from its events and replies
    "translation.session",  # the Qwen WebSocket sessions: connect, supervise, rotate, reconnect
    "translation.connection",  # one live Qwen WebSocket: its handshake, setup reads, sender and receiver tasks
    "translation.handshake",  # the WebSocket handshake: endpoint, proxy from the environment, refusals
    "translation.images",  # a session's screenshots, queued on its live connection
    "translation.meters",  # one target's counters, and each WebSocket frame decoded (or counted as bad)
    "vision",  # the sampler that takes OBS screenshots while someone speaks
    "web.server",  # the aiohttp server
    "web.dashboard",  # its aiohttp handlers
    "web.overlay",  # its aiohttp handlers and event streams
    "web.assets",  # reads the pages' files from the installed package
    "web.overlay_page",  # the overlay page: its style parameters, and its HTML from web.assets
    "server",  # signals, and the daemon under them
    "systemd",  # the notify socket
    "inputs.feed",  # hands captured audio to the translator sessions
    "listener",  # one input's capture, feed and sessions, started, switched and stopped
    "listeners",  # every input's listener, held and reconfigured together
    "obs_parts",  # starts and stops the OBS link and its outputs
    "control",  # the operator's actions, answered over HTTP
    "spending",  # the bill against the budgets, kept in the ledger file
    "reconnect",  # supervise(): the retry loop of every device link, and its state in /status
    "outputs.log",  # /status and the log
    "outputs.overlay",  # the overlay's event streams
    "outputs.obs_text",  # OBS text sources
    "outputs.stream_captions",  # OBS's stream captions
    "outputs.files",  # transcript files
    "outputs.posting",  # HTTP POSTs (aiohttp), their queue and retries
    "outputs.youtube",  # YouTube's caption ingestion
    "outputs.webhook",  # webhooks
    "standin",  # a local stand-in translator server (demo mode)
    "transcripts",  # transcript files
    "ledger",  # the daily spend file
    "status",  # the shared state /status shows, over the metrics
    "metrics",  # the metrics registry, and the CAPTIONER_TRACE file it appends to
}

# Modules without I/O: they compute (captions, layout, protocol frames, gating, costs) and are tested table-driven.
# Each imports only other pure modules, so any of them can be loaded, read and tested without a device, a socket,
# OBS or a file. config reads files only in its loader (load, and parse for the glossary files), never in a
# validator; presenter and reconnect use the event loop's clock, not the outside world.
PURE = {
    "__init__",
    "layout",
    "cea608",
    "translation",  # the package: imports nothing
    "translation.interpreter",  # server events -> captions, usage, errors
    "eager",  # runs a coroutine at once, in a task only if it waits (3.12's eager tasks)
    "translation.protocol",  # dialects and every client frame
    "translation.failures",  # the link errors a session retries on, each its own way
    "translation.policy",  # when a session is hung or due for rotation, what it bills, what the service changed
    "translation.setup",  # one target's session.update and what it bills, from the config
    "translation.timeline",  # when the audio a connection sent was spoken
    "web",  # the package: imports nothing
    "inputs",  # the package: imports nothing
    "outputs",  # the package: imports nothing
    "outputs.base",  # the output interface, the router, spoken_at
    "reload",  # what a new config changes: the reload plan
    "cost",
    "playout",
    "inputs.pcm",
    "inputs.pcm_convert",  # captured float blocks -> 16 kHz mono PCM16 chunks (numpy, soxr: no device)
    "inputs.gate",
    "inputs.turns",  # where sentences end: what the sessions are sent, commits
    "obs_state",
    "vocabulary",
    "speakers",  # who said what: the model's speaker ids named, and when labels show
    "config",  # the package: the public names of the modules below
    "config.sections",  # input, translator, OBS, HTTP, cost, pictures, voice
    "config.outputs",  # OBS text sources, YouTube and webhooks, files, vocabulary
    "config.model",  # the whole config and the rules across sections
    "config.loading",  # reads files only here, in the loader: YAML and glossary files
    "config.service",  # rules across keys on what the service is asked: voice clone, same-language skip
    "config.hints",  # every pydantic problem at once, and the nearest key or language to a mistyped one
    "config.inputs",  # the capture inputs and their rules; the names of each input's parts
    "presenter",
    "ticks",  # the shared grid the periodic checks wake on
    "placement",  # where created caption sources sit on the canvas, their size and font
    "readout",
    "tallies",
    "redaction",
    "errors",
}

# Libraries that do I/O: a pure module needs none of them.
IO_LIBRARIES = {"aiohttp", "sounddevice", "obsws_python", "subprocess", "socket", "ctypes", "soundfile"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)] = path
    return out


MODULES = _modules()


def _imports(name: str) -> tuple[set[str], set[str]]:
    """(captioner modules, outside modules) that module `name` imports anywhere: top level, functions, TYPE_CHECKING."""
    path = MODULES[name]
    # The package a relative import starts from: a package's __init__ is in the package itself.
    package = [] if name == "__init__" else name.split(".")[: None if path.name == "__init__.py" else -1]
    ours: set[str] = set()
    outside: set[str] = set()

    def add(target: str) -> None:
        # `from . import x` names a module; `from .x import y` names x (or x.y when y is a submodule).
        while target and target not in MODULES and "." in target:
            target = target.rpartition(".")[0]
        if target in MODULES and target != name:
            ours.add(target)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "captioner" or alias.name.startswith("captioner."):
                    add(alias.name.removeprefix("captioner").lstrip(".") or "__init__")
                else:
                    outside.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                module = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module and (node.module == "captioner" or node.module.startswith("captioner.")):
                module = node.module.removeprefix("captioner").lstrip(".")
            else:
                outside.add(node.module or "")
                continue
            for alias in node.names:
                add(f"{module}.{alias.name}" if module else alias.name)
    return ours, outside


GRAPH = {name: _imports(name)[0] for name in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_is_classified() -> None:
    # A new module has to be put on one side: that is the moment to decide whether it may do I/O.
    assert not PURE & IO
    assert set(MODULES) == PURE | IO, f"unclassified: {sorted(set(MODULES) - PURE - IO)}"


def test_no_import_cycle() -> None:
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_one() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", sorted(PURE))
def test_pure_modules_import_no_io(name: str) -> None:
    ours, outside = _imports(name)
    assert not ours & IO, f"{name} imports {sorted(ours & IO)}"
    assert not {m for m in outside if m in IO_LIBRARIES or m.split(".")[0] in IO_LIBRARIES}


def test_the_import_reader_sees_relative_and_absolute_imports() -> None:
    assert "obs_state" in GRAPH["inputs.gate"] and "config" in GRAPH["inputs.gate"]
    assert "inputs.pulse" in GRAPH["inputs.audio"]  # `from . import pulse`
    assert GRAPH["translation.session"] >= {"translation.protocol", "inputs.pcm", "translation.interpreter", "config"}
    assert "translation.protocol" in GRAPH["config.sections"] and "translation.protocol" in GRAPH["translation.session"]
