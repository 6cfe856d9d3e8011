"""deploy/prometheus: promtool checks and unit tests, and the rules' references to the contract."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.deploy import contract
from tests.deploy.conftest import RULES
from tests.deploy.promql import references
from tests.deploy.tools import DEPLOY, ROOT, require, run

RULES_TEST = DEPLOY / "prometheus" / "rules.test.yaml"
PROMETHEUS_YML = DEPLOY / "prometheus" / "prometheus.yml"
OPERATIONS = ROOT / "docs" / "operations.md"


def _rules(groups: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [rule for group in groups for rule in group["rules"] if key in rule]


def recorded_names(groups: list[dict[str, Any]]) -> frozenset[str]:
    return frozenset(rule["record"] for rule in _rules(groups, "record"))


def github_anchor(heading: str) -> str:
    """The id GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


class TestPromtool:
    def test_rules_pass_promtool_check(self) -> None:
        run([require("promtool"), "check", "rules", str(RULES)])

    def test_rules_pass_their_unit_tests(self) -> None:
        """rules.test.yaml: input series and the alerts expected to fire, or not, at given times."""
        run([require("promtool"), "test", "rules", RULES_TEST.name], cwd=RULES_TEST.parent)

    def test_compose_scrape_config_passes_promtool_check(self) -> None:
        run([require("promtool"), "check", "config", str(PROMETHEUS_YML)])


class TestReferences:
    def test_rules_use_only_contract_series_and_recording_rules(
        self, rule_groups: list[dict[str, Any]]
    ) -> None:
        known = contract.exposed_series_names() | recorded_names(rule_groups)
        unknown = {
            rule.get("record") or rule["alert"]: sorted(references(rule["expr"]).metrics - known)
            for rule in _rules(rule_groups, "expr")
        }
        assert {name: names for name, names in unknown.items() if names} == {}

    def test_rules_use_only_contract_labels(self, rule_groups: list[dict[str, Any]]) -> None:
        known = contract.all_label_names()
        used = {
            rule.get("record") or rule["alert"]: sorted(references(rule["expr"]).labels - known)
            for rule in _rules(rule_groups, "expr")
        }
        assert {name: labels for name, labels in used.items() if labels} == {}

    def test_rules_read_recording_rules_of_their_own_group_recorded_before_them(
        self, rule_groups: list[dict[str, Any]]
    ) -> None:
        """Groups are evaluated concurrently, rules within a group in order: a rule reading a
        recording rule from another group, or from later in its own, sees a value one evaluation
        old by chance (the flaky "3.2k messages behind" of ImportClosureConsumerLagGrowing)."""
        recorded = recorded_names(rule_groups)
        misplaced = {}
        for group in rule_groups:
            before: set[str] = set()
            for rule in group["rules"]:
                name = rule.get("record") or rule["alert"]
                late = sorted((references(rule["expr"]).metrics & recorded) - before)
                if late:
                    misplaced[name] = late
                if "record" in rule:
                    before.add(rule["record"])
        assert misplaced == {}

    def test_rules_select_the_contract_job(self) -> None:
        jobs = set(re.findall(r'job\s*=~?\s*"([^"]*)"', RULES.read_text()))
        assert jobs == {contract.JOB}

    def test_compose_scrape_config_names_the_contract_job_and_port(self) -> None:
        config = yaml.safe_load(PROMETHEUS_YML.read_text())
        (job,) = [j for j in config["scrape_configs"] if j["job_name"] == contract.JOB]
        assert job["metrics_path"] == contract.METRICS_PATH
        assert [sd["port"] for sd in job["dns_sd_configs"]] == [contract.HTTP_PORT]


class TestAlerts:
    def test_every_alert_has_severity_summary_description_and_runbook(
        self, rule_groups: list[dict[str, Any]]
    ) -> None:
        for alert in _rules(rule_groups, "alert"):
            name = alert["alert"]
            assert alert["labels"]["severity"] in {"warning", "critical"}, name
            assert set(alert["annotations"]) == {"summary", "description", "runbook"}, name
            assert alert["for"], f"{name} fires on a single evaluation"

    def test_every_runbook_links_to_a_heading_of_the_operations_guide(
        self, rule_groups: list[dict[str, Any]]
    ) -> None:
        """Annotations point at docs/operations.md#<anchor>, and that heading exists."""
        anchors = {
            github_anchor(line.lstrip("#"))
            for line in OPERATIONS.read_text().splitlines()
            if line.startswith("#")
        }
        for alert in _rules(rule_groups, "alert"):
            path, _, anchor = alert["annotations"]["runbook"].partition("#")
            assert path == "docs/operations.md", alert["alert"]
            assert anchor == alert["alert"].lower(), alert["alert"]
            assert anchor in anchors, f"docs/operations.md has no heading for {alert['alert']}"

    def test_every_alert_has_unit_tests_that_fire_and_that_stay_silent(
        self, rule_groups: list[dict[str, Any]]
    ) -> None:
        cases = [
            case
            for test in yaml.safe_load(RULES_TEST.read_text())["tests"]
            for case in test.get("alert_rule_test", [])
        ]
        firing = {c["alertname"] for c in cases if c.get("exp_alerts")}
        silent = {c["alertname"] for c in cases if not c.get("exp_alerts")}
        alerts = {a["alert"] for a in _rules(rule_groups, "alert")}
        assert firing == alerts
        assert silent == alerts

    def test_every_recording_rule_has_a_unit_test(self, rule_groups: list[dict[str, Any]]) -> None:
        tested = {
            case["expr"]
            for test in yaml.safe_load(RULES_TEST.read_text())["tests"]
            for case in test.get("promql_expr_test", [])
        }
        assert recorded_names(rule_groups) <= tested


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("ImportClosureWorkerStalled", "importclosureworkerstalled"),
        ("Re-driving dead letters", "re-driving-dead-letters"),
        ("Scale: partitions bound the replicas", "scale-partitions-bound-the-replicas"),
    ],
    ids=["alert", "hyphen", "punctuation"],
)
def test_github_anchor(heading: str, anchor: str) -> None:
    assert github_anchor(heading) == anchor
