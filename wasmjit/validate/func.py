"""Function-body validation (spec 3.3 and the appendix's algorithm) producing side tables.

One pass over the decoded instructions with an operand-type stack and a control stack. Simple
instructions are typed from the opcode table's signature; the rest have a method here.
Besides checking, it records for the interpreter and the JIT: the operand stack height before
each instruction, each block's end/else and type, and each branch's target (instruction index,
arity, stack height at the target). Imports: opcodes, structure, errors, validate.context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import opcodes as O
from ..errors import ValidationError
from ..structure import FuncType, Instr
from .context import Context

UNKNOWN = None  # the bottom type of unreachable code


@dataclass(slots=True)
class Target:
    """Where a branch goes: ``index`` (a loop's own index, or the end of a block/if), the
    number of values it carries, and the operand stack height below those values."""

    index: int
    arity: int
    height: int


@dataclass(slots=True)
class FuncInfo:
    """Side tables for one validated function body (indices are instruction indices)."""

    index: int  # function index in the module's function index space
    type: FuncType
    local_types: tuple[str, ...]  # parameters then declared locals
    body: list[Instr]
    heights: list[int] = field(default_factory=list)  # -1 where the code is unreachable
    max_height: int = 0
    ends: dict[int, int] = field(default_factory=dict)  # block/loop/if -> its end
    elses: dict[int, int] = field(default_factory=dict)  # if -> its else
    block_types: dict[int, FuncType] = field(default_factory=dict)
    targets: dict[int, Any] = field(default_factory=dict)  # br/br_if -> Target, br_table -> tuple


@dataclass(slots=True)
class _Ctrl:
    kind: str  # "block" | "loop" | "if" | "else" | "func"
    start_types: tuple[str, ...]
    end_types: tuple[str, ...]
    height: int
    index: int  # instruction index of the opener (-1 for the function)
    unreachable: bool = False


class FuncValidator:
    """Validates one function body; ``run()`` returns its :class:`FuncInfo`."""

    def __init__(self, ctx: Context, func_index: int, ftype: FuncType, local_types: tuple[str, ...],
                 body: list[Instr]) -> None:
        self.ctx = ctx
        self.info = FuncInfo(func_index, ftype, local_types, body)
        self.vals: list[str | None] = []
        self.ctrls: list[_Ctrl] = []
        self.pos = 0  # current instruction index
        self.offset = 0  # its byte offset

    # --- errors and the operand stack ---

    def error(self, message: str) -> ValidationError:
        return ValidationError(message, self.info.index, self.offset)

    def push(self, t: str | None) -> None:
        self.vals.append(t)

    def pop(self, expect: str | None = UNKNOWN) -> str | None:
        ctrl = self.ctrls[-1]
        if len(self.vals) == ctrl.height:
            if ctrl.unreachable:
                return UNKNOWN
            raise self.error("type mismatch")
        actual = self.vals.pop()
        if actual != expect and actual is not UNKNOWN and expect is not UNKNOWN:
            raise self.error("type mismatch")
        return actual

    def pop_many(self, types: tuple[str, ...]) -> list[str | None]:
        return [self.pop(t) for t in reversed(types)][::-1]

    def push_many(self, types: tuple[str, ...] | list[str | None]) -> None:
        self.vals.extend(types)

    def push_ctrl(self, kind: str, start: tuple[str, ...], end: tuple[str, ...]) -> None:
        self.ctrls.append(_Ctrl(kind, start, end, len(self.vals), self.pos))
        self.push_many(start)

    def pop_ctrl(self) -> _Ctrl:
        ctrl = self.ctrls[-1]
        self.pop_many(ctrl.end_types)
        if len(self.vals) != ctrl.height:
            raise self.error("type mismatch")
        self.ctrls.pop()
        return ctrl

    def set_unreachable(self) -> None:
        ctrl = self.ctrls[-1]
        del self.vals[ctrl.height:]
        ctrl.unreachable = True

    def label(self, depth: int) -> _Ctrl:
        if depth >= len(self.ctrls):
            raise self.error("unknown label")
        return self.ctrls[-1 - depth]

    @staticmethod
    def label_types(ctrl: _Ctrl) -> tuple[str, ...]:
        return ctrl.start_types if ctrl.kind == "loop" else ctrl.end_types

    def target(self, depth: int) -> Target:
        ctrl = self.label(depth)
        # The end index of a block is only known when it closes: patched in `end_`.
        index = ctrl.index if ctrl.kind == "loop" else -1
        return Target(index, len(self.label_types(ctrl)), ctrl.height)

    # --- the pass ---

    def run(self) -> FuncInfo:
        info = self.info
        ftype = info.type
        self.ctrls.append(_Ctrl("func", (), ftype.results, 0, -1))
        self.pending: dict[int, list[Target]] = {-1: []}  # opener index -> targets to patch
        heights = info.heights
        max_height = 0
        handlers = _HANDLERS
        body = info.body
        last = len(body) - 1
        for pos, (op, imm, offset) in enumerate(body):
            self.pos, self.offset = pos, offset
            if self.ctrls[-1].unreachable:
                heights.append(-1)
            else:
                height = len(self.vals)
                heights.append(height)
                if height > max_height:
                    max_height = height
            if not self.ctrls:
                raise self.error("operators remaining after end of function")
            handler = handlers.get(op.name)
            if handler is not None:
                handler(self, imm)
            elif op.params is not None:
                if op.width:
                    self.memarg(op, imm)
                self.pop_many(op.params)
                self.push_many(op.results)  # type: ignore[arg-type]
            else:  # pragma: no cover - every special op has a handler
                raise self.error(f"unsupported instruction {op.name}")
            if len(self.vals) > max_height:
                max_height = len(self.vals)
            if not self.ctrls and pos != last:
                raise self.error("operators remaining after end of function")
        if self.ctrls:
            raise self.error("END opcode expected")
        info.max_height = max_height
        return info

    # --- memory arguments ---

    def memarg(self, op: O.Op, imm: tuple[int, ...]) -> None:
        self.ctx.memory(0, self.error)
        if (1 << imm[0]) > op.width:
            raise self.error("alignment must not be larger than natural")


# --- Handlers for the instructions the table does not type ------------------------------------


def _unreachable(v: FuncValidator, imm: Any) -> None:
    v.set_unreachable()


def _block_type(v: FuncValidator, imm: Any) -> FuncType:
    if imm is None:
        return FuncType((), ())
    if isinstance(imm, str):
        return FuncType((), (imm,))
    return v.ctx.type(imm, v.error)


def _open(kind: str) -> Any:
    def handler(v: FuncValidator, imm: Any) -> None:
        bt = _block_type(v, imm)
        if kind == "if":
            v.pop("i32")
        v.pop_many(bt.params)
        v.info.block_types[v.pos] = bt
        v.pending[v.pos] = []
        v.push_ctrl(kind, bt.params, bt.results)

    return handler


def _else(v: FuncValidator, imm: Any) -> None:
    ctrl = v.ctrls[-1]
    if ctrl.kind != "if":
        raise v.error("else without matching if")
    v.pop_ctrl()
    v.info.elses[ctrl.index] = v.pos
    v.ctrls.append(_Ctrl("else", ctrl.start_types, ctrl.end_types, len(v.vals), ctrl.index))
    v.push_many(ctrl.start_types)


def _end(v: FuncValidator, imm: Any) -> None:
    ctrl = v.pop_ctrl()
    if ctrl.kind == "if" and ctrl.start_types != ctrl.end_types:
        raise v.error("type mismatch")  # an if without else must have type [t*] -> [t*]
    v.info.ends[ctrl.index] = v.pos
    for target in v.pending.pop(ctrl.index):
        target.index = v.pos
    v.push_many(ctrl.end_types)


def _record(v: FuncValidator, depth: int) -> Target:
    target = v.target(depth)
    if target.index == -1:
        v.pending[v.label(depth).index].append(target)
    return target


def _br(v: FuncValidator, imm: int) -> None:
    v.info.targets[v.pos] = _record(v, imm)
    v.pop_many(v.label_types(v.label(imm)))
    v.set_unreachable()


def _br_if(v: FuncValidator, imm: int) -> None:
    v.pop("i32")
    v.info.targets[v.pos] = _record(v, imm)
    types = v.label_types(v.label(imm))
    v.pop_many(types)
    v.push_many(types)


def _br_table(v: FuncValidator, imm: tuple[tuple[int, ...], int]) -> None:
    labels, default = imm
    v.pop("i32")
    arity = len(v.label_types(v.label(default)))
    for depth in labels:
        types = v.label_types(v.label(depth))
        if len(types) != arity:
            raise v.error("type mismatch")
        v.push_many(v.pop_many(types))
    v.pop_many(v.label_types(v.label(default)))
    v.info.targets[v.pos] = tuple(_record(v, d) for d in (*labels, default))
    v.set_unreachable()


def _return(v: FuncValidator, imm: Any) -> None:
    v.pop_many(v.info.type.results)
    v.set_unreachable()


def _call(v: FuncValidator, imm: int) -> None:
    ft = v.ctx.func(imm, v.error)
    v.pop_many(ft.params)
    v.push_many(ft.results)


def _call_indirect(v: FuncValidator, imm: tuple[int, int]) -> None:
    type_index, table_index = imm
    if v.ctx.table(table_index, v.error).elem != "funcref":
        raise v.error("type mismatch")
    ft = v.ctx.type(type_index, v.error)
    v.pop("i32")
    v.pop_many(ft.params)
    v.push_many(ft.results)


def _drop(v: FuncValidator, imm: Any) -> None:
    v.pop()


def _select(v: FuncValidator, imm: Any) -> None:
    v.pop("i32")
    t1 = v.pop()
    t2 = v.pop()
    if t1 in O.REF_TYPES or t2 in O.REF_TYPES:
        raise v.error("type mismatch")  # untyped select is only for numeric/vector types
    if t1 is not UNKNOWN and t2 is not UNKNOWN and t1 != t2:
        raise v.error("type mismatch")
    v.push(t1 if t1 is not UNKNOWN else t2)


def _select_t(v: FuncValidator, imm: tuple[str, ...]) -> None:
    if len(imm) != 1:
        raise v.error("invalid result arity")
    v.pop("i32")
    v.pop(imm[0])
    v.pop(imm[0])
    v.push(imm[0])


def _local_type(v: FuncValidator, index: int) -> str:
    if index >= len(v.info.local_types):
        raise v.error(f"unknown local {index}")
    return v.info.local_types[index]


def _local_get(v: FuncValidator, imm: int) -> None:
    v.push(_local_type(v, imm))


def _local_set(v: FuncValidator, imm: int) -> None:
    v.pop(_local_type(v, imm))


def _local_tee(v: FuncValidator, imm: int) -> None:
    t = _local_type(v, imm)
    v.pop(t)
    v.push(t)


def _global_get(v: FuncValidator, imm: int) -> None:
    v.push(v.ctx.global_(imm, v.error).valtype)


def _global_set(v: FuncValidator, imm: int) -> None:
    gt = v.ctx.global_(imm, v.error)
    if not gt.mutable:
        raise v.error("global is immutable")
    v.pop(gt.valtype)


def _table_get(v: FuncValidator, imm: int) -> None:
    elem = v.ctx.table(imm, v.error).elem
    v.pop("i32")
    v.push(elem)


def _table_set(v: FuncValidator, imm: int) -> None:
    elem = v.ctx.table(imm, v.error).elem
    v.pop(elem)
    v.pop("i32")


def _table_size(v: FuncValidator, imm: int) -> None:
    v.ctx.table(imm, v.error)
    v.push("i32")


def _table_grow(v: FuncValidator, imm: int) -> None:
    elem = v.ctx.table(imm, v.error).elem
    v.pop("i32")
    v.pop(elem)
    v.push("i32")


def _table_fill(v: FuncValidator, imm: int) -> None:
    elem = v.ctx.table(imm, v.error).elem
    v.pop("i32")
    v.pop(elem)
    v.pop("i32")


def _table_copy(v: FuncValidator, imm: tuple[int, int]) -> None:
    dst, src = (v.ctx.table(i, v.error) for i in imm)
    if dst.elem != src.elem:
        raise v.error("type mismatch")
    v.pop_many(("i32", "i32", "i32"))


def _table_init(v: FuncValidator, imm: tuple[int, int]) -> None:
    elem_index, table_index = imm
    table = v.ctx.table(table_index, v.error)
    if v.ctx.elem(elem_index, v.error) != table.elem:
        raise v.error("type mismatch")
    v.pop_many(("i32", "i32", "i32"))


def _elem_drop(v: FuncValidator, imm: int) -> None:
    v.ctx.elem(imm, v.error)


def _memory_op(op_name: str) -> Any:
    op = O.BY_NAME[op_name]

    def handler(v: FuncValidator, imm: Any) -> None:
        v.ctx.memory(0, v.error)
        v.pop_many(op.params)  # type: ignore[arg-type]
        v.push_many(op.results)  # type: ignore[arg-type]

    return handler


def _memory_init(v: FuncValidator, imm: int) -> None:
    v.ctx.memory(0, v.error)
    v.ctx.data(imm, v.error)
    v.pop_many(("i32", "i32", "i32"))


def _data_drop(v: FuncValidator, imm: int) -> None:
    v.ctx.data(imm, v.error)


def _ref_null(v: FuncValidator, imm: str) -> None:
    v.push(imm)


def _ref_is_null(v: FuncValidator, imm: Any) -> None:
    t = v.pop()
    if t is not UNKNOWN and t not in O.REF_TYPES:
        raise v.error("type mismatch")
    v.push("i32")


def _ref_func(v: FuncValidator, imm: int) -> None:
    v.ctx.func(imm, v.error)
    if imm not in v.ctx.refs:
        raise v.error("undeclared function reference")
    v.push("funcref")


_HANDLERS: dict[str, Any] = {
    "unreachable": _unreachable,
    "nop": lambda v, imm: None,
    "block": _open("block"),
    "loop": _open("loop"),
    "if": _open("if"),
    "else": _else,
    "end": _end,
    "br": _br,
    "br_if": _br_if,
    "br_table": _br_table,
    "return": _return,
    "call": _call,
    "call_indirect": _call_indirect,
    "drop": _drop,
    "select": _select,
    "select_t": _select_t,
    "local.get": _local_get,
    "local.set": _local_set,
    "local.tee": _local_tee,
    "global.get": _global_get,
    "global.set": _global_set,
    "table.get": _table_get,
    "table.set": _table_set,
    "table.size": _table_size,
    "table.grow": _table_grow,
    "table.fill": _table_fill,
    "table.copy": _table_copy,
    "table.init": _table_init,
    "elem.drop": _elem_drop,
    "memory.size": _memory_op("memory.size"),
    "memory.grow": _memory_op("memory.grow"),
    "memory.copy": _memory_op("memory.copy"),
    "memory.fill": _memory_op("memory.fill"),
    "memory.init": _memory_init,
    "data.drop": _data_drop,
    "ref.null": _ref_null,
    "ref.is_null": _ref_is_null,
    "ref.func": _ref_func,
}
