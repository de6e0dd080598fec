"""Command line: parse arguments, set up logging, run, map outcomes to exit codes."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from . import __version__
from .config import Config, config_warnings, load, resolve_path
from .errors import ConfigError
from .redaction import RedactFilter, add_secrets, redact

log = logging.getLogger("captioner")
EXIT_OK, EXIT_FATAL, EXIT_CONFIG = 0, 1, 2


def setup_logging(level: str, secrets: list[str] | None = None) -> None:
    add_secrets(*(secrets or []))  # those of every loaded config are known already (config.parse adds them)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("captioner").setLevel(level.upper())
    logging.getLogger("obsws_python").setLevel(logging.CRITICAL)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="captioner",
        description="Live translated captions for OBS Studio.",
        epilog="New here? `captioner demo` shows sample captions in OBS without an API key, at no cost.",
    )
    p.add_argument("--version", action="version", version=f"captioner {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the daemon in the foreground")
    run.add_argument("--config", help="YAML config (default: $CAPTIONER_CONFIG, ~/.config/captioner/config.yaml)")
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="overrides log_level")
    check = sub.add_parser("check", help="validate the config and exit")
    check.add_argument("--config")
    check.add_argument("--connect", action="store_true", help="also try OBS and the translator")
    sub.add_parser("devices", help="list audio input devices")
    demo = sub.add_parser(
        "demo",
        help="run the real pipeline against a built-in stand-in for the translator: no API key, no cost",
        description="Runs like `run` (capture, OBS text sources, overlay, HTTP), but captions come from a local "
        "stand-in that marks every text [DEMO]: it hears when you speak, not what you say. translator.api_key "
        "is not needed and nothing is sent to the internet. Use it to set up sources, overlay and layout.",
    )
    demo.add_argument("--config", help="YAML config, as for run (translator.api_key and url are ignored)")
    demo.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="overrides log_level")
    return p


def _load(path_arg: str | None, demo: bool = False) -> tuple[Config, Path | None]:
    path = resolve_path(path_arg)
    if demo:
        from .standin import OVERRIDES

        return load(path, overrides=OVERRIDES), path
    return load(path), path


def warn_if_exposed(path: Path | None) -> None:
    """A file that holds a secret itself (not ${VAR}) should not be readable by other users."""
    if path is None:
        return
    try:
        readable_by_others = path.stat().st_mode & 0o044
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) if readable_by_others else None
    except (OSError, yaml.YAMLError):
        return
    if not isinstance(raw, dict):
        return
    # Looked up in the file as written: a value that is not (only) a ${VAR} reference is the secret itself.
    literal = [
        value
        for section, key in (("translator", "api_key"), ("obs", "password"), ("http", "token"))
        if isinstance(raw.get(section), dict)
        and isinstance(value := raw[section].get(key), str)
        and value
        and not re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}", value.strip())
    ]
    if literal:
        log.warning("%s holds a secret and is readable by other users: chmod 600 it, or use ${VAR}", path)


def warn_config(cfg: Config) -> None:
    for warning in config_warnings(cfg):
        log.warning("%s", warning)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "devices":
            from .cli_tools import print_devices

            return print_devices()
        cfg, path = _load(args.config, demo=args.command == "demo")
    except ConfigError as e:
        # Every problem found at once (pydantic reports all it finds), each naming its key path.
        for key, problem in e.problems:
            print(redact(f"captioner: config error: {key}: {problem}"), file=sys.stderr)
        return EXIT_CONFIG
    secrets = [
        cfg.translator.api_key.get_secret_value(),
        cfg.obs.password.get_secret_value(),
        cfg.http.token.get_secret_value(),
    ]
    if args.command == "check":
        setup_logging("warning", secrets)
        warn_if_exposed(path)
        warn_config(cfg)
        print(f"config ok: {path or 'built-in defaults'}")
        if args.connect:
            from .cli_tools import check_connections

            return asyncio.run(check_connections(cfg))
        return EXIT_OK
    setup_logging(args.log_level or cfg.log_level, secrets)
    warn_if_exposed(path)
    warn_config(cfg)
    from .server import serve
    from .standin import run_demo

    try:
        return asyncio.run(run_demo(cfg, path) if args.command == "demo" else serve(cfg, path))
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception:
        log.exception("fatal error")
        return EXIT_FATAL


if __name__ == "__main__":
    sys.exit(main())
