"""Verify-before-install (Config.verify, ``run --verify``): new native code runs under Unicorn and
is compared with the interpreter before it is installed; the program never sees those runs."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import wasmjit
from wasmjit.errors import WasmjitError
from wasmjit.jit import codegen, verify
from wasmjit.jit.tier import VerificationWarning

MIX = """(module
  (memory (export "mem") 1)
  (global $g (export "g") (mut i32) (i32.const 5))
  (func $mix (export "mix") (param i32 i32) (result i32)
    (i32.store (i32.const 16) (i32.xor (local.get 0) (local.get 1)))
    (global.set $g (i32.add (global.get $g) (i32.const 1)))
    (i32.xor (local.get 0) (local.get 1)))
  (func (export "last") (result i32) (i32.load (i32.const 16))))"""


def verifying_store(calls: int = 5) -> wasmjit.Store:
    config = wasmjit.Config()
    config.tier = "tiered"
    config.verify = True
    config.tier_up_calls, config.tier_up_loops = calls, 1_000_000
    return wasmjit.Store(wasmjit.Engine(config))


def run_mix(store: wasmjit.Store, n: int = 20) -> tuple[list[int], int, int]:
    exports = wasmjit.Instance(store, wasmjit.Module(store.engine, MIX), []).exports(store)
    results = [exports["mix"](store, i, 3) for i in range(n)]
    return results, exports["g"].value(store), exports["last"](store)


EXPECTED = ([i ^ 3 for i in range(20)], 25, 19 ^ 3)


def test_correct_code_is_verified_and_installed() -> None:
    store = verifying_store()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run_mix(store) == EXPECTED  # verification left no trace in memory or the global
    mix = next(s for s in store.func_stats() if s.name == "mix")
    assert mix.tier == "jit"
    assert mix.verified.startswith("passed: 8 inputs")  # 5 recent calls, but only 3 kept + 5 edges


def test_an_injected_codegen_bug_is_caught_and_the_output_stays_correct(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codegen, "INJECTED_FAULT", "xor-as-or")
    assert run_mix(wasmjit.Store(wasmjit.Engine(_tiered(5)))) != EXPECTED  # unchecked: the bug shows
    store = verifying_store()
    with pytest.warns(VerificationWarning, match=r"native code of mix disagrees with the interpreter on "
                      r"mix\(\d+, 3\): native returned \[\d+\], interpreter returned \[\d+\]"):
        assert run_mix(store) == EXPECTED
    mix = next(s for s in store.func_stats() if s.name == "mix")
    assert (mix.tier, mix.entries) == ("interp", 20)
    assert mix.verified.startswith("FAILED: native code of mix disagrees")


def _tiered(calls: int) -> wasmjit.Config:
    config = wasmjit.Config()
    config.tier = "tiered"
    config.tier_up_calls, config.tier_up_loops = calls, 1_000_000
    return config


def test_memory_differences_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """A function whose result is right but whose memory writes are wrong is refused too."""
    monkeypatch.setattr(codegen, "INJECTED_FAULT", "xor-as-or")
    wat = """(module (memory 1)
      (func (export "f") (param i32) (result i32)
        (i32.store (i32.const 8) (i32.xor (local.get 0) (i32.const 6))) (local.get 0)))"""
    store = verifying_store(calls=2)
    f = wasmjit.Instance(store, wasmjit.Module(store.engine, wat), []).exports(store)["f"]
    with pytest.warns(VerificationWarning, match=r"memory 0 byte 0x8 is 0x\w+ natively, 0x\w+ interpreted"):
        assert [f(store, i) for i in range(4)] == [0, 1, 2, 3]


def test_growth_traps_and_host_calls_are_undone_or_skipped() -> None:
    wat = """(module
      (import "env" "log" (func $log (param i32)))
      (memory (export "mem") 1)
      (func $grow (export "grow") (param i32) (result i32)
        (memory.grow (i32.and (local.get 0) (i32.const 3))))
      (func $div (export "div") (param i32) (result i32) (i32.div_s (i32.const 100) (local.get 0)))
      (func $logged (export "logged") (param i32) (result i32) (call $log (local.get 0)) (local.get 0)))"""
    store = verifying_store(calls=2)
    logged: list[int] = []
    log = wasmjit.Func(store, wasmjit.FuncType([wasmjit.ValType.i32()], []), logged.append)
    exports = wasmjit.Instance(store, wasmjit.Module(store.engine, wat), [log]).exports(store)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [exports["grow"](store, 1) for _ in range(4)] == [1, 2, 3, 4]
        assert exports["mem"].size(store) == 5  # verification grew memory and took it back
        assert [exports["div"](store, d) for d in (1, 2, 4, 5)] == [100, 50, 25, 20]
        assert [exports["logged"](store, i) for i in range(4)] == [0, 1, 2, 3]
    assert logged == [0, 1, 2, 3]  # no host call from the verification runs
    stats = {s.name: s for s in store.func_stats()}
    assert stats["grow"].tier == stats["div"].tier == stats["logged"].tier == "jit"
    assert stats["div"].verified.startswith("passed")  # edge input 0 traps in both: agreement
    assert stats["logged"].verified.startswith("passed: 0 inputs (+")  # every run calls the host


def test_runs_over_budget_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify, "EMULATION_BUDGET", 0.05)
    monkeypatch.setattr(verify, "INTERP_BUDGET", 0.2)
    wat = """(module (func $spin (export "spin") (param i32) (result i32)
      (loop $l (br_if $l (i32.ne (local.tee 0 (i32.sub (local.get 0) (i32.const 2))) (i32.const 0))))
      (local.get 0)))"""  # odd arguments (edge values 1, -1, max) loop for ~2^31 iterations
    store = verifying_store(calls=2)
    spin = wasmjit.Instance(store, wasmjit.Module(store.engine, wat), []).exports(store)["spin"]
    assert [spin(store, 2 * i) for i in range(1, 4)] == [0, 0, 0]
    stats = next(s for s in store.func_stats() if s.name == "spin")
    assert stats.tier == "jit"
    assert "skipped" in stats.verified


def test_verify_needs_the_tiered_tier() -> None:
    config = wasmjit.Config()
    config.tier = "jit"
    config.verify = True
    with pytest.raises(WasmjitError, match="Config.verify .* needs the tiered tier, not 'jit'"):
        wasmjit.Engine(config)


def test_edge_inputs_cover_each_type() -> None:
    inputs = verify.edge_inputs(("i32", "f64"))
    assert [0, 0.0] in inputs and [0x7FFFFFFF, float("inf")] in inputs
    assert len(inputs) == 8
    assert verify.edge_inputs(()) == [[]]


def test_cli_verify_reports_and_keeps_output_correct(tmp_path: Path) -> None:
    program = tmp_path / "mix.wat"
    program.write_text("""(module
      (func $mix (param i32 i32) (result i32) (i32.xor (local.get 0) (local.get 1)))
      (func (export "sum") (result i32) (local $i i32) (local $acc i32)
        (loop $l
          (local.set $acc (i32.add (local.get $acc) (call $mix (local.get $i) (i32.const 0x55))))
          (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 1000))))
        (local.get $acc)))""")
    expected = sum(i ^ 0x55 for i in range(1000))
    command = [sys.executable, "-m", "wasmjit", "run", "--tier", "tiered", "--invoke", "sum", str(program)]
    env = {"WASMJIT_INJECT_FAULT": "xor-as-or", "PATH": "/usr/bin:/bin"}
    wrong = subprocess.run(command, capture_output=True, text=True, env=env)
    assert wrong.stdout.strip() != str(expected)
    checked = subprocess.run([*command[:4], "--verify", "--tier-stats", *command[4:]], capture_output=True,
                             text=True, env=env)
    assert (checked.returncode, checked.stdout.strip()) == (0, str(expected))
    assert "warning: wasmjit: native code of mix disagrees with the interpreter" in checked.stderr
    assert "FAILED: native code of mix" in checked.stderr


def test_fuel_is_verified_and_left_as_the_program_had_it() -> None:
    """With consume_fuel, every run starts from the program's fuel (an earlier input's run does
    not use it up) and the fuel left must agree too."""
    config = wasmjit.Config()
    config.tier = "tiered"
    config.verify = True
    config.consume_fuel = True
    config.tier_up_calls, config.tier_up_loops = 2, 1_000_000
    store = wasmjit.Store(wasmjit.Engine(config))
    add = wasmjit.Instance(store, wasmjit.Module(store.engine, """(module (func (export "add")
        (param i32) (result i32) (i32.add (local.get 0) (i32.const 5))))"""), []).exports(store)["add"]
    left = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fuel in (100, 100, 3, 100):  # the third call tiers up with 3 units left
            store.set_fuel(fuel)
            assert add(store, 1) == 6
            left.append(store.get_fuel())
    assert left == [96, 96, 0, 96]
    stats = next(s for s in store.func_stats() if s.index == 0)
    assert stats.tier == "jit" and stats.verified.startswith("passed")
