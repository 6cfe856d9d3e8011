"""A policy with many title phrases, for measuring title_contains_any against the same policy
without them: the bundled default policy plus one review rule whose `when` is only
`title_contains_any: {list: phrases}` (every in-scope title is scanned: the worst case), the
list being the bundled set's closed-goods phrases and generated two-word phrases up to COUNT.

    .venv/bin/python bench/text_policy.py --phrases 10000 --out DIR   # prints the policy path

Used by throughput.py --text-phrases and micro.py --text-phrases. Not a test.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from consumer.policy import bundled_policy_text

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "consumer/data/policies/indonesia-cross-border/closed-goods-2021-08.txt"
_SYLLABLES = ("ba", "ti", "ka", "ke", "ri", "pik", "so", "ng", "ket", "ta", "nun", "lu", "rik")
_RULE = """
  - id: closed-goods-in-title
    effect: review
    reason: IMPORT_CLOSED_GOODS_IN_TITLE
    message: The title names closed goods
    when:
      title_contains_any: {list: phrases}
"""


def phrases(count: int, seed: int = 16) -> list[str]:
    """The real closed-goods phrases, then generated distinct two-word phrases up to `count`."""
    real = [line.split("#", 1)[0].strip() for line in REAL.read_text(encoding="utf-8").splitlines()]
    out = list(dict.fromkeys(p for p in real if p))
    seen = set(out)
    rng = random.Random(seed)
    while len(out) < count:
        words = [
            "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(2)
        ]
        phrase = " ".join(words)
        if phrase not in seen:
            seen.add(phrase)
            out.append(phrase)
    return out[:count]


def write_text_policy(folder: Path, count: int) -> Path:
    """The default policy with the phrase rule and its list file, written into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "phrases.txt").write_text("\n".join(phrases(count)) + "\n", encoding="utf-8")
    base = bundled_policy_text()
    head, rules = base.split("\nrules:\n", 1)
    lists = "\nlists:\n  phrases:\n    - {effective_from: 2021-08-03, file: phrases.txt}\n"
    text = head.replace('version: "2021.08"', f'version: "2021.08-text{count}"')
    path = folder / f"text-{count}.yaml"
    path.write_text(f"{text}{lists}\nrules:\n{rules.rstrip()}\n{_RULE}", encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phrases", type=int, default=10_000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(write_text_policy(args.out, args.phrases))


if __name__ == "__main__":
    main()
