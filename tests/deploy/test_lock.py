"""deploy/requirements.lock: the image's exact dependency versions and their hashes.

The lock is written by deploy/tools/lock (pip-compile --generate-hashes over pyproject.toml's
runtime dependencies); deploy/Dockerfile installs from it with --require-hashes --no-deps.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.deploy.tools import DEPLOY, ROOT, run

LOCK = DEPLOY / "requirements.lock"
REFRESH = "deploy/tools/lock"
_HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Pin:
    line: str
    name: str
    version: str | None
    hashes: tuple[str, ...]


def read_lock(text: str) -> dict[str, Pin]:
    """Requirement entries (continuation lines joined, comments dropped) by canonical name."""
    logical = re.sub(r"\\\n", " ", text)
    pins: dict[str, Pin] = {}
    for raw in logical.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        spec, *options = line.split(" --")
        requirement = Requirement(spec.strip())
        exact = [s.version for s in requirement.specifier if s.operator == "=="]
        version = exact[0] if len(exact) == 1 else None
        hashes = tuple(_HASH.findall(" ".join("--" + o.strip() for o in options)))
        pins[canonicalize_name(requirement.name)] = Pin(line, requirement.name, version, hashes)
    return pins


PINS = read_lock(LOCK.read_text())
RUNTIME = [
    Requirement(r)
    for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
]


class TestLock:
    @pytest.mark.parametrize("requirement", RUNTIME, ids=str)
    def test_covers_each_runtime_dependency_at_or_above_its_lower_bound(
        self, requirement: Requirement
    ) -> None:
        pin = PINS.get(canonicalize_name(requirement.name))
        assert pin is not None, f"{requirement.name} is not in {LOCK.name}: run {REFRESH}"
        assert pin.version is not None
        assert requirement.specifier.contains(Version(pin.version), prereleases=True), (
            f"{pin.name}=={pin.version} does not satisfy {requirement}: run {REFRESH}"
        )

    def test_every_entry_is_an_exact_version_with_hashes(self) -> None:
        """--require-hashes refuses anything else; this says which line, before a build does."""
        assert PINS
        loose = [pin.line for pin in PINS.values() if pin.version is None or not pin.hashes]
        assert loose == []

    def test_holds_no_dev_tools(self) -> None:
        """Runtime only: the image needs none of pytest, mypy, ruff and the deploy test helpers."""
        dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
            "optional-dependencies"
        ]["dev"]
        runtime = {canonicalize_name(r.name) for r in RUNTIME}
        tools = {canonicalize_name(Requirement(r).name) for r in dev} - runtime
        assert tools & PINS.keys() == set()

    def test_names_its_refresh_command_and_no_machine_specific_index(self) -> None:
        text = LOCK.read_text()
        assert f"#    {REFRESH}\n" in text
        assert not re.search(r"^--(index-url|extra-index-url|find-links)", text, re.MULTILINE)

    def test_installs_with_require_hashes_and_satisfies_the_package(self, tmp_path: Path) -> None:
        """What the image does, into a fresh virtualenv: the locked files install with their
        hashes checked and without resolving anything, then our package with --no-deps, and
        `pip check` finds every requirement (extras' too) satisfied. Needs access to PyPI."""
        venv = tmp_path / "venv"
        run([sys.executable, "-m", "venv", str(venv)])
        pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
        run(
            [*pip, "install", "--quiet", "--require-hashes", "--no-deps", "-r", str(LOCK)],
            timeout=300,
        )
        run([*pip, "install", "--quiet", "--no-deps", str(ROOT)], timeout=300)
        run([*pip, "check"])
        result = subprocess.run(
            [str(venv / "bin" / "import-closure"), "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
