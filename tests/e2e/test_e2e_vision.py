"""End to end: screenshots of real OBS reach the translator while someone speaks, only when the picture changed."""

from __future__ import annotations

import asyncio
import re
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from obsws_python.error import OBSSDKRequestError

from captioner.config import GateConfig, ObsConfig, TranslatorConfig, VisionConfig
from captioner.inputs.gate import SpeechGate
from captioner.obs import ObsSink
from captioner.reconnect import ConnectBudget
from captioner.status import LinkState, Status
from captioner.translation.session import TranslatorSession
from captioner.vision import MAX_IMAGE_BYTES, THUMB_WIDTH, VisionSampler, decode_bmp, fit_size, jpeg_size, retakes
from tests.support.daemonproc import DaemonProc
from tests.support.fake_translator import Q35_MODEL, FakeTranslator, ImageRecord, image_tokens
from tests.support.obs_env import ObsEnv
from tests.support.pulse_env import PulseEnv
from tests.support.speech import silence_padded_sequence, speech_wav, wav_duration

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
KEY = "sk-vision-e2e-secret"
# color_source_v3 takes ABGR.
COLORS = {"red": 0xFF0000FF, "green": 0xFF00FF00, "blue": 0xFFFF0000}
RGB = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
PHRASES = [
    "Welcome back everyone, today we look at the slides about the castle on the hill and the river below it",
    "And this is the last picture for today",
]
GAP_S = 7.0
FFMPEG_DECODE = ("ffmpeg", "-nostdin", "-loglevel", "error", "-f", "image2pipe", "-i", "pipe:0")
TAIL_S = 3.0


def create_scene(client: Any, scene: str, within: float = 10) -> None:
    """CreateScene, waiting while OBS still holds the name (code 601): a scene removed by the previous test is freed
    only once nothing holds it (a transition from it, a screenshot), which a busy machine can delay."""
    deadline = time.monotonic() + within
    while True:
        try:
            client.send("CreateScene", {"sceneName": scene})
            return
        except OBSSDKRequestError as e:
            if e.code != 601 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def picture(obs: ObsEnv) -> Iterator[Callable[[str], None]]:
    """A scene of one full-canvas color source, made the program scene; yields a function that recolors it."""
    client = obs.client()
    before = client.send("GetCurrentProgramScene", raw=True)["currentProgramSceneName"]
    scene, source = "Vision E2E", "Vision E2E Color"
    create_scene(client, scene)
    settings = {"color": COLORS["red"], "width": obs.width, "height": obs.height}
    client.send(
        "CreateInput",
        {
            "sceneName": scene,
            "inputName": source,
            "inputKind": "color_source_v3",
            "inputSettings": settings,
            "sceneItemEnabled": True,
        },
    )
    client.send("SetCurrentProgramScene", {"sceneName": scene})

    def recolor(name: str) -> None:
        client.send(
            "SetInputSettings", {"inputName": source, "inputSettings": {"color": COLORS[name]}, "overlay": True}
        )

    yield recolor
    client.send("SetCurrentProgramScene", {"sceneName": before})
    client.send("RemoveInput", {"inputName": source})
    client.send("RemoveScene", {"sceneName": scene})
    client.disconnect()


def color_of(jpeg: bytes) -> str:
    """The picture's colour as ffmpeg, an independent decoder, sees it: the nearest of red, green, blue."""
    out = subprocess.run(
        [*FFMPEG_DECODE, "-vf", "scale=1:1", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
        input=jpeg,
        capture_output=True,
        timeout=30,
        check=True,
    ).stdout
    assert len(out) == 3, out
    return min(RGB, key=lambda name: sum((a - b) ** 2 for a, b in zip(RGB[name], out, strict=True)))


def metric(daemon: DaemonProc, name: str, labels: str = "") -> float:
    code, body = daemon.get("/metrics")
    assert code == 200
    found = re.search(rf"^{name}{re.escape(labels)} ([0-9.e+-]+)$", body, re.M)
    return float(found.group(1)) if found else 0.0


def most_in_one_second(images: list[ImageRecord]) -> int:
    times = sorted(i.at for i in images)
    return max((sum(1 for u in times if t <= u < t + 1.0) for t in times), default=0)


async def test_obs_screenshot_of_a_real_source(obs: ObsEnv, picture: Callable[[str], None]) -> None:
    """ObsSink.screenshot against real OBS: the BMP thumbnail decodes to what is on screen, the JPEG has the size
    asked for, a missing source is a request error that keeps the connection."""
    status = Status("test")
    sink = ObsSink(ObsConfig(port=obs.ws_port, password=obs.password, timeout_s=2), [], status)
    task = asyncio.create_task(sink.run())
    try:
        for _ in range(500):
            if sink.connected:
                break
            await asyncio.sleep(0.01)
        assert sink.connected, status.links["obs"].as_dict()
        thumb = decode_bmp(await sink.screenshot(None, "bmp", THUMB_WIDTH))
        assert thumb.shape == (THUMB_WIDTH * obs.height // obs.width, THUMB_WIDTH, 3)
        assert np.abs(thumb.reshape(-1, 3).mean(axis=0) - RGB["red"]).max() < 3
        picture("blue")
        await asyncio.sleep(0.3)  # OBS applies new settings on its next video frame (10 fps here)
        thumb = decode_bmp(await sink.screenshot("Vision E2E", "bmp", THUMB_WIDTH))
        assert np.abs(thumb.reshape(-1, 3).mean(axis=0) - RGB["blue"]).max() < 3
        size = fit_size(thumb.shape[1], thumb.shape[0], 1280, 720)
        data = await sink.screenshot(None, "jpg", *size, 70)
        assert jpeg_size(data) == size == (1280, 720) and len(data) <= MAX_IMAGE_BYTES
        assert color_of(data) == "blue"

        with pytest.raises(Exception) as info:
            await sink.screenshot("No Such Source", "bmp", THUMB_WIDTH)
        assert getattr(info.value, "code", None) == 600  # ResourceNotFound
        await asyncio.sleep(0.3)
        assert sink.connected and status.links["obs"].state == LinkState.CONNECTED

        timings: dict[str, list[float]] = {f"bmp {THUMB_WIDTH} px": [], "jpg 1280x720": [], "jpg 640x360": []}
        for _ in range(15):
            for what, args in (
                (f"bmp {THUMB_WIDTH} px", ("bmp", THUMB_WIDTH)),
                ("jpg 1280x720", ("jpg", 1280, 720, 70)),
                ("jpg 640x360", ("jpg", 640, 360, 70)),
            ):
                started = time.perf_counter()
                await sink.screenshot(None, *args)
                timings[what].append(time.perf_counter() - started)
        print(
            "\nGetSourceScreenshot medians: "
            + ", ".join(f"{k} {statistics.median(v) * 1000:.1f} ms" for k, v in timings.items())
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await sink.close()


@pytest.fixture
def noise(tmp_path: Path) -> Path:
    """A 1280x720 picture of grey noise: as a JPEG it is 400-700 KB even at modest quality."""
    path = tmp_path / "noise.png"
    pattern = "nullsrc=s=1280x720,geq=lum='random(1)*255':cb=128:cr=128"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", pattern, "-frames:v", "1", str(path)],
        check=True,
        timeout=60,
    )
    return path


async def test_sampler_retakes_a_picture_too_big_and_skips_unchanged_and_silence(obs: ObsEnv, noise: Path) -> None:
    """The sampler with real OBS, a real session and the fake: a 1280x720 noise picture is far over 190 KB at
    quality 100, so it is retaken smaller; the same picture again is not sent; nor is anything after speech ends."""
    client = obs.client()
    source = "Vision Noise"
    client.send(
        "CreateInput",
        {"sceneName": "Scene", "inputName": source, "inputKind": "image_source", "inputSettings": {"file": str(noise)}},
    )
    fake = FakeTranslator(api_key=KEY)
    await fake.start()
    status = Status("test")
    sink = ObsSink(ObsConfig(port=obs.ws_port, password=obs.password, timeout_s=2), [], status)
    tr = TranslatorConfig(url=fake.url, api_key=KEY, targets=("ja",))
    session = TranslatorSession(
        tr, "ja", transcribe_source=False, status=status, on_caption=lambda _: None, budget=ConnectBudget(limit=100)
    )
    gate = SpeechGate(GateConfig(enabled=False))
    sampler = VisionSampler(
        VisionConfig(enabled=True, source=source, quality=100), sink, lambda: [session], lambda: [gate], status
    )
    tasks = [asyncio.create_task(sink.run()), asyncio.create_task(session.run())]

    def speak(seconds: float, loud: bool) -> None:
        t = np.arange(1600) / 16000
        chunk = ((0.3 * np.sin(2 * np.pi * 440 * t) if loud else np.zeros(1600)) * 32767).astype("<i2").tobytes()
        for _ in range(round(seconds * 10)):
            for c in gate.feed(chunk, None, time.monotonic()):
                session.feed(c.pcm, c.captured_at, c.level)

    try:
        for _ in range(1000):
            if sink.connected and session.connected:
                break
            await asyncio.sleep(0.01)
        assert sink.connected and session.connected
        assert await sampler.sample() == 0 and sampler.counters.skipped == {"no_audio_yet": 1}
        speak(0.3, loud=True)
        for _ in range(200):
            if session.image_refusal() is None:
                break
            await asyncio.sleep(0.01)
        assert await sampler.sample() == 1
        assert await fake.await_until(lambda f: len(f.connections[0].images) == 1)
        image = fake.connections[0].images[0]
        assert image.size_bytes <= MAX_IMAGE_BYTES
        tried = retakes(100, 1280, 720)
        sizes = [(w, h) for _, w, h in tried]
        assert (image.width, image.height) in sizes
        shots = status.metrics.registry.get_sample_value("captioner_vision_screenshot_seconds_count", {"format": "jpg"})
        assert shots is not None and shots >= 2, "the first, full-quality picture was too big and was retaken"
        print(
            f"\ntoo big at 1280x720 q100; sent after {shots:.0f} tries: "
            f"{image.width}x{image.height}, {image.size_bytes} bytes"
        )

        await asyncio.sleep(1.2)  # past the rate window
        speak(0.3, loud=True)
        assert await sampler.sample() == 0 and sampler.counters.skipped["unchanged"] == 1
        speak(1.2, loud=False)  # speech ended a second ago: no pictures, though audio still flows (gate off)
        assert await sampler.sample() == 0 and sampler.counters.skipped["no_speech"] == 1
        assert sampler.as_dict()["sent"] == 1 and fake.connections[0].images_rejected == []
    finally:
        await session.finish()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await sink.close()
        await fake.stop()
        client.send("RemoveInput", {"inputName": source})
        client.disconnect()


def vision_config(fake: FakeTranslator, obs: ObsEnv, only_changed: bool) -> dict[str, Any]:
    return {
        "audio": {"device": "loopback"},
        "translator": {"url": fake.url, "model": Q35_MODEL, "api_key": "${DASHSCOPE_API_KEY}", "targets": ["ja"]},
        "obs": {"port": obs.ws_port, "password": "${OBS_WEBSOCKET_PASSWORD}", "timeout_s": 2},
        "vision": {"enabled": True, "width": 640, "height": 360, "interval_s": 0.5, "only_changed": only_changed},
    }


def test_pictures_follow_speech_and_changes(
    obs: ObsEnv,
    pulse_env: PulseEnv,
    picture: Callable[[str], None],
    threaded_fake: Callable[..., FakeTranslator],
    tmp_path: Path,
) -> None:
    first_s = wav_duration(speech_wav(PHRASES[0], tmp_path / "first.wav"))
    speech = silence_padded_sequence(PHRASES, GAP_S, tmp_path / "speech.wav")
    env = pulse_env.child_env(DASHSCOPE_API_KEY=KEY, OBS_WEBSOCKET_PASSWORD=obs.password)
    fakes: dict[bool, FakeTranslator] = {}
    daemons: dict[bool, DaemonProc] = {}
    try:
        # Two daemons hear the same speech and see the same OBS: one sends changed pictures only, one every look.
        for only_changed in (True, False):
            fakes[only_changed] = fake = threaded_fake(api_key=KEY, script=PHRASES)
            folder = tmp_path / ("changed" if only_changed else "every")
            folder.mkdir()
            daemons[only_changed] = DaemonProc(folder, vision_config(fake, obs, only_changed), env).start()
        for d in daemons.values():
            d.wait_connected("audio", "obs", "translator:ja")
        time.sleep(1.5)  # silence first: no speech, no audio sent, so no picture
        started = time.monotonic()
        player = pulse_env.play_async(speech)
        time.sleep(first_s / 2)
        picture("green")  # while speaking: a new picture
        time.sleep(started + first_s + 3.5 - time.monotonic())
        picture("blue")  # in the silence between the phrases: sent only when speech comes back
        assert player.wait(wav_duration(speech) + 30) == 0
        time.sleep(TAIL_S)
        silent = (started + first_s + 2.5, started + first_s + GAP_S)
        for d in daemons.values():
            d.wait(lambda d=d: d.status()["outputs"]["ja"]["final_count"] >= 2, 15, "two captions")

        images = {k: [i for rec in f.snapshot() for i in rec.images] for k, f in fakes.items()}
        for only_changed, fake in fakes.items():
            for rec in fake.snapshot():
                assert rec.images_rejected == [], rec.images_rejected  # none refused: audio first, rate kept
            got = images[only_changed]
            assert got, f"no pictures (only_changed={only_changed}):\n{daemons[only_changed].log()[-3000:]}"
            for image in got:
                assert jpeg_size(image.jpeg) == (image.width, image.height) == (640, 360)
                assert image.size_bytes == len(image.jpeg) <= MAX_IMAGE_BYTES
                assert image.audio_bytes_before > 0  # never before the first audio of its connection
                assert image.at > started, "a picture before any speech"
                assert not silent[0] <= image.at <= silent[1], f"a picture {image.at - started:.1f} s in, in silence"
            assert most_in_one_second(got) <= 2

        # Only changed: the first picture, the change while speaking, the change made in the silence. No more.
        assert [color_of(i.jpeg) for i in images[True]] == ["red", "green", "blue"]
        every = images[False]
        assert len(every) >= 6 and {color_of(i.jpeg) for i in every} == {"red", "green", "blue"}
        print(
            f"\nvision: {first_s:.1f} s + {wav_duration(speech) - first_s - GAP_S:.1f} s of speech; changed-only sent "
            f"{len(images[True])} pictures, every-look sent {len(every)} (max {most_in_one_second(every)} in 1 s); "
            f"{every[0].size_bytes} bytes each at 640x360 q70, {every[0].tokens} image tokens each"
        )

        changed = daemons[True]
        billed = metric(changed, "captioner_billed_tokens_total", '{input="",kind="image_in",target="ja"}')
        assert billed == sum(i.tokens for i in images[True]) == 3 * image_tokens("q3.5", 640, 360)
        assert (
            0
            < metric(daemons[False], "captioner_billed_tokens_total", '{input="",kind="image_in",target="ja"}')
            <= sum(i.tokens for i in every)
        )
        assert metric(changed, "captioner_vision_images_sent_total", '{input="",target="ja"}') == 3
        assert metric(changed, "captioner_vision_skipped_total", '{reason="unchanged"}') > 0
        assert metric(changed, "captioner_vision_skipped_total", '{reason="no_speech"}') > 0
        vision = changed.status()["vision"]
        assert vision["sent"] == 3 and vision["last_size"] == [640, 360] and vision["skipped"]["unchanged"] > 0
        for d in daemons.values():
            assert d.stop() == 0
            assert KEY not in d.log() and obs.password not in d.log()
    finally:
        for d in daemons.values():
            d.kill()
