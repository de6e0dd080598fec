"""nginx-rtmp receiving what OBS streams, recording it to FLV; the CEA-608 captions decoded back out of a recording."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
from pathlib import Path

from tests.support.procs import port_open, spawn, wait_for

NGINX_CONF = """\
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off; master_process off; worker_processes 1;
pid {base}/nginx/nginx.pid; error_log {base}/logs/nginx.log info;
events {{ worker_connections 64; }}
rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096;
  application live {{ live on; record all; record_path {base}/rec; record_unique on; }} }} }}
"""

_TAG_RE = re.compile(r"<[^>]*>|\{\\an?\d+\}")


def parse_srt(text: str, row_sep: str = " ") -> list[str]:
    """SRT text -> list of cue texts, font tags and {\\an7} stripped, rows joined with `row_sep`."""
    cues: list[str] = []
    for block in re.split(r"\r?\n\s*\r?\n", text.strip()):
        lines = [ln for ln in block.splitlines() if ln.strip()]
        if len(lines) >= 2 and "-->" in lines[1]:
            rows = lines[2:]
        elif lines and "-->" in lines[0]:
            rows = lines[1:]
        else:
            continue
        cue = row_sep.join(r for r in (_TAG_RE.sub("", x).strip() for x in rows) if r)
        if cue:
            cues.append(cue)
    return cues


def start_nginx(base: Path, logs: Path, port: int) -> subprocess.Popen[bytes]:
    """nginx with the RTMP module on 127.0.0.1:port, recording every stream to base/rec; waits until it listens."""
    if port_open(port):
        raise RuntimeError(f"rtmp port {port} already in use")
    conf = base / "nginx" / "nginx.conf"
    conf.write_text(NGINX_CONF.format(base=base, port=port))
    proc = spawn(
        ["nginx", "-p", str(base / "nginx"), "-e", str(logs / "nginx.log"), "-c", str(conf)], logs / "nginx.out"
    )
    wait_for(lambda: port_open(port), 10, "nginx-rtmp", proc, logs / "nginx.log")
    return proc


def recording_open(nginx: subprocess.Popen[bytes] | None, flv: Path) -> bool:
    """True while nginx still holds the recording open (i.e. it is still being written)."""
    if nginx is None or nginx.poll() is not None:
        return False
    target = str(Path(flv).resolve())
    fd_dir = Path(f"/proc/{nginx.pid}/fd")
    with contextlib.suppress(OSError):
        for fd in fd_dir.iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) == target:
                    return True
    return False


def extract_captions(flv: str | os.PathLike[str], fps: int, row_sep: str = " ") -> list[str]:
    """CEA-608 captions of an OBS recording (real-obs.md §4 ffmpeg recipe) as cue texts, rows joined by row_sep."""
    with tempfile.TemporaryDirectory(prefix="cc-") as td:
        h264, mkv, srt = Path(td) / "v.h264", Path(td) / "v.mkv", Path(td) / "out.srt"
        base = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
        steps = [
            [
                *base,
                "-i",
                str(flv),
                "-map",
                "0:v:0",
                "-c",
                "copy",
                "-bsf:v",
                "h264_mp4toannexb",
                "-f",
                "h264",
                str(h264),
            ],
            [*base, "-framerate", str(fps), "-i", str(h264), "-c", "copy", str(mkv)],
            [*base, "-f", "lavfi", "-i", f"movie={mkv}[out0+subcc]", "-map", "0:s", str(srt)],
        ]
        for i, cmd in enumerate(steps):
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            if r.returncode != 0:
                if i == 2 and "matches no streams" in r.stderr:
                    return []
                raise RuntimeError(f"ffmpeg step {i + 1} failed ({r.returncode}): {r.stderr.strip()}")
        return parse_srt(srt.read_text(errors="replace"), row_sep) if srt.exists() else []
