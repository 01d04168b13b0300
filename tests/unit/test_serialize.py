"""Relocatable native code: a module compiles each function once for all its instances, and
Module.serialize / deserialize / deserialize_file carry that code to a later run."""

from __future__ import annotations

from collections import Counter

import pytest

import wasmjit
from wasmjit.jit import native

PROGRAM = """(module
  (import "host" "twice" (func $twice (param i32) (result i32)))
  (global $counter (mut i32) (i32.const 5))
  (global $scale f64 (f64.const 1.5))
  (memory 1)
  (table 3 funcref)
  (elem (i32.const 0) $fib $twice $bump)
  (type $unary (func (param i32) (result i32)))
  (func $fib (export "fib") (param i32) (result i32)
    (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))
      (then (local.get 0))
      (else (i32.add (call_indirect (type $unary) (i32.sub (local.get 0) (i32.const 1)) (i32.const 0))
                     (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
  (func $bump (export "bump") (param i32) (result i32)
    (global.set $counter (i32.add (global.get $counter) (local.get 0)))
    (memory.fill (i32.const 16) (i32.const 7) (i32.const 4))
    (drop (memory.grow (i32.const 0)))
    (i32.add (global.get $counter) (i32.load8_u (i32.const 17))))
  (func (export "host") (param i32) (result i32) (call_indirect (type $unary) (local.get 0) (i32.const 1)))
  (func (export "scaled") (param f64) (result f64) (f64.mul (local.get 0) (global.get $scale)))
  (func $deep (export "deep") (param i32) (result i32)
    (if (i32.eqz (local.get 0)) (then (unreachable)))
    (call $deep (i32.sub (local.get 0) (i32.const 1))))
  (func (export "bad_type") (result i32) (call_indirect (type $unary) (i32.const 0) (i32.const 2)))
  (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1))))"""


def engine(tier: str) -> wasmjit.Engine:
    config = wasmjit.Config()
    config.tier = tier
    return wasmjit.Engine(config)


def instantiate(module: wasmjit.Module, tier_store: wasmjit.Store | None = None) -> tuple:
    store = tier_store or wasmjit.Store(module.engine)
    twice = wasmjit.Func(store, wasmjit.FuncType([wasmjit.ValType.i32()], [wasmjit.ValType.i32()]),
                         lambda x: 2 * x)
    return store, wasmjit.Instance(store, module, [twice]).exports(store)


def count_compiles(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Count lowering and assembly runs (every compilation does both once)."""
    native.routines()  # assembled once per process, not a compilation
    counts: Counter = Counter()
    for name in ("lower", "assemble"):
        real = getattr(native, name)

        def counted(*args: object, _real=real, _name=name, **kwargs: object) -> object:
            counts[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(native, name, counted)
    return counts


def test_a_module_compiles_each_function_once_for_all_its_instances(monkeypatch: pytest.MonkeyPatch) -> None:
    counts = count_compiles(monkeypatch)
    module = wasmjit.Module(engine("jit"), PROGRAM)
    first_store, first = instantiate(module)
    assert counts == {"lower": 7, "assemble": 7}
    second_store, second = instantiate(module)  # another store: other addresses, handles, helpers
    third_store, third = instantiate(module, first_store)  # same store: other globals and memory
    assert counts == {"lower": 7, "assemble": 7}
    for store, exports in ((first_store, first), (second_store, second), (third_store, third)):
        assert exports["fib"](store, 15) == 610
        assert exports["host"](store, 21) == 42
        assert exports["scaled"](store, 2.0) == 3.0
    assert [first["bump"](first_store, 1), first["bump"](first_store, 1)] == [13, 14]
    assert third["bump"](third_store, 10) == 22  # its own global and memory
