"""Proposals an engine's Config switched off (``Config.wasm_multi_value = False``, ...): a module
using one is invalid, with the message wasmtime's validator gives. Only the WebAssembly 2.0
proposals wasmjit implements can be switched off: multi-value, bulk memory, reference types.

The check is one pass over a decoded module, made only when something is switched off.
Imports: structure, errors.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import structure as S
from ..errors import ValidationError

MULTI_VALUE, BULK_MEMORY, REFERENCE_TYPES = "multi_value", "bulk_memory", "reference_types"
FEATURES = (MULTI_VALUE, BULK_MEMORY, REFERENCE_TYPES)

_MULTI_RESULTS = "func type returns multiple values but the multi-value feature is not enabled"
_BLOCK_TYPE = "blocks, loops, and ifs may only produce a resulttype when multi-value is not enabled"
_BULK = "bulk memory support is not enabled"
_BULK_SEGMENT = "bulk memory must be enabled"
_PASSIVE_DATA = "passive data segments require the bulk-memory proposal"
_REFS = "reference types support is not enabled"

_BULK_OPS = frozenset({"memory.init", "data.drop", "memory.copy", "memory.fill", "table.init",
                       "elem.drop", "table.copy"})
_REF_OPS = frozenset({"ref.null", "ref.is_null", "ref.func", "table.get", "table.set", "table.size",
                      "table.grow", "table.fill", "select_t"})
_REF_TYPES = frozenset({"funcref", "externref"})


def check_features(module: S.Module, disabled: frozenset[str]) -> None:
    """Raise ValidationError if ``module`` uses a proposal in ``disabled``."""
    if not disabled:
        return
    if MULTI_VALUE in disabled:
        _check_multi_value(module)
    if BULK_MEMORY in disabled:
        _check_bulk_memory(module)
    if REFERENCE_TYPES in disabled:
        _check_reference_types(module)


def _instructions(module: S.Module) -> Iterator[S.Instr]:
    for func in module.funcs:
        yield from func.code.body


def _check_multi_value(module: S.Module) -> None:
    if any(len(t.results) > 1 for t in module.types):
        raise ValidationError(_MULTI_RESULTS)
    for op, imm, offset in _instructions(module):
        if op.name in ("block", "loop", "if") and isinstance(imm, int):  # a type index
            raise ValidationError(_BLOCK_TYPE, offset=offset)


def _check_bulk_memory(module: S.Module) -> None:
    if any(data.mode == S.PASSIVE for data in module.datas):
        raise ValidationError(_PASSIVE_DATA)
    if any(elem.mode != S.ACTIVE for elem in module.elems):
        raise ValidationError(_BULK_SEGMENT)
    for op, _, offset in _instructions(module):
        if op.name in _BULK_OPS:
            raise ValidationError(_BULK, offset=offset)


def _check_reference_types(module: S.Module) -> None:
    if len(module.table_types()) > 1:
        raise ValidationError("multiple tables")
    value_types = [t for ftype in module.types for t in ftype.params + ftype.results]
    value_types += [g.valtype for g in module.global_types()]
    value_types += [t for func in module.funcs for _, t in func.code.locals]
    value_types += [t.elem for t in module.table_types() if t.elem != "funcref"]
    if _REF_TYPES.intersection(value_types):
        raise ValidationError(_REFS)
    for elem in module.elems:
        if elem.type != "funcref" or elem.table != 0 or any(e[0][0].name != "ref.func" for e in elem.init):
            raise ValidationError(_REFS)
    for op, imm, offset in _instructions(module):
        if _uses_reference_types(op.name, imm):
            raise ValidationError(_REFS, offset=offset)


def _uses_reference_types(name: str, imm: object) -> bool:
    if name in _REF_OPS or (name in ("block", "loop", "if") and imm in _REF_TYPES):
        return True
    if name in ("call_indirect", "table.init"):
        return imm[1] != 0  # type: ignore[index]
    if name == "table.copy":
        return imm != (0, 0)
    return False
