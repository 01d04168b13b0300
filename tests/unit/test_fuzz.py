"""``wasmjit fuzz`` (smith mode): a short clean run, determinism, and the finding path (shrink with
``wasm-tools shrink`` + write + reproducer) on a finding injected into one tier's worker."""

from __future__ import annotations

import argparse
import io
import os
import textwrap
from pathlib import Path

import pytest

from wasmjit import api, cli, difftest
from wasmjit.fuzz import smith
from wasmjit.wat import wat2wasm

TIERS = list(api.AVAILABLE_TIERS)


def test_short_run_finds_nothing_and_reports_progress(tmp_path: Path, capsys) -> None:
    out_dir = tmp_path / "crashes"
    code = cli.main(["fuzz", "--seconds", "5", "--seed", "1", "--tiers", ",".join(TIERS),
                     "--out", str(out_dir)])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert f"fuzzing {', '.join(TIERS)} against wasmtime for 5 s (seed 1)" in err
    progress = [line for line in err.splitlines() if line.startswith("[")][-1]
    assert "modules (" in progress and "/s)" in progress and "findings: 0" in progress
    modules = int(progress.split("]")[1].split()[0])
    assert modules > 0
    for engine in [*TIERS, "wasmtime"]:
        assert f"{engine} {modules}" in progress  # every engine ran every module
    assert not out_dir.exists()  # nothing found, nothing written


def test_seed_stream_is_deterministic() -> None:
    a, b, c = smith.seed_stream(7), smith.seed_stream(7), smith.seed_stream(8)
    first = [next(a) for _ in range(5)]
    assert first == [next(b) for _ in range(5)]
    assert first != [next(c) for _ in range(5)]
    assert all(1024 <= len(seed) <= 32 * 1024 for seed, _flags, _compile_only in first)


def test_generated_modules_are_wasm2_with_fuel_exported(tmp_path: Path) -> None:
    module = tmp_path / "m.wasm"
    seeds = smith.seed_stream(3)
    made = 0
    for _ in range(8):
        seed, flags, compile_only = next(seeds)
        if not compile_only and smith.smith(seed, module, flags):
            made += 1
            assert smith.export_fuel(module)
            exports = {e.name for e in api.Module.from_file(api.Engine(), module).exports}
            assert difftest.FUEL_GLOBAL in exports
    assert made


INJECT = """
import os

if os.environ.get("WASMJIT_TEST_BAD_TIER"):  # a test's fake bug: i32 results of one tier are off
    from wasmjit import difftest

    _tier, _real = os.environ["WASMJIT_TEST_BAD_TIER"], difftest.WasmjitAdapter.call

    def _call(self, store, func, params, args):
        results = _real(self, store, func, params, args)
        if self.tier == _tier:
            results = ["i32:12345" if r.startswith("i32:") else r for r in results]
        return results

    difftest.WasmjitAdapter.call = _call
"""

MODULE = """
(module
  (memory (export "memory") 1 1)
  (global $counter (export "counter") (mut i64) (i64.const 0))
  (data (i32.const 0) "some bytes that make this module bigger than it needs to be")
  (func (export "mix") (param f64 i64) (result f64)
    (global.set $counter (i64.add (global.get $counter) (local.get 1)))
    (f64.add (local.get 0) (f64.convert_i64_s (local.get 1))))
  (func (export "store") (param i32)
    (i32.store (i32.const 64) (i32.mul (local.get 0) (i32.const 3))))
  (func (export "answer") (result i32) (i32.const 42))
  (func (export "loop") (param i64) (result i64) (local $i i64)
    (loop $l
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (i64.and (local.get 0) (i64.const 15)))))
    (local.get $i)))
"""


@pytest.fixture
def bad_tier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """One tier answers every i32 result with 12345, here (forked workers) and in the processes
    the shrink predicate starts (a sitecustomize on PYTHONPATH)."""
    tier = TIERS[0]
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(INJECT))
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(site) + (os.pathsep + path if path else ""))
    monkeypatch.setenv("WASMJIT_TEST_BAD_TIER", tier)
    real = difftest.WasmjitAdapter.call

    def call(self, store, func, params, args):
        results = real(self, store, func, params, args)
        return ["i32:12345" if r.startswith("i32:") else r for r in results] if self.tier == tier else results

    monkeypatch.setattr(difftest.WasmjitAdapter, "call", call)
    return tier


def test_finding_is_shrunk_written_and_reproducible(tmp_path: Path, bad_tier: str) -> None:
    original = tmp_path / "candidate.wasm"
    original.write_bytes(wat2wasm(MODULE))
    comparison = difftest.compare_module(original, [bad_tier], launcher="fork", timeout=20)
    assert comparison.signature == f"call:{bad_tier}"
    out_dir = tmp_path / "crashes"
    args = argparse.Namespace(out=str(out_dir), no_shrink=False, shrink_attempts=4, timeout=20.0,
                              tier_up=None, seed=99)
    stats, log = smith.Stats(), io.StringIO()
    smith.record_finding(original, comparison, 17, [bad_tier], args, stats, log)

    [finding] = stats.findings
    assert finding.signature == f"call:{bad_tier}" and finding.shrunk
    written = finding.path
    assert written.parent == out_dir and written.suffix == ".wasm"
    assert written.stat().st_size < original.stat().st_size
    description = written.with_suffix(".txt").read_text()
    assert description.count("\n") == 1
    assert description.startswith(f"call:{bad_tier}: call ")
    assert "fuzz --seed 99, module #17, shrunk" in description
    assert "(module" in written.with_suffix(".wat").read_text()
    text = log.getvalue()
    assert f"reproduce: wasmjit diff {written} --tiers {bad_tier}" in text

    # the shrunk module still shows the finding, and only because of the injected bug
    again = difftest.compare_module(written, [bad_tier], launcher="fork", timeout=20)
    assert again.signature == f"call:{bad_tier}"
    assert smith.matches(again, f"call:{bad_tier}")

    # a second finding of the same kind is counted, not shrunk again
    smith.record_finding(original, comparison, 18, [bad_tier], args, stats, log)
    assert len(stats.findings) == 1 and stats.findings[0].duplicates == 1
    assert sorted(p.suffix for p in out_dir.iterdir()) == [".txt", ".wasm", ".wat"]


def test_shrunk_finding_agrees_without_the_bug(tmp_path: Path) -> None:
    module = tmp_path / "m.wasm"
    module.write_bytes(wat2wasm(MODULE))
    assert difftest.compare_module(module, TIERS, launcher="fork", timeout=20).agree


def test_mutate_flag_dispatches_to_the_mutate_module(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    seen = []
    fake = types.ModuleType("wasmjit.fuzz.mutate")
    fake.run = lambda args: seen.append(args) or 0
    monkeypatch.setitem(sys.modules, "wasmjit.fuzz.mutate", fake)
    import wasmjit.fuzz

    monkeypatch.setattr(wasmjit.fuzz, "mutate", fake, raising=False)
    assert cli.main(["fuzz", "--mutate", "--seconds", "1", "--seed", "4"]) == 0
    assert seen and seen[0].mutate and seen[0].seed == 4
