"""The vmctx: the per-instance block of raw memory native code reads through a pinned register.

This module is the one place that defines its layout; native code uses the ``OFFSET_*``
constants derived from the ctypes structure below, and the runtime keeps the fields current
(memory base/size after growth, table base/length after growth, global cell addresses).
The interpreter keeps all state in the same places (global cells, table arrays, linear memory),
so a function can change tiers at any call. Imports: stdlib only.
"""

from __future__ import annotations

import ctypes

u64 = ctypes.c_uint64


class VMTable(ctypes.Structure):
    """One table as native code sees it: element array address and length (8-byte handles)."""

    _fields_ = [("base", u64), ("length", u64)]


class VMContext(ctypes.Structure):
    """Per-instance context. Arrays are owned by the instance and indexed by wasm indices."""

    _fields_ = [
        ("memory_base", u64),  # address of linear memory 0 (0 if the instance has none)
        ("memory_size", u64),  # accessible bytes of memory 0
        ("trap_code", ctypes.c_uint32),  # set by helpers/trap stubs; 0 = no trap
        ("_pad0", ctypes.c_uint32),
        ("saved_rsp", u64),  # stack pointer of the innermost native entry (trap unwinding)
        ("stack_limit", u64),  # native code traps with STACK_OVERFLOW below this address
        ("epoch_ptr", u64),  # address of the engine's epoch counter
        ("epoch_deadline", u64),
        ("fuel", ctypes.c_int64),
        ("func_ptrs", u64),  # -> u64[num funcs]: code address per function index
        ("func_vmctx", u64),  # -> u64[num funcs]: vmctx address per function index (imports)
        ("global_ptrs", u64),  # -> u64[num globals]: address of each global's value cell
        ("tables", u64),  # -> u64[num tables]: address of each table's VMTable
        ("type_ids", u64),  # -> u32[num types]: store-wide canonical signature id per type
    ]


def _offsets() -> dict[str, int]:
    return {name: getattr(VMContext, name).offset for name, _ in VMContext._fields_}


OFFSETS: dict[str, int] = _offsets()
OFFSET_MEMORY_BASE = OFFSETS["memory_base"]
OFFSET_MEMORY_SIZE = OFFSETS["memory_size"]
OFFSET_TRAP_CODE = OFFSETS["trap_code"]
OFFSET_SAVED_RSP = OFFSETS["saved_rsp"]
OFFSET_STACK_LIMIT = OFFSETS["stack_limit"]
OFFSET_EPOCH_PTR = OFFSETS["epoch_ptr"]
OFFSET_EPOCH_DEADLINE = OFFSETS["epoch_deadline"]
OFFSET_FUEL = OFFSETS["fuel"]
OFFSET_FUNC_PTRS = OFFSETS["func_ptrs"]
OFFSET_FUNC_VMCTX = OFFSETS["func_vmctx"]
OFFSET_GLOBAL_PTRS = OFFSETS["global_ptrs"]
OFFSET_TABLES = OFFSETS["tables"]
OFFSET_TYPE_IDS = OFFSETS["type_ids"]
