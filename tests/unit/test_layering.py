"""Layering of the shell (issue 14): each package imports only what its job allows.

Every module under consumer/ is parsed with `ast` (nothing is imported), so a violation is found
even in code no test runs. Two rules:

- the pure packages (core/, policy/, codec/) take values and return values: no confluent_kafka,
  prometheus_client, `time` or `os` (and so no `os.environ`);
- only kafka/ and delivery/ import confluent_kafka; everything else names client types through
  consumer.kafka;
- the packages form layers (ALLOWED): config and the pure packages at the bottom, telemetry, then
  kafka, delivery, then service and tools, and cli on top; no package imports one above it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import consumer

PACKAGE = Path(consumer.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))
PURE = ("core", "policy", "codec")
#: What a pure module may not import: clients, metrics, the clock, the environment.
NOT_PURE = ("confluent_kafka", "prometheus_client", "time", "os")
#: The packages that talk to librdkafka.
CLIENT_PACKAGES = ("kafka", "delivery")
_BOTTOM = frozenset({"errors", "core", "policy", "codec"})
#: Which of our packages (and top-level modules) each package may import, besides itself.
ALLOWED: dict[str, frozenset[str]] = {
    "config": frozenset({"errors"}),
    "core": _BOTTOM,
    "policy": _BOTTOM,
    "codec": _BOTTOM,
    "telemetry": _BOTTOM,
    "kafka": _BOTTOM | {"config", "telemetry"},
    "delivery": _BOTTOM | {"config", "telemetry", "kafka"},
    "tools": _BOTTOM | {"config", "kafka"},
    "service": _BOTTOM | {"config", "telemetry", "kafka", "delivery"},
    "cli": _BOTTOM
    | {"config", "telemetry", "kafka", "delivery", "service", "tools", "__version__"},
}


def _name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def _package(path: Path) -> str:
    """The first package under consumer/ ("" for consumer/*.py itself)."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else ""


def imported_roots(source: str) -> set[str]:
    """The top-level names of every module `source` imports (absolute imports)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


def our_packages(source: str) -> set[str]:
    """The packages (or top-level modules) of consumer/ that `source` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = (
                [f"consumer.{alias.name}" for alias in node.names]
                if node.module == "consumer"
                else [node.module]
            )
        else:
            continue
        found.update(n.split(".")[1] for n in names if n.startswith("consumer."))
    return found


def uses_environ(source: str) -> bool:
    """`os.environ` or `environ` taken from os, however imported."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr == "environ":
            return True
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(alias.name == "environ" for alias in node.names)
        ):
            return True
    return False


PURE_MODULES = [m for m in MODULES if _package(m) in PURE]
SHELL_MODULES = [m for m in MODULES if _package(m) not in CLIENT_PACKAGES]


class TestTheChecksSeeViolations:
    """The checks themselves: each finds what it is meant to find."""

    @pytest.mark.parametrize(
        ("source", "roots"),
        [
            ("import time", {"time"}),
            ("import os.path", {"os"}),
            ("from confluent_kafka import Consumer", {"confluent_kafka"}),
            ("from prometheus_client.core import Counter", {"prometheus_client"}),
            ("def f():\n    import time\n", {"time"}),
            ("from . import records", set()),
        ],
        ids=["import", "dotted", "from", "from-submodule", "inside-a-function", "relative"],
    )
    def test_imports_are_found_wherever_they_are(self, source: str, roots: set[str]) -> None:
        """Top of module or inside a function, plain or from-import; relative imports stay in the package."""
        assert imported_roots(source) == roots

    @pytest.mark.parametrize(
        "source",
        ["import os\nx = os.environ['A']", "from os import environ", "import os as o\no.environ"],
        ids=["attribute", "from-import", "aliased"],
    )
    def test_environment_reads_are_found(self, source: str) -> None:
        """However `os.environ` is reached, the pure-package check sees it."""
        assert uses_environ(source)


class TestPurePackages:
    def test_there_are_pure_modules_to_check(self) -> None:
        """Guards the parametrisation below against an empty list (a moved package)."""
        assert {_package(m) for m in PURE_MODULES} == set(PURE)

    @pytest.mark.parametrize("path", PURE_MODULES, ids=_name)
    def test_a_pure_module_imports_no_client_metrics_clock_or_environment(self, path: Path) -> None:
        """core, policy and codec take values and return values; the shell supplies the rest."""
        source = path.read_text(encoding="utf-8")
        assert imported_roots(source) & set(NOT_PURE) == set()
        assert not uses_environ(source)


class TestClientBoundary:
    @pytest.mark.parametrize("path", SHELL_MODULES, ids=_name)
    def test_only_kafka_and_delivery_import_confluent_kafka(self, path: Path) -> None:
        """service, cli, tools, config and the pure packages go through consumer.kafka."""
        assert "confluent_kafka" not in imported_roots(path.read_text(encoding="utf-8"))


class TestPackageLayers:
    def test_every_package_has_its_layer(self) -> None:
        """A new package must say where it sits before anything checks it."""
        packages = {_package(m) for m in MODULES} - {""}
        assert packages == set(ALLOWED)

    @pytest.mark.parametrize(
        ("source", "packages"),
        [
            ("from consumer.kafka.clients import Consumer", {"kafka"}),
            ("from consumer import config, errors", {"config", "errors"}),
            ("import consumer.service.worker", {"service"}),
            ("from confluent_kafka import Consumer", set()),
        ],
        ids=["from-module", "from-package", "import", "not-ours"],
    )
    def test_our_imports_are_found(self, source: str, packages: set[str]) -> None:
        """Every form of import names the package it reaches."""
        assert our_packages(source) == packages

    @pytest.mark.parametrize("path", [m for m in MODULES if _package(m)], ids=_name)
    def test_a_package_imports_only_the_layers_below_it(self, path: Path) -> None:
        """kafka/ never reaches into service/, the pure core never into the shell, and so on."""
        package = _package(path)
        reached = our_packages(path.read_text(encoding="utf-8")) - {package}
        assert reached <= ALLOWED[package], (
            f"{package}/ may not import {sorted(reached - ALLOWED[package])}"
        )
