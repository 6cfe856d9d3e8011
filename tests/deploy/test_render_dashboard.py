"""deploy/tools/render_dashboard.py: every panel is queried as Grafana would and laid out on the
dashboard's grid. The screenshot itself needs Chromium and was checked by hand (README picture)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.deploy.test_dashboard import DASHBOARD, PANELS
from tests.deploy.tools import load_tool

TOOL = load_tool("render_dashboard.py")
VARIABLES = {
    "namespace": "prod",
    "job": "import-closure",
    "__rate_interval": "60s",
    "__interval": "3s",
    "__range": "900s",
}


class FakePrometheus:
    """Answers every query with one series named after its instance; records what was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def range(self, expr: str, start: float, end: float, step: int) -> dict[str, Any]:
        self.asked.append(expr)
        values = [[start + i * step, "2"] for i in range(3)]
        return {
            "resultType": "matrix",
            "result": [{"metric": {"instance": "w1"}, "values": values}],
        }

    def instant(self, expr: str, at: float) -> dict[str, Any]:
        self.asked.append(expr)
        return {
            "resultType": "vector",
            "result": [{"metric": {"instance": "w1"}, "value": [at, "5"]}],
        }


class TestRenderDashboard:
    def test_every_panel_target_is_queried_with_the_variables_substituted(self) -> None:
        prom = FakePrometheus()
        data = [TOOL.panel_data(p, prom, VARIABLES, (1000.0, 1900.0, 3)) for p in PANELS]
        expected = sum(len(p["targets"]) for p in PANELS)
        assert len(prom.asked) == expected
        assert not [e for e in prom.asked if "$" in e]
        assert all('namespace=~"prod"' in e for e in prom.asked if "{" in e)
        assert all(d["series"] for d in data)

    def test_page_places_every_panel_on_the_grid_and_embeds_the_chart_library(self) -> None:
        prom = FakePrometheus()
        data = [TOOL.panel_data(p, prom, VARIABLES, (1000.0, 1900.0, 3)) for p in PANELS]
        html = TOOL.page(data, DASHBOARD["title"], "15m", 1560, "/* chart.js */")
        embedded = json.loads(html.split("const PANELS = ", 1)[1].split(";\n", 1)[0])
        assert [p["id"] for p in embedded] == [p["id"] for p in PANELS]
        assert "/* chart.js */" in html

    @pytest.mark.parametrize(
        ("fmt", "labels", "expected"),
        [
            ("{{instance}}", {"instance": "w1"}, "w1"),
            ("{{topic}}[{{partition}}]", {"topic": "t", "partition": "3"}, "t[3]"),
            ("__auto", {"outcome": "approved"}, "outcome=approved"),
        ],
        ids=["one-label", "two-labels", "auto"],
    )
    def test_legend_follows_grafana_legend_format(
        self, fmt: str, labels: dict[str, str], expected: str
    ) -> None:
        assert TOOL.legend(fmt, labels, "expr") == expected

    def test_unknown_variable_is_an_error(self) -> None:
        with pytest.raises(SystemExit, match=r"unknown dashboard variable \$nope"):
            TOOL.substitute('up{x="$nope"}', VARIABLES)
