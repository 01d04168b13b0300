"""Translation of one validated function into the interpreter's closure code.

The frame ``R`` is a list: the function's locals, then one slot per operand-stack height
(``R[S0 + h]``; heights are static, from the validator). Translation walks the body once with
an abstract operand stack whose entries are a register index (a stack slot, or a local read
lazily) or a constant ``K``. An instruction's operands are therefore registers or constants,
so ``local.get a; local.get b; i32.add; local.set c`` becomes the single closure
``R[c] = (R[a] + R[b]) & M32``, and a comparison feeding ``br_if``/``if`` fuses into the branch.
At control-flow joins every value sits in its canonical slot. Branch targets and arities come
from the validator's side tables. Imports: opcodes, errors, runtime, validate, interp.*.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import opcodes as O
from ..errors import Trap
from ..runtime import numerics
from ..runtime.store import DEFAULTS, HostFunction, WasmFunction
from . import handlers as H
from . import templates as T


class K:
    """A constant operand."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class Label:
    """A code position, bound once its pc is known."""

    __slots__ = ("pc",)

    def __init__(self) -> None:
        self.pc = -1


NEXT = Label()  # placeholder for "the pc after this instruction"


@dataclass(slots=True)
class _Ctl:
    kind: str  # block | loop | if | func
    height: int  # operand stack height below the block's parameters
    nparams: int
    nresults: int
    label: Label  # where branches to this block go (a loop's header, else its end)
    else_label: Label | None
    live_in: bool  # whether the block was entered reachably

    @property
    def arity(self) -> int:
        return self.nparams if self.kind == "loop" else self.nresults


@dataclass(slots=True)
class _Producer:
    """The last emitted instruction, if it wrote only the slot now on top of the stack."""

    index: int  # into specs
    dest: int
    compare: tuple[str, str, tuple] | None  # (ident, kinds, operands) when it is a comparison


@dataclass(slots=True)
class InterpCode:
    """A translated function: ``code[pc](R) -> next pc`` (pc 0 exits), byte offset per pc."""

    code: list
    offsets: list[int]
    frame_template: list  # initial values of declared locals and stack slots
    num_locals: int  # S0: parameters + declared locals
    loop_headers: dict[int, int] = field(default_factory=dict)  # header pc -> `loop` instruction index
    translate_seconds: float = 0.0


class Translator:
    """Translates one function; ``run()`` returns its :class:`InterpCode`."""

    def __init__(self, func: WasmFunction) -> None:
        self.func = func
        self.info = func.info
        self.inst = func.instance
        self.S0 = len(self.info.local_types)
        self.specs: list[tuple[Callable[..., Any], tuple]] = []
        self.offsets: list[int] = []
        self.loops: list[tuple[Label, int]] = []  # (header label, loop instruction index)
        self.stack: list[Any] = []
        self.ctls: list[_Ctl] = []
        self.live = True
        self.producer: _Producer | None = None
        self.offset = 0
        store = func.store
        self.fuel, self.epoch = store.consume_fuel, store.epoch_interruption
        self.words, self.uwords = store.words, store.uwords
        self.epoch_words = store.epoch.words if store.epoch is not None else None
        self.charge: int | None = None  # spec index of the open run's fuel charge
        self.charge_cost = 0

    # --- emission ---

    def emit(self, factory: Callable[..., Any], *args: Any) -> int:
        self.specs.append((factory, args))
        self.offsets.append(self.offset)
        self.producer = None
        return len(self.specs) - 1

    def checks(self, fuel_cost: int) -> None:
        """Fuel and epoch checks of a function entry (charging ``fuel_cost``) or loop header."""
        if self.fuel:
            self.emit(H.fuel_check, self.words, fuel_cost, NEXT)
        if self.epoch:
            self.emit(H.epoch_check, self.epoch_words, self.uwords, NEXT)

    def fuel_save(self) -> None:
        if self.fuel:
            self.emit(H.fuel_save, self.words, NEXT)

    def count_fuel(self, i: int) -> bool:
        """Before ``body[i]``: open a run of instructions charged together (its charge
        runs first, the cost is filled in when the run ends) and count the instruction in it.
        Whether the run ends after it."""
        cost, ends, save = O.fuel_step(self.info.body, i, self.inst.module)
        if cost:
            if self.charge is None:
                self.charge = self.emit(H.fuel_charge, self.words, 0, NEXT)
            self.charge_cost += cost
        if save:
            self.fuel_save()
        return ends

    def end_fuel_run(self) -> None:
        if self.charge is not None:
            self.specs[self.charge] = (H.fuel_charge, (self.words, self.charge_cost, NEXT))
            self.charge, self.charge_cost = None, 0

    def bind(self, label: Label) -> None:
        label.pc = len(self.specs) + 1  # pc 0 is the exit; spec i runs at pc i + 1
        self.producer = None

    def produce(self, factory: Callable[..., Any], *args: Any, compare: Any = None) -> None:
        """Emit an instruction writing the slot of the next stack position; push that slot."""
        dest = self.S0 + len(self.stack)
        index = self.emit(factory, dest, *args)
        self.stack.append(dest)
        self.producer = _Producer(index, dest, compare)

    # --- the abstract stack ---

    def slot(self, position: int) -> int:
        return self.S0 + position

    def materialize(self, start: int = 0) -> None:
        """Put every entry from ``start`` up into its canonical slot."""
        stack = self.stack
        for p in range(start, len(stack)):
            entry, slot = stack[p], self.S0 + p
            if type(entry) is K:
                self.emit(H.const, slot, entry.value, NEXT)
            elif entry != slot:
                self.emit(H.copy, slot, entry, NEXT)
            else:
                continue
            stack[p] = slot

    def materialize_top(self, n: int) -> int:
        """Materialize the top ``n`` entries; return the slot of the lowest of them."""
        start = len(self.stack) - n
        self.materialize(start)
        return self.S0 + start

    def spill_local(self, index: int) -> None:
        """Before local ``index`` is written, copy out stack entries that read it lazily."""
        for p, entry in enumerate(self.stack):
            if type(entry) is int and entry == index:
                self.emit(H.copy, self.S0 + p, index, NEXT)
                self.stack[p] = self.S0 + p

    def pop_operand(self) -> tuple[str, Any]:
        entry = self.stack.pop()
        return ("k", entry.value) if type(entry) is K else ("r", entry)

    def pop_register(self) -> int:
        """Pop an entry that must be a register (constants go to their slot first)."""
        if type(self.stack[-1]) is K:
            self.materialize_top(1)
        return self.stack.pop()

    # --- branches ---

    def moves(self, ctl: _Ctl) -> tuple:
        """(dest, src, is_const) moves carrying the label's values to the target's slots."""
        arity, top = ctl.arity, len(self.stack)
        moves = []
        for i in range(arity):
            entry, dest = self.stack[top - arity + i], self.S0 + ctl.height + i
            if type(entry) is K:
                moves.append((dest, entry.value, True))
            elif entry != dest:
                moves.append((dest, entry, False))
        return tuple(moves)

    def counter(self, ctl: _Ctl) -> list | None:
        return self.func.backedges if ctl.kind == "loop" else None

    def jump_to(self, ctl: _Ctl) -> None:
        """Unconditional branch: move the carried values, then jump (counting back-edges)."""
        for dest, src, is_const in self.moves(ctl):
            self.emit(H.const if is_const else H.copy, dest, src, NEXT)
        if ctl.kind == "loop":
            self.emit(H.jump_back, self.func.backedges, ctl.label)
        else:
            self.emit(H.jump, ctl.label)

    # --- the pass ---

    def run(self) -> InterpCode:
        info = self.info
        ftype = info.type
        self.ctls.append(_Ctl("func", 0, 0, len(ftype.results), Label(), None, True))
        body, ends = info.body, info.ends
        self.checks(O.FUEL_PER_CALL)
        fuel = self.fuel
        i, last = 0, len(body)
        while i < last:
            op, imm, self.offset = body[i]
            name = op.name
            if not self.live and name not in ("else", "end"):
                # Dead code: skip it, including whole nested blocks.
                i = ends[i] + 1 if name in ("block", "loop", "if") else i + 1
                continue
            run_ends = self.count_fuel(i) if fuel and self.live else op.ends_fuel_block
            handler = _HANDLERS.get(name)
            if handler is not None:
                handler(self, i, imm)
            elif op.width:
                self.memory_access(op, imm)
            else:
                self.numeric(op)
            if fuel and run_ends:
                self.end_fuel_run()
            i += 1
        template = [DEFAULTS[t] for t in info.local_types[len(ftype.params):]]
        template += [None] * (info.max_height + 1)
        code = InterpCode(self.finish(), [0, *self.offsets], template, self.S0)
        for label, index in self.loops:  # an inner loop at the same pc wins: entering it is the same
            code.loop_headers[label.pc] = index
        return code

    def finish(self) -> list:
        code: list = [None]
        for pc, (factory, args) in enumerate(self.specs, start=1):
            code.append(factory(*(_resolve(a, pc) for a in args)))
        return code

    # --- instruction groups ---

    def numeric(self, op: O.Op, arity: int | None = None) -> None:
        if arity is None:
            arity = len(op.params)  # type: ignore[arg-type]
        operands = [self.pop_operand() for _ in range(arity)][::-1]
        kinds = "".join(kind for kind, _ in operands)
        values = tuple(value for _, value in operands)
        ident = op.ident
        if "r" not in kinds and ident in numerics.FUNCS:
            try:
                self.stack.append(K(numerics.FUNCS[ident](*values)))  # constant folding
                return
            except Trap:
                pass  # keep the trap for run time
        compare = (ident, kinds, values) if ident in T.COMPARISONS else None
        self.produce(T.numeric(ident, kinds), *values, NEXT, compare=compare)

    def memory_access(self, op: O.Op, imm: tuple[int, int]) -> None:
        mem = self.inst.mems[0]
        offset = imm[1]
        if op.results:  # a load
            kind, address = self.pop_operand()
            self.produce(T.load(op.ident, kind), address, offset, mem, NEXT)
        else:
            value_kind, value = self.pop_operand()
            address_kind, address = self.pop_operand()
            self.emit(T.store(op.ident, address_kind + value_kind), address, value, offset, mem, NEXT)

    def fuse_compare(self, cond: int) -> tuple[str, str, tuple] | None:
        """If ``cond`` was just computed by a comparison, drop that instruction and return it."""
        producer = self.producer
        if producer is None or producer.compare is None or producer.dest != cond:
            return None
        del self.specs[producer.index:], self.offsets[producer.index:]
        self.producer = None
        return producer.compare


# --- Handlers by instruction name ----------------------------------------------------------------


def _resolve(arg: Any, pc: int) -> Any:
    if arg is NEXT:
        return pc + 1
    if type(arg) is Label:
        return arg.pc
    if type(arg) is tuple and arg and type(arg[0]) is Label:
        return tuple(label.pc for label in arg)
    return arg


def _unreachable(t: Translator, i: int, imm: Any) -> None:
    t.fuel_save()
    t.emit(H.unreachable, NEXT)
    t.live = False


def _nop(t: Translator, i: int, imm: Any) -> None:
    pass


def _open(t: Translator, i: int, imm: Any) -> None:
    op_name = t.info.body[i][0].name
    bt = t.info.block_types[i]
    nparams, nresults = len(bt.params), len(bt.results)
    if op_name == "if":
        cond = t.stack.pop()
        if type(cond) is K:  # a constant condition: materialize it like any value
            t.stack.append(cond)
            cond = t.pop_register()
        compare = t.fuse_compare(cond)
        t.materialize()
        ctl = _Ctl("if", len(t.stack) - nparams, nparams, nresults, Label(), Label(), t.live)
        if compare is not None:
            ident, kinds, values = compare
            t.emit(T.numeric(ident, kinds, "if"), *values, NEXT, ctl.else_label)
        else:
            t.emit(H.if_, cond, NEXT, ctl.else_label)
    else:
        t.materialize()
        ctl = _Ctl(op_name, len(t.stack) - nparams, nparams, nresults, Label(), None, t.live)
        if op_name == "loop":
            t.bind(ctl.label)
            t.loops.append((ctl.label, i))
            t.checks(0)
    t.ctls.append(ctl)


def _canonical(t: Translator, count: int) -> None:
    t.stack = [t.S0 + p for p in range(count)]


def _else(t: Translator, i: int, imm: Any) -> None:
    ctl = t.ctls[-1]
    if t.live:
        t.materialize(ctl.height)
        t.emit(H.jump, ctl.label)
    t.bind(ctl.else_label)  # type: ignore[arg-type]
    ctl.else_label = None  # bound: `end` must not bind it again
    _canonical(t, ctl.height + ctl.nparams)
    t.live = ctl.live_in


def _end(t: Translator, i: int, imm: Any) -> None:
    ctl = t.ctls.pop()
    if t.live:
        t.materialize(ctl.height)
    if ctl.else_label is not None:  # an if without else: a false condition lands here
        t.bind(ctl.else_label)
    if ctl.kind != "loop":
        t.bind(ctl.label)
    _canonical(t, ctl.height + ctl.nresults)
    t.live = ctl.live_in
    if ctl.kind == "func":  # the results are in the first slots
        if t.fuel:
            t.emit(H.fuel_exit, t.words)
        else:
            t.emit(H.exit_)


def _label(t: Translator, depth: int) -> _Ctl:
    return t.ctls[-1 - depth]


def _br(t: Translator, i: int, imm: int) -> None:
    t.jump_to(_label(t, imm))
    t.live = False


def _br_if(t: Translator, i: int, imm: int) -> None:
    ctl = _label(t, imm)
    cond = t.pop_register()
    moves = t.moves(ctl)
    counter = t.counter(ctl)
    if not moves:
        compare = t.fuse_compare(cond)
        if compare is not None:
            ident, kinds, values = compare
            if counter is not None:
                t.emit(T.numeric(ident, kinds, "br_if_back"), *values, counter, ctl.label, NEXT)
            else:
                t.emit(T.numeric(ident, kinds, "br_if"), *values, ctl.label, NEXT)
        elif counter is not None:
            t.emit(H.br_if_back, cond, counter, ctl.label, NEXT)
        else:
            t.emit(H.br_if, cond, ctl.label, NEXT)
    else:
        t.emit(H.br_if_moves, cond, moves, counter, ctl.label, NEXT)


def _br_table(t: Translator, i: int, imm: tuple[tuple[int, ...], int]) -> None:
    labels, default = imm
    index = t.pop_register()
    stubs: dict[int, Label] = {}
    targets = []
    for depth in (*labels, default):
        ctl = _label(t, depth)
        if not t.moves(ctl) and ctl.kind != "loop":
            targets.append(ctl.label)
        else:
            targets.append(stubs.setdefault(depth, Label()))
    t.emit(H.br_table, index, tuple(targets[:-1]), targets[-1])
    for depth, stub in stubs.items():  # per-target moves (and back-edge counts) after the table
        t.bind(stub)
        t.jump_to(_label(t, depth))
    t.live = False


def _return(t: Translator, i: int, imm: Any) -> None:
    t.jump_to(t.ctls[0])  # the function's label: its end, where results are in the first slots
    t.live = False


def _call(t: Translator, i: int, imm: int) -> None:
    callee = t.inst.funcs[imm]
    nargs, nresults = len(callee.type.params), len(callee.type.results)
    base = t.materialize_top(nargs)
    del t.stack[len(t.stack) - nargs:]
    t.fuel_save()
    if isinstance(callee, HostFunction):
        t.emit(H.call_host, callee, t.inst, base, nargs, nresults, NEXT)
    else:
        t.emit(H.call, callee, base, nargs, nresults, NEXT)
    t.stack.extend(range(base, base + nresults))


def _call_indirect(t: Translator, i: int, imm: tuple[int, int]) -> None:
    type_index, table_index = imm
    ftype = t.inst.module.types[type_index]
    nargs, nresults = len(ftype.params), len(ftype.results)
    index = t.pop_register()
    base = t.materialize_top(nargs)
    del t.stack[len(t.stack) - nargs:]
    t.fuel_save()
    t.emit(H.call_indirect, t.func.store.funcs, t.inst, t.inst.tables[table_index],
           t.inst.type_ids[type_index], index, base, nargs, nresults, NEXT)
    t.stack.extend(range(base, base + nresults))


def _drop(t: Translator, i: int, imm: Any) -> None:
    t.stack.pop()


def _select(t: Translator, i: int, imm: Any) -> None:
    cond = t.stack.pop()
    (kind_b, b), (kind_a, a) = t.pop_operand(), t.pop_operand()
    if type(cond) is K:  # statically known: no instruction at all...
        chosen = (kind_a, a) if cond.value else (kind_b, b)
        t.stack.append(K(chosen[1]) if chosen[0] == "k" else chosen[1])
        if chosen[0] == "r" and chosen[1] >= t.S0:
            # ...unless the value sits in the stack slot of ``b``, one above where the result
            # goes: the next push writes that slot, so move it down now (a local is read lazily
            # and spilled before it changes; a constant has no slot).
            t.materialize(len(t.stack) - 1)
        return
    t.produce(H.select, a, b, cond, kind_a + kind_b, NEXT)


def _local_get(t: Translator, i: int, imm: int) -> None:
    t.stack.append(imm)


def _local_set(t: Translator, i: int, imm: int, tee: bool = False) -> None:
    entry = t.stack.pop()
    t.spill_local(imm)
    producer = t.producer
    if producer is not None and producer.dest == entry:
        factory, args = t.specs[producer.index]
        t.specs[producer.index] = (factory, (imm, *args[1:]))  # write the local directly
        t.producer = None
    elif type(entry) is K:
        t.emit(H.const, imm, entry.value, NEXT)
    elif entry != imm:
        t.emit(H.copy, imm, entry, NEXT)
    if tee:
        t.stack.append(imm)


def _local_tee(t: Translator, i: int, imm: int) -> None:
    _local_set(t, i, imm, tee=True)


def _global_get(t: Translator, i: int, imm: int) -> None:
    t.produce(H.global_get, t.inst.globals[imm], NEXT)


def _global_set(t: Translator, i: int, imm: int) -> None:
    kind, value = t.pop_operand()
    t.emit(H.global_set, t.inst.globals[imm], value, kind == "k", NEXT)


def _const(t: Translator, i: int, imm: Any) -> None:
    t.stack.append(K(imm))


def _ref_null(t: Translator, i: int, imm: Any) -> None:
    t.stack.append(K(0))


def _ref_is_null(t: Translator, i: int, imm: Any) -> None:
    t.numeric(t.info.body[i][0], arity=1)  # typed by hand in the table: one reference operand


def _ref_func(t: Translator, i: int, imm: int) -> None:
    t.stack.append(K(t.inst.funcs[imm].handle))


def _operands_then(factory: Callable[..., Any], count: int, pushes: int, *extra: Any) -> Any:
    """An op reading its ``count`` operands from consecutive slots d.., leaving ``pushes``."""
    def handler(t: Translator, i: int, imm: Any) -> None:
        base = t.materialize_top(count)
        del t.stack[len(t.stack) - count:]
        args = (base, *(arg(t, imm) for arg in extra), NEXT)
        if t.fuel and O.runtime_items(t.info.body, i):
            t.emit(H.fuel_per_item, t.words, base + count - 1, pushes == 1, factory, *args)
        else:
            t.emit(factory, *args)
        t.stack.extend(range(base, base + pushes))
    return handler


def _mem(t: Translator, imm: Any) -> Any:
    return t.inst.mems[0]


def _table(t: Translator, imm: int) -> Any:
    return t.inst.tables[imm]


def _datas(t: Translator, imm: Any) -> Any:
    return t.inst.datas


def _elems(t: Translator, imm: Any) -> Any:
    return t.inst.elems


def _imm(t: Translator, imm: Any) -> Any:
    return imm


def _first(t: Translator, imm: tuple[int, int]) -> Any:
    return imm[0]


def _second_table(t: Translator, imm: tuple[int, int]) -> Any:
    return t.inst.tables[imm[1]]


def _first_table(t: Translator, imm: tuple[int, int]) -> Any:
    return t.inst.tables[imm[0]]


def _memory_size(t: Translator, i: int, imm: Any) -> None:
    t.produce(H.memory_size, t.inst.mems[0], NEXT)


def _table_size(t: Translator, i: int, imm: int) -> None:
    t.produce(H.table_size, t.inst.tables[imm], NEXT)


_HANDLERS: dict[str, Callable[[Translator, int, Any], None]] = {
    "unreachable": _unreachable, "nop": _nop,
    "block": _open, "loop": _open, "if": _open, "else": _else, "end": _end,
    "br": _br, "br_if": _br_if, "br_table": _br_table, "return": _return,
    "call": _call, "call_indirect": _call_indirect,
    "drop": _drop, "select": _select, "select_t": _select,
    "local.get": _local_get, "local.set": _local_set, "local.tee": _local_tee,
    "global.get": _global_get, "global.set": _global_set,
    "i32.const": _const, "i64.const": _const, "f32.const": _const, "f64.const": _const,
    "ref.null": _ref_null, "ref.func": _ref_func, "ref.is_null": _ref_is_null,
    "memory.size": _memory_size,
    "memory.grow": _operands_then(H.memory_grow, 1, 1, _mem),
    "memory.fill": _operands_then(H.memory_fill, 3, 0, _mem),
    "memory.copy": _operands_then(H.memory_copy, 3, 0, _mem),
    "memory.init": _operands_then(H.memory_init, 3, 0, _mem, _datas, _imm),
    "data.drop": lambda t, i, imm: t.emit(H.data_drop, t.inst.datas, imm, NEXT),
    "table.get": _operands_then(H.table_get, 1, 1, _table),
    "table.set": _operands_then(H.table_set, 2, 0, _table),
    "table.size": _table_size,
    "table.grow": _operands_then(H.table_grow, 2, 1, _table),
    "table.fill": _operands_then(H.table_fill, 3, 0, _table),
    "table.copy": _operands_then(H.table_copy, 3, 0, _first_table, _second_table),
    "table.init": _operands_then(H.table_init, 3, 0, _second_table, _elems, _first),
    "elem.drop": lambda t, i, imm: t.emit(H.elem_drop, t.inst.elems, imm, NEXT),
}
