#!/usr/bin/env python3
"""Render the Grafana dashboard's panels as PNG from a running Prometheus, without Grafana.

Every panel of deploy/grafana/import-closure.json is queried as Grafana would (the template
variables substituted), drawn on one HTML page laid out on the dashboard's own grid with Chart.js
(Debian's libjs-chart.js), and screenshotted with headless Chromium (Debian's chromium):

    .venv/bin/python deploy/tools/render_dashboard.py --prometheus http://127.0.0.1:9090 \\
        --out dashboard/ [--range 15m] [--namespace NS] [--each-panel]

writes dashboard/dashboard.html and dashboard/dashboard.png (and panel-<id>.png with
--each-panel). Time series are drawn from query_range over the range, stat panels show the last
value (or the panel's noValue), tables and bar gauges the instant result. Only the standard
library: run it with any Python 3.11.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "import-closure.json"
CHART_JS = (
    Path("/usr/share/javascript/chart.js/chart.umd.min.js"),
    Path("/usr/share/javascript/chart.js/chart.min.js"),
    Path("/usr/share/nodejs/chart.js/dist/chart.umd.js"),
    Path("/usr/share/nodejs/chart.js/dist/chart.min.js"),
)
#: Pixels per grid unit: Grafana's 24 columns across the page, 30 px per height unit.
COLUMNS, ROW_PX = 24, 30
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)([smhd])", duration)
    if not match:
        msg = f"not a duration like 15m: {duration!r}"
        raise argparse.ArgumentTypeError(msg)
    return int(match[1]) * _UNITS[match[2]]


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        if panel.get("type") != "row":
            yield panel
        yield from panels(panel.get("panels", []))


def substitute(expr: str, variables: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        if name not in variables:
            msg = f"unknown dashboard variable ${name} in {expr}"
            raise SystemExit(msg)
        return variables[name]

    return _VARIABLE.sub(replace, expr)


def legend(fmt: str, labels: dict[str, str], expr: str) -> str:
    if fmt in ("", "__auto"):
        shown = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__")
        return shown or expr[:60]
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m[1], ""), fmt)


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _get(self, path: str, **params: str) -> Any:
        request = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            answer = json.loads(exc.read())
        if answer.get("status") != "success":
            return {"error": answer.get("error", "?")}
        return answer["data"]

    def instant(self, expr: str, at: float) -> Any:
        return self._get("query", query=expr, time=f"{at:.3f}")

    def range(self, expr: str, start: float, end: float, step: int) -> Any:
        return self._get(
            "query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=str(step)
        )


def panel_data(
    panel: dict[str, Any],
    prom: Prometheus,
    variables: dict[str, str],
    window: tuple[float, float, int],
) -> dict[str, Any]:
    """What the page draws for one panel: kind, title, grid position, and series or values."""
    start, end, step = window
    kind = panel["type"]
    out: dict[str, Any] = {
        "id": panel["id"],
        "title": panel["title"],
        "kind": kind,
        "grid": panel["gridPos"],
        "unit": panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "short"),
        "noValue": panel.get("fieldConfig", {}).get("defaults", {}).get("noValue", "No data"),
        "series": [],
        "errors": [],
    }
    for target in panel.get("targets", []):
        expr = substitute(target["expr"], variables)
        fmt = target.get("legendFormat", "")
        if kind == "timeseries":
            data = prom.range(expr, start, end, step)
            if "error" in data:
                out["errors"].append(data["error"])
                continue
            for s in data["result"]:
                points = [[float(t) - end, float(v)] for t, v in s["values"]]
                out["series"].append({"name": legend(fmt, s["metric"], expr), "points": points})
        else:
            data = prom.instant(expr, end)
            if "error" in data:
                out["errors"].append(data["error"])
                continue
            result = data["result"] if data["resultType"] == "vector" else []
            for s in result:
                name = legend(fmt, s["metric"], expr) if kind != "stat" else legend(fmt, {}, "")
                out["series"].append({"name": name, "value": float(s["value"][1])})
    return out


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ margin: 0; background: #111217; color: #ccccdc; font: 12px sans-serif; }}
h1 {{ font-size: 16px; margin: 8px 12px; }}
#grid {{ position: relative; width: {width}px; height: {height}px; }}
.panel {{ position: absolute; box-sizing: border-box; background: #181b1f;
  border: 1px solid #2c3235; border-radius: 2px; padding: 4px 8px; overflow: hidden; }}
.panel h2 {{ font-size: 12px; margin: 0 0 2px; font-weight: 500; white-space: nowrap; }}
.stat {{ font-size: 34px; font-weight: 500; color: #73bf69; text-align: center; margin-top: 14px; }}
.nodata {{ color: #8e8e8e; text-align: center; margin-top: 20px; }}
.error {{ color: #f2495c; }}
canvas {{ width: 100% !important; }}
</style></head>
<body><h1>{title} &middot; last {range} &middot; {stamp}</h1><div id="grid"></div>
<script>{chartjs}</script>
<script>
const PANELS = {panels};
const CELL = {cell}, ROW = {row}, SPAN = {span};
const COLORS = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9",
                "#705da0", "#37872d", "#fade2a"];
function fmt(v, unit) {{
  if (unit === "percentunit") return (100 * v).toFixed(1) + " %";
  if (unit === "s") return v < 1 ? (1000 * v).toFixed(0) + " ms" : v.toFixed(1) + " s";
  if (unit === "bytes") return (v / 1048576).toFixed(0) + " MiB";
  const a = Math.abs(v);
  if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (a >= 1e3) return (v / 1e3).toFixed(1) + "k";
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}}
function clock(offset) {{
  const s = Math.round(-offset), m = Math.floor(s / 60), r = s % 60;
  return s === 0 ? "now" : "-" + (m ? m + "m" : "") + (r ? r + "s" : "");
}}
Chart.defaults.color = "#ccccdc"; Chart.defaults.animation = false;
Chart.defaults.borderColor = "#2c3235"; Chart.defaults.font.size = 10;
const grid = document.getElementById("grid");
for (const p of PANELS) {{
  const div = document.createElement("div");
  div.className = "panel"; div.id = "panel-" + p.id;
  div.style.left = p.grid.x * CELL + "px"; div.style.top = p.grid.y * ROW + "px";
  div.style.width = p.grid.w * CELL - 4 + "px"; div.style.height = p.grid.h * ROW - 4 + "px";
  div.innerHTML = "<h2></h2>"; div.querySelector("h2").textContent = p.title;
  grid.appendChild(div);
  if (p.errors.length) {{
    const e = document.createElement("div"); e.className = "error"; e.textContent = p.errors.join("; ");
    div.appendChild(e); continue;
  }}
  if (!p.series.length) {{
    const e = document.createElement("div");
    e.className = p.kind === "stat" ? "stat" : "nodata"; e.textContent = p.noValue;
    div.appendChild(e); continue;
  }}
  if (p.kind === "stat") {{
    const e = document.createElement("div"); e.className = "stat";
    e.textContent = p.series.map(s => fmt(s.value, p.unit)).join(" / ");
    div.appendChild(e); continue;
  }}
  const canvas = document.createElement("canvas");
  canvas.height = p.grid.h * ROW - 30; div.appendChild(canvas);
  if (p.kind === "timeseries") {{
    new Chart(canvas, {{ type: "line", data: {{ datasets: p.series.map((s, i) => ({{
        label: s.name, data: s.points.map(([x, y]) => ({{x, y}})), pointRadius: 0, borderWidth: 1,
        borderColor: COLORS[i % COLORS.length], backgroundColor: COLORS[i % COLORS.length] }})) }},
      options: {{ responsive: false, maintainAspectRatio: false, parsing: false,
        scales: {{ x: {{ type: "linear", min: -SPAN, max: 0,
                        ticks: {{ callback: clock, maxTicksLimit: 7 }} }},
                  y: {{ ticks: {{ callback: v => fmt(v, p.unit), maxTicksLimit: 5 }} }} }},
        plugins: {{ legend: {{ position: "bottom", labels: {{ boxWidth: 8 }} }} }} }} }});
  }} else {{
    new Chart(canvas, {{ type: "bar", data: {{ labels: p.series.map(s => s.name),
        datasets: [{{ data: p.series.map(s => s.value), backgroundColor: "#5794f2" }}] }},
      options: {{ indexAxis: "y", responsive: false, plugins: {{ legend: {{ display: false }} }},
        scales: {{ x: {{ ticks: {{ callback: v => fmt(v, p.unit) }} }} }} }} }});
  }}
  canvas.style.width = "100%";
}}
</script></body></html>
"""


def page(
    data: list[dict[str, Any]],
    title: str,
    range_: str,
    width: int,
    chartjs: str,
    span: int = 900,
    end: float | None = None,
) -> str:
    cell = width // COLUMNS
    end = time.time() if end is None else end
    bottom = max(p["grid"]["y"] + p["grid"]["h"] for p in data) if data else 1
    return PAGE.format(
        title=title,
        range=range_,
        stamp=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(end)),
        width=cell * COLUMNS,
        height=bottom * ROW_PX,
        chartjs=chartjs,
        panels=json.dumps(data),
        cell=cell,
        row=ROW_PX,
        span=span,
    )


def screenshot(chromium: str, html: Path, png: Path, width: int, height: int) -> None:
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",  # root in a container has no user namespace for the sandbox
            "--disable-gpu",
            "--hide-scrollbars",
            "--virtual-time-budget=5000",
            f"--window-size={width},{height}",
            f"--screenshot={png}",
            html.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", required=True, help="base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--out", type=Path, required=True, help="directory for the HTML and PNGs")
    parser.add_argument("--range", default="15m", type=str, help="time range (default 15m)")
    parser.add_argument("--namespace", default=".*", help="the $namespace regex (default all)")
    parser.add_argument("--job", default="import-closure", help="the $job (default import-closure)")
    parser.add_argument("--dashboard", type=Path, default=DASHBOARD)
    parser.add_argument("--width", type=int, default=1560, help="page width in pixels")
    parser.add_argument(
        "--end", type=float, default=None, help="end of the range, Unix seconds (default now)"
    )
    parser.add_argument("--each-panel", action="store_true", help="also one PNG per panel")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args(argv)
    chartjs_path = next((p for p in CHART_JS if p.exists()), None)
    if chartjs_path is None:
        print("Chart.js not found: apt-get install libjs-chart.js", file=sys.stderr)
        return 2
    if shutil.which(args.chromium) is None:
        print("chromium not found: apt-get install chromium", file=sys.stderr)
        return 2
    span = seconds(args.range)
    step = max(1, span // 300)
    end = time.time() if args.end is None else args.end
    variables = {
        "namespace": args.namespace,
        "job": args.job,
        "__rate_interval": f"{max(4 * step, 60)}s",
        "__interval": f"{step}s",
        "__range": f"{span}s",
        "datasource": "prometheus",
    }
    dashboard = json.loads(args.dashboard.read_text())
    prom = Prometheus(args.prometheus)
    data = [
        panel_data(p, prom, variables, (end - span, end, step)) for p in panels(dashboard["panels"])
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    chartjs = chartjs_path.read_text()
    html = args.out / "dashboard.html"
    html.write_text(page(data, dashboard["title"], args.range, args.width, chartjs, span, end))
    bottom = max(p["grid"]["y"] + p["grid"]["h"] for p in data)
    screenshot(args.chromium, html, args.out / "dashboard.png", args.width, bottom * ROW_PX + 40)
    written = ["dashboard.png"]
    if args.each_panel:
        for panel in data:
            grid = panel["grid"]
            one = {**panel, "grid": {**grid, "x": 0, "y": 0}}
            width = grid["w"] * (args.width // COLUMNS)
            single = args.out / f"panel-{panel['id']}.html"
            single.write_text(page([one], panel["title"], args.range, width, chartjs, span, end))
            png = args.out / f"panel-{panel['id']}.png"
            screenshot(args.chromium, single, png, width, grid["h"] * ROW_PX + 40)
            written.append(png.name)
    empty = [p["title"] for p in data if not p["series"] and p["kind"] != "stat"]
    errors = {p["title"]: p["errors"] for p in data if p["errors"]}
    print(f"{args.out}: {', '.join(written[:3])}{' ...' if len(written) > 3 else ''}")
    if empty:
        print(f"panels without data: {', '.join(empty)}")
    if errors:
        print(f"queries that failed: {errors}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
