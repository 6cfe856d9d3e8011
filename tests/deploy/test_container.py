"""deploy/Dockerfile, .dockerignore and deploy/compose.yaml, checked without a Docker engine.

No engine runs on our machines, so nothing here builds or starts a container: these tests read
the files and check them against the contract and against the Kubernetes manifests.
"""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy import contract
from tests.deploy.k8s import one
from tests.deploy.tools import DEPLOY, ROOT

DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = DEPLOY / "compose.yaml"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with continuation lines joined and comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in joined.splitlines():
        if not line.strip():
            continue
        keyword, _, rest = line.strip().partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            image, _, name = rest.partition(" AS ")
            stages.append(Stage(image.strip(), name.strip() or None))
        elif not stages and keyword == "ARG":
            key, _, default = rest.partition("=")
            args[key] = default
        else:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


ARGS, STAGES = parse_dockerfile(DOCKERFILE.read_text())
FINAL = STAGES[-1]


def _exec_form(args: str) -> list[str]:
    value: list[str] = json.loads(args)
    return value


class TestDockerfile:
    def test_is_multi_stage_on_python_311_slim(self) -> None:
        assert len(STAGES) == 2
        assert all(stage.base == "${PYTHON_IMAGE}" for stage in STAGES)
        assert ARGS["PYTHON_IMAGE"].startswith("python:3.11-slim")

    def test_first_stage_builds_wheels_and_the_final_stage_installs_only_those(self) -> None:
        builder = STAGES[0]
        assert any("pip wheel" in run for run in builder.all("RUN"))
        (install,) = [run for run in FINAL.all("RUN") if "pip install" in run]
        assert f"from={builder.name}" in install
        assert "--no-index" in install

    def test_dependencies_come_only_from_the_lock_with_their_hashes(self) -> None:
        """deploy/requirements.lock decides every dependency version and file; nothing is resolved
        at build time (the lock's own contents: tests/deploy/test_lock.py)."""
        builder = STAGES[0]
        assert any("deploy/requirements.lock" in copy for copy in builder.all("COPY"))
        (download,) = [run for run in builder.all("RUN") if "pip download" in run]
        for option in ("--require-hashes", "--no-deps", "--only-binary=:all:", "requirements.lock"):
            assert option in download
        (wheel,) = [run for run in builder.all("RUN") if "pip wheel" in run]
        assert "--no-deps" in wheel
        (install,) = [run for run in FINAL.all("RUN") if "pip install" in run]
        steps = [step for step in install.split("&&") if "pip install" in step]
        assert len(steps) == 2
        locked, package = steps
        for option in ("--require-hashes", "--no-deps", "-r /wheels/requirements.lock"):
            assert option in locked
        assert "--no-deps" in package
        assert "import-closure-consumer" in package
        assert all("--no-index" in step for step in steps)

    def test_final_stage_has_no_compiler_or_package_manager_install(self) -> None:
        text = " ".join(FINAL.all("RUN"))
        for word in ("apt-get install", "gcc", "build-essential", "apk add"):
            assert word not in text

    def test_runs_as_the_numeric_non_root_user_kubernetes_expects(
        self, rendered: dict[str, list[dict[str, Any]]]
    ) -> None:
        (user,) = FINAL.all("USER")
        uid, _, gid = user.partition(":")
        pod = one(rendered["base"], "Deployment")["spec"]["template"]["spec"]
        assert int(uid) == pod["securityContext"]["runAsUser"] != 0
        assert int(gid) == pod["securityContext"]["runAsGroup"]

    def test_entrypoint_is_the_cli_and_the_default_command_runs_the_worker(self) -> None:
        scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
        (entrypoint,) = FINAL.all("ENTRYPOINT")
        (cmd,) = FINAL.all("CMD")
        assert _exec_form(entrypoint) == ["import-closure"]
        assert "import-closure" in scripts
        assert tuple(_exec_form(cmd)) in contract.CLI_COMMANDS

    def test_exposes_the_metrics_port_and_checks_health(self) -> None:
        assert FINAL.all("EXPOSE") == [str(contract.HTTP_PORT)]
        (health,) = FINAL.all("HEALTHCHECK")
        assert contract.LIVENESS_PATH in health
        assert str(contract.HTTP_PORT) in health

    def test_does_not_write_bytecode_on_a_read_only_root(self) -> None:
        assert any("PYTHONDONTWRITEBYTECODE=1" in env for env in FINAL.all("ENV"))

    def test_labels_the_base_it_was_built_on(self) -> None:
        """An ARG declared before the first FROM is empty inside a stage unless declared again:
        without the second ARG the base.name label was blank."""
        assert "PYTHON_IMAGE" in FINAL.all("ARG")
        labels = " ".join(FINAL.all("LABEL"))
        assert 'org.opencontainers.image.base.name="${PYTHON_IMAGE}"' in labels

    def test_carries_oci_labels(self) -> None:
        labels = " ".join(FINAL.all("LABEL"))
        for key in ("title", "description", "version", "revision", "created"):
            assert f"org.opencontainers.image.{key}=" in labels


def dockerignore_admits(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes; a directory admits its files."""
    admitted = True
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/").removeprefix("**/")
        parts = Path(path).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) for p in prefixes) or fnmatch.fnmatch(
            Path(path).name, pattern
        ):
            admitted = negate
    return admitted


class TestDockerignore:
    PATTERNS = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def test_admits_everything_the_dockerfile_copies(self) -> None:
        sources = [
            src
            for stage in STAGES
            for args in stage.all("COPY")
            if "--from" not in args
            for src in args.split()[:-1]
        ]
        assert sources
        for source in sources:
            assert (ROOT / source).exists(), source
            assert dockerignore_admits(source, self.PATTERNS), source
            if (ROOT / source).is_dir():
                assert dockerignore_admits(f"{source}/__init__.py", self.PATTERNS)

    @pytest.mark.parametrize("path", [".venv/bin/python", ".git/HEAD", "tests/__init__.py",
                                      "deploy/kafka-local/.cache/x.jar", "consumer/__pycache__/x.pyc"])  # fmt: skip
    def test_keeps_local_files_out_of_the_context(self, path: str) -> None:
        assert not dockerignore_admits(path, self.PATTERNS)


COMPOSE_SPEC: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
SERVICES: dict[str, Any] = COMPOSE_SPEC["services"]


class TestCompose:
    def test_runs_kafka_topic_init_workers_prometheus_and_grafana(self) -> None:
        assert set(SERVICES) == {"kafka", "topic-init", "worker", "prometheus", "grafana"}

    def test_images_are_pinned(self) -> None:
        for name, service in SERVICES.items():
            _, _, tag = service["image"].partition(":")
            assert tag, f"{name}: no tag"
            assert tag != "latest", name

    def test_kafka_is_the_official_image_as_one_kraft_node(self) -> None:
        kafka = SERVICES["kafka"]
        assert kafka["image"].startswith("apache/kafka:4.")
        assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert "healthcheck" in kafka

    def test_topics_are_created_once_before_two_workers_start(self) -> None:
        init, worker = SERVICES["topic-init"], SERVICES["worker"]
        assert tuple(init["command"]) == ("topics", "create")
        assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert tuple(worker["command"]) == ("run",)
        assert worker["deploy"]["replicas"] == 2
        assert worker["depends_on"]["topic-init"]["condition"] == "service_completed_successfully"

    def test_services_build_the_image_from_the_repository_dockerfile(self) -> None:
        for name in ("topic-init", "worker"):
            build = SERVICES[name]["build"]
            assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE

    def test_worker_env_names_are_contract_settings(self) -> None:
        for name in ("topic-init", "worker"):
            env = SERVICES[name]["environment"]
            assert [k for k in env if not contract.is_known_env(k)] == [], name

    def test_worker_is_hardened_and_outlives_its_shutdown_timeout(self) -> None:
        worker = SERVICES["worker"]
        assert worker["read_only"] is True
        assert worker["cap_drop"] == ["ALL"]
        grace = int(worker["stop_grace_period"].removesuffix("s"))
        assert grace > contract.DEFAULT_SHUTDOWN_TIMEOUT

    def test_mounted_files_exist(self) -> None:
        for name, service in SERVICES.items():
            for volume in service.get("volumes", []):
                source = volume.split(":")[0]
                assert (DEPLOY / source).exists(), f"{name}: {source}"

    def test_worker_policy_mount_matches_its_env(self) -> None:
        worker = SERVICES["worker"]
        targets = [v.split(":")[1] for v in worker["volumes"]]
        assert worker["environment"]["IMPORT_CLOSURE_POLICY"] in targets

    def test_prometheus_loads_the_rules_where_its_config_looks(self) -> None:
        config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
        mounts = dict(v.split(":")[:2] for v in SERVICES["prometheus"]["volumes"])
        rules_target = mounts["./prometheus/rules.yaml"]
        assert any(fnmatch.fnmatch(rules_target, glob) for glob in config["rule_files"])
        assert mounts["./prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"

    def test_grafana_mounts_the_dashboard_where_provisioning_reads(self) -> None:
        provider = yaml.safe_load(
            (DEPLOY / "grafana" / "provisioning" / "dashboards" / "import-closure.yaml").read_text()
        )["providers"][0]
        mounts = dict(v.split(":")[:2] for v in SERVICES["grafana"]["volumes"])
        dashboard_target = Path(mounts["./grafana/import-closure.json"])
        assert dashboard_target.parent == Path(provider["options"]["path"])
        assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


def test_context_holds_the_targets_of_every_symlink_the_package_contains() -> None:
    """COPY keeps symbolic links: a link whose target is outside the COPYed, admitted paths would
    leave the wheel without that file (consumer/data/schemas links into schemas/)."""
    patterns = TestDockerignore.PATTERNS
    copied = [
        src
        for stage in STAGES
        for args in stage.all("COPY")
        if "--from" not in args
        for src in args.split()[:-1]
    ]
    links = [p for p in (ROOT / "consumer").rglob("*") if p.is_symlink()]
    for link in links:
        target = link.resolve().relative_to(ROOT).as_posix()
        assert (ROOT / target).exists(), f"{link} is a broken link"
        assert dockerignore_admits(target, patterns), f"{target} is excluded by .dockerignore"
        assert any(target == src or target.startswith(src + "/") for src in copied), (
            f"{target} (target of {link.relative_to(ROOT)}) is not copied by the Dockerfile"
        )
