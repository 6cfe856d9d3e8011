"""Policies shipped inside the package, read with importlib.resources (the package's only file access)."""

from __future__ import annotations

from importlib import resources
from typing import Final

from consumer.errors import PolicyError

#: Names of the bundled policies; the first is the default used when no --policy is given.
BUNDLED_POLICIES: Final = ("id-akar-import-closure", "permendag-31-2023")


def bundled_policy_text(name: str = "id-akar-import-closure") -> str:
    """YAML text of one bundled policy, for load_policy."""
    if name not in BUNDLED_POLICIES:
        msg = f"unknown bundled policy {name!r}; bundled: {', '.join(BUNDLED_POLICIES)}"
        raise PolicyError([msg], f"<bundled {name}>")
    folder = resources.files("consumer").joinpath("data", "policies")
    return folder.joinpath(f"{name}.yaml").read_text(encoding="utf-8")
