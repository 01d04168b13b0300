"""Lowering wasm to IR: golden IR for small functions, and every function of real programs lowers
to well-formed IR. Re-bless the golden files with ``WASMJIT_BLESS=1 pytest tests/unit/test_lower.py``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import wasmjit
from wasmjit.jit.ir import TERMINATORS, Function, VReg
from wasmjit.jit.lower import lower

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "lower"
SIGHTGLASS = Path(__file__).resolve().parents[3] / "shared" / "bench" / "sightglass"

PROGRAMS = {
    "fib": """(module (func $fib (export "fib") (param $n i32) (result i32)
        (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
          (then (local.get $n))
          (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                         (call $fib (i32.sub (local.get $n) (i32.const 2))))))))""",
    "sum_loop": """(module (memory 1)
      (func (export "sum") (param $n i32) (result i64) (local $i i32) (local $s i64)
        (block $done (loop $top
          (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
          (local.set $s (i64.add (local.get $s) (i64.load offset=8 (local.get $i))))
          (local.set $i (i32.add (local.get $i) (i32.const 8)))
          (br $top)))
        (local.get $s)))""",
    "br_table": """(module (func (export "f") (param i32) (result i32)
        (block $c (block $b (block $a
          (br_table $a $b $c (local.get 0)))
          (return (i32.const 10)))
          (return (i32.const 20)))
        (i32.const 30)))""",
    "stack_and_locals": """(module (func (export "f") (param i32 i32) (result i32)
        (local.get 0)
        (local.set 0 (i32.const 5))
        (local.get 0)
        (i32.sub)
        (select (local.get 1) (i32.const 7) (i32.eqz (local.get 1)))
        (i32.add)))""",
    "multi_value_block": """(module (func (export "f") (param i32) (result i32 i64)
        (block (result i32 i64) (local.get 0) (i64.const 9)
          (br_if 0 (local.get 0)) (drop) (drop) (i32.const 1) (i64.const 2))))""",
}


def lower_all(source: str | Path) -> list[Function]:
    engine = wasmjit.Engine()
    if isinstance(source, Path):
        module = wasmjit.Module.from_file(engine, source)
    else:
        module = wasmjit.Module(engine, source)
    vmod = module._vmod
    return [lower(vmod.module, info) for info in vmod.func_infos]


def well_formed(func: Function) -> None:
    """Every label named is placed once, every used vreg is a param or defined somewhere, the last
    instruction does not fall off the end."""
    placed = [inst.attrs["label"] for inst in func.insts if inst.op == "label"]
    assert len(placed) == len(set(placed)), func.name
    defined = {id(p) for p in func.params} | {id(d) for inst in func.insts for d in inst.defs}
    for inst in func.insts:
        assert all(t in placed for t in inst.targets), (func.name, str(inst))
        assert all(id(u) in defined for u in inst.uses if isinstance(u, VReg)), (func.name, str(inst))
    real = [inst for inst in func.insts if inst.op != "label"]
    assert real and real[-1].op in TERMINATORS, func.name


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_golden_ir(name: str) -> None:
    text = "\n\n".join(str(f) for f in lower_all(PROGRAMS[name])) + "\n"
    for func in lower_all(PROGRAMS[name]):
        well_formed(func)
    path = GOLDEN / f"{name}.ir"
    if os.environ.get("WASMJIT_BLESS"):
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.skipif(not SIGHTGLASS.is_dir(), reason="no ../shared/bench/sightglass")
def test_every_sightglass_function_lowers() -> None:
    count = 0
    for path in sorted(SIGHTGLASS.glob("*.wasm")):
        for func in lower_all(path):
            well_formed(func)
            count += 1
    assert count > 500
