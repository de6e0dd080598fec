"""Hard to break (#15): a bad reload, a full disk, a key echoed by the server, hostile input never stop the daemon."""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TinyDisk
from tests.support.daemonproc import DaemonProc
from tests.support.fake_translator import FakeTranslator
from tests.support.pulse_env import PulseEnv

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
KEY = "sk-hardening-secret-1234"


@pytest.fixture
def fake(threaded_fake: Callable[..., FakeTranslator]) -> FakeTranslator:
    return threaded_fake(api_key=KEY)


def config(fake: FakeTranslator, **sections: Any) -> dict[str, Any]:
    return {
        "audio": {"device": "loopback"},
        "translator": {"url": fake.url, "api_key": "${DASHSCOPE_API_KEY}", "targets": ["ja"]},
        "obs": {"enabled": False},
        **sections,
    }


def start(tmp: Path, cfg: dict[str, Any], pulse: PulseEnv) -> DaemonProc:
    daemon = DaemonProc(tmp, cfg, pulse.child_env(DASHSCOPE_API_KEY=KEY)).start()
    daemon.wait(lambda: daemon.link_state("translator:ja") == "connected", 20, "translator connected")
    return daemon


def test_sighup_with_a_file_that_is_not_utf8_keeps_the_daemon_running(
    pulse_env: PulseEnv, fake: FakeTranslator, tmp_path: Path
) -> None:
    daemon = start(tmp_path, config(fake), pulse_env)
    try:
        good = daemon.config_path.read_bytes()
        daemon.config_path.write_bytes(good + "# caf\xe9 in Latin-1\n".encode("latin-1"))
        daemon.send_signal(signal.SIGHUP)
        daemon.wait(lambda: daemon.status()["reload_error"] is not None, 10, "reload refused")
        error = daemon.status()["reload_error"]
        assert error.startswith(f"{daemon.config_path}: not UTF-8 text (byte {len(good) + 5}"), error
        assert daemon.link_state("translator:ja") == "connected"  # the running config goes on
        daemon.config_path.write_bytes(good)
        daemon.send_signal(signal.SIGHUP)
        daemon.wait(lambda: daemon.status()["reload_error"] is None, 10, "the fixed file reloaded")
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    assert "Traceback" not in daemon.log()


def test_a_key_the_server_echoes_never_reaches_status_metrics_or_the_log(
    pulse_env: PulseEnv, fake: FakeTranslator, tmp_path: Path
) -> None:
    daemon = start(tmp_path, config(fake), pulse_env)
    try:
        message = f"Invalid header Authorization: Bearer {KEY}"
        fake.inject(
            {
                "type": "error",
                "error": {"type": "invalid_request_error", "code": "InvalidParameter", "message": message, "param": ""},
            }
        )
        daemon.wait(
            lambda: "InvalidParameter" in str(daemon.status()["links"]["translator:ja"]["last_error"]),
            10,
            "the service error in /status",
        )
        last_error = daemon.status()["links"]["translator:ja"]["last_error"]
        assert last_error == "InvalidParameter: Invalid header Authorization: Bearer ***"
        assert KEY not in daemon.get("/metrics")[1] and KEY not in daemon.get("/")[1]
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    assert "service error InvalidParameter: Invalid header Authorization: Bearer ***" in daemon.log()
    assert KEY not in daemon.log()


def test_a_huge_caption_is_logged_cut_and_written_whole(
    pulse_env: PulseEnv, fake: FakeTranslator, tmp_path: Path
) -> None:
    folder = tmp_path / "subs"
    cfg = config(fake, transcripts={"enabled": True, "folder": str(folder), "formats": ["txt"]})
    daemon = start(tmp_path, cfg, pulse_env)
    text = "word " * 200_000  # 1 MB, one sentence
    try:
        fake.inject({"type": "response.text.done", "item_id": "item_big", "response_id": "resp_big", "text": text})
        daemon.wait(lambda: daemon.status()["outputs"]["ja"]["final_count"] == 1, 10, "the final")
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    lines = [line for line in daemon.log().splitlines() if "caption [ja]" in line]
    assert len(lines) == 1 and len(lines[0]) < 400, lines[0][:500]
    assert lines[0].endswith(f"… [{len(text.strip()) - 200} more characters]")
    (written,) = folder.glob("*_ja.txt")
    assert len(written.read_text()) > len(text) - 10  # the file keeps the whole caption


def test_error_codes_from_the_server_cannot_grow_the_metrics(
    pulse_env: PulseEnv, fake: FakeTranslator, tmp_path: Path
) -> None:
    daemon = start(tmp_path, config(fake), pulse_env)
    try:
        for i in range(40):
            fake.inject({"type": "error", "error": {"code": f"Made.Up.Code{i}", "message": "?", "param": ""}})
        fake.inject({"type": "error", "error": {"code": "Invalid_Parameter", "message": "?", "param": ""}})
        series = lambda: [  # noqa: E731
            line
            for line in daemon.get("/metrics")[1].splitlines()
            if line.startswith("captioner_translator_errors_total")
        ]
        daemon.wait(lambda: len(series()) == 2 and 'code="invalidparameter"' in "".join(series()), 10, "the errors")
        assert 'captioner_translator_errors_total{code="other",input="",target="ja"} 40.0' in series()
        assert daemon.stop() == 0
    finally:
        daemon.kill()


USAGE = {
    "type": "response.done",
    "response": {
        "id": "resp_usage",
        "usage": {
            "total_tokens": 100000,
            "input_tokens": 100000,
            "output_tokens": 0,
            "input_tokens_details": {"audio_tokens": 100000, "text_tokens": 0},
            "output_tokens_details": {"text_tokens": 0},
        },
    },
}


def test_a_full_disk_is_counted_shown_retried_and_the_stop_still_saves_and_exits_0(
    pulse_env: PulseEnv, fake: FakeTranslator, tmp_path: Path, tiny_disk: TinyDisk
) -> None:
    spend = tmp_path / "spend.json"
    cfg = config(
        fake,
        transcripts={"enabled": True, "folder": str(tiny_disk.path), "formats": ["srt", "txt"]},
        cost={"state_file": str(spend)},
    )
    daemon = start(tmp_path, cfg, pulse_env)
    long = "word " * 2000  # more than the block each file has: the disk must give a new one

    def files() -> dict[str, Any]:
        return dict(daemon.status()["files"].get("transcripts") or {})

    try:
        tiny_disk.fill()
        fake.inject({"type": "response.text.done", "item_id": "item_1", "response_id": "resp_1", "text": long})
        daemon.wait(lambda: files().get("ok") is False, 10, "the failing file output in /status")
        assert "No space left on device" in files()["last_error"]
        assert "captioner_transcript_write_errors_total 1.0" in daemon.get("/metrics")[1]  # one caption
        tiny_disk.free()
        daemon.wait(lambda: files().get("ok") is True, 10, "the heartbeat writing the waiting caption")
        (srt,) = tiny_disk.path.glob("*_ja.srt")
        assert long.strip() in srt.read_text()
        tiny_disk.fill()
        fake.inject({"type": "response.text.done", "item_id": "item_2", "response_id": "resp_2", "text": long})
        fake.inject(USAGE)
        daemon.wait(lambda: files().get("ok") is False and daemon.status()["cost"]["day_spent"] > 0, 10, "full again")
        assert daemon.get("/healthz")[0] == 200
        assert daemon.stop() == 0  # close() meets ENOSPC: reported, and the rest of the stop goes on
    finally:
        daemon.kill()
    log = daemon.log()
    assert "transcripts: cannot write: [Errno 28] No space left on device" in log
    assert log.rstrip().endswith("stopped"), log[-2000:]
    assert json.loads(spend.read_text())["spent"] > 0


HALF_SENT = b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow"  # the head never ends


def half_sent(port: int, n: int) -> list[socket.socket]:
    """Up to n connections, each with a request head that never ends; fewer when the server stops accepting."""
    socks: list[socket.socket] = []
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(HALF_SENT)
        except OSError:
            break
        socks.append(s)
    return socks


def closed_by_server(s: socket.socket) -> bool:
    try:
        return s.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def metric(daemon: DaemonProc, line_start: str) -> float:
    for line in daemon.get("/metrics")[1].splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_half_sent_requests_are_capped_and_timed_out_and_healthz_still_answers(
    pulse_env: PulseEnv, fake: FakeTranslator, tmp_path: Path
) -> None:
    daemon = start(tmp_path, config(fake, http={"header_timeout_s": 1.5, "max_connections": 16}), pulse_env)
    socks: list[socket.socket] = []
    try:
        socks = half_sent(daemon.http_port, 100)  # more than the cap
        started = time.monotonic()
        assert daemon.get("/healthz") == (200, "ok\n")
        assert metric(daemon, 'captioner_http_refused_total{reason="max_connections"}') >= 100 - 16
        for s in socks:
            s.settimeout(max(0.1, started + 3 - time.monotonic()))
        assert all(closed_by_server(s) for s in socks)  # the ones left under the cap: after header_timeout_s
        assert metric(daemon, 'captioner_http_refused_total{reason="timeout"}') >= 1
        assert daemon.get("/healthz") == (200, "ok\n")
        assert daemon.stop() == 0
    finally:
        for s in socks:
            s.close()
        daemon.kill()
    assert "Traceback" not in daemon.log() and " ERROR " not in daemon.log()


def test_running_out_of_file_descriptors_is_logged_once_and_healthz_comes_back(
    pulse_env: PulseEnv, fake: FakeTranslator, tmp_path: Path
) -> None:
    # The cap is set above what the open-file limit allows, as with an unset LimitNOFILE and a raised cap.
    cfg = config(fake, http={"header_timeout_s": 2, "max_connections": 400})
    daemon = DaemonProc(tmp_path, cfg, pulse_env.child_env(DASHSCOPE_API_KEY=KEY))
    daemon.nofile = 128
    daemon.start()
    socks: list[socket.socket] = []
    try:
        daemon.wait(lambda: daemon.link_state("translator:ja") == "connected", 20, "translator connected")
        socks = half_sent(daemon.http_port, 200)
        daemon.wait(lambda: metric(daemon, "captioner_http_accept_errors_total") > 0, 10, "accept failing")
        time.sleep(2)  # accept() keeps failing meanwhile
        for s in socks:
            s.close()
        daemon.wait(lambda: daemon.get("/healthz")[0] == 200, 10, "/healthz again")
        assert daemon.stop() == 0
    finally:
        for s in socks:
            s.close()
        daemon.kill()
    log = daemon.log()
    assert "open-file limit 128 is below" in log  # said at start
    assert log.count("cannot accept HTTP connections: [Errno 24] Too many open files") == 1, log[-3000:]
    assert "Traceback" not in log
