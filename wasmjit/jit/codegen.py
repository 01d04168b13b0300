"""x86-64 code generation: allocated IR -> :class:`~wasmjit.jit.x64.Masm` calls.

Register roles (the native ABI every compiled function follows):

- ``r15`` the instance's vmctx, ``r14`` its memory base, ``rbp`` the frame pointer (backtraces
  walk the rbp chain), ``r10``/``r11``/``xmm15`` scratch; never allocated.
- Allocatable: rax rcx rdx rsi rdi r8 r9 (caller-saved) rbx r12 r13 (callee-saved), xmm0-xmm14
  (caller-saved).
- Arguments are passed in memory: the caller writes argument ``k`` (a raw value, 8 bytes) at
  ``[rsp + 8k]`` before ``call``; the callee reads it at ``[rbp + 16 + 8k]``. The first result comes
  back in rax (integers, references) or xmm0 (floats); result ``j >= 1`` is written by the callee to
  ``[rbp + 16 + 8(nparams + j - 1)]``, right after the arguments, where the caller reads it.
- A call to another instance's function switches r15/r14 to the callee's and restores them from
  the caller's frame afterwards, so callees never need to preserve them.
- Frame: ``push rbp; mov rbp, rsp``; saved callee-saved registers; spill slots; the outgoing
  argument area at ``rsp``; rsp is 16-byte aligned at every call.

Every trap jumps to an out-of-line stub that loads the trap code (r11d) and the wasm offset
(r10d) and calls the shared trap routine (see :mod:`.native`), which records where it happened and
unwinds to the innermost entry trampoline. Imports: jit.ir, jit.regalloc, jit.x64, errors, runtime.vmctx.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import TrapCode, UnsupportedError
from ..runtime import vmctx as V
from .ir import Function, Inst, Label, PReg, RegClass, VReg
from .x64 import (
    CL,
    R10,
    R11,
    R14,
    R15,
    RAX,
    RBP,
    RCX,
    RDI,
    RDX,
    RSI,
    RSP,
    XMM0,
    XMM15,
    Cond,
    Gpr,
    Masm,
    Mem,
    Target,
    Xmm,
    reg,
)
from .x64 import Label as AsmLabel

# --- register sets -----------------------------------------------------------------------------


def _p(name: str) -> PReg:
    return PReg(RegClass.XMM if name.startswith("xmm") else RegClass.GPR, name)


ALLOCATABLE_GPRS = tuple(_p(n) for n in ("rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "rbx", "r12", "r13"))
ALLOCATABLE_XMMS = tuple(_p(f"xmm{i}") for i in range(15))
CALLEE_SAVED = (_p("rbx"), _p("r12"), _p("r13"))
CALL_CLOBBERS = frozenset(p for p in ALLOCATABLE_GPRS + ALLOCATABLE_XMMS if p not in CALLEE_SAVED)
P_RAX, P_RCX, P_RDX, P_XMM0 = _p("rax"), _p("rcx"), _p("rdx"), _p("xmm0")


SIZE = {"i32": 4, "i64": 8, "f32": 4, "f64": 8, "funcref": 8, "externref": 8}
INT_TYPES = ("i32", "i64", "funcref", "externref")

# --- legalization: x86's register constraints as fixed vregs and clobbers -----------------------

_DIVS = {f"{t}_{op}" for t in ("i32", "i64") for op in ("div_s", "div_u", "rem_s", "rem_u")}
_SHIFTS = {f"{t}_{op}" for t in ("i32", "i64") for op in ("shl", "shr_s", "shr_u", "rotl", "rotr")}
_CALLS = {"call", "call_indirect", "helper"}
# Bulk memory operations done inline with string instructions, and the registers they destroy.
_INLINE_BULK = {"memory_fill": frozenset({_p("rax"), _p("rcx"), _p("rdi")}),
                "memory_copy": frozenset({_p("rax"), _p("rcx"), _p("rdi"), _p("rsi")})}


def legalize(func: Function) -> Function:
    """Rewrite ``func`` in place so the allocator sees x86's constraints: division operands in
    rax/rdx, variable shift counts in rcx, call results in rax/xmm0 and calls clobbering every
    caller-saved register."""
    out: list[Inst] = []
    for inst in func.insts:
        if inst.op in _DIVS:
            a, b = inst.uses
            fixed_a = func.new_vreg(inst.defs[0].type, P_RAX)
            out.append(Inst("mov", (fixed_a,), (a,), wasm_offset=inst.wasm_offset))
            rem = "rem" in inst.op
            result = func.new_vreg(inst.defs[0].type, P_RDX if rem else P_RAX)
            out.append(Inst(inst.op, (result,), (fixed_a, b), dict(inst.attrs), (),
                            frozenset({P_RAX if rem else P_RDX}), inst.wasm_offset))
            out.append(Inst("mov", inst.defs, (result,), wasm_offset=inst.wasm_offset))
        elif inst.op in _SHIFTS and isinstance(inst.uses[1], VReg):
            count = func.new_vreg(inst.uses[1].type, P_RCX)
            out.append(Inst("mov", (count,), (inst.uses[1],), wasm_offset=inst.wasm_offset))
            inst.uses = (inst.uses[0], count)
            out.append(inst)
        elif inst.op == "helper" and inst.attrs["name"] in _INLINE_BULK:
            inst.clobbers = _INLINE_BULK[inst.attrs["name"]]
            out.append(inst)
        elif inst.op in _CALLS:
            inst.clobbers = CALL_CLOBBERS
            if inst.defs:
                first = inst.defs[0]
                result = P_XMM0 if first.cls is RegClass.XMM else P_RAX
                fixed = func.new_vreg(first.type, result)
                inst.defs = (fixed, *inst.defs[1:])
                inst.clobbers = CALL_CLOBBERS - {result}  # the fixed result occupies it from the def on
                out.append(inst)
                out.append(Inst("mov", (first,), (fixed,), wasm_offset=inst.wasm_offset))
            else:
                out.append(inst)
        else:
            out.append(inst)
    func.insts = out
    return func


# --- the environment a function is compiled in ---------------------------------------------------


# The store's addresses and numbers code embeds, as relocation targets (Masm.mov_reloc): each is
# patched when the code is installed in a store (jit.native), so compiled code is store-independent.
TARGETS = {
    "func_code": "(func index,): address of the function's slot in the store's code array",
    "func_vmctx": "(func index,): address of the function's slot in the store's vmctx array",
    "func_handle": "(func index,): the function's store handle (32-bit)",
    "code_array": "(): address of the store's code array (code address per handle)",
    "vmctx_array": "(): address of the store's vmctx array (vmctx address per handle)",
    "type_array": "(): address of the store's type-id array (u32 canonical type id per handle)",
    "global": "(global index,): address of the global's value cell",
    "type_id": "(type index,): the type's canonical id in the store (32-bit)",
    "trap_routine": "(): address of the shared trap routine",
    "helper_routine": "(): address of the generic runtime-helper entry",
    "helper": "(name, immediate): the instance's id of that runtime helper (32-bit)",
}


def placeholder(target: Target) -> int:
    """The value compiled into relocatable code before installation patches it."""
    return 0


@dataclass
class CompileEnv:
    """What code generation needs to know beyond the function: which functions the instance
    defines (called without a vmctx switch) and the current value of each relocation target
    (:data:`TARGETS`; any value, e.g. 0, gives the same code, since installing patches them)."""

    local_funcs: set[int]  # function indices defined by this instance (no vmctx switch)
    resolve: Callable[[Target], int] = placeholder  # relocation target -> its value


@dataclass
class Compiled:
    """The generated code of one function, before assembly, and what native.py needs after it."""

    masm: Masm
    entry: AsmLabel
    trap_sites: list[tuple[AsmLabel, int]] = field(default_factory=list)  # stub, wasm offset
    call_sites: list[tuple[AsmLabel, int]] = field(default_factory=list)  # return point, wasm offset
    wasm_marks: list[tuple[AsmLabel, int]] = field(default_factory=list)  # where each wasm offset starts


class CodeGen:
    """Generates one function from its legalized IR and allocation."""

    def __init__(self, func: Function, alloc: Any, env: CompileEnv, nparams: int) -> None:
        self.func = func
        self.alloc = alloc
        self.env = env
        self.nparams = nparams
        self.m = Masm()
        self.labels: dict[Label, AsmLabel] = {}
        self.out = Compiled(self.m, self.m.new_label("entry"))
        self.stubs: dict[tuple[TrapCode, int], AsmLabel] = {}
        self.saved = [reg(p.name) for p in alloc.used_callee_saved(CALLEE_SAVED)]
        self.nslots = alloc.num_slots
        self.cross_instance = any(i.op == "call_indirect" or (i.op == "call" and
                                  i.attrs["func"] not in env.local_funcs) for i in func.insts)
        self.vmctx_slot = self.nslots  # where r15 is kept across cross-instance calls
        slots = self.nslots + (1 if self.cross_instance else 0)
        outgoing = max([self._outgoing(i) for i in func.insts if i.op in _CALLS] or [0])
        body = 8 * (len(self.saved) + slots + outgoing)
        self.frame = body + (8 if body % 16 else 0) - 8 * len(self.saved)  # after the pushes

    def _outgoing(self, inst: Inst) -> int:
        if inst.op == "helper":
            return len(inst.uses) + max(0, len(inst.defs) - 1)
        nargs = len(inst.uses) - (1 if inst.op == "call_indirect" else 0)
        return nargs + max(0, len(inst.defs) - 1)

    # --- locations and operands ---

    def slot(self, index: int) -> Mem:
        return Mem(RBP, disp=-8 * (len(self.saved) + index + 1))

    def loc(self, v: VReg) -> Gpr | Xmm | Mem:
        where = self.alloc.location(v)
        if isinstance(where, PReg):
            return reg(where.name)
        return self.slot(where.index)

    def val(self, v: VReg, size: int) -> Gpr | Xmm | Mem:
        """``v``'s location viewed at ``size`` bytes (xmm registers have one view)."""
        where = self.loc(v)
        if isinstance(where, Gpr):
            return where.sized(size)
        if isinstance(where, Mem):
            return where.with_size(size)
        return where

    def int_src(self, u: VReg | int, size: int, scratch: Gpr = R11) -> Gpr | Mem | int:
        """An integer operand: register, memory or an immediate that fits (else via ``scratch``)."""
        if isinstance(u, VReg):
            return self.val(u, size)  # type: ignore[return-value]
        value = u & ((1 << (8 * size)) - 1)
        if size == 4:
            return value
        signed = value - (1 << 64) if value >> 63 else value
        if -(1 << 31) <= signed < (1 << 31):
            return signed
        self.m.mov_imm(scratch, value)
        return scratch

    def int_reg(self, u: VReg | int, size: int, scratch: Gpr = R11) -> Gpr:
        """An integer operand in a register (memory and immediates go through ``scratch``)."""
        src = self.int_src(u, size, scratch)
        if isinstance(src, Gpr):
            return src
        target = scratch.sized(size)
        if isinstance(src, int):
            self.m.mov_imm(target, src & ((1 << (8 * size)) - 1))
        else:
            self.m.mov(target, src)
        return target

    def float_src(self, u: VReg | int, type_: str) -> Xmm | Mem:
        """A float operand: xmm register, memory, or a constant in the data area."""
        if isinstance(u, VReg):
            return self.val(u, SIZE[type_])  # type: ignore[return-value]
        label = self.m.const_u32(u) if type_ == "f32" else self.m.const_u64(u)
        return Mem(label, size=SIZE[type_])

    def float_reg(self, u: VReg | int, type_: str, scratch: Xmm = XMM15) -> Xmm:
        src = self.float_src(u, type_)
        if isinstance(src, Xmm):
            return src
        self.fmov(scratch, src, type_)
        return scratch

    def fmov(self, dst: Xmm | Mem, src: Xmm | Mem, type_: str) -> None:
        if dst == src:
            return
        if isinstance(dst, Xmm) and isinstance(src, Xmm):
            self.m.movaps(dst, src)
        elif type_ == "f32":
            self.m.movss(dst, src)
        else:
            self.m.movsd(dst, src)

    def target(self, v: VReg, size: int) -> Gpr:
        """The register to compute ``v`` into: its own, or r10 when it lives in memory."""
        where = self.loc(v)
        return where.sized(size) if isinstance(where, Gpr) else R10.sized(size)

    def ftarget(self, v: VReg) -> Xmm:
        where = self.loc(v)
        return where if isinstance(where, Xmm) else XMM15

    def store_result(self, v: VReg, computed: Gpr | Xmm) -> None:
        """Write ``computed`` back if ``v`` lives in memory (the target was scratch)."""
        where = self.loc(v)
        if isinstance(where, Mem):
            if isinstance(computed, Xmm):
                self.fmov(where.with_size(SIZE[v.type]), computed, v.type)
            else:
                self.m.mov(where.with_size(8), computed.r64)

    def reloc(self, dst: Gpr, target: Target) -> None:
        """Load relocation ``target``'s value into ``dst`` (fixed-width, patched at installation)."""
        self.m.mov_reloc(dst, self.env.resolve(target), target)

    def stub(self, code: TrapCode, inst: Inst) -> AsmLabel:
        """The out-of-line trap stub for ``code`` at this instruction's wasm offset."""
        key = (code, inst.wasm_offset)
        label = self.stubs.get(key)
        if label is None:
            label = self.stubs[key] = self.m.new_label("trap")
        return label

    def asm_label(self, label: Label) -> AsmLabel:
        found = self.labels.get(label)
        if found is None:
            found = self.labels[label] = self.m.new_label("l")
        return found

    # --- the function ---

    def run(self) -> Compiled:
        m = self.m
        m.bind(self.out.entry)
        m.push(RBP)
        m.mov(RBP, RSP)
        overflow = self.stub(TrapCode.STACK_OVERFLOW, Inst("entry", wasm_offset=0))
        m.mov(R11, Mem(R15, disp=V.OFFSET_STORE))
        m.cmp(RSP, Mem(R11, disp=V.STORE_STACK_LIMIT))
        m.jcc(Cond.B, overflow)
        m.mov(R10, Mem(R11, disp=V.STORE_DEPTH))  # the call depth, counted as the interpreter does
        m.add(R10, 1)
        m.cmp(R10, Mem(R11, disp=V.STORE_MAX_DEPTH))
        m.jcc(Cond.A, overflow)
        m.mov(Mem(R11, disp=V.STORE_DEPTH), R10)
        for saved in self.saved:
            m.push(saved)
        if self.frame:
            m.sub(RSP, self.frame)
        for k, param in enumerate(self.func.params):
            self.move_in(param, Mem(RBP, disp=16 + 8 * k))
        insts = self.func.insts
        offset = -1
        for i, inst in enumerate(insts):
            if inst.op == "jmp" and self._falls_to(i, inst.targets[0]):
                continue
            if inst.wasm_offset >= 0 and inst.wasm_offset != offset:  # for disassembly listings
                offset = inst.wasm_offset
                mark = m.new_label("w")
                m.bind(mark)
                self.out.wasm_marks.append((mark, offset))
            emit = _EMITTERS.get(inst.op)
            if emit is None:
                emit = _numeric_emitter(inst.op)
            emit(self, inst)
        self.emit_stubs()
        return self.out

    def _falls_to(self, i: int, label: Label) -> bool:
        """Whether only labels separate instruction ``i`` from ``label`` (a jump there is a no-op)."""
        insts = self.func.insts
        for j in range(i + 1, len(insts)):  # no slice: copying the rest per jump was quadratic
            inst = insts[j]
            if inst.op != "label":
                return False
            if inst.attrs["label"] == label:
                return True
        return False

    def move_in(self, v: VReg, src: Mem) -> None:
        """Load ``v`` from a raw 8-byte value slot (parameters, extra results)."""
        if v.cls is RegClass.XMM:
            dst = self.ftarget(v)
            self.fmov(dst, src.with_size(SIZE[v.type]), v.type)
            self.store_result(v, dst)
        else:
            size = SIZE[v.type]
            dst = self.target(v, size)
            self.m.mov(dst, src.with_size(size))
            self.store_result(v, dst)

    def move_out(self, dst: Mem, u: VReg | int) -> None:
        """Store ``u`` as a raw 8-byte value (arguments, extra results); a constant is its bits."""
        if isinstance(u, int):
            self.m.mov(dst.with_size(8), self.int_src(u, 8, R10))
            return
        type_ = u.type
        where = self.loc(u)
        if isinstance(where, Xmm):
            self.fmov(dst.with_size(SIZE[type_]), where, type_)
            if type_ == "f32":  # raw f32 slots hold the bits zero-extended
                self.m.mov(Mem(dst.base, dst.index, dst.scale, dst.disp + 4, 4), 0)
        elif isinstance(where, Gpr):
            self.m.mov(dst.with_size(8), where)
        else:
            self.m.mov(R10, where.with_size(8))
            self.m.mov(dst.with_size(8), R10)

    def epilogue(self) -> None:
        m = self.m
        m.mov(R11, Mem(R15, disp=V.OFFSET_STORE))
        m.sub(Mem(R11, disp=V.STORE_DEPTH), 1)
        if self.saved:
            m.lea(RSP, Mem(RBP, disp=-8 * len(self.saved)))
            for saved in reversed(self.saved):
                m.pop(saved)
        else:
            m.mov(RSP, RBP)
        m.pop(RBP)
        m.ret()

    def emit_stubs(self) -> None:
        m = self.m
        for (code, offset), label in self.stubs.items():
            m.bind(label)
            m.mov(R10.r32, offset & 0xFFFFFFFF)
            m.mov(R11.r32, _TRAP_NUMBERS[code])
            self.reloc(RAX, ("trap_routine",))
            m.call(RAX)
            self.out.trap_sites.append((label, offset))


# Trap codes as numbers in native code (0 means "no trap").
_TRAP_NUMBERS = {code: i + 1 for i, code in enumerate(TrapCode)}
TRAP_BY_NUMBER = {n: code for code, n in _TRAP_NUMBERS.items()}
HOST_EXCEPTION = 0xFF  # a host function raised: the exception waits on the store's Python side

# --- emitters: one per IR operation --------------------------------------------------------------

Emitter = Callable[[CodeGen, Inst], None]


def _label(g: CodeGen, inst: Inst) -> None:
    g.m.bind(g.asm_label(inst.attrs["label"]))


def _mov(g: CodeGen, inst: Inst) -> None:
    (dst,), (src,) = inst.defs, inst.uses
    if dst.cls is RegClass.XMM:
        where = g.loc(dst)
        if isinstance(src, int):
            if src == 0 and isinstance(where, Xmm):
                g.m.xorps(where, where)
                return
            target = g.ftarget(dst)
            g.fmov(target, g.float_src(src, dst.type), dst.type)
            g.store_result(dst, target)
            return
        source = g.loc(src)
        if source == where:
            return
        if isinstance(where, Mem) and isinstance(source, Mem):
            g.fmov(XMM15, source.with_size(SIZE[dst.type]), dst.type)
            g.fmov(where.with_size(SIZE[dst.type]), XMM15, dst.type)
        else:
            g.fmov(where if isinstance(where, Xmm) else where.with_size(SIZE[dst.type]),
                   source if isinstance(source, Xmm) else source.with_size(SIZE[dst.type]), dst.type)
        return
    size = 8 if dst.type != "i32" else 4
    where = g.loc(dst)
    if isinstance(src, int):
        value = src & ((1 << (8 * size)) - 1)
        if isinstance(where, Gpr):
            if value == 0:
                g.m.xor(where.r32, where.r32)
            else:
                g.m.mov_imm(where.sized(size), value)
        else:
            imm = g.int_src(value, size, R10)
            g.m.mov(where.with_size(size), imm)
        return
    source = g.loc(src)
    if source == where:
        return
    if isinstance(where, Mem) and isinstance(source, Mem):
        g.m.mov(R10, source.with_size(8))
        g.m.mov(where.with_size(8), R10)
    else:
        g.m.mov(where.sized(8) if isinstance(where, Gpr) else where.with_size(8),
                source.sized(8) if isinstance(source, Gpr) else source.with_size(8))


def _jmp(g: CodeGen, inst: Inst) -> None:
    g.m.jmp(g.asm_label(inst.targets[0]))


def _ret(g: CodeGen, inst: Inst) -> None:
    results = g.func.results
    for j in range(1, len(inst.uses)):
        g.move_out(Mem(RBP, disp=16 + 8 * (g.nparams + j - 1)), inst.uses[j])
    if inst.uses:
        first, type_ = inst.uses[0], results[0]
        if type_ in ("f32", "f64"):
            g.fmov(XMM0, g.float_src(first, type_), type_)
        elif isinstance(first, int):
            g.m.mov_imm(RAX, first & ((1 << (8 * SIZE[type_])) - 1))
        else:
            src = g.loc(first)
            if src != RAX:
                g.m.mov(RAX, src.sized(8) if isinstance(src, Gpr) else src.with_size(8))  # type: ignore[union-attr]
    g.epilogue()


def _trap(g: CodeGen, inst: Inst) -> None:
    g.m.jmp(g.stub(inst.attrs["code"], inst))


# --- fuel and epochs (Config.consume_fuel / epoch_interruption; r10, r11 as scratch) ---------


def _burn(g: CodeGen, amount: int | Gpr) -> None:
    """Subtract ``amount`` (a constant or r10) from the store's fuel; the flags show what is left."""
    m = g.m
    m.mov(R11, Mem(R15, disp=V.OFFSET_STORE))
    if isinstance(amount, int) and amount >= 1 << 31:  # constant bulk counts past an imm32
        m.mov_imm(R10, amount)
        amount = R10
    m.sub(Mem(R11, disp=V.STORE_FUEL), amount)


def _fuel_charge(g: CodeGen, inst: Inst) -> None:
    """Charge a run of instructions that execute together, at its start."""
    if inst.attrs["cost"]:
        _burn(g, inst.attrs["cost"])


def _fuel_check(g: CodeGen, inst: Inst) -> None:
    """A function entry (charging its cost) or a loop header: trap once no fuel is left."""
    m = g.m
    if inst.attrs["cost"]:
        _burn(g, inst.attrs["cost"])
    else:
        m.mov(R11, Mem(R15, disp=V.OFFSET_STORE))
        m.cmp(Mem(R11, disp=V.STORE_FUEL), 0)
    m.jcc(Cond.LE, g.stub(TrapCode.OUT_OF_FUEL, inst))


def _fuel_per_item(g: CodeGen, inst: Inst) -> None:
    """After a bulk or grow instruction: charge the items it handled (uses[0]), then check the
    fuel; nothing when the grow whose result is uses[1] failed."""
    m = g.m
    failed = m.new_label("nogrow")
    if len(inst.uses) > 1:
        m.cmp(g.int_reg(inst.uses[1], 4, R11), -1)
        m.jcc(Cond.E, failed)
    items = g.int_reg(inst.uses[0], 4, R10)
    if items != R10.r32:
        m.mov(R10.r32, items)  # zero-extends
    _burn(g, R10)
    m.jcc(Cond.LE, g.stub(TrapCode.OUT_OF_FUEL, inst))
    m.bind(failed)


def _fuel_save(g: CodeGen, inst: Inst) -> None:
    """Before a call, return or trap: what was charged so far survives a later trap."""
    m = g.m
    m.mov(R11, Mem(R15, disp=V.OFFSET_STORE))
    m.mov(R10, Mem(R11, disp=V.STORE_FUEL))
    m.mov(Mem(R11, disp=V.STORE_FUEL_SAVED), R10)


def _epoch_check(g: CodeGen, inst: Inst) -> None:
    """A function entry or loop header: trap once the engine's epoch reaches the deadline."""
    m = g.m
    m.mov(R11, Mem(R15, disp=V.OFFSET_STORE))
    m.mov(R10, Mem(R11, disp=V.STORE_EPOCH_PTR))
    m.mov(R10, Mem(R10))
    m.cmp(R10, Mem(R11, disp=V.STORE_EPOCH_DEADLINE))
    m.jcc(Cond.AE, g.stub(TrapCode.INTERRUPT, inst))


# --- comparisons and branches ---

_INT_CONDS = {"eq": Cond.E, "ne": Cond.NE, "lt_s": Cond.L, "lt_u": Cond.B, "gt_s": Cond.G, "gt_u": Cond.A,
              "le_s": Cond.LE, "le_u": Cond.BE, "ge_s": Cond.GE, "ge_u": Cond.AE}
_SWAPPED = {Cond.E: Cond.E, Cond.NE: Cond.NE, Cond.L: Cond.G, Cond.G: Cond.L, Cond.LE: Cond.GE,
            Cond.GE: Cond.LE, Cond.B: Cond.A, Cond.A: Cond.B, Cond.BE: Cond.AE, Cond.AE: Cond.BE}


def compare(g: CodeGen, op: str, uses: tuple[VReg | int, ...]) -> Cond | str:
    """Set the flags for comparison ``op``; the condition that means "true", or for float eq/ne
    the strings "feq"/"fne" (they need two flags: ZF and PF)."""
    type_, _, name = op.partition("_")
    if name in ("eqz", "is_null"):
        size = 4 if type_ == "i32" else 8
        a = g.int_src(uses[0], size)
        if isinstance(a, int):
            g.m.mov_imm(R11.sized(size), a & ((1 << (8 * size)) - 1))
            a = R11.sized(size)
        if isinstance(a, Gpr):
            g.m.test(a, a)
        else:
            g.m.cmp(a, 0)
        return Cond.E
    if type_ in ("i32", "i64"):
        size = SIZE[type_]
        cond = _INT_CONDS[name]
        a, b = uses
        if isinstance(a, int) and not isinstance(b, int):
            a, b, cond = b, a, _SWAPPED[cond]
        left = g.int_src(a, size, R11)
        if isinstance(left, int):
            g.m.mov_imm(R11.sized(size), left & ((1 << (8 * size)) - 1))
            left = R11.sized(size)
        right = g.int_src(b, size, R10)
        if isinstance(left, Mem) and isinstance(right, Mem):
            g.m.mov(R10.sized(size), right)
            right = R10.sized(size)
        g.m.cmp(left, right)
        return cond
    a, b = uses
    if name in ("lt", "le"):  # a < b is b > a: "above" is false when unordered
        a, b = b, a
    left = g.float_reg(a, type_)
    right = g.float_src(b, type_)
    if left == XMM15 and right == XMM15:  # pragma: no cover - both constants: not produced
        raise UnsupportedError("comparison of two constants")
    (g.m.ucomiss if type_ == "f32" else g.m.ucomisd)(left, right)
    return {"eq": "feq", "ne": "fne", "lt": Cond.A, "gt": Cond.A, "le": Cond.AE, "ge": Cond.AE}[name]


def branch_on(g: CodeGen, cond: Cond | str, target: AsmLabel, negate: bool) -> None:
    """Jump to ``target`` if ``cond`` holds (or, with ``negate``, if it does not)."""
    m = g.m
    if isinstance(cond, Cond):
        m.jcc(cond.invert() if negate else cond, target)
        return
    equal = (cond == "feq") != negate  # jump when ordered and equal / when unordered or not equal
    if equal:
        skip = m.new_label("l")
        m.jcc(Cond.P, skip)
        m.jcc(Cond.E, target)
        m.bind(skip)
    else:
        m.jcc(Cond.P, target)
        m.jcc(Cond.NE, target)


def set_on(g: CodeGen, cond: Cond | str, dst: Gpr) -> None:
    """Materialize ``cond`` as 0/1 in the 32-bit ``dst``."""
    m = g.m
    if isinstance(cond, Cond):
        m.setcc(cond, dst.r8)
    elif cond == "feq":
        m.setcc(Cond.NP, R11.r8)
        m.setcc(Cond.E, dst.r8)
        m.and_(dst.r8, R11.r8)
    else:
        m.setcc(Cond.P, R11.r8)
        m.setcc(Cond.NE, dst.r8)
        m.or_(dst.r8, R11.r8)
    m.movzx(dst.r32, dst.r8)


def _compare_value(g: CodeGen, inst: Inst) -> None:
    cond = compare(g, inst.op, inst.uses)
    dst = g.target(inst.defs[0], 4)
    set_on(g, cond, dst)
    g.store_result(inst.defs[0], dst)


def _cmp_br(g: CodeGen, inst: Inst) -> None:
    cond = compare(g, inst.attrs["cmp"], inst.uses)
    branch_on(g, cond, g.asm_label(inst.targets[0]), inst.attrs["negate"])


def _br_test(negate: bool) -> Emitter:
    def emit(g: CodeGen, inst: Inst) -> None:
        v = inst.uses[0]
        size = 4 if isinstance(v, int) or v.type == "i32" else 8
        cond = compare(g, "i32_eqz" if size == 4 else "i64_eqz", (v,))
        branch_on(g, cond, g.asm_label(inst.targets[0]), not negate)
    return emit


def _br_table(g: CodeGen, inst: Inst) -> None:
    m = g.m
    *cases, default = [g.asm_label(t) for t in inst.targets]
    index = g.int_src(inst.uses[0], 4, R11)
    if isinstance(index, int):  # pragma: no cover - the lowering turns these into jumps
        m.jmp(cases[index] if index < len(cases) else default)
        return
    m.mov(R11.r32, index)
    if cases:
        m.cmp(R11.r32, len(cases))
        m.jcc(Cond.AE, default)
        table = m.jump_table(cases)
        m.lea(R10, Mem(table))
        m.movsxd(R11, Mem(R10, R11, 4, size=4))
        m.add(R11, R10)
        m.jmp(R11)
    else:
        m.jmp(default)


def _select(g: CodeGen, inst: Inst) -> None:
    a, b, cond = inst.uses
    if isinstance(cond, int):
        _mov(g, Inst("mov", inst.defs, (a if cond & 0xFFFFFFFF else b,)))
        return
    flags = compare(g, "i32_eqz", (cond,))  # "true" (E) means cond == 0: choose b
    select_on(g, inst, a, b, flags, pick_b_when=True)


def _cmp_select(g: CodeGen, inst: Inst) -> None:
    a, b, *operands = inst.uses
    flags = compare(g, inst.attrs["cmp"], tuple(operands))
    select_on(g, inst, a, b, flags, pick_b_when=False)


def select_on(g: CodeGen, inst: Inst, a: VReg | int, b: VReg | int, flags: Cond | str,
              pick_b_when: bool) -> None:
    """dst = a if the flags say ``flags`` holds != pick_b_when, else b (flags are already set)."""
    m = g.m
    dst = inst.defs[0]
    if dst.cls is RegClass.GPR and isinstance(flags, Cond):
        size = 4 if dst.type == "i32" else 8
        choose_b = flags if pick_b_when else flags.invert()  # when this holds, the result is b
        d = g.target(dst, size)
        if isinstance(b, VReg) and g.loc(b) == d.r64:
            src = g.int_src(a, size, R11)
            if isinstance(src, int):
                m.mov_imm(R11.sized(size), src & ((1 << (8 * size)) - 1))
                src = R11.sized(size)
            m.cmovcc(choose_b.invert(), d, src)
        else:
            src_b = g.int_src(b, size, R11)
            if isinstance(src_b, int):
                m.mov_imm(R11.sized(size), src_b & ((1 << (8 * size)) - 1))
                src_b = R11.sized(size)
            if not (isinstance(a, VReg) and g.loc(a) == d.r64):
                src_a = g.int_src(a, size, R10)
                if isinstance(src_a, int):
                    m.mov_imm(d, src_a & ((1 << (8 * size)) - 1))
                else:
                    m.mov(d, src_a)
            m.cmovcc(choose_b, d, src_b)
        g.store_result(dst, d)
        return
    # Floats (and float-compare conditions): branch around the two moves.
    take_b, done = m.new_label("l"), m.new_label("l")
    branch_on(g, flags, take_b, negate=not pick_b_when)
    _mov(g, Inst("mov", (dst,), (a,)))
    m.jmp(done)
    m.bind(take_b)
    _mov(g, Inst("mov", (dst,), (b,)))
    m.bind(done)


# --- integer arithmetic ---

_ALU = {"add": ("add", True), "sub": ("sub", False), "and": ("and_", True), "or": ("or_", True),
        "xor": ("xor", True), "mul": ("imul", True)}

# Deliberate code generation bugs, for testing the checks that must catch them (verify-before-
# install, the unicorn tier, the differential tests): "xor-as-or" emits ``or`` for every integer
# ``xor`` (wrong only when both operands share a set bit); "no-bounds-check" drops the bounds check
# of loads and stores (natively an out-of-bounds access then reads or faults in the memory's guard
# region). Off (None) unless a test or $WASMJIT_INJECT_FAULT turns one on.
INJECTED_FAULT: str | None = os.environ.get("WASMJIT_INJECT_FAULT") or None
FAULTS = ("xor-as-or", "no-bounds-check")
if INJECTED_FAULT is not None and INJECTED_FAULT not in FAULTS:
    raise UnsupportedError(f"unknown WASMJIT_INJECT_FAULT {INJECTED_FAULT!r}: expected one of {FAULTS}")


def _binop(g: CodeGen, inst: Inst, mnemonic: str, commutative: bool, size: int) -> None:
    m = g.m
    dst = inst.defs[0]
    a, b = inst.uses
    d = g.target(dst, size)
    op = getattr(m, "or_" if mnemonic == "xor" and INJECTED_FAULT == "xor-as-or" else mnemonic)
    if isinstance(a, VReg) and g.loc(a) == d.r64:
        src = g.int_src(b, size)
    elif commutative and isinstance(b, VReg) and g.loc(b) == d.r64:
        src = g.int_src(a, size)
    else:
        if isinstance(b, VReg) and g.loc(b) == d.r64:
            m.mov(R11.sized(size), d)
            src = R11.sized(size)
        else:
            src = g.int_src(b, size)
        first = g.int_src(a, size, d)
        if isinstance(first, int):
            m.mov_imm(d, first & ((1 << (8 * size)) - 1))
        elif first != d:
            m.mov(d, first)
    if mnemonic == "imul" and isinstance(src, int):
        op(d, d, src)
    else:
        op(d, src)
    g.store_result(dst, d)


def _shift(g: CodeGen, inst: Inst, mnemonic: str, size: int) -> None:
    m = g.m
    dst = inst.defs[0]
    a, count = inst.uses
    d = g.target(dst, size)
    if isinstance(count, VReg) and d.r64 == RCX:
        d = R10.sized(size)
    first = g.int_src(a, size, d)
    if isinstance(first, int):
        m.mov_imm(d, first & ((1 << (8 * size)) - 1))
    elif first != d:
        m.mov(d, first)
    if isinstance(count, int):
        getattr(m, mnemonic)(d, count & (8 * size - 1))
    else:
        getattr(m, mnemonic)(d, CL)
    if d.r64 == R10 and isinstance(g.loc(dst), Gpr):
        m.mov(g.loc(dst).sized(size), d)  # type: ignore[union-attr]
    else:
        g.store_result(dst, d)


def _divide(g: CodeGen, inst: Inst, size: int, signed: bool, rem: bool) -> None:
    m = g.m
    divisor = inst.uses[1]
    if isinstance(divisor, int):
        value = divisor & ((1 << (8 * size)) - 1)
        if value == 0:
            m.jmp(g.stub(TrapCode.INTEGER_DIVISION_BY_ZERO, inst))
            return
        m.mov_imm(R11.sized(size), value)
        b: Gpr | Mem = R11.sized(size)
    else:
        src = g.val(divisor, size)
        if isinstance(src, Gpr) and src.r64 == RDX:
            m.mov(R11.sized(size), src)
            src = R11.sized(size)
        b = src  # type: ignore[assignment]
        m.cmp(b, 0)
        m.jcc(Cond.E, g.stub(TrapCode.INTEGER_DIVISION_BY_ZERO, inst))
    eax = RAX.sized(size)
    if signed:
        do, done = m.new_label("l"), m.new_label("l")
        m.cmp(b, -1)
        m.jcc(Cond.NE, do)
        if rem:
            m.xor(RDX.r32, RDX.r32)
            m.jmp(done)
        else:
            if size == 4:
                m.cmp(eax, 0x80000000)
            else:
                m.mov_imm(R10, 1 << 63)
                m.cmp(eax, R10)
            m.jcc(Cond.E, g.stub(TrapCode.INTEGER_OVERFLOW, inst))
        m.bind(do)
        if size == 4:
            m.cdq()
        else:
            m.cqo()
        m.idiv(b)
        m.bind(done)
    else:
        m.xor(RDX.r32, RDX.r32)
        m.div(b)


def _count(g: CodeGen, inst: Inst, mnemonic: str, size: int) -> None:
    dst = inst.defs[0]
    d = g.target(dst, size)
    src = g.int_src(inst.uses[0], size)
    if isinstance(src, int):
        g.m.mov_imm(d, src & ((1 << (8 * size)) - 1))
        src = d
    getattr(g.m, mnemonic)(d, src)
    g.store_result(dst, d)


def _convert_int(g: CodeGen, inst: Inst, kind: str) -> None:
    """wrap/extend: ``kind`` names the source width and extension."""
    m = g.m
    dst = inst.defs[0]
    out64 = dst.type == "i64"
    d = g.target(dst, 8 if out64 else 4)
    a = inst.uses[0]
    src = g.int_reg(a, 8, R11) if isinstance(a, int) else g.loc(a)

    def view(size: int) -> Gpr | Mem:
        return src.sized(size) if isinstance(src, Gpr) else src.with_size(size)  # type: ignore[union-attr]

    if kind == "wrap" or kind == "u32":
        m.mov(d.r32, view(4))
    elif kind == "s32":
        m.movsxd(d.r64, view(4))
    elif kind in ("s8", "s16"):
        m.movsx(d if out64 else d.r32, view(1 if kind == "s8" else 2))
    g.store_result(dst, d)


_INT_UNARY = {"clz": "lzcnt", "ctz": "tzcnt", "popcnt": "popcnt"}
_INT_CONVERSIONS = {
    "i32_wrap_i64": "wrap", "i64_extend_i32_s": "s32", "i64_extend_i32_u": "u32",
    "i32_extend8_s": "s8", "i32_extend16_s": "s16", "i64_extend8_s": "s8", "i64_extend16_s": "s16",
    "i64_extend32_s": "s32",
}


# --- memory and globals ---


def _check_end(m: Masm, oob: AsmLabel) -> None:
    """Trap unless the access's end (in r10) is within the memory size."""
    if INJECTED_FAULT != "no-bounds-check":
        m.cmp(R10, Mem(R15, disp=V.OFFSET_MEMORY_SIZE))
        m.jcc(Cond.A, oob)


def address(g: CodeGen, inst: Inst, addr: VReg | int, offset: int, width: int) -> Mem:
    """Bounds-check ``addr + offset .. + width`` against the memory size (trap if out) and return
    the operand that accesses it. Leaves r10 free."""
    m = g.m
    oob = g.stub(TrapCode.MEMORY_OUT_OF_BOUNDS, inst)
    if isinstance(addr, int):
        m.mov_imm(R11, (addr & 0xFFFFFFFF) + offset)
        m.lea(R10, Mem(R11, disp=width))
        _check_end(m, oob)
        return Mem(R14, R11)
    where = g.loc(addr)
    if isinstance(where, Gpr):
        base = where.r64
    else:
        m.mov(R11.r32, where.with_size(4))
        base = R11
    end = offset + width
    if end <= 0x7FFF_FFFF:
        m.lea(R10, Mem(base, disp=end))
        _check_end(m, oob)
        return Mem(R14, base, disp=offset)
    if base != R11:
        m.mov(R11, base)
    m.mov_imm(R10, offset)
    m.add(R11, R10)
    m.lea(R10, Mem(R11, disp=width))
    _check_end(m, oob)
    return Mem(R14, R11)


def _load(g: CodeGen, inst: Inst) -> None:
    m = g.m
    dst = inst.defs[0]
    kind = inst.attrs["kind"]
    mem = address(g, inst, inst.uses[0], inst.attrs["offset"], inst.attrs["width"])
    width = inst.attrs["width"]
    if dst.cls is RegClass.XMM:
        d = g.ftarget(dst)
        g.fmov(d, mem.with_size(width), dst.type)
        g.store_result(dst, d)
        return
    out64 = dst.type == "i64"
    d = g.target(dst, 8 if out64 else 4)
    signed = kind.endswith("_s")
    if width in (1, 2):
        (m.movsx if signed else m.movzx)(d if (signed and out64) else d.r32, mem.with_size(width))
    elif width == 4:
        if out64 and signed:
            m.movsxd(d.r64, mem.with_size(4))
        else:
            m.mov(d.r32, mem.with_size(4))
    else:
        m.mov(d.r64, mem.with_size(8))
    g.store_result(dst, d)


def _store(g: CodeGen, inst: Inst) -> None:
    m = g.m
    addr, value = inst.uses
    width = inst.attrs["width"]
    mem = address(g, inst, addr, inst.attrs["offset"], width).with_size(width)
    type_ = inst.attrs["kind"][:3]
    if type_ in ("f32", "f64") and isinstance(value, VReg):
        g.fmov(mem, g.float_reg(value, type_), type_)
        return
    if isinstance(value, int):
        src = g.int_src(value & ((1 << (8 * width)) - 1), min(width, 8) if width >= 4 else 4, R10)
        if isinstance(src, int):
            m.mov(mem, src if width >= 4 else src & ((1 << (8 * width)) - 1))
        else:
            m.mov(mem, src.sized(width))
        return
    where = g.loc(value)
    if isinstance(where, Mem):
        m.mov(R10, where.with_size(8))
        where = R10
    m.mov(mem, where.sized(width))  # type: ignore[union-attr]


def _global_get(g: CodeGen, inst: Inst) -> None:
    dst = inst.defs[0]
    g.reloc(R11, ("global", inst.attrs["index"]))
    cell = Mem(R11, size=SIZE[dst.type])
    if dst.cls is RegClass.XMM:
        d = g.ftarget(dst)
        g.fmov(d, cell, dst.type)
    else:
        d = g.target(dst, SIZE[dst.type])
        g.m.mov(d, cell)
    g.store_result(dst, d)


def _global_set(g: CodeGen, inst: Inst) -> None:
    value = inst.uses[0]
    type_ = inst.attrs["type"]
    size = SIZE[type_]
    g.reloc(R11, ("global", inst.attrs["index"]))
    cell = Mem(R11, size=size)
    if type_ in ("f32", "f64"):
        if isinstance(value, int):
            g.m.mov_imm(R10.sized(size), value)
            g.m.mov(cell, R10.sized(size))
        else:
            g.fmov(cell, g.float_reg(value, type_), type_)
        return
    src = g.int_src(value, size, R10)
    if isinstance(src, Mem):
        g.m.mov(R10.sized(size), src)
        src = R10.sized(size)
    g.m.mov(cell, src)


def _memory_size(g: CodeGen, inst: Inst) -> None:
    dst = inst.defs[0]
    d = g.target(dst, 8)
    g.m.mov(d, Mem(R15, disp=V.OFFSET_MEMORY_SIZE))
    g.m.shr(d, 16)
    g.store_result(dst, d)


# --- calls ---


def _store_args(g: CodeGen, args: tuple[VReg | int, ...]) -> None:
    for k, arg in enumerate(args):
        g.move_out(Mem(RSP, disp=8 * k), arg)


def _after_call(g: CodeGen, inst: Inst, nargs: int, offset: int) -> None:
    ret = g.m.new_label("ret")
    g.m.bind(ret)
    g.out.call_sites.append((ret, offset))
    for j, extra in enumerate(inst.defs[1:], start=1):
        g.move_in(extra, Mem(RSP, disp=8 * (nargs + j - 1)))


def _switch_vmctx(g: CodeGen, handle_reg: Gpr | None, index: int | None) -> None:
    """Make r15/r14 the callee's, function ``index`` or the one whose handle is in ``handle_reg``
    (saving the caller's r15 in its frame slot); host functions (vmctx 0) keep the caller's."""
    m = g.m
    m.mov(g.slot(g.vmctx_slot), R15)
    if handle_reg is None:
        g.reloc(R10, ("func_vmctx", index))
        m.mov(R10, Mem(R10))
    else:
        g.reloc(R10, ("vmctx_array",))
        m.mov(R10, Mem(R10, handle_reg, 8))
    skip = m.new_label("l")
    m.test(R10, R10)
    m.jcc(Cond.E, skip)
    m.mov(R15, R10)
    m.mov(R14, Mem(R15, disp=V.OFFSET_MEMORY_BASE))
    m.bind(skip)


def _restore_vmctx(g: CodeGen) -> None:
    g.m.mov(R15, g.slot(g.vmctx_slot))
    g.m.mov(R14, Mem(R15, disp=V.OFFSET_MEMORY_BASE))


def _call(g: CodeGen, inst: Inst) -> None:
    m = g.m
    index = inst.attrs["func"]
    args = inst.uses
    _store_args(g, args)
    local = index in g.env.local_funcs
    if not local:
        _switch_vmctx(g, None, index)
    g.reloc(R10, ("func_code", index))
    g.reloc(R11.r32, ("func_handle", index))  # for the host-call routine, when the callee is not native
    m.call(Mem(R10))
    _after_call(g, inst, len(args), inst.wasm_offset)
    if not local:
        _restore_vmctx(g)


def _call_indirect(g: CodeGen, inst: Inst) -> None:
    m = g.m
    *args, index = inst.uses
    _store_args(g, tuple(args))
    idx = g.int_src(index, 4, R11)
    if idx != R11.r32:
        m.mov(R11.r32, idx)
    m.mov(R10, Mem(R15, disp=V.OFFSET_TABLES))
    m.mov(R10, Mem(R10, disp=8 * inst.attrs["table"]))
    m.cmp(R11, Mem(R10, disp=8))  # VMTable.length
    m.jcc(Cond.AE, g.stub(TrapCode.UNDEFINED_ELEMENT, inst))
    m.mov(R10, Mem(R10))  # VMTable.base
    m.mov(R11, Mem(R10, R11, 8))
    m.test(R11, R11)
    m.jcc(Cond.E, g.stub(TrapCode.INDIRECT_CALL_TO_NULL, inst))
    g.reloc(R10, ("type_array",))
    # The expected id goes through eax (free: the operands are consumed, the call clobbers it), as
    # a cmp immediate would be encoded in one byte or four depending on its value.
    g.reloc(RAX.r32, ("type_id", inst.attrs["type_index"]))
    m.cmp(Mem(R10, R11, 4, size=4), RAX.r32)
    m.jcc(Cond.NE, g.stub(TrapCode.BAD_SIGNATURE, inst))
    _switch_vmctx(g, R11, None)
    g.reloc(R10, ("code_array",))
    m.call(Mem(R10, R11, 8))
    _after_call(g, inst, len(args), inst.wasm_offset)
    _restore_vmctx(g)


def _helper(g: CodeGen, inst: Inst) -> None:
    m = g.m
    if inst.attrs["name"] in _INLINE_BULK:
        _bulk_memory(g, inst)
        return
    _store_args(g, inst.uses)
    g.reloc(R11.r32, ("helper", inst.attrs["name"], _frozen(inst.attrs["imm"])))
    g.reloc(RAX, ("helper_routine",))
    m.call(RAX)
    _after_call(g, inst, len(inst.uses), inst.wasm_offset)


def _frozen(imm: Any) -> Any:
    """A helper's immediate as part of a relocation target: lists become tuples (hashable)."""
    return tuple(_frozen(x) for x in imm) if isinstance(imm, (list, tuple)) else imm


def _bulk_memory(g: CodeGen, inst: Inst) -> None:
    """memory.fill (rep stosb) and memory.copy (rep movsb, backwards when the ranges overlap with
    the destination above the source), after bounds checks on both ranges."""
    m = g.m
    oob = g.stub(TrapCode.MEMORY_OUT_OF_BOUNDS, inst)
    fill = inst.attrs["name"] == "memory_fill"
    dst, middle, count = inst.uses  # fill: (dest, value, n); copy: (dest, src, n)
    for operand, scratch in ((dst, R10), (middle, R11)):
        src = g.int_src(operand, 4, scratch)
        if isinstance(src, int):
            m.mov(scratch.r32, src)
        else:
            m.mov(scratch.r32, src)  # zero-extends: every operand is an i32
    n = g.int_src(count, 4, RCX)
    m.mov(RCX.r32, n)
    m.lea(RAX, Mem(R10, RCX))
    m.cmp(RAX, Mem(R15, disp=V.OFFSET_MEMORY_SIZE))
    m.jcc(Cond.A, oob)
    m.lea(RDI, Mem(R14, R10))
    if fill:
        m.mov(RAX.r32, R11.r32)
        m.rep_stosb()
        return
    m.lea(RAX, Mem(R11, RCX))
    m.cmp(RAX, Mem(R15, disp=V.OFFSET_MEMORY_SIZE))
    m.jcc(Cond.A, oob)
    m.lea(RSI, Mem(R14, R11))
    forward, done = m.new_label("l"), m.new_label("l")
    m.cmp(RDI, RSI)
    m.jcc(Cond.BE, forward)
    m.lea(RAX, Mem(RSI, RCX))
    m.cmp(RDI, RAX)
    m.jcc(Cond.AE, forward)  # the destination starts past the source's end: no overlap
    _copy_backwards(m, done)
    m.bind(forward)
    m.rep_movsb()
    m.bind(done)


def _copy_backwards(m: Masm, done: AsmLabel) -> None:
    """Copy rcx bytes from rsi to rdi (rdi > rsi, overlapping) from the end: 16-byte blocks, each
    loaded whole before it is stored (so any distance is safe), then the bytes left at the start.
    (``std; rep movsb`` goes a byte at a time: 25x slower than wasmtime on shootout-memmove.)"""
    blocks, tail, byte = m.new_label("l"), m.new_label("l"), m.new_label("l")
    m.cmp(RCX, 16)
    m.jcc(Cond.B, tail)
    m.bind(blocks)
    m.sub(RCX, 16)
    m.movups(XMM15, Mem(RSI, RCX, size=16))
    m.movups(Mem(RDI, RCX, size=16), XMM15)
    m.cmp(RCX, 16)
    m.jcc(Cond.AE, blocks)
    m.bind(tail)
    m.test(RCX, RCX)
    m.jcc(Cond.E, done)
    m.bind(byte)
    m.movzx(RAX.r32, Mem(RSI, RCX, disp=-1, size=1))
    m.mov(Mem(RDI, RCX, disp=-1, size=1), RAX.r8)
    m.sub(RCX, 1)
    m.jcc(Cond.NE, byte)
    m.jmp(done)


# --- floats ---

_F_ARITH = {"add": "add", "sub": "sub", "mul": "mul", "div": "div"}
_SIGN = {"f32": 0x8000_0000, "f64": 0x8000_0000_0000_0000}


def _fbinop(g: CodeGen, inst: Inst, name: str, type_: str) -> None:
    dst = inst.defs[0]
    a, b = inst.uses
    d = g.ftarget(dst)
    if isinstance(b, VReg) and g.loc(b) == d and not (isinstance(a, VReg) and g.loc(a) == d):
        g.fmov(XMM15, g.float_src(a, type_), type_)  # d holds b: compute in xmm15
        _fop(g, name, type_, XMM15, d)
        g.fmov(d, XMM15, type_)
    else:
        g.fmov(d, g.float_src(a, type_), type_)
        _fop(g, name, type_, d, g.float_src(b, type_))
    g.store_result(dst, d)


def _fop(g: CodeGen, name: str, type_: str, d: Xmm, src: Xmm | Mem) -> None:
    """``d = d <name> src`` with wasm semantics. Uses r10/r11, never xmm15 (``d`` may be it)."""
    m = g.m
    suffix = "ss" if type_ == "f32" else "sd"
    if name in _F_ARITH:
        getattr(m, _F_ARITH[name] + suffix)(d, src)
        return
    bits = 32 if type_ == "f32" else 64
    move = m.movd if type_ == "f32" else m.movq
    r10, r11 = R10.sized(bits // 8), R11.sized(bits // 8)
    if name == "copysign":  # d = |d| with src's sign, done in general-purpose registers
        move(r10, d)
        if isinstance(src, Mem):
            m.mov(r11, src.with_size(bits // 8))
        else:
            move(r11, src)
        m.shl(r10, 1)
        m.shr(r10, 1)
        m.shr(r11, bits - 1)
        m.shl(r11, bits - 1)
        m.or_(r10, r11)
        move(d, r10)
        return
    # min / max: NaN if either is NaN; for equal operands (+0/-0) combine the bits so that
    # min(-0, +0) = -0 and max(-0, +0) = +0; otherwise minss/maxss.
    nan, plain, done = m.new_label("l"), m.new_label("l"), m.new_label("l")
    (m.ucomiss if type_ == "f32" else m.ucomisd)(d, src)
    m.jcc(Cond.P, nan)
    m.jcc(Cond.NE, plain)
    move(r10, d)
    if isinstance(src, Mem):
        m.mov(r11, src.with_size(bits // 8))
    else:
        move(r11, src)
    (m.or_ if name == "min" else m.and_)(r10, r11)
    move(d, r10)
    m.jmp(done)
    m.bind(nan)
    getattr(m, "add" + suffix)(d, src)
    m.jmp(done)
    m.bind(plain)
    getattr(m, name + suffix)(d, src)
    m.bind(done)


def _funary(g: CodeGen, inst: Inst, name: str, type_: str) -> None:
    m = g.m
    dst = inst.defs[0]
    d = g.ftarget(dst)
    suffix = "ss" if type_ == "f32" else "sd"
    src = g.float_src(inst.uses[0], type_)
    if name in ("ceil", "floor", "trunc", "nearest"):
        mode = {"nearest": 0, "floor": 1, "ceil": 2, "trunc": 3}[name] | 8
        getattr(m, "round" + suffix)(d, src, mode)
    elif name == "sqrt":
        getattr(m, "sqrt" + suffix)(d, src)
    else:
        g.fmov(d, src, type_)
        sign = _SIGN[type_]
        low = sign if type_ == "f64" else sign | sign << 32
        ps = "ps" if type_ == "f32" else "pd"
        if name == "neg":
            getattr(m, "xor" + ps)(d, Mem(m.const_u64x2(low, low), size=16))
        else:  # abs
            inv = ~low & 0xFFFF_FFFF_FFFF_FFFF
            getattr(m, "and" + ps)(d, Mem(m.const_u64x2(inv, inv), size=16))
    g.store_result(dst, d)


def _float_convert(g: CodeGen, inst: Inst) -> None:
    """f32.demote_f64, f64.promote_f32, f*.convert_i*_{s,u}, reinterpretations."""
    m = g.m
    op = inst.op
    dst = inst.defs[0]
    a = inst.uses[0]
    if op in ("f32_demote_f64", "f64_promote_f32"):
        d = g.ftarget(dst)
        (m.cvtsd2ss if op == "f32_demote_f64" else m.cvtss2sd)(d, g.float_src(a, op[-3:]))
        g.store_result(dst, d)
        return
    if "reinterpret" in op:
        if dst.cls is RegClass.XMM:
            d = g.ftarget(dst)
            src = g.int_reg(a, SIZE[dst.type])
            (m.movd if dst.type == "f32" else m.movq)(d, src)
        else:
            d = g.target(dst, SIZE[dst.type])
            src = g.float_reg(a, "f32" if dst.type == "i32" else "f64")
            (m.movd if dst.type == "i32" else m.movq)(d, src)
        g.store_result(dst, d)
        return
    # f32/f64 convert from i32/i64, signed or unsigned
    to = op[:3]
    from_ = op.split("_")[2]  # i32 / i64
    signed = op.endswith("_s")
    cvt = m.cvtsi2ss if to == "f32" else m.cvtsi2sd
    d = g.ftarget(dst)
    m.xorps(d, d)
    if from_ == "i32":
        src = g.int_reg(a, 4)
        if signed:
            cvt(d, src)
        else:
            m.mov(R11.r32, src)
            cvt(d, R11)
    else:
        src = g.int_reg(a, 8)
        if signed:
            cvt(d, src)
        else:
            big, done = m.new_label("l"), m.new_label("l")
            if src != R11:
                m.mov(R11, src)
            m.test(R11, R11)
            m.jcc(Cond.S, big)
            cvt(d, R11)
            m.jmp(done)
            m.bind(big)
            m.mov(R10, R11)
            m.and_(R10, 1)
            m.shr(R11, 1)
            m.or_(R11, R10)
            cvt(d, R11)
            (m.addss if to == "f32" else m.addsd)(d, d)
            m.bind(done)
    g.store_result(dst, d)


def _fconst(g: CodeGen, value: float, type_: str) -> Mem:
    m = g.m
    label = m.const_f32(value) if type_ == "f32" else m.const_f64(value)
    return Mem(label, size=SIZE[type_])


def _trunc(g: CodeGen, inst: Inst) -> None:
    """i32/i64.trunc_f32/f64_{s,u} (trapping) and trunc_sat_* (saturating)."""
    m = g.m
    op = inst.op
    dst = inst.defs[0]
    bits = 32 if op.startswith("i32") else 64
    ftype = "f32" if "_f32" in op else "f64"
    signed = op.endswith("_s")
    sat = "_sat_" in op
    x = g.float_reg(inst.uses[0], ftype)
    ucomis = m.ucomiss if ftype == "f32" else m.ucomisd
    cvtt = m.cvttss2si if ftype == "f32" else m.cvttsd2si
    size = bits // 8
    d = g.target(dst, size)
    done = m.new_label("l")
    if signed:
        cvtt(d, x)
        if bits == 32:
            m.cmp(d, 0x80000000)
        else:
            m.mov_imm(R11, 1 << 63)
            m.cmp(d, R11)
        m.jcc(Cond.NE, done)
        ucomis(x, x)
        if sat:
            zero = m.new_label("l")
            m.jcc(Cond.P, zero)
            ucomis(x, _fconst(g, 0.0, ftype))
            m.jcc(Cond.BE, done)  # negative: INT_MIN is right
            m.mov_imm(d, (1 << (bits - 1)) - 1)
            m.jmp(done)
            m.bind(zero)
            m.xor(d.r32, d.r32)
        else:
            m.jcc(Cond.P, g.stub(TrapCode.BAD_CONVERSION_TO_INTEGER, inst))
            low = -(2.0 ** (bits - 1))
            if ftype == "f64" and bits == 32:
                ucomis(x, _fconst(g, low - 1.0, ftype))
                m.jcc(Cond.BE, g.stub(TrapCode.INTEGER_OVERFLOW, inst))
            else:
                ucomis(x, _fconst(g, low, ftype))
                m.jcc(Cond.B, g.stub(TrapCode.INTEGER_OVERFLOW, inst))
            ucomis(x, _fconst(g, -low, ftype))
            m.jcc(Cond.AE, g.stub(TrapCode.INTEGER_OVERFLOW, inst))
        m.bind(done)
        g.store_result(dst, d)
        return
    # unsigned
    limit = 2.0 ** bits
    if sat:
        zero, top = m.new_label("l"), m.new_label("l")
        ucomis(x, x)
        m.jcc(Cond.P, zero)
        ucomis(x, _fconst(g, 0.0, ftype))
        m.jcc(Cond.BE, zero)
        ucomis(x, _fconst(g, limit, ftype))
        m.jcc(Cond.AE, top)
    else:
        ucomis(x, x)
        m.jcc(Cond.P, g.stub(TrapCode.BAD_CONVERSION_TO_INTEGER, inst))
        ucomis(x, _fconst(g, -1.0, ftype))
        m.jcc(Cond.BE, g.stub(TrapCode.INTEGER_OVERFLOW, inst))
        ucomis(x, _fconst(g, limit, ftype))
        m.jcc(Cond.AE, g.stub(TrapCode.INTEGER_OVERFLOW, inst))
    if bits == 32:
        cvtt(d.r64, x)
        m.mov(d.r32, d.r32)
    else:
        big = m.new_label("l")
        ucomis(x, _fconst(g, 2.0 ** 63, ftype))
        m.jcc(Cond.AE, big)
        cvtt(d, x)
        m.jmp(done)
        m.bind(big)
        if x != XMM15:
            g.fmov(XMM15, x, ftype)
        (m.subss if ftype == "f32" else m.subsd)(XMM15, _fconst(g, 2.0 ** 63, ftype))
        cvtt(d, XMM15)
        m.mov_imm(R11, 1 << 63)
        m.xor(d, R11)
    if sat:
        m.jmp(done)
        m.bind(zero)
        m.xor(d.r32, d.r32)
        m.jmp(done)
        m.bind(top)
        m.mov_imm(d, (1 << bits) - 1)
    m.bind(done)
    g.store_result(dst, d)


# --- dispatch ---------------------------------------------------------------------------------------

_EMITTERS: dict[str, Emitter] = {
    "label": _label, "mov": _mov, "jmp": _jmp, "ret": _ret, "trap": _trap, "cmp_br": _cmp_br,
    "fuel_charge": _fuel_charge, "fuel_check": _fuel_check, "fuel_save": _fuel_save,
    "fuel_per_item": _fuel_per_item,
    "epoch_check": _epoch_check,
    "br_if": _br_test(False), "br_unless": _br_test(True), "br_table": _br_table, "select": _select,
    "cmp_select": _cmp_select, "load": _load, "store": _store, "global_get": _global_get,
    "global_set": _global_set, "memory_size": _memory_size, "call": _call, "call_indirect": _call_indirect,
    "helper": _helper,
}


def _numeric_emitter(op: str) -> Emitter:
    """The emitter of a numeric instruction (by its wasm name), made once and cached."""
    type_, _, name = op.partition("_")
    emitter: Emitter | None = None
    size = 4 if type_ == "i32" else 8
    if op in _INT_CONVERSIONS:
        kind = _INT_CONVERSIONS[op]
        def emitter(g: CodeGen, inst: Inst) -> None:
            _convert_int(g, inst, kind)
    elif "trunc_f" in op or "trunc_sat_f" in op:
        emitter = _trunc
    elif "convert_i" in op or "reinterpret" in op or op in ("f32_demote_f64", "f64_promote_f32"):
        emitter = _float_convert
    elif type_ in ("i32", "i64"):
        if name in _ALU:
            mnemonic, commutative = _ALU[name]
            def emitter(g: CodeGen, inst: Inst) -> None:
                _binop(g, inst, mnemonic, commutative, size)
        elif name in ("shl", "shr_s", "shr_u", "rotl", "rotr"):
            mnemonic = {"shl": "shl", "shr_s": "sar", "shr_u": "shr", "rotl": "rol", "rotr": "ror"}[name]
            def emitter(g: CodeGen, inst: Inst) -> None:
                _shift(g, inst, mnemonic, size)
        elif name in ("div_s", "div_u", "rem_s", "rem_u"):
            signed, rem = name.endswith("_s"), name.startswith("rem")
            def emitter(g: CodeGen, inst: Inst) -> None:
                _divide(g, inst, size, signed, rem)
        elif name in _INT_UNARY:
            mnemonic = _INT_UNARY[name]
            def emitter(g: CodeGen, inst: Inst) -> None:
                _count(g, inst, mnemonic, size)
        elif name in _INT_CONDS or name == "eqz":
            emitter = _compare_value
    elif type_ == "ref" and name == "is_null":
        emitter = _compare_value
    elif type_ in ("f32", "f64"):
        if name in ("add", "sub", "mul", "div", "min", "max", "copysign"):
            def emitter(g: CodeGen, inst: Inst) -> None:
                _fbinop(g, inst, name, type_)
        elif name in ("abs", "neg", "sqrt", "ceil", "floor", "trunc", "nearest"):
            def emitter(g: CodeGen, inst: Inst) -> None:
                _funary(g, inst, name, type_)
        elif name in ("eq", "ne", "lt", "gt", "le", "ge"):
            emitter = _compare_value
    if emitter is None:
        raise UnsupportedError(f"the JIT cannot compile {op}")
    _EMITTERS[op] = emitter
    return emitter

