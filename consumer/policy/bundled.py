"""Policies shipped inside the package, read with importlib.resources (the package's only file access)."""

from __future__ import annotations

import posixpath
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Final

from consumer.errors import PolicyError
from consumer.policy.compile import CompiledPolicy, compile_policy
from consumer.policy.lists import MAX_LIST_FILE_BYTES, ReadListFile
from consumer.policy.load import load_policy
from consumer.policy.sets import CompiledSet, Unreadable, load_set, parse_set
from consumer.policy.yamldoc import MAX_POLICY_BYTES

#: Names of the bundled policies; the first is the default used when no --policy is given.
BUNDLED_POLICIES: Final = ("id-akar-import-closure", "permendag-31-2023")
#: Names of the bundled policy sets: data/policies/NAME/set.yaml, its layers and list files.
BUNDLED_SETS: Final = ("indonesia-cross-border",)
#: `--policy bundled:NAME` (or IMPORT_CLOSURE_POLICY=bundled:NAME) names a bundled policy or set.
BUNDLED_PREFIX: Final = "bundled:"
_FOLDER: Final = "data/policies"


def bundled_policy_text(name: str = "id-akar-import-closure") -> str:
    """YAML text of one bundled policy, for load_policy."""
    if name not in BUNDLED_POLICIES:
        msg = f"unknown bundled policy {name!r}; bundled: {', '.join(BUNDLED_POLICIES)}"
        raise PolicyError([msg], f"<bundled {name}>")
    return _resource(f"{_FOLDER}/{name}.yaml").read_text(encoding="utf-8")


def bundled_name(policy: object) -> str | None:
    """NAME when `policy` (a --policy value or setting, as str or Path) is `bundled:NAME`."""
    text = str(policy)
    return text[len(BUNDLED_PREFIX) :] if text.startswith(BUNDLED_PREFIX) else None


def load_bundled(name: str) -> CompiledPolicy | CompiledSet:
    """A bundled policy or policy set by name, compiled; PolicyError naming the known ones."""
    if name in BUNDLED_POLICIES:
        return compile_policy(load_policy(bundled_policy_text(name), f"<bundled {name}>"))
    return load_bundled_set(name)


def bundled_set_path(name: str) -> str:
    """Where a bundled set file lives inside the package (`data/policies/NAME/set.yaml`)."""
    return f"{_FOLDER}/{name}/set.yaml"


def load_bundled_set(name: str) -> CompiledSet:
    """A bundled policy set compiled with its layers and list files, all read as package data
    (so it works from a wheel or a zip too); PolicyError if the name is unknown or it is invalid."""
    source = f"<bundled {name}>"
    if name not in BUNDLED_SETS:
        known = ", ".join(BUNDLED_POLICIES + BUNDLED_SETS)
        raise PolicyError([f"unknown bundled policy set {name!r}; bundled: {known}"], source)
    set_path = bundled_set_path(name)
    raw = _resource(set_path).read_bytes()
    folder = posixpath.dirname(set_path)
    layers = [_read(posixpath.join(folder, p), MAX_POLICY_BYTES) for p in parse_set(raw).paths]

    def list_reader(layer: str) -> ReadListFile:
        layer_folder = posixpath.dirname(posixpath.join(folder, layer))

        def read(list_file: str) -> bytes:
            data = _read(posixpath.join(layer_folder, list_file), MAX_LIST_FILE_BYTES)
            if isinstance(data, Unreadable):
                raise FileNotFoundError(data.message)
            return data

        return read

    return load_set(raw, source, layers, list_reader)


def bundled_tests_path(name: str) -> str:
    """Where the test file shipped with a bundled policy or set lives inside the package:
    `data/policies/NAME.tests.yaml`, or `data/policies/NAME/set.tests.yaml` for a set."""
    if name in BUNDLED_SETS:
        return f"{_FOLDER}/{name}/set.tests.yaml"
    if name in BUNDLED_POLICIES:
        return f"{_FOLDER}/{name}.tests.yaml"
    known = ", ".join(BUNDLED_POLICIES + BUNDLED_SETS)
    raise PolicyError([f"unknown bundled policy {name!r}; bundled: {known}"], f"<bundled {name}>")


def bundled_tests(name: str) -> bytes:
    """The test file shipped with a bundled policy or set (`test-policy bundled:NAME` runs it)."""
    return _resource(bundled_tests_path(name)).read_bytes()


def _resource(path: str) -> Traversable:
    """The package resource at `path`, a posix path under consumer/ (`..` resolved first)."""
    node = resources.files("consumer")
    for part in posixpath.normpath(path).split("/"):
        node = node.joinpath(part)
    return node


def _read(path: str, limit: int) -> bytes | Unreadable:
    """At most one byte over `limit`, so the loaders can refuse an oversized file."""
    node = _resource(path)
    if not node.is_file():
        return Unreadable(f"no such bundled file: {posixpath.normpath(path)}")
    return node.read_bytes()[: limit + 1]
