"""Hostile policy files and JSON Lines, shared by the loader, codec and command-line tests.

Each entry is (id, bytes). None of them is a valid policy or listing; every one once crashed, hung
or ate memory. They are built here rather than stored, so the big ones cost no repository space.
"""

from __future__ import annotations

import copy
import json

from tests.unit.listings import MINIMAL_JSON

#: A valid policy head; hostile cases append or substitute one part.
HEAD = (
    "policy: hostile\n"
    'version: "1"\n'
    "clusters:\n"
    "  fashion: {category_paths: [[Fashion]]}\n"
    "fx: {base: USD, rates: {USD: 1, IDR: 0.0000625}}\n"
)
RULE = "  - {id: r1, effect: reject, reason: CLOSED, when: {cluster_in: [fashion]}}\n"


def _policy(rules: str) -> bytes:
    return (HEAD + "rules:\n" + rules).encode()


def _rule_with(field: str) -> bytes:
    """One reject rule with one extra `key: value` line, written in block style."""
    return (
        HEAD + "rules:\n  - id: r1\n    effect: reject\n    reason: CLOSED\n"
        "    when: {cluster_in: [fashion]}\n"
        f"    {field}\n"
    ).encode()


def _alias_bomb() -> bytes:
    """Billion laughs under attribute_equals: nine levels of nine aliases, about 650 bytes of YAML."""
    levels = "".join(
        f"        a{level}: &a{level} ["
        + ",".join(['"lol"'] * 9 if level == 0 else [f"*a{level - 1}"] * 9)
        + "]\n"
        for level in range(9)
    )
    return (
        HEAD + "rules:\n  - id: r1\n    effect: reject\n    reason: CLOSED\n    when:\n"
        "      attribute_equals:\n" + levels
    ).encode()


#: Policy files that must each give `path: message` problems, never a traceback or a hang.
POLICY_CASES: list[tuple[str, bytes]] = [
    ("nesting-1000", b"policy: p\nversion: v\nrules: " + b"[" * 1000 + b"]" * 1000 + b"\n"),
    ("nesting-100k", b"policy: p\nversion: v\nrules: " + b"[" * 100_000 + b"]" * 100_000 + b"\n"),
    ("nesting-mapping", b"policy: p\nversion: v\nrules: " + b"{a: " * 1000 + b"1" + b"}" * 1000),
    ("latin-1", _policy(RULE).replace(b'"1"', '"caf\u00e9"'.encode("latin-1"))),
    ("utf-16", _policy(RULE).decode().encode("utf-16")),
    ("random-bytes", bytes(range(256)) * 4),
    ("nul-byte", _policy(RULE).replace(b"hostile", b"host\x00ile")),
    ("control-char", _policy(RULE).replace(b"hostile", b"host\x07ile")),
    ("year-zero", _rule_with("effective_from: 0000-01-01")),
    ("february-30", _rule_with("effective_from: 2021-02-30")),
    ("offset-99-hours", _rule_with("effective_from: 2021-08-03T10:00:00+99:00")),
    ("explicit-timestamp-tag", _rule_with("effective_from: !!timestamp 2021-02-30")),
    ("int-5000-digits", _rule_with("effective_from: " + "9" * 5000)),
    ("hex-int-5000-digits", _policy(RULE).replace(b'"1"', b"0x" + b"f" * 5000)),
    ("fx-rate-400-digits", _policy(RULE).replace(b"IDR: 0.0000625", b"IDR: " + b"9" * 400)),
    ("fx-rate-32-digits", _policy(RULE).replace(b"IDR: 0.0000625", b"IDR: " + b"9" * 32)),
    ("fx-rate-1e300", _policy(RULE).replace(b"IDR: 0.0000625", b"IDR: 1.0e+300")),
    ("fx-rate-tiny-float", _policy(RULE).replace(b"IDR: 0.0000625", b"IDR: 1.0e-400")),
    ("lone-surrogate", (HEAD + 'description: "bad \\ud800 text"\nrules:\n' + RULE).encode()),
    ("surrogate-key", (HEAD + 'rules:\n  - {id: r1, "\\udfff": 1}\n').encode()),
    ("alias-bomb", _alias_bomb()),
    ("empty-rules-null", (HEAD + "rules:\n").encode()),
]


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def listing_line(**changes: object) -> str:
    """One valid listing as a JSON line, with fields replaced or (value None) removed."""
    listing: dict[str, object] = copy.deepcopy(MINIMAL_JSON)
    listing.update(changes)
    return json.dumps(listing)
