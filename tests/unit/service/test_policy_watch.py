"""The policy source: changes are validated off the loop and applied between batches, bad ones kept out."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from consumer.errors import PolicyError
from consumer.policy import CompiledPolicy
from consumer.policy.changes import describe_change
from consumer.service.policy_watch import PolicyWatch
from consumer.telemetry.metrics import Metrics
from tests.unit.policy.test_evaluate import HEADER, compiled, reject

V1 = [reject("fashion", cross_border=True, cluster_in=["fashion"])]
V2 = [*V1, reject("electronics", cross_border=True, cluster_in=["electronics"])]


def policy_text(rules: list[dict[str, object]], version: str = "1") -> str:
    return HEADER.replace('version: "1"', f'version: "{version}"') + yaml.safe_dump(
        {"rules": rules}
    )


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """The live policy file, holding V1 at start."""
    live = tmp_path / "policy.yaml"
    live.write_text(policy_text(V1))
    return live


@pytest.fixture
def source(path: Path, registry: CollectorRegistry) -> PolicyWatch:
    return source_for(path, registry)


def source_for(path: Path, registry: CollectorRegistry, shadow: Path | None = None) -> PolicyWatch:
    return PolicyWatch(path, shadow, Metrics(registry), interval=0, wall_clock=lambda: 1000.0)


def reloads(registry: CollectorRegistry, result: str, role: str = "live") -> float:
    labels = {"role": role, "result": result}
    return registry.get_sample_value("import_closure_policy_reloads_total", labels) or 0.0


def rejected_gauge(registry: CollectorRegistry, role: str = "live") -> float | None:
    return registry.get_sample_value("import_closure_policy_file_rejected", {"role": role})


def records(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == message]


class TestValidChange:
    def test_is_applied_only_when_the_worker_takes_it(
        self, path: Path, source: PolicyWatch, registry: CollectorRegistry
    ) -> None:
        v1 = source.current.live.version
        path.write_text(policy_text(V2, version="2"))
        source.check()
        assert source.current.live.version == v1  # validated, waiting for a batch boundary
        taken = source.take()
        assert taken is not None
        assert taken.live.version.startswith("2+")
        assert source.current is taken
        assert source.take() is None
        assert reloads(registry, "applied") == 1
        info = {"policy": "test-policy", "version": taken.live.version, "role": "live"}
        assert registry.get_sample_value("import_closure_policy_info", info) == 1
        info_old = {**info, "version": v1}
        assert registry.get_sample_value("import_closure_policy_info", info_old) is None

    def test_logs_one_line_with_old_and_new_version_and_what_changed(
        self,
        path: Path,
        source: PolicyWatch,
        registry: CollectorRegistry,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        path.write_text(policy_text(V2, version="2"))
        source.check()
        with caplog.at_level(logging.INFO):
            source.take()
        [line] = records(caplog, "policy reloaded")
        assert line.old_version.startswith("1+")  # type: ignore[attr-defined]
        assert line.version.startswith("2+")  # type: ignore[attr-defined]
        assert line.changes == "rules added electronics"  # type: ignore[attr-defined]

    def test_a_kubernetes_configmap_symlink_swap_is_seen(
        self, tmp_path: Path, registry: CollectorRegistry
    ) -> None:
        """The kubelet writes a new timestamped directory and renames `..data` onto it."""
        mount = tmp_path / "mount"
        mount.mkdir()
        first = mount / "..2026_12_02_01_00_00.1"
        first.mkdir()
        (first / "policy.yaml").write_text(policy_text(V1))
        (mount / "..data").symlink_to(first.name)
        (mount / "policy.yaml").symlink_to("..data/policy.yaml")
        source = source_for(mount / "policy.yaml", registry)
        second = mount / "..2026_12_02_01_05_00.2"
        second.mkdir()
        (second / "policy.yaml").write_text(policy_text(V2, version="2"))
        (mount / "..data_tmp").symlink_to(second.name)
        os.replace(mount / "..data_tmp", mount / "..data")
        source.check()
        taken = source.take()
        assert taken is not None
        assert taken.live.version.startswith("2+")

    def test_a_new_layout_of_the_same_policy_is_not_a_change(
        self, path: Path, source: PolicyWatch, registry: CollectorRegistry
    ) -> None:
        path.write_text("# reviewed 2026-12-02\n" + policy_text(V1))
        source.check()
        assert source.take() is None
        assert reloads(registry, "unchanged") == 1
        assert reloads(registry, "applied") == 0


class TestRejectedChange:
    def test_keeps_the_policy_in_force_and_logs_every_problem_once(
        self,
        path: Path,
        source: PolicyWatch,
        registry: CollectorRegistry,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        v1 = source.current.live.version
        path.write_text(policy_text([{"id": "x", "effect": "maybe"}, {"effect": "reject"}]))
        with caplog.at_level(logging.INFO):
            source.check()
            source.check()  # the same bad content: not said again
        assert source.take() is None
        assert source.current.live.version == v1
        [line] = records(caplog, "policy change rejected, keeping the policy in force")
        problems = line.problems  # type: ignore[attr-defined]
        assert any(p.startswith("rules[0].effect") for p in problems), problems
        assert any(p.startswith("rules[1]") for p in problems), problems
        assert line.version == v1  # type: ignore[attr-defined]
        assert reloads(registry, "rejected") == 1
        assert rejected_gauge(registry) == 1

    def test_another_invalid_content_is_said_again(
        self,
        path: Path,
        source: PolicyWatch,
        registry: CollectorRegistry,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Once per content, not once in all: a second, different mistake is logged and counted."""
        with caplog.at_level(logging.INFO):
            path.write_text("rules: [")
            source.check()
            path.write_text(policy_text([{"id": "x", "effect": "maybe"}]))
            source.check()
        assert len(records(caplog, "policy change rejected, keeping the policy in force")) == 2
        assert reloads(registry, "rejected") == 2
        assert rejected_gauge(registry) == 1

    def test_the_next_valid_change_is_applied_and_clears_the_rejection(
        self, path: Path, source: PolicyWatch, registry: CollectorRegistry
    ) -> None:
        path.write_text("rules: [")
        source.check()
        path.write_text(policy_text(V2, version="2"))
        source.check()
        assert source.take() is not None
        assert rejected_gauge(registry) == 0

    def test_going_back_to_the_policy_in_force_clears_the_rejection(
        self, path: Path, source: PolicyWatch, registry: CollectorRegistry
    ) -> None:
        path.write_text("rules: [")
        source.check()
        path.write_text(policy_text(V1))
        source.check()
        assert source.take() is None
        assert rejected_gauge(registry) == 0

    def test_a_file_that_disappears_keeps_the_policy_and_is_rejected_once(
        self, path: Path, source: PolicyWatch, registry: CollectorRegistry
    ) -> None:
        path.unlink()
        source.check()
        source.check()
        assert source.take() is None
        assert reloads(registry, "rejected") == 1
        assert rejected_gauge(registry) == 1
        path.write_text(policy_text(V2, version="2"))
        source.check()
        assert source.take() is not None

    def test_an_invalid_policy_at_start_is_an_error(self, tmp_path: Path) -> None:
        path = tmp_path / "policy.yaml"
        path.write_text("rules: [")
        with pytest.raises(PolicyError):
            source_for(path, CollectorRegistry())


class TestShadowRole:
    def test_live_and_shadow_reload_on_their_own(
        self, tmp_path: Path, registry: CollectorRegistry
    ) -> None:
        live, shadow = tmp_path / "live.yaml", tmp_path / "shadow.yaml"
        live.write_text(policy_text(V1))
        shadow.write_text(policy_text(V2, version="2"))
        source = source_for(live, registry, shadow)
        assert source.current.shadow is not None
        live_before = source.current.live
        shadow.write_text(policy_text(V2[1:], version="3"))
        source.check()
        taken = source.take()
        assert taken is not None
        assert taken.live is live_before
        assert taken.shadow is not None
        assert taken.shadow.version.startswith("3+")
        assert reloads(registry, "applied", role="shadow") == 1
        assert reloads(registry, "applied", role="live") == 0


class TestWatcher:
    def test_wake_makes_the_watcher_look_at_once_and_counts_an_unchanged_file(
        self, tmp_path: Path, registry: CollectorRegistry
    ) -> None:
        """SIGHUP sets `wake`; with interval 0 nothing else makes the watcher look."""
        path = tmp_path / "policy.yaml"
        path.write_text(policy_text(V1))
        wake = threading.Event()
        source = PolicyWatch(
            path, None, Metrics(registry), interval=0, wake=wake, wall_clock=lambda: 0.0
        )
        source.start()
        try:
            wake.set()
            deadline = threading.Event()
            for _ in range(200):
                if reloads(registry, "unchanged") == 1:
                    break
                deadline.wait(0.01)
            assert reloads(registry, "unchanged") == 1
            path.write_text(policy_text(V2, version="2"))
            wake.set()
            for _ in range(200):
                if (taken := source.take()) is not None:
                    break
                deadline.wait(0.01)
            assert taken is not None
            assert taken.live.version.startswith("2+")
        finally:
            source.stop()


class TestDescribeChange:
    def test_names_rules_and_clusters_added_removed_and_changed(self) -> None:
        old = compiled(V1).model
        new = compiled(
            [reject("fashion", cross_border=True), V2[1]],
            header=HEADER.replace(
                "electronics:", "crafts: {category_paths: [[Crafts]]}\n  electronics:"
            ),
        ).model
        change = describe_change(old, new)
        assert change.rules_added == ("electronics",)
        assert change.rules_changed == ("fashion",)
        assert change.clusters_added == ("crafts",)
        assert change.summary() == (
            "rules added electronics; rules changed fashion; clusters added crafts"
        )


def write_set(folder: Path) -> Path:
    """A set of two layers, a.yaml (V1) and b.yaml (a rule of its own); returns the set file."""
    (folder / "a.yaml").write_text(policy_text(V1))
    b_rules = [reject("min_price", cross_border=True, site_in=["ID"])]
    (folder / "b.yaml").write_text(policy_text(b_rules).replace("test-policy", "layer-b"))
    path = folder / "set.yaml"
    path.write_text('policy_set: both\nversion: "1"\nlayers:\n  - path: a.yaml\n  - path: b.yaml\n')
    return path


class TestPolicySet:
    def test_an_edit_to_a_layer_file_reloads_the_set(
        self, tmp_path: Path, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The set file is unchanged; the layer's new content gives the set a new version."""
        path = write_set(tmp_path)
        source = source_for(path, registry)
        before = source.current.live.version
        assert source.current.live.policy_id == "both"
        (tmp_path / "a.yaml").write_text(policy_text(V2, version="2"))
        source.check()
        with caplog.at_level(logging.INFO):
            taken = source.take()
        assert taken is not None
        assert taken.live.version != before
        assert [layer.version[:2] for layer in taken.live.layers] == ["2+", "1+"]
        [line] = records(caplog, "policy reloaded")
        assert line.changes == "layers[0] (a.yaml): rules added electronics"  # type: ignore[attr-defined]

    def test_an_edit_to_the_set_file_reloads_it(
        self, tmp_path: Path, registry: CollectorRegistry
    ) -> None:
        """Dropping a layer is a change like any other."""
        path = write_set(tmp_path)
        source = source_for(path, registry)
        path.write_text('policy_set: both\nversion: "2"\nlayers:\n  - path: a.yaml\n')
        source.check()
        taken = source.take()
        assert taken is not None
        assert len(taken.live.layers) == 1

    @pytest.mark.parametrize(
        ("breakage", "problem"),
        [
            (
                "invalid",
                "layers[1] (b.yaml): rules[0].effect: expected 'reject', 'review' or 'allow'",
            ),
            ("missing", "layers[1] (b.yaml): no such file: "),
            ("duplicate-id", "layers[1] (b.yaml).rules[0].id: duplicate rule id 'fashion'"),
        ],
        ids=["invalid", "missing", "duplicate-id"],
    )
    def test_a_broken_layer_keeps_the_set_in_force_and_is_logged_once(
        self,
        tmp_path: Path,
        registry: CollectorRegistry,
        caplog: pytest.LogCaptureFixture,
        breakage: str,
        problem: str,
    ) -> None:
        """Checked twice, said once; the repaired layer is then applied."""
        path = write_set(tmp_path)
        source = source_for(path, registry)
        before = source.current.live.version
        layer = tmp_path / "b.yaml"
        if breakage == "invalid":
            layer.write_text(
                policy_text([{"id": "x", "effect": "maybe", "when": {"cross_border": True}}])
            )
        elif breakage == "missing":
            layer.unlink()
        else:
            layer.write_text(policy_text(V1).replace("test-policy", "layer-b"))
        with caplog.at_level(logging.INFO):
            source.check()
            source.check()
        assert source.take() is None
        assert source.current.live.version == before
        [line] = records(caplog, "policy change rejected, keeping the policy in force")
        problems = line.problems  # type: ignore[attr-defined]
        assert any(p.startswith(problem) for p in problems), problems
        assert reloads(registry, "rejected") == 1
        layer.write_text(
            policy_text(V2, version="2")
            .replace("test-policy", "layer-b")
            .replace("id: fashion", "id: fashion-b")
            .replace("id: electronics", "id: electronics-b")
        )
        source.check()
        assert source.take() is not None
        assert rejected_gauge(registry) == 0

    def test_a_set_can_be_the_shadow_policy(
        self, tmp_path: Path, path: Path, registry: CollectorRegistry
    ) -> None:
        """The live file stays a plain policy; the candidate is a set."""
        folder = tmp_path / "candidate"
        folder.mkdir()
        source = source_for(path, registry, shadow=write_set(folder))
        shadow = source.current.shadow
        assert shadow is not None
        assert (source.current.live.policy_id, shadow.policy_id) == ("test-policy", "both")


def list_policy_text(file: str = "positive.txt") -> str:
    """A policy whose one rule reads a list file."""
    lists = {"positive": [{"effective_from": "2020-01-01", "file": file}]}
    rules = [reject("positive", hs_code_prefix_in={"list": "positive"})]
    return HEADER + yaml.safe_dump({"lists": lists, "rules": rules})


@pytest.fixture
def listed(tmp_path: Path, registry: CollectorRegistry) -> tuple[Path, PolicyWatch]:
    """A watched policy reading positive.txt (4901), and that list file."""
    (tmp_path / "positive.txt").write_text("4901\n")
    (tmp_path / "policy.yaml").write_text(list_policy_text())
    return tmp_path / "positive.txt", source_for(tmp_path / "policy.yaml", registry)


def _replace_by_fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


class TestListFiles:
    def test_editing_a_list_file_reloads_the_policy(
        self, listed: tuple[Path, PolicyWatch], caplog: pytest.LogCaptureFixture
    ) -> None:
        """A list file is part of the policy: a new entry is a new policy version, applied."""
        list_file, source = listed
        v1 = source.current.live.version
        list_file.write_text("4901\n4902\n")
        source.check()
        with caplog.at_level(logging.INFO):
            taken = source.take()
        assert taken is not None
        assert taken.live.version != v1
        assert isinstance(taken.live, CompiledPolicy)
        assert taken.live.model.lists[0][1][0].entries == ("4901", "4902")
        [line] = records(caplog, "policy reloaded")
        assert line.old_version == v1  # type: ignore[attr-defined]
        assert line.changes == "other lists.positive"  # type: ignore[attr-defined]

    def test_an_untouched_list_file_is_not_a_change(
        self, listed: tuple[Path, PolicyWatch], registry: CollectorRegistry
    ) -> None:
        """Checking again with nothing edited reads the files and changes nothing."""
        _, source = listed
        source.check()
        source.check(requested=True)
        assert source.take() is None
        assert reloads(registry, "unchanged") == 1
        assert reloads(registry, "applied") == 0

    @pytest.mark.parametrize(
        ("damage", "problem"),
        [
            (lambda f: f.unlink(), "cannot read 'positive.txt': No such file or directory"),
            (
                lambda f: f.write_bytes(b"4901\n\xff\n"),
                "'positive.txt': not UTF-8: byte 0xff on line 2",
            ),
            (
                lambda f: f.write_bytes(b"4" * (11 * 1024 * 1024)),
                "'positive.txt': larger than 10,485,760 bytes",
            ),
            (_replace_by_fifo, "cannot read 'positive.txt': not a regular file"),
        ],
        ids=["missing", "invalid-utf8", "over-10-mib", "a-fifo-is-not-opened"],
    )
    def test_a_broken_list_file_keeps_the_policy_with_one_logged_problem(
        self,
        listed: tuple[Path, PolicyWatch],
        registry: CollectorRegistry,
        caplog: pytest.LogCaptureFixture,
        damage: Any,
        problem: str,
    ) -> None:
        """A list file gone missing or unreadable during a hot reload is a rejected change: the
        policy in force stays, one log line names the file, and mending it reloads."""
        list_file, source = listed
        v1 = source.current.live.version
        damage(list_file)
        with caplog.at_level(logging.INFO):
            source.check()
            source.check()  # the same broken state: not said again
        assert source.take() is None
        assert source.current.live.version == v1
        [line] = records(caplog, "policy change rejected, keeping the policy in force")
        [logged] = line.problems  # type: ignore[attr-defined]
        assert logged.startswith(f"lists.positive[0].file: {problem}")
        assert reloads(registry, "rejected") == 1
        assert rejected_gauge(registry) == 1
        list_file.unlink(missing_ok=True)  # replaced, not written through (a FIFO would block)
        list_file.write_text("4901\n4902\n")
        source.check()
        assert source.take() is not None
        assert rejected_gauge(registry) == 0

    def test_a_list_file_named_by_a_new_version_is_watched(
        self, listed: tuple[Path, PolicyWatch], tmp_path: Path
    ) -> None:
        """When the policy starts reading another list file, edits to that file reload it."""
        _, source = listed
        (tmp_path / "next.txt").write_text("4901\n")
        (tmp_path / "policy.yaml").write_text(list_policy_text("next.txt"))
        source.check()
        first = source.take()
        (tmp_path / "next.txt").write_text("4903\n")
        source.check()
        second = source.take()
        assert first is None  # same entries, so the same policy version
        assert second is not None
        assert isinstance(second.live, CompiledPolicy)
        assert second.live.model.lists[0][1][0].entries == ("4903",)


class TestSetWithListFiles:
    """Layers and list files together: a layer's list file is read relative to the layer, and it
    is part of the set like the layer itself."""

    @pytest.fixture
    def layered(self, tmp_path: Path, registry: CollectorRegistry) -> tuple[Path, PolicyWatch]:
        (tmp_path / "layers" / "lists").mkdir(parents=True)
        list_file = tmp_path / "layers" / "lists" / "positive.txt"
        list_file.write_text("4901\n")
        (tmp_path / "layers" / "a.yaml").write_text(list_policy_text("lists/positive.txt"))
        (tmp_path / "set.yaml").write_text(
            'policy_set: with-lists\nversion: "1"\nlayers:\n  - path: layers/a.yaml\n'
        )
        return list_file, source_for(tmp_path / "set.yaml", registry)

    def test_a_layers_list_file_edit_reloads_the_set(
        self, layered: tuple[Path, PolicyWatch]
    ) -> None:
        """The set file and the layer are unchanged; the list's new entry is a new set version."""
        list_file, source = layered
        before = source.current.live.version
        list_file.write_text("4901\n4902\n")
        source.check()
        taken = source.take()
        assert taken is not None
        assert taken.live.policy_id == "with-lists"
        assert taken.live.version != before

    def test_a_missing_list_file_of_a_layer_keeps_the_set(
        self, layered: tuple[Path, PolicyWatch], registry: CollectorRegistry
    ) -> None:
        """A layer whose list file went missing is a rejected change; the set in force stays."""
        list_file, source = layered
        before = source.current.live.version
        list_file.unlink()
        source.check()
        assert source.take() is None
        assert source.current.live.version == before
        assert reloads(registry, "rejected") == 1
