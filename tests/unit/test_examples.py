"""examples/wasmtime_compat.py, a program written for wasmtime-py, prints exactly what it prints on
wasmtime-py when it runs on wasmjit (every tier, chosen by $WASMJIT_TIER)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wasmjit import api

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "wasmtime_compat.py"


def _run(*args: str, tier: str | None = None) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if tier is not None:
        env["WASMJIT_TIER"] = tier
    done = subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True, text=True,
                          env=env, timeout=300, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def on_wasmtime() -> str:
    out = _run("wasmtime")
    assert "wasm wrote: hello from wasm" in out and "TrapCode.OUT_OF_FUEL" in out
    return out


@pytest.mark.parametrize("tier", api.AVAILABLE_TIERS)
def test_wasmtime_program_runs_unchanged(tier: str, on_wasmtime: str) -> None:
    assert _run(tier=tier) == on_wasmtime
