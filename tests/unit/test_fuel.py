"""Fuel and epoch interruption on every tier, compared with wasmtime-py.

The same sequence of calls (each with an amount of fuel chosen around what the call needs on
wasmtime) runs on wasmtime and on each tier; every call's outcome, the fuel left afterwards and
the fuel host functions saw must be identical, so a module stops at exactly the same point
everywhere (including when the fuel runs out half-way, after a trap, and across calls, host
calls, recursion, call_indirect and on-stack replacement in the tiered tier).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest
import wasmtime

import wasmjit
from wasmjit import api

TIERS = list(api.AVAILABLE_TIERS)

MODULE = """
(module
  (import "host" "peek" (func $peek (param i32) (result i32)))
  (import "host" "refuel" (func $refuel))
  (memory 1 4)
  (table 4 funcref)
  (table $t2 2 30 funcref)
  (data $d "0123456789abcdef")
  (elem (i32.const 0) $sq $inc $fact32)
  (global $g (mut i32) (i32.const 0))
  (type $i2i (func (param i32) (result i32)))
  (func $sq (param i32) (result i32) (i32.mul (local.get 0) (local.get 0)))
  (func $inc (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  (func $fact32 (param i32) (result i32)
    (if (result i32) (i32.le_u (local.get 0) (i32.const 1))
      (then (i32.const 1))
      (else (i32.mul (local.get 0) (call $fact32 (i32.sub (local.get 0) (i32.const 1)))))))
  (func (export "fact") (param i64) (result i64)
    (if (result i64) (i64.le_u (local.get 0) (i64.const 1))
      (then (i64.const 1))
      (else (i64.mul (local.get 0)
                     (i64.extend_i32_u
                       (call $fact32 (i32.wrap_i64 (i64.sub (local.get 0) (i64.const 1)))))))))
  (func (export "arith") (param i32 i32) (result i32) (local i32)
    nop
    (local.set 2 (i32.add (local.get 0) (local.get 1)))
    (drop (i32.xor (local.get 2) (i32.const 5)))
    (local.set 2 (select (local.get 2) (i32.const 9) (i32.gt_s (local.get 0) (local.get 1))))
    (local.tee 2 (i32.rotl (local.get 2) (i32.const 3)))
    (i32.popcnt)
    (block (result i32) (i32.const 4))
    i32.add)
  (func (export "sum") (param i32) (result i32) (local i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get 0)))
        (local.set 1 (i32.add (local.get 1) (local.get 0)))
        (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
        (br $next)))
    (local.get 1))
  (func (export "nested") (param i32) (result i32) (local i32 i32)
    (loop $outer
      (local.set 2 (i32.const 0))
      (loop $inner
        (local.set 1 (i32.add (local.get 1) (local.get 2)))
        (local.set 2 (i32.add (local.get 2) (i32.const 1)))
        (br_if $inner (i32.lt_u (local.get 2) (i32.const 4))))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br_if $outer (local.get 0)))
    (local.get 1))
  (func (export "indirect") (param i32 i32) (result i32)
    (call_indirect (type $i2i) (local.get 1) (local.get 0)))
  (func (export "switch") (param i32) (result i32)
    (block $c (block $b (block $a
      (br_table $a $b $c (local.get 0)))
      (return (i32.const 10)))
      (return (i32.const 20)))
    (i32.const 30))
  (func (export "memory") (param i32) (result i32) (local i32)
    (memory.fill (i32.const 0) (i32.const 7) (i32.const 64))
    (loop $l
      (i32.store (i32.mul (local.get 1) (i32.const 4)) (local.get 1))
      (local.set 1 (i32.add (local.get 1) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get 1) (local.get 0))))
    (i32.add (i32.load (i32.const 8)) (memory.size)))
  (func (export "global") (param i32) (result i32)
    (loop $l
      (global.set $g (i32.add (global.get $g) (i32.const 3)))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br_if $l (local.get 0)))
    (global.get $g))
  (func (export "div") (param i32 i32) (result i32)
    (drop (i32.add (local.get 0) (i32.const 1)))
    (i32.div_s (local.get 0) (local.get 1)))
  (func (export "load") (param i32) (result i32)
    (i32.add (i32.const 1) (i32.load (local.get 0))))
  (func (export "unreachable") (param i32) (result i32)
    (if (local.get 0) (then (drop (i32.const 1)) (unreachable)))
    (i32.const 5))
  (func (export "host") (param i32) (result i32) (local i32)
    (loop $l
      (local.set 1 (i32.add (local.get 1) (call $peek (local.get 0))))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br_if $l (local.get 0)))
    (local.get 1))
  (func (export "refuel_then_spin") (param i32) (result i32)
    (call $refuel)
    (loop $l
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br_if $l (local.get 0)))
    (local.get 0))
  (func (export "trap_after_call") (param i32) (result i32)
    (drop (call $fact32 (i32.const 5)))
    (i32.div_u (i32.const 1) (local.get 0)))
  (func (export "bulk") (param i32) (result i32)
    (memory.fill (i32.const 100) (i32.const 9) (local.get 0))
    (memory.copy (i32.const 200) (i32.const 100) (local.get 0))
    (memory.init $d (i32.const 300) (i32.const 0) (i32.and (local.get 0) (i32.const 15)))
    (i32.add (i32.load8_u (i32.const 300)) (i32.add (i32.load8_u (i32.const 200)) (i32.const 1))))
  (func (export "grow") (param i32) (result i32)
    (i32.add (i32.const 1) (i32.add (i32.const 2) (memory.grow (local.get 0)))))
  (func (export "never_in_bounds") (param i32) (result i32)  ;; memory max 4 pages: always traps
    (drop (i32.const 1))
    (i32.add (i32.load offset=262142 (local.get 0)) (i32.const 1)))
  (func (export "table_oob") (param i32) (result i32)  ;; a trap raised by a runtime helper
    (drop (i32.add (i32.const 1) (i32.const 2)))
    (drop (table.get $t2 (local.get 0)))
    (i32.const 7))
  (func (export "fill_huge") (param i32)  ;; constant counts adding up past 2^31
    (memory.fill (local.get 0) (i32.const 0) (i32.const -1))
    (memory.fill (local.get 0) (i32.const 0) (i32.const -1)))
  (func (export "grow_never") (result i32)  ;; constant deltas no memory or table can take
    (i32.add (memory.grow (i32.const 70000)) (table.grow $t2 (ref.null func) (i32.const -1))))
  (func (export "grow_const") (result i32)
    (i32.add (memory.grow (i32.const 1)) (i32.const 1)))
  (func (export "tables") (param i32) (result i32)
    (drop (table.grow $t2 (ref.null func) (local.get 0)))
    (table.copy $t2 0 (i32.const 0) (i32.const 0) (i32.const 4))
    (table.fill $t2 (i32.const 1) (ref.null func) (i32.const 2))
    (i32.add (table.size $t2) (i32.const 1)))
  (func (export "multi") (param i32) (result i32 i32)
    (block (result i32 i32) (local.get 0) (i32.const 2) (br_if 0 (local.get 0)) (return)))
)
"""

# (export, arguments) in the order they run; each runs with several amounts of fuel.
CALLS: list[tuple[str, tuple]] = [
    ("fact", (10,)), ("arith", (3, 4)), ("arith", (-3, 4)), ("sum", (20,)), ("nested", (5,)),
    ("indirect", (0, 7)), ("indirect", (1, 7)), ("indirect", (2, 6)), ("indirect", (3, 1)),
    ("switch", (0,)), ("switch", (1,)), ("switch", (2,)), ("switch", (9,)), ("memory", (12,)),
    ("global", (6,)), ("div", (7, 2)), ("div", (7, 0)), ("load", (4,)), ("load", (65535,)),
    ("unreachable", (0,)), ("unreachable", (1,)), ("host", (4,)), ("refuel_then_spin", (10,)),
    ("trap_after_call", (0,)), ("trap_after_call", (1,)), ("multi", (0,)), ("multi", (1,)),
    ("bulk", (0,)), ("bulk", (10,)), ("bulk", (300,)), ("bulk", (70000,)), ("grow", (0,)),
    ("grow", (1,)), ("grow", (5,)), ("grow_const", ()), ("grow_const", ()), ("tables", (3,)),
    ("tables", (40,)), ("never_in_bounds", (0,)), ("grow_never", ()),
    ("table_oob", (1,)), ("table_oob", (100,)), ("fill_huge", (0,)),
]
PLENTY = 1_000_000


class Runner:
    """One engine (wasmtime or a wasmjit tier): an instance, and calls with an amount of fuel."""

    def __init__(self, w: Any, tier: str | None = None) -> None:
        config = w.Config()
        config.consume_fuel = True
        if tier is not None:
            config.tier = tier
            config.tier_up_calls, config.tier_up_loops = 2, 3  # tiered: tier up and OSR early
        engine = w.Engine(config)
        self.w, self.store = w, w.Store(engine)
        self.seen: list[int] = []
        i32 = w.ValType.i32()
        peek = w.Func(self.store, w.FuncType([i32], [i32]), self._peek)
        refuel = w.Func(self.store, w.FuncType([], []), self._refuel)
        instance = w.Instance(self.store, w.Module(engine, MODULE), [peek, refuel])
        self.exports = instance.exports(self.store)

    def _peek(self, x: int) -> int:
        self.seen.append(self.store.get_fuel())
        return x

    def _refuel(self) -> None:
        self.store.set_fuel(self.store.get_fuel() + 100)

    def call(self, name: str, args: tuple, fuel: int) -> tuple:
        self.store.set_fuel(fuel)
        self.seen = []
        try:
            value = self.exports[name](self.store, *args)
            outcome: Any = ("returned", tuple(value) if isinstance(value, list) else value)
        except self.w.Trap as trap:
            outcome = ("trap", trap.trap_code.name if trap.trap_code is not None else str(trap))
        return outcome, self.store.get_fuel(), tuple(self.seen)


def _fuel_amounts(used: int) -> list[int]:
    return sorted({max(0, n) for n in (0, 1, 2, used // 3, used // 2, used - 1, used, used + 1, used + 50)})


@pytest.fixture(scope="module")
def reference() -> list[tuple[str, tuple, int, tuple]]:
    """The plan, with wasmtime's result for each step: (export, args, fuel, result)."""
    runner = Runner(wasmtime)
    plan = []
    for name, args in CALLS:
        result = runner.call(name, args, PLENTY)
        plan.append((name, args, PLENTY, result))
        for fuel in _fuel_amounts(PLENTY - result[1]):
            plan.append((name, args, fuel, runner.call(name, args, fuel)))
    return plan


def test_the_plan_runs_out_of_fuel_and_traps(reference) -> None:
    outcomes = {result[0] for *_, result in reference}
    assert ("trap", "OUT_OF_FUEL") in outcomes
    assert {"INTEGER_DIVISION_BY_ZERO", "UNREACHABLE", "MEMORY_OUT_OF_BOUNDS"} <= {o[1] for o in outcomes}
    assert any(result[2] for *_, result in reference)  # host functions saw the fuel


@pytest.mark.parametrize("tier", TIERS)
def test_fuel_matches_wasmtime_exactly(tier: str, reference) -> None:
    runner = Runner(wasmjit, tier)
    for name, args, fuel, expected in reference:
        got = runner.call(name, args, fuel)
        assert got == expected, f"{name}{args} with {fuel} fuel"


@pytest.mark.parametrize("tier", TIERS)
def test_fuel_left_after_a_call(tier: str) -> None:
    config = wasmjit.Config()
    config.tier = tier
    config.consume_fuel = True
    engine = wasmjit.Engine(config)
    store = wasmjit.Store(engine)
    add = wasmjit.Instance(store, wasmjit.Module(engine, """(module (func (export "add")
        (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))"""), []).exports(store)["add"]
    store.set_fuel(10)
    assert add(store, 1, 2) == 3
    assert store.get_fuel() == 6  # one per instruction, one for the call
    store.set_fuel(4)
    assert add(store, 1, 2) == 3
    assert store.get_fuel() == 0
    with pytest.raises(wasmjit.Trap, match="all fuel consumed by WebAssembly") as info:
        add(store, 1, 2)
    assert info.value.trap_code is wasmjit.TrapCode.OUT_OF_FUEL


def test_fuel_needs_consume_fuel() -> None:
    store = wasmjit.Store(wasmjit.Engine())
    for call in (store.get_fuel, lambda: store.set_fuel(5)):
        with pytest.raises(wasmjit.WasmjitError, match="^fuel is not configured in this store$"):
            call()


def test_set_fuel_takes_a_non_negative_integer() -> None:
    config = wasmjit.Config()
    config.consume_fuel = True
    store = wasmjit.Store(wasmjit.Engine(config))
    for bad in (-1, 1.5, "3"):
        with pytest.raises(wasmjit.WasmjitTypeError):
            store.set_fuel(bad)
    store.set_fuel(2**64 - 1)  # more than the native counter holds: the rest is kept aside
    assert store.get_fuel() == 2**64 - 1


# --- Epochs ---------------------------------------------------------------------------------------

EPOCH_MODULE = """(module
  (func (export "seven") (result i32) (i32.const 7))
  (func (export "spin") (loop (br 0))))"""


def _epoch_steps(w: Any, tier: str | None) -> list[str]:
    config = w.Config()
    config.epoch_interruption = True
    if tier is not None:
        config.tier = tier
    engine = w.Engine(config)
    store = w.Store(engine)
    seven = w.Instance(store, w.Module(engine, EPOCH_MODULE), []).exports(store)["seven"]
    steps = []
    for step in range(5):
        try:
            steps.append(f"returned {seven(store)}")
        except w.Trap as trap:
            steps.append(f"trap {trap.trap_code.name}")
        if step == 0:
            store.set_epoch_deadline(3)
        engine.increment_epoch()
    return steps


@pytest.mark.parametrize("tier", TIERS)
def test_epoch_deadline_matches_wasmtime(tier: str) -> None:
    expected = _epoch_steps(wasmtime, None)
    assert expected == ["trap INTERRUPT", "returned 7", "returned 7", "trap INTERRUPT", "trap INTERRUPT"]
    assert _epoch_steps(wasmjit, tier) == expected


SPIN = """
import sys, threading
import wasmjit

config = wasmjit.Config()
config.tier = sys.argv[1]
config.epoch_interruption = True
engine = wasmjit.Engine(config)
store = wasmjit.Store(engine)
spin = wasmjit.Instance(store, wasmjit.Module(engine, sys.argv[2]), []).exports(store)["spin"]
store.set_epoch_deadline(1)
threading.Timer(0.2, engine.increment_epoch).start()
try:
    spin(store)
except wasmjit.Trap as trap:
    print(trap.trap_code.name, trap.frames[0].func_name)
"""


@pytest.mark.parametrize("tier", TIERS)
def test_infinite_loop_is_interrupted_from_another_thread(tier: str) -> None:
    """``(loop br 0)`` runs until another thread increments the epoch, in native code too (a
    subprocess, so that a loop that is never interrupted fails the test instead of hanging it)."""
    wat = '(module (func $spin (export "spin") (loop (br 0))))'
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(SPIN), tier, wat],
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["INTERRUPT", "spin"], done.stderr


# --- CLI: wasmjit run --fuel / --timeout ----------------------------------------------------------

COUNT = """(module (func (export "count") (param i32) (result i32)
  (loop (local.set 0 (i32.sub (local.get 0) (i32.const 1))) (br_if 0 (local.get 0)))
  (local.get 0)))"""


@pytest.mark.parametrize("tier", TIERS)
def test_cli_fuel(tier: str, tmp_path, capsys) -> None:
    from wasmjit import cli

    module = tmp_path / "count.wat"
    module.write_text(COUNT)
    assert cli.main(["run", "--tier", tier, "--fuel", "100", "--invoke", "count", str(module), "10"]) == 0
    assert capsys.readouterr().out == "0\n"
    # 1 for the call, 6 per iteration: 26 units run out in the 5th iteration (the header check traps)
    assert cli.main(["run", "--tier", tier, "--fuel", "26", "--invoke", "count", str(module), "10"]) != 0
    assert "wasm trap: all fuel consumed by WebAssembly" in capsys.readouterr().err


@pytest.mark.parametrize("tier", TIERS)
def test_cli_timeout_stops_an_infinite_loop(tier: str, tmp_path) -> None:
    module = tmp_path / "spin.wat"
    module.write_text('(module (func (export "_start") (loop (br 0))))')
    done = subprocess.run([sys.executable, "-m", "wasmjit", "run", "--tier", tier, "--timeout", "0.5",
                           str(module)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 134
    assert done.stderr.rstrip().endswith("wasm trap: interrupt")


@pytest.mark.parametrize("argv, message", [
    (["--fuel", "-1"], "argument --fuel: expected a non-negative integer, found '-1'"),
    (["--timeout", "0"], "argument --timeout: a timeout must be a positive duration, found '0'"),
    (["--timeout", "soon"], "argument --timeout: expected a duration such as 2, 1.5s or 500ms, found 'soon'"),
])
def test_cli_resource_options_are_checked(argv: list[str], message: str, tmp_path, capsys) -> None:
    from wasmjit import cli

    with pytest.raises(SystemExit) as info:
        cli.main(["run", *argv, str(tmp_path / "m.wat")])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
