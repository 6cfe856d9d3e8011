"""deploy/grafana: the dashboard's structure, and every query evaluated by a real Prometheus.

The Prometheus scrapes a synthetic target exposing every contract series (synthetic.py) and
evaluates deploy/prometheus/rules.yaml, so each panel query must parse, reference only contract
series or recording rules, and return data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy import contract
from tests.deploy.conftest import RULES
from tests.deploy.prometheus_server import PrometheusServer, running_prometheus
from tests.deploy.promql import references
from tests.deploy.synthetic import SyntheticWorker
from tests.deploy.test_prometheus_rules import recorded_names
from tests.deploy.tools import DEPLOY

DASHBOARD_PATH = DEPLOY / "grafana" / "import-closure.json"
DASHBOARD: dict[str, Any] = json.loads(DASHBOARD_PATH.read_text())
PROVISIONING = DEPLOY / "grafana" / "provisioning"

#: The namespace label the test Prometheus gives its target, and what $namespace becomes.
NAMESPACE = "deploy-test"
#: Grafana variables as the test substitutes them (the built-ins with typical values).
VARIABLES = {
    "namespace": NAMESPACE,
    "job": contract.JOB,
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "5m",
}
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def substitute(expr: str) -> str:
    """Replace $name and ${name} with VARIABLES; an unknown variable is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in VARIABLES:
            raise AssertionError(f"unknown Grafana variable ${name} in {expr}")
        return VARIABLES[name]

    return _VARIABLE.sub(replace, expr)


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


PANELS = [p for p in _panels(DASHBOARD["panels"]) if p["type"] != "row"]
#: Panels of counts and rates where no series means zero happened (not "unknown"): their
#: `noValue` is 0. Lag and latency are left out: with no worker reporting they are unknown.
ZERO_WHEN_EMPTY = {
    "Workers up",
    "Events/s",
    "Commit failures",
    "Dead letters by error code",
    "Sent to review/s",
    "Review decisions/s by cluster",
    "Top review reasons and rules",
    "Rebalances",
    "Policy file rejected",
}
QUERIES: list[tuple[str, str]] = [
    (f"{panel['title']}/{target['refId']}", target["expr"])
    for panel in PANELS
    for target in panel["targets"]
] + [
    (f"annotation {a['name']}", a["expr"]) for a in DASHBOARD["annotations"]["list"] if "expr" in a
]
QUERY_IDS = [name for name, _ in QUERIES]


class TestStructure:
    def test_has_namespace_and_job_variables(self) -> None:
        variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
        assert {"datasource", "namespace", "job"} <= set(variables)
        assert variables["namespace"]["includeAll"] is True
        assert variables["namespace"]["allValue"] == ".*"
        assert variables["job"]["current"]["value"] == contract.JOB

    def test_covers_every_panel_the_operations_guide_describes(self) -> None:
        titles = {p["title"] for p in PANELS}
        assert {
            "Events/s by outcome",
            "Reject ratio by cluster",
            "Top rejection reasons and rules",
            "Dead letters by error code",
            "Consumer lag by partition",
            "Decision latency p50 / p99",
            "Assigned partitions per worker",
            "Rebalances",
            "Policy in use",
            "CPU per worker",
            "Resident memory per worker",
        } <= titles

    def test_every_panel_queries_through_the_datasource_variable(self) -> None:
        for panel in PANELS:
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}", panel["title"]

    def test_panel_ids_are_unique_and_panels_do_not_overlap(self) -> None:
        everything = list(_panels(DASHBOARD["panels"]))
        ids = [p["id"] for p in everything]
        assert len(ids) == len(set(ids))
        cells: set[tuple[int, int]] = set()
        for panel in everything:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, panel["title"]
            mine = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not mine & cells, f"{panel['title']} overlaps another panel"
            cells |= mine

    @pytest.mark.parametrize("title", sorted(ZERO_WHEN_EMPTY))
    def test_a_count_with_no_series_reads_zero_not_no_data(self, title: str) -> None:
        """No worker up, nothing rejected, nothing sent to review: the truth is 0, and "No
        data" on those panels reads like a broken dashboard in an incident."""
        [panel] = [p for p in PANELS if p["title"] == title]
        assert panel["fieldConfig"]["defaults"].get("noValue") == "0"

    @pytest.mark.parametrize(("name", "expr"), QUERIES, ids=QUERY_IDS)
    def test_query_filters_by_namespace_and_job(self, name: str, expr: str) -> None:
        """Every selector honours the template variables, so the dashboard shows one deployment."""
        for selector in re.findall(r"\{([^{}]*)\}", expr):
            assert 'namespace=~"$namespace"' in selector, name
            assert 'job=~"$job"' in selector, name

    @pytest.mark.parametrize(("name", "expr"), QUERIES, ids=QUERY_IDS)
    def test_query_uses_only_contract_series_labels_and_recording_rules(
        self, name: str, expr: str
    ) -> None:
        groups = yaml.safe_load(RULES.read_text())["groups"]
        refs = references(substitute(expr))
        assert refs.metrics, f"{name} selects no series"
        assert refs.metrics <= contract.exposed_series_names() | recorded_names(groups)
        assert refs.labels <= contract.all_label_names()

    def test_provisioning_points_grafana_at_the_dashboard_and_prometheus(self) -> None:
        datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())
        (source,) = datasources["datasources"]
        assert source["type"] == "prometheus"
        assert source["isDefault"] is True
        dashboards = yaml.safe_load(
            (PROVISIONING / "dashboards" / "import-closure.yaml").read_text()
        )
        (provider,) = dashboards["providers"]
        assert provider["type"] == "file"
        assert Path(provider["options"]["path"]).is_absolute()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A real Prometheus scraping the synthetic worker every second, with our rules loaded;
    yielded once rates and recording rules have data."""
    worker = SyntheticWorker()
    try:
        with running_prometheus(
            tmp_path_factory.mktemp("prometheus"),
            targets=[worker.address],
            rule_files=[RULES],
            target_labels={"namespace": NAMESPACE},
        ) as server:
            server.wait_for(f'up{{job="{contract.JOB}"}} == 1')
            server.wait_for("rate(import_closure_events_total[1m]) > 0")
            server.wait_for("job:import_closure_decision_latency_seconds:p99_5m > 0")
            yield server
    finally:
        worker.close()


class TestAgainstPrometheus:
    @pytest.mark.parametrize(("name", "expr"), QUERIES, ids=QUERY_IDS)
    def test_query_evaluates_and_returns_data(
        self, prometheus: PrometheusServer, name: str, expr: str
    ) -> None:
        """Valid PromQL, and the synthetic worker's series are enough to fill the panel."""
        answer = prometheus.query_response(substitute(expr))
        assert answer["status"] == "success", f"{name}: {answer.get('error')}"
        if "offset 1w" in expr:
            return  # last week's baseline: the test Prometheus is seconds old
        assert answer["data"]["result"], f"{name} returned no data: {substitute(expr)}"

    @pytest.mark.parametrize("variable", ["namespace", "job"])
    def test_variable_query_finds_the_deployment(
        self, prometheus: PrometheusServer, variable: str
    ) -> None:
        """label_values(<selector>, <label>): Grafana's variable query, evaluated as PromQL."""
        (definition,) = [
            v["definition"] for v in DASHBOARD["templating"]["list"] if v["name"] == variable
        ]
        match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", definition)
        assert match, definition
        selector, label = match.groups()
        values = {s["metric"].get(label) for s in prometheus.query(substitute(selector))}
        assert VARIABLES[variable] in values
