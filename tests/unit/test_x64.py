"""The macro-assembler: golden text for emitted instructions, and every emitter rule rejected with a
clear message before anything reaches Keystone."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from wasmjit.errors import WasmjitError
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
    XMM15,
    Cond,
    EmitError,
    Gpr,
    Label,
    Masm,
    Mem,
    Xmm,
    gpr,
    reg,
)

EAX, ECX = RAX.r32, RCX.r32


def lines(masm: Masm) -> list[str]:
    return masm.text().split("\n")


# --- Operands ---


def test_register_views_and_names() -> None:
    assert [RAX.r32.name, RAX.r16.name, RAX.r8.name] == ["eax", "ax", "al"]
    assert [RSI.r8.name, RDI.r8.name, RSP.r8.name, RBP.r8.name] == ["sil", "dil", "spl", "bpl"]
    assert [R8.r32.name, R8.r16.name, R8.r8.name] == ["r8d", "r8w", "r8b"]
    assert R15.r8.r64 == R15 and RCX.sized(1) == CL
    assert gpr("r13d") == R13.r32 and reg("xmm15") == XMM15 and reg("sil") == RSI.r8
    assert str(Xmm(3)) == "xmm3"


@pytest.mark.parametrize("name", ["ah", "bh", "ch", "dh"])
def test_high_byte_registers_do_not_exist(name: str) -> None:
    with pytest.raises(EmitError, match=f"high-byte register {name}"):
        reg(name)


def test_bad_registers() -> None:
    with pytest.raises(EmitError, match="unknown register 'eip'"):
        reg("eip")
    with pytest.raises(EmitError, match="not a general-purpose register"):
        gpr("xmm0")
    with pytest.raises(EmitError):
        Gpr(16, 8)
    with pytest.raises(EmitError):
        Gpr(0, 3)
    with pytest.raises(EmitError):
        Xmm(16)


def test_memory_operand_text() -> None:
    assert str(Mem(RBX, RCX, 4, 0x10, 4)) == "dword ptr [rbx + rcx*4 + 0x10]"
    assert str(Mem(R14, disp=-0x80000000)) == "qword ptr [r14 - 0x80000000]"
    assert str(Mem(RSP, size=16)) == "xmmword ptr [rsp]"
    assert Mem(RAX, size=1).with_size(2) == Mem(RAX, size=2)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"base": RAX, "disp": 0x80000000}, "displacement 0x80000000 does not fit in signed 32 bits"),
    ({"base": RAX, "disp": -0x80000001}, "displacement -0x80000001 does not fit"),
    ({"base": 0x4000}, "bare absolute addresses"),
    ({"base": RAX.r32}, "memory base eax is not a 64-bit register"),
    ({"base": RAX, "index": RCX.r32}, "memory index ecx is not a 64-bit register"),
    ({"base": RAX, "index": RSP}, "rsp cannot be an index register"),
    ({"base": RAX, "index": RCX, "scale": 3}, "bad scale 3"),
    ({"base": RAX, "scale": 2}, "bad scale 2"),
    ({"base": RAX, "size": 32}, "bad memory operand size 32"),
    ({"base": RAX, "disp": 1.5}, "is not an int"),
])
def test_memory_operand_rules(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(EmitError, match=message):
        Mem(**kwargs)  # type: ignore[arg-type]


def test_rip_relative_memory_has_no_index() -> None:
    label = Masm().new_label("c")
    with pytest.raises(EmitError, match="rip-relative memory operand cannot have an index"):
        Mem(label, RCX)


def test_emit_errors_are_wasmjit_errors() -> None:
    assert issubclass(EmitError, WasmjitError)


def test_conditions_invert() -> None:
    for cond in Cond:
        assert cond.invert() is not cond and cond.invert().invert() is cond
    assert Cond.L.invert() is Cond.GE and Cond.A.invert() is Cond.BE and Cond.P.invert() is Cond.NP


# --- Golden text ---


def test_golden_text() -> None:
    m = Masm()
    top, done = m.new_label("loop"), m.new_label("done")
    m.push(RBX)
    m.xor(EAX, EAX)
    m.align(16)
    m.bind(top)
    m.cmp(RDI, 0)
    m.jcc(Cond.E, done)
    m.add(RAX, Mem(RSI, RDI, 8, -8))
    m.add(Mem(RSI, disp=0x7FFFFFFF, size=1), 0xFF)
    m.sub(RDI, 1)
    m.and_(ECX, 0xFFFFFFFF)
    m.or_(RAX, -0x80000000)
    m.test(Mem(R12, size=2), 0x8000)
    m.imul(RAX, RCX, -3)
    m.shl(RAX, CL)
    m.sar(Mem(R13, size=4), 31)
    m.setcc(Cond.NE, R8.r8)
    m.cmovcc(Cond.L, EAX, ECX)
    m.movzx(EAX, Mem(RBX, size=1))
    m.movsxd(RAX, ECX)
    m.lea(R10, Mem(R11, R12, 2, 0x10, size=1))
    m.jmp(top)
    m.bind(done)
    m.movabs(RCX, 0x1234_5678_9ABC_DEF0)
    m.mov_imm(RDX, 0xFFFF_FFFF)
    m.mov_imm(RDX, -1)
    m.movq(XMM0, RAX)
    m.mulsd(XMM0, Mem(m.const_f64(2.5), size=8))
    m.andpd(XMM0, Mem(m.const_u64x2(0x7FFF_FFFF_FFFF_FFFF, 0), size=16))
    m.roundsd(XMM1, XMM0, 0xB)
    m.cvttsd2si(RAX, XMM1)
    m.call(Mem(R15, disp=0x40))
    m.pop(RBX)
    m.ret()
    assert lines(m) == [
        "push rbx",
        "xor eax, eax",
        ".align 0x10",
        "wj_loop0:",
        "cmp rdi, 0x0",
        "je wj_done1",
        "add rax, qword ptr [rsi + rdi*8 - 0x8]",
        "add byte ptr [rsi + 0x7fffffff], 0xff",
        "sub rdi, 0x1",
        "and ecx, 0xffffffff",
        "or rax, -0x80000000",
        "test word ptr [r12], 0x8000",
        "imul rax, rcx, -0x3",
        "shl rax, cl",
        "sar dword ptr [r13], 0x1f",
        "setne r8b",
        "cmovl eax, ecx",
        "movzx eax, byte ptr [rbx]",
        "movsxd rax, ecx",
        "lea r10, [r11 + r12*2 + 0x10]",
        "jmp wj_loop0",
        "wj_done1:",
        "movabs rcx, 0x123456789abcdef0",
        "mov edx, 0xffffffff",
        "mov rdx, -0x1",
        "movq xmm0, rax",
        "mulsd xmm0, qword ptr [rip + wj_c2]",
        "andpd xmm0, xmmword ptr [rip + wj_c3]",
        "roundsd xmm1, xmm0, 0xb",
        "cvttsd2si rax, xmm1",
        "call qword ptr [r15 + 0x40]",
        "pop rbx",
        "ret",
        ".align 0x10",
        "wj_c3:",
        ".quad 0x7fffffffffffffff",
        ".quad 0x0",
        "wj_c2:",
        ".quad 0x4004000000000000",
    ]
    assert m.insn_count == 30


def test_golden_jump_table() -> None:
    m = Masm()
    cases = [m.new_label("case") for _ in range(3)]
    table = m.jump_table([cases[0], cases[2], cases[1]])
    m.table_jump(RDI, table, R10, R11)
    for label in cases:
        m.bind(label)
        m.ret()
    four = m.const_u32(4)
    m.movss(XMM0, Mem(four, size=4))
    assert lines(m)[:4] == ["lea r10, [rip + wj_jt3]", "movsxd r11, dword ptr [r10 + rdi*4]",
                            "add r11, r10", "jmp r11"]
    assert lines(m)[-7:] == [".align 0x10", "wj_c4:", ".long 0x4", "wj_jt3:", ".long wj_case0 - wj_jt3",
                             ".long wj_case2 - wj_jt3", ".long wj_case1 - wj_jt3"]
    listing = m.listing()
    assert [(d.label.name, d.offset, d.size) for d in listing.data] == [("wj_c4", 0, 4), ("wj_jt3", 4, 12)]
    assert listing.line_count == len(lines(m))


def test_constants_are_shared_and_laid_out_by_size() -> None:
    m = Masm()
    assert m.const_f64(1.0) == m.const_u64(0x3FF0000000000000)
    assert m.const_f32(1.0) == m.const_u32(0x3F800000)
    wide = m.const_u64x2(1, 2)
    assert m.constant(bytes(16)) != wide
    data = m.listing().data
    assert [d.size for d in data] == [16, 16, 8, 4] and [d.offset for d in data] == [0, 16, 32, 40]


def test_immediates_keep_their_spelling_and_record_the_encoded_value() -> None:
    m = Masm()
    m.add(EAX, 0xFFFFFFFF)
    m.add(EAX, -1)
    m.add(RAX, (1 << 64) - 1)  # the unsigned spelling of -1 is accepted for 64-bit operations
    m.mov(Mem(RAX, size=1), -0x80)
    assert lines(m) == ["add eax, 0xffffffff", "add eax, -0x1", "add rax, -0x1", "mov byte ptr [rax], -0x80"]
    imms = [stmt.operands[1] for stmt in m.listing().stmts]  # type: ignore[union-attr]
    assert [(imm.value, imm.size) for imm in imms] == [  # type: ignore[union-attr]
        (0xFFFFFFFF, 4), (0xFFFFFFFF, 4), ((1 << 64) - 1, 8), (0x80, 1)]


def test_mov_imm_picks_the_shortest_form() -> None:
    m = Masm()
    for value in (0, 0x7FFFFFFF, 0xFFFFFFFF, -1, -0x80000000, 0x1_0000_0000, (1 << 64) - 1, -(1 << 63)):
        m.mov_imm(R8, value)
    m.mov_imm(R8.r16, 0xFFFF)
    assert lines(m) == ["mov r8d, 0x0", "mov r8d, 0x7fffffff", "mov r8d, 0xffffffff", "mov r8, -0x1",
                        "mov r8, -0x80000000", "movabs r8, 0x100000000", "mov r8, -0x1",
                        "movabs r8, 0x8000000000000000", "mov r8w, 0xffff"]


# --- Emitter rules ---


@pytest.mark.parametrize(("emit", "message"), [
    (lambda m: m.add(EAX, 0x1_FFFF_FFFF), r"add: immediate 0x1ffffffff does not fit a 32-bit operand"),
    (lambda m: m.add(RAX, 0x8000_0000), r"immediate 0x80000000 does not fit a 64-bit operand .*movabs"),
    (lambda m: m.mov(RAX, 1 << 40), r"mov: immediate 0x10000000000 does not fit a 64-bit operand"),
    (lambda m: m.cmp(Mem(RAX, size=8), -0x8000_0001), r"immediate -0x80000001 does not fit"),
    (lambda m: m.add(RAX.r8, 0x100), r"immediate 0x100 does not fit a 8-bit operand \(range -0x80\.\.0xff\)"),
    (lambda m: m.test(RAX.r16, 0x10000), r"does not fit a 16-bit operand"),
    (lambda m: m.imul(EAX, ECX, 1 << 32), r"imul: immediate 0x100000000 does not fit"),
    (lambda m: m.add(EAX, True), r"immediate True is not an int"),
    (lambda m: m.movabs(RAX, 1 << 64), r"movabs: immediate .* does not fit in 64 bits"),
    (lambda m: m.movabs(EAX, 1), r"movabs: operand eax has size 4"),
    (lambda m: m.shl(EAX, 32), r"shl: count 32 is not in 0\.\.31"),
    (lambda m: m.ror(RAX, -1), r"ror: count -1 is not in 0\.\.63"),
    (lambda m: m.sar(EAX, RCX.r8.r64), r"variable count must be in cl, not rcx"),
    (lambda m: m.roundsd(XMM0, XMM1, 16), r"rounding mode 16 is not in 0\.\.0xf"),
])
def test_immediates_are_range_checked(emit: Callable[[Masm], object], message: str) -> None:
    m = Masm()
    with pytest.raises(EmitError, match=message):
        emit(m)
    assert m.insn_count == 0


@pytest.mark.parametrize(("emit", "message"), [
    (lambda m: m.add(RAX, ECX), r"add: operand sizes differ \(rax is 8 bytes, ecx is 4\)"),
    (lambda m: m.mov(EAX, Mem(RBX)), r"mov: operand sizes differ"),
    (lambda m: m.mov(Mem(RBX), Mem(RCX)), r"two memory operands"),
    (lambda m: m.add(XMM0, RAX), r"add: operand .*Xmm.* is not a register or memory operand"),
    (lambda m: m.movzx(EAX, ECX), r"movzx: operand ecx has size 4"),
    (lambda m: m.movzx(RAX.r16, Mem(RBX, size=2)), r"movzx: source word ptr \[rbx\] is not narrower"),
    (lambda m: m.movsxd(EAX, ECX), r"movsxd: operand eax has size 4"),
    (lambda m: m.imul(RAX.r8, RCX.r8), r"imul: operand al has size 1"),
    (lambda m: m.mul(RAX.r8), r"mul: operand al has size 1"),
    (lambda m: m.cmovcc(Cond.E, RAX, ECX), r"cmove: operand sizes differ"),
    (lambda m: m.setcc(Cond.B, EAX), r"setb: operand eax has size 4"),
    (lambda m: m.popcnt(EAX, Mem(RBX, size=8)), r"popcnt: operand sizes differ"),
    (lambda m: m.bswap(RAX.r16), r"bswap: operand ax has size 2"),
    (lambda m: m.push(EAX), r"push: operand eax has size 4"),
    (lambda m: m.xchg(RAX, RAX), r"xchg: rax with itself"),
    (lambda m: m.lea(RAX, RBX), r"lea: source .* is not a memory operand"),
    (lambda m: m.movss(XMM0, Mem(RAX, size=8)), r"movss: memory operand .* must be 4 bytes"),
    (lambda m: m.addsd(XMM0, RAX), r"addsd: operand .* is not an xmm register"),
    (lambda m: m.andps(XMM0, Mem(RAX, size=8)), r"andps: memory operand .* must be 16 bytes"),
    (lambda m: m.movd(RAX, XMM0), r"movd: operand rax has size 8"),
    (lambda m: m.movq(RAX, RCX), r"movq: one operand must be an xmm register"),
    (lambda m: m.cvtsi2sd(XMM0, RAX.r16), r"cvtsi2sd: operand ax has size 2"),
    (lambda m: m.cvttss2si(RAX.r16, XMM0), r"cvttss2si: operand ax has size 2"),
    (lambda m: m.jmp(0x1EA1229), r"jmp: target 32117289 must be a label, a 64-bit register or memory"),
    (lambda m: m.call(EAX), r"call: operand eax has size 4"),
    (lambda m: m.jcc(Cond.E, RAX), r"je: target .* must be a label"),
    (lambda m: m.table_jump(RAX, m.jump_table([m.new_label()]), RAX, R11), r"must be different registers"),
    (lambda m: m.align(3), r"boundary 3 is not a power of two"),
    (lambda m: m.constant(b"123"), r"constant of 3 bytes"),
    (lambda m: m.jump_table([]), r"jump table without targets"),
])
def test_operand_rules(emit: Callable[[Masm], object], message: str) -> None:
    with pytest.raises(EmitError, match=message):
        emit(Masm())


def test_labels_are_generated_and_checked() -> None:
    m, other = Masm(), Masm()
    assert m.new_label("loop").name == "wj_loop0" and m.new_label("trap").name == "wj_trap1"
    for kind in ("", "Loop", "l1", "rax-", "a b"):
        with pytest.raises(EmitError, match="label kind"):
            m.new_label(kind)
    for name in ("rax", "qword", "wj_", "wj_l", "1", "wj_l1:"):
        with pytest.raises(EmitError, match="not of the form wj_<kind><n>"):
            Label(name, 1)
    foreign = other.new_label("loop")
    with pytest.raises(EmitError, match="unknown label wj_loop0 .*not made by this Masm"):
        m.jmp(foreign)
    with pytest.raises(EmitError, match="unknown label"):
        m.bind(foreign)
    with pytest.raises(EmitError, match="unknown label"):
        m.add(RAX, Mem(foreign))
    forged = Label("wj_loop7", 0)
    with pytest.raises(EmitError, match="unknown label wj_loop7"):
        m.jcc(Cond.E, forged)
    label = m.new_label()
    m.bind(label)
    with pytest.raises(EmitError, match="label wj_l2 bound twice"):
        m.bind(label)
    const = m.const_f64(0.5)
    with pytest.raises(EmitError, match="label wj_c3 bound twice .*data label"):
        m.bind(const)
    with pytest.raises(EmitError, match="wj_c3 is a data label, not a jump target"):
        m.jmp(const)
    with pytest.raises(EmitError, match="wj_c3 is a data label, not a jump target"):
        m.jump_table([label, const])


def test_unbound_labels_are_reported_at_listing() -> None:
    m = Masm()
    later = m.new_label("exit")
    m.jmp(later)
    m.jump_table([m.new_label("case")])
    with pytest.raises(EmitError, match="labels used but never bound: wj_case1, wj_exit0"):
        m.listing()
    m.bind(later)
    with pytest.raises(EmitError, match="never bound: wj_case1$"):
        m.listing()


def test_text_has_no_decimal_numbers() -> None:
    """Every number Keystone sees is hex (a leading 0 would be octal); scales are single digits."""
    m = Masm()
    m.add(Mem(RBX, RCX, 8, 100, size=4), 10)
    m.mov(R12, 12345)
    m.shl(RDX, 10)
    m.roundss(XMM0, XMM1, 10)
    m.sub(R13.r32, -10)
    for line in lines(m):
        numbers = re.findall(r"(?<![\w*])-?\d\w*", line.replace("*8", ""))
        assert numbers and all(re.fullmatch(r"-?0x[0-9a-f]+", n) for n in numbers), line
    assert RBP.r8.name == "bpl" and RDI.r8.name == "dil" and RSP.r16.name == "sp"
