"""The ``wasmjit`` command line, run as a real subprocess (``python -m wasmjit``).

Every failure must be one ``error: ...`` line (a trap adds its wasm backtrace) and an exit
status, never a Python traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import wasmjit
from wasmjit.api import COUNTING_TIERS

PROGRAMS = {
    "calc.wat": """(module $calc
      (func $fib (export "fib") (param i32) (result i32)
        (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))
          (then (local.get 0))
          (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                         (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
      (func $count (export "count") (param $n i32) (result i32) (local $i i32)
        (block $done
          (loop $l
            (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $l)))
        (local.get $i))
      (func (export "mix") (param i32 i64 f32 f64) (result i32 i64 f32 f64)
        local.get 0 local.get 1 local.get 2 local.get 3)
      (func (export "i64") (param i64) (result i64) local.get 0)
      (func (export "f32") (param f32) (result f32) local.get 0)
      (func (export "none"))
      (func $divide (export "divide") (param i32 i32) (result i32) (i32.div_u (local.get 0) (local.get 1)))
      (func $divide_twice (export "divide_twice") (param i32) (result i32)
        (call $divide (call $divide (i32.const 100) (local.get 0)) (local.get 0)))
      (memory (export "memory") 1))""",
    "hello.wat": """(module
      (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 16) "hello")
      (func (export "_start")
        (i32.store (i32.const 0) (i32.const 16))
        (i32.store (i32.const 4) (i32.const 5))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))""",
    "exit3.wat": """(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "_start") (call $exit (i32.const 3)) unreachable))""",
    # exits with its argument count: the module path plus the arguments after it
    "argc.wat": """(module
      (import "wasi_snapshot_preview1" "args_sizes_get" (func $sizes (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "_start")
        (drop (call $sizes (i32.const 0) (i32.const 4)))
        (call $exit (i32.load (i32.const 0)))))""",
    "needs_env.wat": '(module (import "env" "log" (func (param i32))))',
    "invalid.wat": "(module (func (result i32)))",
}


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("programs")
    for name, text in PROGRAMS.items():
        (folder / name).write_text(text)
    (folder / "calc.wasm").write_bytes(wasmjit.wat2wasm(PROGRAMS["calc.wat"]))
    (folder / "truncated.wasm").write_bytes(b"\0asm\x01\0\0\0\x01")
    return folder


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "wasmjit", *map(str, args)], capture_output=True, text=True,
                          timeout=120)
    assert "Traceback" not in proc.stderr
    return proc


def run(tier: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return cli("run", "--tier", tier, *args)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(("invoke", "stdout"), [
    (["fib", "10"], "55\n"),
    (["mix", "-1", "0x10", "1.5", "-2.25"], "-1\n16\n1.5\n-2.25\n"),
    (["mix", "4294967295", "-9223372036854775808", "inf", "nan"], "-1\n-9223372036854775808\ninf\nnan\n"),
    (["i64", "18446744073709551615"], "-1\n"),
    (["f32", "0.1"], "0.10000000149011612\n"),
    (["none"], ""),
])
def test_invoke_prints_results(tier: str, programs: Path, invoke: list[str], stdout: str) -> None:
    for module in ("calc.wat", "calc.wasm"):
        proc = run(tier, "--invoke", invoke[0], programs / module, *invoke[1:])
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, stdout, "")


def test_tier_stats_table(tier: str, programs: Path) -> None:
    proc = run(tier, "--tier-stats", "--invoke", "fib", programs / "calc.wat", "6")
    assert (proc.returncode, proc.stdout) == (0, "8\n")
    rows = [line.split() for line in proc.stderr.splitlines()]
    assert rows[0] == ["function", "entries", "back-edges", "tier", "compile-ms", "code-bytes", "verified"]
    if tier not in COUNTING_TIERS:  # compiled up front: every function is listed, nothing counted
        fib = next(row for row in rows if row[0] == "calc!fib")
        assert fib[1:4] == ["0", "0", tier] and float(fib[4]) > 0 and int(fib[5]) > 0
        return
    shown = "interp" if tier == "tiered" else tier  # below the tier-up thresholds: interpreted
    assert rows[1:] == [["calc!fib", "25", "0", shown, "-", "-", "-"]]
    proc = run(tier, "--tier-stats", "--invoke", "count", programs / "calc.wat", "7")
    rows = [line.split() for line in proc.stderr.splitlines()]
    assert rows[1:] == [["calc!count", "1", "7", shown, "-", "-", "-"]]


def test_validate(programs: Path) -> None:
    for module in ("calc.wat", "calc.wasm", "hello.wat"):
        proc = cli("validate", programs / module)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


@pytest.mark.parametrize(("module", "message"), [
    ("truncated.wasm", "error: unexpected end (at offset 0x9)"),
    ("invalid.wat", "error: type mismatch (in function 0, at offset 0x18)"),
])
def test_validate_rejects_bad_modules(programs: Path, module: str, message: str) -> None:
    assert one_error_line(cli("validate", programs / module)) == message


@pytest.mark.parametrize("command", [["validate"], ["run"], ["run", "--invoke", "fib"]])
def test_missing_file(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "missing.wasm"
    assert str(missing) in one_error_line(cli(*command, missing))


@pytest.mark.parametrize(("invoke", "message"), [
    (["nope"], "error: no exported function named `nope`"),
    (["memory"], "error: no exported function named `memory`"),
    (["fib"], "error: `fib` takes 1 argument(s), 0 given"),
    (["fib", "1", "2"], "error: `fib` takes 1 argument(s), 2 given"),
    (["fib", "x"], "error: invalid i32 argument: 'x'"),
    (["fib", "1.5"], "error: invalid i32 argument: '1.5'"),
    (["f32", "one"], "error: invalid f32 argument: 'one'"),
    (["fib", "4294967296"], "error: 4294967296 is out of range for i32"),
])
def test_bad_invocations(tier: str, programs: Path, invoke: list[str], message: str) -> None:
    assert one_error_line(run(tier, "--invoke", invoke[0], programs / "calc.wat", *invoke[1:])) == message


def test_trap_exits_134_with_a_wasm_backtrace(tier: str, programs: Path) -> None:
    proc = run(tier, "--invoke", "divide_twice", programs / "calc.wat", "0")
    assert (proc.returncode, proc.stdout) == (134, "")
    lines = proc.stderr.splitlines()
    assert lines[0] == "error: error while executing at wasm backtrace:"
    assert [line.split(" - ")[1] for line in lines[1:3]] == ["calc!divide", "calc!divide_twice"]
    assert lines[3:] == ["", "Caused by:", "    wasm trap: integer divide by zero"]


def test_wasi_hello(tier: str, programs: Path) -> None:
    proc = run(tier, programs / "hello.wat")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "hello", "")


def test_wasi_proc_exit_sets_the_exit_status(tier: str, programs: Path) -> None:
    proc = run(tier, programs / "exit3.wat")
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "", "")


def test_wasi_arguments_follow_the_module(tier: str, programs: Path) -> None:
    assert run(tier, programs / "argc.wat").returncode == 1
    assert run(tier, programs / "argc.wat", "a", "--b", "c").returncode == 4


def test_unknown_import(tier: str, programs: Path) -> None:
    line = one_error_line(run(tier, programs / "needs_env.wat"))
    assert line == "error: unknown import: `env::log` has not been defined"


def test_module_without_start_does_nothing(tier: str, programs: Path) -> None:
    proc = run(tier, programs / "calc.wat")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_unavailable_tier(programs: Path) -> None:
    for name in [t for t in wasmjit.api.TIERS if t not in wasmjit.api.AVAILABLE_TIERS]:
        line = one_error_line(run(name, "--invoke", "fib", programs / "calc.wat", "1"))
        assert "is not available yet" in line
    proc = run("bogus", "--invoke", "fib", programs / "calc.wat", "1")
    assert proc.returncode == 2 and "invalid choice: 'bogus'" in proc.stderr


def test_compile_lists_and_disassembles(programs: Path) -> None:
    proc = cli("compile", programs / "calc.wat")
    assert proc.returncode == 0 and proc.stderr == ""
    assert any(line.startswith("calc!fib: ") and " bytes at 0x" in line for line in proc.stdout.splitlines())
    proc = cli("compile", "--disasm", "--func", "fib", programs / "calc.wat")
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and lines[0].startswith("calc!fib: ")
    assert any(";; 0x" in line and "call" in line for line in lines)  # wasm instructions ...
    assert any(": call qword ptr [r10]" in line for line in lines)  # ... above their native code
    assert one_error_line(cli("compile", "--func", "nope", programs / "calc.wat")) == (
        f"error: no function named `nope` in {programs / 'calc.wat'}")
