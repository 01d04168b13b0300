"""``wasmjit diff``: agreement, disagreements (a monkeypatched worker in a forked engine process),
crashes and timeouts of one engine, NaN classes, trap kinds, WASI command mode, usage errors.

The engines really run (every available tier and wasmtime-py). Most tests use ``--fork`` (each
engine in a fork of the test process, which inherits a monkeypatch); two go through the default
fresh ``python -m wasmjit.difftest --worker`` processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wasmjit import api, cli, difftest
from wasmjit.difftest import EngineResult, compare, format_value, nan_class

TIERS = list(api.AVAILABLE_TIERS)
TIERS_ARG = ",".join(TIERS)

SMALL = """
(module
  (memory (export "mem") 1)
  (global $g (export "g") (mut i32) (i32.const 0))
  (func (export "add") (param i32 i32) (result i32)
    (global.set $g (i32.add (global.get $g) (i32.const 1)))
    (i32.store (local.get 0) (local.get 1))
    (i32.add (local.get 0) (local.get 1)))
  (func (export "snan") (result f32) (f32.reinterpret_i32 (i32.const 0x7fa00000)))
)
"""

SAMPLE = """
(module
  (memory (export "mem") 1)
  (global $g (export "g") (mut i32) (i32.const 0))
  (table (export "tab") 2 funcref)
  (elem (i32.const 0) $add)
  (func $add (export "add") (param i32 i32) (result i32)
    (global.set $g (i32.add (global.get $g) (i32.const 1)))
    (i32.store (local.get 0) (local.get 1))
    (i32.add (local.get 0) (local.get 1)))
  (func (export "div") (param i64 i64) (result i64) (i64.div_s (local.get 0) (local.get 1)))
  (func (export "floats") (param f32 f64) (result f32 f64)
    (f32.div (local.get 0) (local.get 0)) (f64.mul (local.get 1) (f64.const -0.5)))
  (func (export "snan") (result f32) (f32.reinterpret_i32 (i32.const 0x7fa00000)))
  (func (export "callind") (param i32) (result i32)
    (call_indirect (param i32 i32) (result i32) (i32.const 1) (i32.const 2) (local.get 0)))
  (func (export "takes_ref") (param externref))
)
"""


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "sample.wat"
    path.write_text(SAMPLE)
    return path


def _cells(out: str, key: str) -> list[str]:
    """The cells of the table row ``key`` (one per engine)."""
    line = next(line for line in out.splitlines() if line.strip(" ≠").startswith(key + "  "))
    return [c.strip() for c in line.strip(" ≠")[len(key):].split("  ") if c.strip()]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["diff", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- agreement -------------------------------------------------------------------------------


def test_every_available_tier_agrees_in_fresh_worker_processes(tmp_path: Path, capsys) -> None:
    module = tmp_path / "small.wat"
    module.write_text(SMALL)
    code, out, err = _run(capsys, "-v", str(module))
    assert code == 0, out + err
    engines = len(api.AVAILABLE_TIERS) + 1
    assert f"all {engines} engines agree" in out
    assert out.splitlines()[0].split() == [*api.AVAILABLE_TIERS, "wasmtime"]
    assert set(_cells(out, "call add(-1, -1)")) == {"trap MEMORY_OUT_OF_BOUNDS"}
    assert set(_cells(out, "call snan()")) == {"f32:nan:0x7fa00000"}


def test_agreeing_module_exits_0(sample: Path, capsys) -> None:
    code, out, err = _run(capsys, "--tiers", TIERS_ARG, "-v", str(sample))
    assert code == 0, out + err
    assert f"all {len(TIERS) + 1} engines agree" in out
    # the default plan: each numeric export with zeros, small values and minus ones
    assert "call add(0, 0)" in out and "call add(1, 2)" in out and "call add(-1, -1)" in out
    assert "call div(0, 0)" in out and "trap INTEGER_DIVISION_BY_ZERO" in out
    assert set(_cells(out, "call add(-1, -1)")) == {"trap MEMORY_OUT_OF_BOUNDS"}
    # bit-exact NaNs where they must be exact, classes where the spec allows several
    assert set(_cells(out, "call floats(0.0, 0.0)")) == {"f32:nan:canonical, f64:-0.0"}
    assert set(_cells(out, "call snan()")) == {"f32:nan:0x7fa00000"}
    # wasmjit's "undefined element" is wasmtime's table out of bounds
    assert set(_cells(out, "call callind(0)")) == {"i32:3"}
    assert set(_cells(out, "call callind(-1)")) == {"trap TABLE_OUT_OF_BOUNDS"}
    assert "takes_ref" not in out  # only all-numeric functions are called
    assert set(_cells(out, "global g")) == {"i32:5"}  # add ran 4 times, then once via callind
    assert set(_cells(out, "table tab")) == {"size 2, 1 null"}


def test_invoke_after_the_module(sample: Path, capsys) -> None:
    code, out, err = _run(capsys, "--fork", "--tiers", TIERS_ARG, "-v", str(sample),
                          "--invoke", "add", "7", "-3")
    assert code == 0, out + err
    assert set(_cells(out, "call add(7, -3)")) == {"i32:4"}
    assert "call div" not in out


def test_wasi_command_mode_compares_exit_status_and_stdout(tmp_path: Path, capsys) -> None:
    module = tmp_path / "hello.wat"
    module.write_text("""
    (module
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (data (i32.const 16) "hello from wasm\\n")
      (func (export "_start")
        (i32.store (i32.const 0) (i32.const 16))
        (i32.store (i32.const 4) (i32.const 16))
        (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
        (call $exit (i32.const 3))))
    """)
    code, out, err = _run(capsys, "--fork", "--tiers", TIERS_ARG, "-v", str(module), "arg1")
    assert code == 0, out + err
    assert set(_cells(out, "exit")) == {"exit 3"}
    assert len(set(_cells(out, "stdout"))) == 1 and "hello from wasm" in _cells(out, "stdout")[0]


# --- disagreement, crash, timeout ------------------------------------------------------------


def _inject(monkeypatch: pytest.MonkeyPatch, tier: str, action) -> None:
    """Make one tier's worker misbehave when it calls a function (forked workers inherit this)."""
    real = difftest.WasmjitAdapter.call

    def call(self, store, func, params, args):
        if self.tier == tier:
            return action(real(self, store, func, params, args))
        return real(self, store, func, params, args)

    monkeypatch.setattr(difftest.WasmjitAdapter, "call", call)


def test_disagreement_exits_1_and_prints_the_table(sample: Path, monkeypatch, capsys) -> None:
    tier = TIERS[-1]
    _inject(monkeypatch, tier, lambda results: ["i32:12345" if r.startswith("i32:") else r for r in results])
    code, out, _ = _run(capsys, "--fork", "--tiers", TIERS_ARG, str(sample), "--invoke", "add", "1", "2")
    assert code == 1, out
    lines = out.splitlines()
    header = lines[0].split()
    assert header == [*TIERS, "wasmtime"]  # one column per engine
    cells = _cells(out, "call add(1, 2)")
    assert cells[header.index(tier)] == "i32:12345"
    assert cells[header.index("wasmtime")] == "i32:3"
    assert f"first: call:{tier}" in out
    assert "memory" not in out  # only the rows that differ


def test_crash_of_one_engine_is_its_outcome(sample: Path, monkeypatch, capsys) -> None:
    tier = TIERS[0]

    def crash(results):
        os.kill(os.getpid(), signal.SIGSEGV)

    _inject(monkeypatch, tier, crash)
    code, out, _ = _run(capsys, "--fork", "--tiers", TIERS_ARG, str(sample), "--invoke", "add", "1", "2")
    assert code == 1
    outcome = _cells(out, "outcome")
    assert outcome[TIERS.index(tier)] == "crash (signal 11)"
    assert outcome.count("ok") == len(TIERS)  # every other engine finished
    assert f"first: crash:{tier}" in out


def test_timeout_of_one_engine_is_its_outcome(sample: Path, monkeypatch, capsys) -> None:
    tier = TIERS[0]
    _inject(monkeypatch, tier, lambda results: time.sleep(60))
    started = time.monotonic()
    code, out, _ = _run(capsys, "--fork", "--tiers", TIERS_ARG, "--timeout", "2", str(sample),
                        "--invoke", "add", "1", "2")
    assert time.monotonic() - started < 30
    assert code == 1
    assert _cells(out, "outcome")[TIERS.index(tier)] == "timeout"


def test_spawned_worker_killed_by_a_signal_is_a_crash(tmp_path: Path) -> None:
    job = difftest._Job("x", tmp_path / "s", tmp_path / "o", tmp_path / "l", tmp_path / "1", tmp_path / "2")
    crash = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    job.proc = subprocess.Popen([sys.executable, "-c", crash], start_new_session=True)
    job.started = time.monotonic()
    difftest._wait_all([job], 30)
    assert difftest._outcome(job) == "crash (signal 11)"


def test_internal_python_error_in_a_tier_is_a_difference(sample: Path, monkeypatch, capsys) -> None:
    tier = TIERS[0]

    def boom(results):
        raise ZeroDivisionError("engine bug")

    _inject(monkeypatch, tier, boom)
    code, out, _ = _run(capsys, "--fork", "--tiers", TIERS_ARG, str(sample), "--invoke", "add", "1", "2")
    assert code == 1
    assert "internal error: ZeroDivisionError" in out
    assert "engine bug" in out  # the note below the table


# --- usage errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["--tiers", "nosuchtier"],
     "unknown or unavailable tier 'nosuchtier': available are " + ", ".join(api.AVAILABLE_TIERS)),
    (["--invoke", "nope"], "no exported function named `nope`"),
    (["--invoke", "add", "1"], "`add` takes 2 argument(s), 1 given"),
    (["--invoke", "add", "1", "x"], "invalid i32 argument: 'x'"),
])
def test_usage_errors_exit_2(sample: Path, capsys, argv: list[str], message: str) -> None:
    code, out, err = _run(capsys, "--fork", "--tiers", TIERS_ARG, str(sample), *argv)
    assert code == 2
    assert err.strip() == f"error: {message}"
    assert "Traceback" not in out + err


def test_unreadable_module_exits_2(tmp_path: Path, capsys) -> None:
    code, _, err = _run(capsys, str(tmp_path / "missing.wasm"))
    assert code == 2
    assert err.startswith("error: cannot read")


def test_hoist_options() -> None:
    assert difftest.hoist_options(["m.wasm", "--invoke", "f", "1", "--x"]) == [
        "--invoke", "f", "m.wasm", "1", "--x"]
    assert difftest.hoist_options(["--tiers", "jit", "m.wasm", "-v", "--", "--invoke"]) == [
        "--tiers", "jit", "-v", "m.wasm", "--invoke"]
    assert difftest.hoist_options(["m.wasm", "a", "--invoke", "f"]) == ["m.wasm", "a", "--invoke", "f"]


# --- values and NaN classes ------------------------------------------------------------------


def test_nan_classes() -> None:
    assert nan_class(0x7FC0_0000, 32) == "canonical"
    assert nan_class(0xFFC0_0000, 32) == "canonical"  # either sign
    assert nan_class(0x7FC0_0001, 32) == "arithmetic"
    assert nan_class(0xFFE0_0000, 32) == "arithmetic"
    assert nan_class(0x7FA0_0000, 32) == "0x7fa00000"  # signalling: exact bits
    assert nan_class(0x7F80_0000, 32) is None  # infinity
    assert nan_class(0x3F80_0000, 32) is None
    assert nan_class(0x7FF8_0000_0000_0000, 64) == "canonical"
    assert nan_class(0xFFF8_0000_0000_0000, 64) == "canonical"
    assert nan_class(0x7FF8_0000_0000_0001, 64) == "arithmetic"
    assert nan_class(0x7FF0_0000_0000_0001, 64) == "0x7ff0000000000001"
    assert nan_class(0xFFF0_0000_0000_0000, 64) is None


def test_format_value_is_bit_exact_except_nan_class() -> None:
    assert format_value("f32", 0x8000_0000) == "f32:-0.0"
    assert format_value("f32", 0x0000_0000) == "f32:0.0"
    assert format_value("f64", 0x3FF8_0000_0000_0000) == "f64:1.5"
    assert format_value("f32", 0x7FC0_0000) == format_value("f32", 0xFFC0_0000) == "f32:nan:canonical"
    assert format_value("f32", 0x7FC0_0001) == format_value("f32", 0x7FC0_1234) == "f32:nan:arithmetic"
    assert format_value("f32", 0x7FC0_0000) != format_value("f32", 0x7FC0_0001)
    assert format_value("i32", 0xFFFF_FFFF) == "i32:-1"
    assert format_value("i64", 1 << 63) == f"i64:{-(1 << 63)}"
    assert format_value("funcref", False) == "funcref:null"


def _result(engine: str, **rows: str) -> EngineResult:
    return EngineResult(engine, "ok", {k.replace("_", " "): v for k, v in rows.items()})


def test_compare_by_nan_class() -> None:
    canonical = format_value("f32", 0xFFC0_0000)
    arithmetic = format_value("f32", 0x7FC0_0001)
    same = {"jit": _result("jit", call_f=canonical),
            "wasmtime": _result("wasmtime", call_f=format_value("f32", 0x7FC0_0000))}
    assert compare(same) == []
    differ = {"jit": _result("jit", call_f=arithmetic), "wasmtime": _result("wasmtime", call_f=canonical)}
    [diff] = compare(differ)
    assert diff.key == "call f" and diff.deviants == ("jit",) and diff.aspect == "call"
    assert difftest.signature([diff]) == "call:jit"


def test_rows_an_engine_never_reached_are_not_extra_differences() -> None:
    crashed = EngineResult("jit", "crash (signal 11)", {"compile": "ok"})
    results = {"jit": crashed, "wasmtime": _result("wasmtime", compile="ok", instantiate="ok")}
    [diff] = compare(results)
    assert diff.key == "outcome" and diff.aspect == "crash" and diff.deviants == ("jit",)


def test_an_invalid_module_is_an_error_on_every_engine(tmp_path: Path, capsys) -> None:
    module = tmp_path / "bad.wasm"
    # a function declared to return i32 whose body is empty: well-formed but invalid
    module.write_bytes(bytes.fromhex("0061736d01000000" "010501600001 7f".replace(" ", "")
                                     + "03020100" + "0a040102000b"))
    code, out, _ = _run(capsys, "--fork", "--tiers", TIERS_ARG, "-v", "--compile-only", str(module))
    assert code == 0, out
    assert set(_cells(out, "compile")) == {"error"}
    assert "call" not in out and "instantiate" not in out
