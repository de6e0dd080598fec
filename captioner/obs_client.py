"""obs-websocket through obsws-python: its two clients, and every request we make as a function of the client."""

from __future__ import annotations

import base64
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from .config import ObsConfig
from .errors import describe

log = logging.getLogger(__name__)

# Text input kinds by preference: FreeType on Linux/macOS, GDI+ on Windows.
TEXT_KINDS = ("text_ft2_source_v2", "text_gdiplus_v3", "text_gdiplus_v2", "text_ft2_source")
# Defaults for a source we create: readable at 1080p, wrapping instead of running off screen.
_NEW_SOURCE_SETTINGS: dict[str, dict[str, Any]] = {
    "text_ft2_source": {
        "text": "",
        "font": {"face": "Sans Serif", "size": 48, "style": "Regular", "flags": 0},
        "word_wrap": True,
        "custom_width": 1600,
        "outline": True,
    },
    "text_gdiplus": {
        "text": "",
        "font": {"face": "Arial", "size": 48, "style": "Regular", "flags": 0},
        "outline": True,
        "outline_size": 4,
        "extents": True,
        "extents_cx": 1600,
        "extents_cy": 240,
        "extents_wrap": True,
    },
}
# obs-websocket EventSubscription bits: Scenes (program scene), Inputs (mute), Outputs (stream, record).
WATCH_EVENTS = (1 << 2) | (1 << 3) | (1 << 6)


def quiet_obsws_logger() -> None:
    """obsws-python logs the password at INFO and a traceback for every failed request."""
    logging.getLogger("obsws_python").setLevel(logging.CRITICAL)


def prepare_sources(client: Any, sources: list[str]) -> None:
    """Find each output's source; create missing ones in the current program scene."""
    existing = {i["inputName"] for i in client.send("GetInputList", {}, raw=True)["inputs"]}
    missing = [s for s in sources if s not in existing]
    if not missing:
        return
    kinds = set(client.send("GetInputKindList", {"unversioned": False}, raw=True)["inputKinds"])
    kind = next((k for k in TEXT_KINDS if k in kinds), None)
    if kind is None:
        raise RuntimeError(f"OBS offers no text input kind (looked for {', '.join(TEXT_KINDS)})")
    scene = client.send("GetCurrentProgramScene", raw=True)["currentProgramSceneName"]
    settings = _NEW_SOURCE_SETTINGS["text_gdiplus" if kind.startswith("text_gdiplus") else "text_ft2_source"]
    for source in missing:
        client.send(
            "CreateInput",
            {
                "sceneName": scene,
                "inputName": source,
                "inputKind": kind,
                "inputSettings": settings,
                "sceneItemEnabled": True,
            },
        )
        log.info("created OBS text source %r (%s) in scene %r", source, kind, scene)


def subscribe(events: Any, handler: Callable[[str, Any], None]) -> None:
    """Have the EventClient's thread call `handler(kind, data)` for "record", "stream", "scene" and "mute"."""

    # obsws-python dispatches on the function's name.
    def on_record_state_changed(data: Any) -> None:
        handler("record", data)

    def on_stream_state_changed(data: Any) -> None:
        handler("stream", data)

    def on_current_program_scene_changed(data: Any) -> None:
        handler("scene", data)

    def on_input_mute_state_changed(data: Any) -> None:
        handler("mute", data)

    events.callback.register(
        [
            on_record_state_changed,
            on_stream_state_changed,
            on_current_program_scene_changed,
            on_input_mute_state_changed,
        ]
    )


def write_texts(client: Any, texts: dict[str, str], written: dict[str, float]) -> None:
    for source, text in texts.items():
        # overlay=True changes only the text; the user's font, size and colours stay.
        client.send("SetInputSettings", {"inputName": source, "inputSettings": {"text": text}, "overlay": True})
        written[source] = time.perf_counter()


def input_muted(client: Any, name: str) -> bool:
    return bool(client.send("GetInputMute", {"inputName": name}, raw=True).get("inputMuted"))


def send_stream_caption(client: Any, text: str) -> None:
    client.send("SendStreamCaption", {"captionText": text})


def screenshot(client: Any, source: str | None, fmt: str, width: int | None, height: int | None, quality: int) -> bytes:
    if source is None:
        source = client.send("GetCurrentProgramScene", raw=True)["currentProgramSceneName"]
    request: dict[str, Any] = {"sourceName": source, "imageFormat": fmt}
    # Only one side given: OBS keeps the aspect ratio; both: OBS stretches to exactly that size.
    if width is not None:
        request["imageWidth"] = width
    if height is not None:
        request["imageHeight"] = height
    if quality >= 0:
        request["imageCompressionQuality"] = quality
    uri = client.send("GetSourceScreenshot", request, raw=True)["imageData"]
    # A data URI: "data:image/jpg;base64,...".
    return base64.b64decode(uri.partition(",")[2], validate=True)


def new_client(cfg: ObsConfig) -> Any:
    import obsws_python

    quiet_obsws_logger()
    # host/port/password always explicit: otherwise obsws-python reads a config.toml from the CWD.
    return obsws_python.ReqClient(
        host=cfg.host, port=cfg.port, password=cfg.password.get_secret_value(), timeout=cfg.timeout_s
    )


def new_event_client(cfg: ObsConfig) -> Any:
    import obsws_python

    return obsws_python.EventClient(
        host=cfg.host,
        port=cfg.port,
        password=cfg.password.get_secret_value(),
        timeout=cfg.timeout_s,
        subs=WATCH_EVENTS,
    )


def disconnect(client: Any) -> None:
    with contextlib.suppress(Exception):
        client.disconnect()


# What to do when nothing answers at obs.host:obs.port: the usual first-run cause is a server not yet enabled.
OBS_ABSENT_HINT = "is OBS running, with Tools → WebSocket Server Settings → Enable WebSocket server?"
# The prefix obs.py recognises to set the link auth_failed instead of reconnecting.
AUTH_FAILED = "authentication failed"


def describe_error(e: BaseException, host: str | None = None, port: int | None = None) -> str:
    """errors.describe, but saying what to do: a wrong password names obs.password, an absent OBS the address tried."""
    text = str(e)
    if type(e).__name__ == "OBSSDKError" and ("auth" in text or "identify" in text):
        # obs-websocket closes on a wrong password; obsws-python reports it as "failed to identify".
        return (
            f"{AUTH_FAILED}: OBS refused the password; set obs.password to the one in OBS's "
            "Tools → WebSocket Server Settings (Show Connect Info)"
        )
    if host is not None and isinstance(e, (ConnectionRefusedError, socket.gaierror)):
        return f"nothing answers at {host}:{port} ({describe(e)}): {OBS_ABSENT_HINT}"
    return describe(e)
