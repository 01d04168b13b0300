"""Smith mode of ``wasmjit fuzz``: generate modules with ``wasm-tools smith``, compare every tier
with wasmtime on each (:mod:`wasmjit.difftest`), shrink what differs with ``wasm-tools shrink``.

Modules: WebAssembly 2.0 (multi-value, reference types, bulk memory, sign extension, saturating
conversions; no SIMD, threads, exceptions, GC, tail calls, memory64, multi-memory, extended
constants...), no imports, everything exported, loops and calls bounded by a fuel global
(``--ensure-termination``), NaNs canonicalized after every float operation (so stored or
bit-cast NaNs do not differ legitimately between engines), memories at most 16 pages and tables
at most 1000 elements, each with a maximum (growth limits are implementation-defined); half of
the modules avoid traps. The exported functions are called as ``wasmjit diff`` does, the fuel
global (exported as ``__fuel``) refilled before each call. Each module's seed bytes come from
``random.Random(seed)``, so a seed always produces the same modules in the same order.

Each engine runs in a fork of this process (already loaded, so no interpreter start-up per run)
under a timeout. A difference is a *finding*; its signature (:func:`wasmjit.difftest.signature`,
e.g. ``call:jit`` or ``crash:tiered``) says what kind. The first finding of each signature is
shrunk by ``wasm-tools shrink``, whose predicate (``python -m wasmjit.fuzz.smith --predicate SIG
...``) re-runs the comparison and accepts a smaller module that still shows that signature; the
result goes to ``--out`` as NAME.wasm, NAME.wat and a one-line NAME.txt, with a reproducer.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .. import difftest
from ..errors import WasmjitError
from ..wat import wasm_tools

FUEL = 1000
SMITH_FLAGS = (
    "--export-everything", "true", "--max-imports", "0", "--allow-start-export", "false",
    "--canonicalize-nans", "true",
    # WebAssembly 2.0 only
    "--simd-enabled", "false", "--relaxed-simd-enabled", "false", "--threads-enabled", "false",
    "--shared-everything-threads-enabled", "false", "--exceptions-enabled", "false",
    "--gc-enabled", "false", "--tail-call-enabled", "false", "--memory64-enabled", "false",
    "--custom-page-sizes-enabled", "false", "--wide-arithmetic-enabled", "false",
    "--extended-const-enabled", "false", "--custom-descriptors-enabled", "false",
    "--compact-imports-enabled", "false", "--max-memories", "1",
    # sizes that keep every engine quick
    "--max-memory32-bytes", str(16 * 65536), "--memory-max-size-required", "true",
    # every table has a maximum: how far a table without one may grow is the engine's choice
    # (wasmjit stops at 10M elements, wasmtime spends seconds growing one to 2^29)
    "--max-table-elements", "1000", "--table-max-size-required", "true", "--max-tables", "2",
    "--max-funcs", "30", "--max-data-segments", "5", "--max-element-segments", "5",
    # without these most random seeds make modules with no function at all
    "--min-funcs", "5", "--min-types", "3",
)
# Modules that run: loops and calls bounded by fuel; half of them (chosen by the seed) avoid traps,
# without which most calls end in one early.
TERMINATE = ("--ensure-termination", "--fuel", str(FUEL))
NO_TRAPS = ("--disallow-traps", "true")
# Modules that are only loaded (VALIDATE_SHARE of them): function bodies may be arbitrary bytes,
# so whether each engine accepts the module tests the decoders and validators.
INVALID_FUNCS = ("--allow-invalid-funcs", "true")
VALIDATE_SHARE = 0.15
# Variations, each added to a module with probability 1/4: over-long LEB128 encodings, custom
# sections (a name section among them), long function bodies (the default is at most 100
# instructions).
VARIATIONS = (("--min-uleb-size", "3"), ("--generate-custom-sections", "true"),
              ("--max-instructions", "1000"))
SHRINK_SECONDS = 600  # a shrink that takes longer is abandoned (the module is kept unshrunk)


def smith(seed_bytes: bytes, out: Path, flags: Sequence[str] = ()) -> bool:
    """Write the module ``wasm-tools smith`` makes from ``seed_bytes``; False if it made none."""
    proc = subprocess.run([wasm_tools(), "smith", *SMITH_FLAGS, *flags, "-o", str(out)], input=seed_bytes,
                          capture_output=True)
    if proc.returncode == 2 and b"Usage:" not in proc.stderr:
        return False  # "failed to generate a module from this seed": rare, try the next
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise WasmjitError(f"wasm-tools smith failed: {message[-1] if message else proc.returncode}")
    return True


def export_fuel(module: Path) -> bool:
    """Export the fuel global ``--ensure-termination`` appended (the last global, a mutable i32
    starting at FUEL) as ``__fuel``, which ``wasmjit diff`` refills before each call."""
    text = subprocess.run([wasm_tools(), "print", str(module)], capture_output=True, text=True)
    if text.returncode != 0:
        return False
    found = re.findall(rf"\(global \(;(\d+);\) \(mut i32\) i32\.const {FUEL}\)", text.stdout)
    last = re.findall(r"\(global \(;(\d+);\)", text.stdout)
    if not found or found[-1] != last[-1]:
        return False
    body = text.stdout.rstrip()
    assert body.endswith(")")
    patched = body[:-1] + f'  (export "{difftest.FUEL_GLOBAL}" (global {found[-1]}))\n)\n'
    binary = subprocess.run([wasm_tools(), "parse", "-", "-o", str(module)], input=patched,
                            capture_output=True, text=True)
    return binary.returncode == 0


def seed_stream(seed: int) -> Any:
    """(seed bytes, extra smith flags, compile only?) of module 0, 1, 2, ... for ``--seed``: 1 to
    32 KiB of seed; :data:`VALIDATE_SHARE` of them only loaded (:data:`INVALID_FUNCS`), the
    others run (:data:`TERMINATE`), half of these with :data:`NO_TRAPS`; :data:`VARIATIONS`."""
    rng = random.Random(seed)
    while True:
        size = int(1024 * 2 ** rng.uniform(0, 5))
        choice = rng.random()
        extra = tuple(flag for variation in VARIATIONS if rng.random() < 0.25 for flag in variation)
        if choice < VALIDATE_SHARE:
            yield rng.randbytes(size), INVALID_FUNCS + extra, True
        else:
            flags = TERMINATE + (NO_TRAPS if choice < VALIDATE_SHARE + (1 - VALIDATE_SHARE) / 2 else ())
            yield rng.randbytes(size), flags + extra, False


@dataclass
class Finding:
    signature: str
    number: int  # which module of the run
    description: str
    path: Path | None = None  # the written (shrunk) module
    shrunk: bool = False
    duplicates: int = 0


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    modules: int = 0
    tested: Counter = field(default_factory=Counter)  # engine -> modules it completed
    valid: int = 0  # modules every engine compiled
    loaded_only: int = 0  # modules only loaded (maybe invalid), not run
    findings: list[Finding] = field(default_factory=list)

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        per_tier = " ".join(f"{e} {n}" for e, n in self.tested.items())
        found = sum(1 + f.duplicates for f in self.findings)
        return (f"[{elapsed:6.1f}s] {self.modules} modules ({self.modules / elapsed:.2f}/s) | "
                f"tested: {per_tier} | findings: {found} ({len(self.findings)} distinct)")


def describe(comparison: difftest.Comparison) -> str:
    """One line: the first difference, engine by engine."""
    first = comparison.differences[0]
    if first.key == "outcome":
        values = {e: r.outcome for e, r in comparison.results.items()}
    else:
        values = first.values
    shown = "; ".join(f"{e}: {v if v is not None else '—'}" for e, v in values.items())
    more = len(comparison.differences) - 1
    return f"{first.key} differs ({shown})" + (f" (+{more} more)" if more else "")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:60]


def predicate_tiers(sig: str, tiers: Sequence[str]) -> list[str]:
    """The tiers a shrink predicate needs: those the signature names (all if only wasmtime)."""
    named = [e for e in sig.split(":", 1)[1].split(",") if e in tiers]
    return named or list(tiers)


def shrink(module: Path, sig: str, tiers: Sequence[str], args: argparse.Namespace, out: Path,
           log: TextIO, compile_only: bool = False) -> bool:
    """Shrink ``module`` to ``out`` keeping ``sig``; False if wasm-tools could not (``out`` then
    holds the original)."""
    with tempfile.TemporaryDirectory(prefix="wasmjit-shrink-") as tmp:
        script = Path(tmp) / "predicate.sh"
        command = [sys.executable, "-m", "wasmjit.fuzz.smith", "--predicate", sig,
                   "--tiers", ",".join(predicate_tiers(sig, tiers)), "--timeout", str(args.timeout)]
        if args.tier_up:
            command += ["--tier-up", args.tier_up]
        if compile_only:
            command.append("--compile-only")
        script.write_text("#!/bin/sh\nexec " + " ".join(shlex.quote(c) for c in command) + ' "$1"\n')
        script.chmod(0o755)
        shrunk = Path(tmp) / "shrunk.wasm"
        try:
            proc = subprocess.run([wasm_tools(), "shrink", "--attempts", str(args.shrink_attempts),
                                   str(script), str(module), "-o", str(shrunk)],
                                  capture_output=True, timeout=SHRINK_SECONDS,
                                  env={**os.environ, "PYTHONPATH": _pythonpath()})
            ok = proc.returncode == 0 and shrunk.exists()
            if not ok:
                print(f"  shrink failed: {difftest._one_line(proc.stderr.decode(errors='replace'))}",
                      file=log)
        except subprocess.TimeoutExpired:
            print(f"  shrink took over {SHRINK_SECONDS} s: keeping the module unshrunk", file=log)
            ok = False
        out.write_bytes(shrunk.read_bytes() if ok else module.read_bytes())
        return ok


def _pythonpath() -> str:
    """This wasmjit's parent directory first, so the predicate runs this very code."""
    root = str(Path(__file__).resolve().parents[2])
    rest = os.environ.get("PYTHONPATH")
    return root if not rest else f"{root}{os.pathsep}{rest}"


def reproducer(path: Path, sig: str, tiers: Sequence[str], tier_up: str | None,
               compile_only: bool = False) -> str:
    command = ["wasmjit", "diff", str(path), "--tiers", ",".join(predicate_tiers(sig, tiers))]
    if compile_only:
        command.append("--compile-only")
    if tier_up and "tiered" in predicate_tiers(sig, tiers):
        command += ["--tier-up", tier_up]
    return " ".join(shlex.quote(c) for c in command)


def record_finding(module: Path, comparison: difftest.Comparison, number: int, tiers: Sequence[str],
                   args: argparse.Namespace, stats: Stats, log: TextIO, compile_only: bool = False) -> None:
    """Shrink and write a new finding, or count a known one."""
    sig = comparison.signature
    for finding in stats.findings:
        if finding.signature == sig:
            finding.duplicates += 1
            print(f"\nmodule #{number}: another {sig} finding (as {finding.path})", file=log)
            return
    description = describe(comparison)
    print(f"\nmodule #{number}: {sig}: {description}", file=log)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(module.read_bytes()).hexdigest()[:8]
    path = out_dir / f"{_safe(sig)}-{digest}.wasm"
    if args.no_shrink or sig.startswith("timeout"):  # each predicate run would take the timeout
        path.write_bytes(module.read_bytes())
        shrunk = False
    else:
        print(f"  shrinking (signature {sig})...", file=log)
        shrunk = shrink(module, sig, tiers, args, path, log, compile_only)
    wat = subprocess.run([wasm_tools(), "print", str(path)], capture_output=True)
    if wat.returncode == 0:
        path.with_suffix(".wat").write_bytes(wat.stdout)
    line = (f"{sig}: {description} [fuzz --seed {args.seed}, module #{number}, "
            f"{'shrunk' if shrunk else 'not shrunk'}, {path.stat().st_size} bytes]")
    path.with_suffix(".txt").write_text(line + "\n")
    stats.findings.append(Finding(sig, number, description, path, shrunk))
    print(f"  wrote {path} ({path.stat().st_size} bytes{', shrunk' if shrunk else ''})", file=log)
    print(f"  reproduce: {reproducer(path, sig, tiers, args.tier_up, compile_only)}", file=log)


def preload() -> None:
    """Import what every worker needs once, before forking (each fork then starts warm)."""
    import importlib

    for name in ("wasmjit.api", "wasmjit.interp", "wasmjit.jit.native", "wasmjit.jit.tier",
                 "wasmjit.jit.emulate", "wasmtime"):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a module that cannot load is loaded (and fails) in the worker
            pass


def run(args: argparse.Namespace, log: TextIO | None = None) -> int:
    """``wasmjit fuzz`` in smith mode: 0 when nothing was found, 1 otherwise, 2 on usage errors."""
    log = log or sys.stderr
    try:
        tiers = difftest.parse_tiers(args.tiers)
        tier_up = difftest.parse_tier_up(args.tier_up)
        if args.seconds <= 0 or args.timeout <= 0:
            raise difftest.UsageError("--seconds and --timeout must be positive")
        wasm_tools()
    except WasmjitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    preload()
    stats = Stats()
    tty = hasattr(log, "isatty") and log.isatty()
    last_line = 0.0
    deadline = stats.started + args.seconds
    print(f"fuzzing {', '.join(tiers)} against wasmtime for {args.seconds:g} s (seed {args.seed})",
          file=log)
    try:
        with tempfile.TemporaryDirectory(prefix="wasmjit-fuzz-") as tmp:
            seeds = seed_stream(args.seed)
            number = -1
            while time.monotonic() < deadline:
                if args.max_modules is not None and stats.modules >= args.max_modules:
                    break
                number += 1
                module = Path(tmp) / "candidate.wasm"
                seed_bytes, flags, compile_only = next(seeds)
                if not smith(seed_bytes, module, flags):
                    continue
                if not compile_only:
                    export_fuel(module)
                comparison = difftest.compare_module(module, tiers, timeout=args.timeout, launcher="fork",
                                                     tier_up=tier_up, compile_only=compile_only)
                stats.modules += 1
                for engine, result in comparison.results.items():
                    if result.ok:
                        stats.tested[engine] += 1
                if all(r.rows.get("compile") == "ok" for r in comparison.results.values()):
                    stats.valid += 1
                stats.loaded_only += compile_only
                if not comparison.agree:
                    record_finding(module, comparison, number, tiers, args, stats, log, compile_only)
                now = time.monotonic()
                if tty:
                    print("\r" + stats.line(), end="", file=log, flush=True)
                elif now - last_line >= 5:
                    print(stats.line(), file=log, flush=True)
                    last_line = now
    except KeyboardInterrupt:
        print("\ninterrupted", file=log)
    if tty:
        print(file=log)
    print(stats.line(), file=log)
    print(f"done: {stats.modules} modules ({stats.loaded_only} only loaded; {stats.valid} valid everywhere), "
          f"{sum(1 + f.duplicates for f in stats.findings)} finding(s)", file=log)
    for finding in stats.findings:
        print(f"  {finding.path}: {finding.signature}"
              f"{f' (x{finding.duplicates + 1})' if finding.duplicates else ''}", file=log)
    return 1 if stats.findings else 0


def predicate_main(argv: Sequence[str]) -> int:
    """The shrink predicate: exit 0 when the module still shows the signature, 1 otherwise."""
    parser = argparse.ArgumentParser(prog="python -m wasmjit.fuzz.smith --predicate")
    parser.add_argument("--predicate", required=True, metavar="SIGNATURE")
    parser.add_argument("--tiers", required=True)
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--tier-up", default=None)
    parser.add_argument("--compile-only", action="store_true")
    parser.add_argument("module")
    args = parser.parse_args(argv)
    preload()
    comparison = difftest.compare_module(args.module, difftest.parse_tiers(args.tiers),
                                         timeout=args.timeout, launcher="fork",
                                         tier_up=difftest.parse_tier_up(args.tier_up),
                                         compile_only=args.compile_only)
    return 0 if matches(comparison, args.predicate) else 1


def matches(comparison: difftest.Comparison, sig: str) -> bool:
    """Whether any difference has the signature ``sig`` (kind and the same deviating engines)."""
    return any(difftest.signature([d]) == sig for d in comparison.differences)


if __name__ == "__main__":
    raise SystemExit(predicate_main(sys.argv[1:]))
