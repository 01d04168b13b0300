"""Executable code memory: small functions assembled at their final address, committed W^X and
called through ctypes; the reservation protocol; the CPU feature check."""

from __future__ import annotations

import ctypes
import math
import struct
from collections.abc import Callable, Iterator

import pytest

from wasmjit.errors import UnsupportedError
from wasmjit.jit.assemble import Assembled, assemble
from wasmjit.jit.codemem import (
    PAGE_SIZE,
    CodeBlock,
    CodeMemory,
    CodeMemoryError,
    cpu_features,
    default_code_memory,
)
from wasmjit.jit.x64 import (
    CL,
    R8,
    R10,
    R11,
    RAX,
    RCX,
    RDI,
    RDX,
    RSI,
    XMM0,
    XMM1,
    Cond,
    Masm,
    Mem,
)

u64 = ctypes.c_uint64
f64 = ctypes.c_double


@pytest.fixture(scope="module")
def memory() -> Iterator[CodeMemory]:
    with CodeMemory(16 << 20) as mem:
        yield mem


def compile_function(memory: CodeMemory, build: Callable[[Masm], None], restype: type,
                     *argtypes: type) -> tuple[Callable[..., object], Assembled]:
    m = Masm()
    build(m)
    with memory.reserve(256) as reservation:
        assembled = assemble(m, reservation.next_address, full=True)
        reservation.add(assembled.code, assembled.address)
        reservation.commit()
    function = ctypes.CFUNCTYPE(restype, *argtypes)(assembled.address)
    return function, assembled


def permissions(address: int) -> str:
    """The protection of the mapping holding ``address``, from /proc/self/maps (e.g. ``r-xp``)."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            span, perms = line.split()[:2]
            start, end = (int(part, 16) for part in span.split("-"))
            if start <= address < end:
                return perms
    raise LookupError(f"{address:#x} is not mapped")


# --- Execution ---


def test_add_two_u64(memory: CodeMemory) -> None:
    def build(m: Masm) -> None:
        m.mov(RAX, RDI)
        m.add(RAX, RSI)
        m.ret()

    add, _ = compile_function(memory, build, u64, u64, u64)
    assert add(2, 3) == 5
    assert add(2**64 - 1, 2) == 1


def test_loop_sums_one_to_n(memory: CodeMemory) -> None:
    def build(m: Masm) -> None:
        top, done = m.new_label("loop"), m.new_label("done")
        m.xor(RAX.r32, RAX.r32)
        m.test(RDI, RDI)
        m.jcc(Cond.E, done)
        m.align(16)
        m.bind(top)
        m.add(RAX, RDI)
        m.sub(RDI, 1)
        m.jcc(Cond.NE, top)
        m.bind(done)
        m.ret()

    total, assembled = compile_function(memory, build, u64, u64)
    assert [total(n) for n in (0, 1, 10, 100_000)] == [0, 1, 55, 5_000_050_000]
    assert assembled.labels["wj_loop0"] % 16 == 0


def test_jump_table_switch(memory: CodeMemory) -> None:
    values = [100, 200, 300, 400]

    def build(m: Masm) -> None:
        cases = [m.new_label("case") for _ in values]
        default = m.new_label("default")
        table = m.jump_table([cases[2], cases[0], cases[3], cases[1]])
        m.cmp(RDI, 3)
        m.jcc(Cond.A, default)  # unsigned: negative indices go to the default too
        m.table_jump(RDI, table, R10, R11)
        for label, value in zip(cases, values, strict=True):
            m.bind(label)
            m.mov(RAX.r32, value)
            m.ret()
        m.bind(default)
        m.mov_imm(RAX, -1)
        m.ret()

    switch, _ = compile_function(memory, build, ctypes.c_int64, u64)
    assert [switch(i) for i in range(6)] == [300, 100, 400, 200, -1, -1]
    assert switch(2**64 - 1) == -1


def test_sse_with_rip_relative_constants(memory: CodeMemory) -> None:
    """f(x) = |x| * 2.5 + 1.0, with the sign mask and both constants in the data area."""

    def build(m: Masm) -> None:
        m.andpd(XMM0, Mem(m.const_u64x2(0x7FFF_FFFF_FFFF_FFFF, 0x7FFF_FFFF_FFFF_FFFF), size=16))
        m.mulsd(XMM0, Mem(m.const_f64(2.5), size=8))
        m.movsd(XMM1, Mem(m.const_f64(1.0), size=8))
        m.addsd(XMM0, XMM1)
        m.ret()

    f, assembled = compile_function(memory, build, f64, f64)
    assert [f(x) for x in (0.0, 2.0, -4.0)] == [1.0, 6.0, 11.0]
    assert math.isnan(f(math.nan)) and f(-math.inf) == math.inf
    assert assembled.end - assembled.address > assembled.code_size  # the constants came after the code


def test_integer_and_float_instruction_semantics(memory: CodeMemory) -> None:
    """The SSE4.1/POPCNT/LZCNT/TZCNT instructions the JIT relies on, run natively."""

    def build_counts(m: Masm) -> None:
        m.popcnt(RAX, RDI)
        m.lzcnt(RCX, RDI)
        m.shl(RCX, 8)
        m.or_(RAX, RCX)
        m.tzcnt(RCX.r32, RDI.r32)
        m.shl(RCX, 16)
        m.or_(RAX, RCX)
        m.ret()

    counts, _ = compile_function(memory, build_counts, u64, u64)
    for value in (0, 1, 0x8000_0000_0000_0000, 0xF0F0, 0xFFFF_FFFF_0000_0000):
        low = value & 0xFFFF_FFFF
        tz32 = 32 if low == 0 else (low & -low).bit_length() - 1
        assert counts(value) == bin(value).count("1") | (64 - value.bit_length()) << 8 | tz32 << 16

    def build_floor(m: Masm) -> None:
        m.roundsd(XMM0, XMM0, 9)  # floor, no inexact exception
        m.cvttsd2si(RAX, XMM0)
        m.ret()

    floor, _ = compile_function(memory, build_floor, ctypes.c_int64, f64)
    assert [floor(x) for x in (2.5, -2.5, 7.0)] == [2, -3, 7]
    assert floor(math.nan) == -(2**63)  # the "integer indefinite" value

    def build_divide(m: Masm) -> None:  # (rdi / rsi) << 32 | rdi % rsi, signed 32-bit
        m.mov(RAX.r32, RDI.r32)
        m.cdq()
        m.idiv(RSI.r32)
        m.mov(R8.r32, RDX.r32)
        m.shl(RAX, 32)
        m.or_(RAX, R8)
        m.mov(RCX.r32, 0)
        m.shr(RAX, CL)
        m.ret()

    divide, _ = compile_function(memory, build_divide, u64, ctypes.c_int32, ctypes.c_int32)
    assert divide(-7, 2) == ((-3 & 0xFFFF_FFFF) << 32) | (-1 & 0xFFFF_FFFF)

    def build_bits(m: Masm) -> None:  # movq/movd round trip, bswap, cvtsi2sd
        m.movq(XMM1, RDI)
        m.movq(RAX, XMM1)
        m.bswap(RAX)
        m.cvtsi2sd(XMM0, RAX.r32)
        m.ret()

    bits, _ = compile_function(memory, build_bits, f64, u64)
    for value in (0x0102_0304_0506_0708, 0x0000_0080_0000_0000):
        swapped = int.from_bytes(value.to_bytes(8, "little"), "big")
        assert bits(value) == float(struct.unpack("<i", struct.pack("<I", swapped & 0xFFFF_FFFF))[0])
    assert bits(0x0000_0080_0000_0000) == -(2.0**31)


# --- W^X and the reservation protocol ---


def test_committed_code_is_never_writable(memory: CodeMemory) -> None:
    reservation = memory.reserve(100)
    assert permissions(reservation.address) == "---p"
    m = Masm()
    m.ret()
    assembled = assemble(m, reservation.next_address)
    reservation.add(assembled.code, assembled.address)
    assert permissions(reservation.address) == "---p"  # staged only: nothing mapped writable yet
    block = reservation.commit()
    assert permissions(block.address) == "r-xp"
    assert ctypes.string_at(block.address, PAGE_SIZE) == b"\xc3" + b"\xcc" * (PAGE_SIZE - 1)
    with open("/proc/self/maps") as maps:  # (libffi's callback trampolines elsewhere may be rwx)
        ours = [line.split()[:2] for line in maps
                if memory.base <= int(line.split("-")[0], 16) < memory.base + memory.size]
    assert ours and all(perms in ("---p", "r-xp") for _, perms in ours), ours


def test_each_commit_gets_its_own_pages(memory: CodeMemory) -> None:
    blocks = []
    for _ in range(3):
        with memory.reserve(10) as reservation:
            m = Masm()
            m.mov(RAX.r32, 7)
            m.ret()
            assembled = assemble(m, reservation.next_address)
            reservation.add(assembled.code, assembled.address)
            blocks.append(reservation.commit())
    assert all(block.address % PAGE_SIZE == 0 for block in blocks)
    assert blocks[1].address - blocks[0].address == PAGE_SIZE == blocks[2].address - blocks[1].address
    assert all(ctypes.CFUNCTYPE(u64)(block.address)() == 7 for block in blocks)


def test_batch_of_functions_in_one_reservation(memory: CodeMemory) -> None:
    with memory.reserve(64) as reservation:
        for value in range(3):
            m = Masm()
            m.mov(RAX.r32, value)
            m.ret()
            assembled = assemble(m, reservation.next_address)
            assert reservation.add(assembled.code, assembled.address) == assembled.address
        block = reservation.commit()
    assert isinstance(block, CodeBlock)
    assert [e - block.address for e in block.entries] == [0, 16, 32] and block.size == 32 + 6
    assert [ctypes.CFUNCTYPE(u64)(entry)() for entry in block.entries] == [0, 1, 2]


def test_short_estimate_grows_the_newest_reservation(memory: CodeMemory) -> None:
    with memory.reserve(1) as reservation:
        m = Masm()
        m.mov(RAX, RDI)
        for _ in range(2000):
            m.add(RAX, 1)
        m.ret()
        assembled = assemble(m, reservation.next_address)
        assert len(assembled.code) > PAGE_SIZE
        reservation.add(assembled.code, assembled.address)
        assert reservation.capacity == 2 * PAGE_SIZE
        block = reservation.commit()
    assert ctypes.CFUNCTYPE(u64, u64)(block.address)(5) == 2005


def test_reservation_that_cannot_grow(memory: CodeMemory) -> None:
    first = memory.reserve(10)
    second = memory.reserve(10)
    with pytest.raises(CodeMemoryError, match="do not fit .* cannot grow: reserve more and assemble again"):
        first.add(b"\x90" * (PAGE_SIZE + 1), first.next_address)
    first.abort()
    second.abort()


def test_reservation_misuse(memory: CodeMemory) -> None:
    reservation = memory.reserve(100)
    with pytest.raises(CodeMemoryError, match="code assembled for 0x.* but the next function goes at"):
        reservation.add(b"\xc3", reservation.address + 16)
    reservation.add(b"\xc3", reservation.address)
    reservation.commit()
    with pytest.raises(CodeMemoryError, match="already committed"):
        reservation.add(b"\xc3", reservation.next_address)
    with pytest.raises(CodeMemoryError, match="already committed"):
        reservation.commit()


def test_abort_gives_the_pages_back(memory: CodeMemory) -> None:
    used = memory.used
    with pytest.raises(RuntimeError), memory.reserve(3 * PAGE_SIZE) as reservation:
        assert memory.used == used + 3 * PAGE_SIZE
        raise RuntimeError("compilation failed")
    assert memory.used == used
    with pytest.raises(CodeMemoryError, match="already aborted"):
        reservation.commit()


def test_exhaustion_and_close() -> None:
    with CodeMemory(2 * PAGE_SIZE) as small:
        small.reserve(PAGE_SIZE)
        with pytest.raises(CodeMemoryError, match="code memory exhausted"):
            small.reserve(2 * PAGE_SIZE)
    with pytest.raises(CodeMemoryError, match="closed"):
        small.reserve(1)


def test_default_code_memory_is_shared() -> None:
    assert default_code_memory() is default_code_memory()
    assert default_code_memory().size == 256 << 20


# --- CPU features ---


def test_host_has_the_required_cpu_features() -> None:
    flags = cpu_features()
    assert {"sse4_1", "popcnt", "bmi1"} <= flags


def test_missing_cpu_features_are_named() -> None:
    with pytest.raises(UnsupportedError, match=r"lacks: abm \(lzcnt\), bmi1 \(tzcnt\)"):
        cpu_features(["sse4_1", "popcnt", "sse2"])
    with pytest.raises(UnsupportedError, match=r"sse4_1 \(roundss/roundsd\), popcnt \(popcnt\)"):
        cpu_features([])
    assert cpu_features(["sse4_1", "popcnt", "lzcnt", "bmi1"]) == {"sse4_1", "popcnt", "lzcnt", "bmi1"}
