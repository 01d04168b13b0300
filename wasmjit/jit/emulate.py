"""The unicorn tier: the JIT's machine code, run inside Unicorn (an x86-64 emulator).

The code is exactly what the jit tier runs natively, at the same addresses: every page it may
touch is mapped into the emulator at its host address with ``mem_map_ptr`` (guest address = host
address), so the addresses compiled into the code (vmctx, function arrays, global cells, tables,
linear memory, routines) stay valid and the Python side (helpers, host functions, backtraces)
reads and writes the same bytes as the emulated code. Pages are mapped when first touched, and
only if they belong to something native code may use: the store's compiled functions and the
shared routines (read + execute), the VMStore, the function arrays, each instance's vmctx and its
arrays, global cells, tables, and the accessible part of each linear memory (read + write). Any
other access — a bounds-check bug, a wild pointer, a jump into data — stops the emulation with an
:class:`EmulationError` naming the address and the function, where native code would corrupt the
process or crash it.

Calls into Python: an emulated store's VMStore callbacks are the routines' landing pads (each a
``ret``); a code hook on them runs the same Python callback native code would call through ctypes
(host functions and the interpreter, runtime helpers, trap backtraces) and puts its result in rax.
A Python callback that calls wasm again starts a nested emulation on the same CPU, below the
current guest stack, with the registers saved around it. Imports: errors, runtime, jit.native.
"""

from __future__ import annotations

import ctypes
import mmap
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from unicorn import (
    UC_ARCH_X86,
    UC_HOOK_CODE,
    UC_HOOK_MEM_UNMAPPED,
    UC_MODE_64,
    UC_PROT_EXEC,
    UC_PROT_READ,
    UC_PROT_WRITE,
    Uc,
    UcError,
)
from unicorn.x86_const import (
    UC_X86_REG_RAX,
    UC_X86_REG_RCX,
    UC_X86_REG_RDI,
    UC_X86_REG_RDX,
    UC_X86_REG_RIP,
    UC_X86_REG_RSI,
    UC_X86_REG_RSP,
)

from ..errors import Trap, TrapCode, WasmjitError
from ..runtime import vmctx as V

if TYPE_CHECKING:
    from .native import NativeStore

PAGE = 4096
STACK_SIZE = 8 << 20  # the emulated stack: the 512 KiB wasm budget plus nested host calls
# Emulations started from Python callbacks inside emulations (wasm -> host -> wasm ...): Unicorn
# allows 64, and each costs host C stack. Deeper re-entry traps with "call stack exhausted", as
# native code does when such recursion uses up its stack budget.
MAX_NESTING = 48
_MASK64 = (1 << 64) - 1
_CODE = UC_PROT_READ | UC_PROT_EXEC
_DATA = UC_PROT_READ | UC_PROT_WRITE


class EmulationError(WasmjitError):
    """The emulated code did something native code must never do (an access outside everything
    it may use, an invalid instruction): a bug in the code generator, caught by the emulator."""


class EmulationTimeout(EmulationError):
    """An emulation ran longer than the emulator's ``timeout`` (verify-before-install's budget)."""


class Emulator:
    """One Unicorn CPU per emulated store; :meth:`enter` has the native entry routine's signature.
    ``timeout`` (seconds, 0 = none) bounds each outermost emulation."""

    timeout = 0.0

    def __init__(self, state: NativeStore, callbacks: tuple[Callable[[int, int, int, int], int], ...]
                 ) -> None:
        from .native import routines

        self.state = state
        self.routines = routines()
        self.uc = Uc(UC_ARCH_X86, UC_MODE_64)
        self._stack = mmap.mmap(-1, STACK_SIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.stack_base = ctypes.addressof(ctypes.c_char.from_buffer(self._stack))
        self.stack_top = self.stack_base + STACK_SIZE
        self.uc.mem_map_ptr(self.stack_base, STACK_SIZE, _DATA, self.stack_base)
        self._pages: set[int] = set()  # mapped pages of code and of Python-owned structures
        self._memories: dict[int, int] = {}  # linear memory base -> bytes mapped from it
        self._callbacks = dict(zip(self.routines.pads, callbacks, strict=True))
        self.level = 0  # emulations in progress (nested through Python callbacks)
        first, last = min(self.routines.pads), max(self.routines.pads)
        self.uc.hook_add(UC_HOOK_CODE, self._pad, begin=first, end=last)
        self.uc.hook_add(UC_HOOK_MEM_UNMAPPED, self._unmapped)

    # --- running --------------------------------------------------------------------------------

    def enter(self, vmctx: int, code: int, buffer: Any, nslots: int) -> int:
        """Run the entry routine on (vmctx, code, slots, count) like the native call does; the
        slots are copied to the emulated stack and back. Returns the trap status."""
        uc, vm = self.uc, self.state.store.vm
        if self.level >= MAX_NESTING:  # the emulator's stack of CPU states is exhausted
            raise Trap(TrapCode.STACK_OVERFLOW)
        saved = uc.context_save() if self.level else None
        top = (uc.reg_read(UC_X86_REG_RSP) - 256 if self.level else self.stack_top) & ~15
        size = ctypes.sizeof(buffer)
        area = (top - size) & ~15
        ctypes.memmove(area, buffer, size)
        rsp = area - 8
        ctypes.c_uint64.from_address(rsp).value = self.routines.sentinel
        previous_rsp = vm.saved_rsp
        for reg, value in ((UC_X86_REG_RSP, rsp), (UC_X86_REG_RDI, vmctx), (UC_X86_REG_RSI, code),
                           (UC_X86_REG_RDX, area), (UC_X86_REG_RCX, nslots)):
            uc.reg_write(reg, value)
        self.level += 1
        try:
            timeout = int(self.timeout * 1e6) if self.level == 1 else 0
            uc.emu_start(self.routines.entry_address, self.routines.sentinel, timeout)
            if uc.reg_read(UC_X86_REG_RIP) != self.routines.sentinel:
                raise EmulationTimeout(f"emulation stopped after the {self.timeout} s budget")
            status = uc.reg_read(UC_X86_REG_RAX)
        except UcError as err:
            vm.saved_rsp = previous_rsp  # the entry routine did not get to restore it
            raise EmulationError(self._describe(err)) from None
        except BaseException:
            vm.saved_rsp = previous_rsp
            raise
        finally:
            self.level -= 1
            if saved is not None:
                uc.context_restore(saved)
        ctypes.memmove(buffer, area, size)
        return status

    def _pad(self, uc: Uc, address: int, size: int, data: Any) -> None:
        """A landing pad: run its Python callback with the C arguments, result in rax (the pad's
        ``ret`` then returns to the routine that called it)."""
        callback = self._callbacks[address]
        result = callback(uc.reg_read(UC_X86_REG_RDI), uc.reg_read(UC_X86_REG_RSI),
                          uc.reg_read(UC_X86_REG_RDX), uc.reg_read(UC_X86_REG_RCX))
        uc.reg_write(UC_X86_REG_RAX, result & _MASK64)

    def _describe(self, err: UcError) -> str:
        pc = self.uc.reg_read(UC_X86_REG_RIP)
        where = self.state.code_range(pc)
        func = (f"in {where.func.name or f'func[{where.func.index}]'} at +{pc - where.start:#x}"
                if where is not None else "outside compiled code")
        detail = f" (address {self._fault:#x})" if self._fault is not None else ""
        return f"unicorn: {err}{detail} at pc {pc:#x} {func}"

    # --- mapping pages on first use -------------------------------------------------------------

    _fault: int | None = None

    def _unmapped(self, uc: Uc, access: int, address: int, size: int, value: int, data: Any) -> bool:
        """Map the page(s) of an allowed object at ``address``; False (the emulation stops with
        an error) for any other address."""
        self._fault = address
        for start, length, perms, memory in self._regions():
            if start <= address < start + length:
                if memory:
                    self._map_memory(start, length)
                else:
                    self._map_pages(start, length, perms)
                self._fault = None
                return True  # an access running past the object faults again at the next page
        return False

    def _map_pages(self, start: int, length: int, perms: int) -> None:
        """Map the pages covering [start, start + length) that are not mapped yet, each run of
        consecutive ones in one call (Unicorn's cost grows with the number of regions)."""
        first, end = start & ~(PAGE - 1), (start + length + PAGE - 1) & ~(PAGE - 1)
        run = None
        for page in [*range(first, end, PAGE), None]:
            if page is not None and page not in self._pages:
                run = page if run is None else run
                continue
            if run is not None:
                stop = end if page is None else page
                self.uc.mem_map_ptr(run, stop - run, perms, run)
                self._pages.update(range(run, stop, PAGE))
                run = None

    def forget_memory(self, base: int, size: int) -> None:
        """Unmap what lies beyond ``size`` bytes of the linear memory at ``base`` (it shrank back
        after verify-before-install restored an earlier state)."""
        done = self._memories.get(base, 0)
        if done > size:
            self.uc.mem_unmap(base + size, done - size)
            self._memories[base] = size

    def _map_memory(self, base: int, size: int) -> None:
        done = self._memories.get(base, 0)
        if size > done:
            self.uc.mem_map_ptr(base + done, size - done, _DATA, base + done)
            self._memories[base] = size

    def _regions(self) -> Iterator[tuple[int, int, int, bool]]:
        """(address, size, permissions, is linear memory) of everything native code may touch."""
        state, r = self.state, self.routines
        yield (*r.block, _CODE, False)
        for code in state.ranges:
            yield code.start, code.end - code.start, _CODE, False
        store = state.store
        yield ctypes.addressof(store.vm), ctypes.sizeof(store.vm), _DATA, False
        if store.epoch is not None:
            yield store.epoch.address, 8, _DATA, False
        arrays = store.func_arrays
        yield ctypes.addressof(arrays.code), V.MAX_FUNCS * 20, _DATA, False
        for inst in store.instances:
            yield ctypes.addressof(inst.vmctx), ctypes.sizeof(inst.vmctx), _DATA, False
            for arr in inst._vm_arrays:
                yield ctypes.addressof(arr), ctypes.sizeof(arr), _DATA, False
            for mem in inst.mems:
                if mem.size:
                    yield mem.base, mem.size, _DATA, True
            for glob in inst.globals:
                yield glob.address, 8, _DATA, False
            for table in inst.tables:
                yield table.vm_address, ctypes.sizeof(table.vm), _DATA, False
                base, length = table.elements.buffer_info()
                if length:
                    yield base, 8 * length, _DATA, False
