#!/usr/bin/env python3
"""Fuel accounting against wasmtime-py on wasm-tools smith modules.

Each module (from ``wasmjit fuzz``'s seed stream) is instantiated with plenty of fuel on
wasmtime-py and on each wasmjit tier; then every exported function with numeric parameters is
called with zeros, once per fuel amount, and (outcome, fuel left) must be the same everywhere.
Modules that differ are written to --out for ``wasm-tools shrink``.

    python tools/fuel_diff.py --modules 200 --seed 5150 [--tiers interp,jit] [--out fuel-diffs]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import wasmtime

import wasmjit
from wasmjit.fuzz import smith

NUMERIC = ("i32", "i64", "f32", "f64")
FUEL_AMOUNTS = (3000, 200_000)


def calls(lib: Any, tier: str | None, wasm: bytes, fuel: int) -> list[tuple[str, str, int]] | None:
    """(export, outcome, fuel left) per exported numeric function, in name order; None if the
    module does not instantiate."""
    config = lib.Config()
    config.consume_fuel = True
    if tier is not None:
        config.tier = tier
    engine = lib.Engine(config)
    store = lib.Store(engine)
    store.set_fuel(10**9)
    try:
        instance = lib.Instance(store, lib.Module(engine, wasm), [])
    except Exception:  # noqa: BLE001 - traps and link errors alike: nothing to compare
        return None
    out = []
    for name, func in sorted(instance.exports(store).items(), key=lambda item: item[0]):
        if not isinstance(func, lib.Func):
            continue
        params = [str(p) for p in func.type(store).params]
        if not all(p in NUMERIC for p in params):
            continue
        store.set_fuel(fuel)
        try:
            func(store, *[0.0 if p in ("f32", "f64") else 0 for p in params])
            outcome = "returned"
        except lib.Trap as trap:
            code = trap.trap_code.name if trap.trap_code is not None else "?"
            outcome = "trap " + code.replace("UNDEFINED_ELEMENT", "TABLE_OUT_OF_BOUNDS")
        out.append((name, outcome, store.get_fuel()))
    return out


def compare(job: tuple[int, bytes, tuple[str, ...]]) -> tuple[int, str] | None:
    """None when the module is not comparable, '' when every tier agrees, else the first difference."""
    index, wasm, tiers = job
    for fuel in FUEL_AMOUNTS:
        expected = calls(wasmtime, None, wasm, fuel)
        if expected is None:
            return None
        for tier in tiers:
            got = calls(wasmjit, tier, wasm, fuel)
            if got != expected:
                detail = next(((e, g) for e, g in zip(expected, got or [], strict=False) if e != g),
                              (expected, got))
                return index, f"{tier} with {fuel} fuel: wasmtime {detail[0]}, wasmjit {detail[1]}"
    return index, ""


def modules(count: int, seed: int) -> list[tuple[int, bytes]]:
    """``count`` smith modules from the fuzzer's seed stream (load-only seeds skipped)."""
    seeds = smith.seed_stream(seed)
    out: list[tuple[int, bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "m.wasm")
        for index in range(count):
            seed_bytes, flags, compile_only = next(seeds)
            if not compile_only and smith.smith(seed_bytes, path, flags):
                out.append((index, path.read_bytes()))
    return out


def _results(jobs: list, workers: int) -> Iterator[tuple[int, str] | None]:
    """compare() of each job: in this process, or in ``workers`` spawned processes (not forked: a
    fork of a process whose wasmtime started its threads can hang)."""
    if workers <= 1:
        yield from map(compare, jobs)
        return
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap_unordered(compare, jobs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modules", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiers", default="interp,jit")
    parser.add_argument("--out", type=Path, default=Path("fuel-diffs"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    tiers = tuple(t for t in args.tiers.split(",") if t)
    wasms = dict(modules(args.modules, args.seed))
    jobs = [(index, wasm, tiers) for index, wasm in wasms.items()]
    same, differ = 0, []
    for result in _results(jobs, args.workers):
        if result is None:
            continue
        if result[1]:
            differ.append(result)
        else:
            same += 1
    print(f"{same + len(differ)} modules compared on {', '.join(tiers)} against wasmtime: "
          f"{same} agree, {len(differ)} differ")
    for index, detail in sorted(differ):
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"seed{args.seed}-{index}.wasm"
        path.write_bytes(wasms[index])
        print(f"  {path}: {detail}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
