"""The command line as a subprocess, with no IMPORT_CLOSURE_* variable from the caller's
environment, and the paths the command-line tests read. No broker needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "consumer" / "data" / "samples" / "listings.jsonl"
POLICIES = ROOT / "consumer" / "data" / "policies"

#: Nothing listens on port 1 of the loopback address: every connection is refused at once.
CLOSED = {"IMPORT_CLOSURE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}


def run(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IMPORT_CLOSURE_")}
    return subprocess.run(
        [sys.executable, "-m", "consumer", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**clean, **(env or {})},
        timeout=60,
        check=False,
    )
