"""WASI preview1 ABI: the witx constants, struct layouts and the host-errno translation.

Values are those of ``wasi_snapshot_preview1.witx``; every other WASI module reads them from here.
"""

from __future__ import annotations

import errno as host_errno
import struct

# --- errno: in witx order, so a name's position is its value (NOTCAPABLE is 76, 75 is unused) --
ERRNO_NAMES = (
    "SUCCESS 2BIG ACCES ADDRINUSE ADDRNOTAVAIL AFNOSUPPORT AGAIN ALREADY BADF BADMSG BUSY CANCELED "
    "CHILD CONNABORTED CONNREFUSED CONNRESET DEADLK DESTADDRREQ DOM DQUOT EXIST FAULT FBIG HOSTUNREACH "
    "IDRM ILSEQ INPROGRESS INTR INVAL IO ISCONN ISDIR LOOP MFILE MLINK MSGSIZE MULTIHOP NAMETOOLONG "
    "NETDOWN NETRESET NETUNREACH NFILE NOBUFS NODEV NOENT NOEXEC NOLCK NOLINK NOMEM NOMSG NOPROTOOPT "
    "NOSPC NOSYS NOTCONN NOTDIR NOTEMPTY NOTRECOVERABLE NOTSOCK NOTSUP NOTTY NXIO OVERFLOW OWNERDEAD "
    "PERM PIPE PROTO PROTONOSUPPORT PROTOTYPE RANGE ROFS SPIPE SRCH TIMEDOUT TXTBSY XDEV"
).split()
SUCCESS, ACCES, AGAIN, BADF, EXIST, FAULT = 0, 2, 6, 8, 20, 21
ILSEQ, INVAL, IO, ISDIR, LOOP, NAMETOOLONG, NOENT = 25, 28, 29, 31, 32, 37, 44
NOTDIR, NOTEMPTY, NOTSOCK, NOTSUP, OVERFLOW, PERM, SPIPE, NOTCAPABLE = 54, 55, 57, 58, 61, 63, 70, 76
assert ERRNO_NAMES[NOTDIR] == "NOTDIR" and ERRNO_NAMES[SPIPE] == "SPIPE" and len(ERRNO_NAMES) == 75

_FROM_HOST = {getattr(host_errno, f"E{name}"): value for value, name in enumerate(ERRNO_NAMES)
              if hasattr(host_errno, f"E{name}")}
_FROM_HOST[host_errno.EOPNOTSUPP] = NOTSUP  # the same number as ENOTSUP on Linux, not everywhere


def from_host_errno(code: int | None) -> int:
    """The WASI errno for a host ``errno`` (EIO for anything WASI has no name for)."""
    return _FROM_HOST.get(code, IO) if code else IO


# --- file types, flags, rights ---------------------------------------------------------------
FILETYPE_UNKNOWN, FILETYPE_BLOCK_DEVICE, FILETYPE_CHARACTER_DEVICE, FILETYPE_DIRECTORY = 0, 1, 2, 3
FILETYPE_REGULAR_FILE, FILETYPE_SOCKET_DGRAM, FILETYPE_SOCKET_STREAM, FILETYPE_SYMBOLIC_LINK = 4, 5, 6, 7

FDFLAGS_APPEND, FDFLAGS_DSYNC, FDFLAGS_NONBLOCK, FDFLAGS_RSYNC, FDFLAGS_SYNC = 1, 2, 4, 8, 16
FDFLAGS_ALL = 31
OFLAGS_CREAT, OFLAGS_DIRECTORY, OFLAGS_EXCL, OFLAGS_TRUNC = 1, 2, 4, 8
OFLAGS_ALL = 15
LOOKUP_SYMLINK_FOLLOW = 1
FSTFLAGS_ATIM, FSTFLAGS_ATIM_NOW, FSTFLAGS_MTIM, FSTFLAGS_MTIM_NOW = 1, 2, 4, 8
FSTFLAGS_ALL = 15
WHENCE_SET, WHENCE_CUR, WHENCE_END = 0, 1, 2
ADVICE_MAX = 5  # normal, sequential, random, willneed, dontneed, noreuse
SUBCLOCK_ABSTIME = 1
EVENTTYPE_CLOCK, EVENTTYPE_FD_READ, EVENTTYPE_FD_WRITE = 0, 1, 2
EVENTRW_HANGUP = 1
CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME, CLOCK_THREAD_CPUTIME = 0, 1, 2, 3
PREOPENTYPE_DIR = 0

RIGHT_NAMES = (
    "FD_DATASYNC FD_READ FD_SEEK FD_FDSTAT_SET_FLAGS FD_SYNC FD_TELL FD_WRITE FD_ADVISE FD_ALLOCATE "
    "PATH_CREATE_DIRECTORY PATH_CREATE_FILE PATH_LINK_SOURCE PATH_LINK_TARGET PATH_OPEN FD_READDIR "
    "PATH_READLINK PATH_RENAME_SOURCE PATH_RENAME_TARGET PATH_FILESTAT_GET PATH_FILESTAT_SET_SIZE "
    "PATH_FILESTAT_SET_TIMES FD_FILESTAT_GET FD_FILESTAT_SET_SIZE FD_FILESTAT_SET_TIMES PATH_SYMLINK "
    "PATH_REMOVE_DIRECTORY PATH_UNLINK_FILE POLL_FD_READWRITE SOCK_SHUTDOWN SOCK_ACCEPT"
).split()
RIGHTS = {name: 1 << bit for bit, name in enumerate(RIGHT_NAMES)}
RIGHTS_ALL = (1 << len(RIGHT_NAMES)) - 1


def rights(*names: str) -> int:
    """The rights mask with these names set."""
    mask = 0
    for name in names:
        mask |= RIGHTS[name]
    return mask


# A preopened directory's rights: what wasmtime reports, plus truncating files by path (open with
# O_TRUNC, as wasi-libc's fopen "w" does). What it passes on (inheriting) is every right.
PREOPEN_RIGHTS = rights("PATH_FILESTAT_SET_SIZE",
    "PATH_CREATE_DIRECTORY", "PATH_CREATE_FILE", "PATH_LINK_SOURCE", "PATH_LINK_TARGET", "PATH_OPEN",
    "FD_READDIR", "PATH_READLINK", "PATH_RENAME_SOURCE", "PATH_RENAME_TARGET", "PATH_SYMLINK",
    "PATH_REMOVE_DIRECTORY", "PATH_UNLINK_FILE", "PATH_FILESTAT_GET", "PATH_FILESTAT_SET_TIMES",
    "FD_FILESTAT_GET", "FD_FILESTAT_SET_TIMES")
# --- struct layouts (little-endian, witx alignment) -------------------------------------------
U8 = struct.Struct("<B")
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")
IOVEC = struct.Struct("<II")  # buf, buf_len
FDSTAT = struct.Struct("<BxHxxxxQQ")  # filetype, flags, rights_base, rights_inheriting
FILESTAT = struct.Struct("<QQBxxxxxxxQQQQQ")  # dev, ino, filetype, nlink, size, atim, mtim, ctim
DIRENT = struct.Struct("<QQIBxxx")  # d_next, d_ino, d_namlen, d_type
PRESTAT = struct.Struct("<BxxxI")  # tag (0 = dir), pr_name_len
SUBSCRIPTION = struct.Struct("<QB7xIxxxxQQH6x")  # userdata, tag, clock id/fd, timeout, precision, flags
EVENT = struct.Struct("<QHBxxxxxQH6x")  # userdata, error, type, nbytes, flags
assert (FILESTAT.size, DIRENT.size, SUBSCRIPTION.size, EVENT.size) == (64, 24, 48, 32)
