"""Runtime: linear memory reservation and growth, and the vmctx staying consistent with the state
the interpreter sees (memory base/size, global cells, table arrays), since native code will read
the vmctx while the interpreter reads the same objects."""

from __future__ import annotations

import ctypes

import pytest

import wasmjit
from wasmjit.runtime.memory import MAX_PAGES, PAGE_SIZE, LinearMemory
from wasmjit.runtime.store import GlobalInst, TableInst
from wasmjit.runtime.vmctx import OFFSETS, STORE_OFFSETS, VMContext, VMStore, VMTable
from wasmjit.structure import GlobalType


def test_memory_base_is_stable_and_growth_zero_fills() -> None:
    mem = LinearMemory(1, 4)
    base = mem.base
    mem.view[PAGE_SIZE - 1] = 7
    assert mem.grow(2) == 1
    assert (mem.base, mem.pages, mem.size) == (base, 3, 3 * PAGE_SIZE)
    assert mem.view[PAGE_SIZE - 1] == 7
    assert bytes(mem.view[PAGE_SIZE : 3 * PAGE_SIZE]) == bytes(2 * PAGE_SIZE)
    assert mem.grow(2) == -1  # past the declared maximum
    assert mem.grow(0) == 3


def test_memory_accesses_past_the_end_raise() -> None:
    mem = LinearMemory(1)
    with pytest.raises(IndexError):
        mem.view[PAGE_SIZE]


def test_memory_can_grow_to_4gib_lazily() -> None:
    mem = LinearMemory(0)
    assert mem.grow(MAX_PAGES) == 0
    assert mem.size == MAX_PAGES * PAGE_SIZE
    mem.view[mem.size - 1] = 1
    assert mem.grow(1) == -1


def test_data_ptr_addresses_the_same_bytes() -> None:
    mem = LinearMemory(1)
    mem.view[10] = 42
    assert mem.data_ptr()[10] == 42
    assert ctypes.addressof(mem.data_ptr().contents) == mem.base


def test_vmctx_offsets_come_from_the_structure() -> None:
    assert OFFSETS["memory_base"] == 0
    assert OFFSETS["memory_size"] == 8
    assert sorted(OFFSETS.values()) == list(OFFSETS.values())  # laid out in declaration order
    assert ctypes.sizeof(VMContext) == max(OFFSETS.values()) + 8
    assert ctypes.sizeof(VMTable) == 16
    assert sorted(STORE_OFFSETS.values()) == list(STORE_OFFSETS.values())
    assert ctypes.sizeof(VMStore) == max(STORE_OFFSETS.values()) + 8


def test_function_arrays_are_indexed_by_handle(store: wasmjit.Store) -> None:
    """Every function's canonical type id and instance vmctx sit at its handle, at fixed addresses."""
    wat = """(module (import "m" "h" (func $h (param i32)))
      (func $a (param i32)) (func $b (result i64) (i64.const 1)))"""
    host = wasmjit.Func(store, wasmjit.FuncType([wasmjit.ValType.i32()], []), lambda x: None)
    inst = wasmjit.Instance(store, wasmjit.Module(store.engine, wat), [host])._inst
    rt = store._store
    arrays = rt.func_arrays
    assert inst.vmctx.store == ctypes.addressof(rt.vm)
    assert rt.vm.func_code == ctypes.addressof(arrays.code)
    assert rt.vm.func_type == ctypes.addressof(arrays.type)
    h, a, b = inst.funcs
    assert arrays.type[h.handle] == arrays.type[a.handle] == h.type_id != arrays.type[b.handle] == b.type_id
    assert arrays.vmctx[h.handle] == 0  # a host function has no vmctx
    assert arrays.vmctx[a.handle] == arrays.vmctx[b.handle] == ctypes.addressof(inst.vmctx)


WAT = """
(module
  (memory (export "mem") 1 3)
  (global $g (export "g") (mut i64) (i64.const 5))
  (table $t (export "t") 2 funcref)
  (func $f (export "f") (param i32) (result i32)
    (global.set $g (i64.add (global.get $g) (i64.const 1)))
    (drop (table.grow $t (ref.func $f) (i32.const 3)))
    (memory.grow (local.get 0))))
"""


def test_vmctx_tracks_interpreter_state(store: wasmjit.Store) -> None:
    instance = wasmjit.Instance(store, wasmjit.Module(store.engine, WAT), [])
    inst = instance._inst
    vm = inst.vmctx
    mem, glob, table = inst.mems[0], inst.globals[0], inst.tables[0]
    assert (vm.memory_base, vm.memory_size) == (mem.base, PAGE_SIZE)

    assert instance.exports(store)["f"](store, 1) == 1
    assert vm.memory_size == 2 * PAGE_SIZE  # updated by the grow hook
    global_ptrs = ctypes.cast(vm.global_ptrs, ctypes.POINTER(ctypes.c_uint64))
    assert ctypes.c_int64.from_address(global_ptrs[0]).value == 6 == glob.value
    table_ptrs = ctypes.cast(vm.tables, ctypes.POINTER(ctypes.c_uint64))
    vm_table = VMTable.from_address(table_ptrs[0])
    assert vm_table.length == 5
    elements = (ctypes.c_uint64 * 5).from_address(vm_table.base)
    assert list(elements) == list(table.elements)
    assert elements[4] == inst.funcs[0].handle  # the funcref handle the interpreter stored


def test_type_ids_are_canonical_per_store(store: wasmjit.Store) -> None:
    wat = "(module (type (func (param i32))) (type (func)) (type (func (param i32))))"
    inst = wasmjit.Instance(store, wasmjit.Module(store.engine, wat), [])._inst
    ids = inst.type_ids
    assert ids[0] == ids[2] != ids[1]
    type_ids = (ctypes.c_uint32 * 3).from_address(inst.vmctx.type_ids)
    assert list(type_ids) == ids


def test_global_cell_holds_raw_values() -> None:
    glob = GlobalInst(GlobalType("f64", True), -0.0)
    assert str(glob.value) == "-0.0"
    assert ctypes.c_double.from_address(glob.address).value == -0.0
    f32 = GlobalInst(GlobalType("f32", True), 0x7FA00001)  # a signalling NaN keeps its bits
    assert ctypes.c_uint32.from_address(f32.address).value == 0x7FA00001


def test_table_growth_limits() -> None:
    table = TableInst("funcref", 1, 3)
    assert table.grow(2, 9) == 1
    assert list(table.elements) == [0, 9, 9]
    assert table.grow(1, 0) == -1
    assert (table.vm.base, table.vm.length) == table.elements.buffer_info()
