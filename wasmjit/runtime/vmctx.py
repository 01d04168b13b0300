"""The vmctx: the raw memory native code reads, laid out in this one place.

Two structures: one :class:`VMContext` per instance (its memory, globals, tables, type ids), read
through the pinned register r15, and one :class:`VMStore` per store, which every vmctx points to
(trap state, the stack limit, epoch and fuel, and the function arrays). The function arrays are
indexed by a function's store handle: its current code address (tier-up writes it, so every
direct and indirect call site switches at once), its instance's vmctx and its canonical type id.
They live in one fixed mmap'd reservation (:class:`FuncArrays`) that never moves, so generated
code may embed their addresses. Native code uses the ``OFFSET_*``/``STORE_*`` constants derived
from the ctypes structures below; the runtime keeps the fields current (memory base/size after
growth, table base/length after growth, global cell addresses), and the interpreter keeps all
state in the same places, so a function can change tiers at any call. Imports: stdlib only.
"""

from __future__ import annotations

import ctypes
import mmap
import threading

u64 = ctypes.c_uint64
u32 = ctypes.c_uint32

MAX_FUNCS = 1 << 20  # functions per store (the arrays reserve address space for this many)
_MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000)  # Linux; Python 3.11 lacks the name


class VMTable(ctypes.Structure):
    """One table as native code sees it: element array address and length (8-byte handles)."""

    _fields_ = [("base", u64), ("length", u64)]


class VMStore(ctypes.Structure):
    """Per-store state shared by all instances' native code."""

    _fields_ = [
        ("saved_rsp", u64),  # stack pointer of the innermost native entry (trap unwinding)
        ("stack_limit", u64),  # native code traps with STACK_OVERFLOW below this address
        ("stack_budget", u64),  # the outermost entry sets stack_limit this far below its rsp
        ("depth", u64),  # wasm call depth (native code counts it like the interpreter)
        ("max_depth", u64),  # STACK_OVERFLOW when a call would go deeper
        ("trap_code", u32),  # set by trap stubs and failed host calls; 0 = no trap
        ("_pad0", u32),
        ("trap_pc", u64),  # code address of the last trap (backtraces)
        ("trap_rbp", u64),  # frame pointer there (backtraces walk the rbp chain)
        ("trap_offset", u64),  # wasm byte offset of the trapping instruction
        ("host_callback", u64),  # C function: calls a non-native function (interpreter or host)
        ("helper_callback", u64),  # C function: runs a runtime helper (memory.grow, bulk ops...)
        ("trap_callback", u64),  # C function: records a trap's backtrace while its stack is intact
        ("epoch_ptr", u64),  # -> u64: the engine's epoch (engine.increment_epoch() adds one)
        ("epoch_deadline", u64),  # INTERRUPT trap at a function entry or loop header once reached
        ("fuel", ctypes.c_int64),  # fuel left (consume_fuel): charged per basic block
        ("fuel_saved", ctypes.c_int64),  # fuel at the last call, return or unreachable: a trap
        # loses what was charged since (as wasmtime, whose fuel counter lives in a register)
        ("func_code", u64),  # -> u64[MAX_FUNCS]: code address per function handle
        ("func_vmctx", u64),  # -> u64[MAX_FUNCS]: the function's instance vmctx (0: host function)
        ("func_type", u64),  # -> u32[MAX_FUNCS]: canonical type id per function handle
    ]


class VMContext(ctypes.Structure):
    """Per-instance context. Arrays are owned by the instance and indexed by wasm indices."""

    _fields_ = [
        ("memory_base", u64),  # address of linear memory 0 (0 if the instance has none)
        ("memory_size", u64),  # accessible bytes of memory 0
        ("store", u64),  # -> VMStore
        ("global_ptrs", u64),  # -> u64[num globals]: address of each global's value cell
        ("tables", u64),  # -> u64[num tables]: address of each table's VMTable
        ("type_ids", u64),  # -> u32[num types]: store-wide canonical signature id per type
    ]


class FuncArrays:
    """The per-handle function arrays of one store, at fixed addresses (index 0 is unused: handle 0
    is the null reference)."""

    def __init__(self) -> None:
        size = MAX_FUNCS * (8 + 8 + 4)
        self._map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_NORESERVE)
        self.code = (u64 * MAX_FUNCS).from_buffer(self._map, 0)
        self.vmctx = (u64 * MAX_FUNCS).from_buffer(self._map, 8 * MAX_FUNCS)
        self.type = (u32 * MAX_FUNCS).from_buffer(self._map, 16 * MAX_FUNCS)

    def fill(self, vm: VMStore) -> None:
        vm.func_code, vm.func_vmctx, vm.func_type = (ctypes.addressof(a) for a in (self.code, self.vmctx,
                                                                                    self.type))


class EpochCounter:
    """An engine's epoch: one u64 on a page of its own (native code reads it through
    ``VMStore.epoch_ptr``; Unicorn maps the page). ``increment`` may run on any thread."""

    def __init__(self) -> None:
        self._map = mmap.mmap(-1, mmap.PAGESIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.cell = u64.from_buffer(self._map)
        self.address = ctypes.addressof(self.cell)
        self.words = memoryview(self._map).cast("Q")  # words[0] is the epoch, for the interpreter
        self._lock = threading.Lock()

    def increment(self) -> None:
        with self._lock:  # readers need no lock: an aligned 8-byte store is atomic on x86-64
            self.cell.value += 1


def _offsets(struct: type[ctypes.Structure]) -> dict[str, int]:
    return {name: getattr(struct, name).offset for name, _ in struct._fields_}


OFFSETS: dict[str, int] = _offsets(VMContext)
OFFSET_MEMORY_BASE = OFFSETS["memory_base"]
OFFSET_MEMORY_SIZE = OFFSETS["memory_size"]
OFFSET_STORE = OFFSETS["store"]
OFFSET_GLOBAL_PTRS = OFFSETS["global_ptrs"]
OFFSET_TABLES = OFFSETS["tables"]
OFFSET_TYPE_IDS = OFFSETS["type_ids"]

STORE_OFFSETS: dict[str, int] = _offsets(VMStore)
STORE_SAVED_RSP = STORE_OFFSETS["saved_rsp"]
STORE_STACK_LIMIT = STORE_OFFSETS["stack_limit"]
STORE_STACK_BUDGET = STORE_OFFSETS["stack_budget"]
STORE_DEPTH = STORE_OFFSETS["depth"]
STORE_MAX_DEPTH = STORE_OFFSETS["max_depth"]
STORE_TRAP_CODE = STORE_OFFSETS["trap_code"]
STORE_TRAP_PC = STORE_OFFSETS["trap_pc"]
STORE_TRAP_RBP = STORE_OFFSETS["trap_rbp"]
STORE_TRAP_OFFSET = STORE_OFFSETS["trap_offset"]
STORE_HOST_CALLBACK = STORE_OFFSETS["host_callback"]
STORE_HELPER_CALLBACK = STORE_OFFSETS["helper_callback"]
STORE_TRAP_CALLBACK = STORE_OFFSETS["trap_callback"]
STORE_EPOCH_PTR = STORE_OFFSETS["epoch_ptr"]
STORE_EPOCH_DEADLINE = STORE_OFFSETS["epoch_deadline"]
STORE_FUEL = STORE_OFFSETS["fuel"]
STORE_FUEL_SAVED = STORE_OFFSETS["fuel_saved"]
STORE_FUNC_CODE = STORE_OFFSETS["func_code"]
STORE_FUNC_VMCTX = STORE_OFFSETS["func_vmctx"]
STORE_FUNC_TYPE = STORE_OFFSETS["func_type"]
