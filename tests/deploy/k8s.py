"""Small readers for rendered Kubernetes objects."""

from __future__ import annotations

from typing import Any


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The single object of `kind`; fails if there are none or several."""
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} named {name}, found {len(found)}"
    return found[0]


def worker_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    containers: list[dict[str, Any]] = pod["containers"]
    assert [c["name"] for c in containers] == ["worker"]
    return containers[0]


def container_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    """The worker's environment as the kubelet builds it: envFrom ConfigMaps, then env.

    Values from secrets and the downward API stand in as placeholders.
    """
    container = worker_container(objects)
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        config_map = named(objects, "ConfigMap", source["configMapRef"]["name"])
        env.update(config_map["data"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "secretKeyRef" in item["valueFrom"]:
            env[item["name"]] = f"<secret {item['valueFrom']['secretKeyRef']['key']}>"
        else:
            env[item["name"]] = "import-closure-7d9f8-abcde"
    return env


def resolve_port(container: dict[str, Any], port: int | str) -> int:
    """A probe's or monitor's port (number or name) as the container port number."""
    if isinstance(port, int):
        return port
    numbers = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    assert numbers, f"no container port named {port!r}"
    return int(numbers[0])
