"""Finding and running the command-line tools the deploy tests need: promtool, prometheus, kustomize.

A missing tool fails the test with the command that installs it; it never skips.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ENSURE_TOOLS = "deploy/tools/ensure-tools"
#: Where ensure-tools builds kustomize when kubectl is missing.
LOCAL_KUSTOMIZE = ROOT / ".tools" / "bin" / "kustomize"


def require(tool: str) -> str:
    """Absolute path of `tool` on PATH, or fail the test saying how to install it."""
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} not found on PATH: run {ENSURE_TOOLS} (installs it)", pytrace=False)
    return path


def kustomize_command() -> list[str]:
    """The pinned kustomize ensure-tools built, else kubectl's embedded one."""
    if LOCAL_KUSTOMIZE.is_file():
        return [str(LOCAL_KUSTOMIZE), "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    pytest.fail(f"neither kubectl nor {LOCAL_KUSTOMIZE} found: run {ENSURE_TOOLS}", pytrace=False)


def run(
    args: list[str], *, cwd: Path = ROOT, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a tool; a non-zero exit fails the test with its output."""
    result = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    return result


def kustomize_build(path: Path) -> list[dict[str, Any]]:
    """Render a kustomization and parse every object."""
    out = run([*kustomize_command(), str(path)]).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc is not None]


def promtool_check_metrics(exposition: str) -> str:
    """`promtool check metrics` on a /metrics text (naming and help lint); its complaints, if any.

    promtool exits 1 when it finds problems and prints them; an empty string means clean.
    """
    result = subprocess.run(
        [require("promtool"), "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return (result.stdout + result.stderr).strip() if result.returncode else ""


def load_tool(filename: str) -> ModuleType:
    """A script of deploy/tools (not a package) imported as a module, for its tests."""
    path = DEPLOY / "tools" / filename
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module
