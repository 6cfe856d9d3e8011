"""Throughput, CPU cost, memory and latency of the worker against an honest floor, in one run.

    .venv/bin/python bench/throughput.py [--count 1000000] [--repeats 3] [--partitions 6]
        [--workers N] [--compare-tree DIR] [--naive-count N] [--worker-env KEY=VALUE ...]

Produces COUNT sample events into a fresh topic, then alternates REPEATS rounds of, each in its own
process and consumer group, each until drained:

- floor: bench/floor.py, the cheapest correct copy (batch consume, produce the same bytes, store
  offsets after delivery, nothing else per message), same client settings and batch size;
- worker: `import-closure run --until-idle 3` (with --workers N: N processes in one group);
- old worker (with --compare-tree DIR): the same command run from another source tree, e.g. a
  `git archive` of an earlier commit, to compare against today's code in the same run;
- naive (with --naive-count N > 0): bench/floor.py --naive, a poll-one-message loop with fastavro.

For each it reports events/s over the busy span (first consume to last acknowledgement), CPU
seconds (user + sys of the whole process, from wait4, so start-up is included), events per
CPU-second (the headline: the machine is shared, wall time is not comparable across runs), peak
RSS (VmHWM), and the ratios to the floor; medians over the rounds. Then a paced latency phase: events
produced at --latency-rate for --latency-seconds with event_time = now into a LogAppendTime
topic, decided by a running worker into another; it reports event_time -> decision appended, and
the part after the input was appended (what the worker adds). Starts deploy/kafka-local when no
broker answers at the configured bootstrap. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import (
    NewTopic,  # typed there; confluent_kafka.admin re-exports it untyped
)

from consumer import config
from consumer.codec import AvroCodec
from consumer.config.settings import Settings
from consumer.core.sample import SampleSpec
from consumer.kafka import client_conf
from consumer.kafka.sample_producer import produce_samples

ROOT = Path(__file__).resolve().parents[1]
KAFKA_LOCAL = ROOT / "deploy" / "kafka-local" / "kafka-local"


@dataclass(slots=True)
class Run:
    """One process's figures; several (--workers) add up to one round."""

    events: float = 0.0
    busy_seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    rss_samples_mb: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.busy_seconds if self.busy_seconds else 0.0

    @property
    def per_cpu_second(self) -> float:
        return self.events / self.cpu_seconds if self.cpu_seconds else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--workers", type=int, default=1, help="worker processes in one group")
    parser.add_argument("--compare-tree", type=Path, help="also run the worker from this tree")
    parser.add_argument("--naive-count", type=int, default=0, help="events for the naive loop")
    parser.add_argument(
        "--worker-env", action="append", default=[], help="KEY=VALUE for the workers (repeatable)"
    )
    parser.add_argument(
        "--tuned-env",
        action="append",
        default=[],
        help="KEY=VALUE (repeatable): also run the worker with these, as 'tuned'",
    )
    parser.add_argument(
        "--guarantee",
        choices=("exactly-once",),
        help="also run the worker in this processing guarantee, as 'tuned' (same rounds)",
    )
    parser.add_argument(
        "--latency-rate", type=float, default=5000, help="events/s in the latency phase"
    )
    parser.add_argument("--latency-seconds", type=float, default=20)
    parser.add_argument("--latency-only", action="store_true", help="skip the throughput phase")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency phase")
    parser.add_argument(
        "--text-phrases",
        type=int,
        help="also run the worker, as 'tuned', on the default policy plus a rule of N title "
        "phrases (bench/text_policy.py); 'tuned / worker' is then the cost of the phrases",
    )
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.worker_env)
    args.tuned = dict(item.split("=", 1) for item in args.tuned_env)
    if args.guarantee:
        args.tuned["IMPORT_CLOSURE_PROCESSING_GUARANTEE"] = args.guarantee
    if args.text_phrases:
        generated = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).with_name("text_policy.py")),
                "--phrases",
                str(args.text_phrases),
                "--out",
                tempfile.mkdtemp(prefix="text-policy-"),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        args.tuned["IMPORT_CLOSURE_POLICY"] = generated.stdout.strip()

    settings = config.load()
    started_broker = _ensure_broker(settings)
    try:
        if not args.latency_only:
            _throughput(settings, args, extra)
        if not args.no_latency:
            _latency(settings, args, extra)
    finally:
        if started_broker:
            subprocess.run([str(KAFKA_LOCAL), "stop"], check=False)


def _ensure_broker(settings: Settings) -> bool:
    admin = AdminClient(client_conf.admin_conf(settings))
    try:
        admin.list_topics(timeout=5)
        return False
    except Exception:  # noqa: BLE001 - any failure here just means "no broker yet"
        print("no broker answered; starting deploy/kafka-local", flush=True)
        subprocess.run([str(KAFKA_LOCAL), "start"], check=True)
        return True


def _create(settings: Settings, name: str, partitions: int, **topic_config: str) -> None:
    admin = AdminClient(client_conf.admin_conf(settings))
    futures = admin.create_topics([NewTopic(name, partitions, 1, config=topic_config)])
    futures[name].result(30)


def _throughput(settings: Settings, args: argparse.Namespace, extra: dict[str, str]) -> None:
    tag = uuid.uuid4().hex[:8]
    source = f"bench-in-{tag}"
    _create(settings, source, args.partitions)
    print(f"producing {args.count:,} sample events into {source} ({args.partitions} partitions)")
    produced = produce_samples(
        settings,
        source,
        count=args.count,
        seed=42,
        spec=SampleSpec(base_time_ms=int(time.time() * 1000)),
    )
    print(f"  produced at {produced.total / produced.seconds:,.0f} events/s", flush=True)
    kinds: dict[str, list[Run]] = {"floor": [], "worker": []}
    if args.tuned:
        kinds["tuned"] = []
    if args.compare_tree:
        kinds["old worker"] = []
    if args.naive_count:
        kinds["naive"] = []
    for n in range(1, args.repeats + 1):
        for kind, runs in kinds.items():
            out = f"bench-out-{tag}-{kind.replace(' ', '-')}-{n}"
            _create(settings, out, args.partitions)
            group = f"bench-{kind.replace(' ', '-')}-{tag}-{n}"
            if kind in ("floor", "naive"):
                count = args.count if kind == "floor" else args.naive_count
                runs.append(_run_floor(settings, source, out, group, count, kind == "naive"))
            else:
                _create(settings, f"{out}.dlq", args.partitions)
                tree = args.compare_tree if kind == "old worker" else ROOT
                env = {**_worker_env(settings, source, out, group), **extra}
                if kind == "tuned":
                    env.update(args.tuned)
                runs.append(_run_workers(env, tree, args.workers))
            _report(f"round {n} {kind}", runs[-1])
    floor = statistics.median(r.per_cpu_second for r in kinds["floor"])
    floor_rate = statistics.median(r.rate for r in kinds["floor"])
    print(f"\nmedians of {args.repeats} rounds ({args.workers} worker process(es)):")
    print(
        f"  {'':<11} {'events/s':>10} {'CPU s':>7} {'events/CPU-s':>13} {'peak RSS':>9}"
        f" {'rate/floor':>11} {'per-CPU/floor':>14}"
    )
    for kind, runs in kinds.items():
        per_cpu = statistics.median(r.per_cpu_second for r in runs)
        rate = statistics.median(r.rate for r in runs)
        print(
            f"  {kind:<11} {rate:>10,.0f} {statistics.median(r.cpu_seconds for r in runs):>7.1f}"
            f" {per_cpu:>13,.0f} {statistics.median(r.peak_rss_mb for r in runs):>6.0f} MiB"
            f" {rate / floor_rate:>11.2f} {per_cpu / floor:>14.2f}"
        )
    worker = statistics.median(r.per_cpu_second for r in kinds["worker"])
    if args.tuned:
        print(f"  tuned = worker with {' '.join(f'{k}={v}' for k, v in args.tuned.items())}")
        tuned = kinds["tuned"]
        rate_ratio = statistics.median(r.rate for r in tuned) / statistics.median(
            r.rate for r in kinds["worker"]
        )
        cpu_ratio = statistics.median(r.per_cpu_second for r in tuned) / worker
        print(f"  tuned / worker: events/s {rate_ratio:.2f}, events per CPU-second {cpu_ratio:.2f}")
    for other in ("old worker", "naive"):
        if other in kinds:
            theirs = statistics.median(r.per_cpu_second for r in kinds[other])
            print(f"  worker / {other} in events per CPU-second: {worker / theirs:.2f}")


def _report(label: str, run: Run) -> None:
    samples = run.rss_samples_mb
    curve = (
        " RSS over the run (MiB, quartiles): "
        + " ".join(f"{samples[int(q * (len(samples) - 1))]:.0f}" for q in (0, 0.25, 0.5, 0.75, 1))
        if samples
        else ""
    )
    print(
        f"  {label}: {run.events:,.0f} events in {run.busy_seconds:.2f}s = {run.rate:,.0f}/s, "
        f"{run.cpu_seconds:.1f} CPU s = {run.per_cpu_second:,.0f} events/CPU-s, "
        f"peak RSS {run.peak_rss_mb:.0f} MiB;{curve}",
        flush=True,
    )


def _run_floor(
    settings: Settings, source: str, out: str, group: str, count: int, naive: bool
) -> Run:
    command = [sys.executable, str(ROOT / "bench" / "floor.py"), "--input", source]
    command += ["--output", out, "--group", group, "--count", str(count)]
    if naive:
        command.append("--naive")
    (run,) = _measure([command], _env(settings), ROOT)
    return run


def _run_workers(env: dict[str, str], tree: Path, workers: int) -> Run:
    command = [sys.executable, "-m", "consumer", "run", "--until-idle", "3"]
    env = {**env, "PYTHONPATH": str(tree.resolve())}
    runs = _measure([command] * workers, env, tree.resolve())
    return Run(
        events=sum(r.events for r in runs),
        busy_seconds=max(r.busy_seconds for r in runs),
        cpu_seconds=sum(r.cpu_seconds for r in runs),
        peak_rss_mb=max(r.peak_rss_mb for r in runs),
        rss_samples_mb=runs[0].rss_samples_mb,
    )


def _measure(commands: Sequence[list[str]], env: dict[str, str], cwd: Path) -> list[Run]:
    """Run the commands side by side; each one's figures from its output, wait4 and /proc."""
    procs = [
        subprocess.Popen(
            c, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for c in commands
    ]
    runs = [Run() for _ in procs]
    # Pipes are read by threads (a full pipe would block the child); the processes are reaped
    # here with wait4, which also gives their CPU time; peak RSS is their VmHWM in /proc.
    texts: dict[tuple[int, str], str] = {}

    def collect(i: int, name: str) -> None:
        stream = getattr(procs[i], name)
        texts[(i, name)] = stream.read()

    readers = [
        threading.Thread(target=collect, args=(i, name))
        for i in range(len(procs))
        for name in ("stdout", "stderr")
    ]
    for t in readers:
        t.start()
    alive = set(range(len(procs)))
    while alive:
        for i in sorted(alive):
            rss = _rss_mb(procs[i].pid)
            if rss is not None:
                runs[i].rss_samples_mb.append(rss[0])
                # VmHWM, not wait4's ru_maxrss: execve carries this script's own peak into that
                runs[i].peak_rss_mb = rss[1]
            waited, status, usage = os.wait4(procs[i].pid, os.WNOHANG)
            if waited:
                procs[i].returncode = os.waitstatus_to_exitcode(status)
                runs[i].cpu_seconds = usage.ru_utime + usage.ru_stime
                alive.discard(i)
        time.sleep(0.5)
    for t in readers:
        t.join()
    for i in range(len(procs)):
        stdout, stderr = texts[(i, "stdout")], texts[(i, "stderr")]
        if procs[i].returncode != 0:
            raise RuntimeError(f"{commands[i]} failed:\n{stderr[-3000:]}")
        figures = _figures(stdout, stderr)
        runs[i].events = figures["events"]
        runs[i].busy_seconds = figures["busy_seconds"]
    return runs


def _figures(stdout: str, stderr: str) -> dict[str, float]:
    for line in reversed(stderr.splitlines()):
        if '"worker stopped"' in line:
            return {
                k: float(v) for k, v in json.loads(line).items() if k in ("events", "busy_seconds")
            }
    return cast(dict[str, float], json.loads(stdout.strip().splitlines()[-1]))


def _rss_mb(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) of a running process in MiB, None once it is gone."""
    found: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    found[line[:5]] = int(line.split()[1]) / 1024
    except OSError:
        return None
    if "VmRSS" not in found or "VmHWM" not in found:
        return None
    return found["VmRSS"], found["VmHWM"]


def _worker_env(settings: Settings, source: str, decisions: str, group: str) -> dict[str, str]:
    return {
        **_env(settings),
        "IMPORT_CLOSURE_INPUT_TOPIC": source,
        "IMPORT_CLOSURE_APPROVED_TOPIC": decisions,
        "IMPORT_CLOSURE_REJECTED_TOPIC": decisions,
        "IMPORT_CLOSURE_DLQ_TOPIC": f"{decisions}.dlq",
        "IMPORT_CLOSURE_GROUP_ID": group,
        "IMPORT_CLOSURE_HTTP_PORT": "0",
    }


def _env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "IMPORT_CLOSURE_KAFKA_BOOTSTRAP_SERVERS": settings.kafka["bootstrap.servers"],
        "IMPORT_CLOSURE_LOG_LEVEL": "INFO",
    }


def _latency(settings: Settings, args: argparse.Namespace, extra: dict[str, str]) -> None:
    tag = uuid.uuid4().hex[:8]
    source, decisions = f"lat-in-{tag}", f"lat-decisions-{tag}"
    # LogAppendTime: a record's timestamp is when the broker appended it, i.e. acknowledged it.
    append_time = {"message.timestamp.type": "LogAppendTime"}
    _create(settings, source, args.partitions, **append_time)
    _create(settings, decisions, args.partitions, **append_time)
    _create(settings, f"{decisions}.dlq", args.partitions)
    count = int(args.latency_rate * args.latency_seconds)
    env = {**_worker_env(settings, source, decisions, f"lat-{tag}"), **extra}
    worker = subprocess.Popen(
        [sys.executable, "-m", "consumer", "run", "--until-idle", "5"],
        env=env,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert worker.stderr is not None
    for line in worker.stderr:  # wait until the worker holds its partitions
        if '"partitions assigned"' in line:
            break
    shown = " ".join(f"{k}={v}" for k, v in extra.items()) or "defaults"
    print(f"\nlatency phase: {count:,} events at {args.latency_rate:,.0f}/s ({shown})", flush=True)
    print(f"  load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    produce_samples(
        settings,
        source,
        count=count,
        seed=99,
        rate=args.latency_rate,
        spec=SampleSpec(base_time_ms=int(time.time() * 1000), step_ms=1000 / args.latency_rate),
    )
    print(f"  load average after:  {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    worker.communicate(timeout=300)
    appended = _append_times(settings, source)
    rows: list[tuple[int, float, float | None]] = []  # (event_time, total, after input appended)
    codec = AvroCodec()
    for value, decided_ms in _read_all(settings, decisions):
        decision = codec.decode_decision(value)
        s = decision.source
        appended_ms = None if s is None else appended.get((s.partition, s.offset))
        ours = None if appended_ms is None else float(decided_ms - appended_ms)
        rows.append((decision.event_time_ms, float(decided_ms - decision.event_time_ms), ours))
    start = min(r[0] for r in rows)
    for name, skip_ms in (("all", 0), ("after the first 2 s", 2000)):
        kept = [r for r in rows if r[0] - start >= skip_ms]
        print(f"  {name} ({len(kept):,} decisions):")
        total = sorted(r[1] for r in kept)
        ours_only = sorted(r[2] for r in kept if r[2] is not None)
        for label, values in (
            ("event_time -> decision appended", total),
            ("input appended -> decision appended", ours_only),
        ):
            p50 = values[len(values) // 2]
            p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
            print(f"    {label}: p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {values[-1]:.0f} ms")
    worst = sorted(rows, key=lambda r: -r[1])[: max(1, len(rows) // 100)]
    seconds = sorted({(r[0] - start) // 1000 for r in worst})
    print(f"  the slowest 1% were created in second(s) {seconds} of the run")


def _append_times(settings: Settings, topic: str) -> dict[tuple[int, int], int]:
    consumer = Consumer(
        client_conf.plain_consumer_conf(
            settings, group_id=f"lat-read-{uuid.uuid4().hex[:6]}", enable_partition_eof=True
        )
    )
    return {key: ts for key, ts in _drain(consumer, topic, keys=True)}  # type: ignore[misc]


def _read_all(settings: Settings, topic: str) -> list[tuple[bytes, int]]:
    consumer = Consumer(
        client_conf.plain_consumer_conf(
            settings, group_id=f"lat-read-{uuid.uuid4().hex[:6]}", enable_partition_eof=True
        )
    )
    return _drain(consumer, topic, keys=False)  # type: ignore[return-value]


def _drain(consumer: Consumer, topic: str, *, keys: bool) -> list[tuple[object, int]]:
    """(value, or (partition, offset) with keys, and the append time) of every record, to EOF."""
    try:
        partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        eof: set[int] = set()
        out: list[tuple[object, int]] = []
        while len(eof) < len(partitions):
            for m in consumer.consume(num_messages=5000, timeout=1):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        eof.add(cast(int, m.partition()))
                    continue
                what = (m.partition(), m.offset()) if keys else m.value()
                out.append((what, m.timestamp()[1]))
        return out
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
