"""Fixtures for tests/deploy: rendered Kubernetes manifests, parsed rule and dashboard files."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy.tools import DEPLOY, kustomize_build

KUSTOMIZATIONS = {
    "base": DEPLOY / "k8s" / "base",
    "example": DEPLOY / "k8s" / "overlays" / "example",
}
RULES = DEPLOY / "prometheus" / "rules.yaml"


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every kustomization rendered once per session: name -> objects."""
    return {name: kustomize_build(path) for name, path in KUSTOMIZATIONS.items()}


@pytest.fixture(scope="session")
def rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    return groups
