"""WASI preview1 (``wasi_snapshot_preview1``) host functions over raw values and linear memory.

Each function takes the store's :class:`WasiContext`, the calling instance's memory and the raw
wasm arguments, and returns an errno (spec: WebAssembly/WASI preview1 witx). ``FUNCTIONS`` maps
names to (signature, implementation). Imports: errors, structure, runtime.memory.
"""

from __future__ import annotations

import os
import random
import stat
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ..errors import Trap, WasmjitError
from ..runtime.memory import LinearMemory
from ..structure import FuncType

# --- errno values (witx `errno`) -------------------------------------------------------------
SUCCESS, EBADF, EFAULT, EINVAL, EIO, ENOSYS, ESPIPE, ENOTCAPABLE = 0, 8, 21, 28, 29, 52, 70, 76

FILETYPE_UNKNOWN, FILETYPE_CHARACTER_DEVICE, FILETYPE_DIRECTORY, FILETYPE_REGULAR_FILE = 0, 2, 3, 4
RIGHTS_ALL = (1 << 30) - 1
CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME, CLOCK_THREAD_CPUTIME = 0, 1, 2, 3

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_IOVEC = struct.Struct("<II")
_FDSTAT = struct.Struct("<BxHxxxxQQ")


class ExitTrap(WasmjitError):
    """Raised by ``proc_exit``; ``code`` is the exit status (wasmtime-py's ``ExitTrap``)."""

    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(f"Exited with i32 exit status {code}")


class WasiError(Exception):
    """Internal: a WASI call fails with this errno."""

    def __init__(self, errno: int) -> None:
        self.errno = errno


@dataclass
class FileDesc:
    """An open WASI descriptor backed by a host binary stream."""

    stream: BinaryIO
    filetype: int
    owned: bool  # close the host stream when the guest closes the descriptor
    seekable: bool = True  # False for the standard streams: they are streams even when files (wasmtime)


@dataclass
class WasiContext:
    """Per-store WASI state: arguments, environment and the descriptor table."""

    args: list[bytes] = field(default_factory=list)
    env: list[bytes] = field(default_factory=list)
    fds: dict[int, FileDesc] = field(default_factory=dict)

    def fd(self, fd: int) -> FileDesc:
        desc = self.fds.get(fd)
        if desc is None:
            raise WasiError(EBADF)
        return desc


def filetype_of(stream: BinaryIO) -> int:
    """The WASI file type of a host stream (character device for terminals and pipes)."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return FILETYPE_CHARACTER_DEVICE  # an in-memory stream stands in for a device
    if stat.S_ISREG(mode):
        return FILETYPE_REGULAR_FILE
    if stat.S_ISDIR(mode):
        return FILETYPE_DIRECTORY
    return FILETYPE_CHARACTER_DEVICE


# --- memory helpers --------------------------------------------------------------------------


def _check(mem: LinearMemory, ptr: int, size: int) -> None:
    if ptr + size > mem.size:
        raise WasiError(EFAULT)


def _put_u32(mem: LinearMemory, ptr: int, value: int) -> None:
    _check(mem, ptr, 4)
    _U32.pack_into(mem.view, ptr, value & 0xFFFFFFFF)


def _put_u64(mem: LinearMemory, ptr: int, value: int) -> None:
    _check(mem, ptr, 8)
    _U64.pack_into(mem.view, ptr, value & 0xFFFFFFFFFFFFFFFF)


def _iovecs(mem: LinearMemory, iovs: int, count: int) -> list[tuple[int, int]]:
    _check(mem, iovs, 8 * count)
    out = []
    for i in range(count):
        ptr, length = _IOVEC.unpack_from(mem.view, iovs + 8 * i)
        _check(mem, ptr, length)
        out.append((ptr, length))
    return out


def _strings(mem: LinearMemory, items: list[bytes], ptrs: int, buf: int) -> int:
    _check(mem, ptrs, 4 * len(items))
    _check(mem, buf, sum(len(s) + 1 for s in items))
    for i, item in enumerate(items):
        _U32.pack_into(mem.view, ptrs + 4 * i, buf)
        mem.view[buf : buf + len(item) + 1] = item + b"\0"
        buf += len(item) + 1
    return SUCCESS


def _sizes(mem: LinearMemory, items: list[bytes], count_ptr: int, size_ptr: int) -> int:
    _put_u32(mem, count_ptr, len(items))
    _put_u32(mem, size_ptr, sum(len(s) + 1 for s in items))
    return SUCCESS


# --- the functions ---------------------------------------------------------------------------


def args_get(ctx: WasiContext, mem: LinearMemory, argv: int, argv_buf: int) -> int:
    return _strings(mem, ctx.args, argv, argv_buf)


def args_sizes_get(ctx: WasiContext, mem: LinearMemory, argc: int, size: int) -> int:
    return _sizes(mem, ctx.args, argc, size)


def environ_get(ctx: WasiContext, mem: LinearMemory, environ: int, buf: int) -> int:
    return _strings(mem, ctx.env, environ, buf)


def environ_sizes_get(ctx: WasiContext, mem: LinearMemory, count: int, size: int) -> int:
    return _sizes(mem, ctx.env, count, size)


_CLOCKS: dict[int, Callable[[], int]] = {
    CLOCK_REALTIME: time.time_ns, CLOCK_MONOTONIC: time.monotonic_ns,
    CLOCK_PROCESS_CPUTIME: time.process_time_ns, CLOCK_THREAD_CPUTIME: time.thread_time_ns,
}


def clock_res_get(ctx: WasiContext, mem: LinearMemory, clock: int, res: int) -> int:
    if clock not in _CLOCKS:
        return EINVAL
    _put_u64(mem, res, 1000)
    return SUCCESS


def clock_time_get(ctx: WasiContext, mem: LinearMemory, clock: int, precision: int, out: int) -> int:
    now = _CLOCKS.get(clock)
    if now is None:
        return EINVAL
    _put_u64(mem, out, now())
    return SUCCESS


def fd_close(ctx: WasiContext, mem: LinearMemory, fd: int) -> int:
    desc = ctx.fd(fd)
    del ctx.fds[fd]
    if desc.owned:
        desc.stream.close()
    return SUCCESS


def fd_fdstat_get(ctx: WasiContext, mem: LinearMemory, fd: int, out: int) -> int:
    desc = ctx.fd(fd)
    _check(mem, out, _FDSTAT.size)
    _FDSTAT.pack_into(mem.view, out, desc.filetype, 0, RIGHTS_ALL, RIGHTS_ALL)
    return SUCCESS


def fd_seek(ctx: WasiContext, mem: LinearMemory, fd: int, offset: int, whence: int, out: int) -> int:
    desc = ctx.fd(fd)
    if whence > 2:
        return EINVAL
    if not desc.seekable or desc.filetype != FILETYPE_REGULAR_FILE:
        return ESPIPE
    signed = offset - (1 << 64) if offset >> 63 else offset
    try:
        position = desc.stream.seek(signed, whence)
    except (OSError, ValueError):
        return EINVAL
    _put_u64(mem, out, position)
    return SUCCESS


def fd_write(ctx: WasiContext, mem: LinearMemory, fd: int, iovs: int, count: int, out: int) -> int:
    desc = ctx.fd(fd)
    data = b"".join(bytes(mem.view[p : p + n]) for p, n in _iovecs(mem, iovs, count))
    try:
        desc.stream.write(data)
        desc.stream.flush()
    except (OSError, ValueError):
        return EIO
    _put_u32(mem, out, len(data))
    return SUCCESS


def fd_read(ctx: WasiContext, mem: LinearMemory, fd: int, iovs: int, count: int, out: int) -> int:
    desc = ctx.fd(fd)
    total = 0
    for ptr, length in _iovecs(mem, iovs, count):
        try:
            chunk = desc.stream.read(length) if length else b""
        except (OSError, ValueError):
            return EIO
        chunk = chunk or b""
        mem.view[ptr : ptr + len(chunk)] = chunk
        total += len(chunk)
        if len(chunk) < length:
            break
    _put_u32(mem, out, total)
    return SUCCESS


def fd_prestat_get(ctx: WasiContext, mem: LinearMemory, fd: int, out: int) -> int:
    ctx.fd(fd)
    return EBADF  # no preopened directories yet: the guest stops scanning here


def fd_prestat_dir_name(ctx: WasiContext, mem: LinearMemory, fd: int, path: int, length: int) -> int:
    ctx.fd(fd)
    return EBADF


def proc_exit(ctx: WasiContext, mem: LinearMemory, code: int) -> int:
    if code >= 126:  # the raw u32: negative statuses are huge here too
        raise Trap("exit with invalid exit status outside of [0..126)")  # as wasmtime
    raise ExitTrap(code)


def random_get(ctx: WasiContext, mem: LinearMemory, buf: int, length: int) -> int:
    _check(mem, buf, length)
    mem.view[buf : buf + length] = random.randbytes(length)
    return SUCCESS


def sched_yield(ctx: WasiContext, mem: LinearMemory) -> int:
    return SUCCESS


def _sig(params: str, results: str = "i") -> FuncType:
    short = {"i": "i32", "I": "i64"}
    return FuncType(tuple(short[c] for c in params), tuple(short[c] for c in results))


FUNCTIONS: dict[str, tuple[FuncType, Callable[..., int]]] = {
    "args_get": (_sig("ii"), args_get),
    "args_sizes_get": (_sig("ii"), args_sizes_get),
    "environ_get": (_sig("ii"), environ_get),
    "environ_sizes_get": (_sig("ii"), environ_sizes_get),
    "clock_res_get": (_sig("ii"), clock_res_get),
    "clock_time_get": (_sig("iIi"), clock_time_get),
    "fd_close": (_sig("i"), fd_close),
    "fd_fdstat_get": (_sig("ii"), fd_fdstat_get),
    "fd_seek": (_sig("iIii"), fd_seek),
    "fd_write": (_sig("iiii"), fd_write),
    "fd_read": (_sig("iiii"), fd_read),
    "fd_prestat_get": (_sig("ii"), fd_prestat_get),
    "fd_prestat_dir_name": (_sig("iii"), fd_prestat_dir_name),
    "proc_exit": (_sig("i", ""), proc_exit),
    "random_get": (_sig("ii"), random_get),
    "sched_yield": (_sig(""), sched_yield),
}


def raw_host(ctx_of: Callable[[], WasiContext], memory_of: Callable[[], LinearMemory], name: str
             ) -> Callable[[list], list]:
    """A raw host function running ``name`` against the current context and caller memory."""
    ftype, impl = FUNCTIONS[name]
    returns = bool(ftype.results)

    def wasi_call(args: list) -> list:
        try:
            errno = impl(ctx_of(), memory_of(), *args)
        except WasiError as err:
            errno = err.errno
        return [errno] if returns else []

    wasi_call.__name__ = name
    return wasi_call


def std_streams() -> dict[int, Any]:
    """The host's stdin/stdout/stderr as binary streams."""
    return {0: sys.stdin.buffer, 1: sys.stdout.buffer, 2: sys.stderr.buffer}
