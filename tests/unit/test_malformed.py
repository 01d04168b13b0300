"""Hostile and fuzzer-found inputs: every one ends in a WasmjitError subclass with a clear message
(or, where the spec says so, is accepted), quickly and without allocating what it asks for.

The byte strings marked "fuzz" are minimized findings of ``python -m wasmjit.fuzz.mutate``; the
others are inputs a mutator would not produce but a hostile user would (huge declared counts,
deep nesting, over-long LEB128s, huge limits and offsets).
"""

from __future__ import annotations

import tracemalloc

import pytest

import wasmjit
from wasmjit.decode import decode_module
from wasmjit.decode.reader import Reader
from wasmjit.errors import DecodeError, Trap, ValidationError, WasmjitError
from wasmjit.validate import validate_module

HEADER = b"\0asm\x01\0\0\0"


def uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def section(sid: int, content: bytes) -> bytes:
    return bytes([sid]) + uleb(len(content)) + content


def vec(items: list[bytes]) -> bytes:
    return uleb(len(items)) + b"".join(items)


def func_module(body: bytes, *, start: bool = False, locals_: bytes = b"\x00",
                before_start: bytes = b"") -> bytes:
    """One function of type [] -> [] with ``body`` (without its final `end`), optionally the start."""
    entry = locals_ + body + b"\x0b"
    return (HEADER + section(1, vec([b"\x60\x00\x00"])) + section(3, vec([b"\x00"])) + before_start
            + (section(8, b"\x00") if start else b"") + section(10, vec([uleb(len(entry)) + entry])))


def instantiate(wasm: bytes | str, tier: str = "interp") -> wasmjit.Instance:
    config = wasmjit.Config()
    config.tier = tier
    engine = wasmjit.Engine(config)
    store = wasmjit.Store(engine)
    module = wasmjit.Module(engine, wasm)
    return wasmjit.Linker(engine).instantiate(store, module)


# --- Fuzz findings ------------------------------------------------------------------------------


# fuzz: a `name` section whose local-names subsection (id 2) declares 0x66 bytes of which only one
# is there. Its Reader ran past the section and raised IndexError; a malformed name section is
# ignored instead (custom sections never make a module malformed, spec 7.4).
NAME_SUBSECTION_PAST_END = bytes.fromhex(
    "0061736d01000000010b0260017d017d60017c017c03030200010609017d0143000000000b0a09020300000b0300000b"
    "0008046e616d6502664b")
# fuzz: a module-name subsection (id 0) of 3 bytes, then a function-names subsection (id 1) whose
# size (8) runs past the section's end (a splice of two spec modules).
NAME_MODULE_THEN_PAST_END = bytes.fromhex(
    "0061736d0100000001060160017f017f020b01024d6d046c6f61640000030201000503010001071202074d6d2e6c6f"
    "61640000046c6f616400010a0901070020002d00000b0b0c0100410a0b06f0f1f2f3f4f5001c046e616d650003024e"
    "6d01080100056c6f616400017f030201000a0c")
# fuzz: the same through the function-names subsection (id 1), second finding of the campaign.
NAME_FUNCS_PAST_END = HEADER + section(0, b"\x04name" + b"\x01\x7f\x02\x00")


@pytest.mark.parametrize("wasm", [NAME_SUBSECTION_PAST_END, NAME_MODULE_THEN_PAST_END, NAME_FUNCS_PAST_END,
                                  HEADER + section(0, b"\x04name\x02\x66\x4b")],
                         ids=["fuzz-locals", "fuzz-module-then-funcs", "funcs", "minimal"])
def test_name_subsection_running_past_the_section_is_ignored(wasm: bytes) -> None:
    module = decode_module(wasm)  # subsections before the broken one still count
    assert module.names.locals == {} and 1 not in module.names.funcs
    validate_module(module)  # and the module is valid


def test_reader_never_reads_past_its_data() -> None:
    """A Reader whose end lies past the data (what the name section parser built) clamps it."""
    with pytest.raises(DecodeError, match="unexpected end"):
        Reader(b"\x80", 0, 10).u32()
    with pytest.raises(DecodeError, match="unexpected end"):
        Reader(b"", 0, 10).u8()


# --- Huge declared counts --------------------------------------------------------------------


@pytest.mark.parametrize("wasm, message", [
    (HEADER + section(1, uleb(0xFFFFFFFF)), "length out of bounds"),  # 4G types
    (HEADER + section(2, uleb(0xFFFFFFFF)), "length out of bounds"),  # 4G imports
    (HEADER + section(3, uleb(0xFFFFFFFF)), "length out of bounds"),  # 4G functions
    (HEADER + section(6, uleb(0xFFFFFFFF)), "length out of bounds"),  # 4G globals
    (HEADER + section(9, uleb(0xFFFFFFFF)), "length out of bounds"),  # 4G element segments
    (HEADER + section(11, uleb(0xFFFFFFFF)), "length out of bounds"),  # 4G data segments
    (HEADER + section(1, vec([b"\x60" + uleb(0xFFFFFFFF)])), "length out of bounds"),  # 4G parameters
    (func_module(b"\x1c" + uleb(0x0FFFFFFF) + b"\x7f"), "length out of bounds"),  # select t*
    (func_module(b"\x41\x00\x0e" + uleb(0xFFFFFFFF) + b"\x00"), "length out of bounds"),  # br_table
    (func_module(b"", locals_=b"\x02" + uleb(0xFFFFFFFF) + b"\x7f" + uleb(0xFFFFFFFF) + b"\x7f"),
     "too many locals"),
    (HEADER + section(11, vec([b"\x01" + uleb(0xFFFFFFFF)])), "length out of bounds"),  # 4 GiB of data
    (HEADER + section(12, uleb(0xFFFFFFFF)), "data count and data section have inconsistent lengths"),
])
def test_huge_counts_are_rejected_without_allocating(wasm: bytes, message: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError, match=message):
            decode_module(wasm)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


# --- LEB128 --------------------------------------------------------------------------------


@pytest.mark.parametrize("leb, message", [
    (b"\x81\x80\x80\x80\x80\x00", "integer representation too long"),  # 6 bytes for a u32
    (b"\xff\xff\xff\xff\x7f", "integer too large"),  # bits above 2^32
    (b"\x80\x80\x80\x80\x10", "integer too large"),  # exactly 2^32
    (b"\x80\x80\x80", "unexpected end"),  # the section ends inside the LEB128
])
def test_bad_leb128_counts(leb: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message) as info:
        decode_module(HEADER + section(1, leb))
    assert info.value.offset is not None and 10 <= info.value.offset <= 15


def test_overlong_but_valid_leb128_is_accepted() -> None:
    module = decode_module(HEADER + section(1, b"\x81\x80\x80\x80\x00" + b"\x60\x80\x00\x80\x80\x00"))
    assert len(module.types) == 1


@pytest.mark.parametrize("wasm, message, offset", [
    (HEADER + b"\x01\x05\x01\x60", "length out of bounds", 8),  # section longer than the file
    (HEADER + b"\x01", "unexpected end", 9),  # no section size
    (HEADER + b"\x01\x80\x80", "unexpected end", 11),  # truncated section size
    (HEADER[:6], "unexpected end", 4),  # truncated version
    (func_module(b"\x41"), "unexpected end", None),  # the body ends inside i32.const
])
def test_truncated_input(wasm: bytes, message: str, offset: int | None) -> None:
    with pytest.raises(DecodeError, match=message) as info:
        decode_module(wasm)
    if offset is not None:
        assert info.value.offset == offset


# --- Deep nesting and large bodies -------------------------------------------------------------


def test_deeply_nested_blocks_do_not_recurse() -> None:
    """100,000 nested blocks (a recursive decoder/validator would hit RecursionError)."""
    n = 100_000
    wasm = func_module(b"\x02\x40" * n + b"\x0b" * n, start=True)
    instantiate(wasm)


def test_unbalanced_deep_nesting_is_malformed() -> None:
    n = 100_000
    with pytest.raises(DecodeError, match="END opcode expected|unexpected end"):
        decode_module(func_module(b"\x02\x40" * n + b"\x0b" * (n - 1)))
    wasm = func_module(b"\x03\x40" * n)  # never closed: the body's end closes the innermost loop
    with pytest.raises(DecodeError, match="END opcode expected|unexpected end"):
        decode_module(wasm)


def test_deeply_nested_type_error_is_a_validation_error() -> None:
    n = 50_000
    with pytest.raises(ValidationError, match="type mismatch"):
        validate_module(decode_module(func_module(b"\x02\x40" * n + b"\x41\x00" + b"\x0b" * n)))


# --- Huge limits and offsets -----------------------------------------------------------------


def test_table_minimum_beyond_the_implementation_limit() -> None:
    wasm = HEADER + section(4, vec([b"\x70\x00" + uleb(0xFFFFFFFF)]))
    with pytest.raises(WasmjitError,
                       match="table minimum of 4294967295 elements exceeds the implementation limit"):
        instantiate(wasm)


def test_many_large_tables_are_refused_before_allocating() -> None:
    """200 tables of 10M elements each would be 16 GB of handles (a 1 KB module)."""
    wasm = HEADER + section(4, vec([b"\x70\x00" + uleb(10_000_000)] * 200))
    with pytest.raises(WasmjitError, match=r"tables need 2000000000 elements in total, more than the "
                                           r"implementation limit"):
        instantiate(wasm)


def test_growing_many_tables_shares_one_budget() -> None:
    wat = """(module
      (table $a 6000000 funcref) (table $b 0 funcref) (table $c 0 funcref)
      (func (export "grow_b") (param i32) (result i32) (table.grow $b (ref.null func) (local.get 0)))
      (func (export "grow_c") (param i32) (result i32) (table.grow $c (ref.null func) (local.get 0))))"""
    config = wasmjit.Config()
    config.tier = "interp"
    engine = wasmjit.Engine(config)
    store = wasmjit.Store(engine)
    inst = wasmjit.Instance(store, wasmjit.Module(engine, wat), [])
    grow_b, grow_c = inst.exports(store)["grow_b"], inst.exports(store)["grow_c"]
    assert grow_b(store, 3_000_000) == 0
    assert grow_c(store, 3_000_000) == -1  # 6M + 3M + 3M > 10M
    assert grow_c(store, 1_000_000) == 0


@pytest.mark.parametrize("limits, message", [
    (b"\x00" + uleb(65537), "memory size must be at most 65536 pages"),
    (b"\x01\x00" + uleb(0xFFFFFFFF), "memory size must be at most 65536 pages"),
    (b"\x01\x02\x01", "size minimum must not be greater than maximum"),
])
def test_huge_memory_limits_are_invalid(limits: bytes, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        validate_module(decode_module(HEADER + section(5, vec([limits]))))


def test_largest_memory_is_reserved_not_allocated() -> None:
    instantiate(HEADER + section(5, vec([b"\x00" + uleb(65536)])))


@pytest.mark.parametrize("offset", [b"\x41\x7f", b"\x41\xff\xff\xff\xff\x07", b"\x41\x80\x80\x04"])
def test_data_segment_past_the_memory_traps(offset: bytes) -> None:
    wasm = (HEADER + section(5, vec([b"\x00\x01"]))
            + section(11, vec([b"\x00" + offset + b"\x0b" + vec([b"x"] * 10)])))
    with pytest.raises(Trap, match="out of bounds memory access"):
        instantiate(wasm)


def test_element_segment_past_the_table_traps() -> None:
    wasm = (HEADER + section(1, vec([b"\x60\x00\x00"])) + section(3, vec([b"\x00"]))
            + section(4, vec([b"\x70\x00\x01"]))
            + section(9, vec([b"\x00\x41\xff\xff\xff\xff\x07\x0b" + vec([b"\x00"])]))
            + section(10, vec([b"\x02\x00\x0b"])))
    with pytest.raises(Trap, match="out of bounds table access"):
        instantiate(wasm)


# --- Bulk memory on huge ranges ------------------------------------------------------------------


@pytest.mark.parametrize("tier", ["interp", "jit"])
def test_memory_fill_and_copy_need_no_temporary_of_their_size(tier: str) -> None:
    """memory.fill/copy of 32 MiB (up to 4 GiB are allowed) work in place: a temporary bytes
    object of the range's size made a 4 GiB fill in a start function take gigabytes more."""
    size = 32 << 20
    wat = f"""(module (memory (export "m") 512)
      (func (export "fill") (memory.fill (i32.const 0) (i32.const 0xab) (i32.const {size})))
      (func (export "copy") (memory.copy (i32.const 1) (i32.const 0) (i32.const {size - 1}))))"""
    config = wasmjit.Config()
    config.tier = tier
    engine = wasmjit.Engine(config)
    store = wasmjit.Store(engine)
    inst = wasmjit.Instance(store, wasmjit.Module(engine, wat), [])
    exports = inst.exports(store)
    memory = exports["m"]
    memory.write(store, b"\x01\x02\x03", size - 3)
    tracemalloc.start()
    try:
        exports["fill"](store)
        assert memory.read(store, size - 4, size) == b"\xab" * 4
        memory.write(store, b"\x01\x02\x03", 0)
        exports["copy"](store)  # overlapping, forwards by one byte
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert memory.read(store, 0, 5) == b"\x01\x01\x02\x03\xab"
    assert memory.read(store, size - 2, size) == b"\xab\xab"
    assert peak < 4 << 20


def test_table_fill_of_millions_of_elements() -> None:
    wat = """(module (table (export "t") 5000000 funcref) (func $f) (elem declare func $f)
      (func (export "fill") (table.fill 0 (i32.const 1) (ref.func $f) (i32.const 4999999))))"""
    config = wasmjit.Config()
    config.tier = "interp"
    engine = wasmjit.Engine(config)
    store = wasmjit.Store(engine)
    inst = wasmjit.Instance(store, wasmjit.Module(engine, wat), [])
    inst.exports(store)["fill"](store)
    table = inst.exports(store)["t"]
    assert table.get(store, 0) is None and table.get(store, 4_999_999) is not None


# --- Deep recursion with large frames -----------------------------------------------------------


def test_recursion_with_huge_frames_is_bounded_by_frame_size() -> None:
    """A 30-byte module: a start function with 50,000 i64 locals that calls itself. 10,000 such
    interpreter frames held 4 GB (and took 40 s); large frames now count as several calls."""
    wasm = func_module(b"\x10\x00", start=True, locals_=b"\x01" + uleb(50_000) + b"\x7e")
    assert len(wasm) < 40
    tracemalloc.start()
    try:
        with pytest.raises(Trap, match="call stack exhausted") as info:
            instantiate(wasm, "interp")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 << 20
    assert 50 < len(info.value.frames) < 1000


def test_recursion_with_small_frames_still_reaches_the_depth_limit() -> None:
    wat = """(module (func $f (param i32) (result i32) (i32.add (call $f (local.get 0)) (i32.const 1)))
      (func $s (drop (call $f (i32.const 0)))) (start $s))"""
    with pytest.raises(Trap, match="call stack exhausted") as info:
        instantiate(wat, "interp")
    assert len(info.value.frames) > 9_000


def test_jit_compiles_deeply_nested_if_else() -> None:
    """30,000 nested `if (i32.const 0) ... else end`: codegen sliced the rest of the instruction list
    at every jump to see whether only labels followed (quadratic: 100,000 levels took > 5 minutes
    to compile on tier jit, about 10 s now)."""
    n = 30_000
    wasm = func_module(b"\x41\x00\x04\x40" * n + b"\x05\x0b" * n, start=True)
    instantiate(wasm, "jit")


def test_jit_lowers_functions_with_many_locals() -> None:
    """25,000 locals, each `local.get i; local.set i+1`: lowering scanned the list of locals at
    every local.set (50,000 locals took a minute on tier jit)."""
    n = 25_000
    body = b"".join(b"\x20" + uleb(i) + b"\x21" + uleb((i + 1) % n) for i in range(n))
    wasm = func_module(body, locals_=b"\x01" + uleb(n) + b"\x7f")
    instantiate(wasm, "jit")


@pytest.mark.parametrize("tier", ["interp", "jit", "tiered", "unicorn"])
def test_memory_copy_in_every_overlap(tier: str) -> None:
    """memory.copy forwards, backwards (16-byte blocks and single bytes) and without overlap, at
    distances 0-40 and lengths 0-70, against a Python model."""
    wat = """(module (memory (export "m") 1)
      (func (export "copy") (param i32 i32 i32) (memory.copy (local.get 0) (local.get 1) (local.get 2))))"""
    config = wasmjit.Config()
    config.tier = tier
    engine = wasmjit.Engine(config)
    store = wasmjit.Store(engine)
    exports = wasmjit.Instance(store, wasmjit.Module(engine, wat), []).exports(store)
    memory, copy = exports["m"], exports["copy"]
    init = bytes((7 * i + 3) & 0xFF for i in range(256))
    for distance in range(-40, 41, 3):
        for n in (0, 1, 7, 15, 16, 17, 31, 32, 33, 70):
            memory.write(store, init, 0)
            src = 100
            dst = src + distance
            expected = bytearray(init)
            expected[dst:dst + n] = init[src:src + n]
            copy(store, dst, src, n)
            assert memory.read(store, 0, 256) == expected, (distance, n)
