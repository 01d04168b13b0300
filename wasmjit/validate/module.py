"""Module validation (spec 3.4): types, limits, constant expressions, segments, exports, start.

``validate_module(module)`` checks everything and returns a :class:`ValidatedModule` holding the
per-function side tables. Imports: structure, opcodes, errors, validate.context, validate.func.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import structure as S
from ..errors import UnsupportedError, ValidationError
from ..opcodes import BY_NAME
from .context import Context
from .func import FuncInfo, FuncValidator

MAX_PAGES = 65536
_CONST_OPS = frozenset(("i32.const", "i64.const", "f32.const", "f64.const", "ref.null", "ref.func",
                        "global.get", "end"))


@dataclass
class ValidatedModule:
    """A module that passed validation, with its index spaces and function side tables."""

    module: S.Module
    context: Context
    func_infos: list[FuncInfo]  # one per defined (non-imported) function
    num_imported_funcs: int
    # Native code compiled (or deserialized) for it, shared by its instances in every store:
    # jit.artifact.CodeKey -> {function index: jit.artifact.FunctionCode}; filled by the JIT.
    native_code: dict[Any, dict[int, Any]] = field(default_factory=dict, compare=False, repr=False)


def _error(message: str) -> ValidationError:
    return ValidationError(message)


def validate_module(module: S.Module) -> ValidatedModule:
    """Validate ``module``; raises ValidationError, or UnsupportedError for SIMD modules."""
    if module.uses_simd:
        raise UnsupportedError("SIMD is not supported yet (the module uses v128 or 0xFD instructions)")
    ctx = Context(types=list(module.types))
    imported_globals = []
    for imp in module.imports:
        if imp.kind == S.FUNC:
            ctx.funcs.append(ctx.type(imp.desc, _error))
        elif imp.kind == S.TABLE:
            _check_table(imp.desc)
            ctx.tables.append(imp.desc)
        elif imp.kind == S.MEMORY:
            _check_memory(imp.desc)
            ctx.mems.append(imp.desc)
        else:
            ctx.globals.append(imp.desc)
            imported_globals.append(imp.desc)
    num_imported_funcs = len(ctx.funcs)
    for func in module.funcs:
        ctx.funcs.append(ctx.type(func.type_index, _error))
    for table in module.tables:
        _check_table(table)
        ctx.tables.append(table)
    for mem in module.mems:
        _check_memory(mem)
        ctx.mems.append(mem)
    if len(ctx.mems) > 1:
        raise ValidationError("multiple memories")
    ctx.elems = [elem.type for elem in module.elems]
    ctx.data_count = module.data_count if module.data_count is not None else len(module.datas)
    ctx.refs = _declared_refs(module)

    # Globals: initializers may only read imported globals (spec 3.4.4, WebAssembly 2.0).
    const_ctx = Context(types=ctx.types, funcs=ctx.funcs, tables=ctx.tables, mems=ctx.mems,
                        globals=imported_globals, refs=ctx.refs)
    for glob in module.globals:
        _check_const(const_ctx, glob.init, glob.type.valtype)
        ctx.globals.append(glob.type)
    for elem in module.elems:
        for init in elem.init:
            _check_const(ctx, init, elem.type)
        if elem.mode == S.ACTIVE:
            if ctx.table(elem.table, _error).elem != elem.type:
                raise ValidationError("type mismatch")
            _check_const(ctx, elem.offset, "i32")
    for data in module.datas:
        if data.mode == S.ACTIVE:
            ctx.memory(data.memory, _error)
            _check_const(ctx, data.offset, "i32")
    if module.start is not None:
        if ctx.func(module.start, _error) != S.FuncType((), ()):
            raise ValidationError("start function")
    _check_exports(module, ctx)

    infos = []
    for i, func in enumerate(module.funcs):
        index = num_imported_funcs + i
        ftype = ctx.funcs[index]
        locals_ = tuple(t for count, t in func.code.locals for _ in range(count))
        infos.append(FuncValidator(ctx, index, ftype, ftype.params + locals_, func.code.body).run())
    return ValidatedModule(module, ctx, infos, num_imported_funcs)


def _check_limits(limits: S.Limits, bound: int, message: str) -> None:
    if limits.min > bound or (limits.max is not None and limits.max > bound):
        raise ValidationError(message)
    if limits.max is not None and limits.min > limits.max:
        raise ValidationError("size minimum must not be greater than maximum")


def _check_table(table: S.TableType) -> None:
    _check_limits(table.limits, 0xFFFFFFFF, "table size must be at most 2^32-1")


def _check_memory(mem: S.MemoryType) -> None:
    _check_limits(mem.limits, MAX_PAGES, "memory size must be at most 65536 pages (4GiB)")


def _declared_refs(module: S.Module) -> set[int]:
    """Function indices that appear outside function bodies (spec 3.4.10, C.refs)."""
    refs: set[int] = set()
    exprs: list[list[S.Instr]] = [g.init for g in module.globals]
    for elem in module.elems:
        exprs.extend(elem.init)
    for expr in exprs:
        refs.update(imm for op, imm, _ in expr if op.name == "ref.func")
    refs.update(e.index for e in module.exports if e.kind == S.FUNC)
    return refs


def _check_const(ctx: Context, expr: list[S.Instr] | None, expected: str) -> None:
    """A constant expression of one value of type ``expected`` (spec 3.3.10)."""
    assert expr is not None
    stack: list[str] = []
    for op, imm, _ in expr:
        name = op.name
        if name not in _CONST_OPS:
            raise ValidationError("constant expression required")
        if name == "end":
            break
        if name == "global.get":
            glob = ctx.global_(imm, _error)
            if glob.mutable:
                raise ValidationError("constant expression required")
            stack.append(glob.valtype)
        elif name == "ref.null":
            stack.append(imm)
        elif name == "ref.func":
            ctx.func(imm, _error)
            stack.append("funcref")
        else:
            stack.append(BY_NAME[name].results[0])  # type: ignore[index]
    if stack != [expected]:
        raise ValidationError("type mismatch")


def _check_exports(module: S.Module, ctx: Context) -> None:
    seen: set[str] = set()
    lookups: dict[str, Any] = {S.FUNC: ctx.func, S.TABLE: ctx.table, S.MEMORY: ctx.memory,
                               S.GLOBAL: ctx.global_}
    for export in module.exports:
        if export.name in seen:
            raise ValidationError("duplicate export name")
        seen.add(export.name)
        lookups[export.kind](export.index, _error)
