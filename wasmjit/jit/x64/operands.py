"""Typed x86-64 operands for the macro-assembler: registers, memory operands, labels, conditions.

Every operand validates itself when built, so an operand that Keystone 0.9.2 would mis-assemble
cannot exist: a high-byte register (``ah``..``dh``, whose mere mention can kill the process with an
``LLVM ERROR``) has no representation, a displacement outside signed 32 bits raises instead of
wrapping, and a memory operand always has a base register or is rip-relative to a label (Keystone
turns bare absolute addresses into wrong rip-relative ones). Immediates are plain ``int``s; the
instruction that takes one range-checks it for its operand size (:func:`check_imm`). Imports:
errors only.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import NamedTuple

from ...errors import WasmjitError


class EmitError(WasmjitError):
    """An emitter rule was broken. Always a bug in the code generator, never bad wasm input."""


# --- General-purpose registers ---

_NAMES64 = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi") + tuple(f"r{i}" for i in range(8, 16))
_NAMES32 = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi") + tuple(f"r{i}d" for i in range(8, 16))
_NAMES16 = ("ax", "cx", "dx", "bx", "sp", "bp", "si", "di") + tuple(f"r{i}w" for i in range(8, 16))
# Encodings 4-7 at byte size are spl/bpl/sil/dil (they need a REX prefix, which Keystone adds);
# the legacy high-byte registers ah/ch/dh/bh have no representation at all.
_NAMES8 = ("al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil") + tuple(f"r{i}b" for i in range(8, 16))
_NAMES = {8: _NAMES64, 4: _NAMES32, 2: _NAMES16, 1: _NAMES8}
HIGH_BYTE_REGISTERS = frozenset({"ah", "bh", "ch", "dh"})

PTR = {1: "byte ptr", 2: "word ptr", 4: "dword ptr", 8: "qword ptr", 16: "xmmword ptr"}


@dataclass(frozen=True, slots=True)
class Gpr:
    """A general-purpose register: hardware number ``num`` (0-15) viewed at ``size`` bytes (8/4/2/1)."""

    num: int
    size: int

    def __post_init__(self) -> None:
        if not 0 <= self.num < 16 or self.size not in _NAMES:
            raise EmitError(f"no general-purpose register number {self.num} of size {self.size}")

    @property
    def name(self) -> str:
        return _NAMES[self.size][self.num]

    def sized(self, size: int) -> Gpr:
        """The same register viewed at ``size`` bytes (``RAX.sized(4)`` is ``eax``)."""
        if size not in _GPR_TABLE:
            raise EmitError(f"no general-purpose register of size {size}")
        return _GPR_TABLE[size][self.num]

    @property
    def r64(self) -> Gpr:
        return _GPR_TABLE[8][self.num]

    @property
    def r32(self) -> Gpr:
        return _GPR_TABLE[4][self.num]

    @property
    def r16(self) -> Gpr:
        return _GPR_TABLE[2][self.num]

    @property
    def r8(self) -> Gpr:
        """The low byte (``al``, ``sil``, ``r8b``); never a high-byte register."""
        return _GPR_TABLE[1][self.num]

    def __str__(self) -> str:
        return _NAMES[self.size][self.num]


@dataclass(frozen=True, slots=True)
class Xmm:
    """An SSE register ``xmm0``..``xmm15``."""

    num: int

    def __post_init__(self) -> None:
        if not 0 <= self.num < 16:
            raise EmitError(f"no register xmm{self.num}")

    @property
    def name(self) -> str:
        return f"xmm{self.num}"

    @property
    def size(self) -> int:
        return 16

    def __str__(self) -> str:
        return self.name


Reg = Gpr | Xmm

_GPR_TABLE = {size: tuple(Gpr(num, size) for num in range(16)) for size in _NAMES}

RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 = (Gpr(i, 8) for i in range(16))
GPRS64: tuple[Gpr, ...] = tuple(Gpr(i, 8) for i in range(16))
XMMS: tuple[Xmm, ...] = tuple(Xmm(i) for i in range(16))
(XMM0, XMM1, XMM2, XMM3, XMM4, XMM5, XMM6, XMM7,
 XMM8, XMM9, XMM10, XMM11, XMM12, XMM13, XMM14, XMM15) = XMMS  # fmt: skip
CL = Gpr(1, 1)

_BY_NAME: dict[str, Reg] = {g.name: g for row in _GPR_TABLE.values() for g in row}
_BY_NAME.update({x.name: x for x in XMMS})


def reg(name: str) -> Reg:
    """The register called ``name`` (``"rax"``, ``"r8d"``, ``"sil"``, ``"xmm3"``); high-byte
    registers and unknown names raise :class:`EmitError`."""
    found = _BY_NAME.get(name)
    if found is not None:
        return found
    if name in HIGH_BYTE_REGISTERS:
        raise EmitError(f"high-byte register {name} is never emitted (Keystone 0.9.2 can abort the process)")
    raise EmitError(f"unknown register {name!r}")


def gpr(name: str) -> Gpr:
    """The general-purpose register called ``name`` (see :func:`reg`)."""
    found = reg(name)
    if not isinstance(found, Gpr):
        raise EmitError(f"{name} is not a general-purpose register")
    return found


# --- Labels ---

LABEL_KIND = re.compile(r"[a-z]+")
LABEL_NAME = re.compile(r"wj_[a-z]+[0-9]+")


@dataclass(frozen=True, slots=True)
class Label:
    """A position in one :class:`~wasmjit.jit.x64.masm.Masm`'s output, named ``wj_<kind><n>``.

    Only ``Masm.new_label`` makes them: ``owner`` identifies that Masm, so a label from another
    function is rejected instead of silently resolving to a same-named one."""

    name: str
    owner: int

    def __post_init__(self) -> None:
        if not LABEL_NAME.fullmatch(self.name):
            raise EmitError(f"label name {self.name!r} is not of the form wj_<kind><n>")

    def __str__(self) -> str:
        return self.name


# --- Memory operands ---

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


class _MemFields(NamedTuple):
    base: Gpr | Label
    index: Gpr | None
    scale: int
    disp: int
    size: int


class Mem(_MemFields):
    """``size ptr [base + index*scale + disp]``; ``base`` is a 64-bit register, or a :class:`Label`
    for a rip-relative operand ``[rip + label + disp]`` (constants, jump tables).

    ``size`` is the access width in bytes (1/2/4/8, 16 for SSE packed operands); ``lea`` ignores it.
    Immutable; a tuple underneath because the code generator builds one for almost every memory
    access and a frozen dataclass costs several times as much to create.
    """

    __slots__ = ()

    def __new__(cls, base: Gpr | Label, index: Gpr | None = None, scale: int = 1, disp: int = 0,
                size: int = 8) -> Mem:
        check_mem(base, index, scale, disp, size)
        return super().__new__(cls, base, index, scale, disp, size)

    def with_size(self, size: int) -> Mem:
        """The same address accessed at ``size`` bytes."""
        return Mem(self.base, self.index, self.scale, self.disp, size)

    @property
    def address_text(self) -> str:
        """``[rbx + rcx*4 + 0x10]``, ``[rip + wj_c0]``: the bracketed address in Intel syntax."""
        if isinstance(self.base, Label):
            parts = f"rip + {self.base.name}"
        else:
            parts = self.base.name
            if self.index is not None:
                parts += f" + {self.index.name}*{self.scale}"  # scale is one digit, the same in any base
        if self.disp > 0:
            parts += f" + {self.disp:#x}"
        elif self.disp < 0:
            parts += f" - {-self.disp:#x}"
        return f"[{parts}]"

    def __str__(self) -> str:
        return f"{PTR[self.size]} {self.address_text}"


def check_mem(base: object, index: object, scale: object, disp: object, size: object) -> None:
    """Raise :class:`EmitError` unless the parts make a memory operand Keystone encodes faithfully."""
    if type(base) is Gpr:
        if base.size != 8:
            raise EmitError(f"memory base {base} is not a 64-bit register")
    elif type(base) is not Label:
        raise EmitError(f"memory base must be a 64-bit register or a label, not {base!r}"
                        " (bare absolute addresses are mis-assembled by Keystone)")
    if index is not None:
        if type(base) is Label:
            raise EmitError("a rip-relative memory operand cannot have an index register")
        if type(index) is not Gpr or index.size != 8:
            raise EmitError(f"memory index {index} is not a 64-bit register")
        if index.num == 4:
            raise EmitError("rsp cannot be an index register")
    if scale not in (1, 2, 4, 8) or (index is None and scale != 1):
        raise EmitError(f"bad scale {scale} (1, 2, 4 or 8, and 1 without an index)")
    if type(disp) is not int:
        raise EmitError(f"displacement {disp!r} is not an int")
    if not INT32_MIN <= disp <= INT32_MAX:
        raise EmitError(f"displacement {fmt_int(disp)} does not fit in signed 32 bits; compute the"
                        " address in a register (Keystone would silently wrap it)")
    if size not in PTR:
        raise EmitError(f"bad memory operand size {size} (1, 2, 4, 8 or 16)")


def fmt_int(value: int) -> str:
    """Hex with sign: ``0x10``, ``-0x10``. Numbers in assembly text are never decimal (``010`` is octal
    to Keystone)."""
    return f"{value:#x}" if value >= 0 else f"-{-value:#x}"


# --- Immediates ---


class Imm(NamedTuple):
    """An immediate as the verifier expects to decode it: ``value`` reduced modulo 2**(8*size)
    (so -1 at size 4 is 0xffffffff); ``size`` is the width the CPU interprets it at. ``written``
    is the number as spelt in the assembly text, if that differs."""

    value: int
    size: int
    written: int | None = None

    def __str__(self) -> str:
        return fmt_int(self.value if self.written is None else self.written)


def check_imm(value: int, size: int, *, what: str) -> int:
    """Range-check an immediate for an operand of ``size`` bytes and return the number to write in
    the assembly text: ``value`` itself, except that a 64-bit operand's is always signed.

    Sizes 1, 2 and 4 accept both signed and unsigned spellings (-1 or 0xffffffff); 64-bit
    operations take a sign-extended imm32, where the unsigned spelling of a negative number
    (``2**64 - 1``) is accepted too and written signed (Keystone rejects it). Anything else raises
    :class:`EmitError` instead of being truncated by Keystone.
    """
    if type(value) is not int:
        raise EmitError(f"{what}: immediate {value!r} is not an int")
    if -0x80 <= value <= 0x7F:  # fits every size
        return value
    bits = 8 * min(size, 4)
    lo = -(1 << (bits - 1))
    hi = (1 << (bits - 1)) - 1 if size == 8 else (1 << bits) - 1
    if size == 8 and value >= (1 << 64) + lo:
        value -= 1 << 64
    if not lo <= value <= hi:
        hint = " (use movabs for a 64-bit constant)" if size == 8 else ""
        raise EmitError(f"{what}: immediate {fmt_int(value)} does not fit a {8 * size}-bit operand"
                        f" (range {fmt_int(lo)}..{fmt_int(hi)}){hint}")
    return value


# --- Condition codes ---


class Cond(enum.Enum):
    """x86 condition codes, spelt as Capstone prints them (``sete``, ``jae``, ``cmovle``)."""

    O = "o"
    NO = "no"
    B = "b"
    AE = "ae"
    E = "e"
    NE = "ne"
    BE = "be"
    A = "a"
    S = "s"
    NS = "ns"
    P = "p"
    NP = "np"
    L = "l"
    GE = "ge"
    LE = "le"
    G = "g"

    def invert(self) -> Cond:
        """The condition that holds exactly when this one does not."""
        return _INVERSE[self]


_INVERSE = {
    Cond.O: Cond.NO, Cond.NO: Cond.O, Cond.B: Cond.AE, Cond.AE: Cond.B, Cond.E: Cond.NE, Cond.NE: Cond.E,
    Cond.BE: Cond.A, Cond.A: Cond.BE, Cond.S: Cond.NS, Cond.NS: Cond.S, Cond.P: Cond.NP, Cond.NP: Cond.P,
    Cond.L: Cond.GE, Cond.GE: Cond.L, Cond.LE: Cond.G, Cond.G: Cond.LE,
}
