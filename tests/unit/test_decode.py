"""Decoder: well-formed modules decode; malformed ones raise DecodeError with the spec's message
and the byte offset where decoding failed."""

from __future__ import annotations

import pytest

from wasmjit import opcodes
from wasmjit.decode import decode_module
from wasmjit.errors import DecodeError

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


TYPE_VOID = section(1, vec([b"\x60\x00\x00"]))  # one type: [] -> []
FUNC_0 = section(3, vec([b"\x00"]))


def code(*bodies: bytes) -> bytes:
    return section(10, vec([uleb(len(b)) + b for b in bodies]))


def decode_error(data: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode_module(data)
    return info.value


def test_minimal_module() -> None:
    module = decode_module(HEADER + TYPE_VOID + FUNC_0 + code(b"\x00\x0b"))
    assert len(module.funcs) == 1
    op, imm, offset = module.funcs[0].code.body[0]
    assert op.name == "end" and imm is None
    assert offset == len(HEADER + TYPE_VOID + FUNC_0) + 5  # id, size, count, body size, locals


def test_instructions_carry_immediates_and_offsets() -> None:
    body = b"\x00" + b"\x41\x7f" + b"\x42\x80\x01" + b"\x1a\x1a\x0b"  # i32.const -1; i64.const 128
    module = decode_module(HEADER + TYPE_VOID + FUNC_0 + code(body))
    instrs = module.funcs[0].code.body
    assert [(op.name, imm) for op, imm, _ in instrs] == [
        ("i32.const", 0xFFFFFFFF), ("i64.const", 128), ("drop", None), ("drop", None), ("end", None)]
    assert instrs[1][2] - instrs[0][2] == 2


@pytest.mark.parametrize("data,message,offset", [
    (b"", "unexpected end", 0),
    (b"\0as", "unexpected end", 0),
    (b"\0asx\x01\0\0\0", "magic header not detected", 0),
    (b"\0asm\x01\0", "unexpected end", 4),
    (b"\0asm\x02\0\0\0", "unknown binary version", 4),
])
def test_preamble(data: bytes, message: str, offset: int) -> None:
    err = decode_error(data)
    assert (err.reason, err.offset) == (message, offset)


def test_truncated_section() -> None:
    err = decode_error(HEADER + b"\x01\x05\x01\x60")
    assert err.reason == "length out of bounds"
    assert err.offset == 8


def test_truncated_inside_section() -> None:
    # A type section whose size fits the module but whose content stops early.
    err = decode_error(HEADER + section(1, b"\x01\x60"))
    assert err.reason == "unexpected end of section or function"


def test_leb_too_long() -> None:
    # Function section declaring a type index with 6 LEB bytes.
    err = decode_error(HEADER + TYPE_VOID + section(3, b"\x01\x80\x80\x80\x80\x80\x00"))
    assert err.reason == "integer representation too long"
    assert err.offset == len(HEADER + TYPE_VOID) + 2 + 5


def test_leb_too_large() -> None:
    err = decode_error(HEADER + TYPE_VOID + section(3, b"\x01\xff\xff\xff\xff\x1f"))
    assert err.reason == "integer too large"


def test_signed_leb_unused_bits_must_match_sign() -> None:
    body = b"\x00\x41\xff\xff\xff\xff\x4f\x1a\x0b"  # i32.const with bad high bits in byte 5
    err = decode_error(HEADER + TYPE_VOID + FUNC_0 + code(body))
    assert err.reason == "integer too large"


def test_section_order() -> None:
    err = decode_error(HEADER + FUNC_0 + TYPE_VOID)
    assert err.reason == "unexpected content after last section"
    assert err.offset == len(HEADER + FUNC_0)


def test_duplicate_section() -> None:
    assert decode_error(HEADER + TYPE_VOID + TYPE_VOID).reason == "unexpected content after last section"


def test_unknown_section_id() -> None:
    err = decode_error(HEADER + section(13, b""))
    assert (err.reason, err.offset) == ("malformed section id", 8)


def test_section_size_mismatch() -> None:
    err = decode_error(HEADER + section(1, b"\x01\x60\x00\x00\x00"))  # one extra byte
    assert err.reason == "section size mismatch"


def test_function_and_code_count_mismatch() -> None:
    err = decode_error(HEADER + TYPE_VOID + section(3, vec([b"\x00", b"\x00"])) + code(b"\x00\x0b"))
    assert err.reason == "function and code section have inconsistent lengths"
    err = decode_error(HEADER + TYPE_VOID + FUNC_0)
    assert err.reason == "function and code section have inconsistent lengths"


def test_too_many_locals() -> None:
    body = b"\x02" + uleb(0xFFFFFFFF) + b"\x7f" + uleb(2) + b"\x7e" + b"\x0b"
    assert decode_error(HEADER + TYPE_VOID + FUNC_0 + code(body)).reason == "too many locals"


def test_illegal_opcode() -> None:
    err = decode_error(HEADER + TYPE_VOID + FUNC_0 + code(b"\x00\x06\x0b"))
    assert err.reason == "illegal opcode"
    assert err.offset == len(HEADER + TYPE_VOID + FUNC_0) + 5


def test_missing_end() -> None:
    err = decode_error(HEADER + TYPE_VOID + FUNC_0 + code(b"\x00\x01"))
    assert err.reason == "unexpected end of section or function"


def test_zero_byte_expected() -> None:
    mem = section(5, vec([b"\x00\x01"]))
    body = b"\x00\x3f\x01\x1a\x0b"  # memory.size with a non-zero memory index byte
    err = decode_error(HEADER + TYPE_VOID + FUNC_0 + mem + code(body))
    assert err.reason == "zero byte expected"


def test_data_count_required() -> None:
    mem = section(5, vec([b"\x00\x01"]))
    body = b"\x00\xfc\x09\x00\x0b"  # data.drop 0 without a data count section
    err = decode_error(HEADER + TYPE_VOID + FUNC_0 + mem + code(body))
    assert err.reason == "data count section required"


def test_malformed_utf8_name() -> None:
    custom = section(0, b"\x02\xff\xfe")
    assert decode_error(HEADER + custom).reason == "malformed UTF-8 encoding"


def test_malformed_import_kind_and_mutability() -> None:
    imp = section(2, vec([b"\x01m\x01f\x04\x00"]))
    assert decode_error(HEADER + imp).reason == "malformed import kind"
    glob = section(6, vec([b"\x7f\x02\x41\x00\x0b"]))
    assert decode_error(HEADER + glob).reason == "malformed mutability"


def test_simd_module_decodes_and_is_flagged() -> None:
    body = b"\x00\xfd\x0c" + bytes(16) + b"\x1a\x0b"  # v128.const 0; drop
    module = decode_module(HEADER + TYPE_VOID + FUNC_0 + code(body))
    assert module.uses_simd
    assert module.funcs[0].code.body[0][0] is opcodes.BY_NAME["v128.const"]


def test_name_section() -> None:
    func_names = vec([b"\x00\x04main"])
    names = b"\x01" + uleb(len(func_names)) + func_names
    module = decode_module(HEADER + TYPE_VOID + FUNC_0 + code(b"\x00\x0b") + section(0, b"\x04name" + names))
    assert module.names.funcs == {0: "main"}


def test_malformed_name_section_is_ignored() -> None:
    module = decode_module(HEADER + section(0, b"\x04name\x01\xff"))
    assert module.names.funcs == {}


def test_oversized_vector_length() -> None:
    err = decode_error(HEADER + section(1, uleb(1000) + b"\x60"))
    assert err.reason == "length out of bounds"
