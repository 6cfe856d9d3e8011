"""The worker pins glibc's mmap threshold at start, unless the operator chose one."""

from __future__ import annotations

import platform

import pytest

from consumer.service.allocator import pin_mmap_threshold


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_pins_the_threshold_on_glibc() -> None:
    assert pin_mmap_threshold(env={}) is True


def test_an_operators_environment_setting_wins() -> None:
    assert pin_mmap_threshold(env={"MALLOC_MMAP_THRESHOLD_": "65536"}) is False
