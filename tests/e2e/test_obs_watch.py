"""ObsSink follows what real OBS does (stream, program scene, microphone mute) through obs-websocket events."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from pydantic import SecretStr

from captioner.config import ObsConfig
from captioner.obs import ObsSink
from captioner.obs_state import ObsState
from captioner.status import Status
from tests.support.obs_env import ObsEnv
from tests.support.obs_events import until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]
MIC, SCENE = "E2E Watch Mic", "E2E Watch BRB"


def prepare(c: Any) -> str:
    """A microphone input and a second scene to switch to; returns the current program scene."""
    scene = str(c.send("GetCurrentProgramScene", raw=True)["currentProgramSceneName"])
    inputs = {i["inputName"] for i in c.send("GetInputList", {}, raw=True)["inputs"]}
    if MIC not in inputs:
        c.send("CreateInput", {"sceneName": scene, "inputName": MIC, "inputKind": "pulse_input_capture"})
    if SCENE not in {s["sceneName"] for s in c.send("GetSceneList", raw=True)["scenes"]}:
        c.send("CreateScene", {"sceneName": SCENE})
    c.send("SetInputMute", {"inputName": MIC, "inputMuted": False})
    return scene


async def test_state_follows_stream_scene_and_mute(obs: ObsEnv) -> None:
    c = obs.client()
    home = await asyncio.to_thread(prepare, c)
    seen: list[ObsState] = []
    cfg = ObsConfig(port=obs.ws_port, password=SecretStr(obs.password), timeout_s=2)
    sink = ObsSink(cfg, [], Status("test"), on_state=seen.append, watch_inputs=[MIC, "No Such Mic"])
    task = asyncio.create_task(sink.run())
    try:
        await until(lambda: sink.state.connected, "connected")
        assert sink.state == ObsState(connected=True, scene=home)  # a missing input counts as unmuted

        await asyncio.to_thread(c.send, "SetInputMute", {"inputName": MIC, "inputMuted": True})
        await until(lambda: sink.state.muted == {MIC}, "mute seen")
        await asyncio.to_thread(c.send, "SetInputMute", {"inputName": MIC, "inputMuted": False})
        await until(lambda: not sink.state.muted, "unmute seen")

        await asyncio.to_thread(c.send, "SetCurrentProgramScene", {"sceneName": SCENE})
        await until(lambda: sink.state.scene == SCENE, "scene switch seen")
        await asyncio.to_thread(c.send, "SetCurrentProgramScene", {"sceneName": home})
        await until(lambda: sink.state.scene == home, "scene switch back seen")

        await asyncio.to_thread(c.start_stream)
        await until(lambda: sink.state.streaming, "stream start seen")
        await asyncio.to_thread(c.stop_stream)
        await until(lambda: not sink.state.streaming, "stream stop seen")
        # every change reached the callback, in order, with nothing invented in between
        assert [(s.streaming, s.scene, bool(s.muted)) for s in seen] == [
            (False, home, False),
            (False, home, True),
            (False, home, False),
            (False, SCENE, False),
            (False, home, False),
            (True, home, False),
            (False, home, False),
        ]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sink.close()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(c.send, "SetCurrentProgramScene", {"sceneName": home})
        obs.wait_stream(False)
