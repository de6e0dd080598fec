"""Caption sources captioner creates in real OBS: placed bottom-centre, stacked, inside the canvas, with CJK glyphs."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from captioner.config import Config, ObsConfig, parse
from captioner.obs import ObsSink
from captioner.placement import plans
from captioner.status import LinkState, Status
from captioner.vision import decode_bmp
from tests.support.config_docs import ENV, base
from tests.support.obs_env import ObsEnv
from tests.support.obs_events import until
from tests.support.pulse_env import PulseEnv

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
WIDTH, HEIGHT = 1280, 720
JA, SRC = "Placed JA", "Placed Source"
# The alignment bits of obs-websocket's scene item transform.
LEFT, RIGHT, TOP, BOTTOM = 1, 2, 4, 8


@pytest.fixture(scope="module")
def canvas_obs(pulse_env: PulseEnv) -> Iterator[ObsEnv]:
    """An OBS of its own with a 1280x720 canvas: the shared one is 320x180, and its scene is other tests' too."""
    with ObsEnv(pulse_env, width=WIDTH, height=HEIGHT) as env:
        yield env


@pytest.fixture
def client(canvas_obs: ObsEnv) -> Iterator[Any]:
    canvas_obs.ensure_running()
    c = canvas_obs.client()
    yield c
    for name in (JA, SRC):  # every test starts with neither source in OBS
        with contextlib.suppress(Exception):
            c.send("RemoveInput", {"inputName": name})
    # OBS destroys a removed input a moment later; until then it is still listed.
    for _ in range(100):
        if not {JA, SRC} & {i["inputName"] for i in c.send("GetInputList", {}, raw=True)["inputs"]}:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("OBS still lists the removed sources")


def config(*outputs: dict[str, Any]) -> Config:
    translator = {"api_key": "k", "targets": ["ja"], "transcribe_source": True, "source_language": "en"}
    return parse(base(translator=translator, outputs=list(outputs)), ENV)


TWO_OUTPUTS = ({"obs_source": JA, "language": "ja"}, {"obs_source": SRC, "language": "source"})


@contextlib.asynccontextmanager
async def running(obs: ObsEnv, cfg: Config) -> AsyncIterator[ObsSink]:
    """An ObsSink for cfg's outputs, connected (it has found or created its sources by then)."""
    status = Status("test")
    sink = ObsSink(ObsConfig(port=obs.ws_port, password=SecretStr(obs.password), timeout_s=3), plans(cfg), status)
    task = asyncio.create_task(sink.run())
    try:
        await until(lambda: status.link("obs").state == LinkState.CONNECTED, "OBS connected", 20)
        yield sink
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sink.close()


def scene_of(c: Any) -> str:
    return str(c.send("GetCurrentProgramScene", raw=True)["currentProgramSceneName"])


def item_id(c: Any, source: str) -> int:
    return int(c.send("GetSceneItemId", {"sceneName": scene_of(c), "sourceName": source}, raw=True)["sceneItemId"])


def transform(c: Any, source: str) -> dict[str, Any]:
    request = {"sceneName": scene_of(c), "sceneItemId": item_id(c, source)}
    return dict(c.send("GetSceneItemTransform", request, raw=True)["sceneItemTransform"])


def placement_of(c: Any, source: str) -> dict[str, Any]:
    """Where the item is put (not its rendered size, which follows its text a frame later)."""
    sizes = ("width", "height", "sourceWidth", "sourceHeight")
    return {k: v for k, v in transform(c, source).items() if k not in sizes}


def settings(c: Any, source: str) -> dict[str, Any]:
    return dict(c.send("GetInputSettings", {"inputName": source}, raw=True)["inputSettings"])


def box(t: dict[str, Any]) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) the item may cover: its bounds box, placed by its alignment at its position."""
    assert t["boundsType"] != "OBS_BOUNDS_NONE", "no bounds: the text could run off the canvas"
    w, h, x, y, a = t["boundsWidth"], t["boundsHeight"], t["positionX"], t["positionY"], t["alignment"]
    left = x if a & LEFT else x - w if a & RIGHT else x - w / 2
    top = y if a & TOP else y - h if a & BOTTOM else y - h / 2
    return left, top, left + w, top + h


def japanese_families() -> set[str]:
    out = subprocess.run(["fc-list", ":lang=ja", "family"], capture_output=True, text=True, check=True).stdout
    return {name.strip() for line in out.splitlines() for name in line.split(",") if name.strip()}


def program_picture(c: Any) -> np.ndarray:
    """The program scene as OBS renders it, full canvas size, as grey levels."""
    request = {"sourceName": scene_of(c), "imageFormat": "bmp", "imageWidth": WIDTH, "imageHeight": HEIGHT}
    uri = c.send("GetSourceScreenshot", request, raw=True)["imageData"]
    return np.asarray(decode_bmp(base64.b64decode(uri.partition(",")[2])).min(axis=2))


async def test_two_created_sources_sit_in_the_lower_half_stacked_without_overlap(
    client: Any, canvas_obs: ObsEnv
) -> None:
    async with running(canvas_obs, config(*TWO_OUTPUTS)):
        video = client.send("GetVideoSettings", raw=True)
        assert (video["baseWidth"], video["baseHeight"]) == (WIDTH, HEIGHT)
        boxes = {name: box(transform(client, name)) for name in (JA, SRC)}
    for name, (left, top, right, bottom) in boxes.items():
        assert 0 <= left < right <= WIDTH and HEIGHT / 2 <= top < bottom <= HEIGHT, (name, boxes[name])
        assert (left + right) / 2 == WIDTH / 2, f"{name} is not centred"
    ja_top, src_bottom = boxes[JA][1], boxes[SRC][3]
    assert src_bottom <= ja_top, "the first output (ja) is lowest, the second stacked above it without overlap"
    for name in (JA, SRC):
        s = settings(client, name)
        assert s["font"]["size"] == HEIGHT // 18  # 40 px at 720p
        assert s["outline"] is True and s["color1"] == s["color2"] == 0xFFFFFFFF


async def test_the_japanese_source_gets_a_font_with_japanese_glyphs(client: Any, canvas_obs: ObsEnv) -> None:
    families = japanese_families()
    assert families, "no font with Japanese glyphs installed: tests/run.sh installs fonts-noto-cjk"
    async with running(canvas_obs, config(*TWO_OUTPUTS)):
        face = settings(client, JA)["font"]["face"]
    assert face in families, f"{face!r} has no Japanese glyphs (fontconfig's Japanese fonts: {sorted(families)})"


def create_by_hand(c: Any, name: str) -> None:
    """A text source as a streamer made it: top-left, small, DejaVu, no bounds."""
    request = {
        "sceneName": scene_of(c),
        "inputName": name,
        "inputKind": "text_ft2_source_v2",
        "inputSettings": {"text": "mine", "font": {"face": "DejaVu Sans", "size": 20, "style": "Book", "flags": 0}},
        "sceneItemEnabled": True,
    }
    item = c.send("CreateInput", request, raw=True)["sceneItemId"]
    moved = {"positionX": 30.0, "positionY": 40.0}
    c.send("SetSceneItemTransform", {"sceneName": scene_of(c), "sceneItemId": item, "sceneItemTransform": moved})


async def test_an_existing_source_keeps_its_place_and_look_unless_restyle(client: Any, canvas_obs: ObsEnv) -> None:
    create_by_hand(client, JA)
    before_t, before_s = placement_of(client, JA), settings(client, JA)
    async with running(canvas_obs, config(*TWO_OUTPUTS)):
        assert placement_of(client, JA) == before_t
        assert settings(client, JA) == before_s
        assert box(transform(client, SRC))[3] <= HEIGHT  # the missing one was created
    # restyle: true applies placement and look to the existing source too; its text stays.
    restyled = ({**TWO_OUTPUTS[0], "restyle": True, "style": {"color": "#FFFF00"}}, TWO_OUTPUTS[1])
    async with running(canvas_obs, config(*restyled)):
        left, top, right, bottom = box(transform(client, JA))
        s = settings(client, JA)
    assert (left + right) / 2 == WIDTH / 2 and top >= HEIGHT / 2 and bottom <= HEIGHT
    assert s["font"]["face"] in japanese_families() and s["font"]["size"] == 40
    assert s["color1"] == 0xFF00FFFF and s["text"] == "mine"  # #FFFF00 in OBS's ABGR


async def test_screenshot_shows_the_captions_in_the_lower_half_only(client: Any, canvas_obs: ObsEnv) -> None:
    texts = {JA: "日本語の字幕がここに出ます\n二行目です", SRC: "Captions appear down here\nsecond line"}
    async with running(canvas_obs, config(*TWO_OUTPUTS)) as sink:
        boxes = {name: box(transform(client, name)) for name in texts}
        for name, text in texts.items():
            sink.set_text(name, text)
        await until(lambda: all(settings(client, n).get("text") == t for n, t in texts.items()), "texts in OBS")
        # OBS draws new text on its next frames (10 fps): look until both captions' white shows.
        for _ in range(50):
            bright = program_picture(client) > 230
            if all(inside(bright, b).sum() > 200 for b in boxes.values()):
                break
            await asyncio.sleep(0.1)
    for name, b in boxes.items():
        assert inside(bright, b).sum() > 200, f"{name}'s caption does not show in its place"
    rows = np.flatnonzero(bright.any(axis=1))
    assert not bright[: HEIGHT // 2].any(), f"caption pixels in the upper half (rows {rows.min()}..{rows.max()})"
    outside = bright.copy()
    for b in boxes.values():
        inside(outside, b)[:] = False
    assert not outside.any(), "caption pixels outside the sources' boxes"


def inside(picture: np.ndarray, b: tuple[float, float, float, float]) -> np.ndarray:
    """The part of `picture` within box `b` (a view)."""
    left, top, right, bottom = (round(v) for v in b)
    return picture[max(top, 0) : bottom, max(left, 0) : right]
