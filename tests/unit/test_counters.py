"""Execution counters: exact function entries and loop back-edges for programs whose counts
follow from their code, for every branch shape that can jump back to a loop header."""

from __future__ import annotations

import pytest

import wasmjit
from wasmjit.api import AVAILABLE_TIERS, COUNTING_TIERS


@pytest.fixture(params=[t for t in AVAILABLE_TIERS if t in COUNTING_TIERS])
def tier(request: pytest.FixtureRequest) -> str:
    """The counters are the interpreter's: every tier that interprets."""
    return request.param


@pytest.fixture
def engine(tier: str) -> wasmjit.Engine:
    """Thresholds no test reaches: functions stay interpreted (tiering up is tested elsewhere)."""
    config = wasmjit.Config()
    config.tier = tier
    config.tier_up_calls = config.tier_up_loops = 1 << 60
    return wasmjit.Engine(config)


def shown(tier: str) -> str:
    """The tier --tier-stats shows for an interpreted function."""
    return "interp" if tier == "tiered" else tier

COUNTERS_WAT = """(module $counters
  (type $i_i (func (param i32) (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $fib $leaf)

  ;; fib(n) calls itself twice for n >= 2: entries(n) = 2 * fib(n + 1) - 1
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2)))))))

  ;; do-while, test at the bottom (a compare fused into br_if): n >= 1 bodies, n - 1 back-edges
  (func $do_while (export "do_while") (param $n i32) (result i32) (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $i))

  ;; while, test at the top and `br $l` at the bottom: n bodies, n back-edges
  (func $while (export "while") (param $n i32) (result i32) (local $i i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (local.get $i))

  ;; count down with a plain local as the br_if condition: n - 1 back-edges for n >= 1
  (func $count_down (export "count_down") (param $n i32) (result i32) (local $steps i32)
    (loop $l
      (local.set $steps (i32.add (local.get $steps) (i32.const 1)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (local.get $n)))
    (local.get $steps))

  ;; a loop with a parameter: br_if carries the accumulator back; n - 1 back-edges for n >= 1
  (func $sum (export "sum") (param $n i32) (result i32)
    (i32.const 0)
    (loop $l (param i32) (result i32)
      (i32.add (local.get $n))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (local.get $n))))

  ;; br_table whose first target is the loop: n - 1 back-edges for n >= 1
  (func $table_loop (export "table_loop") (param $n i32) (result i32) (local $i i32)
    (block $exit
      (loop $l
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_table $l $exit (i32.ge_u (local.get $i) (local.get $n)))))
    (local.get $i))

  ;; nested whiles: outer n times, inner m times per outer body: n + n * m back-edges
  (func $nested (export "nested") (param $n i32) (param $m i32) (result i32) (local $i i32) (local $j i32)
    (local $total i32)
    (block $outer_done
      (loop $outer
        (br_if $outer_done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $j (i32.const 0))
        (block $inner_done
          (loop $inner
            (br_if $inner_done (i32.ge_u (local.get $j) (local.get $m)))
            (local.set $total (i32.add (local.get $total) (i32.const 1)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $inner)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $outer)))
    (local.get $total))

  ;; a loop left by `return`: n bodies, n - 1 back-edges (the exit is not one)
  (func $early_return (export "early_return") (param $n i32) (result i32) (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (if (i32.ge_u (local.get $i) (local.get $n)) (then (return (local.get $i))))
      (br $l))
    (unreachable))

  ;; calls $leaf once per iteration, directly and through the table: entries add up per callee
  (func $caller (export "caller") (param $n i32) (result i32) (local $acc i32)
    (block $done
      (loop $l
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (call $leaf (local.get $n))))
        (local.set $acc (i32.add (local.get $acc) (call_indirect (type $i_i) (local.get $n) (i32.const 1))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $l)))
    (local.get $acc))
  (func $leaf (param i32) (result i32) (local.get 0)))"""


@pytest.fixture
def counters(store: wasmjit.Store) -> wasmjit.Instance:
    return wasmjit.Instance(store, wasmjit.Module(store.engine, COUNTERS_WAT), [])


def counts(store: wasmjit.Store, inst: wasmjit.Instance) -> dict[str, tuple[int, int]]:
    """(entries, back-edges) by function name, for the functions that ran."""
    return {s.name: (s.entries, s.back_edges) for s in inst.func_stats(store) if s.entries}


@pytest.mark.parametrize(("n", "result", "entries"), [(0, 0, 1), (1, 1, 1), (2, 1, 3), (10, 55, 177),
                                                      (15, 610, 1973)])
def test_recursive_fib_entries(store: wasmjit.Store, counters: wasmjit.Instance, n: int, result: int,
                               entries: int) -> None:
    assert counters.exports(store)["fib"](store, n) == result
    assert counts(store, counters) == {"fib": (entries, 0)}


# export, argument, result, back-edges
LOOPS = [
    ("do_while", 1, 1, 0), ("do_while", 10, 10, 9), ("do_while", 0, 1, 0),
    ("while", 0, 0, 0), ("while", 1, 1, 1), ("while", 10, 10, 10),
    ("count_down", 1, 1, 0), ("count_down", 7, 7, 6),
    ("sum", 1, 1, 0), ("sum", 100, 5050, 99),
    ("table_loop", 1, 1, 0), ("table_loop", 25, 25, 24),
    ("early_return", 1, 1, 0), ("early_return", 8, 8, 7),
]


@pytest.mark.parametrize(("export", "arg", "result", "back_edges"), LOOPS)
def test_loop_back_edges(store: wasmjit.Store, counters: wasmjit.Instance, export: str, arg: int,
                         result: int, back_edges: int) -> None:
    assert counters.exports(store)[export](store, arg) == result
    assert counts(store, counters) == {export: (1, back_edges)}


@pytest.mark.parametrize(("n", "m", "back_edges"), [(0, 5, 0), (3, 0, 3), (1, 1, 2), (4, 6, 28)])
def test_nested_loops_count_per_function(store: wasmjit.Store, counters: wasmjit.Instance, n: int, m: int,
                                         back_edges: int) -> None:
    assert counters.exports(store)["nested"](store, n, m) == n * m
    assert counts(store, counters) == {"nested": (1, back_edges)}


def test_counts_accumulate_across_calls(store: wasmjit.Store, counters: wasmjit.Instance) -> None:
    exports = counters.exports(store)
    assert [exports["while"](store, n) for n in (3, 4, 5)] == [3, 4, 5]
    assert exports["fib"](store, 5) == 5  # 15 entries
    assert exports["fib"](store, 6) == 8  # 25 entries
    assert counts(store, counters) == {"while": (3, 12), "fib": (40, 0)}


def test_callee_entries_from_direct_and_indirect_calls(store: wasmjit.Store,
                                                       counters: wasmjit.Instance) -> None:
    assert counters.exports(store)["caller"](store, 4) == 2 * (4 + 3 + 2 + 1)
    assert counts(store, counters) == {"caller": (1, 4), "leaf": (8, 0)}


def test_stats_fields(store: wasmjit.Store, counters: wasmjit.Instance, tier: str) -> None:
    counters.exports(store)["sum"](store, 3)
    stats = {s.name: s for s in counters.func_stats(store)}
    assert list(stats) == ["fib", "do_while", "while", "count_down", "sum", "table_loop", "nested",
                           "early_return", "caller", "leaf"]
    assert stats["sum"] == wasmjit.FuncStats("counters", 4, "sum", 1, 2, shown(tier))
    assert stats["fib"] == wasmjit.FuncStats("counters", 0, "fib", 0, 0, shown(tier))


def test_instances_count_separately(store: wasmjit.Store, counters: wasmjit.Instance) -> None:
    other = wasmjit.Instance(store, wasmjit.Module(store.engine, COUNTERS_WAT), [])
    counters.exports(store)["while"](store, 2)
    other.exports(store)["while"](store, 5)
    other.exports(store)["while"](store, 1)
    assert counts(store, counters) == {"while": (1, 2)}
    assert counts(store, other) == {"while": (2, 6)}
    assert sorted((s.entries, s.back_edges) for s in store.func_stats() if s.entries) == [(1, 2), (2, 6)]


def test_entries_count_calls_from_the_host(store: wasmjit.Store) -> None:
    """wasm -> host -> wasm: every entry into $inner counts, from wasm or from Python."""
    box = {}
    i32 = wasmjit.ValType.i32()
    host = wasmjit.Func(store, wasmjit.FuncType([i32], [i32]), lambda x: box["inner"](store, x) + 1)
    inst = wasmjit.Instance(store, wasmjit.Module(store.engine, """(module
      (import "h" "f" (func $host (param i32) (result i32)))
      (func $outer (export "outer") (param i32) (result i32) (call $host (local.get 0)))
      (func $inner (export "inner") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2))))"""),
        [host])
    box["inner"] = inst.exports(store)["inner"]
    assert inst.exports(store)["outer"](store, 5) == 11
    assert box["inner"](store, 1) == 2
    assert counts(store, inst) == {"outer": (1, 0), "inner": (2, 0)}
