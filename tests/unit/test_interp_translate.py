"""The interpreter's translation: which closures a function becomes (fusion of operands into
three-address handlers, compare-and-branch, results written straight into locals), and that the
fused code computes the right results on every tier."""

from __future__ import annotations

import pytest

import wasmjit
from wasmjit.interp import translate


@pytest.fixture(params=["interp"])
def tier(request: pytest.FixtureRequest) -> str:
    """These tests look inside the interpreter's translation."""
    return request.param


def listing(store: wasmjit.Store, wat: str, export: str = "f") -> list[str]:
    instance = wasmjit.Instance(store, wasmjit.Module(store.engine, wat), [])
    func = instance.exports(store)[export]._func
    return [handler.__name__ for handler in translate(func).code[1:]]


SUM = """(module (func (export "f") (param i32) (result i32) (local i32)
  (block (loop
    (br_if 1 (i32.eqz (local.get 0)))
    (local.set 1 (i32.add (local.get 1) (local.get 0)))
    (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
    (br 0)))
  (local.get 1)))"""


def test_counted_loop_is_four_handlers(tier: str, store: wasmjit.Store) -> None:
    # eqz+br_if fuse; both adds write their local directly; the back-edge counts itself.
    assert listing(store, SUM) == ["br_if_i32_eqz_r", "i32_add_rr", "i32_sub_rk", "jump_back",
                                   "copy", "_exit"]


def test_compare_fuses_into_if(tier: str, store: wasmjit.Store) -> None:
    wat = """(module (func (export "f") (param i32 i32) (result i32)
      (if (result i32) (i32.lt_s (local.get 0) (local.get 1))
        (then (local.get 0)) (else (local.get 1)))))"""
    assert listing(store, wat)[0] == "if_i32_lt_s_rr"


def test_constant_operands_are_captured_not_pushed(tier: str, store: wasmjit.Store) -> None:
    wat = """(module (memory 1) (func (export "f") (param i32)
      (i32.store offset=4 (local.get 0) (i32.const 99))))"""
    assert listing(store, wat) == ["i32_store_rk", "_exit"]


def test_constant_folding_keeps_traps_for_run_time(tier: str, store: wasmjit.Store) -> None:
    wat = """(module (func (export "f") (result i32) (i32.add (i32.const 2) (i32.const 3)))
                     (func (export "g") (result i32) (i32.div_u (i32.const 1) (i32.const 0))))"""
    assert listing(store, wat) == ["const", "_exit"]
    assert listing(store, wat, "g") == ["i32_div_u_kk", "_exit"]


def test_local_read_survives_a_later_write(tier: str, store: wasmjit.Store) -> None:
    # local.get 0 stays lazy on the stack; the write to local 0 must copy the old value out first.
    wat = """(module (func (export "f") (param i32) (result i32)
      local.get 0
      (local.set 0 (i32.const 5))
      local.get 0
      i32.sub))"""
    instance = wasmjit.Instance(store, wasmjit.Module(store.engine, wat), [])
    assert instance.exports(store)["f"](store, 12) == 7


# The last sum wraps: i32 results are signed.
@pytest.mark.parametrize("n,expected", [(0, 0), (1, 1), (100, 5050), (65536, -2147450880)])
def test_sum_loop_results(tier: str, store: wasmjit.Store, n: int, expected: int) -> None:
    instance = wasmjit.Instance(store, wasmjit.Module(store.engine, SUM), [])
    assert instance.exports(store)["f"](store, n) == expected


def test_branch_carrying_values_out_of_nested_blocks(tier: str, store: wasmjit.Store) -> None:
    wat = """(module (func (export "f") (param i32) (result i32 i32)
      (block (result i32 i32)
        (i32.const 10) (i32.const 20)
        (block (param i32 i32) (result i32 i32)
          (br_if 1 (local.get 0)))
        (i32.const 1) (i32.add))))"""
    instance = wasmjit.Instance(store, wasmjit.Module(store.engine, wat), [])
    f = instance.exports(store)["f"]
    assert f(store, 1) == [10, 20]
    assert f(store, 0) == [10, 21]


def test_translation_is_lazy_and_once(tier: str, store: wasmjit.Store) -> None:
    instance = wasmjit.Instance(store, wasmjit.Module(store.engine, SUM), [])
    func = instance.exports(store)["f"]._func
    assert func.code is None  # nothing translated before the first call
    instance.exports(store)["f"](store, 3)
    code = func.code
    instance.exports(store)["f"](store, 3)
    assert func.code is code and code.translate_seconds > 0
