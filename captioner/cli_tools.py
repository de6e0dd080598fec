"""The one-shot commands: `captioner devices` and `captioner check --connect`."""

from __future__ import annotations

import asyncio
import sys

from .config import Config
from .errors import describe
from .reconnect import ConnectBudget
from .redaction import redact
from .status import Status


def print_devices() -> int:
    """List input devices: index, name, host API, channels, default rate; mark default and loopback."""
    from .inputs import pulse
    from .inputs.audio_devices import list_inputs

    try:
        devices = list_inputs()
    except Exception as e:  # noqa: BLE001 - PortAudio missing or broken: say so
        print(f"captioner: cannot list audio devices: {e}", file=sys.stderr)
        return 1
    print(f"{'':2} {'index':>5}  {'name':40} {'host API':18} {'ch':>3} {'rate':>7}")
    for d in devices:
        marks = ("*" if d.is_default else " ") + ("L" if d.is_loopback else " ")
        print(f"{marks} {d.index:>5}  {d.name[:40]:40} {d.hostapi[:18]:18} {d.channels:>3} {d.default_rate:>7.0f}")
    if not devices:
        problem = pulse.server_problem() if pulse.available() else "libpulse is not installed"
        server = f"the sound server did not answer ({problem})" if problem else "the sound server has no sources"
        print(
            f"(no input devices: PortAudio found none, and {server}; start PulseAudio/PipeWire, check PULSE_SERVER, "
            "or plug in a microphone)"
        )
    print("\n* = default input, L = loopback (hears what the computer plays)")
    monitor = pulse.monitor_source()
    if monitor:
        print(f'audio.device: "loopback" records {monitor} (natively from the sound server with audio.backend: auto).')
        sources = pulse.names("sources")
        if sources:
            print("PulseAudio/PipeWire sources (an exact name works as audio.device): " + ", ".join(sources))
    _print_outputs()
    return 0


def _print_outputs() -> None:
    """Output devices and sinks, for voice_outputs[].device / .sink."""
    from .inputs import pulse
    from .voice import list_outputs

    try:
        outputs = list_outputs()
    except Exception:  # noqa: BLE001 - already reported above if PortAudio is broken
        return
    print(f"\noutput devices (voice_outputs[].device):\n{'':2} {'index':>5}  {'name':40} {'ch':>3} {'rate':>7}")
    for o in outputs:
        print(f"{'':2} {o.index:>5}  {o.name[:40]:40} {o.channels:>3} {o.default_rate:>7.0f}")
    sinks = pulse.names("sinks")
    if sinks:
        print("PulseAudio/PipeWire sinks (voice_outputs[].sink): " + ", ".join(sinks))


async def check_connections(cfg: Config) -> int:
    """Try OBS and each translator target once; print ok / failed with the reason."""
    from .obs_client import describe_error, new_client, quiet_obsws_logger
    from .reload import session_spec
    from .translation.session import TranslatorSession

    quiet_obsws_logger()
    failed = False
    if cfg.obs.enabled:
        try:

            def ping() -> str:
                client = new_client(cfg.obs)
                try:
                    v = client.send("GetVersion", raw=True)
                    return f"OBS {v.get('obsVersion')}, obs-websocket {v.get('obsWebSocketVersion')}"
                finally:
                    client.disconnect()

            info = await asyncio.wait_for(asyncio.to_thread(ping), cfg.obs.timeout_s + 2)
            print(f"obs: ok ({info})")
        except Exception as e:  # noqa: BLE001 - every failure is reported the same way
            failed = True
            print(redact(f"obs: failed: {describe_error(e, cfg.obs.host, cfg.obs.port)}"))
    status = Status("check")
    budget = ConnectBudget()
    for target in cfg.translator.targets:
        session = TranslatorSession(
            cfg.translator,
            target,
            status=status,
            on_caption=lambda c: None,
            budget=budget,
            # The session the daemon would open (its voice, clone, turns), without paying for a transcript.
            **{**session_spec(cfg, target).options(), "transcribe_source": False},
        )
        try:
            await session.probe()
            print(f"translator {target}: ok")
        except Exception as e:  # noqa: BLE001 - every failure is reported the same way
            failed = True
            print(redact(f"translator {target}: failed: {describe(e)}"))
    return 1 if failed else 0
