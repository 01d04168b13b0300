"""Module instantiation (spec 4.5.4): import checks, allocation, segment initialization, start.

The tier is not known here: ``instantiate`` takes an ``install`` hook that fills each new
function's ``call`` slot, so the runtime never imports an execution tier.
Imports: structure, errors, validate (types only), runtime.store, runtime.memory, runtime.vmctx.
"""

from __future__ import annotations

import ctypes
from array import array
from collections.abc import Callable
from typing import Any

from .. import structure as S
from ..errors import LinkError, Trap, TrapCode, WasmjitError
from ..validate import ValidatedModule
from .memory import PAGE_SIZE, LinearMemory
from .store import (
    MAX_INSTANCE_TABLE_ELEMENTS,
    MAX_TABLE_ELEMENTS,
    Function,
    GlobalInst,
    Store,
    TableInst,
    WasmFunction,
)
from .vmctx import VMContext

Extern = Function | TableInst | LinearMemory | GlobalInst


class Instance:
    """A module instance: its index spaces, segments, exports and vmctx."""

    def __init__(self, store: Store, vmod: ValidatedModule, name: str | None = None) -> None:
        self.store = store
        self.vmod = vmod
        self.module = vmod.module
        self.name = name or self.module.names.module
        self.funcs: list[Function] = []
        self.tables: list[TableInst] = []
        self.mems: list[LinearMemory] = []
        self.globals: list[GlobalInst] = []
        self.elems: list[array] = []  # element segments as handle arrays (empty once dropped)
        self.datas: list[bytes] = []  # data segments (empty once dropped)
        self.exports: dict[str, Extern] = {}
        self.type_ids = [store.type_id(t) for t in self.module.types]
        self.vmctx = VMContext()
        self._vm_arrays: list[Any] = []  # keeps the arrays vmctx points into alive

    def func_name(self, index: int) -> str | None:
        return self.module.names.funcs.get(index)

    def _fill_vmctx(self) -> None:
        """Point the vmctx at this instance's memory, globals, tables and type ids."""
        vm = self.vmctx
        vm.store = ctypes.addressof(self.store.vm)
        for func in self.funcs:
            if isinstance(func, WasmFunction) and func.instance is self:
                self.store.func_arrays.vmctx[func.handle] = ctypes.addressof(vm)
        if self.mems:
            mem = self.mems[0]
            vm.memory_base, vm.memory_size = mem.base, mem.size
            mem.grow_hooks.append(self._memory_grown)
        arrays = {
            "global_ptrs": (ctypes.c_uint64 * max(1, len(self.globals)))(*(g.address for g in self.globals)),
            "tables": (ctypes.c_uint64 * max(1, len(self.tables)))(*(t.vm_address for t in self.tables)),
            "type_ids": (ctypes.c_uint32 * max(1, len(self.type_ids)))(*self.type_ids),
        }
        for field, arr in arrays.items():
            setattr(vm, field, ctypes.addressof(arr))
            self._vm_arrays.append(arr)

    def _memory_grown(self, mem: LinearMemory) -> None:
        self.vmctx.memory_size = mem.size


def _incompatible(imp: S.Import, why: str) -> LinkError:
    return LinkError(f"incompatible import type for `{imp.module}::{imp.name}`: {why}")


def _limits_match(actual_min: int, actual_max: int | None, declared: S.Limits) -> bool:
    """Import subtyping of limits (spec 4.5.3.x): at least as large, at most as growable."""
    if actual_min < declared.min:
        return False
    if declared.max is None:
        return True
    return actual_max is not None and actual_max <= declared.max


def check_import(module: S.Module, imp: S.Import, ext: Any) -> None:
    """Raise LinkError unless ``ext`` matches the import's declared type."""
    if imp.kind == S.FUNC:
        expected = module.types[imp.desc]
        if not isinstance(ext, Function):
            raise _incompatible(imp, "expected a function")
        if ext.type != expected:
            raise _incompatible(imp, f"expected {expected}, found {ext.type}")
    elif imp.kind == S.TABLE:
        if not isinstance(ext, TableInst):
            raise _incompatible(imp, "expected a table")
        if ext.elem != imp.desc.elem or not _limits_match(ext.size, ext.max, imp.desc.limits):
            raise _incompatible(imp, "table types differ")
    elif imp.kind == S.MEMORY:
        if not isinstance(ext, LinearMemory):
            raise _incompatible(imp, "expected a memory")
        if not _limits_match(ext.pages, ext.declared_max, imp.desc.limits):
            raise _incompatible(imp, "memory limits differ")
    else:
        if not isinstance(ext, GlobalInst):
            raise _incompatible(imp, "expected a global")
        if ext.type != imp.desc:
            raise _incompatible(imp, "global types differ")


def eval_const(inst: Instance, expr: list[S.Instr]) -> Any:
    """Evaluate a validated constant expression to a raw value."""
    op, imm, _ = expr[0]
    name = op.name
    if name == "global.get":
        return inst.globals[imm].value
    if name == "ref.null":
        return 0
    if name == "ref.func":
        return inst.funcs[imm].handle
    return imm  # i32/i64 (unsigned), f32 (bits), f64 (float) immediates are raw values already


def instantiate(store: Store, vmod: ValidatedModule, imports: list[Any],
                install: Callable[[WasmFunction], None], name: str | None = None) -> Instance:
    """Instantiate ``vmod`` with resolved ``imports`` (in import order); runs the start function.

    Raises LinkError for mismatched imports and Trap when a segment does not fit or the start
    function traps (the effects that happened before the trap stay, as the spec requires).
    """
    module = vmod.module
    if len(imports) != len(module.imports):
        raise LinkError(f"expected {len(module.imports)} imports, found {len(imports)}")
    store.check_limits([t.limits.min for t in module.tables], [m.limits.min for m in module.mems])
    inst = Instance(store, vmod, name)
    for imp, ext in zip(module.imports, imports, strict=True):
        check_import(module, imp, ext)
        {S.FUNC: inst.funcs, S.TABLE: inst.tables, S.MEMORY: inst.mems, S.GLOBAL: inst.globals}[
            imp.kind].append(ext)
    for info in vmod.func_infos:
        func = WasmFunction(store, info.type, inst, info.index, info)
        inst.funcs.append(func)
    budget = [MAX_INSTANCE_TABLE_ELEMENTS]  # shared by this instance's tables, also when growing
    for ttype in module.tables:
        if ttype.limits.min > MAX_TABLE_ELEMENTS:
            raise WasmjitError(f"table minimum of {ttype.limits.min} elements exceeds the "
                               f"implementation limit of {MAX_TABLE_ELEMENTS}")
        if ttype.limits.min > budget[0]:
            total = sum(t.limits.min for t in module.tables)
            raise WasmjitError(f"the module's tables need {total} elements in total, more than the "
                               f"implementation limit of {MAX_INSTANCE_TABLE_ELEMENTS}")
        budget[0] -= ttype.limits.min
        inst.tables.append(TableInst(ttype.elem, ttype.limits.min, ttype.limits.max, budget=budget))
        inst.tables[-1].limits = store.limits
        store.table_count += 1
    for mtype in module.mems:
        try:
            inst.mems.append(LinearMemory(mtype.limits.min, mtype.limits.max))
            inst.mems[-1].limits = store.limits
            store.memory_count += 1
        except MemoryError as err:  # the address space reservation or the commit failed
            raise WasmjitError(f"cannot allocate a linear memory of {mtype.limits.min} pages: "
                               f"{err}") from None
    for glob in module.globals:
        inst.globals.append(GlobalInst(glob.type, eval_const(inst, glob.init)))
    for elem in module.elems:
        inst.elems.append(array("Q", (eval_const(inst, e) for e in elem.init)))
    inst.datas = [data.init for data in module.datas]
    kinds = {S.FUNC: inst.funcs, S.TABLE: inst.tables, S.MEMORY: inst.mems, S.GLOBAL: inst.globals}
    for export in module.exports:
        inst.exports[export.name] = kinds[export.kind][export.index]
    inst._fill_vmctx()
    for func in inst.funcs[vmod.num_imported_funcs:]:
        install(func)  # type: ignore[arg-type]
    store.instances.append(inst)
    _init_segments(inst)
    if module.start is not None:
        inst.funcs[module.start].call([])
    return inst


def _init_segments(inst: Instance) -> None:
    """Active element then data segments, in order; each is dropped after use (spec 4.5.4)."""
    module = inst.module
    for i, elem in enumerate(module.elems):
        if elem.mode == S.ACTIVE:
            offset = eval_const(inst, elem.offset)  # type: ignore[arg-type]
            table_init(inst.tables[elem.table], inst.elems[i], offset, 0, len(inst.elems[i]))
        if elem.mode != S.PASSIVE:
            inst.elems[i] = array("Q")
    for i, data in enumerate(module.datas):
        if data.mode == S.ACTIVE:
            offset = eval_const(inst, data.offset)  # type: ignore[arg-type]
            memory_init(inst.mems[data.memory], inst.datas[i], offset, 0, len(inst.datas[i]))
            inst.datas[i] = b""


def table_init(table: TableInst, segment: array, dst: int, src: int, n: int) -> None:
    """table.init semantics: bounds-check both ranges first, then copy (spec 4.4.6.9)."""
    if src + n > len(segment) or dst + n > table.size:
        raise Trap(TrapCode.TABLE_OUT_OF_BOUNDS)
    table.elements[dst : dst + n] = segment[src : src + n]


def memory_init(mem: LinearMemory, data: bytes, dst: int, src: int, n: int) -> None:
    """memory.init semantics: bounds-check both ranges first, then copy (spec 4.4.7.12)."""
    if src + n > len(data) or dst + n > mem.size:
        raise Trap(TrapCode.MEMORY_OUT_OF_BOUNDS)
    mem.view[dst : dst + n] = data[src : src + n]


__all__ = ["Instance", "instantiate", "check_import", "eval_const", "table_init", "memory_init",
           "PAGE_SIZE"]
