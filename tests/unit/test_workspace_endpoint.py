"""translator.workspace_id + region: `captioner check --connect` (a real child process) reaches the workspace host
the vendor documents, through an HTTP CONNECT proxy from the environment, over TLS checked against a test CA."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.cli import captioner
from tests.support.fake_translator import Q38_MODEL, FakeTranslator
from tests.support.tls_proxy import ConnectProxy, make_certificate

pytestmark = pytest.mark.timeout(120)

KEY = "sk-workspace-secret"
WORKSPACE = "llm-e2e42ws"
HOSTS = {
    "singapore": f"{WORKSPACE}.ap-southeast-1.maas.aliyuncs.com",
    "beijing": f"{WORKSPACE}.cn-beijing.maas.aliyuncs.com",
}


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeTranslator, ConnectProxy, Path]]:
    ca, context = make_certificate(list(HOSTS.values()), tmp_path_factory.mktemp("tls"))
    fake = FakeTranslator(api_key=KEY)
    fake.ssl_context = context
    fake.start_in_thread()
    proxy = ConnectProxy(fake.port).start()
    yield fake, proxy, ca
    proxy.stop()
    fake.stop_thread()


@pytest.mark.parametrize("region", ["singapore", "beijing"])
def test_workspace_id_connects_to_the_workspace_host(
    tls: tuple[FakeTranslator, ConnectProxy, Path], tmp_path: Path, region: str
) -> None:
    fake, proxy, ca = tls
    before, requests_before = len(fake.connections), len(proxy.requests)
    path = tmp_path / "c.yaml"
    translator = {
        "api_key": "${KEY}",
        "model": Q38_MODEL,
        "workspace_id": WORKSPACE,
        "region": region,
        "data_inspection": "enable",
        "source_language": None,
    }
    path.write_text(yaml.safe_dump({"translator": translator, "obs": {"enabled": False}}))
    env = {
        "KEY": KEY,
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}",
        "SSL_CERT_FILE": str(ca),
    }
    r = captioner("check", "--connect", "--config", str(path), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "translator ja: ok" in r.stdout
    assert proxy.requests[requests_before:] == [f"{HOSTS[region]}:443"]
    conn = fake.connections[before]
    assert conn.model == Q38_MODEL  # ?model= on the documented path (the fake serves only that path)
    assert conn.headers["X-DashScope-WorkSpace"] == WORKSPACE
    assert conn.headers["X-DashScope-DataInspection"] == "enable"
    assert conn.headers["Host"] == HOSTS[region]
    assert conn.session_update is not None and conn.session_update["output_modalities"] == ["text"]
    assert KEY not in r.stdout + r.stderr


def test_without_the_proxy_the_workspace_host_is_not_the_fake(tmp_path: Path) -> None:
    """The test CA proves nothing unless the client checks certificates: a fake host without it is refused."""
    fake = FakeTranslator(api_key=KEY)
    _, context = make_certificate(["127.0.0.1.nip.invalid"], tmp_path)
    fake.ssl_context = context
    fake.start_in_thread()
    try:
        path = tmp_path / "c.yaml"
        url = f"wss://127.0.0.1:{fake.port}/api-ws/v1/realtime"
        translator = {"api_key": "${KEY}", "model": Q38_MODEL, "url": url, "source_language": None}
        path.write_text(yaml.safe_dump({"translator": translator, "obs": {"enabled": False}}))
        env = {"KEY": KEY, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
        r = captioner("check", "--connect", "--config", str(path), env=env)
    finally:
        fake.stop_thread()
    assert r.returncode == 1
    assert "translator ja: failed" in r.stdout and "CERTIFICATE_VERIFY_FAILED" in r.stdout, r.stdout
    assert fake.connections == []
