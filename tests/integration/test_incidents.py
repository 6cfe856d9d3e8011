"""Monitoring under faults (issue 18): two workers on a real broker, a real Prometheus scraping them
every second with deploy/prometheus/rules.yaml, its windows scaled down, and the incidents driven
for real: normal load, an output throttled by a broker quota, a broker outage, a SIGKILLed worker.

Checked in each: the lag on /metrics agrees with an admin client's committed lag within one
reading (the reading is taken between two admin readings, so every offset lies between theirs),
the lag series stay through the outage, and the alert for the incident reaches firing. Every
dashboard query is evaluated too, and none may be empty in normal operation.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._listoffsets import OffsetSpec  # not re-exported for mypy

from consumer.core.sample import SampleSpec
from consumer.kafka.client_conf import admin_conf, plain_consumer_conf
from consumer.kafka.sample_producer import produce_samples
from tests.deploy.prometheus_server import PrometheusServer, running_prometheus
from tests.deploy.test_dashboard import NAMESPACE, QUERIES, substitute
from tests.deploy.tools import DEPLOY, require, run
from tests.integration.conftest import (
    ROOT,
    Broker,
    Topics,
    WorkerProcess,
    make_topics,
    start_worker,
)
from tests.integration.scrape import samples
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

RULES = DEPLOY / "prometheus" / "rules.yaml"
#: Rule windows and `for:` durations are divided by this: 10 m becomes 20 s.
FACTOR = 30
#: A dead member's partitions stay unowned for the workers' session timeout (SESSION below):
#: 5 m / 30 would not fit in that, so this alert's `for:` is set on its own.
UNOWNED_FOR = "2s"
#: The workers' own default is 6 s, shorter than this test's ~25 s broker outage: they would
#: drop their partitions during it (`partitions lost`), while the outage phase checks that their
#: lag series stay. librdkafka's default of 45 s outlasts the outage (and makes the SIGKILL
#: phase wait 45 s for the take-over).
SESSION = {"IMPORT_CLOSURE_KAFKA_SESSION_TIMEOUT_MS": "45000"}
#: The workers read lag every second (default 5 s), like the scrape interval.
LAG_INTERVAL = 1.0
SELECTOR = f'job="import-closure", namespace="{NAMESPACE}"'
#: Bytes per second the broker lets each worker's producer send while "throttled": a few dozen
#: decisions per second, far below the input rate below.
THROTTLE_BYTES = 3000
INPUT_RATE = 400.0
#: librdkafka batches up to 10,000 messages; one such request under the quota mutes the producer
#: for minutes (the broker's throttle time), and commits stop meanwhile, which is what
#: ImportClosurePartitionStalled is for. Small requests make the throttle a steady trickle.
SMALL_BATCHES = {"IMPORT_CLOSURE_KAFKA_BATCH_NUM_MESSAGES": "20"}
#: Panels that are empty in normal operation by design: the shadow row without a shadow policy,
#: and the review queue with a policy without review rules (the default one).
EMPTY_BY_DESIGN = re.compile(
    r"^(Reject and review ratio: live vs shadow/B|Reject and review ratio: "
    r"live vs shadow/D|Shadow disagreements|Top review reasons|Review decisions/s)"
)
LIB = ROOT / "deploy" / "kafka-local" / ".cache" / "lib"

Offsets = dict[int, tuple[int, int]]  # partition -> (committed, end)


def scaled_rules(
    source: Path, dest: Path, factor: int, durations: dict[str, str] | None = None
) -> Path:
    """rules.yaml with every range window (`[5m]`) and `for:` divided by `factor` (in whole
    seconds, at least 1), and the `for:` of the alerts named in `durations` set to that."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

    def seconds(duration: str) -> str:
        amount, unit = re.fullmatch(r"(\d+)([smhdw])", duration).groups()  # type: ignore[union-attr]
        return f"{max(1, int(amount) * units[unit] // factor)}s"

    config = yaml.safe_load(source.read_text())
    for group in config["groups"]:
        for rule in group["rules"]:
            rule["expr"] = re.sub(r"\[(\d+[smhdw])\]", lambda m: f"[{seconds(m[1])}]", rule["expr"])
            if "for" in rule:
                rule["for"] = (durations or {}).get(rule["alert"], seconds(rule["for"]))
    dest.write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


class AdminProbe:
    """The group's committed offset and the end offset of every input partition as the broker
    answers them (OffsetFetch, ListOffsets latest), read by the test, not by the worker's code.

    The committed offsets come from a consumer of the group's id (never subscribed), not from
    AdminClient.list_consumer_group_offsets: with that, the test process died with SIGSEGV twice
    (no Python traceback), both times in the phase that reads the offsets right after the broker
    restart, when the coordinator answers NOT_COORDINATOR. The likely cause is librdkafka's
    OffsetFetch error handling, which queues a coordinator query on the handle's consumer group,
    and an admin client has none (confluent-kafka-javascript#374: rd_kafka_cgrp_op(rkcg=0x0)).
    Both clients live for the whole test, and every request is awaited before its answer is read.
    """

    def __init__(self, topics: Topics) -> None:
        self._settings = topics.settings
        self._admin = AdminClient(admin_conf(topics.settings))
        self._group = Consumer(
            plain_consumer_conf(topics.settings, enable_auto_commit=False)  # the group's id
        )

    def offsets(self) -> Offsets:
        """Retried while the broker is still starting (coordinator loading)."""

        def answered() -> Offsets:
            try:
                return self._read()
            except KafkaException:
                return {}  # falsy: ask again

        return wait_until(answered, 60, "the broker's offsets", interval=0.5)

    def _read(self) -> Offsets:
        s = self._settings
        metadata = self._admin.list_topics(s.input_topic, timeout=10)
        partitions = sorted(metadata.topics[s.input_topic].partitions)
        tps = [TopicPartition(s.input_topic, p) for p in partitions]
        committed = {tp.partition: tp.offset for tp in self._group.committed(tps, timeout=10)}
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        ends = self._admin.list_offsets({tp: latest for tp in tps}, request_timeout=10)
        _done, not_done = concurrent.futures.wait(list(ends.values()), timeout=30)
        assert not not_done, "the admin client's requests outlived their request timeout"
        return {
            tp.partition: (committed[tp.partition], f.result().offset) for tp, f in ends.items()
        }

    def close(self) -> None:
        self._group.close()


def admin_lag(offsets: Offsets) -> int:
    return sum(end - max(committed, 0) for committed, end in offsets.values())


@dataclass
class Reading:
    """One worker's lag figures from /metrics, and when (test's monotonic clock) at the latest
    its reading was taken."""

    read_by: float
    committed: dict[int, int]
    end: dict[int, int]
    group_lag: dict[int, int]
    own_lag: dict[int, int]

    @property
    def total(self) -> int:
        return sum(self.group_lag.values())


def reading(worker: WorkerProcess) -> Reading:
    asked = time.monotonic()
    got = samples(worker.base_url)

    def per_partition(name: str) -> dict[int, int]:
        return {
            int(dict(labels)["partition"]): int(v) for (n, labels), v in got.items() if n == name
        }

    age = got[("import_closure_lag_age_seconds", frozenset())]
    return Reading(
        read_by=asked - age,
        committed=per_partition("import_closure_group_committed_offset"),
        end=per_partition("import_closure_group_end_offset"),
        group_lag=per_partition("import_closure_group_lag"),
        own_lag=per_partition("import_closure_consumer_lag"),
    )


def reading_after(worker: WorkerProcess, moment: float, seconds: float = 30) -> Reading:
    """The worker's first lag reading begun after `moment` (test monotonic clock)."""

    def newer() -> Reading | None:
        worker.assert_running()
        r = reading(worker)
        return r if r.read_by > moment else None

    found = wait_until(newer, seconds, "a lag reading newer than the admin client's", interval=0.2)
    assert found is not None
    return found


def assert_between(before: Offsets, m: Reading, after: Offsets) -> None:
    """The worker read between the two admin readings, so each of its offsets lies between
    theirs (committed and end offsets only grow), and its lag is end minus committed."""
    assert set(m.end) == set(before), (m.end, before)
    for p, (committed_before, end_before) in before.items():
        committed_after, end_after = after[p]
        assert committed_before <= m.committed[p] <= committed_after, (p, before, m, after)
        assert end_before <= m.end[p] <= end_after, (p, before, m, after)
        assert m.group_lag[p] == m.end[p] - max(m.committed[p], 0), (p, m)
        if p in m.own_lag:
            assert m.own_lag[p] == m.group_lag[p], (p, m)


def alert_state(prom: PrometheusServer, name: str) -> str:
    """inactive, pending or firing: the most advanced state among the alert's instances."""
    states = {
        a["state"]
        for group in prom.rule_groups()
        for rule in group["rules"]
        if rule["type"] == "alerting" and rule["name"] == name
        for a in rule.get("alerts", [])
    }
    for state in ("firing", "pending"):
        if state in states:
            return state
    return "inactive"


def wait_firing(
    prom: PrometheusServer,
    names: Sequence[str],
    since: float,
    seconds: float,
    meanwhile: Callable[[], None] = lambda: None,
) -> dict[str, float]:
    """Seconds from `since` until each alert of `names` first fires; `meanwhile` runs between
    checks. TimeoutError naming those that did not fire."""
    fired: dict[str, float] = {}

    def all_fired() -> bool:
        meanwhile()
        for name in names:
            if name not in fired and alert_state(prom, name) == "firing":
                fired[name] = round(time.monotonic() - since, 1)
        return len(fired) == len(names)

    what = " and ".join(names) + " to fire"
    try:
        wait_until(all_fired, seconds, what, interval=0.5)
    except TimeoutError as exc:
        msg = f"{exc}; fired: {fired}, not: {sorted(set(names) - set(fired))}"
        raise TimeoutError(msg) from exc
    return {f"{name}_fired_after_s": t for name, t in fired.items()}


def set_quota(broker: Broker, client_ids: list[str], add: bool) -> None:
    """producer_byte_rate on the workers' client ids, with Kafka's own ConfigCommand (the
    Python client has no quota API)."""
    java = (
        os.path.join(os.environ["JAVA_HOME"], "bin", "java")
        if "JAVA_HOME" in os.environ
        else require("java")
    )
    change = (
        ["--add-config", f"producer_byte_rate={THROTTLE_BYTES}"]
        if add
        else ["--delete-config", "producer_byte_rate"]
    )
    for client_id in client_ids:
        run(
            [
                java,
                "-cp",
                f"{LIB}/*",
                "org.apache.kafka.tools.ConfigCommand",
                "--bootstrap-server",
                broker.bootstrap,
                "--alter",
                "--entity-type",
                "clients",
                "--entity-name",
                client_id,
                *change,
            ]
        )


class TestIncidents:
    def test_lag_alerts_and_dashboard_under_throttle_outage_and_sigkill(
        self, broker: Broker, tmp_path: Path
    ) -> None:
        if not broker.managed:
            pytest.skip(
                "stops and starts the broker: needs the session's own (no IMPORT_CLOSURE_TEST_BOOTSTRAP)"
            )
        rules = scaled_rules(
            RULES,
            tmp_path / "rules.scaled.yaml",
            FACTOR,
            {"ImportClosurePartitionWithoutOwner": UNOWNED_FOR},
        )
        run([require("promtool"), "check", "rules", str(rules)])
        topics = make_topics(broker, partitions=3)
        env = {"IMPORT_CLOSURE_LAG_INTERVAL": str(LAG_INTERVAL), **SMALL_BATCHES, **SESSION}
        workers = [start_worker(topics, tmp_path, **env) for _ in range(2)]
        figures: dict[str, Any] = {"factor": FACTOR}
        probe = AdminProbe(topics)
        try:
            with running_prometheus(
                tmp_path / "prometheus",
                targets=[f"127.0.0.1:{w.http_port}" for w in workers],
                rule_files=[rules],
                target_labels={"namespace": NAMESPACE},
            ) as prom:
                try:
                    self._incidents(broker, topics, workers, prom, probe, figures)
                except (AssertionError, TimeoutError) as exc:
                    logs = "\n".join(
                        f"--- worker {w.http_port} ---\n{w.logs()[-2000:]}" for w in workers
                    )
                    raise AssertionError(f"{exc}\nfigures so far: {figures}\n{logs}") from exc
        finally:
            probe.close()
            print("\nincident figures:", json.dumps(figures, indent=1))
            (tmp_path / "figures.json").write_text(json.dumps(figures, indent=1))
            if broker.managed:
                broker.start()  # idempotent: the outage phase may have failed with it stopped

    def _incidents(
        self,
        broker: Broker,
        topics: Topics,
        workers: list[WorkerProcess],
        prom: PrometheusServer,
        probe: AdminProbe,
        figures: dict[str, Any],
    ) -> None:
        s = topics.settings
        first, second = workers

        def both_assigned() -> bool:
            try:
                return (
                    all(reading(w).own_lag for w in workers)
                    and len(set(reading(first).own_lag) | set(reading(second).own_lag)) == 3
                )
            except (OSError, KeyError):
                return False

        wait_until(both_assigned, 90, "both workers to hold partitions and report their lag")
        prom.wait_for(f"count(up{{{SELECTOR}}} == 1) == 2", 30)

        # --- normal load: lag agrees with the admin client while input flows -------------------
        producing = threading.Thread(
            target=produce_samples,
            args=(s, s.input_topic),
            kwargs={
                "count": 4000,
                "seed": 41,
                "rate": INPUT_RATE,
                "bad_fraction": 0.01,
                "spec": SampleSpec(base_time_ms=int(time.time() * 1000), step_ms=1000 / INPUT_RATE),
            },
        )
        producing.start()
        normal = figures["normal"] = []
        try:
            while producing.is_alive() or not normal:
                before = probe.offsets()
                moment = time.monotonic()
                mid = [reading_after(w, moment) for w in workers]
                after = probe.offsets()
                for m in mid:
                    assert_between(before, m, after)
                normal.append(
                    {
                        "admin_lag_before": admin_lag(before),
                        "metrics_lag": [m.total for m in mid],
                        "admin_lag_after": admin_lag(after),
                    }
                )
        finally:
            producing.join()
        # Drained: every figure equals the admin client's exactly.
        wait_until(lambda: admin_lag(probe.offsets()) == 0, 60, "the input to be decided")
        settled = probe.offsets()
        for w in workers:
            r = reading_after(w, time.monotonic())
            assert r.group_lag == {p: 0 for p in settled}
            assert {p: c for p, c in r.committed.items()} == {
                p: c for p, (c, _e) in settled.items()
            }
        self._dashboard_has_data(prom)

        # --- output throttled: committed lag grows while positions keep up ---------------------
        client_ids = [f"test-worker-{w.http_port}" for w in workers]
        set_quota(broker, client_ids, add=True)
        throttle_start = time.monotonic()
        seed = iter(range(100, 10_000))

        def input_arrives() -> None:
            produce_samples(
                s,
                s.input_topic,
                count=int(INPUT_RATE),
                seed=next(seed),
                rate=INPUT_RATE,
                spec=SampleSpec(base_time_ms=int(time.time() * 1000), step_ms=1000 / INPUT_RATE),
            )

        # The incident: the old position-based gauge never let LagGrowing fire here.
        figures["throttled"] = wait_firing(
            prom,
            ["ImportClosureOutputBehindInput", "ImportClosureConsumerLagGrowing"],
            throttle_start,
            120,
            input_arrives,
        )
        before = probe.offsets()
        moment = time.monotonic()
        input_arrives()
        mid = [reading_after(w, moment) for w in workers]
        after = probe.offsets()
        for m in mid:
            assert_between(before, m, after)
        in_flight = [
            samples(w.base_url)[("import_closure_in_flight_messages", frozenset())] for w in workers
        ]
        figures["throttled"].update(
            admin_lag_before=admin_lag(before),
            metrics_lag=[m.total for m in mid],
            admin_lag_after=admin_lag(after),
            in_flight=in_flight,
        )
        assert min(m.total for m in mid) > 1000, "the throttled output left no backlog"

        # --- broker outage with that backlog: lag kept, not shrinking, and the alert fires -------
        before = probe.offsets()
        moment = time.monotonic()
        for w in workers:
            reading_after(w, moment)
        # Under the throttle commits still move (every produce request is small, see
        # SMALL_BATCHES): wait until no partition looks stalled, so what fires next is the outage.
        wait_until(
            lambda: alert_state(prom, "ImportClosurePartitionStalled") == "inactive",
            30,
            "ImportClosurePartitionStalled to be inactive under the throttle",
            interval=0.5,
        )
        broker.stop()
        outage_start = time.monotonic()
        during = figures["outage"] = {}
        during.update(wait_firing(prom, ["ImportClosurePartitionStalled"], outage_start, 120))
        frozen = wait_until(
            lambda: [
                r for r in map(reading, workers) if time.monotonic() - r.read_by > 5 * LAG_INTERVAL
            ],
            30,
            "the lag readings of both workers to age",
        )
        ages = [round(time.monotonic() - r.read_by, 1) for r in frozen]
        assert len(frozen) == 2, ages
        for r in frozen:
            assert len(r.group_lag) == 3, "group lag series vanished in the outage"
            assert r.own_lag, "the worker's lag series vanished in the outage"
        assigned = set(frozen[0].own_lag) | set(frozen[1].own_lag)
        assert assigned == {0, 1, 2}
        broker.start()
        outage_s = round(time.monotonic() - outage_start, 1)
        after = probe.offsets()
        for r in frozen:
            assert_between(before, r, after)
        during.update(
            seconds=outage_s,
            lag_age_s=ages,
            admin_lag_before=admin_lag(before),
            metrics_lag_during=[r.total for r in frozen],
            admin_lag_after=admin_lag(after),
        )
        set_quota(broker, client_ids, add=False)
        wait_until(
            lambda: admin_lag(probe.offsets()) == 0,
            120,
            "the backlog to drain after the outage",
        )
        settled = probe.offsets()
        for w in workers:
            r = reading_after(w, time.monotonic(), 60)
            assert r.group_lag == {p: 0 for p in settled}
        during["recovered_s"] = round(time.monotonic() - outage_start, 1)

        # --- SIGKILL one worker: WorkerDown fires, and PartitionWithoutOwner while the group has
        # not moved its partitions (the workers' session timeout, 45 s, bounds that: its
        # `for:` is 2 s here, see UNOWNED_FOR); the survivor reports their lag meanwhile ----------
        second.process.kill()
        second.process.wait(10)
        kill = time.monotonic()
        produce_samples(s, s.input_topic, count=400, seed=77)
        figures["sigkill"] = wait_firing(
            prom, ["ImportClosureWorkerDown", "ImportClosurePartitionWithoutOwner"], kill, 60
        )
        before = probe.offsets()
        orphan = reading_after(first, time.monotonic())
        after = probe.offsets()
        assert_between(before, orphan, after)
        figures["sigkill"]["partitions_reported_by_survivor"] = sorted(orphan.group_lag)
        wait_until(
            lambda: len(reading(first).own_lag) == 3, 120, "the survivor to take every partition"
        )
        figures["sigkill"]["takeover_s"] = round(time.monotonic() - kill, 1)
        wait_until(lambda: admin_lag(probe.offsets()) == 0, 60, "the survivor to catch up")
        final = reading_after(first, time.monotonic())
        assert final.own_lag == final.group_lag == {0: 0, 1: 0, 2: 0}

    def _dashboard_has_data(self, prom: PrometheusServer) -> None:
        """Every dashboard query evaluates against the real workers' series; none is empty except
        the panels empty by design without a shadow policy or review rules."""
        errors, empty = {}, []
        for name, expr in QUERIES:
            answer = prom.query_response(substitute(expr))
            if answer["status"] != "success":
                errors[name] = answer.get("error")
            elif (
                not answer["data"]["result"]
                and "offset 1w" not in expr
                and not EMPTY_BY_DESIGN.match(name)
            ):
                empty.append(name)
        assert errors == {}
        assert empty == []
