"""The systemd units in systemd/: `systemd-analyze verify` is silent about them, they keep the service contract
(Type=notify, watchdog, no restart on a config error, reload by SIGHUP), carry no secrets, and the system units are
hardened to a measured `systemd-analyze security` exposure level.

Works offline, without a running systemd (PID 1 need not be systemd). It needs `systemd-analyze` (Debian package
`systemd`) and fails, never skips, without it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from captioner import server
from captioner.config import HttpConfig, parse

UNIT_DIR = Path(__file__).resolve().parents[2] / "systemd"
USER_UNIT = "captioner.service"
USER_SANDBOX = "captioner-user-sandbox.conf"
SYSTEM_UNIT = "captioner-system.service"
TEMPLATE_UNIT = "captioner@.service"
SYSTEM_UNITS = [SYSTEM_UNIT, TEMPLATE_UNIT]
ALL_UNITS = [USER_UNIT, *SYSTEM_UNITS]
# Where the units expect the console script; verify insists that ExecStart's program exists, so tests point it at
# the installed one.
INSTALLED_PATHS = {
    USER_UNIT: "%h/.local/share/captioner/venv/bin/captioner",
    SYSTEM_UNIT: "/opt/captioner/venv/bin/captioner",
    TEMPLATE_UNIT: "/opt/captioner/venv/bin/captioner",
}
# Measured with systemd 252 (Debian 12): system and template 1.3, user 6.2, user + sandbox drop-in 2.4.
# The limits leave a little room, so that weakening the hardening fails here.
MAX_EXPOSURE = {SYSTEM_UNIT: 1.5, TEMPLATE_UNIT: 1.5, USER_UNIT: 6.5}
MAX_EXPOSURE_USER_SANDBOXED = 2.5
SECRET_NAMES = ("DASHSCOPE_API_KEY", "OBS_WEBSOCKET_PASSWORD")
APT_HINT = "apt-get install systemd (provides systemd-analyze; works without systemd running as PID 1)"

pytestmark = pytest.mark.timeout(60)


# ---- helpers ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail(f"systemd-analyze is missing and these tests must not be skipped: {APT_HINT}", pytrace=False)
    return path


def directives(unit: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, in order; repeated keys kept; continuation lines joined."""
    out: list[tuple[str, str, str]] = []
    section = ""
    pending = ""
    for raw in (UNIT_DIR / unit).read_text().splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{unit}: not an assignment: {line!r}"
        out.append((section, key.strip(), value.strip()))
    return out


def service(unit: str) -> dict[str, list[str]]:
    """[Service] key -> list of values (several for repeated keys)."""
    values: dict[str, list[str]] = {}
    for section, key, value in directives(unit):
        if section == "Service":
            values.setdefault(key, []).append(value)
    return values


def one(unit: str, key: str) -> str:
    values = service(unit).get(key, [])
    assert len(values) == 1, f"{unit}: expected exactly one {key}=, found {values}"
    return values[0]


def captioner_executable() -> str:
    """The installed console script (what ExecStart runs), or this Python if it is not on PATH."""
    beside = Path(sys.executable).with_name("captioner")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("captioner") or sys.executable


def staged(unit: str, directory: Path) -> Path:
    """Copy `unit` into `directory` with its captioner path pointing at a real executable."""
    text = (UNIT_DIR / unit).read_text()
    assert INSTALLED_PATHS[unit] in text, f"{unit} no longer runs {INSTALLED_PATHS[unit]}; update this test"
    path = directory / unit
    path.write_text(text.replace(INSTALLED_PATHS[unit], captioner_executable()))
    return path


def run_analyze(analyze: str, args: list[str], runtime_dir: Path) -> subprocess.CompletedProcess[str]:
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    # --user needs a runtime directory even offline; no pager, no colours, default log level.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYSTEMD_")}
    env.update(XDG_RUNTIME_DIR=str(runtime_dir), SYSTEMD_PAGER="", SYSTEMD_COLORS="0", LC_ALL="C.UTF-8")
    return subprocess.run([analyze, *args], capture_output=True, text=True, env=env, timeout=50, check=False)


def verify(analyze: str, paths: list[Path], tmp_path: Path, user: bool) -> None:
    args = [*(["--user"] if user else []), "verify", "--man=no", "--recursive-errors=no", *map(str, paths)]
    result = run_analyze(analyze, args, tmp_path / "runtime")
    output = (result.stdout + result.stderr).splitlines()
    ours = [line for line in output if "captioner" in line]
    assert not ours, "systemd-analyze verify complains about our unit:\n" + "\n".join(output)
    assert result.returncode == 0, f"systemd-analyze verify exited {result.returncode}:\n" + "\n".join(output)


def exposure(analyze: str, path: Path, tmp_path: Path, user: bool) -> float:
    args = [*(["--user"] if user else []), "security", "--offline=yes", str(path)]
    result = run_analyze(analyze, args, tmp_path / "runtime")
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?) ", result.stdout)
    assert match, f"no exposure level in systemd-analyze security output:\n{result.stdout}\n{result.stderr}"
    return float(match.group(1))


# ---- systemd-analyze verify ---------------------------------------------------------------------------------------


def test_user_unit_verifies(analyze: str, tmp_path: Path) -> None:
    verify(analyze, [staged(USER_UNIT, tmp_path)], tmp_path, user=True)


def test_user_unit_with_sandbox_drop_in_verifies(analyze: str, tmp_path: Path) -> None:
    unit = staged(USER_UNIT, tmp_path)
    dropins = tmp_path / f"{USER_UNIT}.d"
    dropins.mkdir()
    shutil.copy(UNIT_DIR / USER_SANDBOX, dropins / "sandbox.conf")
    verify(analyze, [unit], tmp_path, user=True)


def test_system_unit_verifies(analyze: str, tmp_path: Path) -> None:
    verify(analyze, [staged(SYSTEM_UNIT, tmp_path)], tmp_path, user=False)


def test_template_unit_and_an_instance_verify(analyze: str, tmp_path: Path) -> None:
    template = staged(TEMPLATE_UNIT, tmp_path)
    verify(analyze, [template, tmp_path / "captioner@stream1.service"], tmp_path, user=False)


def test_verify_does_report_a_broken_unit(analyze: str, tmp_path: Path) -> None:
    """The check above is only worth something if verify really complains about our file."""
    unit = staged(SYSTEM_UNIT, tmp_path)
    unit.write_text(unit.read_text().replace("[Service]\n", "[Service]\nNoSuchSetting=1\n", 1))
    with pytest.raises(AssertionError, match="NoSuchSetting"):
        verify(analyze, [unit], tmp_path, user=False)


# ---- the service contract -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ALL_UNITS)
def test_service_contract(unit: str) -> None:
    assert one(unit, "Type") == "notify"
    assert one(unit, "NotifyAccess") == "main"
    assert one(unit, "WatchdogSec") == "30"
    assert one(unit, "Restart") == "on-failure"
    assert "2" in one(unit, "RestartPreventExitStatus").split(), "a config error (exit 2) must not restart"
    assert one(unit, "RestartSec") == "5"
    assert one(unit, "ExecReload") == "/bin/kill -HUP $MAINPID"
    # systemd must not SIGKILL captioner while it is still delivering the last caption.
    assert float(one(unit, "TimeoutStopSec")) > server.shutdown_limit_s(parse({"translator": {"api_key": "k"}}))
    assert one(unit, "UMask") == "0077"
    assert one(unit, "NoNewPrivileges") == "yes"
    # The default HTTP caps and the rest of the daemon must fit, with room to raise the caps (#15).
    defaults = HttpConfig()
    assert int(one(unit, "LimitNOFILE")) >= 4 * (defaults.max_connections + defaults.max_event_streams + 128)


@pytest.mark.parametrize("unit", [*ALL_UNITS, USER_SANDBOX])
def test_no_secrets_in_units(unit: str) -> None:
    text = (UNIT_DIR / unit).read_text()
    assert not re.search(r"\bsk-[A-Za-z0-9]{6,}", text), "looks like an API key"
    for section, key, value in directives(unit):
        if key in ("Environment", "PassEnvironment", "UnsetEnvironment"):
            for name in SECRET_NAMES:
                assert name not in value, f"{unit}: [{section}] {key}= carries {name}"
        assert not re.search(r"(DASHSCOPE_API_KEY|OBS_WEBSOCKET_PASSWORD)=[^\"$]", value), f"literal secret: {value}"


@pytest.mark.parametrize("unit", [*ALL_UNITS, USER_SANDBOX])
def test_memory_deny_write_execute_stays_off(unit: str) -> None:
    """It breaks audio: sounddevice's callback is a cffi closure in writable+executable memory (MemoryError)."""
    assert service(unit).get("MemoryDenyWriteExecute", ["no"]) == ["no"]


def test_user_unit_reads_secrets_from_env_file() -> None:
    assert one(USER_UNIT, "EnvironmentFile") == "-%h/.config/captioner/env"
    assert "%h/.config/captioner/config.yaml" in one(USER_UNIT, "ExecStart")
    assert "PrivateUsers" not in service(USER_UNIT), "needs user namespaces; it belongs in the opt-in drop-in"
    assert service(USER_SANDBOX)["PrivateUsers"] == ["yes"]
    assert service(USER_SANDBOX)["ProtectSystem"] == ["strict"]


@pytest.mark.parametrize(("unit", "name"), [(SYSTEM_UNIT, ""), (TEMPLATE_UNIT, "%i.")])
def test_system_units_take_secrets_as_credentials(unit: str, name: str) -> None:
    creds = service(unit)["LoadCredential"]
    assert sorted(creds) == [
        f"dashscope_api_key:/etc/captioner/{name}dashscope_api_key",
        f"obs_password:/etc/captioner/{name}obs_password",
    ]
    start = one(unit, "ExecStart")
    config = "/etc/captioner/%i.yaml" if name else "/etc/captioner/config.yaml"
    assert start.startswith("/bin/sh -c '") and f"exec {INSTALLED_PATHS[unit]} run --config {config}'" in start
    values = service(unit)
    assert values["DynamicUser"] == ["yes"]
    assert values["SupplementaryGroups"] == ["audio"]
    assert values["DevicePolicy"] == ["closed"]
    assert values["DeviceAllow"] == ["char-alsa rw"]
    assert values["ProtectSystem"] == ["strict"]
    assert values["CapabilityBoundingSet"] == [""]


@pytest.mark.parametrize("unit", SYSTEM_UNITS)
def test_credential_wrapper_exports_the_files_and_execs(unit: str, tmp_path: Path) -> None:
    """Run ExecStart's shell line as systemd would: %d = credentials dir, $$ = $. The secrets arrive in the
    environment without their trailing newline, and captioner replaces the shell (same PID, so NotifyAccess=main
    and the watchdog see captioner itself)."""
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "dashscope_api_key").write_text("sk-test-key 1\n")
    (creds / "obs_password").write_text("")  # OBS without authentication
    probe = tmp_path / "probe"
    probe.write_text('#!/bin/sh\nprintf "%s\\n" "$$" "[$DASHSCOPE_API_KEY]" "[${OBS_WEBSOCKET_PASSWORD-unset}]" "$*"\n')
    probe.chmod(0o755)
    line = one(unit, "ExecStart").replace("%d", str(creds)).replace("%i", "stream1")
    argv = [arg.replace("$$", "$") for arg in shlex.split(line)]
    argv = [arg.replace(INSTALLED_PATHS[unit], str(probe)) for arg in argv]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env={"PATH": "/usr/bin:/bin"})
    out, _ = proc.communicate(timeout=10)
    pid, key, password, args = out.splitlines()
    assert proc.returncode == 0
    assert int(pid) == proc.pid, "the shell must exec captioner, not fork it"
    assert key == "[sk-test-key 1]"
    assert password == "[]"
    config = "/etc/captioner/stream1.yaml" if "@" in unit else "/etc/captioner/config.yaml"
    assert args == f"run --config {config}"


# ---- systemd-analyze security ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", SYSTEM_UNITS)
def test_system_unit_exposure(analyze: str, unit: str, tmp_path: Path) -> None:
    level = exposure(analyze, staged(unit, tmp_path), tmp_path, user=False)
    assert level <= MAX_EXPOSURE[unit], f"{unit}: exposure {level} > {MAX_EXPOSURE[unit]}"


def test_user_unit_exposure(analyze: str, tmp_path: Path) -> None:
    unit = staged(USER_UNIT, tmp_path)
    level = exposure(analyze, unit, tmp_path, user=True)
    assert level <= MAX_EXPOSURE[USER_UNIT], f"{USER_UNIT}: exposure {level} > {MAX_EXPOSURE[USER_UNIT]}"
    dropins = tmp_path / f"{USER_UNIT}.d"
    dropins.mkdir()
    shutil.copy(UNIT_DIR / USER_SANDBOX, dropins / "sandbox.conf")
    sandboxed = exposure(analyze, unit, tmp_path, user=True)
    assert sandboxed <= MAX_EXPOSURE_USER_SANDBOXED, f"with {USER_SANDBOX}: exposure {sandboxed}"
    assert sandboxed < level
