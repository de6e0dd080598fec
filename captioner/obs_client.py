"""obs-websocket through obsws-python: its two clients, and every request we make as a function of the client."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from .config import ObsConfig
from .errors import describe
from .fonts import families
from .placement import Canvas, Placement, SourcePlan, place

log = logging.getLogger(__name__)

# Text input kinds by preference: FreeType on Linux/macOS, GDI+ on Windows.
TEXT_KINDS = ("text_ft2_source_v2", "text_gdiplus_v3", "text_gdiplus_v2", "text_ft2_source")
# obs-websocket EventSubscription bits: Scenes (program scene), Inputs (mute), Outputs (stream, record).
WATCH_EVENTS = (1 << 2) | (1 << 3) | (1 << 6)


def quiet_obsws_logger() -> None:
    """obsws-python logs the password at INFO and a traceback for every failed request."""
    logging.getLogger("obsws_python").setLevel(logging.CRITICAL)


def prepare_sources(client: Any, sources: Sequence[SourcePlan]) -> None:
    """Find each output's source; create missing ones in the current program scene, placed and styled as captions.

    An existing source keeps its place and look unless its output says restyle: true.
    """
    existing = {i["inputName"]: i["inputKind"] for i in client.send("GetInputList", {}, raw=True)["inputs"]}
    missing = [p for p in sources if p.name not in existing]
    restyled = [p for p in sources if p.restyle and str(existing.get(p.name, "")).startswith("text_")]
    if not missing and not restyled:
        return
    video = client.send("GetVideoSettings", raw=True)
    canvas = Canvas(int(video["baseWidth"]), int(video["baseHeight"]))
    # Placed as a whole: a source's slot in the stack depends on the outputs before it, created or not.
    fonts = families(sorted({p.language for p in sources}))
    placements = {p.name: p for p in place(canvas, sources, fonts)}
    scene = client.send("GetCurrentProgramScene", raw=True)["currentProgramSceneName"]
    if missing:
        kinds = set(client.send("GetInputKindList", {"unversioned": False}, raw=True)["inputKinds"])
        kind = next((k for k in TEXT_KINDS if k in kinds), None)
        if kind is None:
            raise RuntimeError(f"OBS offers no text input kind (looked for {', '.join(TEXT_KINDS)})")
        for plan in missing:
            p = placements[plan.name]
            request = {
                "sceneName": scene,
                "inputName": plan.name,
                "inputKind": kind,
                "inputSettings": {"text": "", **p.input_settings(kind)},
                "sceneItemEnabled": True,
            }
            item = client.send("CreateInput", request, raw=True)["sceneItemId"]
            _set_transform(client, scene, item, p)
            log.info("created OBS text source %r (%s, %s %d px) in scene %r", plan.name, kind, p.font, p.size, scene)
    for plan in restyled:
        p = placements[plan.name]
        client.send(
            "SetInputSettings", {"inputName": plan.name, "inputSettings": p.input_settings(existing[plan.name])}
        )
        try:
            item = client.send("GetSceneItemId", {"sceneName": scene, "sourceName": plan.name}, raw=True)["sceneItemId"]
        except Exception as e:
            if getattr(e, "code", None) is None:
                raise  # not OBS's answer: the connection failed
            log.warning("OBS source %r restyled, but not moved: it is not in the program scene %r", plan.name, scene)
            continue
        _set_transform(client, scene, item, p)
        log.info("restyled OBS text source %r (restyle: true)", plan.name)


def _set_transform(client: Any, scene: str, item: int, p: Placement) -> None:
    request = {"sceneName": scene, "sceneItemId": item, "sceneItemTransform": p.transform()}
    client.send("SetSceneItemTransform", request)


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


def pipeline(client: Any, requests: Sequence[tuple[str, dict[str, Any] | None]]) -> list[dict[str, Any]]:
    """Every request in one obs-websocket RequestBatch (op 8): one frame each way, one round trip for all of them.

    obsws-python's send waits for each reply before the next request: several requests at once (the finals of
    several languages, the idle check's questions) each paid a round trip to OBS and back (#21). Separate request
    frames sent back to back are no better: OBS's replies then wait on TCP's delayed acknowledgement (~40 ms).
    Returns each request's result (`requestStatus`, `responseData`) in the order asked; refusals are not raised.
    """
    from obsws_python.error import OBSSDKTimeoutError
    from websocket import WebSocketTimeoutException

    if len(requests) == 1:  # a plain request: what obsws-python sends, without the batch's envelope
        kind, data = requests[0]
        return [client.base_client.req(kind, data)]
    batch = []
    for n, (kind, data) in enumerate(requests):
        d: dict[str, Any] = {"requestType": kind, "requestId": str(n)}
        if data is not None:
            d["requestData"] = data
        batch.append(d)
    ws = client.base_client.ws
    # haltOnFailure false: one missing source must not keep the other languages off the screen.
    ws.send(json.dumps({"op": 8, "d": {"requestId": "captioner-batch", "haltOnFailure": False, "requests": batch}}))
    try:
        reply = json.loads(ws.recv())["d"]
    except WebSocketTimeoutException as e:
        raise OBSSDKTimeoutError("Timeout while trying to send the request") from e
    results = {r["requestId"]: r for r in reply["results"]}
    return [results[str(n)] for n in range(len(requests))]


def refusal(reply: dict[str, Any]) -> Exception | None:
    """A pipeline reply's refusal as obsws-python raises it (with `.code`), or None when OBS did it."""
    from obsws_python.error import OBSSDKRequestError

    status = reply["requestStatus"]
    if status["result"]:
        return None
    error: Exception = OBSSDKRequestError(reply["requestType"], status["code"], status.get("comment"))
    return error


def write_texts(client: Any, texts: dict[str, str], written: dict[str, float]) -> None:
    """Set each source's text (one round trip for all); `written[source]` = perf_counter when OBS confirmed it.

    overlay=True changes only the text; the user's font, size and colours stay. The first refusal is raised after
    every reply was read, so the socket stays in step for the next request.
    """
    sources = list(texts)
    asks = [
        ("SetInputSettings", {"inputName": s, "inputSettings": {"text": texts[s]}, "overlay": True}) for s in sources
    ]
    refused: Exception | None = None
    for source, reply in zip(sources, pipeline(client, asks), strict=True):
        if (error := refusal(reply)) is None:
            written[source] = time.perf_counter()
        elif refused is None:
            refused = error
    if refused is not None:
        raise refused


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
