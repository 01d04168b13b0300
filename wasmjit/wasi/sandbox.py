"""Capability-style path resolution: a guest path never leaves the directory it starts from.

A path is walked one component at a time with ``*at`` system calls relative to open directory
descriptors (``O_NOFOLLOW`` everywhere), so the kernel never resolves more than one name and never
follows a symlink on its own. ``..`` pops back to a directory already opened on the way (and is
refused at the starting directory), absolute paths and absolute symlink targets are refused, and
symlinks are expanded by this module with the same rules. A refused escape is ``PERM``, as in
wasmtime (cap-std). The caller finishes the operation with the returned ``(dir_fd, name)``, where
``name`` is one component, so even a symlink raced in afterwards is not followed outside.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from . import abi

MAX_SYMLINK_EXPANSIONS = 40  # Linux's limit; more is ELOOP
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class WasiError(Exception):
    """A WASI call fails with this errno (caught by the function wrapper)."""

    def __init__(self, errno: int) -> None:
        super().__init__(abi.ERRNO_NAMES[errno] if errno < len(abi.ERRNO_NAMES) else errno)
        self.errno = errno


def host_error(err: OSError) -> WasiError:
    """The WasiError for a failed host system call."""
    return WasiError(abi.from_host_errno(err.errno))


@dataclass
class Resolved:
    """Where a path ends: the open directory ``dir_fd`` and one ``name`` in it ("." = the directory
    itself). ``must_be_dir`` when the path ended in a slash. Close it to release the directories
    opened on the way (``with resolve(...) as where:``)."""

    dir_fd: int
    name: str
    must_be_dir: bool = False
    _opened: list[int] = field(default_factory=list)

    def close(self) -> None:
        while self._opened:
            os.close(self._opened.pop())

    def __enter__(self) -> Resolved:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lstat(self) -> os.stat_result | None:
        """The final entry's own status (not following a symlink), or None if it does not exist."""
        try:
            return os.stat(self.name, dir_fd=self.dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as err:
            raise host_error(err) from None


def _split(path: str) -> list[str]:
    """The components of ``path``; "." only as the last one ("x/." names the directory x itself, so
    x must be walked into like any intermediate component, not taken as the final name)."""
    parts = [part for part in path.split("/") if part]
    return [part for i, part in enumerate(parts) if part != "." or i == len(parts) - 1]


def resolve(base_fd: int, path: str, follow: bool) -> Resolved:
    """Walk ``path`` from the directory ``base_fd``. Intermediate symlinks are always expanded; the
    final one only with ``follow`` (or a trailing slash). Raises WasiError (PERM for an escape)."""
    if path == "":
        raise WasiError(abi.NOENT)
    if path.startswith("/"):
        raise WasiError(abi.PERM)
    must_be_dir = path.endswith("/")
    pending = list(reversed(_split(path)))  # a stack: the next component is pending[-1]
    where = Resolved(base_fd, ".", must_be_dir)
    expansions = 0
    try:
        while pending:
            name = pending.pop()
            last = not pending
            current = where._opened[-1] if where._opened else base_fd
            if name == "." and not last:
                continue  # the trailing "." of a symlink target that is not the last component
            if name == "..":
                if not where._opened:
                    raise WasiError(abi.PERM)  # would leave the starting directory
                os.close(where._opened.pop())
                continue
            if last and not (follow or where.must_be_dir):
                return _finish(where, name)
            try:
                info = os.stat(name, dir_fd=current, follow_symlinks=False)
            except FileNotFoundError:
                if last:
                    return _finish(where, name)  # may be created by the caller
                raise WasiError(abi.NOENT) from None
            if stat.S_ISLNK(info.st_mode):
                expansions += 1
                if expansions > MAX_SYMLINK_EXPANSIONS:
                    raise WasiError(abi.LOOP)
                target = os.readlink(name, dir_fd=current)
                if target.startswith("/"):
                    raise WasiError(abi.PERM)  # absolute symlinks lead outside the sandbox
                if last and target.endswith("/"):
                    where.must_be_dir = True
                pending.extend(reversed(_split(target)))
                continue
            if last:
                return _finish(where, name)
            if not stat.S_ISDIR(info.st_mode):
                raise WasiError(abi.NOTDIR)
            where._opened.append(os.open(name, _DIR_FLAGS, dir_fd=current))
        return _finish(where, ".")
    except OSError as err:
        where.close()
        raise host_error(err) from None
    except WasiError:
        where.close()
        raise


def _finish(where: Resolved, name: str) -> Resolved:
    where.dir_fd = where._opened[-1] if where._opened else where.dir_fd
    where.name = name
    if where.must_be_dir:
        info = where.lstat()
        if info is not None and not stat.S_ISDIR(info.st_mode):
            where.close()
            raise WasiError(abi.NOTDIR)
    return where
