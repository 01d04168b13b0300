"""The JIT's intermediate representation: a linear list of instructions over virtual registers.

``lower`` produces it from a validated wasm function, ``regalloc`` gives every virtual register a
physical register or a stack slot, and the x64 code generator turns each instruction into machine
code. The IR is target-neutral except for register constraints: a virtual register may be *fixed*
to a physical register (the code generator's way of saying "this operand must be in rcx"), and an
instruction may *clobber* physical registers (calls, division). The allocator treats fixed
registers as pre-coloured and keeps other values out of clobbered registers.

Control flow is explicit: ``label`` instructions mark positions, and ``jmp``/``br``-style
instructions name the labels they may go to (``Inst.targets``), so liveness can be computed
without knowing what each operation means. ``Inst.op`` names come from the lowering; this module
only knows which ones end a block (:data:`TERMINATORS`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


class RegClass(enum.Enum):
    """Which register file a value lives in."""

    GPR = "r"
    XMM = "x"


@dataclass(frozen=True, slots=True)
class PReg:
    """A physical register, by its 64-bit (or xmm) name, e.g. ``PReg(RegClass.GPR, "rax")``."""

    cls: RegClass
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(eq=False, slots=True)
class VReg:
    """A virtual register. ``type`` is the wasm value type it holds (i32/i64/f32/f64/funcref/
    externref); ``fixed`` pins it to one physical register for its whole (short) life."""

    index: int
    type: str
    fixed: PReg | None = None

    @property
    def cls(self) -> RegClass:
        return RegClass.XMM if self.type in ("f32", "f64") else RegClass.GPR

    def __str__(self) -> str:
        return f"%{self.index}" + (f"<{self.fixed}>" if self.fixed else "")

    def __repr__(self) -> str:
        return f"VReg({self.index}, {self.type!r}" + (f", fixed={self.fixed.name!r})" if self.fixed else ")")


@dataclass(frozen=True, slots=True)
class Label:
    """A position in the instruction list that branches can name."""

    index: int

    def __str__(self) -> str:
        return f"L{self.index}"


Operand = VReg | int  # integers are immediates (raw bits for floats)


@dataclass(slots=True)
class Inst:
    """One IR instruction: ``defs = op(uses)``. ``attrs`` holds the operation's own data (memory
    offset, condition, callee, trap code...). ``targets`` are the labels it may branch to;
    ``clobbers`` the physical registers it destroys besides its fixed defs."""

    op: str
    defs: tuple[VReg, ...] = ()
    uses: tuple[Operand, ...] = ()
    attrs: dict[str, Any] = field(default_factory=dict)
    targets: tuple[Label, ...] = ()
    clobbers: frozenset[PReg] = frozenset()
    wasm_offset: int = -1  # byte offset of the wasm instruction it came from (backtraces, disasm)

    def vreg_uses(self) -> Iterator[VReg]:
        return (u for u in self.uses if isinstance(u, VReg))

    def __str__(self) -> str:
        parts = [self.op]
        if self.op == "label":
            return f"{self.attrs['label']}:"
        if self.uses:
            parts.append(", ".join(str(u) if isinstance(u, VReg) else hex(u) for u in self.uses))
        if self.attrs:
            parts.append(" ".join(f"{k}={_fmt(v)}" for k, v in sorted(self.attrs.items())))
        if self.targets:
            parts.append("-> " + ", ".join(str(t) for t in self.targets))
        text = " ".join(parts)
        if self.defs:
            text = ", ".join(str(d) for d in self.defs) + " = " + text
        return "  " + text


def _fmt(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 9:
        return hex(value)
    return str(value)


# Instructions after which control never falls through to the next one.
TERMINATORS = frozenset({"jmp", "br_table", "ret", "trap"})


@dataclass
class Function:
    """A lowered function: its instructions and the virtual registers they use."""

    name: str
    params: tuple[VReg, ...] = ()
    results: tuple[str, ...] = ()
    insts: list[Inst] = field(default_factory=list)
    vregs: list[VReg] = field(default_factory=list)
    labels: int = 0

    def new_vreg(self, type_: str, fixed: PReg | None = None) -> VReg:
        reg = VReg(len(self.vregs), type_, fixed)
        self.vregs.append(reg)
        return reg

    def new_label(self) -> Label:
        self.labels += 1
        return Label(self.labels - 1)

    def emit(self, op: str, defs: tuple[VReg, ...] = (), uses: tuple[Operand, ...] = (),
             targets: tuple[Label, ...] = (), clobbers: frozenset[PReg] = frozenset(),
             wasm_offset: int = -1, **attrs: Any) -> Inst:
        inst = Inst(op, defs, uses, attrs, targets, clobbers, wasm_offset)
        self.insts.append(inst)
        return inst

    def place(self, label: Label) -> None:
        """Put ``label`` at the current end of the instruction list."""
        self.insts.append(Inst("label", attrs={"label": label}))

    def label_positions(self) -> dict[Label, int]:
        return {inst.attrs["label"]: i for i, inst in enumerate(self.insts) if inst.op == "label"}

    def successors(self) -> list[list[int]]:
        """For each instruction, the indices of the instructions that may run next."""
        where = self.label_positions()
        out = []
        for i, inst in enumerate(self.insts):
            succ = [where[t] for t in inst.targets]
            if inst.op not in TERMINATORS and i + 1 < len(self.insts):
                succ.append(i + 1)
            out.append(succ)
        return out

    def __str__(self) -> str:
        head = f"function {self.name}({', '.join(f'{p}:{p.type}' for p in self.params)})"
        if self.results:
            head += " -> " + ", ".join(self.results)
        return "\n".join([head, *(str(inst) for inst in self.insts)])
