"""Linear memory: one mmap reservation per memory with a base address that never moves.

The whole 32-bit address space plus a guard of the same size (8 GiB) is reserved PROT_NONE
with MAP_NORESERVE; ``grow`` makes more pages readable and writable with ``mprotect`` (the
kernel hands out zeroed pages). Native code addresses memory as ``base + index`` and never
sees the base change; a bounds-check bug in native code faults inside this reservation
instead of corrupting the Python heap. Python code reads and writes through ``view``, a
memoryview of exactly the accessible bytes (replaced on growth, so out-of-bounds accesses raise
``IndexError``/``struct.error``). Imports: stdlib only.
"""

from __future__ import annotations

import ctypes
import mmap
import weakref
from typing import Any

PAGE_SIZE = 65536
MAX_PAGES = 65536  # 4 GiB: the most a 32-bit memory can address
RESERVATION = 2 * MAX_PAGES * PAGE_SIZE  # the address space plus a guard region of equal size

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                       ctypes.c_long]
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_MAP_NORESERVE = 0x4000
_MAP_FAILED = ctypes.c_void_p(-1).value


def _reserve(size: int) -> int:
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_NORESERVE
    base = _libc.mmap(None, size, 0, flags, -1, 0)  # PROT_NONE
    if base in (None, _MAP_FAILED):
        raise MemoryError(f"cannot reserve {size} bytes of address space for a linear memory "
                          f"(errno {ctypes.get_errno()})")
    return int(base)


class LinearMemory:
    """A wasm linear memory: ``base`` (stable address), ``pages``, ``max_pages``, ``view``."""

    __slots__ = ("base", "pages", "max_pages", "declared_max", "view", "size", "_array",
                 "_finalizer", "__weakref__", "grow_hooks", "limits")

    def __init__(self, min_pages: int, max_pages: int | None = None) -> None:
        self.base = _reserve(RESERVATION)
        self._finalizer = weakref.finalize(self, _libc.munmap, self.base, RESERVATION)
        self.pages = 0
        self.declared_max = max_pages  # None when the memory type has no maximum
        self.max_pages = MAX_PAGES if max_pages is None else min(max_pages, MAX_PAGES)
        self.size = 0
        self.view = memoryview(b"")
        self._array: ctypes.Array[ctypes.c_ubyte] | None = None
        self.grow_hooks: list = []  # called with the memory after every successful growth
        self.limits: Any = None  # the owning store's StoreLimits (Store.set_limits), if any
        if min_pages > MAX_PAGES or self._commit(min_pages) < 0:
            raise MemoryError(f"cannot allocate a linear memory of {min_pages} pages")

    def _commit(self, pages: int) -> int:
        size = pages * PAGE_SIZE
        if size and _libc.mprotect(self.base, size, mmap.PROT_READ | mmap.PROT_WRITE) != 0:
            return -1
        old = self.pages
        self.pages, self.size = pages, size
        self._array = (ctypes.c_ubyte * size).from_address(self.base)
        self.view = memoryview(self._array).cast("B")
        return old

    def grow(self, delta: int) -> int:
        """Grow by ``delta`` pages; returns the old size in pages, or -1 (spec 4.4.7.9), also past
        the store's ``memory_size`` limit."""
        old = self.pages
        new = old + delta
        if new > self.max_pages:
            return -1
        limit = self.limits.memory_size if self.limits is not None else None
        if limit is not None and new * PAGE_SIZE > limit:
            return -1
        if delta == 0:
            return old
        if self._commit(new) < 0:
            return -1
        for hook in self.grow_hooks:
            hook(self)
        return old

    def restore(self, pages: int, data: bytes) -> None:
        """Put back an earlier state: ``pages`` pages holding ``data`` (for verify-before-install,
        which runs code twice on the same state). Pages grown since are zeroed and made
        inaccessible again, as if they had never been committed."""
        if pages < self.pages:
            size = pages * PAGE_SIZE
            ctypes.memset(self.base + size, 0, self.size - size)
            _libc.mprotect(self.base + size, self.size - size, 0)  # PROT_NONE
            self.pages, self.size = pages, size
            self._array = (ctypes.c_ubyte * size).from_address(self.base)
            self.view = memoryview(self._array).cast("B")
            for hook in self.grow_hooks:
                hook(self)
        self.view[:] = data

    def read(self, start: int, stop: int) -> bytes:
        return bytes(self.view[start:stop])

    def write(self, data: bytes, start: int) -> None:
        self.view[start : start + len(data)] = data

    def data_ptr(self) -> ctypes._Pointer:  # type: ignore[type-arg]
        """A ctypes ``POINTER(c_ubyte)`` to byte 0, as wasmtime-py's ``Memory.data_ptr``."""
        return ctypes.cast(self.base, ctypes.POINTER(ctypes.c_ubyte))
