"""The `roster` command line: usage errors, config files, and the services/members tables
(SPEC §1).

Tests that need a node start their own from the built binary on free loopback ports; nothing
sleeps to synchronise.
"""

from __future__ import annotations

import re

from conftest import free_ports, run_cli

# MARK: - command line


def test_help_exits_0():
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    assert "agent" in result.stdout + result.stderr


def test_agent_without_data_dir_is_a_usage_error(tmp_path):
    http, dns, bind = free_ports(3)
    result = run_cli(
        "agent", "--node-name", "x", "--insecure-plaintext",
        "--http", f"127.0.0.1:{http}", "--dns", f"127.0.0.1:{dns}", "--bind", f"127.0.0.1:{bind}",
        timeout=15,
    )
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "--data-dir" in result.stdout + result.stderr


def test_agent_with_unknown_flag_is_a_usage_error(tmp_path):
    result = run_cli("agent", "--data-dir", str(tmp_path / "d"), "--insecure-plaintext", "--bogus", timeout=15)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "--bogus" in result.stdout + result.stderr


def test_agent_without_tls_or_insecure_flag_refuses_to_start(tmp_path):
    http, dns, bind = free_ports(3)
    result = run_cli(
        "agent", "--data-dir", str(tmp_path / "d"),
        "--http", f"127.0.0.1:{http}", "--dns", f"127.0.0.1:{dns}", "--bind", f"127.0.0.1:{bind}",
        timeout=15,
    )
    assert result.returncode == 2, (result.returncode, result.stderr)
    out = (result.stdout + result.stderr).lower()
    assert "tls" in out or "insecure-plaintext" in out


def test_config_file_with_unknown_key_names_it(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'd'}\ninsecure_plaintext: true\nbogus_key: 1\n")
    result = run_cli("agent", "--config", str(cfg), timeout=15)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "bogus_key" in result.stdout + result.stderr


def test_agent_from_config_file_and_flags_override_it(node_factory, tmp_path):
    n = node_factory("fromflag")
    cfg = tmp_path / "node.yaml"
    cfg.write_text(
        "node_name: fromfile\n"
        f"data_dir: {n.data_dir}\n"
        f"http: {n.http_addr}\n"
        f"dns: 127.0.0.1:{n.dns_port}\n"
        f"bind: 127.0.0.1:{n.bind_port}\n"
        "insecure_plaintext: true\n"
        "datacenter: east\n"
    )
    # Only --config and an overriding --node-name on the command line.
    n.args = lambda: [str(n.binary), "agent", "--config", str(cfg), "--node-name", "fromflag"]
    n.start()
    me = n.consul().agent.self()
    assert me["Config"]["NodeName"] == "fromflag"
    assert me["Config"]["Datacenter"] == "east"
    n.stop()


def test_cli_services_and_members_tables(node):
    assert node.put("/v1/agent/service/register", {"Name": "web", "ID": "web-1", "Port": 8080}).status_code == 200
    assert node.put("/v1/agent/service/register", {"Name": "web", "ID": "web-2", "Port": 8081}).status_code == 200
    services = run_cli("services", "--http", node.http_addr)
    assert services.returncode == 0, services.stderr
    [row] = [line for line in services.stdout.splitlines() if "web" in line.split()]
    assert re.search(r"\b2\b", row), f"instance count 2 missing from {row!r}"

    members = run_cli("members", "--http", node.http_addr)
    assert members.returncode == 0, members.stderr
    [row] = [line for line in members.stdout.splitlines() if "n1" in line.split()]
    assert "alive" in row.lower()


def test_cli_against_a_dead_node_fails_cleanly():
    [port] = free_ports(1)
    result = run_cli("services", "--http", f"127.0.0.1:{port}", timeout=15)
    assert result.returncode != 0
    assert f"127.0.0.1:{port}" in result.stdout + result.stderr, "the error should name the address it tried"
