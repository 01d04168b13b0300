"""The WASI sandbox: a guest reaches only what is below its preopened directories.

A harness module re-exports the WASI functions that take paths or descriptors; tests write path
strings into its memory and call them directly. Every scenario runs in a fresh world under
``tmp_path`` (``<lib>/sandbox`` preopened, ``<lib>/outside`` beside it holding a secret, symlinks
planted inside the sandbox by the host) and checks that nothing outside the sandboxes changed:
names, kinds, modes, sizes, link counts, mtimes, ctimes, contents and link targets. Where
wasmtime-py behaves the same it runs the scenario too and both must agree; refused escapes are
``PERM`` in both (cap-std's "a path led outside of the filesystem").
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import wasmtime

import wasmjit
from wasmjit.wasi import abi

# errno values of wasi_snapshot_preview1.witx
SUCCESS, BUSY, EXIST, INVAL, ILSEQ, ISDIR, LOOP, NOENT = 0, 10, 20, 28, 25, 31, 32, 44
BADF, NOTDIR, PERM, NOTCAPABLE = 8, 54, 63, 76
FOLLOW = 1  # lookupflags
CREAT, DIRECTORY, EXCL, TRUNC = 1, 2, 4, 8  # oflags
FILETYPE_DIRECTORY, FILETYPE_REGULAR_FILE, FILETYPE_SYMBOLIC_LINK = 3, 4, 7
MTIM = 4  # fstflags: set mtime to the given value

READ = abi.rights("FD_READ", "FD_SEEK", "FD_TELL", "FD_FILESTAT_GET", "FD_READDIR")
READ_WRITE = READ | abi.rights("FD_WRITE")
DIR_ALL = abi.RIGHTS_ALL & ~abi.rights("FD_WRITE")  # asking to write a directory is EISDIR

SIGNATURES = {  # the witx signatures ("i" i32, "I" i64); each returns an errno
    "path_open": "iiiiiIIii", "path_create_directory": "iii", "path_unlink_file": "iii",
    "path_remove_directory": "iii", "path_rename": "iiiiii", "path_symlink": "iiiii",
    "path_link": "iiiiiii", "path_readlink": "iiiiii", "path_filestat_get": "iiiii",
    "path_filestat_set_times": "iiiiIIi", "fd_readdir": "iiiIi", "fd_close": "i", "fd_read": "iiii",
    "fd_write": "iiii", "fd_renumber": "ii", "fd_prestat_get": "ii", "fd_prestat_dir_name": "iii",
    "fd_fdstat_get": "ii", "fd_fdstat_set_rights": "iII",
}


def _harness_wat() -> str:
    imports, funcs = [], []
    for name, params in SIGNATURES.items():
        sig = "(param {}) (result i32)".format(" ".join("i64" if p == "I" else "i32" for p in params))
        args = " ".join(f"(local.get {i})" for i in range(len(params)))
        imports.append(f'  (import "wasi_snapshot_preview1" "{name}" (func ${name} {sig}))')
        funcs.append(f'  (func (export "{name}") {sig} (call ${name} {args}))')
    return "\n".join(["(module", *imports, *funcs, '  (memory (export "memory") 1))'])


HARNESS_WAT = _harness_wat()
PATH_A, PATH_B, OUT, IOV, STAT, BUF = 1024, 2048, 64, 128, 256, 4096  # where things go in memory


class Guest:
    """The harness instantiated by ``lib`` (wasmjit or wasmtime) with these preopens, and one
    method per WASI call that puts the path strings in memory and decodes what comes back."""

    def __init__(self, lib: Any, engine: Any, store: Any, module: Any,
                 preopens: list[tuple[Path, str]]) -> None:
        config = lib.WasiConfig()
        for host, guest in preopens:
            config.preopen_dir(str(host), guest)
        store.set_wasi(config)
        linker = lib.Linker(engine)
        linker.define_wasi()
        self.store = store
        self.exports = linker.instantiate(store, module).exports(store)
        self.memory = self.exports["memory"]

    def call(self, name: str, *args: int) -> int:
        return self.exports[name](self.store, *args)

    def put(self, at: int, data: str | bytes) -> tuple[int, int]:
        raw = data.encode() if isinstance(data, str) else data
        self.memory.write(self.store, raw, at)
        return at, len(raw)

    def get(self, start: int, stop: int) -> bytes:
        return bytes(self.memory.read(self.store, start, stop))

    def u32(self, at: int) -> int:
        return struct.unpack("<I", self.get(at, at + 4))[0]

    # --- paths ---
    def open(self, dirfd: int, path: str | bytes, lookup: int = 0, oflags: int = 0, base: int = READ,
             inheriting: int = READ, fdflags: int = 0) -> tuple[int, int | None]:
        errno = self.call("path_open", dirfd, lookup, *self.put(PATH_A, path), oflags, base, inheriting,
                          fdflags, OUT)
        return errno, self.u32(OUT) if errno == SUCCESS else None

    def mkdir(self, dirfd: int, path: str) -> int:
        return self.call("path_create_directory", dirfd, *self.put(PATH_A, path))

    def unlink(self, dirfd: int, path: str) -> int:
        return self.call("path_unlink_file", dirfd, *self.put(PATH_A, path))

    def rmdir(self, dirfd: int, path: str) -> int:
        return self.call("path_remove_directory", dirfd, *self.put(PATH_A, path))

    def rename(self, old_fd: int, old: str, new_fd: int, new: str) -> int:
        return self.call("path_rename", old_fd, *self.put(PATH_A, old), new_fd, *self.put(PATH_B, new))

    def link(self, old_fd: int, old: str, new_fd: int, new: str, lookup: int = 0) -> int:
        return self.call("path_link", old_fd, lookup, *self.put(PATH_A, old), new_fd, *self.put(PATH_B, new))

    def symlink(self, target: str, dirfd: int, path: str) -> int:
        return self.call("path_symlink", *self.put(PATH_A, target), dirfd, *self.put(PATH_B, path))

    def readlink(self, dirfd: int, path: str) -> tuple[int, bytes | None]:
        errno = self.call("path_readlink", dirfd, *self.put(PATH_A, path), BUF, 512, OUT)
        return errno, self.get(BUF, BUF + self.u32(OUT)) if errno == SUCCESS else None

    def stat(self, dirfd: int, path: str, lookup: int = 0) -> tuple[int, tuple[int, int] | None]:
        """errno and (filetype, size)."""
        errno = self.call("path_filestat_get", dirfd, lookup, *self.put(PATH_A, path), STAT)
        if errno != SUCCESS:
            return errno, None
        filetype, size = self.get(STAT + 16, STAT + 17)[0], self.get(STAT + 32, STAT + 40)
        return errno, (filetype, struct.unpack("<Q", size)[0])

    def set_times(self, dirfd: int, path: str, lookup: int = 0) -> int:
        """Set the mtime to 1 s after the epoch."""
        return self.call("path_filestat_set_times", dirfd, lookup, *self.put(PATH_A, path), 0, 10**9, MTIM)

    # --- descriptors ---
    def read(self, fd: int, size: int = 64) -> tuple[int, bytes | None]:
        self.memory.write(self.store, struct.pack("<II", BUF, size), IOV)
        errno = self.call("fd_read", fd, IOV, 1, OUT)
        return errno, self.get(BUF, BUF + self.u32(OUT)) if errno == SUCCESS else None

    def write(self, fd: int, data: bytes) -> int:
        self.memory.write(self.store, data, BUF)
        self.memory.write(self.store, struct.pack("<II", BUF, len(data)), IOV)
        return self.call("fd_write", fd, IOV, 1, OUT)

    def readdir(self, fd: int) -> tuple[int, set[str] | None]:
        errno = self.call("fd_readdir", fd, BUF, 8192, 0, OUT)
        if errno != SUCCESS:
            return errno, None
        data, names, at = self.get(BUF, BUF + self.u32(OUT)), set(), 0
        while at + 24 <= len(data):
            length = struct.unpack_from("<I", data, at + 16)[0]
            names.add(data[at + 24 : at + 24 + length].decode())
            at += 24 + length
        return errno, names

    def read_file(self, dirfd: int, path: str, lookup: int = FOLLOW) -> tuple[int, bytes | None]:
        """Open, read and close: the errno of the first failing step and what was read."""
        errno, fd = self.open(dirfd, path, lookup)
        if fd is None:
            return errno, None
        result = self.read(fd)
        assert self.close(fd) == SUCCESS
        return result

    def close(self, fd: int) -> int:
        return self.call("fd_close", fd)

    def renumber(self, fd: int, to: int) -> int:
        return self.call("fd_renumber", fd, to)

    def prestat(self, fd: int) -> tuple[int, bytes | None]:
        errno = self.call("fd_prestat_get", fd, OUT)
        if errno != SUCCESS:
            return errno, None
        length = self.u32(OUT + 4)
        assert self.call("fd_prestat_dir_name", fd, BUF, length) == SUCCESS
        return errno, self.get(BUF, BUF + length)

    def fdstat(self, fd: int) -> tuple[int, int, int]:
        """(filetype, rights base, rights inheriting) of an open descriptor."""
        assert self.call("fd_fdstat_get", fd, STAT) == SUCCESS
        filetype, _flags, base, inheriting = struct.unpack("<BxHxxxxQQ", self.get(STAT, STAT + 24))
        return filetype, base, inheriting

    def set_rights(self, fd: int, base: int, inheriting: int) -> int:
        return self.call("fd_fdstat_set_rights", fd, base, inheriting)


# --- the world: a sandbox with links planted by the host, and an outside that must not change ----

SECRET = b"s3cret"
INSIDE = b"inside"
SANDBOX = "sandbox"
CHAIN_LIMIT = 40  # symlink expansions allowed in one lookup (Linux's and cap-std's limit)


@dataclass
class World:
    root: Path

    @property
    def sandbox(self) -> Path:
        return self.root / SANDBOX

    @property
    def outside(self) -> Path:
        return self.root / "outside"

    def fill(self, path: str) -> str:
        """``path`` with ``{outside}``/``{sandbox}`` replaced by this world's absolute host paths."""
        return path.format(outside=self.outside, sandbox=self.sandbox)


def build_world(root: Path) -> World:
    world = World(root)
    sandbox, outside = world.sandbox, world.outside
    (outside / "dir").mkdir(parents=True)
    (outside / "secret").write_bytes(SECRET)
    (root / "other").mkdir()
    (root / "other" / "shared").write_bytes(b"other")
    (sandbox / "a" / "b").mkdir(parents=True)
    (sandbox / "d").mkdir()
    (sandbox / "hops").mkdir()
    (sandbox / "file").write_bytes(INSIDE)
    (sandbox / "a" / "note").write_bytes(b"note")
    links = {
        "abs": outside / "secret",  # absolute, to a file outside
        "absdir": outside,  # absolute, to a directory outside
        "rootabs": sandbox,  # absolute, even though it names the sandbox itself
        "rel": "../outside/secret",
        "reldir": "../outside",
        "chain": "hop", "hop": "../outside/secret",  # a chain whose second link leads out
        "chaindir": "reldir",  # a chain to a directory outside
        "dangling_out": "../outside/new",  # following it would create a file outside
        "a/outandin": "../../sandbox/file",  # out and back in by name: still an escape
        "a/outdir": "../../outside",
        "inlink": "file", "inlink2": "inlink", "dirlink": "a", "a/up": "../file", "a/sub": "b/..",
        "loop1": "loop2", "loop2": "loop1", "self": "self",
    }
    for name, target in links.items():
        os.symlink(target, sandbox / name)
    for i in range(CHAIN_LIMIT + 1):  # hops/l0 -> l1 -> ... -> l40 -> ../file
        os.symlink(f"l{i + 1}" if i < CHAIN_LIMIT else "../file", sandbox / "hops" / f"l{i}")
    return world


def snapshot(top: Path) -> dict[str, tuple]:
    """Everything under ``top`` but inside sandboxes, as comparable records (atime left out: reading
    is allowed to change it)."""
    tree: dict[str, tuple] = {}

    def visit(path: Path) -> None:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            content: Any = os.readlink(path)
        elif stat.S_ISREG(info.st_mode):
            content = path.read_bytes()
        else:
            content = None
        tree[str(path.relative_to(top))] = (info.st_mode, info.st_size, info.st_nlink, info.st_ino,
                                            info.st_mtime_ns, info.st_ctime_ns, content)
        if stat.S_ISDIR(info.st_mode):
            for child in sorted(path.iterdir()):
                if child.name != SANDBOX:
                    visit(child)

    visit(top)
    return tree


Scenario = Callable[[Guest, World], Any]
_WASMTIME: list[Any] = []  # wasmtime's engine and compiled harness, shared by all tests


def _wasmtime_store() -> tuple[Any, Any, Any]:
    if not _WASMTIME:
        engine = wasmtime.Engine()
        _WASMTIME.extend([engine, wasmtime.Module(engine, HARNESS_WAT)])
    engine, module = _WASMTIME
    return engine, wasmtime.Store(engine), module


def sandboxed(store: wasmjit.Store, tmp_path: Path, scenario: Scenario, compare: bool = True,
              preopens: tuple[tuple[str, str], ...] = ((SANDBOX, "/"),)) -> Any:
    """Run ``scenario(guest, world)`` on wasmjit (and first on wasmtime-py if ``compare``; both
    must return the same), each in its own fresh world with ``preopens`` (paths relative to the
    world's root). Nothing outside the sandboxes may change."""
    libs = [wasmtime, wasmjit] if compare else [wasmjit]
    worlds = {lib: build_world(tmp_path / lib.__name__) for lib in libs}
    before = snapshot(tmp_path)
    results = []
    for lib in libs:
        if lib is wasmjit:
            engine, lib_store, module = store.engine, store, wasmjit.Module(store.engine, HARNESS_WAT)
        else:
            engine, lib_store, module = _wasmtime_store()
        world = worlds[lib]
        guest = Guest(lib, engine, lib_store, module, [(world.root / host, name) for host, name in preopens])
        results.append(scenario(guest, world))
        assert snapshot(tmp_path) == before, f"{lib.__name__} changed something outside the sandbox"
    if compare:
        assert results[1] == results[0], f"wasmjit {results[1]} != wasmtime {results[0]}"
    return results[-1]


# --- escapes by name: "..", absolute paths, symlinked directories on the way ------------------

DOTDOT_ESCAPES = [
    "..", "./..", "../", "../.", "../outside", "../outside/secret", "../outside/dir", "../outside/new",
    "a/../../outside/secret", "a/b/../../../x", "a/b/../../../outside/secret", "a/./../..",
    "../sandbox/file", "../sandbox", "../../../../../../../../etc/passwd", "../other/shared",
]
ABSOLUTE_ESCAPES = ["/", "/etc/passwd", "/etc", "/file", "//file", "/.", "{outside}/secret", "{sandbox}/file",
                    "{outside}/new"]
SYMLINKED_DIR_ESCAPES = [  # an intermediate component is a symlink that leads out
    "absdir/secret", "reldir/secret", "chaindir/secret", "reldir/dir", "reldir/new", "absdir/new",
    "a/outdir/secret", "dirlink/../reldir/secret", "rootabs/file", "reldir/.", "chaindir/./",
    "reldir/../outside/secret", "rel/.",
]

OPERATIONS: dict[str, Callable[[Guest, str], int]] = {
    "open": lambda g, p: g.open(3, p)[0],
    "open_follow": lambda g, p: g.open(3, p, FOLLOW)[0],
    "open_creat_trunc": lambda g, p: g.open(3, p, FOLLOW, CREAT | TRUNC, READ_WRITE)[0],
    "open_creat": lambda g, p: g.open(3, p, 0, CREAT, READ_WRITE)[0],
    "open_trunc": lambda g, p: g.open(3, p, FOLLOW, TRUNC, READ_WRITE)[0],
    "open_creat_excl": lambda g, p: g.open(3, p, FOLLOW, CREAT | EXCL, READ_WRITE)[0],
    "open_directory": lambda g, p: g.open(3, p, FOLLOW, DIRECTORY, DIR_ALL, DIR_ALL)[0],
    "create_directory": lambda g, p: g.mkdir(3, p),
    "unlink_file": lambda g, p: g.unlink(3, p),
    "remove_directory": lambda g, p: g.rmdir(3, p),
    "rename_from": lambda g, p: g.rename(3, p, 3, "moved"),
    "rename_file_to": lambda g, p: g.rename(3, "file", 3, p),
    "rename_dir_to": lambda g, p: g.rename(3, "d", 3, p),
    "rename_both": lambda g, p: g.rename(3, p, 3, "../outside/moved"),
    "link_from": lambda g, p: g.link(3, p, 3, "hard"),
    "link_to": lambda g, p: g.link(3, "file", 3, p),
    "link_both": lambda g, p: g.link(3, p, 3, "../outside/hard"),
    "symlink_at": lambda g, p: g.symlink("file", 3, p),
    "readlink": lambda g, p: g.readlink(3, p)[0],
    "filestat_get": lambda g, p: g.stat(3, p)[0],
    "filestat_get_follow": lambda g, p: g.stat(3, p, FOLLOW)[0],
    "set_times": lambda g, p: g.set_times(3, p),
    "set_times_follow": lambda g, p: g.set_times(3, p, FOLLOW),
}


@pytest.mark.parametrize("guest_name", ["/", "."])
@pytest.mark.parametrize("operation", OPERATIONS)
def test_escapes_are_refused(store: wasmjit.Store, tmp_path: Path, operation: str, guest_name: str) -> None:
    """Every path that leaves the preopened directory, by any route, is PERM for every call."""
    paths = DOTDOT_ESCAPES + ABSOLUTE_ESCAPES + SYMLINKED_DIR_ESCAPES

    def scenario(guest: Guest, world: World) -> list[tuple[str, int]]:
        return [(path, OPERATIONS[operation](guest, world.fill(path))) for path in paths]

    results = sandboxed(store, tmp_path, scenario, preopens=((SANDBOX, guest_name),))
    assert results == [(path, PERM) for path in paths]


def test_preopens_are_described(store: wasmjit.Store, tmp_path: Path) -> None:
    def scenario(guest: Guest, world: World) -> Any:
        return [guest.prestat(fd) for fd in range(6)], guest.readdir(3), guest.readdir(4)

    prestats, sandbox_listing, other_listing = sandboxed(
        store, tmp_path, scenario, preopens=((SANDBOX, "/"), ("other", "/mnt/other"), (SANDBOX, ".")))
    assert prestats == [(BADF, None)] * 3 + [(SUCCESS, b"/"), (SUCCESS, b"/mnt/other"), (SUCCESS, b".")]
    assert sandbox_listing == (SUCCESS, {".", "..", *os.listdir(tmp_path / "wasmjit" / SANDBOX)})
    assert other_listing == (SUCCESS, {".", "..", "shared"})


def test_no_route_between_preopens(store: wasmjit.Store, tmp_path: Path) -> None:
    """A directory preopened beside the sandbox is reachable by its own descriptor only."""
    def scenario(guest: Guest, world: World) -> Any:
        return (guest.read_file(3, "../other/shared"), guest.read_file(4, "../sandbox/file"),
                guest.read_file(4, "shared"), guest.read_file(3, "file"))

    assert sandboxed(store, tmp_path, scenario, preopens=((SANDBOX, "/"), ("other", "/other"))) == (
        (PERM, None), (PERM, None), (SUCCESS, b"other"), (SUCCESS, INSIDE))


# --- symlinks planted inside that lead out ------------------------------------------------------

LINKS_OUT = ["abs", "rel", "chain", "dangling_out", "absdir", "reldir", "chaindir", "a/outandin", "a/outdir",
             "rootabs"]


@pytest.mark.parametrize("link", LINKS_OUT)
def test_symlinks_leading_out_are_not_followed(store: wasmjit.Store, tmp_path: Path, link: str) -> None:
    """Following is PERM; not following stops at the link itself (O_NOFOLLOW: LOOP); creating or
    truncating through it never touches the target; O_CREAT|O_EXCL never follows (EXIST)."""
    def scenario(guest: Guest, world: World) -> Any:
        opened = {(lookup, oflags): guest.open(3, link, lookup, oflags, READ_WRITE)[0]
                  for lookup in (0, FOLLOW)
                  for oflags in (0, CREAT, CREAT | TRUNC, TRUNC, CREAT | EXCL)}
        return (opened, guest.open(3, link, FOLLOW, DIRECTORY, DIR_ALL, DIR_ALL)[0],
                guest.stat(3, link)[0], guest.stat(3, link)[1][0], guest.stat(3, link, FOLLOW),
                guest.set_times(3, link, FOLLOW), guest.readlink(3, link),
                guest.mkdir(3, link), guest.symlink("file", 3, link), guest.link(3, "file", 3, link),
                guest.open(3, f"{link}/", FOLLOW)[0], guest.link(3, link, 3, "x", lookup=FOLLOW))

    opened, directory, *rest = sandboxed(store, tmp_path, scenario)
    assert opened == {(lookup, oflags): EXIST if oflags == CREAT | EXCL else LOOP if lookup == 0 else PERM
                      for lookup in (0, FOLLOW) for oflags in (0, CREAT, CREAT | TRUNC, TRUNC, CREAT | EXCL)}
    assert directory == PERM
    target = os.readlink(tmp_path / "wasmjit" / SANDBOX / link)
    # the text of a relative link may be read; an absolute one would reveal the host's layout: PERM
    readlink = (PERM, None) if target.startswith("/") else (SUCCESS, target.encode())
    assert rest == [SUCCESS, FILETYPE_SYMBOLIC_LINK, (PERM, None), PERM, readlink, EXIST, EXIST, EXIST, PERM,
                    INVAL]


@pytest.mark.parametrize("link", LINKS_OUT)
def test_moving_a_link_leading_out_keeps_it_harmless(store: wasmjit.Store, tmp_path: Path, link: str) -> None:
    """Operations on the link itself (rename, hard link, set times, unlink) act inside only."""
    def scenario(guest: Guest, world: World) -> Any:
        return [guest.set_times(3, link), guest.rename(3, link, 3, "moved"), guest.stat(3, "moved", FOLLOW),
                guest.link(3, "moved", 3, "hard"), guest.read_file(3, "hard"),
                guest.open(3, "hard", FOLLOW, CREAT | TRUNC, READ_WRITE), guest.unlink(3, "hard"),
                guest.unlink(3, "moved"), guest.stat(3, "moved"), guest.stat(3, link)]

    assert sandboxed(store, tmp_path, scenario) == [
        SUCCESS, SUCCESS, (PERM, None), SUCCESS, (PERM, None), (PERM, None), SUCCESS, SUCCESS, (NOENT, None),
        (NOENT, None)]


@pytest.mark.parametrize("target", ["/etc/passwd", "/", "/file", "{outside}/secret", "{sandbox}/file"])
def test_path_symlink_refuses_absolute_targets(store: wasmjit.Store, tmp_path: Path, target: str) -> None:
    def scenario(guest: Guest, world: World) -> Any:
        before = sorted(os.listdir(world.sandbox))
        return guest.symlink(world.fill(target), 3, "evil"), sorted(os.listdir(world.sandbox)) == before

    assert sandboxed(store, tmp_path, scenario) == (PERM, True)


@pytest.mark.parametrize("target", ["../outside/secret", "a/../../outside/secret", "..", "reldir/secret"])
def test_guest_made_links_leading_out_cannot_be_followed(store: wasmjit.Store, tmp_path: Path,
                                                         target: str) -> None:
    """A relative link text that leads out may be written (wasmtime allows it) but never used."""
    def scenario(guest: Guest, world: World) -> Any:
        return (guest.symlink(target, 3, "made"), guest.readlink(3, "made"), guest.read_file(3, "made"),
                guest.open(3, "made", FOLLOW, CREAT | TRUNC, READ_WRITE), guest.stat(3, "made/secret", 0),
                guest.mkdir(3, "made/x"), guest.stat(3, "made")[1][0])

    assert sandboxed(store, tmp_path, scenario) == (
        SUCCESS, (SUCCESS, target.encode()), (PERM, None), (PERM, None), (PERM, None), PERM,
        FILETYPE_SYMBOLIC_LINK)


# --- what stays inside works --------------------------------------------------------------------


@pytest.mark.parametrize("guest_name", ["/", "."])
def test_paths_that_stay_inside_work(store: wasmjit.Store, tmp_path: Path, guest_name: str) -> None:
    reads = ["file", "./file", "a/../file", "a/b/../../file", "./a/./b/.././../file", "a/up", "inlink",
             "inlink2", "dirlink/../file", "dirlink/up", "a/sub/up", "dirlink/b/../note", "hops/l1",
             "d/../a/note"]

    def scenario(guest: Guest, world: World) -> Any:
        results = [guest.read_file(3, path) for path in reads]
        results += [guest.mkdir(3, "a/b/../c"), (world.sandbox / "a" / "c").is_dir(),
                    guest.rename(3, "a/../file", 3, "d/../a/./moved"), guest.read_file(3, "a/moved"),
                    guest.link(3, "a/moved", 3, "a/b/../../d/hard"), guest.read_file(3, "d/hard"),
                    guest.symlink("../a/moved", 3, "d/soft"), guest.read_file(3, "dirlink/../d/soft"),
                    guest.open(3, "a/../d/new", FOLLOW, CREAT | EXCL, READ_WRITE)[0],
                    guest.stat(3, "a/..", FOLLOW)[1][0], guest.stat(3, "dirlink/", 0)[1][0],
                    guest.stat(3, "dirlink", 0)[1][0], guest.stat(3, ".", FOLLOW)[1][0],
                    guest.unlink(3, "d/./soft"), guest.unlink(3, "a/b/../../d/hard"),
                    guest.rmdir(3, "a/c/../c")]
        return results

    results = sandboxed(store, tmp_path, scenario, preopens=((SANDBOX, guest_name),))
    note = (SUCCESS, b"note")
    assert results[: len(reads)] == [(SUCCESS, INSIDE)] * 11 + [note, (SUCCESS, INSIDE), note]
    assert results[len(reads) :] == [
        SUCCESS, True, SUCCESS, (SUCCESS, INSIDE), SUCCESS, (SUCCESS, INSIDE), SUCCESS, (SUCCESS, INSIDE),
        SUCCESS, FILETYPE_DIRECTORY, FILETYPE_DIRECTORY, FILETYPE_SYMBOLIC_LINK, FILETYPE_DIRECTORY,
        SUCCESS, SUCCESS, SUCCESS]


def test_directory_descriptors_are_their_own_sandbox(store: wasmjit.Store, tmp_path: Path) -> None:
    """A directory opened below the preopen cannot go back up through it, not even by renumbering
    it onto the preopen's number."""
    def scenario(guest: Guest, world: World) -> Any:
        errno, sub = guest.open(3, "a", 0, DIRECTORY, DIR_ALL, DIR_ALL)
        assert errno == SUCCESS and sub is not None
        paths = ("note", "b/../note", "../file", "b/../../file", "up", "sub/note", "outandin")
        results = [guest.read_file(sub, path) for path in paths]
        results += [guest.renumber(sub, 3), guest.read_file(3, "note"), guest.read_file(3, "../file"),
                    guest.prestat(3), guest.mkdir(3, "../escaped"), guest.read_file(sub, "note")]
        return results

    assert sandboxed(store, tmp_path, scenario) == [
        (SUCCESS, b"note"), (SUCCESS, b"note"), (PERM, None), (PERM, None), (PERM, None), (SUCCESS, b"note"),
        (PERM, None), SUCCESS, (SUCCESS, b"note"), (PERM, None), (BADF, None), PERM, (BADF, None)]


def test_symlink_loops(store: wasmjit.Store, tmp_path: Path) -> None:
    """A loop, or more than 40 expansions in one lookup, is LOOP; 40 is fine."""
    def scenario(guest: Guest, world: World) -> Any:
        follows = [guest.read_file(3, path) for path in ("loop1", "self", "a/../loop2", "hops/l0", "hops/l1")]
        return follows + [guest.read_file(3, "loop1/x", 0), guest.stat(3, "self", FOLLOW),
                          guest.stat(3, "self")[1][0], guest.open(3, "loop1", FOLLOW, CREAT, READ_WRITE),
                          guest.mkdir(3, "self/x"), guest.open(3, "self", 0)]

    assert sandboxed(store, tmp_path, scenario) == [
        (LOOP, None), (LOOP, None), (LOOP, None), (LOOP, None), (SUCCESS, INSIDE), (LOOP, None), (LOOP, None),
        FILETYPE_SYMBOLIC_LINK, (LOOP, None), LOOP, (LOOP, None)]


@pytest.mark.parametrize("path", [b"file\0../../outside/secret", b"../outside/secret\0", b"fi\xffle",
                                  b"\xff/../../outside/secret"])
def test_paths_are_not_truncated_or_reinterpreted(store: wasmjit.Store, tmp_path: Path, path: bytes) -> None:
    """A NUL byte is INVAL (no host path can hold it), invalid UTF-8 is ILSEQ."""
    def scenario(guest: Guest, world: World) -> Any:
        return guest.open(3, path)[0], guest.open(3, path, FOLLOW, CREAT | TRUNC, READ_WRITE)[0]

    expected = INVAL if b"\0" in path else ILSEQ
    assert sandboxed(store, tmp_path, scenario) == (expected, expected)


# --- descriptors that are not directories -------------------------------------------------------

PATH_CALLS: dict[str, Callable[[Guest, int], int]] = {  # each uses ``fd`` as its directory
    "path_open": lambda g, fd: g.open(fd, "file")[0],
    "path_create_directory": lambda g, fd: g.mkdir(fd, "x"),
    "path_unlink_file": lambda g, fd: g.unlink(fd, "file"),
    "path_remove_directory": lambda g, fd: g.rmdir(fd, "d"),
    "path_rename_from": lambda g, fd: g.rename(fd, "file", 3, "y"),
    "path_rename_to": lambda g, fd: g.rename(3, "file", fd, "y"),
    "path_link_from": lambda g, fd: g.link(fd, "file", 3, "y"),
    "path_link_to": lambda g, fd: g.link(3, "file", fd, "y"),
    "path_symlink": lambda g, fd: g.symlink("file", fd, "y"),
    "path_readlink": lambda g, fd: g.readlink(fd, "inlink")[0],
    "path_filestat_get": lambda g, fd: g.stat(fd, "file")[0],
    "path_filestat_set_times": lambda g, fd: g.set_times(fd, "file"),
    "fd_readdir": lambda g, fd: g.readdir(fd)[0],
}
FD_CALLS: dict[str, Callable[[Guest, int], int]] = {
    "fd_read": lambda g, fd: g.read(fd)[0],
    "fd_write": lambda g, fd: g.write(fd, b"x"),
    "fd_prestat_get": lambda g, fd: g.prestat(fd)[0],
    "fd_fdstat_set_rights": lambda g, fd: g.set_rights(fd, 0, 0),
    "fd_renumber_from": lambda g, fd: g.renumber(fd, 3),
    "fd_renumber_to": lambda g, fd: g.renumber(3, fd),
    "fd_close": lambda g, fd: g.close(fd),
}
NEVER_OPENED = [3, 4, 5, 99, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]


@pytest.mark.parametrize("call", [*PATH_CALLS, *FD_CALLS])
def test_descriptors_never_opened(store: wasmjit.Store, tmp_path: Path, call: str) -> None:
    """Nothing preopened: 3 and up are BADF (and fd_renumber onto them fails too)."""
    def scenario(guest: Guest, world: World) -> Any:
        return [(fd, {**PATH_CALLS, **FD_CALLS}[call](guest, fd)) for fd in NEVER_OPENED]

    assert sandboxed(store, tmp_path, scenario, preopens=()) == [(fd, BADF) for fd in NEVER_OPENED]


@pytest.mark.parametrize("call", [*PATH_CALLS, *FD_CALLS])
def test_closed_descriptors(store: wasmjit.Store, tmp_path: Path, call: str) -> None:
    def scenario(guest: Guest, world: World) -> Any:
        _, sub = guest.open(3, "a", 0, DIRECTORY, DIR_ALL, DIR_ALL)
        _, file = guest.open(3, "file")
        assert (sub, file) == (4, 5)
        closed = [guest.close(4), guest.close(5), guest.close(4)]
        action = {**PATH_CALLS, **FD_CALLS}[call]
        results = [action(guest, 4), action(guest, 5)]
        assert guest.close(3) == SUCCESS  # the preopen itself
        return closed, results, guest.read_file(3, "file"), guest.prestat(3)

    assert sandboxed(store, tmp_path, scenario) == (
        [SUCCESS, SUCCESS, BADF], [BADF, BADF], (BADF, None), (BADF, None))


@pytest.mark.parametrize("call", PATH_CALLS)
def test_standard_streams_are_not_directories(store: wasmjit.Store, tmp_path: Path, call: str) -> None:
    def scenario(guest: Guest, world: World) -> Any:
        return [PATH_CALLS[call](guest, fd) for fd in (0, 1, 2)] + [guest.prestat(fd)[0] for fd in (0, 1, 2)]

    assert sandboxed(store, tmp_path, scenario) == [BADF] * 6


@pytest.mark.parametrize("call", PATH_CALLS)
def test_files_are_not_directories(store: wasmjit.Store, tmp_path: Path, call: str) -> None:
    """A regular file's descriptor used as a directory is NOTDIR. wasmtime agrees for path_open and
    says BADF for the other calls; wasmjit says NOTDIR for all of them."""
    def scenario(guest: Guest, world: World) -> Any:
        _, file = guest.open(3, "file")
        assert file == 4
        return (PATH_CALLS[call](guest, 4), guest.prestat(4)[0], guest.read_file(3, "file/x"),
                guest.stat(3, "file/"))

    assert sandboxed(store, tmp_path, scenario, compare=call == "path_open") == (
        NOTDIR, BADF, (NOTDIR, None), (NOTDIR, None))


def test_renumbering_a_file_onto_the_preopen(store: wasmjit.Store, tmp_path: Path) -> None:
    def scenario(guest: Guest, world: World) -> Any:
        _, file = guest.open(3, "file")
        return (guest.renumber(file, 3), guest.open(3, "file")[0], guest.prestat(3), guest.read(3),
                guest.read(file))

    assert sandboxed(store, tmp_path, scenario) == (
        SUCCESS, NOTDIR, (BADF, None), (SUCCESS, INSIDE), (BADF, None))


# --- rights (wasmjit only: wasmtime ignores the rights a directory is opened with) --------------

DIR_NARROW = abi.rights("PATH_OPEN", "FD_READDIR", "PATH_FILESTAT_GET", "FD_FILESTAT_GET")
INHERIT_NARROW = abi.rights("FD_READ", "FD_SEEK")


def test_directory_opened_with_fewer_rights(store: wasmjit.Store, tmp_path: Path) -> None:
    def scenario(guest: Guest, world: World) -> Any:
        errno, sub = guest.open(3, "a", 0, DIRECTORY, DIR_NARROW, INHERIT_NARROW)
        assert errno == SUCCESS and sub is not None
        before = snapshot(world.sandbox / "a")
        refused = {
            "create": guest.open(sub, "new", 0, CREAT, READ_WRITE)[0],
            "truncate": guest.open(sub, "note", 0, TRUNC, READ_WRITE)[0],
            "mkdir": guest.mkdir(sub, "x"), "unlink": guest.unlink(sub, "note"),
            "rmdir": guest.rmdir(sub, "b"), "rename_from": guest.rename(sub, "note", 3, "moved"),
            "rename_to": guest.rename(3, "file", sub, "f"),
            "rename_within": guest.rename(sub, "note", sub, "n2"),
            "link_from": guest.link(sub, "note", 3, "hard"), "link_to": guest.link(3, "file", sub, "hard"),
            "symlink": guest.symlink("note", sub, "soft"), "readlink": guest.readlink(sub, "up")[0],
            "set_times": guest.set_times(sub, "note"),
        }
        allowed = [guest.stat(sub, "note")[0], guest.readdir(sub)[0], guest.read_file(sub, "note")]
        wanted = READ_WRITE | abi.rights("FD_FILESTAT_SET_SIZE")
        errno, note = guest.open(sub, "note", 0, 0, wanted, abi.RIGHTS_ALL)
        assert errno == SUCCESS and note is not None
        file_rights = guest.fdstat(note)
        written = guest.write(note, b"overwritten")
        errno, below = guest.open(sub, "b", 0, DIRECTORY, DIR_ALL, DIR_ALL)
        assert errno == SUCCESS and below is not None
        below_rights = guest.fdstat(below)
        below_refused = [guest.open(below, "x", 0, CREAT, READ_WRITE)[0], guest.readdir(below)[0]]
        assert snapshot(world.sandbox / "a") == before
        return (guest.fdstat(sub), refused, allowed, file_rights, written, below_rights, below_refused,
                guest.mkdir(3, "x"))

    sub_rights, refused, allowed, file_rights, written, below_rights, below_refused, mkdir = sandboxed(
        store, tmp_path, scenario, compare=False)
    assert sub_rights == (FILETYPE_DIRECTORY, DIR_NARROW, INHERIT_NARROW)
    assert refused == dict.fromkeys(refused, NOTCAPABLE)
    assert allowed == [SUCCESS, SUCCESS, (SUCCESS, b"note")]
    assert file_rights == (FILETYPE_REGULAR_FILE, INHERIT_NARROW, INHERIT_NARROW)
    assert written == NOTCAPABLE
    assert below_rights == (FILETYPE_DIRECTORY, abi.rights("FD_READ"), INHERIT_NARROW)
    assert below_refused == [NOTCAPABLE, NOTCAPABLE]
    assert mkdir == SUCCESS  # the preopen keeps its own rights


def test_rights_cannot_be_added_back(store: wasmjit.Store, tmp_path: Path) -> None:
    def scenario(guest: Guest, world: World) -> Any:
        _, preopen_base, preopen_inheriting = guest.fdstat(3)
        results = [
            guest.set_rights(3, DIR_NARROW, INHERIT_NARROW),
            guest.fdstat(3),
            guest.set_rights(3, preopen_base, preopen_inheriting),
            guest.set_rights(3, DIR_NARROW | abi.rights("PATH_CREATE_DIRECTORY"), INHERIT_NARROW),
            guest.set_rights(3, DIR_NARROW, INHERIT_NARROW | abi.rights("FD_WRITE")),
            guest.mkdir(3, "x"),
            guest.open(3, "file", 0, CREAT, READ_WRITE)[0],
            guest.set_rights(3, DIR_NARROW, INHERIT_NARROW),  # the same rights again: fine
            guest.set_rights(3, abi.rights("PATH_OPEN"), 0),
            guest.readdir(3)[0],
            guest.set_rights(3, DIR_NARROW, 0),
        ]
        _, file = guest.open(3, "file")
        assert file is not None
        results += [guest.fdstat(file), guest.read(file), guest.set_rights(file, READ, 0),
                    guest.set_rights(file, 0, 0), guest.read(file),
                    guest.set_rights(file, abi.rights("FD_READ"), 0), guest.set_rights(0, 0, 0),
                    guest.set_rights(1, 0, 0)]
        return results

    assert sandboxed(store, tmp_path, scenario, compare=False) == [
        SUCCESS, (FILETYPE_DIRECTORY, DIR_NARROW, INHERIT_NARROW), NOTCAPABLE, NOTCAPABLE, NOTCAPABLE,
        NOTCAPABLE, NOTCAPABLE, SUCCESS, SUCCESS, NOTCAPABLE, NOTCAPABLE,
        (FILETYPE_REGULAR_FILE, 0, 0), (NOTCAPABLE, None), NOTCAPABLE, SUCCESS, (NOTCAPABLE, None),
        NOTCAPABLE, BADF, BADF]
