#!/usr/bin/env python3
"""Start-up time on a native tier: a module from its wasm bytes vs from Module.serialize's bytes.

For each Sightglass program (all of them, or the names given), one worker process serializes the
module; then fresh worker processes (this script with --worker) each measure one start-up, best of
--repeat: "from wasm" is Module(engine, wasm) + instantiation (decode, validate, compile every
function, install), "serialized" is Module.deserialize(engine, data) + instantiation (check,
decode, validate, copy and patch the stored code). Instantiation links WASI and bench.start/end;
nothing runs. Python's start and wasmjit's imports (the same for both) are not counted. With
--run, each worker then runs _start and its stdout must match the program's .stdout.expected.
Prints a Markdown table.

    python tools/startup.py --tier jit shootout-keccak shootout-ed25519
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIGHTGLASS = ROOT.parent / "shared" / "bench" / "sightglass"


def worker(mode: str, wasm_path: Path, tier: str, data_path: Path, run: bool) -> dict[str, Any]:
    """One start-up in this process: ``mode`` "serialize" writes ``data_path``, "wasm" and
    "serialized" time loading + instantiating (and with ``run`` check the program's output)."""
    import wasmjit
    import wasmjit.jit.native
    import wasmjit.jit.serialize  # noqa: F401 - imported before the clock starts, as native is

    config = wasmjit.Config()
    config.tier = tier
    engine = wasmjit.Engine(config)
    start = time.perf_counter()
    if mode == "serialized":
        module = wasmjit.Module.deserialize_file(engine, data_path)
    else:
        module = wasmjit.Module(engine, wasm_path.read_bytes())
    loaded = time.perf_counter()
    if mode == "serialize":
        data = module.serialize()
        data_path.write_bytes(data)
        return {"bytes": len(data), "functions": len(module._vmod.func_infos)}
    with tempfile.TemporaryDirectory(prefix="wasmjit-startup-") as tmp:
        store = wasmjit.Store(engine)
        wasi = wasmjit.WasiConfig()
        wasi.argv = [wasm_path.name]
        wasi.stdout_file, wasi.stderr_file = str(Path(tmp) / "out"), str(Path(tmp) / "err")
        wasi.preopen_dir(str(wasm_path.parent), ".")
        store.set_wasi(wasi)
        linker = wasmjit.Linker(engine)
        linker.define_wasi()
        for name in ("start", "end"):
            linker.define_func("bench", name, wasmjit.FuncType([], []), lambda: None)
        instance = linker.instantiate(store, module)
        done = time.perf_counter()
        result = {"load": loaded - start, "instantiate": done - loaded}
        if run:
            try:
                instance.exports(store)["_start"](store)
            except wasmjit.ExitTrap as exit_:
                if exit_.code:
                    raise
            expected = wasm_path.with_suffix(".stdout.expected").read_text()
            result["output_ok"] = (Path(tmp) / "out").read_text() == expected
    return result


def spawn(mode: str, wasm_path: Path, args: argparse.Namespace, data_path: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", mode, str(wasm_path), "--tier", args.tier,
               "--data", str(data_path)] + (["--run"] if args.run else [])
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"{wasm_path.name} ({mode}) failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def measure(wasm_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The serialized size and the best start-up time of each way, for one program."""
    with tempfile.TemporaryDirectory(prefix="wasmjit-startup-") as tmp:
        data_path = Path(tmp) / (wasm_path.stem + ".cwasm")
        row = spawn("serialize", wasm_path, args, data_path)
        for mode in ("wasm", "serialized"):
            runs = [spawn(mode, wasm_path, args, data_path) for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r["load"] + r["instantiate"])
            row[mode] = best["load"] + best["instantiate"]
            row[mode + "_instantiate"] = best["instantiate"]
            if args.run and not all(r["output_ok"] for r in runs):
                raise SystemExit(f"{wasm_path.name} ({mode}): stdout differs from the expected output")
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("programs", nargs="*", help="Sightglass program names (default: all)")
    parser.add_argument("--tier", default="jit", choices=("jit", "unicorn", "tiered"))
    parser.add_argument("--sightglass", type=Path, default=DEFAULT_SIGHTGLASS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--run", action="store_true", help="also run _start and check its output")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:  # the program is the .wasm path
        print(json.dumps(worker(args.worker, Path(args.programs[0]), args.tier, args.data, args.run)))
        return 0
    names = args.programs or sorted(p.stem for p in args.sightglass.glob("shootout-*.wasm"))
    print(f"Start-up on tier {args.tier} (load + instantiate, best of {args.repeat}, s), "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}\n")
    print("| program | functions | wasm (KiB) | serialized (KiB) | from wasm (s) | serialized (s) "
          "| speed-up (×) |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        row = measure(args.sightglass / f"{name}.wasm", args)
        wasm_size = (args.sightglass / f"{name}.wasm").stat().st_size
        print(f"| {name} | {row['functions']} | {wasm_size / 1024:.0f} | {row['bytes'] / 1024:.0f} | "
              f"{row['wasm']:.3f} | {row['serialized']:.3f} | {row['wasm'] / row['serialized']:.1f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
