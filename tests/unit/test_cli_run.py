"""``wasmjit run`` behaves as ``wasmtime run``: exit statuses, traps, link and load errors, flags,
and what a WASI guest sees (argv, environment, preopened directories, standard streams).

The guests are WAT programs using WASI imports directly. Most runs call ``wasmjit.cli.main`` in this
process (fast; output read with capfd); what needs a real process (its exit status, stdin, the
order and timing of output on pipes, no Python traceback) runs ``python -m wasmjit``. Every test
takes ``tier`` and passes ``--tier``. tests/unit/test_cli.py covers --invoke, --tier-stats,
validate and the basic cases; this file does not repeat them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import wasmjit
from wasmjit import cli

WASI = "wasi_snapshot_preview1"
EXIT_TRAP = 134
PERM, NOENT, BADF = 63, 44, 8  # WASI errnos, which cat.wat exits with when an open fails

PRELUDE = f"""
  (import "{WASI}" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "{WASI}" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "{WASI}" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "{WASI}" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "{WASI}" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "{WASI}" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "{WASI}" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "{WASI}" "fd_prestat_dir_name" (func $fd_prestat_dir_name (param i32 i32 i32) (result i32)))
  (import "{WASI}" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "{WASI}" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 2)
  ;; 0..63 scratch (an iovec at 0, results at 8, 12, 16, 20, 24, 28); 64.. data;
  ;; 1024.. pointer arrays; 4096.. strings; 65536.. the I/O buffer
  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $n))
  ;; write all of [ptr, ptr + len) to fd, or exit with the errno
  (func $write (param $fd i32) (param $ptr i32) (param $len i32) (local $errno i32)
    (block $done (loop $more
      (br_if $done (i32.eqz (local.get $len)))
      (i32.store (i32.const 0) (local.get $ptr))
      (i32.store (i32.const 4) (local.get $len))
      (local.set $errno (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
      (if (local.get $errno) (then (call $proc_exit (local.get $errno))))
      (local.set $ptr (i32.add (local.get $ptr) (i32.load (i32.const 8))))
      (local.set $len (i32.sub (local.get $len) (i32.load (i32.const 8))))
      (br $more))))
  (func $newline (param $fd i32)
    (i32.store8 (i32.const 60) (i32.const 10))
    (call $write (local.get $fd) (i32.const 60) (i32.const 1)))
  ;; print the count C strings whose pointers start at ptrs, one a line
  (func $print_lines (param $ptrs i32) (param $count i32) (local $i i32) (local $s i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
      (local.set $s (i32.load (i32.add (local.get $ptrs) (i32.shl (local.get $i) (i32.const 2)))))
      (call $write (i32.const 1) (local.get $s) (call $strlen (local.get $s)))
      (call $newline (i32.const 1))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next))))
  ;; copy fd to stdout until end of file (a failed read exits with its errno)
  (func $copy (param $fd i32) (local $errno i32)
    (block $eof (loop $more
      (i32.store (i32.const 0) (i32.const 65536))
      (i32.store (i32.const 4) (i32.const 65536))
      (local.set $errno (call $fd_read (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 12)))
      (if (local.get $errno) (then (call $proc_exit (local.get $errno))))
      (br_if $eof (i32.eqz (i32.load (i32.const 12))))
      (call $write (i32.const 1) (i32.const 65536) (i32.load (i32.const 12)))
      (br $more))))
  ;; load argv (pointers at 1024, strings at 4096) and return argc
  (func $argc (result i32)
    (drop (call $args_sizes_get (i32.const 16) (i32.const 20)))
    (drop (call $args_get (i32.const 1024) (i32.const 4096)))
    (i32.load (i32.const 16)))
"""


def program(body: str, extra: str = "", imports: str = "") -> str:
    """A WASI command: ``imports``, the prelude's imports and helpers, ``extra`` fields, ``_start``."""
    return f'(module{imports}{PRELUDE}{extra}\n  (func $start (export "_start") {body}))'


def say(fd: int, text: str, at: int) -> tuple[str, str]:
    """(instruction, data field) writing ``text`` to ``fd`` from address ``at``."""
    escaped = "".join(f"\\{b:02x}" for b in text.encode())
    return (f"(call $write (i32.const {fd}) (i32.const {at}) (i32.const {len(text.encode())}))",
            f'(data (i32.const {at}) "{escaped}")')


def exits_with(code: int, before: str = "") -> str:
    """Writes ``before`` to stdout, then proc_exit(code) (code may be any i32)."""
    write, data = say(1, before, 64)
    return program(f"{write} (call $proc_exit (i32.const {code})) unreachable", data)


def _trapping() -> str:
    write, data = say(1, "before\n", 64)
    return program(f"{write} (call $outer)",
                   f"{data}\n  (func $inner (unreachable))\n  (func $outer (call $inner))")


def _interleaved() -> str:
    parts = [say(fd, text, 64 + 16 * i) for i, (fd, text) in
             enumerate([(1, "out1\n"), (2, "err1\n"), (1, "out2\n"), (2, "err2\n"), (1, "out3\n")])]
    return program(" ".join(w for w, _ in parts), "\n".join(d for _, d in parts))


def _unknown_import() -> str:
    """Calls host::missing only when given an argument; prints around the call."""
    before, data1 = say(1, "before\n", 64)
    after, data2 = say(1, "after\n", 96)
    return program(f"""{before}
    (if (i32.gt_u (call $argc) (i32.const 1)) (then (drop (call $missing (i32.const 1)))))
    {after}""", f"{data1}\n{data2}", '\n  (import "host" "missing" (func $missing (param i32) (result i32)))')


PROGRAMS = {
    "echo_args.wat": program("(call $print_lines (i32.const 1024) (call $argc))"),
    "echo_env.wat": program("""
    (drop (call $environ_sizes_get (i32.const 16) (i32.const 20)))
    (drop (call $environ_get (i32.const 1024) (i32.const 4096)))
    (call $print_lines (i32.const 1024) (i32.load (i32.const 16)))"""),
    # cat: stdin; or argv[1] opened relative to the first preopen (fd 3), exit status = errno if that fails
    "cat.wat": program("""(local $errno i32)
    (if (i32.lt_u (call $argc) (i32.const 2)) (then (call $copy (i32.const 0)) (return)))
    (local.set $errno (call $path_open (i32.const 3) (i32.const 1) (i32.load (i32.const 1028))
      (call $strlen (i32.load (i32.const 1028))) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0)
      (i32.const 24)))
    (if (local.get $errno) (then (call $proc_exit (local.get $errno))))
    (call $copy (i32.load (i32.const 24)))"""),
    # the guest names of the preopened directories, one a line
    "preopens.wat": program("""(local $fd i32)
    (local.set $fd (i32.const 3))
    (block $done (loop $next
      (br_if $done (call $fd_prestat_get (local.get $fd) (i32.const 24)))
      (drop (call $fd_prestat_dir_name (local.get $fd) (i32.const 4096) (i32.load (i32.const 28))))
      (call $write (i32.const 1) (i32.const 4096) (i32.load (i32.const 28)))
      (call $newline (i32.const 1))
      (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
      (br $next)))"""),
    "interleaved.wat": _interleaved(),
    "trap.wat": _trapping(),
    "recursion.wat": '(module (func $f (call $f)) (func (export "_start") (call $f)))',
    "out_of_bounds.wat": '(module (memory 1) (func (export "_start") (drop (i32.load (i32.const 65536)))))',
    "unknown_import.wat": _unknown_import(),
    "unknown_wasi.wat": f'(module (import "{WASI}" "no_such_function" (func)) (func (export "_start")))',
    "unknown_memory.wat": '(module (import "env" "memory" (memory 1)) (func (export "_start")))',
    "unknown_global.wat": '(module (import "env" "g" (global i32)) (func (export "_start")))',
    "wrong_type.wat": f'(module (import "{WASI}" "fd_write" (func (param i32))) (func (export "_start")))',
    **{f"exit{code}.wat": exits_with(code, "bye\n") for code in (0, 3, 125, 126, 255, -1)},
    "syntax_error.wat": "(module (func (i32.add)",
    "type_error.wat": "(module (func (result i32)))",
}
BINARIES = {
    "truncated.wasm": (b"\0asm\x01\0\0\0\x01\x05\x01\x60\0", "length out of bounds", 0x8),
    "bad_magic.wasm": (b"\0asx\x01\0\0\0", "magic header not detected", 0x0),
    "bad_version.wasm": (b"\0asm\x02\0\0\0", "unknown binary version", 0x4),
    "bad_section.wasm": (b"\0asm\x01\0\0\0\x0d\0", "malformed section id", 0x8),
    "empty.wasm": (b"", "unexpected end", 0x0),
}


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("programs")
    for name, text in PROGRAMS.items():
        (folder / name).write_text(text)
    for name, (data, _, _) in BINARIES.items():
        (folder / name).write_bytes(data)
    (folder / "echo_args.wasm").write_bytes(wasmjit.wat2wasm(PROGRAMS["echo_args.wat"]))
    return folder


def run_in_process(capfd: pytest.CaptureFixture[str], tier: str, *args: str | Path) -> tuple[int, str, str]:
    """``wasmjit run --tier TIER ARGS`` through ``cli.main``: (exit status, stdout, stderr)."""
    try:
        status = cli.main(["run", "--tier", tier, *map(str, args)])
    except SystemExit as exit_:  # argparse's errors
        status = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capfd.readouterr()
    assert "Traceback" not in err
    return status, out, err


def run_process(tier: str, *args: str | Path, **options: object) -> subprocess.CompletedProcess[bytes]:
    """``python -m wasmjit run --tier TIER ARGS`` as a process; ``options`` go to subprocess.run."""
    options.setdefault("capture_output", True)
    proc = subprocess.run([sys.executable, "-m", "wasmjit", "run", "--tier", tier, *map(str, args)],
                          timeout=120, **options)  # type: ignore[call-overload]
    assert b"Traceback" not in (proc.stderr or b"")
    return proc


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# --- exit statuses and traps ----------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 3, 125])
def test_proc_exit_is_the_exit_status(tier: str, programs: Path, code: int) -> None:
    """Output written before proc_exit is not lost; nothing is added."""
    proc = run_process(tier, programs / f"exit{code}.wat")
    assert (proc.returncode, proc.stdout, proc.stderr) == (code, b"bye\n", b"")


@pytest.mark.parametrize("code", [126, 255, -1])
def test_proc_exit_outside_0_to_125_is_a_trap(capfd: pytest.CaptureFixture[str], tier: str, programs: Path,
                                              code: int) -> None:
    status, out, err = run_in_process(capfd, tier, programs / f"exit{code}.wat")
    assert (status, out) == (EXIT_TRAP, "bye\n")
    assert err.startswith("error: ")
    assert err.splitlines()[-1] == "    exit with invalid exit status outside of [0..126)"


def test_returning_from_start_exits_0(capfd: pytest.CaptureFixture[str], tier: str, programs: Path) -> None:
    module = programs / "echo_args.wat"
    assert run_in_process(capfd, tier, module) == (0, f"{module}\n", "")


def test_trap_in_start(tier: str, programs: Path) -> None:
    """134, what was written before the trap, then ``error:`` and the wasm backtrace (innermost
    first) on stderr; no Python traceback."""
    proc = run_process(tier, programs / "trap.wat")
    assert (proc.returncode, proc.stdout) == (EXIT_TRAP, b"before\n")
    lines = proc.stderr.decode().splitlines()
    assert lines[0] == "error: error while executing at wasm backtrace:"
    frames = [re.fullmatch(r" +(\d+): +0x[0-9a-f]+ - <unknown>!(.+)", line) for line in lines[1:4]]
    assert [(m.group(1), m.group(2)) for m in frames if m] == [("0", "inner"), ("1", "outer"), ("2", "start")]
    assert lines[4:] == ["", "Caused by:", "    wasm trap: wasm `unreachable` instruction executed"]


@pytest.mark.parametrize(("module", "cause"), [
    ("recursion.wat", "call stack exhausted"),
    ("out_of_bounds.wat", "out of bounds memory access"),
])
def test_other_traps(tier: str, programs: Path, module: str, cause: str) -> None:
    proc = run_process(tier, programs / module)
    assert (proc.returncode, proc.stdout) == (EXIT_TRAP, b"")
    lines = proc.stderr.decode().splitlines()
    assert lines[0] == "error: error while executing at wasm backtrace:"
    assert lines[-3:] == ["", "Caused by:", f"    wasm trap: {cause}"]


# --- linking -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("module", "message"), [
    ("unknown_import.wat", "error: unknown import: `host::missing` has not been defined"),
    ("unknown_wasi.wat", f"error: unknown import: `{WASI}::no_such_function` has not been defined"),
    ("unknown_memory.wat", "error: unknown import: `env::memory` has not been defined"),
    ("unknown_global.wat", "error: unknown import: `env::g` has not been defined"),
    ("wrong_type.wat", f"error: incompatible import type for `{WASI}::fd_write`: expected [i32] -> [], "
                       "found [i32 i32 i32 i32] -> [i32]"),
])
def test_imports_that_do_not_link(capfd: pytest.CaptureFixture[str], tier: str, programs: Path, module: str,
                                  message: str) -> None:
    """Exit 1 with one line naming ``module::name``, before anything runs."""
    status, out, err = run_in_process(capfd, tier, programs / module, "call-it")
    assert (status, out, one_error_line(err)) == (1, "", message)


def test_unknown_imports_trap_only_when_called(capfd: pytest.CaptureFixture[str], tier: str,
                                               programs: Path) -> None:
    module = programs / "unknown_import.wat"
    assert run_in_process(capfd, tier, "--unknown-imports-trap", module) == (0, "before\nafter\n", "")
    status, out, err = run_in_process(capfd, tier, "--unknown-imports-trap", module, "call-it")
    assert (status, out) == (EXIT_TRAP, "before\n")
    lines = err.splitlines()
    assert lines[0] == "error: error while executing at wasm backtrace:"
    assert lines[-1] == "    unknown import: `host::missing` has not been defined"


@pytest.mark.parametrize("module", ["unknown_memory.wat", "unknown_global.wat", "wrong_type.wat"])
def test_unknown_imports_trap_covers_functions_only(capfd: pytest.CaptureFixture[str], tier: str,
                                                    programs: Path, module: str) -> None:
    """Only unknown *functions* become traps; other unknown imports and wrong types still fail."""
    status, out, err = run_in_process(capfd, tier, "--unknown-imports-trap", programs / module)
    assert (status, out) == (1, "")
    line = one_error_line(err)
    assert line.startswith(("error: unknown import: `env::", "error: incompatible import type"))


# --- loading -----------------------------------------------------------------------------------


@pytest.mark.parametrize("module", list(BINARIES))
def test_malformed_binary(capfd: pytest.CaptureFixture[str], tier: str, programs: Path, module: str) -> None:
    _, message, offset = BINARIES[module]
    status, out, err = run_in_process(capfd, tier, programs / module, "arg")
    assert (status, out, one_error_line(err)) == (1, "", f"error: {message} (at offset {offset:#x})")


def test_malformed_text(capfd: pytest.CaptureFixture[str], tier: str, programs: Path) -> None:
    status, out, err = run_in_process(capfd, tier, programs / "syntax_error.wat")
    assert (status, out, one_error_line(err)) == (1, "", "error: expected `)`")
    status, out, err = run_in_process(capfd, tier, programs / "type_error.wat")
    line = one_error_line(err)
    assert (status, out, line) == (1, "", "error: type mismatch (in function 0, at offset 0x18)")


@pytest.mark.parametrize("what", ["missing", "directory"])
def test_unreadable_module(capfd: pytest.CaptureFixture[str], tier: str, tmp_path: Path, what: str) -> None:
    path = tmp_path / "missing.wasm" if what == "missing" else tmp_path
    reason = "No such file or directory" if what == "missing" else "Is a directory"
    status, out, err = run_in_process(capfd, tier, path, "arg", "--flag")
    assert (status, out, one_error_line(err)) == (1, "", f"error: cannot read {str(path)!r}: {reason}")


# --- flags -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("flags", "status", "message"), [
    (["--bogus"], 2, "error: unrecognized arguments: --bogus"),
    (["-x"], 2, "error: unrecognized arguments: -x"),
    (["--dir", "{tmp}/no-such-dir"], 1, "error: cannot preopen directory '{tmp}/no-such-dir': "
                                        "No such file or directory"),
    (["--dir", "{tmp}/a-file::/x"], 1, "error: cannot preopen directory '{tmp}/a-file': Not a directory"),
    (["--env", "=x"], 1, "error: invalid --env value '=x': expected NAME[=VAL]"),
    (["--env", "="], 1, "error: invalid --env value '=': expected NAME[=VAL]"),
    (["--tier-stats=yes"], 2, "error: argument --tier-stats: ignored explicit argument 'yes'"),
])
def test_bad_flags(capfd: pytest.CaptureFixture[str], tier: str, programs: Path, tmp_path: Path,
                   flags: list[str], status: int, message: str) -> None:
    """Exit non-zero with one ``error:`` line and no usage text; the guest does not run."""
    (tmp_path / "a-file").write_text("")
    flags = [flag.format(tmp=tmp_path) for flag in flags]
    got = run_in_process(capfd, tier, *flags, programs / "echo_args.wat", "arg")
    assert (got[0], got[1], one_error_line(got[2])) == (status, "", message.format(tmp=tmp_path))


@pytest.mark.parametrize("args", [["--dir"], ["--env"], ["--tier"], []])
def test_missing_values(capfd: pytest.CaptureFixture[str], args: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", *args])
    assert exit_.value.code == 2
    line = one_error_line(capfd.readouterr().err)
    assert "expected one argument" in line if args else "required: MODULE" in line


def test_bad_flags_in_a_real_process(tier: str, programs: Path) -> None:
    proc = run_process(tier, "--bogus", programs / "echo_args.wat")
    assert (proc.returncode, proc.stdout) == (2, b"")
    assert proc.stderr == b"error: unrecognized arguments: --bogus\n"


# --- what the guest sees -------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    [],
    ["a", "two words", "", "ü", "--dir", "x", "-x", "--", "--env=A=1", "--tier", "bogus", "--invoke"],
])
def test_argv(capfd: pytest.CaptureFixture[str], tier: str, programs: Path, monkeypatch: pytest.MonkeyPatch,
              args: list[str]) -> None:
    """argv[0] is the module path as given (relative, ./, absolute, .wasm); everything after the
    module, flags included, is the guest's."""
    monkeypatch.chdir(programs)
    for module in ("echo_args.wat", "./echo_args.wat", str(programs / "echo_args.wat"), "echo_args.wasm"):
        expected = "".join(f"{arg}\n" for arg in [module, *args])
        assert run_in_process(capfd, tier, module, *args) == (0, expected, "")


def test_argv_in_a_real_process(tier: str, programs: Path) -> None:
    proc = run_process(tier, "echo_args.wat", "α β", "--", "-", cwd=programs)
    assert (proc.returncode, proc.stdout.decode(), proc.stderr) == (0, "echo_args.wat\nα β\n--\n-\n", b"")


def test_environment(capfd: pytest.CaptureFixture[str], tier: str, programs: Path,
                     monkeypatch: pytest.MonkeyPatch) -> None:
    """--env NAME=VAL sets, a bare --env NAME copies the host's value (or nothing if unset); the
    host environment is not otherwise inherited; a later --env replaces an earlier one."""
    monkeypatch.setenv("FROM_HOST", "host value")
    monkeypatch.setenv("NOT_PASSED", "secret")
    monkeypatch.delenv("UNSET_VARIABLE", raising=False)
    flags = ["--env", "A=1", "--env", "FROM_HOST", "--env", "UNSET_VARIABLE", "--env", "EMPTY=",
             "--env", "EQ=a=b", "--env", "B=first", "--env", "B=second"]
    assert run_in_process(capfd, tier, *flags, programs / "echo_env.wat") == (
        0, "A=1\nFROM_HOST=host value\nEMPTY=\nEQ=a=b\nB=second\n", "")
    assert run_in_process(capfd, tier, programs / "echo_env.wat") == (0, "", "")


def test_environment_in_a_real_process(tier: str, programs: Path) -> None:
    env = {**os.environ, "B": "from the host"}
    proc = run_process(tier, "--env", "A=1", "--env", "B", programs / "echo_env.wat", env=env)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"A=1\nB=from the host\n", b"")


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    """tmp_path/data/file.txt, tmp_path/other/, tmp_path/secret.txt (not preopened)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "data" / "file.txt").write_bytes(b"data file\n")
    (tmp_path / "secret.txt").write_bytes(b"secret\n")
    return tmp_path


def test_dir_makes_files_readable(capfd: pytest.CaptureFixture[str], tier: str, programs: Path,
                                  folders: Path) -> None:
    cat = programs / "cat.wat"
    data = folders / "data"
    assert run_in_process(capfd, tier, "--dir", f"{data}::/data", cat, "file.txt") == (0, "data file\n", "")
    assert run_in_process(capfd, tier, "--dir", data, cat, "./file.txt") == (0, "data file\n", "")
    assert run_in_process(capfd, tier, "--dir", f"{data}::.", cat, "file.txt") == (0, "data file\n", "")
    # errors reach the guest as errnos (cat.wat exits with them): the sandbox holds, absent is absent
    assert run_in_process(capfd, tier, "--dir", data, cat, "../secret.txt") == (PERM, "", "")
    assert run_in_process(capfd, tier, "--dir", data, cat, str(folders / "secret.txt")) == (PERM, "", "")
    assert run_in_process(capfd, tier, "--dir", data, cat, "missing.txt") == (NOENT, "", "")
    assert run_in_process(capfd, tier, cat, "file.txt") == (BADF, "", "")  # nothing preopened


def test_dir_guest_names(capfd: pytest.CaptureFixture[str], tier: str, programs: Path, folders: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Preopens get fds 3, 4, ... in order, named GUEST, or HOST as given when there is no ``::``."""
    monkeypatch.chdir(folders)
    flags = ["--dir", "data", "--dir", f"{folders / 'other'}::/mnt/other", "--dir", "data::.", "--dir",
             "./other::/"]
    expected = "data\n/mnt/other\n.\n/\n"
    assert run_in_process(capfd, tier, *flags, programs / "preopens.wat") == (0, expected, "")
    assert run_in_process(capfd, tier, programs / "preopens.wat") == (0, "", "")


def test_dir_in_a_real_process(tier: str, programs: Path, folders: Path) -> None:
    proc = run_process(tier, "--dir", "data::/sandbox", programs / "cat.wat", "file.txt", cwd=folders)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"data file\n", b"")
    proc = run_process(tier, "--dir", "data::/sandbox", programs / "cat.wat", "../secret.txt", cwd=folders)
    assert (proc.returncode, proc.stdout, proc.stderr) == (PERM, b"", b"")


# --- standard streams --------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"one line\n", bytes(range(256)) * 1000],
                         ids=["empty", "line", "binary"])
def test_stdin_is_the_guests(tier: str, programs: Path, data: bytes) -> None:
    proc = run_process(tier, programs / "cat.wat", input=data)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, data, b"")


def test_stdin_from_a_file(tier: str, programs: Path, tmp_path: Path) -> None:
    (tmp_path / "input").write_bytes(b"from a file\n" * 10000)
    with open(tmp_path / "input", "rb") as stdin:
        proc = run_process(tier, programs / "cat.wat", stdin=stdin)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"from a file\n" * 10000, b"")


def test_stdout_and_stderr_keep_their_order(tier: str, programs: Path) -> None:
    proc = run_process(tier, programs / "interleaved.wat", capture_output=False, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    assert (proc.returncode, proc.stdout) == (0, b"out1\nerr1\nout2\nerr2\nout3\n")


def test_separate_stdout_and_stderr(capfd: pytest.CaptureFixture[str], tier: str, programs: Path) -> None:
    expected = (0, "out1\nout2\nout3\n", "err1\nerr2\n")
    assert run_in_process(capfd, tier, programs / "interleaved.wat") == expected


def test_output_is_streamed(tier: str, programs: Path) -> None:
    """Each write reaches the pipe when it is made, not at exit: cat echoes a line while its
    stdin is still open."""
    command = [sys.executable, "-m", "wasmjit", "run", "--tier", tier, str(programs / "cat.wat")]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    try:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        for line in (b"ping\n", b"pong\n"):
            proc.stdin.write(line)
            proc.stdin.flush()
            assert proc.stdout.readline() == line
        proc.stdin.close()
        assert (proc.wait(), proc.stdout.read(), proc.stderr.read()) == (0, b"", b"")
    finally:
        watchdog.cancel()
        proc.kill()
        proc.wait()


# --- tiers -------------------------------------------------------------------------------------


def test_tier_flag(capfd: pytest.CaptureFixture[str], tier: str, programs: Path,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    """--tier picks the tier (over $WASMJIT_TIER): --tier-stats names it for every function listed."""
    others = [t for t in wasmjit.api.AVAILABLE_TIERS if t != tier]
    if others:
        monkeypatch.setenv("WASMJIT_TIER", others[0])
    status, out, err = run_in_process(capfd, tier, "--tier-stats", programs / "echo_args.wat", "x")
    assert (status, out) == (0, f"{programs / 'echo_args.wat'}\nx\n")
    header, *rows = [line.split() for line in err.splitlines()]
    assert header[:4] == ["function", "entries", "back-edges", "tier"]
    assert rows and {row[3] for row in rows} == {"interp" if tier == "tiered" else tier}


def test_every_tier_runs_the_same(capfd: pytest.CaptureFixture[str], programs: Path) -> None:
    results = {tier: run_in_process(capfd, tier, programs / "echo_args.wat", "same") for tier in
               wasmjit.api.AVAILABLE_TIERS}
    assert set(results.values()) == {(0, f"{programs / 'echo_args.wat'}\nsame\n", "")}
