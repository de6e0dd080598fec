"""The command line as a user runs it: exit codes, messages, `check --connect`; with real parts: e2e/test_cli.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from captioner import __version__
from tests.support.cli import captioner
from tests.support.fake_translator import FakeTranslator

pytestmark = pytest.mark.timeout(120)


def test_version() -> None:
    r = captioner("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"captioner {__version__}"


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("translator:\n  api_key: k\n  targets: [ja, xx]\n")
    for command in ("check", "run"):
        r = captioner(command, "--config", str(cfg))
        assert r.returncode == 2
        assert "translator.targets[1]: 'xx' is not a supported language" in r.stderr


def test_config_that_is_not_utf8_exits_2_naming_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes("translator:\n  api_key: k\n  voice: Chérie\n".encode("latin-1"))
    for command in ("check", "run"):
        r = captioner(command, "--config", str(cfg))
        assert r.returncode == 2, r.stderr
        assert f"captioner: config error: {cfg}: not UTF-8 text" in r.stderr
        assert "Traceback" not in r.stderr


def test_missing_key_in_environment_exits_2(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    r = captioner("run", env=env, cwd=tmp_path)
    assert r.returncode == 2
    assert "translator.api_key: environment variable DASHSCOPE_API_KEY is not set" in r.stderr


def test_config_from_environment_variable(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("translator:\n  api_key: k\n  targets: [de]\n")
    r = captioner("check", env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CAPTIONER_CONFIG": str(cfg)})
    assert r.returncode == 0 and str(cfg) in r.stdout


def test_usage_error_exits_2() -> None:
    assert captioner("frobnicate").returncode == 2


def test_warns_when_a_file_holding_a_secret_is_world_readable(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("translator:\n  api_key: sk-literal-in-file\n")
    cfg.chmod(0o644)
    r = captioner("check", "--config", str(cfg))
    assert r.returncode == 0
    assert "holds a secret and is readable by other users" in r.stderr
    assert "sk-literal-in-file" not in r.stderr + r.stdout
    cfg.chmod(0o600)
    assert "readable by other users" not in captioner("check", "--config", str(cfg)).stderr
    env_cfg = tmp_path / "env.yaml"
    env_cfg.write_text("translator:\n  api_key: ${K}\n")
    env_cfg.chmod(0o644)
    r = captioner("check", "--config", str(env_cfg), env={"K": "sk-from-env", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and "readable by other users" not in r.stderr


def test_check_connect_never_prints_a_key_the_server_echoes(tmp_path: Path) -> None:
    key = "sk-echoed-by-the-server"
    fake = FakeTranslator(api_key=key)
    fake.refuse_updates = ("InvalidParameter", f"Invalid header Authorization: Bearer {key}")
    fake.start_in_thread()
    try:
        path = tmp_path / "c.yaml"
        path.write_text(
            yaml.safe_dump({"translator": {"url": fake.url, "api_key": "${KEY}"}, "obs": {"enabled": False}})
        )
        r = captioner("check", "--connect", "--config", str(path), env={"KEY": key, "PATH": "/usr/bin:/bin"})
    finally:
        fake.stop_thread()
    assert r.returncode == 1
    assert "translator ja: failed: SessionRejected: Invalid header Authorization: Bearer ***" in r.stdout
    assert key not in r.stdout + r.stderr
