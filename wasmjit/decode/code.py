"""Instruction decoding: function bodies and constant expressions into ``Instr`` tuples.

Immediates are read by the instruction's immediate kind from :mod:`wasmjit.opcodes`; nothing
here knows individual opcodes except the block structure (block/loop/if/end). Imports:
decode.reader, opcodes, structure, errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import opcodes as O
from ..structure import Code, Instr
from .reader import Reader

MAX_LOCALS = 50_000  # implementation limit, as in wasmtime (spec only bounds it by 2**32)


def _blocktype(r: Reader) -> Any:
    data = r.data
    if r.pos < r.end:
        byte = data[r.pos]
        if byte == 0x40:
            r.pos += 1
            return None
        if byte in O.VALTYPE_BYTES:
            return r.valtype()
    start = r.pos
    index = r.sleb(33)
    if index < 0:
        raise r.error("malformed block type", start)
    return index


def _zero_byte(r: Reader) -> None:
    start = r.pos
    if r.u8() != 0:
        raise r.error("zero byte expected", start)


def _br_table(r: Reader) -> tuple[tuple[int, ...], int]:
    n = r.vec_len()
    labels = tuple(r.u32() for _ in range(n))
    return labels, r.u32()


def _memarg(r: Reader) -> tuple[int, int]:
    align = r.u32()
    return align, r.u32()


def _memarg_lane(r: Reader) -> tuple[int, int, int]:
    align = r.u32()
    offset = r.u32()
    return align, offset, r.u8()


def _select_t(r: Reader) -> tuple[str, ...]:
    return tuple(r.valtype() for _ in range(r.vec_len()))


def _data_mem(r: Reader) -> int:
    index = r.u32()
    _zero_byte(r)
    return index


def _mem_mem(r: Reader) -> None:
    _zero_byte(r)
    _zero_byte(r)


def _pair(r: Reader) -> tuple[int, int]:
    first = r.u32()
    return first, r.u32()


IMM_READERS: dict[str, Callable[[Reader], Any]] = {
    O.IMM_NONE: lambda r: None,
    O.IMM_BLOCK: _blocktype,
    O.IMM_LABEL: Reader.u32,
    O.IMM_BR_TABLE: _br_table,
    O.IMM_FUNC: Reader.u32,
    O.IMM_CALL_INDIRECT: _pair,
    O.IMM_LOCAL: Reader.u32,
    O.IMM_GLOBAL: Reader.u32,
    O.IMM_TABLE: Reader.u32,
    O.IMM_MEMARG: _memarg,
    O.IMM_MEM: _zero_byte,
    O.IMM_I32: lambda r: r.sleb(32) & 0xFFFFFFFF,
    O.IMM_I64: lambda r: r.sleb(64) & 0xFFFFFFFFFFFFFFFF,
    O.IMM_F32: Reader.f32_bits,
    O.IMM_F64: Reader.f64,
    O.IMM_SELECT_T: _select_t,
    O.IMM_REFTYPE: Reader.reftype,
    O.IMM_DATA_MEM: _data_mem,
    O.IMM_DATA: Reader.u32,
    O.IMM_MEM_MEM: _mem_mem,
    O.IMM_ELEM_TABLE: _pair,
    O.IMM_ELEM: Reader.u32,
    O.IMM_TABLE_TABLE: _pair,
    O.IMM_V128: lambda r: r.bytes(16),
    O.IMM_SHUFFLE: lambda r: tuple(r.bytes(16)),
    O.IMM_LANE: Reader.u8,
    O.IMM_MEMARG_LANE: _memarg_lane,
}

_SINGLE = O.SINGLE_BYTE
_OPENERS = frozenset(("block", "loop", "if"))
_MEMORY_INIT = O.BY_NAME["memory.init"]
_DATA_DROP = O.BY_NAME["data.drop"]


def _read_op(r: Reader) -> O.Op:
    start = r.pos
    byte = r.u8()
    op = _SINGLE[byte]
    if op is not None:
        return op
    if byte in (O.PREFIX_FC, O.PREFIX_FD):
        op = O.BY_CODE.get(O.prefixed(byte, r.u32()))
        if op is not None:
            if byte == O.PREFIX_FD:
                r.saw_simd = True
            return op
    raise r.error("illegal opcode", start)


def read_expr(r: Reader, data_count: int | None = None) -> list[Instr]:
    """Decode instructions up to and including the `end` that closes the expression."""
    out: list[Instr] = []
    append = out.append
    readers = IMM_READERS
    depth = 0
    while True:
        offset = r.pos
        if offset >= r.end:
            ended = r.end >= len(r.data)
            raise r.error("unexpected end of section or function" if ended else "END opcode expected")
        op = _read_op(r)
        append((op, readers[op.imm](r), offset))
        name = op.name
        if name in _OPENERS:
            depth += 1
        elif name == "end":
            if depth == 0:
                return out
            depth -= 1
        elif data_count is None and (op is _MEMORY_INIT or op is _DATA_DROP):
            raise r.error("data count section required", offset)


def read_code(r: Reader, data_count: int | None) -> Code:
    """Decode one entry of the code section (size, locals, body)."""
    entry = r.pos
    size = r.u32()
    body_start = r.pos
    if size > r.end - body_start:
        raise r.error("unexpected end of section or function", entry)
    body_end = body_start + size
    outer_end, r.end = r.end, body_end
    try:
        runs: list[tuple[int, str]] = []
        total = 0
        for _ in range(r.vec_len()):
            count = r.u32()
            total += count
            if total > MAX_LOCALS:
                raise r.error("too many locals")
            runs.append((count, r.valtype()))
        body = read_expr(r, data_count)
        if r.pos != body_end:
            raise r.error("section size mismatch")
    finally:
        r.end = outer_end
    return Code(runs, body, body_start, total)
