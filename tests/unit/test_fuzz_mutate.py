"""``wasmjit.fuzz.mutate``: a short real campaign finds nothing, and the finding path works
(exceptions, crashes and hangs of a deliberately broken worker become shrunk findings on disk)."""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
from pathlib import Path

import pytest

from wasmjit.fuzz import mutate
from wasmjit.wat import wat2wasm

HEADER = b"\0asm\x01\0\0\0"


def _args(tmp_path: Path, **kw: object) -> argparse.Namespace:
    values: dict[str, object] = dict(seconds=120.0, seed=7, count=200, out=str(tmp_path / "findings"),
                                     corpus=None, timeout=10.0, workers=2, no_shrink=False,
                                     shrink_attempts=20, progress=1000.0, quiet=True, smith_seeds=4)
    values.update(kw)
    return argparse.Namespace(**values)


def test_short_campaign_over_the_spec_modules_finds_nothing(tmp_path: Path) -> None:
    args = _args(tmp_path)
    assert mutate.run(args) == 0
    stats = args.stats
    assert stats.inputs == 200
    assert sum(stats.outcomes.values()) == 200
    assert args.findings == []
    # mutants are a mix: some decode, some do not, and some instantiate
    assert stats.outcomes["ok"] > 0 and stats.outcomes["decode"] > 0
    assert not (tmp_path / "findings").exists()


BROKEN_WORKER = """
import os, sys, time
sys.path.insert(0, {root!r})
from wasmjit import api
from wasmjit.fuzz import mutate

real = api.decode_module

def broken(data):
    if b"BOOM" in data:
        raise KeyError("boom")  # what a decoder bug looks like: not a WasmjitError
    if b"CRASH" in data:
        os.abort()
    if b"HANG" in data:
        time.sleep(60)
    return real(data)

api.decode_module = broken
sys.exit(mutate.worker_main())
"""


def test_findings_are_recorded_shrunk_and_reproducible(tmp_path: Path) -> None:
    script = tmp_path / "broken_worker.py"
    script.write_text(BROKEN_WORKER.format(root=str(Path(mutate.__file__).resolve().parents[2])))
    corpus = tmp_path / "seed.wasm"
    corpus.write_bytes(wat2wasm("(module (func (export \"f\") (result i32) (i32.const 1)))"))
    boom = HEADER + bytes(range(40)) + b"BOOM" + bytes(range(40))
    inject = [(boom, "injected boom"), (HEADER + b"CRASH", "injected crash"),
              (HEADER + b"HANG", "injected hang"),
              (boom + b"x", "the same exception again")]
    args = _args(tmp_path, count=30, corpus=[str(corpus)], timeout=2.0, workers=1, inject=inject,
                 worker_command=[sys.executable, str(script)])
    assert mutate.run(args) == 1
    found = {f.kind: f for f in args.findings}
    assert set(found) == {"exception", "crash", "timeout"}
    assert args.stats.inputs == 30  # the campaign went on after the crash and the hang

    exc = found["exception"]
    assert (exc.exc_type, exc.message) == ("KeyError", "'boom'")
    assert exc.frame.endswith("in broken") and exc.duplicates == 1
    assert exc.path is not None and exc.path.name.startswith("exception-") and exc.path.read_bytes() == boom
    assert "KeyError: 'boom'" in exc.path.with_suffix(".txt").read_text()
    # the byte-level reducer kept what matters: the preamble and the trigger
    assert exc.shrunk is not None and exc.shrunk.read_bytes() == HEADER + b"BOOM"

    crash = found["crash"]
    assert crash.exc_type == "SIGABRT" and crash.path is not None
    assert crash.path.read_bytes() == HEADER + b"CRASH"
    assert found["timeout"].path is not None and found["timeout"].path.name.startswith("timeout-")


def test_repro_and_predicate_commands(tmp_path: Path) -> None:
    wasm = tmp_path / "ok.wasm"
    wasm.write_bytes(wat2wasm("(module (memory 1) (data (i32.const 70000) \"x\"))"))
    proc = subprocess.run([sys.executable, "-m", "wasmjit.fuzz.mutate", "--repro", str(wasm)],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and '"outcome": "trap"' in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "wasmjit.fuzz.mutate", "--predicate", "exception",
                           "KeyError",
                           str(wasm)], capture_output=True, text=True)
    assert proc.returncode == 1  # not a finding


def test_check_classifies_outcomes() -> None:
    assert mutate.check(b"\0asm\x02\0\0\0")["outcome"] == "decode"
    assert mutate.check(wat2wasm("(module (func (result i32)))"))["outcome"] == "validate"
    assert mutate.check(wat2wasm('(module (import "m" "g" (global i32)))'))["outcome"] == "link"
    result = mutate.check(wat2wasm('(module (import "m" "f" (func)) (start 0))'))  # unknown -> trap
    assert result == {"start": True, "outcome": "trap",
                      "message": "unknown import: `m::f` has not been defined"}
    spectest = wat2wasm('(module (import "spectest" "print_i32" (func (param i32))) '
                        '(import "spectest" "memory" (memory 1)) '
                        '(import "spectest" "global_i32" (global i32)) '
                        '(func $s (call 0 (global.get 0))) (start $s))')
    assert mutate.check(spectest)["outcome"] == "ok"


@pytest.mark.parametrize("seed", range(20))
def test_damaged_modules_keep_their_section_framing(seed: int) -> None:
    """Mutations inside a section or function body rewrite the size fields around them."""
    wasm = wat2wasm("(module (memory 1) (func (export \"f\") (param i32) (result i32) "
                    "(local.get 0) (i32.const 7) (i32.add)) (data (i32.const 0) \"hello\"))")
    rng = random.Random(seed)
    mutant, label = mutate.damage_module(wasm, rng, [wasm])
    if label.startswith(("section", "body")):
        secs = mutate.sections(mutant)
        assert secs and secs[-1][2] == len(mutant)  # every section is still well framed
    if label.startswith("body"):
        code = next(s for s in mutate.sections(mutant) if s[0] == 10)
        bodies = mutate.code_bodies(mutant, code[1], code[2])
        assert bodies and bodies[-1][1] == code[2]
