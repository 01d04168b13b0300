"""Executable memory for compiled code, W^X, plus the host CPU feature check.

One large ``PROT_NONE | MAP_NORESERVE`` reservation (256 MiB by default: address space only, no
memory) is handed out by a bump allocator, in whole pages. Compiling is a transaction in the style
of LuaJIT's ``lj_mcode.c``: :meth:`CodeMemory.reserve` returns a :class:`Reservation` whose address
is final before anything is assembled (Keystone must assemble at the final address), the caller
assembles one or several functions at :attr:`Reservation.next_address` and stages their bytes with
:meth:`Reservation.add`, then :meth:`Reservation.commit` makes the pages readable and writable,
copies the bytes, and makes them readable and executable. Pages are never writable and executable
at once, and never change protection again after they became executable.

Why whole pages per reservation: a page that already holds executable code may be running on
another thread (ctypes calls release the GIL), so it cannot be made writable (dropping execute)
to append a function. Each commit therefore gets pages of its own; the cost is the unused tail
of its last page (filled with ``int3``), so callers should commit functions in batches. There is
no freeing: code lives until :meth:`CodeMemory.close`. Linux x86-64 only. Imports: errors.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import platform
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType

from ..errors import UnsupportedError, WasmjitError

PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC = 0, 1, 2, 4
MAP_PRIVATE, MAP_ANONYMOUS, MAP_NORESERVE = 0x02, 0x20, 0x4000  # Linux values
DEFAULT_RESERVATION = 256 << 20
FUNCTION_ALIGN = 16
PAGE_SIZE = mmap.PAGESIZE
INT3 = b"\xcc"


class CodeMemoryError(WasmjitError):
    """Code memory is exhausted, or a reservation was misused (an internal error)."""


def _round_up(value: int, boundary: int) -> int:
    return (value + boundary - 1) // boundary * boundary


@functools.cache
def _libc() -> ctypes.CDLL:
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise UnsupportedError(f"the JIT needs Linux on x86-64, not {sys.platform} on {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                          ctypes.c_long]
    libc.mprotect.restype = ctypes.c_int
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.munmap.restype = ctypes.c_int
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return libc


def _mprotect(address: int, size: int, prot: int) -> None:
    if _libc().mprotect(address, size, prot) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mprotect({address:#x}, {size:#x}, {prot}) failed")


class CodeMemory:
    """A region of address space for compiled code (see module doc); thread-safe."""

    def __init__(self, size: int = DEFAULT_RESERVATION) -> None:
        size = _round_up(size, PAGE_SIZE)
        flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
        base = _libc().mmap(None, size, PROT_NONE, flags, -1, 0)
        if base is None or base == ctypes.c_void_p(-1).value:
            raise OSError(ctypes.get_errno(), f"mmap of {size:#x} bytes of code space failed")
        self.base: int = base
        self.size = size
        self._top = base  # the bump pointer: everything below is reserved or committed
        self._lock = threading.Lock()
        self._closed = False

    @property
    def used(self) -> int:
        """Bytes of the region handed out so far (whole pages)."""
        return self._top - self.base

    def reserve(self, size_estimate: int) -> Reservation:
        """Reserve pages for about ``size_estimate`` bytes of code; the reservation grows if it is
        still the newest one, so an estimate that turns out short usually costs nothing."""
        capacity = _round_up(max(size_estimate, 1), PAGE_SIZE)
        with self._lock:
            self._check_open()
            if self._top + capacity > self.base + self.size:
                raise CodeMemoryError(f"code memory exhausted: {capacity:#x} bytes requested, "
                                      f"{self.base + self.size - self._top:#x} of {self.size:#x} left")
            address = self._top
            self._top += capacity
        return Reservation(self, address, capacity)

    def _resize(self, reservation: Reservation, capacity: int) -> bool:
        """Grow or shrink ``reservation`` in place if it is the newest; False if it cannot grow."""
        with self._lock:
            end = reservation.address + reservation.capacity
            if end != self._top or reservation.address + capacity > self.base + self.size:
                return capacity <= reservation.capacity
            self._top = reservation.address + capacity
            reservation.capacity = capacity
            return True

    def close(self) -> None:
        """Unmap the whole region. Only when no compiled code can run any more."""
        with self._lock:
            if not self._closed:
                self._closed = True
                _libc().munmap(self.base, self.size)

    def _check_open(self) -> None:
        if self._closed:
            raise CodeMemoryError("code memory is closed")

    def __enter__(self) -> CodeMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class CodeBlock:
    """Committed, executable code: ``size`` bytes at ``address``; ``entries`` are the addresses
    of the functions added to the reservation, in order."""

    address: int
    size: int
    entries: tuple[int, ...]


@dataclass(eq=False)
class Reservation:
    """Pages reserved for one commit batch; see the module doc for the protocol."""

    memory: CodeMemory
    address: int
    capacity: int
    _staged: bytearray = field(default_factory=bytearray, init=False)
    _entries: list[int] = field(default_factory=list, init=False)
    _state: str = field(default="open", init=False)  # open, committed or aborted

    @property
    def next_address(self) -> int:
        """Where the next function added will be placed (16-byte aligned): assemble it there."""
        return self.address + _round_up(len(self._staged), FUNCTION_ALIGN)

    def add(self, code: bytes, address: int) -> int:
        """Stage ``code``, which was assembled for ``address`` (must equal :attr:`next_address`)."""
        self._check_open()
        if address != self.next_address:
            raise CodeMemoryError(f"code assembled for {address:#x} but the next function goes at "
                                  f"{self.next_address:#x}")
        end = address + len(code) - self.address
        if end > self.capacity and not self.memory._resize(self, _round_up(end, PAGE_SIZE)):
            raise CodeMemoryError(f"{end:#x} bytes do not fit the {self.capacity:#x}-byte reservation at "
                                  f"{self.address:#x} and it cannot grow: reserve more and assemble again")
        self._staged += INT3 * (address - self.address - len(self._staged))
        self._staged += code
        self._entries.append(address)
        return address

    def commit(self) -> CodeBlock:
        """Write the staged code and make it executable (RW, copy, then R|X)."""
        self._check_open()
        size = len(self._staged)
        pages = _round_up(max(size, 1), PAGE_SIZE)
        self.memory._resize(self, pages)  # hand back unused pages if this is the newest reservation
        self._staged += INT3 * (pages - size)
        _mprotect(self.address, pages, PROT_READ | PROT_WRITE)
        ctypes.memmove(self.address, bytes(self._staged), pages)
        _mprotect(self.address, pages, PROT_READ | PROT_EXEC)
        self._state = "committed"
        self._staged = bytearray()
        return CodeBlock(self.address, size, tuple(self._entries))

    def abort(self) -> None:
        """Give the pages back if this is still the newest reservation (else they stay unused)."""
        if self._state == "open":
            self._state = "aborted"
            self.memory._resize(self, 0)

    def _check_open(self) -> None:
        if self._state != "open":
            raise CodeMemoryError(f"reservation at {self.address:#x} is already {self._state}")
        self.memory._check_open()

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.abort()  # no-op after commit


_default: CodeMemory | None = None
_default_lock = threading.Lock()


def default_code_memory() -> CodeMemory:
    """The process-wide code region, created on first use and never closed."""
    global _default
    with _default_lock:
        if _default is None:
            _default = CodeMemory()
        return _default


# --- CPU features ---

# What each required /proc/cpuinfo flag enables; without them the instructions silently mean
# something else (lzcnt executes as bsr, tzcnt as bsf) or fault.
REQUIRED_CPU_FEATURES = {
    "sse4_1": "roundss/roundsd",
    "popcnt": "popcnt",
    "abm": "lzcnt",
    "bmi1": "tzcnt",
}


@functools.cache
def _host_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError as error:
        raise UnsupportedError(f"cannot read the CPU features from /proc/cpuinfo: {error}") from None
    raise UnsupportedError("no CPU flags in /proc/cpuinfo")


def cpu_features(flags: Iterable[str] | None = None) -> frozenset[str]:
    """The host's CPU flags (or ``flags``), after checking that the JIT's instructions exist:
    raises :class:`UnsupportedError` naming every missing feature."""
    found = _host_flags() if flags is None else frozenset(flags)
    # Linux reports LZCNT as part of AMD's "abm" on Intel CPUs too; accept a plain "lzcnt" as well.
    have = found | ({"abm"} if "lzcnt" in found else set())
    missing = [f"{flag} ({use})" for flag, use in REQUIRED_CPU_FEATURES.items() if flag not in have]
    if missing:
        raise UnsupportedError(f"the JIT needs CPU features this host lacks: {', '.join(missing)}")
    return found
