"""Reading a worker's HTTP endpoints the way Prometheus and Kubernetes do."""

from __future__ import annotations

import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def status(url: str) -> int:
    """HTTP status of a probe; 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def samples(base_url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics keyed by (name, labels)."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(base_url: str, name: str, **labels: str) -> float | None:
    return samples(base_url).get((name, frozenset(labels.items())))


def events_done(base_url: str) -> float:
    """Input events the worker counts as done, all outcomes together; 0 while nothing answers."""
    try:
        found = samples(base_url)
    except OSError:
        return 0.0
    return sum(v for (name, _), v in found.items() if name == "import_closure_events_total")
