"""The opcode table agrees with wasm-tools' encoder for every instruction."""

import subprocess

import pytest

from wasmjit import opcodes

# Text-format immediates that make each instruction parse (typing is not checked by `parse`).
_TEXT_IMM = {
    opcodes.IMM_BLOCK: "", opcodes.IMM_LABEL: "0", opcodes.IMM_BR_TABLE: "0",
    opcodes.IMM_FUNC: "0", opcodes.IMM_CALL_INDIRECT: "(type 0)", opcodes.IMM_LOCAL: "0",
    opcodes.IMM_GLOBAL: "0", opcodes.IMM_TABLE: "0", opcodes.IMM_MEMARG: "",
    opcodes.IMM_MEM: "", opcodes.IMM_I32: "0", opcodes.IMM_I64: "0", opcodes.IMM_F32: "0",
    opcodes.IMM_F64: "0", opcodes.IMM_SELECT_T: "(result i32)", opcodes.IMM_REFTYPE: "func",
    opcodes.IMM_DATA_MEM: "0", opcodes.IMM_DATA: "0", opcodes.IMM_MEM_MEM: "",
    opcodes.IMM_ELEM_TABLE: "0", opcodes.IMM_ELEM: "0", opcodes.IMM_TABLE_TABLE: "",
    opcodes.IMM_V128: "i64x2 0 0", opcodes.IMM_SHUFFLE: " ".join(["0"] * 16),
    opcodes.IMM_LANE: "0", opcodes.IMM_MEMARG_LANE: "0", opcodes.IMM_NONE: "",
}


def _encode_all() -> list[bytes]:
    """Assemble one function per instruction; return each function body's bytes."""
    funcs = []
    for op in opcodes.OPS:
        text_name = "select" if op.name == "select_t" else op.name  # both are `select` in text
        text = f"{text_name} {_TEXT_IMM[op.imm]}"
        if op.name in ("block", "loop", "if"):
            text += " end"
        elif op.name == "else":
            text = "if else end"
        elif op.name == "end":
            text = "block end"
        funcs.append(f"(func {text})")
    wat = "(module (type (func)) (memory 1) (table 1 funcref) (global i32 (i32.const 0))"
    wat += " (data \"\") (elem func 0) " + " ".join(funcs) + ")"
    wasm = subprocess.run(["wasm-tools", "parse", "-"], input=wat.encode(),
                          capture_output=True, check=True).stdout
    # Find the code section (id 10) by walking sections; bodies here are all small.
    pos, bodies = 8, []
    while pos < len(wasm):
        sid, (size, pos) = wasm[pos], _uleb(wasm, pos + 1)
        if sid == 10:
            count, p = _uleb(wasm, pos)
            for _ in range(count):
                body_size, p = _uleb(wasm, p)
                bodies.append(wasm[p + 1:p + body_size])  # skip the zero local-decl count
                p += body_size
        pos += size
    return bodies


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def test_every_opcode_encodes_as_wasm_tools_does() -> None:
    bodies = _encode_all()
    assert len(bodies) == len(opcodes.OPS)
    for op, body in zip(opcodes.OPS, bodies, strict=True):
        start = body[2:] if op.name in ("else", "end") else body  # after `if`/`block` 0x40
        assert start.startswith(op.encoding), f"{op.name}: table {op.encoding.hex()} vs {body.hex()}"


def test_table_is_consistent() -> None:
    assert len(opcodes.BY_NAME) == len(opcodes.OPS) == len(opcodes.BY_CODE)
    assert sum(op.is_simd for op in opcodes.OPS) == 236
    for op in opcodes.OPS:
        if op.imm in (opcodes.IMM_MEMARG, opcodes.IMM_MEMARG_LANE):
            assert op.width in (1, 2, 4, 8, 16), op.name


@pytest.mark.parametrize("name,ident", [("i32.add", "i32_add"), ("local.get", "local_get")])
def test_ident(name: str, ident: str) -> None:
    assert opcodes.BY_NAME[name].ident == ident
