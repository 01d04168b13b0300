"""Lowering: one validated wasm function -> :class:`ir.Function` (linear IR, virtual registers).

One pass in the style of V8's Liftoff, but emitting IR instead of machine code. An abstract value
stack mirrors the wasm operand stack; its entries are virtual registers, latent constants (folded
into immediates) or latent comparisons (fused into the branch, ``if`` or ``select`` that consumes
them). Each wasm local is one (non-SSA) virtual register; ``local.get`` pushes it without a copy,
and a later ``local.set`` of that local first copies any stack entry still naming it. When a
block, loop or ``if`` opens, stack entries naming locals are copied too, so every value on the
stack is defined on every path that can use it.

Block results, loop parameters and ``if`` parameters/results are *merge* registers: every edge
into the join writes them (``mov``), the join reads them. ``br_table`` gets one edge stub per
target that needs copies. Unreachable code (after ``br``, ``return``, ``unreachable``) is skipped.

IR operations: numeric instructions keep their wasm names with ``.`` as ``_`` (``i32_add`` with
two uses and one def); the rest are ``mov`` (copy or immediate), ``cmp_br`` (compare and branch),
``br_if`` / ``br_unless`` (test a value), ``jmp``, ``br_table``, ``select``, ``cmp_select``, ``load``
and ``store`` (bounds-checked), ``global_get``/``global_set``, ``call``/``call_indirect``,
``memory_size``, ``helper`` (a call into the runtime for rare operations: memory.grow, bulk memory,
table ops), ``trap`` and ``ret``. Imports: opcodes, structure, validate, jit.ir.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import opcodes as O
from ..errors import TrapCode, UnsupportedError
from ..structure import FuncType, Module
from ..validate.func import FuncInfo
from .ir import Function, Inst, Label, Operand, VReg


@dataclass(frozen=True, slots=True)
class Cmp:
    """A comparison not yet materialised: ``op`` (e.g. ``i32_lt_s``) of ``a`` and ``b``
    (``b`` is None for ``eqz``)."""

    op: str
    a: Operand
    b: Operand | None


@dataclass(frozen=True, slots=True)
class Const:
    """A constant not yet in a register: its type and raw bits (IR uses take the bits)."""

    type: str
    bits: int


Value = VReg | Const | Cmp  # what the abstract stack holds


@dataclass
class Ctrl:
    """One open block, loop or if (or the function body itself)."""

    kind: str  # "func" | "block" | "loop" | "if"
    label: Label  # a loop's header; the end of anything else
    merges: list[VReg]  # where branches to this label put their values
    results: list[VReg]  # what the construct leaves on the stack at its end
    height: int  # abstract stack height below its parameters
    else_label: Label | None = None
    params: list[Value] = field(default_factory=list)  # an if's parameters, for its else arm
    unreachable: bool = False
    reached: bool = False  # some branch targets the end label


_F64 = struct.Struct("<d")

# Comparisons that can fuse into a branch: the op names of i32/i64/f32/f64 relational ops.
_COMPARES = frozenset(
    f"{t}_{c}" for t in ("i32", "i64") for c in ("eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u",
                                                  "ge_s", "ge_u")) | frozenset(
    f"{t}_{c}" for t in ("f32", "f64") for c in ("eq", "ne", "lt", "gt", "le", "ge"))

# Memory access instructions: op name -> (IR kind, value type).
_LOADS = {f"{t}_load{suffix}": t for t in ("i32", "i64", "f32", "f64")
          for suffix in ("", "8_s", "8_u", "16_s", "16_u", "32_s", "32_u")}
_STORES = {f"{t}_store{suffix}": t for t in ("i32", "i64", "f32", "f64") for suffix in ("", "8", "16", "32")}

# Instructions run by a runtime helper (rare, or needing the store): name -> (param types, results).
HELPERS = {
    "memory_grow", "memory_fill", "memory_copy", "memory_init", "data_drop", "table_get", "table_set",
    "table_size", "table_grow", "table_fill", "table_copy", "table_init", "elem_drop", "ref_func",
}


# (module, its function types, its global types) of the last module lowered: building those
# lists anew for each of a module's n functions made compiling them all O(n^2).
_last_spaces: tuple[Module, list, list] | None = None


def _index_spaces(module: Module) -> tuple[list, list]:
    global _last_spaces
    if _last_spaces is None or _last_spaces[0] is not module:
        _last_spaces = (module, module.func_types(), module.global_types())
    return _last_spaces[1], _last_spaces[2]


class Lowerer:
    """Lowers one function; ``run()`` returns the IR."""

    def __init__(self, module: Module, info: FuncInfo, name: str = "", osr_loop: int | None = None,
                 fuel: bool = False, epoch: bool = False) -> None:
        self.module = module
        self.info = info
        self.func_types, self.global_types = _index_spaces(module)
        self.ir = Function(name or f"func[{info.index}]", results=info.type.results)
        self.locals: list[VReg] = []
        self.local_ids: frozenset[int] = frozenset()  # id() of each local's vreg
        self.stack: list[Value] = []
        self.ctrls: list[Ctrl] = []
        self.offset = 0  # byte offset of the instruction being lowered
        self.osr_loop = osr_loop  # lower an on-stack-replacement entry at this loop instruction
        self.osr_label: Label | None = None
        self.fuel, self.epoch = fuel, epoch  # Config.consume_fuel / epoch_interruption
        self.charge: Inst | None = None  # the open run's fuel_charge (cost filled in at its end)

    # --- the pass ---

    def run(self) -> Function:
        ir, info = self.ir, self.info
        nparams = len(info.type.params)
        self.locals = [ir.new_vreg(t) for t in info.local_types]
        self.local_ids = frozenset(map(id, self.locals))  # membership without scanning 50,000 locals
        if self.osr_loop is not None:  # every local comes in as a parameter; go to the loop
            ir.params = tuple(self.locals)
            self.osr_label = ir.new_label()
            self.emit("jmp", targets=(self.osr_label,))
        else:
            ir.params = tuple(self.locals[:nparams])
            for local in self.locals[nparams:]:
                self.emit("mov", (local,), (0,))
            self.checks(O.FUEL_PER_CALL)
        end = ir.new_label()
        results = [ir.new_vreg(t) for t in info.type.results]
        self.ctrls.append(Ctrl("func", end, results, results, 0))
        body = info.body
        pos = 0
        while pos < len(body):
            op, imm, self.offset = body[pos]
            if self.ctrls and self.ctrls[-1].unreachable and op.name not in ("else", "end"):
                if op.name in ("block", "loop", "if"):
                    pos = info.ends[pos]  # skip the whole dead construct, its end included
                pos += 1
                continue
            if self.fuel and self.count_fuel(pos):
                self.visit(op, imm, pos)
                self.charge = None
            else:
                self.visit(op, imm, pos)
            pos += 1
        return ir

    # --- fuel and epochs ---

    def checks(self, fuel_cost: int) -> None:
        """Fuel and epoch checks at a function entry (charging ``fuel_cost``) or loop header."""
        if self.fuel:
            self.emit("fuel_check", cost=fuel_cost)
        if self.epoch:
            self.emit("epoch_check")

    def count_fuel(self, pos: int) -> bool:
        """A run of instructions that execute together is charged once, at its start. Whether
        the run ends after ``body[pos]``."""
        cost, ends, save = O.fuel_step(self.info.body, pos, self.module)
        if cost:
            if self.charge is None:
                self.charge = self.ir.emit("fuel_charge", wasm_offset=self.offset, cost=0)
            self.charge.attrs["cost"] += cost
        if save:
            self.fuel_save()
        return ends

    def fuel_save(self) -> None:
        """Before a call, return or trap: the fuel charged so far survives a trap."""
        if self.fuel:
            self.emit("fuel_save")

    def visit(self, op: O.Op, imm: Any, pos: int) -> None:
        ident = op.ident
        special = _VISITORS.get(ident)
        if special is not None:
            special(self, imm, pos)
        elif ident in _LOADS:
            addr = self.pop_reg()
            dst = self.ir.new_vreg(_LOADS[ident])
            self.emit("load", (dst,), (addr,), kind=ident, offset=imm[1], width=op.width)
            self.stack.append(dst)
        elif ident in _STORES:
            value, addr = self.pop_operand(), self.pop_reg()
            self.emit("store", (), (addr, value), kind=ident, offset=imm[1], width=op.width)
        elif ident in _COMPARES:
            b, a = self.pop_operand(), self.pop_operand()
            self.stack.append(Cmp(ident, a, b))
        elif ident in HELPERS:
            self.helper(op, imm, pos)
        elif op.params is not None and op.results is not None:
            if op.code >> 16 == O.PREFIX_FD:
                raise UnsupportedError("SIMD is not supported yet")
            uses = tuple(self.pop_operand() for _ in op.params)[::-1]
            defs = tuple(self.ir.new_vreg(t) for t in op.results)
            self.emit(ident, defs, uses)
            self.stack.extend(defs)
        else:  # pragma: no cover - every instruction is handled above
            raise UnsupportedError(f"the JIT cannot lower {op.name}")

    # --- the abstract stack ---

    def emit(self, op: str, defs: tuple[VReg, ...] = (), uses: tuple[Operand, ...] = (),
             targets: tuple[Label, ...] = (), **attrs: Any) -> None:
        self.ir.emit(op, defs, uses, targets, wasm_offset=self.offset, **attrs)

    def materialize(self, value: Value) -> Operand:
        """A register or immediate holding ``value`` (a latent comparison becomes 0/1)."""
        if isinstance(value, Cmp):
            dst = self.ir.new_vreg("i32")
            uses = (value.a,) if value.b is None else (value.a, value.b)
            self.emit(value.op, (dst,), uses)
            return dst
        if isinstance(value, Const):
            return value.bits
        return value

    def in_register(self, value: Value) -> VReg:
        """``value`` in a register of its own type (constants are copied into one)."""
        if isinstance(value, Const):
            dst = self.ir.new_vreg(value.type)
            self.emit("mov", (dst,), (value.bits,))
            return dst
        return self.materialize(value)  # type: ignore[return-value]

    def pop_operand(self) -> Operand:
        return self.materialize(self.stack.pop())

    def pop_reg(self) -> VReg:
        """Pop a value into a register (constants are copied into one)."""
        return self.in_register(self.stack.pop())

    def detach_locals(self, start: int = 0, local: VReg | None = None) -> None:
        """Replace stack entries (from ``start``) that name ``local`` (any local if None) with
        copies, so a later write of the local or a join cannot change them."""
        names = self.local_ids if local is None else {id(local)}
        for i in range(start, len(self.stack)):
            entry = self.stack[i]
            if isinstance(entry, Cmp):
                if any(isinstance(x, VReg) and id(x) in names for x in (entry.a, entry.b)):
                    self.stack[i] = self.materialize(entry)
            elif isinstance(entry, VReg) and id(entry) in names:
                copy = self.ir.new_vreg(entry.type)
                self.emit("mov", (copy,), (entry,))
                self.stack[i] = copy

    def copy_into(self, merges: list[VReg]) -> None:
        """Write the top ``len(merges)`` stack values into ``merges`` (without popping them)."""
        if not merges:
            return
        top = len(self.stack) - len(merges)
        self.stack[top:] = [v if isinstance(v, Const) else self.materialize(v) for v in self.stack[top:]]
        for merge, value in zip(merges, self.stack[top:], strict=True):
            if merge is not value:
                self.emit("mov", (merge,), (self.materialize(value),))

    def set_unreachable(self) -> None:
        ctrl = self.ctrls[-1]
        del self.stack[ctrl.height:]
        ctrl.unreachable = True

    # --- control ---

    def block_type(self, pos: int) -> FuncType:
        return self.info.block_types[pos]

    def open(self, kind: str, pos: int, cond: Value | None = None) -> None:
        bt = self.block_type(pos)
        self.detach_locals()
        height = len(self.stack) - len(bt.params)
        results = [self.ir.new_vreg(t) for t in bt.results]
        if kind == "loop":
            header = self.ir.new_label()
            if pos == self.osr_loop:
                if len(self.stack) or bt.params:
                    raise UnsupportedError("on-stack replacement needs a loop at an empty operand stack")
                header = self.osr_label  # type: ignore[assignment]
            params = [self.ir.new_vreg(t) for t in bt.params]
            self.copy_into(params)
            self.stack[height:] = params
            self.ir.place(header)
            self.checks(0)
            self.ctrls.append(Ctrl("loop", header, params, results, height))
            return
        ctrl = Ctrl(kind, self.ir.new_label(), results, results, height)
        if kind == "if":
            ctrl.else_label = self.ir.new_label()
            ctrl.params = [v if isinstance(v, Const) else self.materialize(v) for v in self.stack[height:]]
            self.stack[height:] = ctrl.params
            self.branch_unless(cond, ctrl.else_label)  # type: ignore[arg-type]
        self.ctrls.append(ctrl)

    def branch_if(self, cond: Value, target: Label) -> None:
        """Jump to ``target`` when ``cond`` is non-zero."""
        self.test_branch(cond, target, negate=False)

    def branch_unless(self, cond: Value, target: Label) -> None:
        self.test_branch(cond, target, negate=True)

    def test_branch(self, cond: Value, target: Label, negate: bool) -> None:
        if isinstance(cond, Const):
            if (cond.bits != 0) != negate:
                self.emit("jmp", targets=(target,))
            return
        if isinstance(cond, Cmp):
            uses = (cond.a,) if cond.b is None else (cond.a, cond.b)
            self.emit("cmp_br", (), uses, (target,), cmp=cond.op, negate=negate)
        else:
            self.emit("br_unless" if negate else "br_if", (), (cond,), (target,))

    def branch_to(self, depth: int) -> Label:
        """Prepare a branch to the label ``depth`` levels out: copy its values; its label."""
        ctrl = self.ctrls[-1 - depth]
        self.copy_into(ctrl.merges)
        if ctrl.kind != "loop":
            ctrl.reached = True
        return ctrl.label

    def end_block(self, ctrl: Ctrl) -> bool:
        """The shared end of every construct: fallthrough copies, the end label, the results on
        the stack. Whether the code after it can run (False: the end is never reached)."""
        if ctrl.kind == "loop":  # only the fallthrough reaches a loop's end: its values stay
            return not ctrl.unreachable
        if not ctrl.unreachable:
            self.copy_into(ctrl.results)
        self.ir.place(ctrl.label)
        del self.stack[ctrl.height:]
        self.stack.extend(ctrl.results)
        return ctrl.reached or not ctrl.unreachable

    def helper(self, op: O.Op, imm: Any, pos: int) -> None:
        """Rare instructions run by the runtime: pop params, call, push results."""
        name = op.ident
        params, results = _helper_signature(self, op, imm)
        uses = tuple(self.pop_operand() for _ in params)[::-1]
        defs = tuple(self.ir.new_vreg(t) for t in results)
        self.emit("helper", defs, uses, name=name, imm=imm)
        if self.fuel and O.runtime_items(self.info.body, pos):
            # charge what it handled (a grow: if it grew) and check
            self.emit("fuel_per_item", (), (uses[-1], *defs))
        self.stack.extend(defs)


def _helper_signature(lw: Lowerer, op: O.Op, imm: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if op.params is not None and op.results is not None:
        return op.params, op.results
    tables = lw.module.table_types()
    name = op.ident
    if name == "table_get":
        return ("i32",), (tables[imm].elem,)
    if name == "table_set":
        return ("i32", tables[imm].elem), ()
    if name == "table_size":
        return (), ("i32",)
    if name == "table_grow":
        return (tables[imm].elem, "i32"), ("i32",)
    if name == "table_fill":
        return ("i32", tables[imm].elem, "i32"), ()
    if name in ("table_copy", "table_init"):
        return ("i32", "i32", "i32"), ()
    if name == "elem_drop":
        return (), ()
    if name == "ref_func":
        return (), ("funcref",)
    raise UnsupportedError(f"the JIT cannot lower {op.name}")  # pragma: no cover


# --- visitors for the instructions the generic path does not cover ------------------------------


def _nop(lw: Lowerer, imm: Any, pos: int) -> None:
    pass


def _unreachable(lw: Lowerer, imm: Any, pos: int) -> None:
    lw.fuel_save()
    lw.emit("trap", code=TrapCode.UNREACHABLE)
    lw.set_unreachable()


def _block(lw: Lowerer, imm: Any, pos: int) -> None:
    lw.open("block", pos)


def _loop(lw: Lowerer, imm: Any, pos: int) -> None:
    lw.open("loop", pos)


def _if(lw: Lowerer, imm: Any, pos: int) -> None:
    cond = lw.stack.pop()
    lw.open("if", pos, cond)


def _else(lw: Lowerer, imm: Any, pos: int) -> None:
    ctrl = lw.ctrls[-1]
    if not ctrl.unreachable:
        lw.copy_into(ctrl.results)
        lw.emit("jmp", targets=(ctrl.label,))
    lw.ir.place(ctrl.else_label)  # type: ignore[arg-type]
    ctrl.else_label = None
    ctrl.reached = ctrl.reached or not ctrl.unreachable
    ctrl.unreachable = False
    del lw.stack[ctrl.height:]
    lw.stack.extend(ctrl.params)


def _end(lw: Lowerer, imm: Any, pos: int) -> None:
    ctrl = lw.ctrls[-1]
    if ctrl.else_label is not None:  # an if without else: the false edge carries the params
        _else(lw, imm, pos)
    reachable = lw.end_block(ctrl)
    lw.ctrls.pop()
    if ctrl.kind == "func":
        if reachable:
            lw.fuel_save()
            lw.emit("ret", (), tuple(ctrl.results))
    elif not reachable:
        lw.set_unreachable()


def _br(lw: Lowerer, imm: int, pos: int) -> None:
    lw.emit("jmp", targets=(lw.branch_to(imm),))
    lw.set_unreachable()


def _br_if(lw: Lowerer, imm: int, pos: int) -> None:
    cond = lw.stack.pop()
    ctrl = lw.ctrls[-1 - imm]
    if not ctrl.merges:
        if ctrl.kind != "loop":
            ctrl.reached = True
        lw.branch_if(cond, ctrl.label)
        return
    skip = lw.ir.new_label()  # values must be copied only when the branch is taken
    lw.branch_unless(cond, skip)
    lw.emit("jmp", targets=(lw.branch_to(imm),))
    lw.ir.place(skip)


def _br_table(lw: Lowerer, imm: tuple[tuple[int, ...], int], pos: int) -> None:
    labels, default = imm
    index = lw.pop_operand()
    if isinstance(index, int):  # a constant index: a plain branch
        index &= 0xFFFFFFFF
        depth = labels[index] if index < len(labels) else default
        _br(lw, depth, pos)
        return
    stubs: dict[int, Label] = {}
    for depth in (*labels, default):
        if depth not in stubs:
            stubs[depth] = lw.ir.new_label() if lw.ctrls[-1 - depth].merges else lw.branch_to(depth)
    lw.emit("br_table", (), (index,), tuple(stubs[d] for d in (*labels, default)))
    for depth, stub in stubs.items():
        if lw.ctrls[-1 - depth].merges:
            lw.ir.place(stub)
            lw.emit("jmp", targets=(lw.branch_to(depth),))
    lw.set_unreachable()


def _return(lw: Lowerer, imm: Any, pos: int) -> None:
    func = lw.ctrls[0]
    values = tuple(lw.materialize(v) for v in lw.stack[len(lw.stack) - len(func.results):])
    lw.fuel_save()
    lw.emit("ret", (), values)
    lw.set_unreachable()


def _call(lw: Lowerer, imm: int, pos: int) -> None:
    ftype = lw.func_types[imm]
    _call_with(lw, ftype, "call", (), func=imm)


def _call_indirect(lw: Lowerer, imm: tuple[int, int], pos: int) -> None:
    type_index, table = imm
    index = lw.pop_operand()
    _call_with(lw, lw.module.types[type_index], "call_indirect", (index,), type_index=type_index, table=table)


def _call_with(lw: Lowerer, ftype: FuncType, op: str, extra: tuple[Operand, ...], **attrs: Any) -> None:
    args = tuple(lw.pop_operand() for _ in ftype.params)[::-1]
    defs = tuple(lw.ir.new_vreg(t) for t in ftype.results)
    lw.fuel_save()
    lw.emit(op, defs, args + extra, **attrs)
    lw.stack.extend(defs)


def _drop(lw: Lowerer, imm: Any, pos: int) -> None:
    lw.stack.pop()


def _select(lw: Lowerer, imm: Any, pos: int) -> None:
    cond = lw.stack.pop()
    type_ = imm[0] if imm else _type_of(lw.stack[-1])
    b, a = lw.pop_operand(), lw.pop_operand()
    dst = lw.ir.new_vreg(type_)
    if isinstance(cond, Cmp):
        uses = (cond.a,) if cond.b is None else (cond.a, cond.b)
        lw.emit("cmp_select", (dst,), (a, b, *uses), cmp=cond.op)
    else:
        lw.emit("select", (dst,), (a, b, lw.materialize(cond)))
    lw.stack.append(dst)


def _type_of(value: Value) -> str:
    return "i32" if isinstance(value, Cmp) else value.type


def _local_get(lw: Lowerer, imm: int, pos: int) -> None:
    lw.stack.append(lw.locals[imm])


def _local_set(lw: Lowerer, imm: int, pos: int) -> None:
    value = lw.pop_operand()
    local = lw.locals[imm]
    lw.detach_locals(local=local)
    if value is local:
        return
    last = lw.ir.insts[-1] if lw.ir.insts else None
    if (isinstance(value, VReg) and last is not None and last.defs == (value,) and last.op != "label"
            and id(value) not in lw.local_ids and not any(v is value for v in lw.stack)):
        last.defs = (local,)  # the value was just made: make it in the local directly
    else:
        lw.emit("mov", (local,), (value,))


def _local_tee(lw: Lowerer, imm: int, pos: int) -> None:
    _local_set(lw, imm, pos)
    lw.stack.append(lw.locals[imm])


def _global_get(lw: Lowerer, imm: int, pos: int) -> None:
    dst = lw.ir.new_vreg(lw.global_types[imm].valtype)
    lw.emit("global_get", (dst,), (), index=imm)
    lw.stack.append(dst)


def _global_set(lw: Lowerer, imm: int, pos: int) -> None:
    lw.emit("global_set", (), (lw.pop_operand(),), index=imm, type=lw.global_types[imm].valtype)


def _memory_size(lw: Lowerer, imm: Any, pos: int) -> None:
    dst = lw.ir.new_vreg("i32")
    lw.emit("memory_size", (dst,))
    lw.stack.append(dst)


def _const(lw: Lowerer, imm: int, pos: int) -> None:
    lw.stack.append(Const(lw.info.body[pos][0].name[:3], imm))


def _f64_const(lw: Lowerer, imm: float, pos: int) -> None:
    lw.stack.append(Const("f64", int.from_bytes(_F64.pack(imm), "little")))


def _eqz(lw: Lowerer, imm: Any, pos: int) -> None:
    value = lw.stack.pop()
    ident = lw.info.body[pos][0].ident
    if isinstance(value, Cmp) and value.op in _NEGATED:  # eqz of a comparison: the opposite one
        lw.stack.append(Cmp(_NEGATED[value.op], value.a, value.b))
    else:
        lw.stack.append(Cmp(ident, lw.materialize(value), None))


def _ref_null(lw: Lowerer, imm: str, pos: int) -> None:
    lw.stack.append(Const(imm, 0))


def _ref_is_null(lw: Lowerer, imm: Any, pos: int) -> None:
    value = lw.pop_operand()
    lw.stack.append(Cmp("ref_is_null", value, None))


# Integer comparisons and their negations (float ones are not negatable: NaN).
_NEGATED = {f"{t}_{a}": f"{t}_{b}" for t in ("i32", "i64") for a, b in (
    ("eq", "ne"), ("ne", "eq"), ("lt_s", "ge_s"), ("ge_s", "lt_s"), ("gt_s", "le_s"), ("le_s", "gt_s"),
    ("lt_u", "ge_u"), ("ge_u", "lt_u"), ("gt_u", "le_u"), ("le_u", "gt_u"))}

_VISITORS: dict[str, Callable[[Lowerer, Any, int], None]] = {
    "nop": _nop, "unreachable": _unreachable, "block": _block, "loop": _loop, "if": _if, "else": _else,
    "end": _end, "br": _br, "br_if": _br_if, "br_table": _br_table, "return": _return, "call": _call,
    "call_indirect": _call_indirect, "drop": _drop, "select": _select, "select_t": _select,
    "local_get": _local_get, "local_set": _local_set, "local_tee": _local_tee, "global_get": _global_get,
    "global_set": _global_set, "memory_size": _memory_size, "i32_const": _const, "i64_const": _const,
    "f32_const": _const, "f64_const": _f64_const, "i32_eqz": _eqz, "i64_eqz": _eqz, "ref_null": _ref_null,
    "ref_is_null": _ref_is_null,
}


def lower(module: Module, info: FuncInfo, name: str = "", osr_loop: int | None = None,
          fuel: bool = False, epoch: bool = False) -> Function:
    """The IR of one validated function; with ``osr_loop`` (the index of a ``loop`` instruction),
    a variant that takes every local as a parameter and starts at that loop's header."""
    return Lowerer(module, info, name, osr_loop, fuel, epoch).run()
