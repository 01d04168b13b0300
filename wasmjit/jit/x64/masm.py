"""The x86-64 macro-assembler: the only producer of assembly text in wasmjit.

:class:`Masm` has one method per whitelisted instruction (SSE4.1 + POPCNT + LZCNT/TZCNT: nothing
Unicorn 2.1.4 cannot run). Each call checks its operands against the Keystone 0.9.2 rules of
jit-research.md section 4 and raises :class:`EmitError` instead of emitting anything Keystone could
drop, truncate or wrap: numbers are written in hex only, labels are ``wj_<kind><n>`` made by
:meth:`Masm.new_label`, immediates are range-checked for their operand size (64-bit operations take
a sign-extended imm32; wider constants go through :meth:`Masm.movabs`), displacements fit in signed
32 bits, memory operands have a base register or are rip-relative to a label, high-byte registers
do not exist, and operand sizes agree. Each instruction also records what it must assemble to
(:class:`Insn`: Capstone's mnemonic and the operands), which :mod:`wasmjit.jit.assemble` checks.

Constants (8/16-byte float masks and the like) and jump tables live in a data area after the
code, 16-byte aligned, addressed rip-relative by label (``Mem(masm.const_f64(0.5), size=8)``).

A value that depends on where the code is installed (a store's addresses and numbers) is loaded
with :meth:`Masm.mov_reloc`, which records a relocation (:class:`Reloc`: the instruction, the width
of its immediate, a symbolic target) and always uses the encoding whose immediate has that width,
so that any later value fits the same bytes. Code is otherwise position-independent.
Imports: operands, errors.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from .operands import (
    CL,
    LABEL_KIND,
    RDI,
    RSI,
    Cond,
    EmitError,
    Gpr,
    Imm,
    Label,
    Mem,
    Xmm,
    check_imm,
)

Operand = Gpr | Xmm | Mem | Imm | Label
AL = Gpr(0, 1)
DATA_ALIGN = 16  # the data area starts 16-byte aligned: SSE packed memory operands require it


class Insn(NamedTuple):  # a tuple, not a frozen dataclass: one is built per instruction
    """One instruction: its text, and what Capstone must decode from it (``mnemonic`` as Capstone
    spells it, ``operands`` in Intel order; a :class:`Label` operand is a branch target, an
    :class:`Imm` is reduced to its operand size)."""

    mnemonic: str
    operands: tuple[Operand, ...]
    text: str


@dataclass(frozen=True, slots=True)
class Bind:
    """A label definition in the code."""

    label: Label


@dataclass(frozen=True, slots=True)
class Align:
    """Padding (Keystone fills it with NOPs) up to a multiple of ``boundary`` bytes."""

    boundary: int


Stmt = Insn | Bind | Align

# A relocation's symbolic target: a kind and its arguments, e.g. ("global", 3) (the names are the
# code generator's, see wasmjit.jit.codegen.TARGETS); hashable, made of str, int, None and tuples.
Target = tuple[Any, ...]


class Reloc(NamedTuple):
    """A relocatable immediate: instruction number ``insn`` (in emission order) ends with the
    ``width``-byte little-endian value of ``target``."""

    insn: int
    width: int
    target: Target


@dataclass(frozen=True, slots=True)
class Datum:
    """One item of the data area: a constant (``payload``) or a jump table (``targets``, one
    ``.long target - table`` per entry), ``offset`` bytes after the 16-byte aligned data start."""

    label: Label
    offset: int
    size: int
    payload: bytes | None = None
    targets: tuple[Label, ...] = ()


@dataclass(frozen=True, slots=True)
class Listing:
    """A finished function: the text for one Keystone call (one statement per line) and the
    expectations the verifier checks the bytes against."""

    text: str
    line_count: int
    stmts: tuple[Stmt, ...]
    data: tuple[Datum, ...]
    data_size: int
    relocs: tuple[Reloc, ...] = ()


_OWNERS = itertools.count(1)
_GPR_SIZES = (1, 2, 4, 8)
_WIDE = (2, 4, 8)  # sizes of operations without a byte form (imul, cmov, bit counts)


def _imm(mnemonic: str, value: int, size: int) -> Imm:
    written = check_imm(value, size, what=mnemonic)
    # A negative number is expected back as its two's complement at the operand size; a positive
    # one as itself, so one that slipped past the range check cannot match a truncated encoding.
    return Imm(written & ((1 << (8 * size)) - 1) if written < 0 else written, size, written)


def _size(mnemonic: str, op: object, sizes: tuple[int, ...] = _GPR_SIZES, *, mem: bool = True) -> int:
    """The operand size of a general-purpose register (or, if ``mem``, memory) operand."""
    if isinstance(op, Gpr) or (mem and isinstance(op, Mem)):
        if op.size in sizes:
            return op.size
        raise EmitError(f"{mnemonic}: operand {op} has size {op.size}, expected one of {sizes}")
    kinds = "register or memory" if mem else "general-purpose register"
    raise EmitError(f"{mnemonic}: operand {op!r} is not a {kinds} operand")


def _agree(mnemonic: str, a: Gpr | Mem | Xmm, b: Gpr | Mem | Xmm) -> None:
    if a.size != b.size:
        raise EmitError(f"{mnemonic}: operand sizes differ ({a} is {a.size} bytes, {b} is {b.size})")


class Masm:
    """Collects one function's instructions; :meth:`listing` hands them to the assembler.

    Method names are the mnemonics (``and_``, ``or_``, ``not_`` for Python keywords); operands are
    in Intel order (destination first). Condition-code families take a :class:`Cond`:
    ``masm.jcc(Cond.AE, label)``, ``masm.setcc(Cond.E, AL)``, ``masm.cmovcc(Cond.L, EAX, ECX)``.
    """

    def __init__(self) -> None:
        self._owner = next(_OWNERS)
        self._stmts: list[Stmt] = []
        self._created: set[str] = set()
        self._bound: set[str] = set()
        self._used: dict[str, Label] = {}
        self._consts: dict[bytes, Label] = {}
        self._tables: list[tuple[Label, tuple[Label, ...]]] = []
        self._data_labels: set[str] = set()
        self._label_count = 0
        self._relocs: list[Reloc] = []
        self.insn_count = 0

    # --- Statements ---

    def _emit(self, mnemonic: str, operands: tuple[Operand, ...] = (), text: str | None = None) -> None:
        if text is None:
            if len(operands) == 2:
                text = f"{mnemonic} {operands[0]}, {operands[1]}"
            else:
                text = mnemonic + " " + ", ".join(map(str, operands)) if operands else mnemonic
        self._stmts.append(Insn(mnemonic, operands, text))
        self.insn_count += 1

    def new_label(self, kind: str = "l") -> Label:
        """A fresh label ``wj_<kind><n>``; ``kind`` is lowercase letters (``"loop"``, ``"trap"``)."""
        if not LABEL_KIND.fullmatch(kind):
            raise EmitError(f"label kind {kind!r} must be lowercase letters")
        label = Label(f"wj_{kind}{self._label_count}", self._owner)
        self._label_count += 1
        self._created.add(label.name)
        return label

    def _known(self, label: object) -> Label:
        if not isinstance(label, Label):
            raise EmitError(f"{label!r} is not a Label")
        if label.owner != self._owner or label.name not in self._created:
            raise EmitError(f"unknown label {label.name} (not made by this Masm's new_label)")
        return label

    def _use(self, label: object) -> Label:
        known = self._known(label)
        self._used[known.name] = known
        return known

    def _code_label(self, label: object) -> Label:
        """A label used as a jump target: it must be in the code, not the data area."""
        known = self._use(label)
        if known.name in self._data_labels:
            raise EmitError(f"{known.name} is a data label, not a jump target")
        return known

    def _mem(self, op: Mem) -> Mem:
        if isinstance(op.base, Label):
            self._use(op.base)
        return op

    def bind(self, label: Label) -> None:
        """Define ``label`` at the current position."""
        self._known(label)
        if label.name in self._bound or label.name in self._data_labels:
            raise EmitError(f"label {label.name} bound twice (or it is a data label)")
        self._bound.add(label.name)
        self._stmts.append(Bind(label))

    def align(self, boundary: int) -> None:
        """Pad with NOPs to a multiple of ``boundary`` (a power of two up to 64), e.g. a loop head."""
        if boundary not in (2, 4, 8, 16, 32, 64):
            raise EmitError(f"align: boundary {boundary} is not a power of two in 2..64")
        self._stmts.append(Align(boundary))

    # --- Integer ALU ---

    def _alu(self, mnemonic: str, dst: Gpr | Mem, src: Gpr | Mem | int) -> None:
        size = _size(mnemonic, dst)
        if isinstance(src, int):
            self._emit(mnemonic, (self._rm(dst), _imm(mnemonic, src, size)))
            return
        _size(mnemonic, src)
        if isinstance(dst, Mem) and isinstance(src, Mem):
            raise EmitError(f"{mnemonic}: two memory operands")
        _agree(mnemonic, dst, src)
        self._emit(mnemonic, (self._rm(dst), self._rm(src)))

    def _rm(self, op: Gpr | Mem) -> Gpr | Mem:
        return self._mem(op) if isinstance(op, Mem) else op

    def add(self, dst: Gpr | Mem, src: Gpr | Mem | int) -> None:
        self._alu("add", dst, src)

    def sub(self, dst: Gpr | Mem, src: Gpr | Mem | int) -> None:
        self._alu("sub", dst, src)

    def and_(self, dst: Gpr | Mem, src: Gpr | Mem | int) -> None:
        self._alu("and", dst, src)

    def or_(self, dst: Gpr | Mem, src: Gpr | Mem | int) -> None:
        self._alu("or", dst, src)

    def xor(self, dst: Gpr | Mem, src: Gpr | Mem | int) -> None:
        self._alu("xor", dst, src)

    def cmp(self, dst: Gpr | Mem, src: Gpr | Mem | int) -> None:
        self._alu("cmp", dst, src)

    def adc(self, dst: Gpr | Mem, src: Gpr | Mem | int) -> None:
        self._alu("adc", dst, src)

    def sbb(self, dst: Gpr | Mem, src: Gpr | Mem | int) -> None:
        self._alu("sbb", dst, src)

    def test(self, dst: Gpr | Mem, src: Gpr | int) -> None:
        """``test dst, src`` (a memory operand only as ``dst``, as Capstone prints it)."""
        size = _size("test", dst)
        if isinstance(src, int):
            self._emit("test", (self._rm(dst), _imm("test", src, size)))
            return
        _size("test", src, mem=False)
        _agree("test", dst, src)
        self._emit("test", (self._rm(dst), src))

    # --- Moves ---

    def mov(self, dst: Gpr | Mem, src: Gpr | Mem | int) -> None:
        """``mov``; a 64-bit immediate must fit a sign-extended imm32 (see :meth:`mov_imm`)."""
        self._alu("mov", dst, src)

    def movabs(self, dst: Gpr, value: int) -> None:
        """``mov r64, imm64`` (10 bytes), the only way a full 64-bit constant is emitted."""
        _size("movabs", dst, (8,), mem=False)
        if isinstance(value, bool) or not isinstance(value, int) or not -(1 << 63) <= value < (1 << 64):
            raise EmitError(f"movabs: immediate {value!r} does not fit in 64 bits")
        value &= (1 << 64) - 1
        self._emit("movabs", (dst, Imm(value, 8)), f"movabs {dst.name}, {value:#x}")

    def mov_imm(self, dst: Gpr, value: int) -> None:
        """Load a constant with the shortest ``mov``: a zero-extending ``mov r32`` for a 64-bit
        value below 2**32, a sign-extended imm32, else ``movabs``. Flags are preserved."""
        size = _size("mov", dst, mem=False)
        if size != 8:
            self.mov(dst, value)
        elif 0 <= value < (1 << 32):
            self.mov(dst.r32, value)
        elif -(1 << 31) <= value < (1 << 31) or (1 << 64) - (1 << 31) <= value < (1 << 64):
            self.mov(dst, value)
        else:
            self.movabs(dst, value)

    def mov_reloc(self, dst: Gpr, value: int, target: Target) -> None:
        """Load ``value``, the current value of relocation ``target``, with a fixed-width
        immediate: ``movabs`` (imm64) into a 64-bit register, ``mov r32, imm32`` into a 32-bit
        one, whatever the value (see :class:`Reloc`)."""
        size = _size("mov", dst, (4, 8), mem=False)
        if size == 8:
            self.movabs(dst, value)
        else:
            self.mov(dst, value)  # mov r32, imm32 has no shorter encoding
        self._relocs.append(Reloc(self.insn_count - 1, size, target))

    def movzx(self, dst: Gpr, src: Gpr | Mem) -> None:
        """Zero-extend a byte or word into a wider register."""
        self._extend("movzx", dst, src)

    def movsx(self, dst: Gpr, src: Gpr | Mem) -> None:
        """Sign-extend a byte or word into a wider register."""
        self._extend("movsx", dst, src)

    def _extend(self, mnemonic: str, dst: Gpr, src: Gpr | Mem) -> None:
        wide = _size(mnemonic, dst, _WIDE, mem=False)
        narrow = _size(mnemonic, src, (1, 2))
        if narrow >= wide:
            raise EmitError(f"{mnemonic}: source {src} is not narrower than {dst}")
        self._emit(mnemonic, (dst, self._rm(src)))

    def movsxd(self, dst: Gpr, src: Gpr | Mem) -> None:
        """Sign-extend a dword into a 64-bit register."""
        _size("movsxd", dst, (8,), mem=False)
        _size("movsxd", src, (4,))
        self._emit("movsxd", (dst, self._rm(src)))

    def lea(self, dst: Gpr, src: Mem) -> None:
        """Load the address of ``src`` (its ``size`` is ignored)."""
        _size("lea", dst, (4, 8), mem=False)
        if not isinstance(src, Mem):
            raise EmitError(f"lea: source {src!r} is not a memory operand")
        self._emit("lea", (dst, self._mem(src)), f"lea {dst.name}, {src.address_text}")

    def xchg(self, a: Gpr, b: Gpr) -> None:
        """Swap two different registers of one size."""
        _size("xchg", a, mem=False)
        _size("xchg", b, mem=False)
        _agree("xchg", a, b)
        if a.num == b.num:
            raise EmitError(f"xchg: {a} with itself (encodes as nop, without the 32-bit zero extension)")
        self._emit("xchg", (a, b))

    # --- Multiplication, division, unary ---

    def imul(self, dst: Gpr, src: Gpr | Mem, imm: int | None = None) -> None:
        """``imul dst, src`` or, with ``imm``, ``imul dst, src, imm`` (16/32/64-bit)."""
        size = _size("imul", dst, _WIDE, mem=False)
        _size("imul", src, _WIDE)
        _agree("imul", dst, src)
        if imm is None:
            self._emit("imul", (dst, self._rm(src)))
        else:
            self._emit("imul", (dst, self._rm(src), _imm("imul", imm, size)))

    def _unary(self, mnemonic: str, op: Gpr | Mem, sizes: tuple[int, ...] = _GPR_SIZES) -> None:
        _size(mnemonic, op, sizes)
        self._emit(mnemonic, (self._rm(op),))

    def mul(self, src: Gpr | Mem) -> None:
        """Unsigned ``rdx:rax = rax * src`` (no byte form: its result would be in ah)."""
        self._unary("mul", src, _WIDE)

    def div(self, src: Gpr | Mem) -> None:
        """Unsigned divide ``rdx:rax`` by ``src`` (faults on zero and overflow: check first)."""
        self._unary("div", src, _WIDE)

    def idiv(self, src: Gpr | Mem) -> None:
        """Signed divide ``rdx:rax`` by ``src`` (faults on zero and INT_MIN / -1: check first)."""
        self._unary("idiv", src, _WIDE)

    def neg(self, dst: Gpr | Mem) -> None:
        self._unary("neg", dst)

    def not_(self, dst: Gpr | Mem) -> None:
        self._unary("not", dst)

    def cdq(self) -> None:
        """Sign-extend eax into edx."""
        self._emit("cdq")

    def cqo(self) -> None:
        """Sign-extend rax into rdx."""
        self._emit("cqo")

    # --- Shifts and rotates ---

    def _shift(self, mnemonic: str, dst: Gpr | Mem, count: int | Gpr) -> None:
        size = _size(mnemonic, dst)
        if isinstance(count, Gpr):
            if count != CL:
                raise EmitError(f"{mnemonic}: a variable count must be in cl, not {count}")
            self._emit(mnemonic, (self._rm(dst), CL))
            return
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count < 8 * size:
            raise EmitError(f"{mnemonic}: count {count!r} is not in 0..{8 * size - 1}")
        self._emit(mnemonic, (self._rm(dst), Imm(count, 1)))

    def shl(self, dst: Gpr | Mem, count: int | Gpr) -> None:
        self._shift("shl", dst, count)

    def shr(self, dst: Gpr | Mem, count: int | Gpr) -> None:
        self._shift("shr", dst, count)

    def sar(self, dst: Gpr | Mem, count: int | Gpr) -> None:
        self._shift("sar", dst, count)

    def rol(self, dst: Gpr | Mem, count: int | Gpr) -> None:
        self._shift("rol", dst, count)

    def ror(self, dst: Gpr | Mem, count: int | Gpr) -> None:
        self._shift("ror", dst, count)

    # --- Conditions ---

    def setcc(self, cond: Cond, dst: Gpr | Mem) -> None:
        """``set<cond>`` into a byte register or byte of memory."""
        _size("set" + cond.value, dst, (1,))
        self._emit("set" + cond.value, (self._rm(dst),))

    def cmovcc(self, cond: Cond, dst: Gpr, src: Gpr | Mem) -> None:
        """``cmov<cond> dst, src`` (16/32/64-bit)."""
        mnemonic = "cmov" + cond.value
        _size(mnemonic, dst, _WIDE, mem=False)
        _size(mnemonic, src, _WIDE)
        _agree(mnemonic, dst, src)
        self._emit(mnemonic, (dst, self._rm(src)))

    # --- Control flow ---

    def _target(self, mnemonic: str, target: Label | Gpr | Mem) -> None:
        if isinstance(target, Label):
            self._emit(mnemonic, (self._code_label(target),))
        elif isinstance(target, Gpr | Mem):
            _size(mnemonic, target, (8,))
            self._emit(mnemonic, (self._rm(target),))
        else:  # an absolute address: Keystone wraps or rejects these (#577, #361)
            raise EmitError(f"{mnemonic}: target {target!r} must be a label, a 64-bit register or memory")

    def jmp(self, target: Label | Gpr | Mem) -> None:
        """Jump to a label, or indirectly through a 64-bit register or memory (never an address)."""
        self._target("jmp", target)

    def call(self, target: Label | Gpr | Mem) -> None:
        """Call a label, or indirectly through a 64-bit register or memory (never an address)."""
        self._target("call", target)

    def jcc(self, cond: Cond, target: Label) -> None:
        """``j<cond> target``."""
        if not isinstance(target, Label):
            raise EmitError(f"j{cond.value}: target {target!r} must be a label")
        self._emit("j" + cond.value, (self._code_label(target),))

    def ret(self) -> None:
        self._emit("ret")

    def push(self, src: Gpr) -> None:
        _size("push", src, (8,), mem=False)
        self._emit("push", (src,))

    def pop(self, dst: Gpr) -> None:
        _size("pop", dst, (8,), mem=False)
        self._emit("pop", (dst,))

    def ud2(self) -> None:
        self._emit("ud2")

    # --- String operations (bulk memory) ---

    def rep_stosb(self) -> None:
        """Store al into rcx bytes at [rdi] (rdi and rcx advance/count down)."""
        self._emit("rep stosb", (Mem(RDI, size=1), AL), "rep stosb")

    def rep_movsb(self) -> None:
        """Copy rcx bytes from [rsi] to [rdi], in the direction the direction flag says."""
        self._emit("rep movsb", (Mem(RDI, size=1), Mem(RSI, size=1)), "rep movsb")

    def std(self) -> None:
        """Set the direction flag (string operations go downwards); clear it again with cld."""
        self._emit("std")

    def cld(self) -> None:
        self._emit("cld")

    def int3(self) -> None:
        self._emit("int3")

    def nop(self) -> None:
        self._emit("nop")

    # --- Bit counting ---

    def _bits(self, mnemonic: str, dst: Gpr, src: Gpr | Mem) -> None:
        _size(mnemonic, dst, _WIDE, mem=False)
        _size(mnemonic, src, _WIDE)
        _agree(mnemonic, dst, src)
        self._emit(mnemonic, (dst, self._rm(src)))

    def popcnt(self, dst: Gpr, src: Gpr | Mem) -> None:
        self._bits("popcnt", dst, src)

    def lzcnt(self, dst: Gpr, src: Gpr | Mem) -> None:
        self._bits("lzcnt", dst, src)

    def tzcnt(self, dst: Gpr, src: Gpr | Mem) -> None:
        self._bits("tzcnt", dst, src)

    def bsf(self, dst: Gpr, src: Gpr | Mem) -> None:
        self._bits("bsf", dst, src)

    def bsr(self, dst: Gpr, src: Gpr | Mem) -> None:
        self._bits("bsr", dst, src)

    def bswap(self, dst: Gpr) -> None:
        """Reverse the bytes of a 32- or 64-bit register."""
        _size("bswap", dst, (4, 8), mem=False)
        self._emit("bswap", (dst,))

    # --- SSE moves ---

    def _xmm(self, mnemonic: str, op: object) -> Xmm:
        if not isinstance(op, Xmm):
            raise EmitError(f"{mnemonic}: operand {op!r} is not an xmm register")
        return op

    def _xmm_or_mem(self, mnemonic: str, op: object, size: int) -> Xmm | Mem:
        if isinstance(op, Mem):
            if op.size != size:
                raise EmitError(f"{mnemonic}: memory operand {op} must be {size} bytes")
            return self._mem(op)
        return self._xmm(mnemonic, op)

    def _gpr_xmm(self, mnemonic: str, dst: Gpr | Mem | Xmm, src: Gpr | Mem | Xmm, size: int) -> None:
        """movd/movq: exactly one side is an xmm register, the other a gpr or memory of ``size``."""
        if isinstance(dst, Xmm) and isinstance(src, Xmm) and mnemonic == "movq":
            self._emit(mnemonic, (dst, src))
            return
        if isinstance(dst, Xmm):
            other = src
        elif isinstance(src, Xmm):
            other = dst
        else:
            raise EmitError(f"{mnemonic}: one operand must be an xmm register")
        if isinstance(other, Xmm):
            raise EmitError(f"{mnemonic}: needs a general-purpose register or memory operand")
        _size(mnemonic, other, (size,))
        self._emit(mnemonic, (self._any(dst), self._any(src)))

    def _any(self, op: Gpr | Mem | Xmm) -> Gpr | Mem | Xmm:
        return self._mem(op) if isinstance(op, Mem) else op

    def movd(self, dst: Gpr | Mem | Xmm, src: Gpr | Mem | Xmm) -> None:
        """32 bits between an xmm register and a gpr or memory (zeroing the rest of the xmm)."""
        self._gpr_xmm("movd", dst, src, 4)

    def movq(self, dst: Gpr | Mem | Xmm, src: Gpr | Mem | Xmm) -> None:
        """64 bits between an xmm register and a gpr, memory or another xmm (zeroing the upper half)."""
        self._gpr_xmm("movq", dst, src, 8)

    def _sse_move(self, mnemonic: str, dst: Xmm | Mem, src: Xmm | Mem, size: int) -> None:
        if isinstance(dst, Mem):
            self._emit(mnemonic, (self._xmm_or_mem(mnemonic, dst, size), self._xmm(mnemonic, src)))
        else:
            self._emit(mnemonic, (self._xmm(mnemonic, dst), self._xmm_or_mem(mnemonic, src, size)))

    def movss(self, dst: Xmm | Mem, src: Xmm | Mem) -> None:
        self._sse_move("movss", dst, src, 4)

    def movsd(self, dst: Xmm | Mem, src: Xmm | Mem) -> None:
        self._sse_move("movsd", dst, src, 8)

    def movaps(self, dst: Xmm | Mem, src: Xmm | Mem) -> None:
        """Aligned 16-byte move (memory must be 16-byte aligned)."""
        self._sse_move("movaps", dst, src, 16)

    def movapd(self, dst: Xmm | Mem, src: Xmm | Mem) -> None:
        self._sse_move("movapd", dst, src, 16)

    def movups(self, dst: Xmm | Mem, src: Xmm | Mem) -> None:
        """Unaligned 16-byte move."""
        self._sse_move("movups", dst, src, 16)

    def movupd(self, dst: Xmm | Mem, src: Xmm | Mem) -> None:
        self._sse_move("movupd", dst, src, 16)

    # --- SSE arithmetic ---

    def _sse(self, mnemonic: str, dst: Xmm, src: Xmm | Mem, size: int) -> None:
        self._emit(mnemonic, (self._xmm(mnemonic, dst), self._xmm_or_mem(mnemonic, src, size)))

    def addss(self, dst: Xmm, src: Xmm | Mem) -> None:
        self._sse("addss", dst, src, 4)

    def addsd(self, dst: Xmm, src: Xmm | Mem) -> None:
        self._sse("addsd", dst, src, 8)

    def subss(self, dst: Xmm, src: Xmm | Mem) -> None:
        self._sse("subss", dst, src, 4)

    def subsd(self, dst: Xmm, src: Xmm | Mem) -> None:
        self._sse("subsd", dst, src, 8)

    def mulss(self, dst: Xmm, src: Xmm | Mem) -> None:
        self._sse("mulss", dst, src, 4)

    def mulsd(self, dst: Xmm, src: Xmm | Mem) -> None:
        self._sse("mulsd", dst, src, 8)

    def divss(self, dst: Xmm, src: Xmm | Mem) -> None:
        self._sse("divss", dst, src, 4)

    def divsd(self, dst: Xmm, src: Xmm | Mem) -> None:
        self._sse("divsd", dst, src, 8)

    def sqrtss(self, dst: Xmm, src: Xmm | Mem) -> None:
        self._sse("sqrtss", dst, src, 4)

    def sqrtsd(self, dst: Xmm, src: Xmm | Mem) -> None:
        self._sse("sqrtsd", dst, src, 8)

    def minss(self, dst: Xmm, src: Xmm | Mem) -> None:
        """x86 min: returns ``src`` when either is NaN or both are zero (not wasm's f32.min)."""
        self._sse("minss", dst, src, 4)

    def minsd(self, dst: Xmm, src: Xmm | Mem) -> None:
        """x86 min: returns ``src`` when either is NaN or both are zero (not wasm's f64.min)."""
        self._sse("minsd", dst, src, 8)

    def maxss(self, dst: Xmm, src: Xmm | Mem) -> None:
        self._sse("maxss", dst, src, 4)

    def maxsd(self, dst: Xmm, src: Xmm | Mem) -> None:
        self._sse("maxsd", dst, src, 8)

    def ucomiss(self, a: Xmm, b: Xmm | Mem) -> None:
        """Compare floats into ZF/PF/CF (unordered: ZF=PF=CF=1)."""
        self._sse("ucomiss", a, b, 4)

    def ucomisd(self, a: Xmm, b: Xmm | Mem) -> None:
        self._sse("ucomisd", a, b, 8)

    def cvtss2sd(self, dst: Xmm, src: Xmm | Mem) -> None:
        self._sse("cvtss2sd", dst, src, 4)

    def cvtsd2ss(self, dst: Xmm, src: Xmm | Mem) -> None:
        self._sse("cvtsd2ss", dst, src, 8)

    def _round(self, mnemonic: str, dst: Xmm, src: Xmm | Mem, mode: int, size: int) -> None:
        if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 15:
            raise EmitError(f"{mnemonic}: rounding mode {mode!r} is not in 0..0xf")
        operands = (self._xmm(mnemonic, dst), self._xmm_or_mem(mnemonic, src, size), Imm(mode, 1))
        self._emit(mnemonic, operands)

    def roundss(self, dst: Xmm, src: Xmm | Mem, mode: int) -> None:
        """SSE4.1 round; ``mode`` 8|rc (8 = nearest, 9 = floor, 10 = ceil, 11 = trunc, no inexact)."""
        self._round("roundss", dst, src, mode, 4)

    def roundsd(self, dst: Xmm, src: Xmm | Mem, mode: int) -> None:
        """SSE4.1 round; see :meth:`roundss`."""
        self._round("roundsd", dst, src, mode, 8)

    def _packed(self, mnemonic: str, dst: Xmm, src: Xmm | Mem) -> None:
        self._sse(mnemonic, dst, src, 16)  # a memory operand must be 16-byte aligned

    def andps(self, dst: Xmm, src: Xmm | Mem) -> None:
        self._packed("andps", dst, src)

    def andpd(self, dst: Xmm, src: Xmm | Mem) -> None:
        self._packed("andpd", dst, src)

    def andnps(self, dst: Xmm, src: Xmm | Mem) -> None:
        """``dst = ~dst & src``."""
        self._packed("andnps", dst, src)

    def andnpd(self, dst: Xmm, src: Xmm | Mem) -> None:
        """``dst = ~dst & src``."""
        self._packed("andnpd", dst, src)

    def orps(self, dst: Xmm, src: Xmm | Mem) -> None:
        self._packed("orps", dst, src)

    def orpd(self, dst: Xmm, src: Xmm | Mem) -> None:
        self._packed("orpd", dst, src)

    def xorps(self, dst: Xmm, src: Xmm | Mem) -> None:
        self._packed("xorps", dst, src)

    def xorpd(self, dst: Xmm, src: Xmm | Mem) -> None:
        self._packed("xorpd", dst, src)

    def pxor(self, dst: Xmm, src: Xmm | Mem) -> None:
        self._packed("pxor", dst, src)

    # --- Int/float conversions ---

    def _cvt_from_int(self, mnemonic: str, dst: Xmm, src: Gpr | Mem) -> None:
        _size(mnemonic, src, (4, 8))
        self._emit(mnemonic, (self._xmm(mnemonic, dst), self._rm(src)))

    def cvtsi2ss(self, dst: Xmm, src: Gpr | Mem) -> None:
        """Signed 32/64-bit integer to f32 (merges into ``dst``: clear it first to break the dependency)."""
        self._cvt_from_int("cvtsi2ss", dst, src)

    def cvtsi2sd(self, dst: Xmm, src: Gpr | Mem) -> None:
        """Signed 32/64-bit integer to f64 (merges into ``dst``)."""
        self._cvt_from_int("cvtsi2sd", dst, src)

    def _cvt_to_int(self, mnemonic: str, dst: Gpr, src: Xmm | Mem, size: int) -> None:
        _size(mnemonic, dst, (4, 8), mem=False)
        self._emit(mnemonic, (dst, self._xmm_or_mem(mnemonic, src, size)))

    def cvttss2si(self, dst: Gpr, src: Xmm | Mem) -> None:
        """Truncate f32 to a signed 32/64-bit integer (0x80..00 when out of range or NaN)."""
        self._cvt_to_int("cvttss2si", dst, src, 4)

    def cvttsd2si(self, dst: Gpr, src: Xmm | Mem) -> None:
        """Truncate f64 to a signed 32/64-bit integer (0x80..00 when out of range or NaN)."""
        self._cvt_to_int("cvttsd2si", dst, src, 8)

    # --- Data area: constants and jump tables ---

    def constant(self, data: bytes) -> Label:
        """A 4, 8 or 16-byte constant in the data area (naturally aligned; identical ones shared)."""
        if len(data) not in (4, 8, 16):
            raise EmitError(f"constant of {len(data)} bytes (4, 8 or 16)")
        data = bytes(data)
        label = self._consts.get(data)
        if label is None:
            label = self._consts[data] = self.new_label("c")
            self._data_labels.add(label.name)
        return label

    def const_u32(self, value: int) -> Label:
        return self.constant(struct.pack("<I", value & 0xFFFF_FFFF))

    def const_u64(self, value: int) -> Label:
        return self.constant(struct.pack("<Q", value & 0xFFFF_FFFF_FFFF_FFFF))

    def const_f32(self, value: float) -> Label:
        return self.constant(struct.pack("<f", value))

    def const_f64(self, value: float) -> Label:
        return self.constant(struct.pack("<d", value))

    def const_u64x2(self, low: int, high: int) -> Label:
        """A 16-byte constant from two u64 halves, e.g. a sign mask for ``andpd``/``xorpd``."""
        mask = 0xFFFF_FFFF_FFFF_FFFF
        return self.constant(struct.pack("<QQ", low & mask, high & mask))

    def jump_table(self, targets: Sequence[Label]) -> Label:
        """A position-independent jump table: entry ``i`` is ``targets[i] - table`` (``.long``).
        Dispatch with :meth:`table_jump`."""
        if not targets:
            raise EmitError("jump table without targets")
        entries = tuple(self._code_label(t) for t in targets)
        table = self.new_label("jt")
        self._data_labels.add(table.name)
        self._tables.append((table, entries))
        self._used[table.name] = table
        return table

    def table_jump(self, index: Gpr, table: Label, base: Gpr, scratch: Gpr) -> None:
        """Jump to entry ``index`` (a 64-bit register, already bounds-checked) of ``table``;
        clobbers ``base`` and ``scratch``."""
        for op in (index, base, scratch):
            _size("table_jump", op, (8,), mem=False)
        if len({index.num, base.num, scratch.num}) != 3:
            raise EmitError("table_jump: index, base and scratch must be different registers")
        self.lea(base, Mem(table))
        self.movsxd(scratch, Mem(base, index, 4, size=4))
        self.add(scratch, base)
        self.jmp(scratch)

    # --- Finishing ---

    def listing(self) -> Listing:
        """The finished text and expectations; raises if a used label was never bound."""
        unbound = [name for name in self._used if name not in self._bound and name not in self._data_labels]
        if unbound:
            raise EmitError(f"labels used but never bound: {', '.join(sorted(unbound))}")
        lines = [_statement_text(stmt) for stmt in self._stmts]
        data, data_size = self._layout()
        if data:
            lines.append(f".align {DATA_ALIGN:#x}")
        for datum in data:
            lines.append(f"{datum.label.name}:")
            if datum.payload is not None:
                lines += _data_lines(datum.payload)
            else:
                lines += [f".long {t.name} - {datum.label.name}" for t in datum.targets]
        # Keystone counts a ``rep`` prefix as a statement of its own.
        prefixes = sum(1 for stmt in self._stmts
                       if isinstance(stmt, Insn) and stmt.mnemonic.startswith("rep "))
        return Listing("\n".join(lines), len(lines) + prefixes, tuple(self._stmts), tuple(data), data_size,
                       tuple(self._relocs))

    def text(self) -> str:
        """The assembly text (what goes to Keystone), for golden tests and dumps."""
        return self.listing().text

    def _layout(self) -> tuple[list[Datum], int]:
        """Constants largest first (so each is naturally aligned), then jump tables."""
        data: list[Datum] = []
        offset = 0
        for payload, label in sorted(self._consts.items(), key=lambda item: -len(item[0])):
            data.append(Datum(label, offset, len(payload), payload=payload))
            offset += len(payload)
        for table, targets in self._tables:
            data.append(Datum(table, offset, 4 * len(targets), targets=targets))
            offset += 4 * len(targets)
        return data, offset


def _statement_text(stmt: Stmt) -> str:
    if isinstance(stmt, Insn):
        return stmt.text
    if isinstance(stmt, Bind):
        return f"{stmt.label.name}:"
    return f".align {stmt.boundary:#x}"


def _data_lines(payload: bytes) -> list[str]:
    if len(payload) == 4:
        return [f".long {struct.unpack('<I', payload)[0]:#x}"]
    return [f".quad {word:#x}" for word in struct.unpack(f"<{len(payload) // 8}Q", payload)]
