"""Keystone assembly checked by Capstone: every whitelisted instruction form round-trips through the
full check, label addresses are recovered, and injected mis-assemblies (Keystone's silent failures
from jit-research.md section 4) all raise AssemblyError.
(tools/asm_speed.py measures the speed of assembly and checks.)"""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from wasmjit.errors import WasmjitError
from wasmjit.jit import assemble as assemble_module
from wasmjit.jit.assemble import AssemblyError, assemble
from wasmjit.jit.x64 import (
    CL,
    R8,
    R10,
    R11,
    R12,
    R13,
    R14,
    R15,
    RAX,
    RBP,
    RBX,
    RCX,
    RDI,
    RDX,
    RSI,
    RSP,
    XMM0,
    XMM1,
    XMM7,
    XMM8,
    XMM15,
    Cond,
    Gpr,
    Insn,
    Masm,
    Mem,
)
from wasmjit.jit.x64 import masm as masm_module
from wasmjit.jit.x64 import operands as operands_module

ADDRESS = 0x7F12_3456_7000  # where mmap puts code: far from 0, so absolute/relative mix-ups show
GPRS = (RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R12, R13, R15)
XMMS = (XMM0, XMM1, XMM7, XMM8, XMM15)
SIZES = (1, 2, 4, 8)
WIDE = (2, 4, 8)


def regs(size: int) -> list[Gpr]:
    return [g.sized(size) for g in GPRS]


def mems(m: Masm, size: int) -> list[Mem]:
    """Addressing forms with encoding special cases: rsp/r12 need a SIB, rbp/r13 a displacement."""
    const = m.const_u64x2(0x1122334455667788, 0x99AABBCCDDEEFF00)
    return [
        Mem(RAX, size=size), Mem(RSP, size=size), Mem(RBP, size=size), Mem(R12, size=size),
        Mem(R13, size=size), Mem(RBX, RCX, 4, 0x10, size), Mem(R15, R14, 8, -0x80, size),
        Mem(RDI, disp=0x7FFFFFFF, size=size), Mem(RSI, R13, 2, -0x80000000, size),
        Mem(RSP, RBP, 1, 0x7F, size), Mem(const, size=size), Mem(const, disp=8, size=size),
    ]


def imms(size: int) -> list[int]:
    common = [0, 1, -1, 0x7F, -0x80]
    return common + {
        1: [0xFF],
        2: [0x80, -0x81, 0x7FFF, -0x8000, 0xFFFF],
        4: [0x80, -0x81, 0x7FFFFFFF, -0x80000000, 0xFFFFFFFF],
        8: [0x80, -0x81, 0x7FFFFFFF, -0x80000000, (1 << 64) - 1],
    }[size]


# --- Every instruction form, by family ---


def alu(name: str) -> Callable[[Masm], None]:
    def emit(m: Masm) -> None:
        op = getattr(m, name)
        for size in SIZES:
            rs = regs(size)
            for a, b in zip(rs, rs[1:] + rs[:1], strict=True):
                op(a, b)
            for mem in mems(m, size):
                op(rs[0], mem)
                op(mem, rs[3])
            for value in imms(size):
                op(rs[1], value)
                op(rs[-1], value)
                op(mems(m, size)[5], value)
    return emit


def forms_of_test(m: Masm) -> None:
    for size in SIZES:
        rs = regs(size)
        for a, b in zip(rs, rs[2:] + rs[:2], strict=True):
            m.test(a, b)
        for mem in mems(m, size):
            m.test(mem, rs[2])
            m.test(mem, imms(size)[-1])
        for value in imms(size):
            m.test(rs[0], value)
            m.test(rs[4], value)


def mov_forms(m: Masm) -> None:
    alu("mov")(m)
    for g in GPRS:
        for value in (0, 1, -1, 0x8000_0000, 0xFFFF_FFFF, 1 << 32, 0x1234_5678_9ABC_DEF0, (1 << 64) - 1):
            m.movabs(g, value)
            m.mov_imm(g, value)
            m.mov_imm(g.r32, value & 0xFFFF_FFFF)
            m.mov_reloc(g, value, ("test", value))
            m.mov_reloc(g.r32, value & 0xFFFF_FFFF, ("test", value))


def extend_forms(m: Masm) -> None:
    for wide in WIDE:
        for narrow in (1, 2):
            if narrow >= wide:
                continue
            for dst, src in zip(regs(wide), regs(narrow)[::-1], strict=True):
                m.movzx(dst, src)
                m.movsx(dst, src)
            for mem in mems(m, narrow):
                m.movzx(regs(wide)[5], mem)
                m.movsx(regs(wide)[8], mem)
    for dst, src in zip(regs(8), regs(4)[::-1], strict=True):
        m.movsxd(dst, src)
    for mem in mems(m, 4):
        m.movsxd(R11, mem)


def lea_forms(m: Masm) -> None:
    for dst in (RAX, R13, RSP, R8.r32, RBP.r32):
        for mem in mems(m, 8) + mems(m, 1):
            m.lea(dst, mem)


def xchg_forms(m: Masm) -> None:
    for size in SIZES:
        rs = regs(size)
        for a, b in zip(rs, rs[1:] + rs[:1], strict=True):
            m.xchg(a, b)
        m.xchg(rs[1], rs[0])  # the short 0x90+r form: Capstone may swap the operands


def imul_forms(m: Masm) -> None:
    for size in WIDE:
        rs = regs(size)
        for a, b in zip(rs, rs[3:] + rs[:3], strict=True):
            m.imul(a, b)
            for value in imms(size):
                m.imul(a, b, value)
        for mem in mems(m, size):
            m.imul(rs[6], mem)
            m.imul(rs[7], mem, -3)
            m.imul(rs[7], mem, 0x1234)


def unary_forms(m: Masm) -> None:
    for name, sizes in (("mul", WIDE), ("div", WIDE), ("idiv", WIDE), ("neg", SIZES), ("not_", SIZES)):
        op = getattr(m, name)
        for size in sizes:
            for r in regs(size):
                op(r)
            for mem in mems(m, size):
                op(mem)
    m.cdq()
    m.cqo()


def shift_forms(m: Masm) -> None:
    for op in (m.shl, m.shr, m.sar, m.rol, m.ror):
        for size in SIZES:
            targets: list[Gpr | Mem] = [*regs(size), *mems(m, size)]
            for target in targets:
                op(target, CL)
                for count in (0, 1, 2, 8 * size - 1):
                    op(target, count)


def condition_forms(m: Masm) -> None:
    for cond in Cond:
        for r in regs(1):
            m.setcc(cond, r)
        for mem in mems(m, 1):
            m.setcc(cond, mem)
        for size in WIDE:
            rs = regs(size)
            m.cmovcc(cond, rs[0], rs[-1])
            m.cmovcc(cond, rs[9], rs[4])
            m.cmovcc(cond, rs[2], mems(m, size)[6])


def branch_forms(m: Masm) -> None:
    back = m.new_label("back")
    m.bind(back)
    far_forward = m.new_label("far")
    near_forward = m.new_label("near")
    for cond in Cond:
        m.jcc(cond, back)
        m.jcc(cond, near_forward)
        m.jcc(cond, far_forward)
    m.jmp(back)
    m.jmp(near_forward)
    m.jmp(far_forward)
    m.call(back)
    m.call(far_forward)
    m.lea(RAX, Mem(back))  # the address of code, rip-relative, backward and forward
    m.lea(R10, Mem(far_forward, disp=-1))
    m.bind(near_forward)
    for _ in range(200):  # beyond rel8 reach: the branches above need rel32
        m.nop()
    for r in regs(8):
        m.jmp(r)
        m.call(r)
        m.push(r)
        m.pop(r)
    for mem in mems(m, 8):
        m.jmp(mem)
        m.call(mem)
    m.bind(far_forward)
    for cond in Cond:
        m.jcc(cond, far_forward)  # a branch to itself's label, backward by 0
        m.jcc(cond, back)
    m.ret()
    m.ud2()
    m.int3()


def bit_forms(m: Masm) -> None:
    for op in (m.popcnt, m.lzcnt, m.tzcnt, m.bsf, m.bsr):
        for size in WIDE:
            rs = regs(size)
            for a, b in zip(rs, rs[5:] + rs[:5], strict=True):
                op(a, b)
            for mem in mems(m, size):
                op(rs[3], mem)
    for size in (4, 8):
        for r in regs(size):
            m.bswap(r)


def sse_move_forms(m: Masm) -> None:
    for x in XMMS:
        for r in regs(4):
            m.movd(x, r)
            m.movd(r, x)
        for r in regs(8):
            m.movq(x, r)
            m.movq(r, x)
        for mem in mems(m, 4):
            m.movd(x, mem)
            m.movd(mem, x)
        for mem in mems(m, 8):
            m.movq(x, mem)
            m.movq(mem, x)
        for y in XMMS:
            m.movq(x, y)
    for op, size in ((m.movss, 4), (m.movsd, 8), (m.movaps, 16), (m.movapd, 16), (m.movups, 16),
                     (m.movupd, 16)):
        for x, y in zip(XMMS, XMMS[1:] + XMMS[:1], strict=True):
            op(x, y)
        for mem in mems(m, size):
            op(XMM8, mem)
            op(mem, XMM1)


def sse_arith_forms(m: Masm) -> None:
    scalar = [(name + suffix, size) for suffix, size in (("ss", 4), ("sd", 8))
              for name in ("add", "sub", "mul", "div", "sqrt", "min", "max")]
    scalar += [("ucomiss", 4), ("ucomisd", 8), ("cvtss2sd", 4), ("cvtsd2ss", 8)]
    packed = [(name, 16) for name in ("andps", "andpd", "andnps", "andnpd", "orps", "orpd", "xorps", "xorpd",
                                      "pxor")]
    for name, size in scalar + packed:
        op = getattr(m, name)
        for x, y in zip(XMMS, XMMS[2:] + XMMS[:2], strict=True):
            op(x, y)
        for mem in mems(m, size):
            op(XMM15, mem)
    for op, size in ((m.roundss, 4), (m.roundsd, 8)):
        for mode in (0, 1, 2, 3, 4, 8, 9, 10, 11, 0xF):
            op(XMM0, XMM15, mode)
            op(XMM8, mems(m, size)[mode % 12], mode)


def conversion_forms(m: Masm) -> None:
    for op in (m.cvtsi2ss, m.cvtsi2sd):
        for size in (4, 8):
            for x, r in zip(XMMS * 3, regs(size), strict=False):
                op(x, r)
            for mem in mems(m, size):
                op(XMM7, mem)
    for op, size in ((m.cvttss2si, 4), (m.cvttsd2si, 8)):
        for dst_size in (4, 8):
            for r, x in zip(regs(dst_size), XMMS * 3, strict=False):
                op(r, x)
            for mem in mems(m, size):
                op(regs(dst_size)[4], mem)


def string_forms(m: Masm) -> None:
    for _ in range(2):
        m.cld()
        m.rep_stosb()
        m.std()
        m.rep_movsb()
        m.cld()
        m.rep_movsb()


def data_forms(m: Masm) -> None:
    cases = [m.new_label("case") for _ in range(5)]
    table = m.jump_table(cases + cases[::-1])
    m.table_jump(RDI, table, R10, R11)
    m.table_jump(R12, table, RAX, RCX)
    m.align(64)
    for label in cases:
        m.bind(label)
        m.movss(XMM0, Mem(m.const_f32(len(label.name)), size=4))
        m.addsd(XMM0, Mem(m.const_f64(-0.0), size=8))
        m.xorps(XMM0, Mem(m.const_u64x2(1 << 63, 0), size=16))
        m.lea(RAX, Mem(table, disp=-4))
        m.align(16)
    m.ret()


FAMILIES: dict[str, Callable[[Masm], None]] = {
    **{name: alu(name) for name in ("add", "sub", "and_", "or_", "xor", "cmp", "adc", "sbb")},
    "test": forms_of_test, "mov": mov_forms, "extend": extend_forms, "lea": lea_forms, "xchg": xchg_forms,
    "imul": imul_forms, "unary": unary_forms, "shift": shift_forms, "condition": condition_forms,
    "branch": branch_forms, "bits": bit_forms, "sse_move": sse_move_forms, "sse_arith": sse_arith_forms,
    "conversion": conversion_forms, "data": data_forms, "string": string_forms,
}

WHITELIST = {
    "add", "sub", "and_", "or_", "xor", "cmp", "adc", "sbb", "test", "mov", "movabs", "mov_imm", "movzx",
    "mov_reloc", "movsx", "movsxd", "lea", "xchg", "imul", "mul", "div", "idiv", "neg", "not_", "cdq", "cqo",
    "shl", "shr",
    "sar", "rol", "ror", "setcc", "cmovcc", "jmp", "call", "jcc", "ret", "push", "pop", "ud2", "int3", "nop",
    "popcnt", "lzcnt", "tzcnt", "bsf", "bsr", "bswap", "movd", "movq", "movss", "movsd", "movaps", "movapd",
    "movups", "movupd", "addss", "addsd", "subss", "subsd", "mulss", "mulsd", "divss", "divsd", "sqrtss",
    "sqrtsd", "minss", "minsd", "maxss", "maxsd", "ucomiss", "ucomisd", "cvtss2sd", "cvtsd2ss", "roundss",
    "roundsd", "andps", "andpd", "andnps", "andnpd", "orps", "orpd", "xorps", "xorpd", "pxor", "cvtsi2ss",
    "cvtsi2sd", "cvttss2si", "cvttsd2si", "jump_table", "table_jump", "const_u32", "const_u64",
    "const_f32", "const_f64", "const_u64x2", "constant", "new_label", "bind", "align", "listing", "text",
    "rep_stosb", "rep_movsb", "std", "cld",
}


def test_whitelist_is_the_public_interface() -> None:
    """A new Masm method must be added here, and to a family above."""
    public = {name for name in dir(Masm) if not name.startswith("_")} - {"insn_count"}
    assert public == WHITELIST


@pytest.mark.parametrize("family", FAMILIES)
def test_round_trip(family: str) -> None:
    m = Masm()
    FAMILIES[family](m)
    assembled = assemble(m, ADDRESS, full=True)
    assert len(assembled.insn_addresses) == m.insn_count > 10
    assert assembled.insn_addresses[0] == ADDRESS


def test_round_trip_covers_every_mnemonic() -> None:
    seen: set[str] = set()
    for emit in FAMILIES.values():
        m = Masm()
        emit(m)
        seen |= {stmt.mnemonic for stmt in m.listing().stmts if isinstance(stmt, Insn)}
    expected = {name.rstrip("_").replace("rep_", "rep ") for name in WHITELIST} - {
        "setcc", "cmovcc", "jcc", "mov_imm", "mov_reloc", "jump_table", "table_jump", "const_u32",
        "const_u64", "const_f32", "const_f64", "const_u64x2", "constant", "new_label", "bind", "align",
        "listing", "text"}
    expected |= {prefix + cond.value for cond in Cond for prefix in ("set", "cmov", "j")}
    assert expected <= seen


@pytest.mark.parametrize("address", [0, 0x1000, 0x7FFF_FFFF_F000, 0xFFFF_FFFF_0000_0000 - 0x10000])
def test_any_address(address: int) -> None:
    m = Masm()
    branch_forms(m)
    data_forms(m)
    assemble(m, address, full=True)


# --- Labels, padding and data ---


def test_label_addresses_come_from_the_walk() -> None:
    m = Masm()
    start, before_pad, after_pad, end = (m.new_label(k) for k in ("start", "before", "after", "end"))
    m.bind(start)
    m.mov(RAX, 1)  # 7 bytes
    m.bind(before_pad)
    m.align(16)
    m.bind(after_pad)
    m.add(RAX, RDI)  # 3 bytes
    m.ret()
    m.bind(end)
    table = m.jump_table([start, after_pad, end])
    one = m.const_f64(1.0)
    a = assemble(m, ADDRESS + 4, full=True)
    assert a.labels["wj_start0"] == ADDRESS + 4
    assert a.address_of(before_pad) == ADDRESS + 11
    assert a.address_of(after_pad) == ADDRESS + 16
    assert a.address_of(end) == ADDRESS + 20 == a.address + a.code_size
    assert a.address_of(one) == ADDRESS + 32  # the data area is 16-byte aligned
    assert a.address_of(table) == ADDRESS + 40 and a.end == ADDRESS + 52
    assert a.insn_addresses == (ADDRESS + 4, ADDRESS + 16, ADDRESS + 19)
    entries = struct.unpack("<3i", a.code[40 - 4:52 - 4])
    assert entries == (-36, -24, -20)
    assert a.code[32 - 4:40 - 4] == struct.pack("<d", 1.0)


def test_relocations_are_the_last_bytes_of_their_instructions() -> None:
    """mov_reloc's immediate has a fixed width whatever the value (movabs into a 64-bit register,
    mov r32, imm32 into a 32-bit one), and the walk finds it after padding and other code."""
    m = Masm()
    m.mov_reloc(RAX, 0, ("a",))  # small values would fit shorter encodings
    m.align(16)
    m.mov_reloc(R11.r32, 5, ("b", 1))
    m.add(RAX, RDI)
    m.mov_reloc(R10, 0x1234_5678_9ABC_DEF0, ("c", "name", (1, 2)))
    m.movsd(XMM0, Mem(m.const_f64(2.5), size=8))
    m.ret()
    a = assemble(m, ADDRESS, full=True)
    assert [(r.offset, r.width, r.target) for r in a.relocations] == [
        (2, 8, ("a",)), (18, 4, ("b", 1)), (27, 8, ("c", "name", (1, 2)))]
    assert a.code[2:10] == bytes(8) and a.code[18:22] == (5).to_bytes(4, "little")
    assert a.code[27:35] == (0x1234_5678_9ABC_DEF0).to_bytes(8, "little")
    assert a.insn_addresses[1] == ADDRESS + 16 and a.insn_addresses[3] == ADDRESS + 25


def test_empty_and_label_only_functions() -> None:
    m = Masm()
    label = m.new_label()
    m.bind(label)
    a = assemble(m, ADDRESS, full=True)
    assert a.code == b"" and a.labels == {"wj_l0": ADDRESS}


def test_nothing_at_all() -> None:
    a = assemble(Masm(), ADDRESS, full=True)
    assert a.code == b"" and a.labels == {} and a.insn_addresses == ()


def test_assemble_accepts_a_listing() -> None:
    m = Masm()
    m.ret()
    assert assemble(m.listing(), ADDRESS).code == b"\xc3"


def test_assembly_error_is_a_wasmjit_error() -> None:
    assert issubclass(AssemblyError, WasmjitError)


# --- Injected mis-assemblies ---


def rewrite(monkeypatch: pytest.MonkeyPatch, old: str, new: str) -> None:
    """Make the text sent to Keystone differ from what the Masm recorded."""
    real = assemble_module._keystone_asm
    calls = []

    def patched(text: str, address: int) -> tuple[bytes, int]:
        calls.append(text)
        assert len(calls) > 1 or old in text, f"{old!r} not in the text"  # later calls: error location
        return real(text.replace(old, new, 1), address)

    monkeypatch.setattr(assemble_module, "_keystone_asm", patched)


def small_function() -> Masm:
    m = Masm()
    top, out = m.new_label("top"), m.new_label("out")
    m.mov(EAX := RAX.r32, 1)
    m.bind(top)
    m.cmp(EAX, 0x10)
    m.jcc(Cond.GE, out)
    m.add(EAX, Mem(R14, disp=0x7FFFFFF0, size=4))
    m.add(EAX, 0x21)
    m.jmp(top)
    m.bind(out)
    m.movsd(XMM0, Mem(m.const_f64(0.5), size=8))
    m.ret()
    return m


def test_unmodified_function_passes() -> None:
    assemble(small_function(), ADDRESS, full=True)


@pytest.mark.parametrize("full", [False, True])
def test_dropped_statement(monkeypatch: pytest.MonkeyPatch, full: bool) -> None:
    """Keystone #293: ``cmp $,1`` is dropped without an error."""
    rewrite(monkeypatch, "cmp eax, 0x10", "cmp $,1")
    with pytest.raises(AssemblyError, match=r"Keystone assembled 12 of 13 statements; first difference: "
                                            r"instruction 1 `cmp eax, 0x10` .* decodes as 'jge'"):
        assemble(small_function(), ADDRESS, full=full)


def test_dropped_label_definition(monkeypatch: pytest.MonkeyPatch) -> None:
    """A label Keystone cannot use as a name (``qword``) yields no code and no error."""
    rewrite(monkeypatch, "wj_top0", "qword")
    with pytest.raises(AssemblyError):
        assemble(small_function(), ADDRESS)


def test_wrapped_displacement(monkeypatch: pytest.MonkeyPatch) -> None:
    """``[r14 + 0x80000000]`` is silently encoded as ``[r14 - 0x80000000]``."""
    rewrite(monkeypatch, "r14 + 0x7ffffff0", "r14 + 0x80000000")
    assemble(small_function(), ADDRESS)  # same length and mnemonics: only the full check sees it
    with pytest.raises(AssemblyError, match=r"instruction 3 `add eax, dword ptr \[r14 \+ 0x7ffffff0\]`.*"
                                            r"displacement -0x80000000, expected 0x7ffffff0"):
        assemble(small_function(), ADDRESS, full=True)


def test_wrapped_displacement_past_the_emitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """If a 2**31 displacement got past Mem's check, the full check still refuses the wrapped encoding."""
    monkeypatch.setattr(operands_module, "check_mem", lambda *parts: None)
    m = Masm()
    m.mov(RAX, Mem(R14, disp=0x80000000))
    with pytest.raises(AssemblyError, match="displacement -0x80000000, expected 0x80000000"):
        assemble(m, ADDRESS, full=True)


def test_truncated_immediate(monkeypatch: pytest.MonkeyPatch) -> None:
    rewrite(monkeypatch, "mov eax, 0x1", "mov eax, 0x100000002")
    with pytest.raises(AssemblyError, match=r"instruction 0 `mov eax, 0x1`.*immediate 0x2, expected 0x1"):
        assemble(small_function(), ADDRESS, full=True)


def test_truncated_immediate_past_the_emitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """If a wide immediate got past the range check, Keystone truncates it and the full check sees it."""
    monkeypatch.setattr(masm_module, "check_imm", lambda value, size, **_: value)
    m = Masm()
    m.mov(RAX.r32, 0x1_FFFF_FFFF)
    m.add(RAX.r8, 0x1FF)
    with pytest.raises(AssemblyError, match="immediate 0xffffffff, expected 0x1ffffffff"):
        assemble(m, ADDRESS, full=True)


def test_wrong_branch_target(monkeypatch: pytest.MonkeyPatch) -> None:
    rewrite(monkeypatch, "jmp wj_top0", "jmp wj_out1")
    with pytest.raises(AssemblyError, match=r"instruction 5 `jmp wj_top0`.*target 0x7f12345670.., expected "
                                            r"wj_top0 = 0x7f1234567005"):
        assemble(small_function(), ADDRESS, full=True)


def test_absolute_branch_target_wraps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keystone #577: ``jmp 0x1EA1229`` at 0x84B1B800 lands at 0x101ea1229."""
    rewrite(monkeypatch, "jmp wj_top0", "jmp 0x1ea1229")
    with pytest.raises(AssemblyError, match=r"instruction 5 `jmp wj_top0`"):
        assemble(small_function(), 0x84B1B800, full=True)


def test_label_named_like_a_register(monkeypatch: pytest.MonkeyPatch) -> None:
    """cf. Keystone #314: a label called ``rax`` turns the jump into ``jmp rax``."""
    rewrite(monkeypatch, "jmp wj_top0", "jmp rax")
    with pytest.raises(AssemblyError, match=r"`jmp wj_top0`.*assembled as `jmp rax`: operand 1: 'rax', "
                                            r"expected immediate wj_top0"):
        assemble(small_function(), ADDRESS, full=True)


def test_wrong_rip_relative_target(monkeypatch: pytest.MonkeyPatch) -> None:
    rewrite(monkeypatch, "[rip + wj_c2]", "[rip + wj_c2 + 0x8]")
    with pytest.raises(AssemblyError, match=r"rip-relative target .*, expected wj_c2\+0x0="):
        assemble(small_function(), ADDRESS, full=True)


def test_wrong_data(monkeypatch: pytest.MonkeyPatch) -> None:
    rewrite(monkeypatch, ".quad 0x3fe0000000000000", ".quad 0x3fe0000000000001")
    assemble(small_function(), ADDRESS)
    with pytest.raises(AssemblyError, match=r"data wj_c2 at 0x.* is 0100000000.*, expected 000000000000e03f"):
        assemble(small_function(), ADDRESS, full=True)


def test_wrong_mnemonic_found_by_the_cheap_check(monkeypatch: pytest.MonkeyPatch) -> None:
    rewrite(monkeypatch, "add eax, 0x21", "sub eax, 0x21")
    with pytest.raises(AssemblyError, match=r"instruction 4 `add eax, 0x21` at 0x.* decodes as 'sub'"):
        assemble(small_function(), ADDRESS)


def test_extra_bytes_found_by_the_cheap_check(monkeypatch: pytest.MonkeyPatch) -> None:
    rewrite(monkeypatch, ".quad 0x3fe0000000000000", ".long 0x0")
    with pytest.raises(AssemblyError, match="the function is .* bytes, the walk expects"):
        assemble(small_function(), ADDRESS)


def test_keystone_error_names_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """The statement is named as the Masm wrote it (the rewrite stands for a Keystone bug)."""
    rewrite(monkeypatch, "add eax, 0x21", "frob eax, 0x21")
    with pytest.raises(AssemblyError, match=r"Keystone rejected the function: .*MNEMONICFAIL.* at line 6 "
                                            r"`add eax, 0x21`"):
        assemble(small_function(), ADDRESS)


def test_undecodable_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    rewrite(monkeypatch, "add eax, 0x21", ".byte 0x06")  # push es: invalid in 64-bit mode
    with pytest.raises(AssemblyError, match=r"Capstone cannot decode instruction 4 `add eax, 0x21`"):
        assemble(small_function(), ADDRESS)


# --- A large function ---


def big_function(target: int = 5000) -> Masm:
    """A realistic mix: ALU with memory and immediates, branches, SSE with constants."""
    m = Masm()
    while m.insn_count < target:
        top, skip = m.new_label("top"), m.new_label("skip")
        m.bind(top)
        m.mov(RAX.r32, Mem(R14, RDI, 1, 0x10, 4))
        m.add(RAX.r32, 0x1234)
        m.lea(R10, Mem(RDI, disp=8))
        m.cmp(R10, Mem(R15, disp=0x28))
        m.jcc(Cond.A, skip)
        m.imul(RCX, Mem(RSP, disp=0x18), 7)
        m.shl(RCX, 3)
        m.movq(XMM0, RCX)
        m.addsd(XMM0, Mem(m.const_f64(m.insn_count / 3), size=8))
        m.cvttsd2si(RDX, XMM0)
        m.mov(Mem(RSP, disp=0x20), RDX)
        m.bind(skip)
        m.sub(RSI.r32, 1)
        m.jcc(Cond.NE, top)
    return m


def test_a_5000_instruction_function_assembles_and_passes_the_full_check() -> None:
    m = big_function()
    listing = m.listing()
    code, _ = assemble_module._keystone_asm(listing.text, ADDRESS)
    assert m.insn_count >= 5000
    assert assemble(m, ADDRESS).code == code
    assert assemble(m, ADDRESS, full=True).code == code


@pytest.mark.parametrize("family", ["mov", "branch", "sse_arith", "data"])
def test_full_check_through_the_public_capstone_api(monkeypatch: pytest.MonkeyPatch, family: str) -> None:
    """The fallback used when capstone's private ctypes layer is not there gives the same verdicts."""
    monkeypatch.setattr(assemble_module, "_RAW_CAPSTONE", False)
    m = Masm()
    FAMILIES[family](m)
    assemble(m, ADDRESS, full=True)
    rewrite(monkeypatch, "r14 + 0x7ffffff0", "r14 + 0x80000000")
    with pytest.raises(AssemblyError, match="displacement -0x80000000, expected 0x7ffffff0"):
        assemble(small_function(), ADDRESS, full=True)
