"""Throughput of the policy impact tools: `diff` on a file and `replay` against a broker.

    .venv/bin/python bench/impact.py [--count 1000000] [--seed 1] [--partitions 6]
    IMPORT_CLOSURE_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:39592 .venv/bin/python bench/impact.py

Generates COUNT sample listings (consumer/sample.py, event times spread over 2021-2024) and:

- diff: writes them as JSON Lines and times `import-closure diff --format json` of the bundled
  policy against a candidate that also closes cross-border electronics (text parsing included);
- replay: produces them to fresh uuid-named topics, then times `import-closure replay` twice in
  fresh runs, publishing every decision, then only the changed ones (`--changed-only`).

Each figure is listings/s over the command's wall time (start-up included) and its CPU seconds.
The broker is the one IMPORT_CLOSURE_KAFKA_BOOTSTRAP_SERVERS names; without it, replay is skipped.
Not a test.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from consumer import config  # noqa: E402
from consumer.codec import listing_to_json  # noqa: E402
from consumer.core.sample import SampleSpec, candidate_policy_text, generate  # noqa: E402
from consumer.kafka.clients import create_topics  # noqa: E402
from consumer.kafka.sample_producer import produce_samples  # noqa: E402

SPEC = SampleSpec(base_time_ms=1_609_459_200_000, step_ms=90.0)  # 2021-01-01, 1M over ~1 day
LIVE = ROOT / "consumer" / "data" / "policies" / "id-akar-import-closure.yaml"


def _candidate(directory: Path) -> Path:
    path = directory / "candidate.yaml"
    path.write_text(candidate_policy_text())
    return path


def _timed(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + sys of the child) and stdout of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "consumer", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{args[0]} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result.stdout


def _line(what: str, count: int, wall: float, cpu: float) -> None:
    print(
        f"{what:<28} {count:>10,} listings  {wall:8.1f} s  {count / wall:>10,.0f} listings/s  "
        f"cpu {cpu:7.1f} s  {count / cpu if cpu else 0:>10,.0f} listings/cpu-s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=6)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items()}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        candidate = _candidate(directory)
        listings = directory / "listings.jsonl"
        with listings.open("w") as out:
            for x in itertools.islice(generate(args.seed, SPEC), args.count):
                out.write(json.dumps(listing_to_json(x), ensure_ascii=False) + "\n")
        clean = {k: v for k, v in env.items() if not k.startswith("IMPORT_CLOSURE_")}
        wall, cpu, out_text = _timed(
            ["diff", "--candidate", str(candidate), "--format", "json", str(listings)], clean
        )
        report = json.loads(out_text)
        _line("diff (file)", report["listings"], wall, cpu)
        print(f"  changed {report['changed']:,}: {report['transitions']}")
        if not env.get("IMPORT_CLOSURE_KAFKA_BOOTSTRAP_SERVERS"):
            print("replay: skipped (set IMPORT_CLOSURE_KAFKA_BOOTSTRAP_SERVERS to a broker)")
            return
        _replay(args, env, candidate)


def _replay(args: argparse.Namespace, env: dict[str, str], candidate: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    settings = replace(
        config.load(env=env),
        group_id=f"bench-impact-{tag}",
        input_topic=f"bench-impact-{tag}",
        approved_topic=f"bench-impact-{tag}-decisions",
        rejected_topic=f"bench-impact-{tag}-decisions",
        dlq_topic=f"bench-impact-{tag}.dlq",
        topic_partitions=args.partitions,
    )
    create_topics(settings)
    produce_samples(settings, settings.input_topic, count=args.count, seed=args.seed, spec=SPEC)
    topic_env = {
        **env,
        "IMPORT_CLOSURE_GROUP_ID": settings.group_id,
        "IMPORT_CLOSURE_INPUT_TOPIC": settings.input_topic,
        "IMPORT_CLOSURE_APPROVED_TOPIC": settings.approved_topic,
        "IMPORT_CLOSURE_REJECTED_TOPIC": settings.rejected_topic,
        "IMPORT_CLOSURE_DLQ_TOPIC": settings.dlq_topic,
        "IMPORT_CLOSURE_LOG_LEVEL": "WARNING",
    }
    runs = [
        ("replay (all published)", ["--name", "all"]),
        (
            "replay --changed-only",
            ["--name", "changed", "--changed-only", "--baseline", str(LIVE)],
        ),
    ]
    for what, extra in runs:
        wall, cpu, out = _timed(
            ["replay", "--policy", str(candidate), "--as-of", "now", "--no-progress", *extra],
            topic_env,
        )
        _line(what, args.count, wall, cpu)
        print("  " + out.splitlines()[0])


if __name__ == "__main__":
    main()
