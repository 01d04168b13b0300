"""Regressions found by ``wasmjit fuzz``: each shrunk module (the .wat beside this file, with a
comment saying what went wrong) runs on every tier and must do what wasmtime does."""

from __future__ import annotations

import math
from pathlib import Path

import wasmjit

HERE = Path(__file__).parent


def instantiate(store: wasmjit.Store, name: str) -> wasmjit.Instance:
    module = wasmjit.Module.from_file(store.engine, HERE / name)
    return wasmjit.Instance(store, module, [])


def test_interp_static_select_keeps_its_value(store: wasmjit.Store) -> None:
    exports = instantiate(store, "interp_static_select_slot.wat").exports(store)
    f64, f32, ref = exports[""](store)
    assert f64 == float.fromhex("-0x1.00d7d9107c2dep-132") and ref is None
    assert math.isclose(f32, float.fromhex("0x1.cf87bp-122"), rel_tol=1e-7)
    # select(0, sext(0 - 4096), clz(-1298850309) = 0) picks -4096; global 0 ^= it
    assert exports["8"].value(store) == -4096


def test_interp_static_select_then_push(store: wasmjit.Store) -> None:
    """The same, reduced by hand: a select whose condition folds to a constant, then a push."""
    module = wasmjit.Module(store.engine, """
    (module
      (global $g (mut i64) (i64.const 5))
      (func (export "pick_second") (result i64) (local i32)
        (select (i64.const 0) (i64.extend_i32_s (i32.sub (local.get 0) (i32.const 4096)))
                (i32.clz (i32.const -1298850309)))
        global.get $g
        i64.xor)
      (func (export "pick_first") (result i64) (local i32)
        (select (i64.extend_i32_s (i32.sub (local.get 0) (i32.const 7))) (i64.const 0)
                (i32.const 1))
        global.get $g
        i64.xor))
    """)
    exports = wasmjit.Instance(store, module, []).exports(store)
    assert exports["pick_second"](store) == -4096 ^ 5
    assert exports["pick_first"](store) == -7 ^ 5
