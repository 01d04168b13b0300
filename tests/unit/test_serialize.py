"""Relocatable native code: a module compiles each function once for all its instances, and
Module.serialize / deserialize / deserialize_file carry that code to a later run."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import wasmjit
from wasmjit import api
from wasmjit.jit import artifact, codegen, codemem, native, serialize
from wasmjit.jit.x64 import DATA_ALIGN

PROGRAM = """(module
  (import "host" "twice" (func $twice (param i32) (result i32)))
  (global $counter (mut i32) (i32.const 5))
  (global $scale f64 (f64.const 1.5))
  (memory 1)
  (table 3 funcref)
  (elem (i32.const 0) $fib $twice $bump)
  (type $unary (func (param i32) (result i32)))
  (func $fib (export "fib") (param i32) (result i32)
    (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))
      (then (local.get 0))
      (else (i32.add (call_indirect (type $unary) (i32.sub (local.get 0) (i32.const 1)) (i32.const 0))
                     (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
  (func $bump (export "bump") (param i32) (result i32)
    (global.set $counter (i32.add (global.get $counter) (local.get 0)))
    (memory.fill (i32.const 16) (i32.const 7) (i32.const 4))
    (drop (memory.grow (i32.const 0)))
    (i32.add (global.get $counter) (i32.load8_u (i32.const 17))))
  (func (export "host") (param i32) (result i32)
    (i32.add (call $twice (local.get 0)) (call_indirect (type $unary) (local.get 0) (i32.const 1))))
  (func (export "scaled") (param f64) (result f64) (f64.mul (local.get 0) (global.get $scale)))
  (func $deep (export "deep") (param i32) (result i32)
    (if (i32.eqz (local.get 0)) (then (unreachable)))
    (call $deep (i32.sub (local.get 0) (i32.const 1))))
  (func (export "bad_type") (result i32) (call_indirect (type $unary) (i32.const 0) (i32.const 2)))
  (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1))))"""


def engine(tier: str) -> wasmjit.Engine:
    config = wasmjit.Config()
    config.tier = tier
    return wasmjit.Engine(config)


def instantiate(module: wasmjit.Module, tier_store: wasmjit.Store | None = None) -> tuple:
    store = tier_store or wasmjit.Store(module.engine)
    twice = wasmjit.Func(store, wasmjit.FuncType([wasmjit.ValType.i32()], [wasmjit.ValType.i32()]),
                         lambda x: 2 * x)
    return store, wasmjit.Instance(store, module, [twice]).exports(store)


def count_compiles(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Count lowering and assembly runs (every compilation does both once)."""
    native.routines()  # assembled once per process, not a compilation
    counts: Counter = Counter()
    for name in ("lower", "assemble"):
        real = getattr(native, name)

        def counted(*args: object, _real=real, _name=name, **kwargs: object) -> object:
            counts[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(native, name, counted)
    return counts


def test_code_assembled_at_offset_0_keeps_its_alignment_where_it_is_installed() -> None:
    """The data area (aligned SSE constants, jump tables) is laid out for offset 0."""
    assert codemem.FUNCTION_ALIGN % DATA_ALIGN == 0
    store, _ = instantiate(wasmjit.Module(engine("jit"), PROGRAM))
    assert all(r.start % DATA_ALIGN == 0 for r in native.native_store(store._store).ranges)


def test_a_module_compiles_each_function_once_for_all_its_instances(monkeypatch: pytest.MonkeyPatch) -> None:
    counts = count_compiles(monkeypatch)
    module = wasmjit.Module(engine("jit"), PROGRAM)
    first_store, first = instantiate(module)
    assert counts == {"lower": 7, "assemble": 7}
    second_store, second = instantiate(module)  # another store: other addresses, handles, helpers
    third_store, third = instantiate(module, first_store)  # same store: other globals and memory
    assert counts == {"lower": 7, "assemble": 7}
    for store, exports in ((first_store, first), (second_store, second), (third_store, third)):
        assert exports["fib"](store, 15) == 610
        assert exports["host"](store, 21) == 84
        assert exports["scaled"](store, 2.0) == 3.0
    assert [first["bump"](first_store, 1), first["bump"](first_store, 1)] == [13, 14]
    assert third["bump"](third_store, 10) == 22  # its own global and memory


# --- round trips ---------------------------------------------------------------------------------

CALLS = [("fib", (15,)), ("host", (21,)), ("scaled", (2.0,)), ("bump", (3,)), ("bump", (4,)),
         ("deep", (5,)), ("bad_type", ()), ("div", (7, 0)), ("div", (-2**31, -1)), ("div", (9, 2))]


def outcomes(module: wasmjit.Module) -> list:
    """Every call's result, or its trap: code, text (with the backtrace) and frames."""
    store, exports = instantiate(module)
    out = []
    for name, args in CALLS:
        try:
            out.append(exports[name](store, *args))
        except wasmjit.Trap as trap:
            out.append((trap.trap_code, str(trap), trap.frames))
    return out


@pytest.mark.parametrize("tier", api.AVAILABLE_TIERS)
def test_round_trip_runs_like_the_original(tier: str) -> None:
    eng = engine(tier)
    original = wasmjit.Module(eng, PROGRAM)
    expected = outcomes(original)
    assert expected[5][0] is wasmjit.TrapCode.UNREACHABLE and len(expected[5][2]) == 6
    data = original.serialize()
    assert isinstance(data, bytearray) and data.startswith(b"\0wasmjit")
    loaded = wasmjit.Module.deserialize(eng, data)
    assert outcomes(loaded) == expected
    assert [e.name for e in loaded.exports] == [e.name for e in original.exports]
    assert wasmjit.Module.deserialize(eng, loaded.serialize()).serialize() == data


@pytest.mark.parametrize("tier", ["jit", "unicorn"])
def test_deserialized_code_is_installed_not_compiled(tier: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiers that install every function at instantiation (tiered: the next test)."""
    data = wasmjit.Module(engine(tier), PROGRAM).serialize()  # compiles: no instance needed it yet
    counts = count_compiles(monkeypatch)
    loaded = wasmjit.Module.deserialize(engine(tier), data)
    store, exports = instantiate(loaded)
    assert exports["fib"](store, 20) == 6765
    assert not counts
    stats = {s.name: s for s in store.func_stats()}
    assert stats["fib"].tier == tier and stats["fib"].code_bytes > 0


def test_tiered_functions_tier_up_to_deserialized_code(monkeypatch: pytest.MonkeyPatch) -> None:
    config = wasmjit.Config()
    config.tier = "tiered"
    config.tier_up_calls = 1
    data = wasmjit.Module(wasmjit.Engine(config), PROGRAM).serialize()
    counts = count_compiles(monkeypatch)
    loaded = wasmjit.Module.deserialize(wasmjit.Engine(config), data)
    store, exports = instantiate(loaded)
    assert [exports["fib"](store, 12) for _ in range(3)] == [144] * 3
    assert {s.name: s.tier for s in store.func_stats()}["fib"] == "jit"
    assert not counts


def test_a_later_process_runs_the_serialized_code(tmp_path: Path) -> None:
    """Another process: other addresses for everything the relocations name."""
    module = wasmjit.Module(engine("jit"), PROGRAM)
    path = tmp_path / "program.cwasm"
    path.write_bytes(module.serialize())
    script = f"""
import wasmjit
from wasmjit.jit import artifact, codegen, codemem, native, serialize
from wasmjit.jit.x64 import DATA_ALIGN
native.routines()
native.lower = native.assemble = None  # compiling would fail
config = wasmjit.Config()
config.tier = "jit"
eng = wasmjit.Engine(config)
store = wasmjit.Store(eng)
module = wasmjit.Module.deserialize_file(eng, {str(path)!r})
i32 = [wasmjit.ValType.i32()]
twice = wasmjit.Func(store, wasmjit.FuncType(i32, i32), lambda x: 2 * x)
exports = wasmjit.Instance(store, module, [twice]).exports(store)
print(exports["fib"](store, 20), exports["host"](store, 4), exports["bump"](store, 1))
try:
    exports["deep"](store, 2)
except wasmjit.Trap as trap:
    print(trap)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    store, exports = instantiate(module)
    with pytest.raises(wasmjit.Trap) as trap:
        exports["deep"](store, 2)
    assert len(trap.value.frames) == 3
    assert done.stdout == f"6765 16 13\n{trap.value}\n"


# --- what does not load --------------------------------------------------------------------------


def settings_engine(tier: str = "jit", fuel: bool = False, epoch: bool = False) -> wasmjit.Engine:
    config = wasmjit.Config()
    config.tier, config.consume_fuel, config.epoch_interruption = tier, fuel, epoch
    return wasmjit.Engine(config)


@pytest.mark.parametrize(("made", "loaded", "message"), [
    ((False, False), (True, False),
     "Module was compiled without fuel support but it is enabled for the host"),
    ((True, False), (False, False),
     "Module was compiled with fuel support but it is not enabled for the host"),
    ((False, False), (False, True),
     "Module was compiled without epoch interruption but it is enabled for the host"),
    ((False, True), (False, False),
     "Module was compiled with epoch interruption but it is not enabled for the host"),
])
def test_fuel_and_epochs_are_part_of_the_fingerprint(made: tuple, loaded: tuple, message: str) -> None:
    """wasmtime's messages; the code differs (fuel and epoch checks are compiled in)."""
    data = wasmjit.Module(settings_engine("jit", *made), PROGRAM).serialize()
    with pytest.raises(wasmjit.WasmjitError) as err:
        wasmjit.Module.deserialize(settings_engine("jit", *loaded), data)
    assert str(err.value) == message
    assert type(err.value) is wasmjit.WasmjitError


def test_fuel_code_round_trips_and_charges_the_same() -> None:
    used = []
    for module in (original := wasmjit.Module(settings_engine("jit", True, True), PROGRAM),
                   wasmjit.Module.deserialize(original.engine, original.serialize())):
        store, exports = instantiate(module)
        store.set_fuel(10_000)
        store.set_epoch_deadline(1)
        assert exports["fib"](store, 10) == 55
        used.append(store.get_fuel())
        store.set_fuel(50)
        with pytest.raises(wasmjit.Trap) as trap:
            exports["fib"](store, 10)
        assert trap.value.trap_code is wasmjit.TrapCode.OUT_OF_FUEL
    assert used[0] == used[1] < 10_000


@pytest.mark.parametrize(("made", "loaded"), [("jit", "interp"), ("interp", "jit"), ("interp", "unicorn")])
def test_native_code_and_none_do_not_mix(made: str, loaded: str) -> None:
    data = wasmjit.Module(engine(made), PROGRAM).serialize()
    with pytest.raises(wasmjit.WasmjitError, match="Module was compiled with .* but the engine's tier"):
        wasmjit.Module.deserialize(engine(loaded), data)


def test_native_tiers_share_their_code() -> None:
    data = wasmjit.Module(engine("unicorn"), PROGRAM).serialize()
    for tier in ("jit", "tiered"):
        store, exports = instantiate(wasmjit.Module.deserialize(engine(tier), data))
        assert exports["fib"](store, 10) == 55


def test_another_build_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    data = wasmjit.Module(engine("jit"), PROGRAM).serialize()
    eng = engine("jit")
    monkeypatch.setattr(serialize, "_version", lambda: "9.9.9")
    with pytest.raises(wasmjit.WasmjitError, match=r"compiled by wasmjit \S+, this is wasmjit 9\.9\.9"):
        wasmjit.Module.deserialize(eng, data)
    monkeypatch.undo()
    monkeypatch.setattr(serialize, "_source_hash", lambda: bytes(32))
    with pytest.raises(wasmjit.WasmjitError, match="another build of wasmjit's code generator"):
        wasmjit.Module.deserialize(eng, data)
    monkeypatch.undo()
    monkeypatch.setattr(codegen, "INJECTED_FAULT", "xor-as-or")
    with pytest.raises(wasmjit.WasmjitError, match="injected code generation fault 'none', the host has"):
        wasmjit.Module.deserialize(eng, data)
    monkeypatch.undo()
    newer = data[:8] + (serialize.FORMAT_VERSION + 1).to_bytes(2, "little") + data[10:]
    with pytest.raises(wasmjit.WasmjitError, match="format version 2, this wasmjit reads version 1"):
        wasmjit.Module.deserialize(eng, newer)
    assert wasmjit.Module.deserialize(eng, data)


def test_corrupted_and_truncated_data_raise_wasmjit_errors() -> None:
    eng = engine("jit")
    data = bytes(wasmjit.Module(eng, PROGRAM).serialize())
    for size in range(len(data)):
        with pytest.raises(wasmjit.WasmjitError):
            wasmjit.Module.deserialize(eng, data[:size])
    for position in range(len(data)):
        for bit in (0x01, 0x80):
            damaged = bytearray(data)
            damaged[position] ^= bit
            with pytest.raises(wasmjit.WasmjitError):
                wasmjit.Module.deserialize(eng, damaged)
    for garbage in (b"", b"garbage", b"\0wasmjit", b"\0asm\1\0\0\0", os.urandom(4096), data + b"\0"):
        with pytest.raises(wasmjit.WasmjitError):
            wasmjit.Module.deserialize(eng, garbage)
    with pytest.raises(TypeError, match="expected bytes"):
        wasmjit.Module.deserialize(eng, "text")  # type: ignore[arg-type]


def test_code_that_does_not_fit_its_module_is_refused() -> None:
    """Well-formed data (a valid checksum) whose code names what the module does not have."""
    eng = engine("jit")
    module = wasmjit.Module(eng, PROGRAM)
    fp = api._fingerprint(eng)
    code = serialize.module_code(module._vmod, fp, required=True)
    fib = code[1]
    bad_relocations = [("global", 2), ("type_id", 9), ("func_code", 99), ("helper", "rm_rf", 0),
                       ("helper", "table_get", "x"), ("trap_routine", 1)]
    for target in bad_relocations:
        broken = dataclasses.replace(fib, relocations=(artifact.Relocation(0, 8, target),))
        with pytest.raises(wasmjit.WasmjitError, match="does not fit the module"):
            wasmjit.Module.deserialize(eng, serialize.serialize(fp, module._binary, {1: broken}))
    for index in (0, 9):  # the import, no such function
        with pytest.raises(wasmjit.WasmjitError, match=f"code for function {index}"):
            wasmjit.Module.deserialize(eng, serialize.serialize(fp, module._binary, {index: fib}))
    for broken in (dataclasses.replace(fib, entry=len(fib.code)),
                   dataclasses.replace(fib, relocations=(artifact.Relocation(len(fib.code) - 4, 8,
                                                                             ("code_array",)),)),
                   dataclasses.replace(fib, relocations=(artifact.Relocation(0, 2, ("code_array",)),)),
                   dataclasses.replace(fib, relocations=(artifact.Relocation(0, 8, ("unknown",)),)),
                   dataclasses.replace(fib, call_sites=((len(fib.code) + 1, 0),))):
        with pytest.raises(wasmjit.WasmjitError, match="failed to deserialize module"):
            wasmjit.Module.deserialize(eng, serialize.serialize(fp, module._binary, {1: broken}))


def test_deserialize_file(tmp_path: Path) -> None:
    eng = engine("jit")
    path = tmp_path / "module.cwasm"
    path.write_bytes(wasmjit.Module(eng, PROGRAM).serialize())
    for where in (path, str(path)):
        store, exports = instantiate(wasmjit.Module.deserialize_file(eng, where))
        assert exports["fib"](store, 10) == 55
    with pytest.raises(wasmjit.WasmjitError, match="failed to open file"):
        wasmjit.Module.deserialize_file(eng, str(tmp_path / "missing.cwasm"))
    (tmp_path / "short.cwasm").write_bytes(path.read_bytes()[:100])
    with pytest.raises(wasmjit.WasmjitError, match="truncated"):
        wasmjit.Module.deserialize_file(eng, tmp_path / "short.cwasm")


def test_every_relocation_target_is_checked_on_load() -> None:
    assert set(serialize._ARGUMENTS) == set(codegen.TARGETS)
    code = serialize.module_code(wasmjit.Module(engine("jit"), PROGRAM)._vmod,
                                 api._fingerprint(engine("jit")), required=True)
    used = {reloc.target[0] for func in code.values() for reloc in func.relocations}
    assert used == set(codegen.TARGETS)  # PROGRAM exercises every kind


# --- CLI: wasmjit compile -o, wasmjit run --allow-precompiled ------------------------------------

CLI_WAT = """(module (func (export "count") (param i32) (result i32)
  (loop (local.set 0 (i32.sub (local.get 0) (i32.const 1))) (br_if 0 (local.get 0)))
  (i32.div_u (i32.const 1) (local.get 0))))"""


@pytest.mark.parametrize("tier", ["jit", "tiered", "unicorn"])
def test_cli_compile_output_runs_precompiled(tier: str, tmp_path: Path, capsys) -> None:
    """The tiers that run native code (interp refuses a module with code, tested above)."""
    from wasmjit import cli

    source, compiled = tmp_path / "m.wat", tmp_path / "m.cwasm"
    source.write_text(CLI_WAT)
    assert cli.main(["compile", "-o", str(compiled), str(source)]) == 0
    assert compiled.read_bytes().startswith(serialize.MAGIC)
    capsys.readouterr()
    run = ["run", "--tier", tier, "--invoke", "count", str(compiled), "3"]
    assert cli.main(run) == 1
    assert capsys.readouterr().err == (f"error: {compiled} is a precompiled module: run it with "
                                       "--allow-precompiled\n")
    assert cli.main([*run[:1], "--allow-precompiled", *run[1:]]) == cli.EXIT_TRAP
    assert "wasm trap: integer divide by zero" in capsys.readouterr().err
    fuel = ["run", "--allow-precompiled", "--tier", tier, "--fuel", "100", "--invoke", "count",
            str(compiled), "3"]
    assert cli.main(fuel) == 1
    assert "compiled without fuel support" in capsys.readouterr().err
    assert cli.main(["compile", "--consume-fuel", "-o", str(compiled), str(source)]) == 0
    assert cli.main(fuel) == cli.EXIT_TRAP  # now it runs (and divides by zero)
