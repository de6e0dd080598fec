"""What one /status answer costs the daemon, as an open dashboard asks it every second (#21).

The daemon runs in this process on scripted capture (tests/support/daemon_harness.py) with N target sessions on the
local fake translator, and answers GET /status over real HTTP; the figure is this process's CPU time per answer
(the HTTP client's share included, which is small and the same for old and new code). A benchmark, not a test.

    .venv/bin/python benchmarks/status_cost.py --targets 1,8 --requests 200
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from captioner.config import Config
from tests.support.daemon_harness import running_daemon
from tests.support.fake_translator import FakeTranslator

LANGUAGES = ["ja", "zh", "ko", "fr", "de", "es", "it", "pt"]
KEY = "bench-key"


async def cost(targets: int, requests: int) -> float:
    """CPU milliseconds per /status answer with `targets` sessions connected."""
    fake = FakeTranslator(api_key=KEY)
    await fake.start()
    try:
        cfg = Config.model_validate(
            {"translator": {"url": fake.url, "api_key": KEY, "targets": LANGUAGES[:targets]}, "http": {"port": 0}}
        )
        async with running_daemon(cfg) as daemon, aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{daemon.http_port}/status"
            for _ in range(5):  # warm: every code path of the answer taken once
                await (await http.get(url)).read()
            start = time.process_time()
            for _ in range(requests):
                await (await http.get(url)).read()
            return (time.process_time() - start) / requests * 1e3
    finally:
        await fake.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--targets", default="1,8", help="comma-separated target counts (default 1,8)")
    p.add_argument("--requests", type=int, default=200, help="answers timed per target count (default 200)")
    args = p.parse_args()
    for n in (int(x) for x in args.targets.split(",")):
        ms = asyncio.run(cost(n, args.requests))
        print(
            f"/status with {n} target(s): {ms:.2f} ms of CPU per answer = {ms * 60 / 1000:.3f} s per minute "
            "with a dashboard open (one answer a second)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
