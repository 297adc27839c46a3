"""Issue 31, point 6: the Dask layout is authenticated. A scheduler on another machine is reached
over TLS with the agency's certificates (a machine without one is refused, and so is one with a
certificate of another CA); a `tcp://` scheduler off this machine is refused unless the settings
explicitly accept it."""

from __future__ import annotations

import socket
import ssl

import pytest
from distributed import Client, LocalCluster
from distributed.security import Security

from learnhours.flows.workers import _task_runner, cluster_security
from learnhours.settings import SettingsError, load_settings
from tests.cluster_certificates import cluster_certificates


def _settings(tmp_path, **env: str):
    return load_settings(cwd=tmp_path, environ={f"LEARNHOURS_{k.upper()}": v for k, v in env.items()})


def _tls_env(certs) -> dict[str, str]:
    return {"dask_tls_ca_file": str(certs["ca"]), "dask_tls_cert_file": str(certs["client"]),
            "dask_tls_key_file": str(certs["client_key"])}  # fmt: skip


def test_p6_a_tcp_scheduler_off_this_machine_is_refused_unless_the_settings_accept_it(tmp_path):
    with pytest.raises(SettingsError, match="LEARNHOURS_DASK_PLAIN_TCP") as refused:
        cluster_security(_settings(tmp_path, dask_address="tcp://10.0.0.10:8786"))
    assert "tls://" in str(refused.value)
    with pytest.raises(SettingsError, match="LEARNHOURS_DASK_PLAIN_TCP"):
        cluster_security(_settings(tmp_path, dask_address="hr-cluster.example:8786"))
    for local in ("tcp://127.0.0.1:8786", "tcp://localhost:8786", "tcp://[::1]:8786", ""):
        assert cluster_security(_settings(tmp_path, dask_address=local)) is None
    accepted = _settings(tmp_path, dask_address="tcp://10.0.0.10:8786", dask_plain_tcp="true")
    assert cluster_security(accepted) is None


def test_p6_tls_needs_the_ca_the_certificate_and_the_key(tmp_path):
    certs = cluster_certificates(tmp_path / "certs")
    with pytest.raises(SettingsError, match="LEARNHOURS_DASK_TLS_CA_FILE.*LEARNHOURS_DASK_TLS_KEY_FILE"):
        cluster_security(_settings(tmp_path, dask_address="tls://10.0.0.10:8786",
                                   dask_tls_cert_file=str(certs["client"])))  # fmt: skip
    with pytest.raises(SettingsError, match="找不到檔案"):
        cluster_security(_settings(tmp_path, dask_address="tls://10.0.0.10:8786",
                                   **{**_tls_env(certs), "dask_tls_key_file": "nope.key"}))  # fmt: skip
    with pytest.raises(SettingsError, match="tls://"):  # certificates, and yet plain tcp
        cluster_security(_settings(tmp_path, dask_address="tcp://127.0.0.1:8786", **_tls_env(certs)))
    security = cluster_security(_settings(tmp_path, dask_address="tls://10.0.0.10:8786",
                                          **_tls_env(certs)))  # fmt: skip
    assert security is not None and security.require_encryption
    runner = _task_runner(_settings(tmp_path, dask_address="tls://10.0.0.10:8786", **_tls_env(certs)))
    assert runner.client_kwargs["security"].tls_client_cert == str(certs["client"])


def test_p6_on_loopback_only_a_machine_with_the_agencys_certificate_reaches_the_cluster(tmp_path):
    certs = cluster_certificates(tmp_path / "certs")
    node = Security(tls_ca_file=str(certs["ca"]), tls_scheduler_cert=str(certs["node"]),
                    tls_scheduler_key=str(certs["node_key"]), tls_worker_cert=str(certs["node"]),
                    tls_worker_key=str(certs["node_key"]), tls_client_cert=str(certs["node"]),
                    tls_client_key=str(certs["node_key"]), require_encryption=True)  # fmt: skip
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tls://",
                      host="127.0.0.1", security=node, dashboard_address=None) as cluster:  # fmt: skip
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        ours = cluster_security(_settings(tmp_path, dask_address=address, **_tls_env(certs)))
        with Client(address, security=ours, timeout=30) as client:
            assert client.submit(lambda x: x + 1, 41).result() == 42
        stranger = Security(tls_ca_file=str(certs["ca"]), tls_client_cert=str(certs["stranger"]),
                            tls_client_key=str(certs["stranger_key"]), require_encryption=True)  # fmt: skip
        with pytest.raises((OSError, TimeoutError)):  # another CA's certificate
            Client(address, security=stranger, timeout=3)
        # No certificate at all: the scheduler ends the handshake (TLS 1.2, where the refusal
        # comes in the handshake itself rather than at the first read).
        context = ssl.create_default_context(cafile=str(certs["ca"]))
        context.check_hostname = False
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        host, port = address.removeprefix("tls://").rsplit(":", 1)
        with (
            socket.create_connection((host, int(port)), timeout=10) as raw,
            pytest.raises((ssl.SSLError, ConnectionError)),
        ):
            context.wrap_socket(raw).recv(1)
        with pytest.raises((OSError, TimeoutError, ValueError)):  # the same port in clear
            Client(address.replace("tls://", "tcp://"), timeout=3)
