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


def test_a_hot_loop_tiers_up_at_the_next_entry() -> None:
    store, instance = tiered(calls=1 << 30, loops=100)
    loop = instance.exports(store)["loop"]
    assert loop(store, 500) == 500
    assert tiers(store, instance)["loop"] == (1, "interp")  # no on-stack replacement yet
    assert loop(store, 7) == 7
    assert tiers(store, instance)["loop"][1] == "jit"


def test_a_failed_compile_keeps_the_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(func: object) -> None:
        raise wasmjit.WasmjitError("injected compiler failure")

    monkeypatch.setattr(tier_policy, "compile_function", broken)
    store, instance = tiered(calls=1, loops=1)
    inc = instance.exports(store)["inc"]
    assert [inc(store, i) for i in range(4)] == [1, 2, 3, 4]
    func = next(f for f in store._store.funcs if getattr(f, "name", None) == "inc")
    assert (func.tier, str(func.compile_error)) == ("interp", "injected compiler failure")
    assert func.entries == 4  # asked once, then interpreted and counted as usual
