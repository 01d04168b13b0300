"""WASI preview1 basics through a hand-written harness module that re-exports each function.

Scenarios that wasmtime-py runs the same way are checked against it; errno results are the
witx values (EBADF 8, EFAULT 21, EINVAL 28, ESPIPE 70).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import wasmtime

import wasmjit
from wasmjit import ExitTrap, Trap, WasmjitError

SUCCESS, EBADF, EFAULT, EINVAL, ESPIPE = 0, 8, 21, 28, 70

SIGNATURES = {  # name -> parameter types ("i" i32, "I" i64); every one but proc_exit returns an errno
    "args_sizes_get": "ii", "args_get": "ii", "environ_sizes_get": "ii", "environ_get": "ii",
    "fd_write": "iiii", "fd_read": "iiii", "fd_seek": "iIii", "fd_close": "i", "fd_fdstat_get": "ii",
    "clock_time_get": "iIi", "random_get": "ii", "proc_exit": "i",
}


def _harness_wat() -> str:
    imports, funcs = [], []
    for name, params in SIGNATURES.items():
        types = " ".join("i64" if p == "I" else "i32" for p in params)
        result = "" if name == "proc_exit" else "(result i32)"
        args = " ".join(f"(local.get {i})" for i in range(len(params)))
        sig = f"(param {types}) {result}".strip()
        imports.append(f'  (import "wasi_snapshot_preview1" "{name}" (func ${name} {sig}))')
        funcs.append(f'  (func (export "{name}") {sig} (call ${name} {args}))')
    return "\n".join(["(module", *imports, *funcs, '  (memory (export "memory") 1))'])


HARNESS_WAT = _harness_wat()
PAGE = 65536


def harness(lib: Any, engine: Any, store: Any, configure: Callable[[Any], None]) -> Any:
    """The harness instantiated with a WasiConfig that ``configure`` fills in."""
    config = lib.WasiConfig()
    configure(config)
    store.set_wasi(config)
    linker = lib.Linker(engine)
    linker.define_wasi()
    return linker.instantiate(store, lib.Module(engine, HARNESS_WAT)).exports(store)


def same_as_wasmtime(scenario: Callable[[Any, Any, Any], Any], store: wasmjit.Store) -> Any:
    """Run ``scenario(lib, engine, store)`` on wasmtime-py and on wasmjit; both must agree."""
    engine = wasmtime.Engine()
    expected = scenario(wasmtime, engine, wasmtime.Store(engine))
    got = scenario(wasmjit, store.engine, store)
    assert got == expected
    return got


def u32s(mem: Any, store: Any, ptr: int, count: int) -> list[int]:
    return list(struct.unpack(f"<{count}I", mem.read(store, ptr, ptr + 4 * count)))


def c_strings(mem: Any, store: Any, ptrs: list[int]) -> list[bytes]:
    data = mem.read(store, 0, PAGE)
    return [bytes(data[p : data.index(0, p)]) for p in ptrs]


def put_iovecs(mem: Any, store: Any, at: int, iovecs: list[tuple[int, int]]) -> None:
    mem.write(store, b"".join(struct.pack("<II", ptr, length) for ptr, length in iovecs), at)


# --- arguments and environment -----------------------------------------------------------------


@pytest.mark.parametrize(("sizes", "get", "setting", "values", "expected"), [
    ("args_sizes_get", "args_get", "argv", ["prog", "two words", "ü", ""],
     [b"prog", b"two words", "ü".encode(), b""]),
    ("args_sizes_get", "args_get", "argv", [], []),
    ("environ_sizes_get", "environ_get", "env", [("HOME", "/home/x"), ("EMPTY", ""), ("A", "b=c")],
     [b"HOME=/home/x", b"EMPTY=", b"A=b=c"]),
])
def test_string_lists(store: wasmjit.Store, sizes: str, get: str, setting: str, values: list,
                      expected: list[bytes]) -> None:
    def scenario(lib: Any, engine: Any, store: Any) -> Any:
        exports = harness(lib, engine, store, lambda config: setattr(config, setting, values))
        mem = exports["memory"]
        assert exports[sizes](store, 0, 4) == SUCCESS
        count, size = u32s(mem, store, 0, 2)
        assert exports[get](store, 100, 1000) == SUCCESS
        ptrs = u32s(mem, store, 100, count)
        return count, size, ptrs, c_strings(mem, store, ptrs), mem.read(store, 1000 + size, 1000 + size + 1)

    count, size, ptrs, strings, after = same_as_wasmtime(scenario, store)
    total = sum(len(s) + 1 for s in expected)
    assert (count, size, strings, after) == (len(expected), total, expected, b"\0")
    assert ptrs == [1000 + sum(len(s) + 1 for s in expected[:i]) for i in range(len(expected))]


# --- standard streams --------------------------------------------------------------------------


def test_stdout_and_stderr_files(store: wasmjit.Store, tmp_path: Path) -> None:
    def scenario(lib: Any, engine: Any, store: Any) -> Any:
        out, err = tmp_path / f"{lib.__name__}.out", tmp_path / f"{lib.__name__}.err"

        def configure(config: Any) -> None:
            config.stdout_file = str(out)
            config.stderr_file = out.with_suffix(".err")

        exports = harness(lib, engine, store, configure)
        mem = exports["memory"]
        mem.write(store, b"hello, world\n", 200)
        put_iovecs(mem, store, 0, [(200, 7), (207, 6), (300, 0)])
        results = [exports["fd_write"](store, 1, 0, 1, 64), u32s(mem, store, 64, 1)]
        results += [exports["fd_write"](store, 2, 8, 1, 64), u32s(mem, store, 64, 1)]
        results += [exports["fd_write"](store, 1, 8, 1, 64), exports["fd_write"](store, 1, 16, 1, 64),
                    exports["fd_write"](store, 1, 0, 0, 64), u32s(mem, store, 64, 1)]
        return results, out.read_bytes(), err.read_bytes()

    assert same_as_wasmtime(scenario, store) == (
        [0, [7], 0, [6], 0, 0, 0, [0]], b"hello, world\n", b"world\n")


def test_fd_write_and_read_use_every_iovec(store: wasmjit.Store, tmp_path: Path) -> None:
    """wasmjit gathers and scatters all iovecs at once (wasmtime does one per call: short counts)."""
    (tmp_path / "in").write_bytes(b"0123456789")

    def configure(config: wasmjit.WasiConfig) -> None:
        config.stdin_file = tmp_path / "in"
        config.stdout_file = tmp_path / "out"

    exports = harness(wasmjit, store.engine, store, configure)
    mem = exports["memory"]
    mem.write(store, b"hello, world\n", 200)
    put_iovecs(mem, store, 0, [(200, 7), (300, 0), (207, 6)])
    assert (exports["fd_write"](store, 1, 0, 3, 64), u32s(mem, store, 64, 1)) == (SUCCESS, [13])
    assert (tmp_path / "out").read_bytes() == b"hello, world\n"
    put_iovecs(mem, store, 0, [(400, 3), (500, 4), (600, 5)])
    assert (exports["fd_read"](store, 0, 0, 3, 64), u32s(mem, store, 64, 1)) == (SUCCESS, [10])
    assert [mem.read(store, p, p + n) for p, n in ((400, 3), (500, 4), (600, 5))] == [
        bytearray(b"012"), bytearray(b"3456"), bytearray(b"789\0\0")]


def test_stdin_file(store: wasmjit.Store, tmp_path: Path) -> None:
    source = tmp_path / "input.txt"
    source.write_bytes(b"abcdefgh")

    def scenario(lib: Any, engine: Any, store: Any) -> Any:
        exports = harness(lib, engine, store, lambda config: setattr(config, "stdin_file", str(source)))
        mem = exports["memory"]
        put_iovecs(mem, store, 0, [(200, 3), (300, 10)])
        first = exports["fd_read"](store, 0, 0, 1, 64), u32s(mem, store, 64, 1)
        second = exports["fd_read"](store, 0, 8, 1, 64), u32s(mem, store, 64, 1)
        third = exports["fd_read"](store, 0, 8, 1, 64), u32s(mem, store, 64, 1)
        return first, second, third, mem.read(store, 200, 203), mem.read(store, 300, 306)

    assert same_as_wasmtime(scenario, store) == (
        (0, [3]), (0, [5]), (0, [0]), bytearray(b"abc"), bytearray(b"defgh\0"))


def test_unconfigured_streams_are_empty(store: wasmjit.Store) -> None:
    def scenario(lib: Any, engine: Any, store: Any) -> Any:
        exports = harness(lib, engine, store, lambda config: None)
        mem = exports["memory"]
        put_iovecs(mem, store, 0, [(200, 5)])
        return (exports["fd_read"](store, 0, 0, 1, 64), u32s(mem, store, 64, 1),
                exports["fd_write"](store, 1, 0, 1, 64), u32s(mem, store, 64, 1))

    assert same_as_wasmtime(scenario, store) == (0, [0], 0, [5])


@pytest.mark.parametrize("file_backed", [False, True])
def test_standard_streams_do_not_seek(store: wasmjit.Store, tmp_path: Path, file_backed: bool) -> None:
    def scenario(lib: Any, engine: Any, store: Any) -> Any:
        def configure(config: Any) -> None:
            if file_backed:
                (tmp_path / "in").write_bytes(b"data")
                config.stdin_file = str(tmp_path / "in")
                config.stdout_file = str(tmp_path / f"{lib.__name__}.out")

        exports = harness(lib, engine, store, configure)
        return [exports["fd_seek"](store, fd, 0, whence, 64) for fd in (0, 1, 2) for whence in (0, 1)]

    assert same_as_wasmtime(scenario, store) == [ESPIPE] * 6


@pytest.mark.parametrize(("name", "args"), [
    ("fd_write", (9, 0, 1, 64)), ("fd_read", (3, 0, 1, 64)), ("fd_seek", (9, 0, 0, 64)),
    ("fd_fdstat_get", (100, 64)), ("fd_close", (9,)), ("fd_write", (-1, 0, 1, 64)),
])
def test_bad_descriptor(store: wasmjit.Store, name: str, args: tuple) -> None:
    assert same_as_wasmtime(lambda lib, engine, store: harness(lib, engine, store, lambda c: None)[name](
        store, *args), store) == EBADF


def test_closed_descriptor(store: wasmjit.Store) -> None:
    exports = harness(wasmjit, store.engine, store, lambda config: None)
    assert exports["fd_close"](store, 1) == SUCCESS
    assert exports["fd_write"](store, 1, 0, 0, 64) == EBADF
    assert exports["fd_close"](store, 1) == EBADF
    assert exports["fd_write"](store, 2, 0, 0, 64) == SUCCESS


# --- pointers out of bounds: EFAULT (wasmtime traps instead) ------------------------------------


@pytest.mark.parametrize(("name", "args", "iovecs"), [
    ("args_sizes_get", (PAGE - 2, 0), None),
    ("args_sizes_get", (0, PAGE), None),
    ("args_get", (PAGE - 4, 0), None),
    ("environ_sizes_get", (PAGE - 3, 0), None),
    ("environ_get", (0, PAGE - 1), None),
    ("fd_write", (1, PAGE - 4, 1, 64), None),  # the iovec array
    ("fd_write", (1, 0, 1, 64), [(PAGE - 2, 3)]),  # an iovec's buffer
    ("fd_write", (1, 0, 1, PAGE - 1), [(100, 1)]),  # where nwritten goes
    ("fd_read", (0, 0, 1, 64), [(PAGE - 1, 2)]),
    ("clock_time_get", (0, 1, PAGE - 7), None),
    ("random_get", (PAGE - 9, 10), None),
    ("random_get", (0xFFFFFFFF, 1), None),
])
def test_pointer_out_of_bounds_is_efault(store: wasmjit.Store, name: str, args: tuple,
                                         iovecs: list | None) -> None:
    def configure(config: wasmjit.WasiConfig) -> None:
        config.argv = ["prog", "arg"]
        config.env = [("K", "V")]

    exports = harness(wasmjit, store.engine, store, configure)
    if iovecs:
        put_iovecs(exports["memory"], store, 0, iovecs)
    assert exports[name](store, *args) == EFAULT


# --- clocks, randomness, exit -------------------------------------------------------------------


def test_clock_time_get(store: wasmjit.Store) -> None:
    exports = harness(wasmjit, store.engine, store, lambda config: None)
    mem = exports["memory"]

    def now(clock: int) -> int:
        assert exports["clock_time_get"](store, clock, 1, 8) == SUCCESS
        return struct.unpack("<Q", mem.read(store, 8, 16))[0]

    before = time.time_ns()
    realtime = now(0)
    assert before <= realtime <= time.time_ns()
    first = now(1)
    assert 0 < first <= now(1)
    assert exports["clock_time_get"](store, 9, 1, 8) == EINVAL


def test_random_get(store: wasmjit.Store) -> None:
    exports = harness(wasmjit, store.engine, store, lambda config: None)
    mem = exports["memory"]
    assert exports["random_get"](store, 100, 32) == SUCCESS
    first = mem.read(store, 96, 136)
    assert first[:4] == first[36:] == bytearray(4)  # only the 32 requested bytes change
    assert exports["random_get"](store, 100, 32) == SUCCESS
    assert mem.read(store, 100, 132) != first[4:36] != bytearray(32)
    assert exports["random_get"](store, PAGE, 0) == SUCCESS


@pytest.mark.parametrize("code", [0, 3, 125])
def test_proc_exit(store: wasmjit.Store, code: int) -> None:
    def scenario(lib: Any, engine: Any, store: Any) -> Any:
        exports = harness(lib, engine, store, lambda config: None)
        with pytest.raises(lib.ExitTrap) as info:
            exports["proc_exit"](store, code)
        return info.value.code

    assert same_as_wasmtime(scenario, store) == code


@pytest.mark.parametrize("code", [126, 255, -1])
def test_proc_exit_rejects_invalid_statuses(store: wasmjit.Store, code: int) -> None:
    exports = harness(wasmjit, store.engine, store, lambda config: None)
    with pytest.raises(Trap, match=r"exit with invalid exit status outside of \[0..126\)") as info:
        exports["proc_exit"](store, code)
    assert not isinstance(info.value, ExitTrap)
    with pytest.raises(wasmtime.WasmtimeError, match=r"outside of \[0..126\)"):
        engine = wasmtime.Engine()
        reference = wasmtime.Store(engine)
        harness(wasmtime, engine, reference, lambda config: None)["proc_exit"](reference, code)


def test_exit_trap_is_a_wasmjit_error_not_a_trap() -> None:
    exit_ = ExitTrap(4)
    assert (exit_.code, str(exit_)) == (4, "Exited with i32 exit status 4")
    assert isinstance(exit_, WasmjitError) and not isinstance(exit_, Trap)


# --- configuration errors -----------------------------------------------------------------------


def test_wasi_needs_a_configuration(store: wasmjit.Store) -> None:
    """wasmtime-py aborts the process here; wasmjit raises when the first WASI call is made."""
    linker = wasmjit.Linker(store.engine)
    linker.define_wasi()
    exports = linker.instantiate(store, wasmjit.Module(store.engine, HARNESS_WAT)).exports(store)
    with pytest.raises(WasmjitError, match="WASI is not configured"):
        exports["random_get"](store, 0, 4)


def test_wasi_needs_the_callers_memory(store: wasmjit.Store) -> None:
    store.set_wasi(wasmjit.WasiConfig())
    linker = wasmjit.Linker(store.engine)
    linker.define_wasi()
    exports = linker.instantiate(store, wasmjit.Module(store.engine, """(module
      (import "wasi_snapshot_preview1" "random_get" (func $r (param i32 i32) (result i32)))
      (func (export "go") (result i32) (call $r (i32.const 0) (i32.const 0))))""")).exports(store)
    with pytest.raises(WasmjitError, match="export `memory`"):
        exports["go"](store)


def test_unopenable_stream_file(store: wasmjit.Store, tmp_path: Path) -> None:
    config = wasmjit.WasiConfig()
    config.stdin_file = tmp_path / "does-not-exist"
    with pytest.raises(WasmjitError, match="does-not-exist"):
        store.set_wasi(config)


def test_config_properties() -> None:
    config = wasmjit.WasiConfig()
    config.argv = ("a", 1)
    config.env = {"K": "V"}.items()
    config.stdout_file = Path("/tmp/x")
    assert (config.argv, config.env, config.stdout_file) == (["a", "1"], [("K", "V")], "/tmp/x")
