"""Validator: side tables for later stages (stack heights, block ends, branch targets) and errors
that name the function and byte offset."""

from __future__ import annotations

import pytest

import wasmjit
from wasmjit.decode import decode_module
from wasmjit.errors import UnsupportedError, ValidationError
from wasmjit.validate import Target, validate_module


def info_of(wat: str, func: int = 0):  # noqa: ANN201
    return validate_module(decode_module(wasmjit.wat2wasm(wat))).func_infos[func]


def names(info) -> list[str]:  # noqa: ANN001
    return [op.name for op, _, _ in info.body]


def test_heights_and_max_height() -> None:
    info = info_of("(module (func (param i32) (result i32)"
                   " local.get 0 i32.const 1 i32.const 2 i32.add i32.add))")
    assert names(info) == ["local.get", "i32.const", "i32.const", "i32.add", "i32.add", "end"]
    assert info.heights == [0, 1, 2, 3, 2, 1]
    assert info.max_height == 3
    assert info.local_types == ("i32",)


def test_block_ends_and_branch_targets() -> None:
    info = info_of("""(module (func (param i32) (result i32)
        (block $out (result i32)            ;; 0
          (loop $top                        ;; 1
            local.get 0                     ;; 2
            br_if $top                      ;; 3
            i32.const 7                     ;; 4
            br $out)                        ;; 5
          i32.const 8)                      ;; 6 is the loop's end
        ))""")
    body = names(info)
    loop_end = body.index("end")
    block_end = body.index("end", loop_end + 1)
    assert info.ends[0] == block_end and info.ends[1] == loop_end
    assert info.targets[3] == Target(1, 0, 0)  # br_if to the loop: its header, carrying nothing
    assert info.targets[5] == Target(block_end, 1, 0)  # br to the block: its end, one value
    assert info.heights[loop_end] == -1  # after `br` the code is unreachable


def test_br_table_targets_and_function_label() -> None:
    info = info_of("""(module (func (param i32) (result i32)
        (block (result i32) (i32.const 1) (local.get 0) (br_table 0 1 0))))""")
    block_end = names(info).index("end")
    func_end = len(info.body) - 1
    assert info.targets[3] == (Target(block_end, 1, 0), Target(func_end, 1, 0), Target(block_end, 1, 0))


def test_if_else_sides() -> None:
    info = info_of("(module (func (param i32) (result i32)"
                   " (if (result i32) (local.get 0) (then (i32.const 1)) (else (i32.const 2)))))")
    body = names(info)
    assert info.elses[1] == body.index("else")
    assert info.ends[1] == body.index("end")
    assert info.block_types[1].results == ("i32",)


@pytest.mark.parametrize("body,message", [
    ("i32.const 1 i64.const 2 i32.add drop", "type mismatch"),
    ("local.get 5 drop", "unknown local 5"),
    ("br 3", "unknown label"),
    ("call 9", "unknown function 9"),
    ("i32.const 0 i32.load offset=0 align=8 drop", "alignment must not be larger than natural"),
])
def test_errors_name_function_and_offset(body: str, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        info_of(f"(module (memory 1) (func {body}))")
    assert err.value.reason == message
    assert err.value.func == 0
    assert err.value.offset is not None and err.value.offset > 8
    assert f"in function 0, at offset 0x{err.value.offset:x}" in str(err.value)


def test_simd_is_reported_as_unsupported() -> None:
    with pytest.raises(UnsupportedError, match="SIMD is not supported yet"):
        info_of("(module (func (result v128) v128.const i32x4 0 0 0 0))")
