"""Policy changes without restarts, on a real broker: hot reload, and a shadow policy beside the live one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from consumer.codec import AvroCodec
from consumer.core.pipeline import SHADOW_HEADER
from consumer.core.records import Decision
from consumer.core.sample import SampleSpec, candidate_policy_text
from consumer.kafka.sample_producer import produce_samples
from consumer.policy import bundled_policy_text
from tests.integration import scrape
from tests.integration.conftest import ROOT, Topics, WorkerProcess, start_worker
from tests.waiting import all_committed, drain, wait_until

CODEC = AvroCodec()
LIVE_TEXT = bundled_policy_text()
#: The candidate closes cross-border electronics too (the samples have ~10% electronics).
CANDIDATE_TEXT = candidate_policy_text()


def logged(worker: WorkerProcess, event: str) -> list[dict[str, object]]:
    return [line for line in worker.json_lines() if line.get("event") == event]


def policy_versions(worker: WorkerProcess, role: str = "live") -> set[str]:
    """Versions in import_closure_policy_info; empty while the worker does not answer yet."""
    try:
        found = scrape.samples(worker.base_url)
    except OSError:
        return set()
    return {
        dict(labels)["version"]
        for (name, labels), v in found.items()
        if name == "import_closure_policy_info" and dict(labels).get("role") == role and v == 1
    }


def reloads(worker: WorkerProcess, result: str, role: str = "live") -> float:
    found = scrape.value(
        worker.base_url, "import_closure_policy_reloads_total", role=role, result=result
    )
    return found or 0.0


def replace_file(path: Path, text: str) -> None:
    """Write-then-rename, as editors and config tools do: the watcher never reads half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def decisions(topics: Topics) -> list[Decision]:
    records = drain(topics.client_conf(), topics.settings.approved_topic)
    return [CODEC.decode_decision(r.value) for r in records]


def start_with_policy(
    topics: Topics, tmp_path: Path, interval: str, **env: str
) -> tuple[Path, WorkerProcess]:
    """A worker enforcing LIVE_TEXT from a file it checks every `interval` seconds."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(LIVE_TEXT)
    worker = start_worker(
        topics,
        tmp_path,
        IMPORT_CLOSURE_POLICY=str(policy),
        IMPORT_CLOSURE_POLICY_RELOAD_INTERVAL=interval,
        **env,
    )
    return policy, worker


def stop(worker: WorkerProcess) -> None:
    assert worker.finish(60, terminate=True) == 0, worker.logs()[-3000:]


class TestHotReload:
    def test_under_load_each_partition_switches_version_once_and_nothing_is_lost(
        self, topics: Topics, tmp_path: Path
    ) -> None:
        """Decisions by source offset: old version, then new, never back; every event decided once."""
        s = topics.settings
        policy, worker = start_with_policy(topics, tmp_path, "0.2", IMPORT_CLOSURE_BATCH_SIZE="100")
        total = 16_000
        producer = threading.Thread(
            target=produce_samples,
            args=(s, s.input_topic),
            kwargs={"count": total, "seed": 21, "rate": 4000.0},
        )
        producer.start()
        wait_until(lambda: scrape.events_done(worker.base_url) >= 3000, 60, "3,000 decisions")
        replace_file(policy, CANDIDATE_TEXT)
        producer.join(60)
        wait_until(lambda: scrape.events_done(worker.base_url) >= total, 60, "all decisions")
        [reloaded] = logged(worker, "policy reloaded")
        stop(worker)

        found = decisions(topics)
        assert len(found) == total
        assert len({d.event_id for d in found}) == total
        old, new = str(reloaded["old_version"]), str(reloaded["version"])
        assert old.startswith("2021.08+")
        assert new.startswith("2026.12+")
        assert reloaded["changes"] == "rules added akar-electronics; clusters added electronics"
        by_partition: dict[int, list[Decision]] = {}
        for d in found:
            assert d.source is not None
            by_partition.setdefault(d.source.partition, []).append(d)
        for partition, ds in by_partition.items():
            versions = [d.policy_version for d in sorted(ds, key=lambda d: d.source.offset)]  # type: ignore[union-attr]
            switch = versions.index(new) if new in versions else len(versions)
            assert set(versions[:switch]) <= {old}, partition
            assert set(versions[switch:]) <= {new}, f"partition {partition} went back"
        assert {d.policy_version for d in found} == {old, new}
        electronics_after = [
            d
            for d in found
            if d.policy_version == new and d.cluster == "electronics" and d.cross_border
        ]
        assert electronics_after
        assert all(d.outcome == "REJECTED" for d in electronics_after)

    def test_a_configmap_symlink_swap_is_applied_and_reported(
        self, topics: Topics, tmp_path: Path
    ) -> None:
        mount = tmp_path / "policy"
        first = mount / "..2026_12_02_01.1"
        first.mkdir(parents=True)
        (first / "policy.yaml").write_text(LIVE_TEXT)
        (mount / "..data").symlink_to(first.name)
        (mount / "policy.yaml").symlink_to("..data/policy.yaml")
        worker = start_worker(
            topics,
            tmp_path,
            IMPORT_CLOSURE_POLICY=str(mount / "policy.yaml"),
            IMPORT_CLOSURE_POLICY_RELOAD_INTERVAL="0.2",
        )
        wait_until(lambda: policy_versions(worker), 30, "the worker to serve metrics")
        [before] = policy_versions(worker)
        second = mount / "..2026_12_02_02.2"
        second.mkdir()
        (second / "policy.yaml").write_text(CANDIDATE_TEXT)
        (mount / "..data_tmp").symlink_to(second.name)
        os.replace(mount / "..data_tmp", mount / "..data")
        wait_until(lambda: reloads(worker, "applied") == 1, 30, "the reload")
        [after] = policy_versions(worker)
        assert before.startswith("2021.08+")
        assert after.startswith("2026.12+")
        stop(worker)

    def test_sighup_applies_a_change_when_periodic_checks_are_off(
        self, topics: Topics, tmp_path: Path
    ) -> None:
        policy, worker = start_with_policy(topics, tmp_path, "0")
        wait_until(lambda: policy_versions(worker), 30, "the worker to serve metrics")
        replace_file(policy, CANDIDATE_TEXT)
        worker.process.send_signal(signal.SIGHUP)
        wait_until(lambda: reloads(worker, "applied") == 1, 30, "the reload after SIGHUP")
        [after] = policy_versions(worker)
        assert after.startswith("2026.12+")
        worker.process.send_signal(signal.SIGHUP)  # nothing new: counted as unchanged
        wait_until(lambda: reloads(worker, "unchanged") == 1, 30, "an unchanged check")
        worker.assert_running()
        stop(worker)

    def test_an_invalid_or_missing_file_keeps_the_policy_and_the_worker_ready(
        self, topics: Topics, tmp_path: Path
    ) -> None:
        s = topics.settings
        policy, worker = start_with_policy(topics, tmp_path, "0.2")
        wait_until(lambda: policy_versions(worker), 30, "the worker to serve metrics")
        [enforced] = policy_versions(worker)
        replace_file(policy, LIVE_TEXT.replace("effect: reject", "effect: maybe", 1))
        wait_until(lambda: reloads(worker, "rejected") == 1, 30, "the rejection")
        [line] = logged(worker, "policy change rejected, keeping the policy in force")
        problems = line["problems"]
        assert isinstance(problems, list)
        assert any("rules[0].effect" in str(p) for p in problems), problems
        gauge = scrape.value(worker.base_url, "import_closure_policy_file_rejected", role="live")
        assert gauge == 1
        assert scrape.status(f"{worker.base_url}/readyz") == 200
        policy.unlink()
        wait_until(lambda: reloads(worker, "rejected") == 2, 30, "the missing file")
        produce_samples(s, s.input_topic, count=300, seed=22)
        wait_until(lambda: scrape.events_done(worker.base_url) >= 300, 60, "decisions")
        assert policy_versions(worker) == {enforced}
        assert scrape.status(f"{worker.base_url}/readyz") == 200
        stop(worker)
        assert {d.policy_version for d in decisions(topics)} == {enforced}


def export(topics: Topics) -> bytes:
    """`export --topic input`: the listings as JSON Lines, in one order for both `check` runs."""
    env = {**os.environ, **topics.env}
    exported = subprocess.run(
        [sys.executable, "-m", "consumer", "export", "--topic", topics.settings.input_topic],
        env=env,
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=120,
    )
    return exported.stdout


def check_outcomes(exported: bytes, policy: Path) -> list[dict[str, object]]:
    """`check --policy P`: what the command line decides for each exported listing."""
    checked = subprocess.run(
        [sys.executable, "-m", "consumer", "check", "--policy", str(policy), "-"],
        input=exported,
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=120,
    )
    return [json.loads(line) for line in checked.stdout.splitlines()]


def rules_that_differ(live: dict[str, object], shadow: dict[str, object]) -> set[str]:
    """Empty when both `check` lines say the same (outcome and the set of (code, rule_id));
    else the rules matched by one policy only, or failing that those whose reason differs."""

    def reasons(d: dict[str, object]) -> set[tuple[str, str]]:
        return {(r["code"], r["rule_id"]) for r in d["reasons"]}  # type: ignore[attr-defined]

    if live["outcome"] == shadow["outcome"] and reasons(live) == reasons(shadow):
        return set()
    rules = set(live["matched_rules"]) ^ set(shadow["matched_rules"])  # type: ignore[call-overload]
    return rules or {rule for _, rule in reasons(live) ^ reasons(shadow)} or {"none"}


def run_shadowed(
    topics: Topics, tmp_path: Path, events: int, **env: str
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """A worker with the live policy and CANDIDATE_TEXT in shadow, until `events` are committed;
    returns its final metrics."""
    s = topics.settings
    live, shadow = tmp_path / "live.yaml", tmp_path / "shadow.yaml"
    live.write_text(LIVE_TEXT)
    shadow.write_text(CANDIDATE_TEXT)
    worker = start_worker(
        topics,
        tmp_path,
        "--create-topics",
        IMPORT_CLOSURE_POLICY=str(live),
        IMPORT_CLOSURE_SHADOW_POLICY=str(shadow),
        **env,
    )
    wait_until(lambda: scrape.events_done(worker.base_url) >= events, 60, "all decisions")
    wait_until(
        lambda: all_committed(topics.client_conf(), s.group_id, s.input_topic), 30, "commits"
    )
    found = scrape.samples(worker.base_url)
    stop(worker)
    return found


class TestShadow:
    def test_shadow_counts_equal_check_with_each_policy_and_its_topic_holds_every_decision(
        self, topics: Topics, tmp_path: Path
    ) -> None:
        s = topics.settings
        shadow_topic = f"{s.input_topic}.shadow"
        produce_samples(
            s, s.input_topic, count=2000, seed=31, spec=SampleSpec(base_time_ms=1_700_000_000_000)
        )
        found = run_shadowed(topics, tmp_path, 2000, IMPORT_CLOSURE_SHADOW_TOPIC=shadow_topic)

        exported = export(topics)
        live_checked = check_outcomes(exported, tmp_path / "live.yaml")
        shadow_checked = check_outcomes(exported, tmp_path / "shadow.yaml")
        expected_shadow = Counter(
            (str(d["outcome"]).lower(), str(d["cluster"] or "none")) for d in shadow_checked
        )
        expected_disagreements = Counter(
            (str(a["outcome"]).lower(), str(b["outcome"]).lower(), rule)
            for a, b in zip(live_checked, shadow_checked, strict=True)
            for rule in rules_that_differ(a, b)
        )
        shadow_metric = Counter(
            {
                (dict(labels)["outcome"], dict(labels)["cluster"]): int(v)
                for (name, labels), v in found.items()
                if name == "import_closure_shadow_decisions_total" and v
            }
        )
        disagreement_metric = Counter(
            {
                (dict(labels)["live"], dict(labels)["shadow"], dict(labels)["rule_id"]): int(v)
                for (name, labels), v in found.items()
                if name == "import_closure_shadow_disagreements_total" and v
            }
        )
        assert shadow_metric == expected_shadow
        assert disagreement_metric == expected_disagreements
        assert expected_disagreements  # the candidate does change something
        live_decisions = decisions(topics)
        assert {d.provenance.mode for d in live_decisions} == {"LIVE"}
        live_outcomes = Counter(d.outcome for d in live_decisions)
        assert live_outcomes == Counter(str(d["outcome"]) for d in live_checked)

        records = drain(topics.client_conf(), shadow_topic)
        assert len(records) == 2000
        shadowed = [CODEC.decode_decision(r.value) for r in records]
        assert {d.provenance.mode for d in shadowed} == {"SHADOW"}
        assert {d.policy_version for d in shadowed} == {str(shadow_checked[0]["policy_version"])}
        assert all(r.headers.get(SHADOW_HEADER) == b"true" for r in records)
        assert Counter(d.outcome for d in shadowed) == Counter(
            str(d["outcome"]) for d in shadow_checked
        )

    def test_changes_only_produces_just_the_decisions_that_differ(
        self, topics: Topics, tmp_path: Path
    ) -> None:
        s = topics.settings
        shadow_topic = f"{s.input_topic}.shadow"
        produce_samples(s, s.input_topic, count=1000, seed=32)
        found = run_shadowed(
            topics,
            tmp_path,
            1000,
            IMPORT_CLOSURE_SHADOW_TOPIC=shadow_topic,
            IMPORT_CLOSURE_SHADOW_TOPIC_CHANGES_ONLY="true",
        )
        disagreements = sum(
            v
            for (name, _), v in found.items()
            if name == "import_closure_shadow_disagreements_total"
        )
        shadowed = [
            CODEC.decode_decision(r.value) for r in drain(topics.client_conf(), shadow_topic)
        ]
        assert disagreements > 0
        assert len(shadowed) == disagreements
        assert {d.cluster for d in shadowed} == {"electronics"}
        assert {d.outcome for d in shadowed} == {"REJECTED"}
