"""Throughput and latency of the worker against a pass-through baseline, measured in the same run.

    .venv/bin/python bench/throughput.py [--count 1000000] [--repeats 3] [--partitions 6]

Produces COUNT sample events into a fresh topic, then alternates REPEATS runs of (a) the baseline
(bench/passthrough.py: consume → produce the same bytes, same client settings) and (b) the worker
(`import-closure run --until-idle`), each in its own process with a fresh consumer group, each
until drained. Prints medians of events/s, their ratio and peak RSS. Then a paced latency phase:
events produced at --latency-rate for --latency-seconds with event_time = now, decided by a running
worker into a LogAppendTime topic; latency = broker append time of the decision - event_time.
Starts deploy/kafka-local when no broker answers at the configured bootstrap. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import cast

from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import (
    NewTopic,  # typed there; confluent_kafka.admin re-exports it untyped
)

from consumer import config
from consumer.codec import AvroCodec
from consumer.config import Settings
from consumer.producing import produce_samples
from consumer.sample import SampleSpec

ROOT = Path(__file__).resolve().parents[1]
KAFKA_LOCAL = ROOT / "deploy" / "kafka-local" / "kafka-local"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--latency-rate", type=float, default=5000, help="events/s in the latency phase"
    )
    parser.add_argument("--latency-seconds", type=float, default=20)
    parser.add_argument("--latency-only", action="store_true", help="skip the throughput phase")
    args = parser.parse_args()

    settings = config.load()
    started_broker = _ensure_broker(settings)
    try:
        if not args.latency_only:
            _throughput(settings, args)
        _latency(settings, args)
    finally:
        if started_broker:
            subprocess.run([str(KAFKA_LOCAL), "stop"], check=False)


def _ensure_broker(settings: Settings) -> bool:
    admin = AdminClient(config.admin_conf(settings))
    try:
        admin.list_topics(timeout=5)
        return False
    except Exception:  # noqa: BLE001 - any failure here just means "no broker yet"
        print("no broker answered; starting deploy/kafka-local", flush=True)
        subprocess.run([str(KAFKA_LOCAL), "start"], check=True)
        return True


def _create(settings: Settings, name: str, partitions: int, **topic_config: str) -> None:
    admin = AdminClient(config.admin_conf(settings))
    futures = admin.create_topics([NewTopic(name, partitions, 1, config=topic_config)])
    futures[name].result(30)


def _throughput(settings: Settings, args: argparse.Namespace) -> None:
    tag = uuid.uuid4().hex[:8]
    source = f"bench-in-{tag}"
    _create(settings, source, args.partitions)
    print(
        f"producing {args.count:,} sample events into {source} ({args.partitions} partitions)",
        flush=True,
    )
    produced = produce_samples(
        settings,
        source,
        count=args.count,
        seed=42,
        spec=SampleSpec(base_time_ms=int(time.time() * 1000)),
    )
    print(f"  produced at {produced.total / produced.seconds:,.0f} events/s", flush=True)

    baseline: list[dict[str, float]] = []
    worker: list[dict[str, float]] = []
    for run in range(1, args.repeats + 1):
        out = f"bench-copy-{tag}-{run}"
        _create(settings, out, args.partitions)
        baseline.append(_run_baseline(settings, source, out, f"bench-base-{tag}-{run}", args.count))
        _report(f"run {run} baseline", baseline[-1])
        decisions = f"bench-decisions-{tag}-{run}"
        _create(settings, decisions, args.partitions)
        _create(settings, f"{decisions}.dlq", args.partitions)
        worker.append(_run_worker(settings, source, decisions, f"bench-worker-{tag}-{run}"))
        _report(f"run {run} worker  ", worker[-1])

    base_rate = statistics.median(r["events"] / r["busy_seconds"] for r in baseline)
    work_rate = statistics.median(r["events"] / r["busy_seconds"] for r in worker)
    print()
    print(
        f"baseline (pass-through) median: {base_rate:,.0f} events/s, "
        f"peak RSS {statistics.median(r['peak_rss_mb'] for r in baseline):.0f} MiB"
    )
    print(
        f"worker                  median: {work_rate:,.0f} events/s, "
        f"peak RSS {statistics.median(r['peak_rss_mb'] for r in worker):.0f} MiB"
    )
    print(
        f"ratio worker / baseline: {work_rate / base_rate:.2f}  (goal >= 0.60; >= 50,000 events/s)"
    )


def _report(label: str, result: dict[str, float]) -> None:
    rate = result["events"] / result["busy_seconds"]
    print(
        f"  {label}: {result['events']:,.0f} events in {result['busy_seconds']:.2f}s = {rate:,.0f} events/s, "
        f"peak RSS {result['peak_rss_mb']:.0f} MiB",
        flush=True,
    )


def _run_baseline(
    settings: Settings, source: str, out: str, group: str, count: int
) -> dict[str, float]:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "passthrough.py"),
            "--input",
            source,
            "--output",
            out,
            "--group",
            group,
            "--count",
            str(count),
        ],
        env=_env(settings),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


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


def _run_worker(settings: Settings, source: str, decisions: str, group: str) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-m", "consumer", "run", "--until-idle", "3"],
        env=_worker_env(settings, source, decisions, group),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    for line in reversed(result.stderr.splitlines()):
        if '"worker stopped"' in line:
            stopped = json.loads(line)
            return {k: float(stopped[k]) for k in ("events", "busy_seconds", "peak_rss_mb")}
    raise RuntimeError("worker printed no summary:\n" + result.stderr[-2000:])


def _env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "IMPORT_CLOSURE_KAFKA_BOOTSTRAP_SERVERS": settings.kafka["bootstrap.servers"],
        "IMPORT_CLOSURE_LOG_LEVEL": "INFO",
    }


def _latency(settings: Settings, args: argparse.Namespace) -> None:
    tag = uuid.uuid4().hex[:8]
    source, decisions = f"lat-in-{tag}", f"lat-decisions-{tag}"
    _create(settings, source, args.partitions)
    # LogAppendTime: the decision's timestamp is when the broker appended it, i.e. acknowledged it.
    _create(settings, decisions, args.partitions, **{"message.timestamp.type": "LogAppendTime"})
    _create(settings, f"{decisions}.dlq", args.partitions)
    count = int(args.latency_rate * args.latency_seconds)
    env = _worker_env(settings, source, decisions, f"lat-{tag}")
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
    print(f"\nlatency phase: {count:,} events at {args.latency_rate:,.0f}/s", flush=True)
    now_ms = int(time.time() * 1000)
    step = 1000 / args.latency_rate
    produce_samples(
        settings,
        source,
        count=count,
        seed=99,
        rate=args.latency_rate,
        spec=SampleSpec(base_time_ms=now_ms, step_ms=step),
    )
    worker.communicate(timeout=300)
    latencies = sorted(_decision_latencies_ms(settings, decisions))
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"decision latency (event_time → decision appended): p50 {p50:.0f} ms, p99 {p99:.0f} ms "
        f"over {len(latencies):,} decisions"
    )


def _decision_latencies_ms(settings: Settings, topic: str) -> list[float]:
    codec = AvroCodec()
    consumer = Consumer(
        config.plain_consumer_conf(
            settings, group_id=f"lat-read-{uuid.uuid4().hex[:6]}", enable_partition_eof=True
        )
    )
    try:
        partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        eof: set[int] = set()
        out: list[float] = []
        while len(eof) < len(partitions):
            for m in consumer.consume(num_messages=5000, timeout=1):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        eof.add(cast(int, m.partition()))
                    continue
                decision = codec.decode_decision(m.value())
                out.append(m.timestamp()[1] - decision.event_time_ms)
        return out
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
