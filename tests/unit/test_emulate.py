"""The unicorn tier runs the JIT's own machine code inside Unicorn; what it adds over native
execution is that code touching anything it must not stops with an EmulationError instead of
corrupting or crashing the process. (Tier-parametrized tests elsewhere check that it behaves like
every other tier.)"""

from __future__ import annotations

import warnings

import pytest

import wasmjit
from wasmjit.errors import TrapCode
from wasmjit.jit import codegen
from wasmjit.jit.emulate import EmulationError
from wasmjit.jit.tier import VerificationWarning

PEEK = """(module (memory 1)
  (func $peek (export "peek") (param i32) (result i32) (i32.load (local.get 0)))
  (func $poke (export "poke") (param i32 i32) (i32.store (local.get 0) (local.get 1))))"""


def exports(tier: str, verify: bool = False) -> tuple[wasmjit.Store, dict]:
    config = wasmjit.Config()
    config.tier = tier
    config.verify = verify
    config.tier_up_calls, config.tier_up_loops = 3, 1_000_000
    store = wasmjit.Store(wasmjit.Engine(config))
    instance = wasmjit.Instance(store, wasmjit.Module(store.engine, PEEK), [])
    return store, dict(instance.exports(store))


def test_same_code_same_results_and_traps() -> None:
    store, ex = exports("unicorn")
    ex["poke"](store, 65532, 0x12345678)
    assert ex["peek"](store, 65532) == 0x12345678
    with pytest.raises(wasmjit.Trap) as info:
        ex["peek"](store, 65533)
    assert info.value.trap_code == TrapCode.MEMORY_OUT_OF_BOUNDS
    assert [f.func_name for f in info.value.frames] == ["peek"]
    assert {s.tier for s in store.func_stats()} == {"unicorn"}


@pytest.mark.parametrize("address", [65536, 0x7FFFFFFF, 0xFFFFFFF0])
def test_an_access_outside_the_memory_is_stopped(monkeypatch: pytest.MonkeyPatch, address: int) -> None:
    """With the bounds check left out, native code would read the guard region (a segfault);
    the emulator maps only the accessible bytes and names the culprit."""
    monkeypatch.setattr(codegen, "INJECTED_FAULT", "no-bounds-check")
    store, ex = exports("unicorn")
    assert ex["peek"](store, 0) == 0
    with pytest.raises(EmulationError, match=r"unicorn: Invalid memory read \(UC_ERR_READ_UNMAPPED\) "
                       r"\(address 0x[0-9a-f]+\) at pc 0x[0-9a-f]+ in peek at \+0x[0-9a-f]+"):
        ex["peek"](store, address)
    assert ex["peek"](store, 4) == 0  # the store is usable afterwards
    ex["poke"](store, 8, 5)
    assert ex["peek"](store, 8) == 5


def test_verify_keeps_a_function_without_bounds_checks_out_of_native_code(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codegen, "INJECTED_FAULT", "no-bounds-check")
    store, ex = exports("tiered", verify=True)
    with pytest.warns(VerificationWarning, match=r"peek\(4294967295,\): native emulation error unicorn: "
                      r"Invalid memory read .* in peek .*, interpreter trap MEMORY_OUT_OF_BOUNDS"):
        assert [ex["peek"](store, 4 * i) for i in range(5)] == [0] * 5
    with pytest.raises(wasmjit.Trap) as info:  # interpreted: a trap, not a crash
        ex["peek"](store, 65536)
    assert info.value.trap_code == TrapCode.MEMORY_OUT_OF_BOUNDS
    stats = {s.name: s for s in store.func_stats()}
    assert stats["peek"].tier == "interp"
    assert stats["peek"].verified.startswith("FAILED")


def test_reentry_from_host_code_nests_emulations() -> None:
    wat = """(module (import "env" "down" (func $down (param i32) (result i32)))
      (func $f (export "f") (param i32) (result i32)
        (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0))
          (else (i32.add (local.get 0) (call $down (i32.sub (local.get 0) (i32.const 1))))))))"""
    config = wasmjit.Config()
    config.tier = "unicorn"
    store = wasmjit.Store(wasmjit.Engine(config))
    holder: list = []
    down = wasmjit.Func(store, wasmjit.FuncType([wasmjit.ValType.i32()], [wasmjit.ValType.i32()]),
                        lambda x: holder[0](store, x))
    f = wasmjit.Instance(store, wasmjit.Module(store.engine, wat), [down]).exports(store)["f"]
    holder.append(f)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert f(store, 40) == sum(range(41))  # 40 emulations inside each other
