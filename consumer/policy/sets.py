"""Policy sets: several policy files (layers) enforced together, e.g. a marketplace's own closures
and a regulation, each evaluated on its own; the most severe layer outcome wins.

Each layer keeps its own languages: its reasons' `message` is in that layer's default_language
and `messages` holds that layer's translations, so a layer's owner writes its texts once and a
set never rewrites them. Layers with different default languages are valid; validate-policy
warns, because the reasons of one decision may then mix languages in `message`.

A set file names its layers; it never reads them (this package does no file I/O): the caller
reads each layer's bytes (consumer.service.policy_watch) and hands them to `load_set`, or says
why it could not (`Unreadable`). Sets do not nest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

from consumer.core.records import Exemption, Listing, ListingRow, Reason, Verdict
from consumer.errors import PolicyError
from consumer.policy.compile import CompiledPolicy, compile_policy, content_hash
from consumer.policy.evaluate import VerdictKey, scan, verdict_of
from consumer.policy.lists import ReadListFile
from consumer.policy.load import load_policy
from consumer.policy.model import PolicyModel
from consumer.policy.problems import Problems
from consumer.policy.yamldoc import parse_document

#: The top-level key that makes a YAML file a policy set rather than a policy.
SET_KEY: Final = "policy_set"
#: Layers per set. Every layer is a full evaluation per event (32 layers cost about 32 policies),
#: and a real set has one layer per owner of rules (a marketplace, a regulator or two): 32 is
#: far above that and keeps a generated or hostile set from multiplying the per-event cost.
MAX_LAYERS: Final = 32
#: Outcome severity: the set's outcome is the most severe of its layers'.
SEVERITY: Final = {"APPROVED": 0, "REVIEW": 1, "REJECTED": 2}

_SET_KEYS = {SET_KEY, "version", "description", "layers"}


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A layer file the caller could not read, and why (`no such file`, `not a regular file`, ...)."""

    message: str


@dataclass(frozen=True, slots=True)
class SetFile:
    """A validated set file: its id, version, and the layer paths as written (relative to it)."""

    set_id: str
    version: str
    paths: tuple[str, ...]
    description: str | None = None


def is_policy_set(raw: bytes | str) -> bool:
    """Whether a file is a policy set: a YAML mapping with a top-level `policy_set` key.

    A file that does not even contain the word is a policy without parsing it twice; a file that
    does not parse is not a set (load_policy then reports why).
    """
    found = SET_KEY in raw if isinstance(raw, str) else SET_KEY.encode() in raw
    if not found:
        return False
    try:
        data = parse_document(raw).data
    except PolicyError:
        return False
    return isinstance(data, dict) and SET_KEY in data


def parse_set(raw: bytes | str, source: str = "<policy set>") -> SetFile:
    """Validate a set file (not its layers); PolicyError naming every problem by its path."""
    document = parse_document(raw, source)
    problems = Problems(document.duplicates, document.more_duplicates)
    data = document.data
    if not isinstance(data, dict):
        problems.fail("(top level)", "expected a mapping of policy set keys")
        raise PolicyError(problems.listed(), source)
    problems.keys("", data, _SET_KEYS, required=(SET_KEY, "version", "layers"))
    set_id = problems.ident(SET_KEY, data[SET_KEY]) if SET_KEY in data else None
    version = problems.text("version", data["version"]) if "version" in data else None
    description = problems.text("description", data.get("description"), optional=True)
    paths = _layer_paths(problems, data.get("layers")) if "layers" in data else ()
    if problems.total or set_id is None or version is None:
        raise PolicyError(problems.listed(), source)
    return SetFile(set_id, version, paths, description)


def _layer_paths(problems: Problems, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        problems.fail("layers", "expected a non-empty list of {path: FILE}")
        return ()
    if len(value) > MAX_LAYERS:
        msg = f"{len(value):,} layers; a set has at most {MAX_LAYERS} (each is evaluated per event)"
        problems.fail("layers", msg)
        return ()
    paths: list[str] = []
    for i, item in enumerate(value):
        where = f"layers[{i}]"
        data = problems.mapping(where, item)
        if data is None:
            continue
        problems.keys(where, data, {"path"}, required=("path",))
        path = problems.text(f"{where}.path", data["path"]) if "path" in data else None
        if path is None:
            continue
        if path in paths:
            problems.fail(f"{where}.path", f"{path!r} is already layers[{paths.index(path)}]")
        paths.append(path)
    return tuple(paths)


@dataclass(frozen=True, slots=True, eq=False)
class CompiledSet:
    """A policy set ready to evaluate (consumer.policy.enforced.Enforced).

    Its scan key is the tuple of its layers' scan keys and its verdict a pure function of that
    key, so the pipeline keeps one verdict per distinct key, as for a single policy. `timezone`
    (for --as-of, --from and --to dates) is the first layer's.
    """

    policy_id: str
    version: str
    timezone: str
    tz: ZoneInfo
    layers: tuple[CompiledPolicy, ...]
    #: Each layer's path as the set file writes it.
    paths: tuple[str, ...]
    description: str | None = None

    def scan(self, listing: Listing | ListingRow, as_of_ms: int | None = None) -> Hashable:
        return tuple([scan(listing, layer, as_of_ms) for layer in self.layers])

    def verdict_of(self, key: Hashable) -> Verdict:
        keys: tuple[VerdictKey, ...] = key  # type: ignore[assignment]  # a key of self.scan
        return combine([verdict_of(k, layer) for k, layer in zip(keys, self.layers, strict=True)])

    def where(self, index: int) -> str:
        """`layers[1] (permendag.yaml)`: how messages name a layer."""
        return f"layers[{index}] ({self.paths[index]})"

    def language_warnings(self) -> tuple[str, ...]:
        """A warning when layers name different default languages."""
        defaults = [
            (i, layer.model.default_language)
            for i, layer in enumerate(self.layers)
            if layer.model.default_language is not None
        ]
        if len({tag for _, tag in defaults}) < 2:
            return ()
        named = ", ".join(f"{self.where(i)} {tag}" for i, tag in defaults)
        return (
            f"layers: the layers' default languages differ ({named}), so the reasons of one "
            "decision may mix languages in `message`; read `messages` (or check --lang) for one "
            "language",
        )


def combine(verdicts: Sequence[Verdict]) -> Verdict:
    """The set's verdict: the most severe layer outcome, the reasons of the layers that give it,
    every layer's matched rules and exemptions, in layer order; the first layer's cross-border
    flag (every layer computes it alike), the first cluster any layer's taxonomy found, and the
    fx used by the first layer giving the outcome whose price rule is among the reasons."""
    outcome = max((v.outcome for v in verdicts), key=SEVERITY.__getitem__)
    reasons: list[Reason] = []
    matched: list[str] = []
    exemptions: list[Exemption] = []
    cluster = None
    fx = None
    for v in verdicts:
        if v.outcome == outcome:
            reasons.extend(v.reasons)
            fx = fx or v.fx
        matched.extend(v.matched_rules)
        exemptions.extend(v.exemptions)
        if cluster is None:
            cluster = v.cluster
    cross_border = verdicts[0].cross_border
    return Verdict(
        outcome, tuple(reasons), tuple(matched), cluster, cross_border, tuple(exemptions), fx
    )


def load_set(
    raw: bytes | str,
    source: str,
    layers: Sequence[bytes | Unreadable],
    list_reader: Callable[[str], ReadListFile] | None = None,
) -> CompiledSet:
    """Validate a set file and its layers (the bytes of each path of the set, in order) and
    compile them; PolicyError with every problem, a layer's prefixed `layers[1] (path): `.
    `list_reader(path)` reads the list files of the layer at `path` (relative to that layer);
    without it a layer that names one is refused, as load_policy refuses it."""
    set_file = parse_set(raw, source)
    problems = Problems()
    models: list[tuple[str, PolicyModel]] = []
    for i, path in enumerate(set_file.paths):
        where = f"layers[{i}] ({path})"
        layer = layers[i] if i < len(layers) else Unreadable("not read")
        if isinstance(layer, Unreadable):
            problems.fail(where, layer.message)
        elif is_policy_set(layer):
            msg = "is a policy set, and sets do not nest: list its layers in this set instead"
            problems.fail(where, msg)
        else:
            try:
                read_file = None if list_reader is None else list_reader(path)
                models.append((path, load_policy(layer, path, read_file)))
            except PolicyError as exc:
                for problem in exc.problems:
                    problems.fail(where, problem)
    if not problems.total:
        _unique_rule_ids(problems, models)
    if problems.total:
        raise PolicyError(problems.listed(), source)
    compiled = tuple(compile_policy(model) for _, model in models)
    canonical = json.dumps(
        {
            SET_KEY: set_file.set_id,
            "version": set_file.version,
            "description": set_file.description,
            "layers": [{"path": p, "content": content_hash(m)} for p, m in models],
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return CompiledSet(
        policy_id=set_file.set_id,
        version=f"{set_file.version}+{digest[:8]}",
        timezone=compiled[0].timezone,
        tz=compiled[0].tz,
        layers=compiled,
        paths=set_file.paths,
        description=set_file.description,
    )


def _unique_rule_ids(problems: Problems, models: Sequence[tuple[str, PolicyModel]]) -> None:
    """A rule id names one rule across the whole set: reasons and metrics carry only the id."""
    first: dict[str, str] = {}
    for i, (path, model) in enumerate(models):
        for r, rule in enumerate(model.rules):
            here = f"layers[{i}] ({path}).rules[{r}].id"
            if rule.id in first and not first[rule.id].startswith(f"layers[{i}] "):
                problems.fail(here, f"duplicate rule id {rule.id!r} (first at {first[rule.id]})")
            else:
                first.setdefault(rule.id, here)
