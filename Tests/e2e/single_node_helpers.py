"""Helpers shared by the single-node test files (test_consul_http_api.py, test_consul_client.py,
test_native_api.py, test_bad_input.py, test_durability.py): request bodies for the native API and
readers of the answers both APIs give.
"""

from __future__ import annotations

import requests

LOOPBACK_HOST = "127.0.0.1"


def native_instance(name: str, iid: str, **fields) -> dict:
    body = {"service_name": name, "instance_id": iid, "host": LOOPBACK_HOST, "port": 8080}
    body.update(fields)
    return body


def ids_of(instances) -> set[str]:
    return {i["instance_id"] for i in instances}


def service_ids(node, name: str, **params) -> set[str]:
    resp = node.get(f"/registry/services/{name}", params=params)
    assert resp.status_code == 200, f"GET /registry/services/{name} {params} -> {resp.status_code} {resp.text!r}"
    body = resp.json()
    assert body["service"] == name
    return ids_of(body["instances"])


def all_ids(node, **params) -> set[str]:
    resp = node.get("/registry/services", params=params)
    assert resp.status_code == 200, f"GET /registry/services {params} -> {resp.status_code} {resp.text!r}"
    services = resp.json()["services"]
    assert isinstance(services, dict)
    return {i["instance_id"] for instances in services.values() for i in instances}


def consul_index(resp: requests.Response) -> int:
    assert "X-Consul-Index" in resp.headers, f"no X-Consul-Index on {resp.request.method} {resp.url}"
    value = int(resp.headers["X-Consul-Index"])
    assert value > 0, f"X-Consul-Index must be positive, got {value}"
    return value
