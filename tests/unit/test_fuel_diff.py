"""tools/fuel_diff.py: smith modules' fuel accounting on wasmjit against wasmtime-py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

import fuel_diff  # noqa: E402


def test_a_few_smith_modules_use_fuel_as_in_wasmtime(tmp_path: Path, capsys) -> None:
    """interp and jit: the two code generators (tiered and unicorn run their code; test_fuel
    compares all four tiers with wasmtime)."""
    code = fuel_diff.main(["--modules", "12", "--seed", "5150", "--tiers", "interp,jit",
                           "--out", str(tmp_path), "--workers", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    compared = int(out.split()[0])
    assert compared >= 8 and f"{compared} agree, 0 differ" in out
