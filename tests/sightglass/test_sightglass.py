"""The smallest Sightglass shootout programs produce their expected output on every tier.

Each program is a WASI command importing ``bench.start``/``bench.end``; it runs through the public
API exactly as an embedder would run it (preopened ``.``, stdout/stderr to files) and its output is
compared byte for byte with ``NAME.stdout.expected`` / ``NAME.stderr.expected``. The bigger
programs take minutes or hours in the interpreter: ``tools/bench.py --suite sightglass`` runs them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import wasmjit

REPO = Path(__file__).resolve().parents[2]
SIGHTGLASS = Path(os.environ.get("WASMJIT_SIGHTGLASS_DIR") or REPO.parent / "shared" / "bench" / "sightglass")
SMALL = ["xblabla20", "gimli", "xchacha20", "keccak", "memmove", "ratelimit"]

if not SIGHTGLASS.is_dir():
    pytest.skip(f"no Sightglass programs at {SIGHTGLASS}: they are expected in the shared data folder "
                "../shared beside the clone (or set WASMJIT_SIGHTGLASS_DIR)", allow_module_level=True)


@pytest.mark.parametrize("name", SMALL)
def test_program_output(engine: wasmjit.Engine, tmp_path: Path, name: str) -> None:
    program = SIGHTGLASS / f"shootout-{name}.wasm"
    store = wasmjit.Store(engine)
    wasi = wasmjit.WasiConfig()
    wasi.argv = [program.name]
    wasi.stdout_file, wasi.stderr_file = tmp_path / "stdout", tmp_path / "stderr"
    wasi.preopen_dir(SIGHTGLASS, ".")
    store.set_wasi(wasi)
    linker = wasmjit.Linker(engine)
    linker.define_wasi()
    calls: list[str] = []
    for hook in ("start", "end"):
        linker.define_func("bench", hook, wasmjit.FuncType([], []), lambda hook=hook: calls.append(hook))
    instance = linker.instantiate(store, wasmjit.Module.from_file(engine, program))
    try:
        instance.exports(store)["_start"](store)
    except wasmjit.ExitTrap as exit_:
        assert exit_.code == 0
    assert calls == ["start", "end"]
    for stream in ("stdout", "stderr"):
        expected = (SIGHTGLASS / f"shootout-{name}.{stream}.expected").read_bytes()
        assert (tmp_path / stream).read_bytes() == expected, stream
