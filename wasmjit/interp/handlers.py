"""Closure factories for the instructions that are not numeric templates.

Every factory returns ``handler(R) -> next pc`` (pc 0 leaves the function). ``R`` is the frame:
locals first, then one slot per operand-stack height. Runtime semantics of tables and bulk
memory live in runtime.instance / runtime.store; these only adapt them to the frame.
Imports: errors, runtime.
"""

from __future__ import annotations

import ctypes
from array import array
from collections.abc import Callable
from typing import Any

from ..errors import Trap, TrapCode
from ..runtime import instance as rt
from ..runtime import vmctx as V
from ..runtime.memory import LinearMemory
from ..runtime.store import Function, GlobalInst, HostFunction, TableInst
from .templates import OsrRequest

Handler = Callable[[list], int]
M32 = 0xFFFFFFFF

# --- Moves and control ---------------------------------------------------------------------------


def copy(d: int, s: int, n: int) -> Handler:
    def copy(R: list) -> int:
        R[d] = R[s]
        return n
    return copy


def const(d: int, k: Any, n: int) -> Handler:
    def const(R: list) -> int:
        R[d] = k
        return n
    return const


def jump(t: int) -> Handler:
    def jump(R: list) -> int:
        return t
    return jump


def jump_back(counter: list, t: int) -> Handler:
    """An unconditional branch to a loop header: counts the back-edge."""
    def jump_back(R: list) -> int:
        counter[0] += 1
        if counter[0] == counter[1]:
            raise OsrRequest(t)
        return t
    return jump_back


def br_if(c: int, t: int, n: int) -> Handler:
    def br_if(R: list) -> int:
        return t if R[c] else n
    return br_if


def br_if_back(c: int, counter: list, t: int, n: int) -> Handler:
    def br_if_back(R: list) -> int:
        if R[c]:
            counter[0] += 1
            if counter[0] == counter[1]:
                raise OsrRequest(t)
            return t
        return n
    return br_if_back


def br_if_moves(c: int, moves: tuple, counter: list | None, t: int, n: int) -> Handler:
    """A conditional branch that carries values: ``moves`` are (dest, src, is_const)."""
    def br_if_moves(R: list) -> int:
        if R[c]:
            for d, s, is_const in moves:
                R[d] = s if is_const else R[s]
            if counter is not None:
                counter[0] += 1
                if counter[0] == counter[1]:
                    raise OsrRequest(t)
            return t
        return n
    return br_if_moves


def if_(c: int, n: int, e: int) -> Handler:
    def if_(R: list) -> int:
        return n if R[c] else e
    return if_


def br_table(c: int, targets: tuple, default: int) -> Handler:
    """Jump to ``targets[R[c]]`` (each a pc; moves are done by per-target stubs)."""
    count = len(targets)

    def br_table(R: list) -> int:
        i = R[c]
        return targets[i] if i < count else default
    return br_table


def _exit(R: list) -> int:
    return 0


def exit_() -> Handler:
    """Leave the function: its results are in the first stack slots."""
    return _exit


# --- Fuel and epochs (VMStore words, shared with native code) --------------------------------

FUEL, FUEL_SAVED, DEADLINE = V.STORE_FUEL // 8, V.STORE_FUEL_SAVED // 8, V.STORE_EPOCH_DEADLINE // 8


def fuel_charge(words: memoryview, cost: int, n: int) -> Handler:
    """Charge a run of instructions that always execute together (at its start)."""
    def fuel_charge(R: list) -> int:
        words[FUEL] -= cost
        return n
    return fuel_charge


def _burn(words: memoryview, cost: int) -> None:
    """Charge ``cost`` and trap once no fuel is left."""
    left = words[FUEL] - cost
    words[FUEL] = left
    if left <= 0:
        raise Trap(TrapCode.OUT_OF_FUEL)


def fuel_check(words: memoryview, cost: int, n: int) -> Handler:
    """A function entry (``cost``: the entry's charge) or a loop header (0)."""
    def fuel_check(R: list) -> int:
        _burn(words, cost)
        return n
    return fuel_check


def fuel_per_item(words: memoryview, count: int, grows: bool, factory: Callable[..., Handler],
                  *args: Any) -> Handler:
    """The handler ``factory(*args)`` of a bulk or grow instruction, then a charge of the items
    it handled (the operand in slot ``count``) and a fuel check (not after a failed grow)."""
    inner = factory(*args)
    result = count - 1 if grows and factory is table_grow else count

    def fuel_per_item(R: list) -> int:
        items = R[count]
        n = inner(R)
        if not (grows and R[result] == M32):  # a failed grow charges and checks nothing
            _burn(words, items)
        return n
    return fuel_per_item


def fuel_save(words: memoryview, n: int) -> Handler:
    """Before a call or ``unreachable``: what is charged so far survives a trap."""
    def fuel_save(R: list) -> int:
        words[FUEL_SAVED] = words[FUEL]
        return n
    return fuel_save


def fuel_exit(words: memoryview) -> Handler:
    def fuel_exit(R: list) -> int:
        words[FUEL_SAVED] = words[FUEL]
        return 0
    return fuel_exit


def epoch_check(epoch: memoryview, uwords: memoryview, n: int) -> Handler:
    """A function entry or loop header: trap once the engine's epoch reaches the deadline."""
    def epoch_check(R: list) -> int:
        if epoch[0] >= uwords[DEADLINE]:
            raise Trap(TrapCode.INTERRUPT)
        return n
    return epoch_check


def unreachable(n: int) -> Handler:
    def unreachable(R: list) -> int:
        raise Trap(TrapCode.UNREACHABLE)
    return unreachable


def select(d: int, a: Any, b: Any, c: int, kinds: str, n: int) -> Handler:
    """select: operands ``a``/``b`` are registers or constants as ``kinds`` says."""
    if kinds == "rr":
        def select_rr(R: list) -> int:
            R[d] = R[a] if R[c] else R[b]
            return n
        return select_rr
    if kinds == "rk":
        def select_rk(R: list) -> int:
            R[d] = R[a] if R[c] else b
            return n
        return select_rk
    if kinds == "kr":
        def select_kr(R: list) -> int:
            R[d] = a if R[c] else R[b]
            return n
        return select_kr

    def select_kk(R: list) -> int:
        R[d] = a if R[c] else b
        return n
    return select_kk


# --- Calls ---------------------------------------------------------------------------------------


def call(callee: Function, a: int, nargs: int, nresults: int, n: int) -> Handler:
    """Call through the callee's tier slot; arguments and results use slots a, a+1, ..."""
    b = a + nargs
    if nresults == 1:
        def call1(R: list) -> int:
            R[a] = callee.call(R[a:b])[0]
            return n
        return call1
    if nresults == 0:
        def call0(R: list) -> int:
            callee.call(R[a:b])
            return n
        return call0

    def calln(R: list) -> int:
        R[a : a + nresults] = callee.call(R[a:b])
        return n
    return calln


def call_host(callee: HostFunction, inst: Any, a: int, nargs: int, nresults: int, n: int) -> Handler:
    """Call a host function, telling it which instance calls (for ``access_caller``)."""
    b = a + nargs
    store = callee.store

    def call_host(R: list) -> int:
        outer = store.caller_instance
        store.caller_instance = inst
        try:
            R[a : a + nresults] = callee.call(R[a:b])
        finally:
            store.caller_instance = outer
        return n
    return call_host


def call_indirect(funcs: list[Function], inst: Any, table: TableInst, type_id: int, c: int, a: int,
                  nargs: int, nresults: int, n: int) -> Handler:
    """call_indirect through ``table``: bounds, null and signature checks (spec 4.4.8.8)."""
    elements = table.elements  # the table's array object never changes (growth extends it)
    b = a + nargs

    def call_indirect(R: list) -> int:
        i = R[c]
        if i >= len(elements):
            raise Trap(TrapCode.UNDEFINED_ELEMENT)
        handle = elements[i]
        if not handle:
            raise Trap(TrapCode.INDIRECT_CALL_TO_NULL)
        callee = funcs[handle - 1]
        if callee.type_id != type_id:
            raise Trap(TrapCode.BAD_SIGNATURE)
        if type(callee) is HostFunction:
            store = callee.store
            outer, store.caller_instance = store.caller_instance, inst
            try:
                R[a : a + nresults] = callee.call(R[a:b])
            finally:
                store.caller_instance = outer
        else:
            R[a : a + nresults] = callee.call(R[a:b])
        return n
    return call_indirect


# --- Globals -------------------------------------------------------------------------------------


def global_get(d: int, glob: GlobalInst, n: int) -> Handler:
    cell = glob.cell

    def global_get(R: list) -> int:
        R[d] = cell[0]
        return n
    return global_get


def global_set(glob: GlobalInst, s: Any, is_const: bool, n: int) -> Handler:
    cell = glob.cell
    if is_const:
        def global_set_k(R: list) -> int:
            cell[0] = s
            return n
        return global_set_k

    def global_set(R: list) -> int:
        cell[0] = R[s]
        return n
    return global_set


# --- Memory --------------------------------------------------------------------------------------


def memory_size(d: int, mem: LinearMemory, n: int) -> Handler:
    def memory_size(R: list) -> int:
        R[d] = mem.pages
        return n
    return memory_size


def memory_grow(d: int, mem: LinearMemory, n: int) -> Handler:
    def memory_grow(R: list) -> int:
        R[d] = mem.grow(R[d]) & M32
        return n
    return memory_grow


def memory_fill(d: int, mem: LinearMemory, n: int) -> Handler:
    """memory.fill with (dest, value, count) in slots d, d+1, d+2."""
    def memory_fill(R: list) -> int:
        dst, value, count = R[d], R[d + 1], R[d + 2]
        if dst + count > mem.size:
            raise Trap(TrapCode.MEMORY_OUT_OF_BOUNDS)
        if count:  # in place: up to 4 GiB must not need a temporary of the same size
            ctypes.memset(mem.base + dst, value & 0xFF, count)
        return n
    return memory_fill


def memory_copy(d: int, mem: LinearMemory, n: int) -> Handler:
    def memory_copy(R: list) -> int:
        dst, src, count = R[d], R[d + 1], R[d + 2]
        if src + count > mem.size or dst + count > mem.size:
            raise Trap(TrapCode.MEMORY_OUT_OF_BOUNDS)
        if count:
            ctypes.memmove(mem.base + dst, mem.base + src, count)  # overlap-safe, no temporary
        return n
    return memory_copy


def memory_init(d: int, mem: LinearMemory, datas: list[bytes], index: int, n: int) -> Handler:
    def memory_init_(R: list) -> int:
        rt.memory_init(mem, datas[index], R[d], R[d + 1], R[d + 2])
        return n
    return memory_init_


def data_drop(datas: list[bytes], index: int, n: int) -> Handler:
    def data_drop(R: list) -> int:
        datas[index] = b""
        return n
    return data_drop


# --- Tables --------------------------------------------------------------------------------------


def table_get(d: int, table: TableInst, n: int) -> Handler:
    elements = table.elements

    def table_get(R: list) -> int:
        i = R[d]
        if i >= len(elements):
            raise Trap(TrapCode.TABLE_OUT_OF_BOUNDS)
        R[d] = elements[i]
        return n
    return table_get


def table_set(d: int, table: TableInst, n: int) -> Handler:
    elements = table.elements

    def table_set(R: list) -> int:
        i = R[d]
        if i >= len(elements):
            raise Trap(TrapCode.TABLE_OUT_OF_BOUNDS)
        elements[i] = R[d + 1]
        return n
    return table_set


def table_size(d: int, table: TableInst, n: int) -> Handler:
    elements = table.elements

    def table_size(R: list) -> int:
        R[d] = len(elements)
        return n
    return table_size


def table_grow(d: int, table: TableInst, n: int) -> Handler:
    """table.grow with (init, delta) in slots d, d+1; the result goes to slot d."""
    def table_grow(R: list) -> int:
        R[d] = table.grow(R[d + 1], R[d]) & M32
        return n
    return table_grow


def table_fill(d: int, table: TableInst, n: int) -> Handler:
    elements = table.elements

    def table_fill(R: list) -> int:
        i, value, count = R[d], R[d + 1], R[d + 2]
        if i + count > len(elements):
            raise Trap(TrapCode.TABLE_OUT_OF_BOUNDS)
        if count:
            elements[i : i + count] = array("Q", [value]) * count
        return n
    return table_fill


def table_copy(d: int, dst_table: TableInst, src_table: TableInst, n: int) -> Handler:
    dst_elems, src_elems = dst_table.elements, src_table.elements

    def table_copy(R: list) -> int:
        dst, src, count = R[d], R[d + 1], R[d + 2]
        if src + count > len(src_elems) or dst + count > len(dst_elems):
            raise Trap(TrapCode.TABLE_OUT_OF_BOUNDS)
        dst_elems[dst : dst + count] = src_elems[src : src + count]  # slices copy: overlap-safe
        return n
    return table_copy


def table_init(d: int, table: TableInst, elems: list, index: int, n: int) -> Handler:
    def table_init_(R: list) -> int:
        rt.table_init(table, elems[index], R[d], R[d + 1], R[d + 2])
        return n
    return table_init_


def elem_drop(elems: list, index: int, n: int) -> Handler:
    def elem_drop(R: list) -> int:
        elems[index] = array("Q")
        return n
    return elem_drop
