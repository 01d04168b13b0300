"""Golden files of the whole compiler pipeline for a handful of small functions: the legalized IR,
the register allocation and the x86-64 assembly text, one readable file per function. Addresses
come from a fixed environment, so the text does not depend on the run. Re-bless with
``WASMJIT_BLESS=1 pytest tests/unit/test_pipeline_golden.py``; every file is also assembled and
fully verified with Capstone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import wasmjit
from wasmjit.jit import codegen
from wasmjit.jit.assemble import assemble
from wasmjit.jit.lower import lower
from wasmjit.jit.regalloc import allocate

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "pipeline"

PROGRAMS = {
    "fib": """(module (func $fib (param $n i32) (result i32)
        (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
          (then (local.get $n))
          (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                         (call $fib (i32.sub (local.get $n) (i32.const 2))))))))""",
    "sum_loop": """(module (memory 1) (func $sum (param $n i32) (result i64) (local $i i32) (local $s i64)
        (block $done (loop $top
          (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
          (local.set $s (i64.add (local.get $s) (i64.load offset=8 (local.get $i))))
          (local.set $i (i32.add (local.get $i) (i32.const 8)))
          (br $top)))
        (local.get $s)))""",
    "div_and_shift": """(module (func $f (param i32 i32 i64) (result i64)
        (i64.shl (i64.extend_i32_s (i32.rem_s (local.get 0) (local.get 1))) (local.get 2))))""",
    "float_min_select": """(module (func $f (param f64 f64 i32) (result f64)
        (select (f64.min (local.get 0) (local.get 1)) (f64.const 1.5) (local.get 2))))""",
    "br_table": """(module (func $f (param i32) (result i32)
        (block $c (block $b (block $a (br_table $a $b $c (local.get 0)))
          (return (i32.const 10))) (return (i32.const 20))) (i32.const 30)))""",
}

# Store values for the relocation targets: handle i+1, arrays at 0x10000/0x20000/0x30000, global
# cells from 0x40000, type ids from 1, trap and helper routines at 0x50000 and 0x60000, helper 0.
_VALUES = {
    "func_code": lambda i: 0x10000 + 8 * (i + 1), "func_vmctx": lambda i: 0x20000 + 8 * (i + 1),
    "func_handle": lambda i: i + 1, "code_array": lambda: 0x10000, "vmctx_array": lambda: 0x20000,
    "type_array": lambda: 0x30000, "global": lambda i: 0x40000 + 8 * i, "type_id": lambda i: i + 1,
    "trap_routine": lambda: 0x50000, "helper_routine": lambda: 0x60000, "helper": lambda name, imm: 0,
}
ENV = codegen.CompileEnv(local_funcs={0, 1, 2}, resolve=lambda target: _VALUES[target[0]](*target[1:]))


def pipeline_text(wat: str) -> str:
    module = wasmjit.Module(wasmjit.Engine(), wat)._vmod
    parts = []
    for info in module.func_infos:
        ir = codegen.legalize(lower(module.module, info))
        alloc = allocate(ir, codegen.ALLOCATABLE_GPRS, codegen.ALLOCATABLE_XMMS, verify=True)
        compiled = codegen.CodeGen(ir, alloc, ENV, len(info.type.params)).run()
        assemble(compiled.masm, 0x7000_0000, full=True)  # the text must assemble and verify
        parts += ["== IR", str(ir), "== allocation", str(alloc), "== x86-64", compiled.masm.text()]
    return "\n".join(parts) + "\n"


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_pipeline_golden(name: str) -> None:
    text = pipeline_text(PROGRAMS[name])
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("WASMJIT_BLESS"):
        path.write_text(text)
    assert text == path.read_text()
