"""Shared fixtures: every test that executes wasm takes ``tier`` and so runs on every tier."""

from __future__ import annotations

import pytest

import wasmjit
from wasmjit.api import AVAILABLE_TIERS


@pytest.fixture(params=AVAILABLE_TIERS)
def tier(request: pytest.FixtureRequest) -> str:
    """Each available execution tier in turn."""
    return request.param


@pytest.fixture
def engine(tier: str) -> wasmjit.Engine:
    config = wasmjit.Config()
    config.tier = tier
    return wasmjit.Engine(config)


@pytest.fixture
def store(engine: wasmjit.Engine) -> wasmjit.Store:
    return wasmjit.Store(engine)
