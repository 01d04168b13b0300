"""The tiered policy: functions start in the interpreter and move to native code when hot."""

from __future__ import annotations

import pytest

import wasmjit
from wasmjit.api import AVAILABLE_TIERS
from wasmjit.jit import tier as tier_policy

pytestmark = pytest.mark.skipif("tiered" not in AVAILABLE_TIERS, reason="no tiered tier")

WAT = """(module $t
  (func $inc (export "inc") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  (func $twice (export "twice") (param i32) (result i32) (call $inc (call $inc (local.get 0))))
  (func $loop (export "loop") (param $n i32) (result i32) (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $i)))"""


def tiered(calls: int, loops: int) -> tuple[wasmjit.Store, wasmjit.Instance]:
    config = wasmjit.Config()
    config.tier = "tiered"
    config.tier_up_calls, config.tier_up_loops = calls, loops
    store = wasmjit.Store(wasmjit.Engine(config))
    return store, wasmjit.Instance(store, wasmjit.Module(store.engine, WAT), [])


def tiers(store: wasmjit.Store, instance: wasmjit.Instance) -> dict[str, tuple[int, str]]:
    return {s.name: (s.entries, s.tier) for s in instance.func_stats(store)}


def test_a_function_tiers_up_after_the_entry_threshold() -> None:
    store, instance = tiered(calls=3, loops=1 << 30)
    inc = instance.exports(store)["inc"]
    assert [inc(store, i) for i in range(3)] == [1, 2, 3]
    assert tiers(store, instance)["inc"] == (3, "interp")
    assert inc(store, 41) == 42  # the fourth entry compiles first, then runs natively
    assert inc(store, 9) == 10
    assert tiers(store, instance)["inc"] == (3, "jit")


def test_native_callers_and_interpreted_callers_both_switch() -> None:
    store, instance = tiered(calls=2, loops=1 << 30)
    twice = instance.exports(store)["twice"]
    results = [twice(store, i) for i in range(6)]
    assert results == [i + 2 for i in range(6)]
    stats = tiers(store, instance)
    assert stats["twice"][1] == stats["inc"][1] == "jit"
    assert stats["inc"][0] == 2  # counted while interpreted, then the native caller called native code


def test_a_hot_loop_moves_to_native_code_while_it_runs() -> None:
    """On-stack replacement: the 100th back-edge hands the running loop to native code."""
    store, instance = tiered(calls=1 << 30, loops=100)
    loop = instance.exports(store)["loop"]
    assert loop(store, 500) == 500
    func = next(f for f in store._store.funcs if getattr(f, "name", None) == "loop")
    assert (func.entries, func.backedges[0], func.tier) == (1, 100, "jit")
    assert loop(store, 7) == 7  # the next call runs the compiled function


OSR_WAT = """(module
  (memory 1)
  (func (export "sums") (param $n i32) (result i64 f64) (local $i i32) (local $s i64) (local $f f64)
    (block $out
      (loop $l
        (br_if $out (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $s (i64.add (local.get $s) (i64.extend_i32_u (local.get $i))))
        (local.set $f (f64.add (local.get $f) (f64.const 0.5)))
        (i32.store (i32.mul (local.get $i) (i32.const 4)) (local.get $i))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (local.get $s) (local.get $f))
  (func (export "at") (param i32) (result i32) (i32.load (i32.mul (local.get 0) (i32.const 4)))))"""


@pytest.mark.parametrize("loops", [1, 2, 999, 1000, 5000])
def test_osr_carries_every_local_and_the_memory(loops: int) -> None:
    config = wasmjit.Config()
    config.tier = "tiered"
    config.tier_up_calls, config.tier_up_loops = 1 << 30, loops
    store = wasmjit.Store(wasmjit.Engine(config))
    exports = wasmjit.Instance(store, wasmjit.Module(store.engine, OSR_WAT), []).exports(store)
    assert exports["sums"](store, 1000) == [sum(range(1000)), 500.0]
    assert [exports["at"](store, i) for i in (0, 1, 998, 999)] == [0, 1, 998, 999]


def test_a_failed_compile_keeps_the_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(func: object, check: object = None) -> None:
        raise wasmjit.WasmjitError("injected compiler failure")

    monkeypatch.setattr(tier_policy, "compile_function", broken)
    store, instance = tiered(calls=1, loops=1)
    inc = instance.exports(store)["inc"]
    assert [inc(store, i) for i in range(4)] == [1, 2, 3, 4]
    func = next(f for f in store._store.funcs if getattr(f, "name", None) == "inc")
    assert (func.tier, str(func.compile_error)) == ("interp", "injected compiler failure")
    assert func.entries == 4  # asked once, then interpreted and counted as usual
