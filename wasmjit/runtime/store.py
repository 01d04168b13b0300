"""Runtime objects: the store, functions, globals and tables (spec 4.2).

Values inside the engine ("raw" values): i32/i64 are unsigned ints, f32 is its bit pattern,
f64 a Python float, and a reference is an int handle (0 = null): a function's handle is its
position in ``Store.funcs`` plus one, an externref's handle indexes ``Store.externs`` the same
way. Handles let tables and globals live in plain typed arrays that native code can address.

Every function has a ``call`` slot: ``call(args: list) -> list`` in raw values. The tier
policy fills it (interpreter entry, native trampoline, ...), and replacing it switches every
caller to the new tier. Imports: structure, errors, runtime.memory, runtime.vmctx.
"""

from __future__ import annotations

import ctypes
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import TrapCode, WasmjitError
from ..structure import FuncType, GlobalType
from .memory import PAGE_SIZE
from .vmctx import MAX_FUNCS, EpochCounter, FuncArrays, VMStore, VMTable

if TYPE_CHECKING:
    from .instance import Instance

# Typed-array codes of a value's cell, by value type.
CELL_CODES = {"i32": "I", "f32": "I", "i64": "Q", "f64": "d", "funcref": "Q", "externref": "Q"}
DEFAULTS: dict[str, Any] = {"i32": 0, "i64": 0, "f32": 0, "f64": 0.0, "funcref": 0, "externref": 0}
MAX_TABLE_ELEMENTS = 10_000_000  # implementation limit on table growth (80 MB of handles)
# ... and on all the tables one instance defines together (else a few bytes per table type could
# ask for gigabytes: 200 tables of 10M elements)
MAX_INSTANCE_TABLE_ELEMENTS = 10_000_000
DEFAULT_MAX_CALL_DEPTH = 10_000  # wasm call depth before "call stack exhausted"
DEFAULT_MAX_WASM_STACK = 512 << 10  # native stack (bytes) below a store's outermost entry
MAX_WASM_STACK = 4 << 20  # the most Config.max_wasm_stack may ask (host thread stacks are 8 MiB)

RawCall = Callable[[list], list]


class Function:
    """A function instance. ``handle`` is its funcref value in this store."""

    __slots__ = ("type", "type_id", "store", "handle", "call", "__weakref__")

    def __init__(self, store: Store, ftype: FuncType) -> None:
        self.type = ftype
        self.type_id = store.type_id(ftype)  # compared by call_indirect
        self.store = store
        self.call: RawCall = self._unset
        self.handle = store.add_func(self)

    def _unset(self, args: list) -> list:  # pragma: no cover - replaced before any call
        raise RuntimeError("function called before its tier was installed")


class HostFunction(Function):
    """A function implemented in Python: ``fn(raw args) -> raw results`` (the API converts)."""

    __slots__ = ("fn", "name")

    def __init__(self, store: Store, ftype: FuncType, fn: RawCall, name: str = "host") -> None:
        super().__init__(store, ftype)
        self.fn = fn
        self.name = name
        self.call = fn


class WasmFunction(Function):
    """A function defined by a module. Tier state and counters live here."""

    __slots__ = ("instance", "index", "info", "name", "entries", "backedges", "tier", "code",
                 "compile_seconds", "compile_error", "verify_report")

    def __init__(self, store: Store, ftype: FuncType, instance: Instance, index: int, info: Any) -> None:
        super().__init__(store, ftype)
        self.instance = instance
        self.index = index  # index in the module's function index space
        self.info = info  # validate.FuncInfo
        self.name = instance.func_name(index)
        self.entries = 0  # counted by the interpreter on every call
        # [loop back-edges taken in the interpreter, the count at which the interpreter asks for
        # on-stack replacement (0: never)] -- a cell the interpreter's closures share
        self.backedges = [0, 0]
        self.tier = "none"  # which tier's code `call` currently runs
        self.code: Any = None  # the tier's compiled form (interpreter closures, native code)
        self.compile_seconds = 0.0  # time spent compiling it to native code
        self.compile_error: Exception | None = None  # why the JIT could not compile it
        self.verify_report: Any = None  # jit.verify.VerifyReport, when verify-before-install ran


class GlobalInst:
    """A global: its type and a one-element typed array ``cell`` holding the raw value."""

    __slots__ = ("type", "cell", "__weakref__")

    def __init__(self, gtype: GlobalType, value: Any) -> None:
        self.type = gtype
        self.cell = array(CELL_CODES[gtype.valtype], [value])

    @property
    def value(self) -> Any:
        return self.cell[0]

    @value.setter
    def value(self, raw: Any) -> None:
        self.cell[0] = raw

    @property
    def address(self) -> int:
        return self.cell.buffer_info()[0]


@dataclass
class StoreLimits:
    """``Store.set_limits``: None is no limit. Sizes are per memory (bytes) and per table
    (elements), counts are of what instantiation creates in the store."""

    memory_size: int | None = None
    table_elements: int | None = None
    instances: int | None = None
    tables: int | None = None
    memories: int | None = None


class TableInst:
    """A table of reference handles, with the ``VMTable`` native code reads kept current."""

    __slots__ = ("elem", "elements", "max", "vm", "budget", "limits", "__weakref__")

    def __init__(self, elem: str, size: int, maximum: int | None, init: int = 0,
                 budget: list[int] | None = None) -> None:
        self.elem = elem
        self.elements = array("Q", [init]) * size
        self.max = maximum
        # [elements left] shared by the tables of one instance (None: only the per-table limit)
        self.budget = budget
        self.limits: StoreLimits | None = None  # the owning store's, if any
        self.vm = VMTable()
        self._sync()

    def _sync(self) -> None:
        self.vm.base, self.vm.length = self.elements.buffer_info()

    @property
    def size(self) -> int:
        return len(self.elements)

    def grow(self, delta: int, init: int) -> int:
        """Grow by ``delta`` elements set to ``init``; the old size, or -1 (spec 4.4.6.6), also
        past the store's ``table_elements`` limit."""
        old = len(self.elements)
        new = old + delta
        bound = min(self.max if self.max is not None else 0xFFFFFFFF, MAX_TABLE_ELEMENTS)
        limit = self.limits.table_elements if self.limits is not None else None
        if new > bound or (limit is not None and new > limit):
            return -1
        if self.budget is not None:
            if delta > self.budget[0]:
                return -1
            self.budget[0] -= delta
        self.elements.extend(array("Q", [init]) * delta)
        self._sync()
        return old

    @property
    def vm_address(self) -> int:
        return ctypes.addressof(self.vm)


class Store:
    """All runtime objects of one store, plus execution state shared by its tiers."""

    def __init__(self, max_call_depth: int = DEFAULT_MAX_CALL_DEPTH, consume_fuel: bool = False,
                 epoch: EpochCounter | None = None, max_wasm_stack: int = DEFAULT_MAX_WASM_STACK) -> None:
        self.funcs: list[Function] = []  # handle - 1 -> function
        self.externs: list[Any] = []  # handle - 1 -> host object
        self._extern_ids: dict[int, int] = {}
        self._free_externs: list[int] = []  # handles collect_externs released, reused first
        self.type_ids: dict[FuncType, int] = {}  # canonical signature ids (call_indirect checks)
        self.instances: list[Instance] = []
        # Tables and globals the embedder created (the API's Table and Global): the store owns
        # them, as it owns its instances, for as long as it lives.
        self.host_tables: list[TableInst] = []
        self.host_globals: list[GlobalInst] = []
        self.depth = 0  # current wasm call depth (all tiers count it)
        self.max_call_depth = max_call_depth
        self.caller_instance: Instance | None = None  # the wasm instance calling a host function
        self.vm = VMStore()  # what native code of every instance in this store shares
        self.func_arrays = FuncArrays()
        self.func_arrays.fill(self.vm)
        self.default_code = 0  # code slot of a function not compiled yet (set once native code runs)
        # Fuel and epochs: every tier charges and checks them in the VMStore (``words`` views it
        # as signed and ``uwords`` as unsigned 64-bit words for the interpreter).
        self.consume_fuel = consume_fuel
        self.fuel_reserve = 0  # fuel beyond what the signed 64-bit counter holds
        self.epoch_interruption = epoch is not None
        self.epoch = epoch  # the engine's, read only with epoch_interruption
        self.vm.epoch_ptr = epoch.address if epoch is not None else 0
        self.limits = StoreLimits()
        self.memory_count = self.table_count = 0  # created by instantiation (limits count them)
        self.vm.stack_budget = max_wasm_stack
        self.words = memoryview(self.vm).cast("B").cast("q")
        self.uwords = memoryview(self.vm).cast("B").cast("Q")

    def check_limits(self, tables: list[int], memories: list[int]) -> None:
        """Before an instance with tables and memories of these minimum sizes (elements, pages)
        is created: raise WasmjitError if it would exceed a limit (wasmtime's messages)."""
        limits = self.limits
        counts = (("instance", len(self.instances) + 1, limits.instances),
                  ("memory", self.memory_count + len(memories), limits.memories),
                  ("table", self.table_count + len(tables), limits.tables))
        for what, count, limit in counts:
            if limit is not None and count > limit:
                raise WasmjitError(f"resource limit exceeded: {what} count too high at {count}")
        self.check_sizes(tables, memories)

    def check_sizes(self, tables: list[int], memories: list[int]) -> None:
        """Raise WasmjitError if a table or memory of these minimum sizes would exceed the
        store's table_elements or memory_size limit (instantiation and the host's Table/Memory)."""
        limits = self.limits
        for pages in memories:
            if limits.memory_size is not None and pages * PAGE_SIZE > limits.memory_size:
                raise WasmjitError(f"memory minimum size of {pages} pages exceeds memory limits")
        for elements in tables:
            if limits.table_elements is not None and elements > limits.table_elements:
                raise WasmjitError(f"table minimum size of {elements} elements exceeds table limits")

    def set_fuel(self, fuel: int) -> None:
        injected = min(fuel, (1 << 63) - 1)
        self.fuel_reserve = fuel - injected
        self.vm.fuel = self.vm.fuel_saved = injected

    def get_fuel(self) -> int:
        """Fuel left: never negative, though straight-line code may run past zero before the next
        check (a function entry or loop header) traps."""
        return max(0, self.fuel_reserve + self.vm.fuel)

    def after_trap(self, code: TrapCode | None) -> None:
        """A trap leaves wasm: fuel charged since the last call, return or unreachable is not
        counted (wasmtime keeps that count in a register), except when fuel ran out."""
        if not self.consume_fuel:
            return
        if code is TrapCode.OUT_OF_FUEL:
            self.vm.fuel_saved = self.vm.fuel
        else:
            self.vm.fuel = self.vm.fuel_saved

    def add_func(self, func: Function) -> int:
        """Register ``func``; its handle (also its index in the native function arrays)."""
        self.funcs.append(func)
        handle = len(self.funcs)
        if handle >= MAX_FUNCS:
            raise WasmjitError(f"a store holds at most {MAX_FUNCS - 1} functions")
        self.func_arrays.type[handle] = func.type_id
        self.func_arrays.code[handle] = self.default_code
        return handle

    def func(self, handle: int) -> Function | None:
        return self.funcs[handle - 1] if handle else None

    def extern_handle(self, obj: Any) -> int:
        """The externref handle of a host object (None is the null reference)."""
        if obj is None:
            return 0
        handle = self._extern_ids.get(id(obj))
        if handle is None:
            if self._free_externs:
                handle = self._free_externs.pop()
                self.externs[handle - 1] = obj
            else:
                self.externs.append(obj)
                handle = len(self.externs)
            self._extern_ids[id(obj)] = handle
        return handle

    def extern(self, handle: int) -> Any:
        return self.externs[handle - 1] if handle else None

    def collect_externs(self) -> int:
        """Let go of every host object no table, global or element segment refers to any more,
        so Python can free it; the number released. Only while no wasm runs: its frames hold
        handles too."""
        assert self.depth == 0, "externrefs are collected only while no wasm runs"
        live = self._extern_roots()
        released = 0
        for handle, obj in enumerate(self.externs, 1):
            if obj is not None and handle not in live:
                del self._extern_ids[id(obj)]
                self.externs[handle - 1] = None
                self._free_externs.append(handle)
                released += 1
        return released

    def _extern_roots(self) -> set[int]:
        """The externref handles held by tables, globals and element segments of this store."""
        tables = [t for inst in self.instances for t in inst.tables] + self.host_tables
        globs = [g for inst in self.instances for g in inst.globals] + self.host_globals
        live = {h for t in tables if t.elem == "externref" for h in t.elements}
        live.update(g.value for g in globs if g.type.valtype == "externref")
        for inst in self.instances:
            for elem, handles in zip(inst.module.elems, inst.elems, strict=True):
                if elem.type == "externref":
                    live.update(handles)
        return live

    def type_id(self, ftype: FuncType) -> int:
        """Structurally equal signatures share one id (spec: call_indirect compares types)."""
        tid = self.type_ids.get(ftype)
        if tid is None:
            tid = self.type_ids[ftype] = len(self.type_ids) + 1
        return tid
