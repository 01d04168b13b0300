"""WASI preview1 (``wasi_snapshot_preview1``): all its functions over raw values and linear memory.

Each function takes the store's :class:`WasiContext`, the calling instance's memory and the raw
wasm arguments (u32/u64 as unsigned ints), and returns an errno; :data:`FUNCTIONS` maps the 46
names to (signature, implementation). Behaviour follows wasmtime's preview1 where the spec leaves
room (which errno, the rights reported, the readdir cookies), with two deliberate differences:
an out-of-bounds pointer is ``EFAULT`` (wasmtime traps), and reads and writes use every iovec
(wasmtime stops after the first non-empty one). Paths go through :mod:`.sandbox`.
"""

from __future__ import annotations

import fcntl
import os
import select
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ..errors import Trap, WasmjitError
from ..runtime.memory import LinearMemory
from ..structure import FuncType
from . import abi
from .abi import U32, U64
from .sandbox import WasiError, host_error, resolve


class ExitTrap(WasmjitError):
    """Raised by ``proc_exit``; ``code`` is the exit status (wasmtime-py's ``ExitTrap``)."""

    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(f"Exited with i32 exit status {code}")


# --- descriptors ---------------------------------------------------------------------------------


@dataclass
class Stdio:
    """Descriptor 0, 1 or 2: a host byte stream (None: empty input / discarded output)."""

    stream: BinaryIO | None
    output: bool
    owned: bool  # close the host stream with the descriptor

    @property
    def base(self) -> int:
        return abi.RIGHTS["FD_WRITE" if self.output else "FD_READ"] | abi.RIGHTS["POLL_FD_READWRITE"]

    def filetype(self) -> int:
        """What wasmtime reports: a character device for a terminal, unknown otherwise."""
        try:
            tty = self.stream is not None and os.isatty(self.stream.fileno())
        except (OSError, ValueError, AttributeError):
            tty = False
        return abi.FILETYPE_CHARACTER_DEVICE if tty else abi.FILETYPE_UNKNOWN

    def close(self) -> None:
        if self.owned and self.stream is not None:
            self.stream.close()


@dataclass
class File:
    """A regular file (or other non-directory) opened by ``path_open``: a host descriptor whose own
    offset is the WASI offset."""

    fd: int
    readable: bool
    writable: bool
    base: int  # rights (witx): what the guest may do with it ...
    inheriting: int  # ... and with descriptors opened from it

    def close(self) -> None:
        os.close(self.fd)


@dataclass
class Dir:
    """A directory: preopened (``preopen`` is its guest name) or opened by ``path_open``."""

    fd: int
    base: int
    inheriting: int
    preopen: str | None = None

    def close(self) -> None:
        os.close(self.fd)


Descriptor = Stdio | File | Dir


@dataclass
class WasiContext:
    """Per-store WASI state: arguments, environment and the descriptor table."""

    args: list[bytes] = field(default_factory=list)
    env: list[bytes] = field(default_factory=list)
    fds: dict[int, Descriptor] = field(default_factory=dict)
    free: set[int] = field(default_factory=set)  # closed numbers, reused highest first (as wasmtime)

    def get(self, fd: int, *needs: str) -> Descriptor:
        """Descriptor ``fd`` (else BADF), which must have the rights named ``needs`` (else NOTCAPABLE)."""
        desc = self.fds.get(fd)
        if desc is None:
            raise WasiError(abi.BADF)
        if needs and ~desc.base & abi.rights(*needs):
            raise WasiError(abi.NOTCAPABLE)
        return desc

    def file(self, fd: int, *needs: str, stdio_errno: int = abi.BADF) -> File:
        """A descriptor that must be a file (stdio gives ``stdio_errno``, anything else BADF)."""
        desc = self.fds.get(fd)
        if not isinstance(desc, File):
            raise WasiError(stdio_errno if isinstance(desc, Stdio) else abi.BADF)
        return self.get(fd, *needs)  # type: ignore[return-value]

    def dir(self, fd: int, *needs: str) -> Dir:
        """A directory (a file gives NOTDIR, anything else BADF) with the rights ``needs``."""
        desc = self.fds.get(fd)
        if not isinstance(desc, Dir):
            raise WasiError(abi.NOTDIR if isinstance(desc, File) else abi.BADF)
        return self.get(fd, *needs)  # type: ignore[return-value]

    def host_fd(self, fd: int, *needs: str) -> int:
        """The host descriptor behind a file or directory (stdio: BADF)."""
        desc = self.get(fd, *needs)
        if isinstance(desc, Stdio):
            raise WasiError(abi.BADF)
        return desc.fd

    def add(self, desc: Descriptor) -> int:
        if self.free:
            number = max(self.free)
            self.free.discard(number)
        else:
            number = max(self.fds, default=-1) + 1
        self.fds[number] = desc
        return number

    def remove(self, fd: int) -> Descriptor:
        desc = self.get(fd)
        del self.fds[fd]
        self.free.add(fd)
        return desc

    def close_all(self) -> None:
        for fd in list(self.fds):
            self.remove(fd).close()


# --- memory access -------------------------------------------------------------------------------


def _check(mem: LinearMemory, ptr: int, size: int) -> None:
    if ptr + size > mem.size:
        raise WasiError(abi.FAULT)


def _put_u32(mem: LinearMemory, ptr: int, value: int) -> None:
    _check(mem, ptr, 4)
    U32.pack_into(mem.view, ptr, value & 0xFFFFFFFF)


def _put_u64(mem: LinearMemory, ptr: int, value: int) -> None:
    _check(mem, ptr, 8)
    U64.pack_into(mem.view, ptr, value & 0xFFFFFFFFFFFFFFFF)


def _put(mem: LinearMemory, ptr: int, data: bytes) -> None:
    _check(mem, ptr, len(data))
    mem.view[ptr : ptr + len(data)] = data


def _buffers(mem: LinearMemory, iovs: int, count: int) -> list[memoryview]:
    """The guest buffers of an iovec array, as writable views into memory."""
    _check(mem, iovs, 8 * count)
    out = []
    for i in range(count):
        ptr, length = abi.IOVEC.unpack_from(mem.view, iovs + 8 * i)
        _check(mem, ptr, length)
        out.append(mem.view[ptr : ptr + length])
    return out


def _path(mem: LinearMemory, ptr: int, length: int) -> str:
    _check(mem, ptr, length)
    try:
        path = bytes(mem.view[ptr : ptr + length]).decode()
    except UnicodeDecodeError:
        raise WasiError(abi.ILSEQ) from None
    if "\0" in path:
        raise WasiError(abi.INVAL)  # as wasmtime: no host path can contain NUL
    return path


def _flags(value: int, allowed: int) -> int:
    if value & ~allowed:
        raise WasiError(abi.INVAL)  # wasmtime: an invalid flag value is EINVAL
    return value


def _strings(mem: LinearMemory, items: list[bytes], ptrs: int, buf: int) -> int:
    _check(mem, ptrs, 4 * len(items))
    _check(mem, buf, sum(len(s) + 1 for s in items))
    for i, item in enumerate(items):
        U32.pack_into(mem.view, ptrs + 4 * i, buf)
        mem.view[buf : buf + len(item) + 1] = item + b"\0"
        buf += len(item) + 1
    return abi.SUCCESS


def _sizes(mem: LinearMemory, items: list[bytes], count_ptr: int, size_ptr: int) -> int:
    _put_u32(mem, count_ptr, len(items))
    _put_u32(mem, size_ptr, sum(len(s) + 1 for s in items))
    return abi.SUCCESS


# --- the functions -------------------------------------------------------------------------------

Impl = Callable[..., int]
FUNCTIONS: dict[str, tuple[FuncType, Impl]] = {}


def wasi(params: str, results: str = "i") -> Callable[[Impl], Impl]:
    """Register a function under its own name; ``params`` spells the types ("i" i32, "I" i64)."""
    short = {"i": "i32", "I": "i64"}
    ftype = FuncType(tuple(short[c] for c in params), tuple(short[c] for c in results))

    def register(impl: Impl) -> Impl:
        FUNCTIONS[impl.__name__] = (ftype, impl)
        return impl

    return register


@wasi("ii")
def args_get(ctx: WasiContext, mem: LinearMemory, argv: int, argv_buf: int) -> int:
    return _strings(mem, ctx.args, argv, argv_buf)


@wasi("ii")
def args_sizes_get(ctx: WasiContext, mem: LinearMemory, argc: int, size: int) -> int:
    return _sizes(mem, ctx.args, argc, size)


@wasi("ii")
def environ_get(ctx: WasiContext, mem: LinearMemory, environ: int, buf: int) -> int:
    return _strings(mem, ctx.env, environ, buf)


@wasi("ii")
def environ_sizes_get(ctx: WasiContext, mem: LinearMemory, count: int, size: int) -> int:
    return _sizes(mem, ctx.env, count, size)


_CLOCKS: dict[int, Callable[[], int]] = {abi.CLOCK_REALTIME: time.time_ns,
                                         abi.CLOCK_MONOTONIC: time.monotonic_ns}


def _clock(clock: int) -> Callable[[], int]:
    if clock in (abi.CLOCK_PROCESS_CPUTIME, abi.CLOCK_THREAD_CPUTIME):
        raise WasiError(abi.BADF)  # as wasmtime: CPU-time clocks are not provided
    now = _CLOCKS.get(clock)
    if now is None:
        raise WasiError(abi.INVAL)
    return now


@wasi("ii")
def clock_res_get(ctx: WasiContext, mem: LinearMemory, clock: int, res: int) -> int:
    _clock(clock)
    _put_u64(mem, res, 1)
    return abi.SUCCESS


@wasi("iIi")
def clock_time_get(ctx: WasiContext, mem: LinearMemory, clock: int, precision: int, out: int) -> int:
    _put_u64(mem, out, _clock(clock)())
    return abi.SUCCESS


# --- descriptors: read, write, seek ----------------------------------------------------------


@wasi("iiii")
def fd_read(ctx: WasiContext, mem: LinearMemory, fd: int, iovs: int, count: int, out: int) -> int:
    desc = ctx.get(fd, "FD_READ") if not isinstance(ctx.fds.get(fd), Dir) else ctx.get(fd)
    buffers = _buffers(mem, iovs, count)
    if isinstance(desc, Dir):
        raise WasiError(abi.BADF)
    if isinstance(desc, Stdio):
        total = _stdio_read(desc, buffers)
    else:
        try:
            total = os.readv(desc.fd, buffers) if buffers else 0
        except OSError as err:
            raise host_error(err) from None
    _put_u32(mem, out, total)
    return abi.SUCCESS


def _stdio_read(desc: Stdio, buffers: list[memoryview]) -> int:
    if desc.output:
        raise WasiError(abi.BADF)
    total = 0
    for buf in buffers:
        if desc.stream is None or not len(buf):
            continue
        try:
            read1 = getattr(desc.stream, "read1", desc.stream.read)
            chunk = read1(len(buf)) or b""
        except (OSError, ValueError):
            raise WasiError(abi.IO) from None
        buf[: len(chunk)] = chunk
        total += len(chunk)
        if len(chunk) < len(buf):
            break
    return total


@wasi("iiii")
def fd_write(ctx: WasiContext, mem: LinearMemory, fd: int, iovs: int, count: int, out: int) -> int:
    desc = ctx.get(fd, "FD_WRITE") if not isinstance(ctx.fds.get(fd), Dir) else ctx.get(fd)
    buffers = _buffers(mem, iovs, count)
    if isinstance(desc, Dir):
        raise WasiError(abi.BADF)
    if isinstance(desc, Stdio):
        if not desc.output:
            raise WasiError(abi.BADF)
        data = b"".join(buffers)
        if desc.stream is not None:
            try:
                desc.stream.write(data)
                desc.stream.flush()
            except (OSError, ValueError):
                raise WasiError(abi.IO) from None
        total = len(data)
    else:
        try:
            total = os.writev(desc.fd, buffers) if buffers else 0
        except OSError as err:
            raise host_error(err) from None
    _put_u32(mem, out, total)
    return abi.SUCCESS


def _positioned(ctx: WasiContext, mem: LinearMemory, fd: int, iovs: int, count: int, offset: int,
                out: int, right: str, transfer: Callable[[int, list, int], int]) -> int:
    """fd_pread/fd_pwrite: ``transfer`` (os.preadv/os.pwritev) at ``offset``, not moving the file
    position; standard streams cannot (SPIPE)."""
    file = ctx.file(fd, right, "FD_SEEK", stdio_errno=abi.SPIPE)
    buffers = _buffers(mem, iovs, count)
    if right == "FD_READ" and not file.readable:
        raise WasiError(abi.BADF)
    try:
        total = transfer(file.fd, buffers, offset) if buffers else 0
    except OverflowError:
        raise WasiError(abi.INVAL) from None
    except OSError as err:
        raise host_error(err) from None
    _put_u32(mem, out, total)
    return abi.SUCCESS


@wasi("iiiIi")
def fd_pread(ctx: WasiContext, mem: LinearMemory, fd: int, iovs: int, count: int, offset: int,
             out: int) -> int:
    return _positioned(ctx, mem, fd, iovs, count, offset, out, "FD_READ", os.preadv)


@wasi("iiiIi")
def fd_pwrite(ctx: WasiContext, mem: LinearMemory, fd: int, iovs: int, count: int, offset: int,
              out: int) -> int:
    return _positioned(ctx, mem, fd, iovs, count, offset, out, "FD_WRITE", os.pwritev)


@wasi("iIii")
def fd_seek(ctx: WasiContext, mem: LinearMemory, fd: int, offset: int, whence: int, out: int) -> int:
    telling = offset == 0 and whence == abi.WHENCE_CUR
    file = ctx.file(fd, "FD_TELL" if telling else "FD_SEEK", stdio_errno=abi.SPIPE)
    signed = offset - (1 << 64) if offset >> 63 else offset
    if whence > abi.WHENCE_END or (whence == abi.WHENCE_SET and signed < 0):
        raise WasiError(abi.INVAL)
    try:
        position = os.lseek(file.fd, signed, (os.SEEK_SET, os.SEEK_CUR, os.SEEK_END)[whence])
    except OSError as err:
        raise host_error(err) from None
    _put_u64(mem, out, position)
    return abi.SUCCESS


@wasi("ii")
def fd_tell(ctx: WasiContext, mem: LinearMemory, fd: int, out: int) -> int:
    file = ctx.file(fd, "FD_TELL", stdio_errno=abi.SPIPE)
    _put_u64(mem, out, os.lseek(file.fd, 0, os.SEEK_CUR))
    return abi.SUCCESS


# --- descriptors: status and flags ---------------------------------------------------------------


@wasi("i")
def fd_close(ctx: WasiContext, mem: LinearMemory, fd: int) -> int:
    ctx.remove(fd).close()
    return abi.SUCCESS


@wasi("ii")
def fd_renumber(ctx: WasiContext, mem: LinearMemory, fd: int, to: int) -> int:
    """Move ``fd`` to the open descriptor ``to``, closing what ``to`` was (both must be open)."""
    ctx.get(fd)
    replaced = ctx.get(to)
    if fd != to:
        ctx.fds[to] = ctx.remove(fd)
        replaced.close()
    return abi.SUCCESS


@wasi("ii")
def fd_fdstat_get(ctx: WasiContext, mem: LinearMemory, fd: int, out: int) -> int:
    desc = ctx.get(fd)
    flags = 0
    if isinstance(desc, Stdio):
        filetype = desc.filetype()
        base = inheriting = abi.RIGHTS["FD_WRITE" if desc.output else "FD_READ"]
    else:
        filetype = _filetype(_fstat(desc.fd).st_mode)
        base, inheriting = desc.base, desc.inheriting
        if isinstance(desc, File):
            host_flags = fcntl.fcntl(desc.fd, fcntl.F_GETFL)
            flags |= abi.FDFLAGS_APPEND if host_flags & os.O_APPEND else 0
            flags |= abi.FDFLAGS_NONBLOCK if host_flags & os.O_NONBLOCK else 0
    _check(mem, out, abi.FDSTAT.size)
    abi.FDSTAT.pack_into(mem.view, out, filetype, flags, base, inheriting)
    return abi.SUCCESS


@wasi("ii")
def fd_fdstat_set_flags(ctx: WasiContext, mem: LinearMemory, fd: int, flags: int) -> int:
    file = ctx.file(fd, "FD_FDSTAT_SET_FLAGS")
    _flags(flags, abi.FDFLAGS_ALL)
    if flags & (abi.FDFLAGS_DSYNC | abi.FDFLAGS_SYNC | abi.FDFLAGS_RSYNC):
        raise WasiError(abi.INVAL)  # as wasmtime: only APPEND and NONBLOCK can change
    host = fcntl.fcntl(file.fd, fcntl.F_GETFL) & ~(os.O_APPEND | os.O_NONBLOCK)
    host |= os.O_APPEND if flags & abi.FDFLAGS_APPEND else 0
    host |= os.O_NONBLOCK if flags & abi.FDFLAGS_NONBLOCK else 0
    fcntl.fcntl(file.fd, fcntl.F_SETFL, host)
    return abi.SUCCESS


@wasi("iII")
def fd_fdstat_set_rights(ctx: WasiContext, mem: LinearMemory, fd: int, base: int, inheriting: int) -> int:
    """Narrow the rights of a file or directory; asking for any right it lacks is NOTCAPABLE."""
    desc = ctx.get(fd)
    if isinstance(desc, Stdio):
        raise WasiError(abi.BADF)  # as wasmtime
    if base & ~desc.base or inheriting & ~desc.inheriting:
        raise WasiError(abi.NOTCAPABLE)
    desc.base, desc.inheriting = base, inheriting
    return abi.SUCCESS


def _filetype(mode: int) -> int:
    for test, filetype in ((stat.S_ISREG, abi.FILETYPE_REGULAR_FILE), (stat.S_ISDIR, abi.FILETYPE_DIRECTORY),
                           (stat.S_ISLNK, abi.FILETYPE_SYMBOLIC_LINK),
                           (stat.S_ISCHR, abi.FILETYPE_CHARACTER_DEVICE),
                           (stat.S_ISBLK, abi.FILETYPE_BLOCK_DEVICE),
                           (stat.S_ISSOCK, abi.FILETYPE_SOCKET_STREAM)):
        if test(mode):
            return filetype
    return abi.FILETYPE_UNKNOWN


def _fstat(fd: int) -> os.stat_result:
    try:
        return os.fstat(fd)
    except OSError as err:
        raise host_error(err) from None


def _put_filestat(mem: LinearMemory, out: int, info: os.stat_result | None, filetype: int = 0) -> None:
    _check(mem, out, abi.FILESTAT.size)
    if info is None:  # a standard stream
        abi.FILESTAT.pack_into(mem.view, out, 0, 0, filetype, 0, 0, 0, 0, 0)
        return
    abi.FILESTAT.pack_into(mem.view, out, info.st_dev, info.st_ino, _filetype(info.st_mode), info.st_nlink,
                           info.st_size, info.st_atime_ns, info.st_mtime_ns, info.st_ctime_ns)


@wasi("ii")
def fd_filestat_get(ctx: WasiContext, mem: LinearMemory, fd: int, out: int) -> int:
    desc = ctx.get(fd, "FD_FILESTAT_GET") if not isinstance(ctx.fds.get(fd), Stdio) else ctx.get(fd)
    if isinstance(desc, Stdio):
        _put_filestat(mem, out, None, desc.filetype())
    else:
        _put_filestat(mem, out, _fstat(desc.fd))
    return abi.SUCCESS


@wasi("iI")
def fd_filestat_set_size(ctx: WasiContext, mem: LinearMemory, fd: int, size: int) -> int:
    file = ctx.file(fd, "FD_FILESTAT_SET_SIZE")
    try:
        os.ftruncate(file.fd, size)
    except OverflowError:
        raise WasiError(abi.INVAL) from None
    except OSError as err:
        raise host_error(err) from None
    return abi.SUCCESS


def _new_times(current: os.stat_result, atim: int, mtim: int, fst_flags: int) -> tuple[int, int]:
    """(atime, mtime) in ns from the fst_flags request; unchanged ones come from ``current``."""
    _flags(fst_flags, abi.FSTFLAGS_ALL)
    now = time.time_ns()
    chosen = []
    for value, set_, set_now, old in ((atim, abi.FSTFLAGS_ATIM, abi.FSTFLAGS_ATIM_NOW, current.st_atime_ns),
                                      (mtim, abi.FSTFLAGS_MTIM, abi.FSTFLAGS_MTIM_NOW, current.st_mtime_ns)):
        if fst_flags & set_ and fst_flags & set_now:
            raise WasiError(abi.INVAL)
        chosen.append(value if fst_flags & set_ else now if fst_flags & set_now else old)
    return chosen[0], chosen[1]


@wasi("iIIi")
def fd_filestat_set_times(ctx: WasiContext, mem: LinearMemory, fd: int, atim: int, mtim: int,
                          fst_flags: int) -> int:
    host = ctx.host_fd(fd, "FD_FILESTAT_SET_TIMES")
    times = _new_times(_fstat(host), atim, mtim, fst_flags)
    try:
        os.utime(host, ns=times)
    except OSError as err:
        raise host_error(err) from None
    return abi.SUCCESS


@wasi("iIIi")
def fd_advise(ctx: WasiContext, mem: LinearMemory, fd: int, offset: int, length: int, advice: int) -> int:
    file = ctx.file(fd, "FD_ADVISE")
    if advice > abi.ADVICE_MAX:
        raise WasiError(abi.INVAL)
    host_advice = (os.POSIX_FADV_NORMAL, os.POSIX_FADV_SEQUENTIAL, os.POSIX_FADV_RANDOM,
                   os.POSIX_FADV_WILLNEED, os.POSIX_FADV_DONTNEED, os.POSIX_FADV_NOREUSE)[advice]
    try:
        os.posix_fadvise(file.fd, offset, length, host_advice)
    except OverflowError:
        raise WasiError(abi.INVAL) from None
    except OSError as err:
        raise host_error(err) from None
    return abi.SUCCESS


@wasi("iII")
def fd_allocate(ctx: WasiContext, mem: LinearMemory, fd: int, offset: int, length: int) -> int:
    ctx.file(fd, "FD_ALLOCATE")
    return abi.NOTSUP  # as wasmtime (preview1 over preview2 has no allocate)


def _sync(ctx: WasiContext, fd: int, right: str, how: Callable[[int], None]) -> int:
    file = ctx.file(fd, right)
    try:
        how(file.fd)
    except OSError as err:
        raise host_error(err) from None
    return abi.SUCCESS


@wasi("i")
def fd_sync(ctx: WasiContext, mem: LinearMemory, fd: int) -> int:
    return _sync(ctx, fd, "FD_SYNC", os.fsync)


@wasi("i")
def fd_datasync(ctx: WasiContext, mem: LinearMemory, fd: int) -> int:
    return _sync(ctx, fd, "FD_DATASYNC", os.fdatasync)


# --- preopened directories and directory listings ----------------------------------------------


@wasi("ii")
def fd_prestat_get(ctx: WasiContext, mem: LinearMemory, fd: int, out: int) -> int:
    desc = ctx.get(fd)
    if not isinstance(desc, Dir) or desc.preopen is None:
        raise WasiError(abi.BADF)
    _check(mem, out, abi.PRESTAT.size)
    abi.PRESTAT.pack_into(mem.view, out, abi.PREOPENTYPE_DIR, len(desc.preopen.encode()))
    return abi.SUCCESS


@wasi("iii")
def fd_prestat_dir_name(ctx: WasiContext, mem: LinearMemory, fd: int, path: int, length: int) -> int:
    desc = ctx.get(fd)
    if not isinstance(desc, Dir) or desc.preopen is None:
        raise WasiError(abi.NOTDIR)
    name = desc.preopen.encode()
    if len(name) > length:
        raise WasiError(abi.NAMETOOLONG)
    _put(mem, path, name)
    return abi.SUCCESS


@wasi("iiiIi")
def fd_readdir(ctx: WasiContext, mem: LinearMemory, fd: int, buf: int, length: int, cookie: int,
               out: int) -> int:
    """Entries "." and ".." first, then the directory's; the cookie of an entry is its position + 1
    (as wasmtime). Entries are written whole while they fit; the last one may be cut short, and a
    result equal to ``length`` tells the guest to call again with a bigger buffer."""
    directory = ctx.dir(fd, "FD_READDIR")
    try:
        names = [".", "..", *os.listdir(directory.fd)]
    except OSError as err:
        raise host_error(err) from None
    data = bytearray()
    for index in range(cookie, len(names)):
        if len(data) >= length:
            break
        name = names[index]
        try:
            info = os.stat(name, dir_fd=directory.fd, follow_symlinks=False)
        except FileNotFoundError:
            continue  # removed while listing
        except OSError as err:
            raise host_error(err) from None
        encoded = name.encode()
        data += abi.DIRENT.pack(index + 1, info.st_ino, len(encoded), _filetype(info.st_mode)) + encoded
    data = data[:length]
    _put(mem, buf, bytes(data))
    _put_u32(mem, out, len(data))
    return abi.SUCCESS


# --- paths -----------------------------------------------------------------------------------------


def _call(action: Callable[[], Any]) -> Any:
    try:
        return action()
    except OSError as err:
        raise host_error(err) from None


@wasi("iiiiiIIii")
def path_open(ctx: WasiContext, mem: LinearMemory, dirfd: int, lookup: int, path_ptr: int, path_len: int,
              oflags: int, base: int, inheriting: int, fdflags: int, out: int) -> int:
    path = _path(mem, path_ptr, path_len)
    _flags(oflags, abi.OFLAGS_ALL)
    needs = ["PATH_OPEN"] + ["PATH_CREATE_FILE"] * bool(oflags & abi.OFLAGS_CREAT)
    parent = ctx.dir(dirfd, *needs, *["PATH_FILESTAT_SET_SIZE"] * bool(oflags & abi.OFLAGS_TRUNC))
    _flags(fdflags, abi.FDFLAGS_ALL)
    if fdflags & (abi.FDFLAGS_DSYNC | abi.FDFLAGS_SYNC | abi.FDFLAGS_RSYNC):
        raise WasiError(abi.NOTSUP)  # as wasmtime
    if oflags & abi.OFLAGS_DIRECTORY and oflags & (abi.OFLAGS_CREAT | abi.OFLAGS_EXCL | abi.OFLAGS_TRUNC):
        raise WasiError(abi.INVAL)
    writable = bool(base & abi.RIGHTS["FD_WRITE"] or oflags & (abi.OFLAGS_CREAT | abi.OFLAGS_TRUNC))
    readable = bool(base & abi.RIGHTS["FD_READ"]) or not writable
    host = (os.O_RDWR if readable else os.O_WRONLY) if writable else os.O_RDONLY
    host |= os.O_NOFOLLOW | os.O_CLOEXEC
    host |= os.O_CREAT if oflags & abi.OFLAGS_CREAT else 0
    host |= os.O_EXCL if oflags & abi.OFLAGS_EXCL else 0
    host |= os.O_TRUNC if oflags & abi.OFLAGS_TRUNC else 0
    host |= os.O_DIRECTORY if oflags & abi.OFLAGS_DIRECTORY else 0
    host |= os.O_APPEND if fdflags & abi.FDFLAGS_APPEND else 0
    host |= os.O_NONBLOCK if fdflags & abi.FDFLAGS_NONBLOCK else 0
    # O_CREAT|O_EXCL never follows a final symlink (POSIX, wasmtime): an existing link is EEXIST
    exclusive = oflags & abi.OFLAGS_CREAT and oflags & abi.OFLAGS_EXCL
    follow = bool(lookup & abi.LOOKUP_SYMLINK_FOLLOW) and not exclusive
    with resolve(parent.fd, path, follow) as where:
        if where.must_be_dir:
            if oflags & abi.OFLAGS_CREAT and where.lstat() is None:
                raise WasiError(abi.ISDIR)  # as Linux: O_CREAT on "name/"
            host |= os.O_DIRECTORY
        opened = _call(lambda: os.open(where.name, host, 0o666, dir_fd=where.dir_fd))
    try:
        is_dir = stat.S_ISDIR(os.fstat(opened).st_mode)
    except OSError as err:
        os.close(opened)
        raise host_error(err) from None
    base &= parent.inheriting  # a descriptor gets no right its directory cannot pass on
    inheriting &= parent.inheriting
    if is_dir:
        desc: Descriptor = Dir(opened, base & ~abi.rights("FD_SEEK", "FD_FILESTAT_SET_SIZE"), inheriting)
    else:
        desc = File(opened, readable, writable, base, inheriting)
    _put_u32(mem, out, ctx.add(desc))
    return abi.SUCCESS


@wasi("iii")
def path_create_directory(ctx: WasiContext, mem: LinearMemory, dirfd: int, path_ptr: int,
                          path_len: int) -> int:
    path = _path(mem, path_ptr, path_len)
    with resolve(ctx.dir(dirfd, "PATH_CREATE_DIRECTORY").fd, path, follow=False) as where:
        _call(lambda: os.mkdir(where.name, dir_fd=where.dir_fd))
    return abi.SUCCESS


@wasi("iiiii")
def path_filestat_get(ctx: WasiContext, mem: LinearMemory, dirfd: int, lookup: int, path_ptr: int,
                      path_len: int, out: int) -> int:
    path = _path(mem, path_ptr, path_len)
    start = ctx.dir(dirfd, "PATH_FILESTAT_GET").fd
    with resolve(start, path, bool(lookup & abi.LOOKUP_SYMLINK_FOLLOW)) as where:
        info = _call(lambda: os.stat(where.name, dir_fd=where.dir_fd, follow_symlinks=False))
    _put_filestat(mem, out, info)
    return abi.SUCCESS


@wasi("iiiiIIi")
def path_filestat_set_times(ctx: WasiContext, mem: LinearMemory, dirfd: int, lookup: int, path_ptr: int,
                            path_len: int, atim: int, mtim: int, fst_flags: int) -> int:
    path = _path(mem, path_ptr, path_len)
    _flags(fst_flags, abi.FSTFLAGS_ALL)
    start = ctx.dir(dirfd, "PATH_FILESTAT_SET_TIMES").fd
    with resolve(start, path, bool(lookup & abi.LOOKUP_SYMLINK_FOLLOW)) as where:
        current = _call(lambda: os.stat(where.name, dir_fd=where.dir_fd, follow_symlinks=False))
        times = _new_times(current, atim, mtim, fst_flags)
        _call(lambda: os.utime(where.name, ns=times, dir_fd=where.dir_fd, follow_symlinks=False))
    return abi.SUCCESS


@wasi("iiiiiii")
def path_link(ctx: WasiContext, mem: LinearMemory, old_fd: int, lookup: int, old_ptr: int, old_len: int,
              new_fd: int, new_ptr: int, new_len: int) -> int:
    old_path, new_path = _path(mem, old_ptr, old_len), _path(mem, new_ptr, new_len)
    old_base, new_base = ctx.dir(old_fd, "PATH_LINK_SOURCE").fd, ctx.dir(new_fd, "PATH_LINK_TARGET").fd
    if lookup & abi.LOOKUP_SYMLINK_FOLLOW:
        raise WasiError(abi.INVAL)  # as wasmtime
    with resolve(old_base, old_path, follow=False) as src, resolve(new_base, new_path, follow=False) as dst:
        if dst.must_be_dir and dst.lstat() is None:
            raise WasiError(abi.NOENT)
        _call(lambda: os.link(src.name, dst.name, src_dir_fd=src.dir_fd, dst_dir_fd=dst.dir_fd,
                              follow_symlinks=False))
    return abi.SUCCESS


@wasi("iiiiii")
def path_readlink(ctx: WasiContext, mem: LinearMemory, dirfd: int, path_ptr: int, path_len: int, buf: int,
                  length: int, out: int) -> int:
    path = _path(mem, path_ptr, path_len)
    with resolve(ctx.dir(dirfd, "PATH_READLINK").fd, path, follow=False) as where:
        target = _call(lambda: os.readlink(where.name, dir_fd=where.dir_fd)).encode()
    if target.startswith(b"/"):
        raise WasiError(abi.PERM)  # as wasmtime (cap-std): an absolute target names the host, not the sandbox
    target = target[:length]
    _put(mem, buf, target)
    _put_u32(mem, out, len(target))
    return abi.SUCCESS


@wasi("iii")
def path_remove_directory(ctx: WasiContext, mem: LinearMemory, dirfd: int, path_ptr: int,
                          path_len: int) -> int:
    path = _path(mem, path_ptr, path_len)
    with resolve(ctx.dir(dirfd, "PATH_REMOVE_DIRECTORY").fd, path, follow=False) as where:
        if where.name == ".":
            raise WasiError(abi.INVAL)
        _call(lambda: os.rmdir(where.name, dir_fd=where.dir_fd))
    return abi.SUCCESS


@wasi("iiiiii")
def path_rename(ctx: WasiContext, mem: LinearMemory, old_fd: int, old_ptr: int, old_len: int, new_fd: int,
                new_ptr: int, new_len: int) -> int:
    old_path, new_path = _path(mem, old_ptr, old_len), _path(mem, new_ptr, new_len)
    old_base, new_base = ctx.dir(old_fd, "PATH_RENAME_SOURCE").fd, ctx.dir(new_fd, "PATH_RENAME_TARGET").fd
    with resolve(old_base, old_path, follow=False) as src, resolve(new_base, new_path, follow=False) as dst:
        source = src.lstat()
        if source is not None and not stat.S_ISDIR(source.st_mode) and (src.must_be_dir or dst.must_be_dir):
            raise WasiError(abi.NOTDIR)
        _call(lambda: os.rename(src.name, dst.name, src_dir_fd=src.dir_fd, dst_dir_fd=dst.dir_fd))
    return abi.SUCCESS


@wasi("iiiii")
def path_symlink(ctx: WasiContext, mem: LinearMemory, old_ptr: int, old_len: int, dirfd: int, new_ptr: int,
                 new_len: int) -> int:
    target, path = _path(mem, old_ptr, old_len), _path(mem, new_ptr, new_len)
    if target.startswith("/"):
        raise WasiError(abi.PERM)  # as wasmtime (cap-std): a link out of the sandbox is refused
    with resolve(ctx.dir(dirfd, "PATH_SYMLINK").fd, path, follow=False) as where:
        if where.must_be_dir:
            raise WasiError(abi.EXIST if where.lstat() is not None else abi.NOENT)
        _call(lambda: os.symlink(target, where.name, dir_fd=where.dir_fd))
    return abi.SUCCESS


@wasi("iii")
def path_unlink_file(ctx: WasiContext, mem: LinearMemory, dirfd: int, path_ptr: int, path_len: int) -> int:
    path = _path(mem, path_ptr, path_len)
    with resolve(ctx.dir(dirfd, "PATH_UNLINK_FILE").fd, path, follow=False) as where:
        if where.must_be_dir:
            raise WasiError(abi.ISDIR if where.lstat() is not None else abi.NOENT)
        _call(lambda: os.unlink(where.name, dir_fd=where.dir_fd))
    return abi.SUCCESS


# --- poll, process, random, sockets ----------------------------------------------------------------


@wasi("iiii")
def poll_oneoff(ctx: WasiContext, mem: LinearMemory, subs: int, events: int, count: int, out: int) -> int:
    """Clock subscriptions and fd readiness. Files and output streams are always ready; stdin is
    ready when it has data or is at end of file (select on the host descriptor)."""
    if count == 0:
        raise WasiError(abi.INVAL)
    _check(mem, subs, abi.SUBSCRIPTION.size * count)
    _check(mem, events, abi.EVENT.size * count)
    start = time.monotonic_ns()
    deadlines: list[tuple[int, int]] = []  # (monotonic deadline, userdata)
    fd_events: list[tuple[int, int, int]] = []  # (userdata, type, nbytes)
    waiting: list[tuple[int, Any]] = []  # (userdata, stdin stream) that may block
    for i in range(count):
        userdata, tag, ident, timeout, _precision, flags = abi.SUBSCRIPTION.unpack_from(
            mem.view, subs + abi.SUBSCRIPTION.size * i)
        if tag == abi.EVENTTYPE_CLOCK:
            now = _clock(ident)()
            absolute = flags & abi.SUBCLOCK_ABSTIME
            deadlines.append((start + max(0, timeout - now) if absolute else start + timeout, userdata))
        elif tag in (abi.EVENTTYPE_FD_READ, abi.EVENTTYPE_FD_WRITE):
            desc = ctx.get(ident)
            wants_output = tag == abi.EVENTTYPE_FD_WRITE
            if isinstance(desc, Dir) or (isinstance(desc, Stdio) and desc.output != wants_output):
                raise WasiError(abi.BADF)
            if isinstance(desc, Stdio) and not desc.output and _may_block(desc):
                waiting.append((userdata, desc.stream))
            else:
                fd_events.append((userdata, tag, 1))
        else:
            raise WasiError(abi.INVAL)
    if not fd_events:
        timeout_s = (min(d for d, _ in deadlines) - time.monotonic_ns()) / 1e9 if deadlines else None
        ready = _select([s for _, s in waiting], timeout_s)
        fd_events += [(u, abi.EVENTTYPE_FD_READ, 1) for u, s in waiting if s in ready]
    now = time.monotonic_ns()
    produced = [(u, abi.EVENTTYPE_CLOCK, 0) for d, u in deadlines if d <= now] if not fd_events else []
    for n, (userdata, kind, nbytes) in enumerate(fd_events + produced):
        abi.EVENT.pack_into(mem.view, events + abi.EVENT.size * n, userdata, abi.SUCCESS, kind, nbytes, 0)
    _put_u32(mem, out, len(fd_events) + len(produced))
    return abi.SUCCESS


def _may_block(desc: Stdio) -> bool:
    """Whether reading this input stream could block (a pipe or terminal, not a file or nothing)."""
    if desc.stream is None:
        return False
    try:
        mode = os.fstat(desc.stream.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return not stat.S_ISREG(mode)


def _select(streams: list[Any], timeout: float | None) -> list[Any]:
    if timeout is not None:
        timeout = max(0.0, timeout)
    if not streams:
        if timeout is not None:
            time.sleep(timeout)
        return []
    ready, _, _ = select.select(streams, [], [], timeout)
    return ready


@wasi("i", "")
def proc_exit(ctx: WasiContext, mem: LinearMemory, code: int) -> int:
    if code >= 126:  # the raw u32: negative statuses are huge here too
        raise Trap("exit with invalid exit status outside of [0..126)")  # as wasmtime
    raise ExitTrap(code)


@wasi("i")
def proc_raise(ctx: WasiContext, mem: LinearMemory, signal: int) -> int:
    return abi.NOTSUP


@wasi("")
def sched_yield(ctx: WasiContext, mem: LinearMemory) -> int:
    os.sched_yield()
    return abi.SUCCESS


@wasi("ii")
def random_get(ctx: WasiContext, mem: LinearMemory, buf: int, length: int) -> int:
    _put(mem, buf, os.urandom(length))
    return abi.SUCCESS


def _no_sockets(ctx: WasiContext, fd: int) -> int:
    ctx.get(fd)
    return abi.NOTSOCK  # as wasmtime: preview1 has no way to get a socket


@wasi("iii")
def sock_accept(ctx: WasiContext, mem: LinearMemory, fd: int, flags: int, out: int) -> int:
    return _no_sockets(ctx, fd)


@wasi("iiiiii")
def sock_recv(ctx: WasiContext, mem: LinearMemory, fd: int, iovs: int, count: int, flags: int, out: int,
              out_flags: int) -> int:
    return _no_sockets(ctx, fd)


@wasi("iiiii")
def sock_send(ctx: WasiContext, mem: LinearMemory, fd: int, iovs: int, count: int, flags: int,
              out: int) -> int:
    return _no_sockets(ctx, fd)


@wasi("ii")
def sock_shutdown(ctx: WasiContext, mem: LinearMemory, fd: int, how: int) -> int:
    return _no_sockets(ctx, fd)


assert len(FUNCTIONS) == 46, sorted(FUNCTIONS)


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
        except OSError as err:  # a host call the function did not expect to fail
            errno = abi.from_host_errno(err.errno)
        except (OverflowError, ValueError):  # a value the host cannot represent (huge offset or time)
            errno = abi.INVAL
        return [errno] if returns else []

    wasi_call.__name__ = name
    return wasi_call


def std_stream(fd: int) -> BinaryIO:
    """The host's stdin/stdout/stderr as a binary stream."""
    return (sys.stdin, sys.stdout, sys.stderr)[fd].buffer
