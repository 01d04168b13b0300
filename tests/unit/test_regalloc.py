"""The register allocator on hand-built IR: register use, spill choice, loops, fixed registers and
clobbers, hints, stack slots, the independent checker (fed deliberately wrong allocations), golden
allocations, and random programs checked by ``check``. Re-bless the golden files with
``WASMJIT_BLESS=1 pytest tests/unit/test_regalloc.py``."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

import wasmjit
from wasmjit.jit.ir import Function, Inst, Label, PReg, RegClass, VReg
from wasmjit.jit.lower import lower
from wasmjit.jit.regalloc import Allocation, AllocationError, StackSlot, allocate, check

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "regalloc"
SIGHTGLASS = Path(__file__).resolve().parents[3] / "shared" / "bench" / "sightglass"


def gpr(name: str) -> PReg:
    return PReg(RegClass.GPR, name)


def xmm(n: int) -> PReg:
    return PReg(RegClass.XMM, f"xmm{n}")


RAX, RCX, RDX, RBX, RSI, RDI, R8, R9, R12, R13 = (
    gpr(n) for n in ("rax", "rcx", "rdx", "rbx", "rsi", "rdi", "r8", "r9", "r12", "r13"))
GPRS = (RAX, RCX, RDX, RBX, RSI, RDI, R8, R9, R12, R13)  # what the x64 back end passes
XMMS = tuple(xmm(i) for i in range(15))
CALLEE_SAVED = (RBX, R12, R13)
CALL_CLOBBERS = frozenset(p for p in GPRS + XMMS if p not in CALLEE_SAVED)


def alloc(func: Function, gprs: tuple[PReg, ...] = GPRS, xmms: tuple[PReg, ...] = XMMS) -> Allocation:
    return allocate(func, gprs, xmms, verify=True)


def counted_loop(f: Function, body: Callable[[VReg], None], trips: int = 10) -> None:
    """``i = 0; L: body(i); i += 1; if i < trips goto L``."""
    i = f.new_vreg("i32")
    f.emit("mov", (i,), (0,))
    head = f.new_label()
    f.place(head)
    body(i)
    f.emit("i32_add", (i,), (i, 1))
    f.emit("cmp_br", (), (i, trips), targets=(head,), cmp="i32_lt_u")


# --- ordinary code ---------------------------------------------------------------------------------


def test_straight_line_uses_few_registers_and_no_slots() -> None:
    f = Function("f")
    a, b, c, d = (f.new_vreg("i32") for _ in range(4))
    f.emit("mov", (a,), (1,))
    f.emit("mov", (b,), (2,))
    f.emit("i32_add", (c,), (a, b))
    f.emit("i32_add", (d,), (c, 3))
    f.emit("ret", (), (d,))
    result = alloc(f)
    assert result.num_slots == 0
    assert {result.location(v) for v in (a, b, c, d)} == {RAX, RCX}
    assert result.location(c) in (result.location(a), result.location(b))  # a result reuses a dying operand


def test_classes_get_their_own_registers() -> None:
    f = Function("f")
    n, x, y = f.new_vreg("i64"), f.new_vreg("f64"), f.new_vreg("f32")
    f.params = (n, x)
    f.emit("f32_demote_f64", (y,), (x,))
    f.emit("ret", (), (n, y))
    result = alloc(f)
    assert result.location(n) == RAX
    assert result.location(x) == xmm(0) and result.location(y) == xmm(0)


def test_unmentioned_vregs_have_no_location_and_text_lists_every_vreg() -> None:
    f = Function("f")
    a, unused = f.new_vreg("i32"), f.new_vreg("i64")
    f.emit("mov", (a,), (7,))
    f.emit("ret", (), (a,))
    result = alloc(f)
    assert result.location(unused) is None
    assert str(result) == "%0 -> rax\n%1 -> -"


def test_params_start_at_entry_and_are_distinct() -> None:
    f = Function("f")
    f.params = tuple(f.new_vreg("i32") for _ in range(3))  # the last one is never used
    s = f.new_vreg("i32")
    f.emit("i32_add", (s,), (f.params[0], f.params[1]))
    f.emit("ret", (), (s,))
    result = alloc(f)
    assert len({result.location(p) for p in f.params}) == 3


# --- pressure, spill choice, loops ------------------------------------------------------------------


def test_pressure_spills_the_value_used_outside_the_loop() -> None:
    """x is used once after the loop, y inside it on every trip: with three registers and four
    values live in the loop, x goes to the stack."""
    f = Function("f")
    x, y = f.new_vreg("i32"), f.new_vreg("i32")
    f.emit("mov", (x,), (1,))
    f.emit("mov", (y,), (2,))

    def body(i: VReg) -> None:
        t = f.new_vreg("i32")
        f.emit("i32_add", (t,), (y, i))
        f.emit("store", (), (t, y), offset=0)

    counted_loop(f, body)
    r = f.new_vreg("i32")
    f.emit("i32_add", (r,), (x, 1))
    f.emit("ret", (), (r,))
    result = alloc(f, gprs=(RAX, RCX, RDX))
    assert isinstance(result.location(x), StackSlot)
    assert [v for v in f.vregs if isinstance(result.location(v), StackSlot)] == [x]
    assert result.num_slots == 1


def test_heavier_short_interval_evicts_a_lighter_long_one() -> None:
    """One register: x is live across the whole loop (and allocated first, being longest), but
    the loop's own values are heavier, so they evict it."""
    f = Function("f")
    x = f.new_vreg("i64")
    f.emit("mov", (x,), (1,))
    head = f.new_label()
    f.place(head)
    t = f.new_vreg("i64")
    f.emit("load", (t,), (0,), offset=8)
    f.emit("store", (), (t, 0), offset=16)
    f.emit("br_if", (), (t,), targets=(head,))
    f.emit("ret", (), (x,))
    result = alloc(f, gprs=(RAX,))
    assert result.location(t) == RAX
    assert result.location(x) == StackSlot(0)


def test_loop_carried_value_is_live_across_the_whole_loop() -> None:
    """v is last read at the top of the loop, but the back edge brings control back there, so a
    temporary made later in the body must not take v's register."""
    f = Function("f")
    v = f.new_vreg("i32")
    f.emit("mov", (v,), (5,))
    temps: list[VReg] = []

    def body(i: VReg) -> None:
        a, b = f.new_vreg("i32"), f.new_vreg("i32")
        f.emit("i32_add", (a,), (v, i))
        f.emit("store", (), (a, 0), offset=0)
        f.emit("mov", (b,), (7,))
        f.emit("store", (), (b, 0), offset=4)
        temps.extend((a, b))

    counted_loop(f, body)
    f.emit("ret", (), ())
    result = alloc(f, gprs=(RAX, RCX, RDX))
    assert result.num_slots == 0
    assert result.location(v) not in {result.location(t) for t in temps}


def test_value_defined_in_a_loop_and_used_after_it() -> None:
    f = Function("f")
    last = f.new_vreg("i32")

    def body(i: VReg) -> None:
        f.emit("i32_mul", (last,), (i, i))

    counted_loop(f, body)
    r = f.new_vreg("i32")
    f.emit("i32_add", (r,), (last, 1))
    f.emit("ret", (), (r,))
    alloc(f, gprs=(RAX, RCX))


# --- fixed registers, clobbers, calls ---------------------------------------------------------------


def division(f: Function, a: VReg, b: VReg, rem: bool = False) -> VReg:
    """What codegen.legalize makes of ``i32.div_s``/``i32.rem_s``."""
    fixed_a = f.new_vreg("i32", RAX)
    f.emit("mov", (fixed_a,), (a,))
    result = f.new_vreg("i32", RDX if rem else RAX)
    f.emit("i32_rem_s" if rem else "i32_div_s", (result,), (fixed_a, b),
           clobbers=frozenset({RAX if rem else RDX}))
    out = f.new_vreg("i32")
    f.emit("mov", (out,), (result,))
    return out


def test_division_keeps_live_values_out_of_rax_and_rdx() -> None:
    f = Function("f")
    a, b = f.new_vreg("i32"), f.new_vreg("i32")
    f.params = (a, b)
    q = division(f, a, b)
    r = f.new_vreg("i32")
    f.emit("i32_add", (r,), (q, a))  # a is live across the division
    f.emit("ret", (), (r,))
    result = alloc(f)
    assert result.location(a) not in (RAX, RDX)
    assert result.location(q) == RAX  # hinted by the copy out of the fixed result: the mov vanishes
    assert result.location(b) != RAX  # read together with the fixed dividend


def test_operand_dying_at_a_clobber_may_sit_in_the_clobbered_register() -> None:
    f = Function("f")
    a, b = f.new_vreg("i32"), f.new_vreg("i32")
    f.params = (a, b)
    q = division(f, a, b, rem=True)
    f.emit("ret", (), (q,))
    result = alloc(f, gprs=(RAX, RDX))  # nothing else to hold b
    assert result.num_slots == 0
    assert result.location(q) == RDX


def test_values_live_across_a_call_land_in_callee_saved_registers_or_spill() -> None:
    f = Function("f")
    live = [f.new_vreg("i64") for _ in range(5)]
    fp = f.new_vreg("f64")
    for k, v in enumerate(live):
        f.emit("mov", (v,), (k,))
    f.emit("mov", (fp,), (0x3FF0000000000000,))
    ret = f.new_vreg("i64", RAX)
    f.emit("call", (ret,), (live[0],), clobbers=CALL_CLOBBERS, func=3)
    got = f.new_vreg("i64")
    f.emit("mov", (got,), (ret,))
    total = f.new_vreg("i64")
    f.emit("i64_add", (total,), (got, live[0]))
    for v in live[1:]:
        f.emit("i64_add", (total,), (total, v))
    f.emit("store", (), (fp, 0), offset=0)
    f.emit("ret", (), (total,))
    result = alloc(f)
    places = [result.location(v) for v in live]
    assert all(p in CALLEE_SAVED or isinstance(p, StackSlot) for p in places)
    assert sorted(str(p) for p in places if isinstance(p, PReg)) == ["r12", "r13", "rbx"]
    assert isinstance(result.location(fp), StackSlot)  # every xmm is caller-saved
    assert result.location(got) == RAX
    assert result.used_callee_saved(CALLEE_SAVED) == [RBX, R12, R13]
    assert result.used_callee_saved([R13]) == [R13]


def test_call_arguments_and_results_may_use_clobbered_registers() -> None:
    f = Function("f")
    arg, extra = f.new_vreg("i32"), f.new_vreg("i32")
    f.emit("mov", (arg,), (1,))
    ret, second = f.new_vreg("i32", RAX), f.new_vreg("i32")
    f.emit("call", (ret, second), (arg,), clobbers=CALL_CLOBBERS, func=0)
    f.emit("i32_add", (extra,), (ret, second))
    f.emit("ret", (), (extra,))
    result = alloc(f)
    assert result.location(arg) == RAX  # dies at the call
    assert result.location(second) == RCX  # made by the call
    assert result.used_callee_saved(CALLEE_SAVED) == []


def test_fixed_registers_outside_the_allocatable_set() -> None:
    f = Function("f")
    a = f.new_vreg("i64")
    f.emit("mov", (a,), (3,))
    count = f.new_vreg("i64", RCX)
    f.emit("mov", (count,), (a,))
    s = f.new_vreg("i64")
    f.emit("i64_shl", (s,), (a, count))
    f.emit("ret", (), (s,))
    result = alloc(f, gprs=(RAX, RDX))
    assert result.location(count) == RCX


def test_overlapping_fixed_registers_are_a_lowering_bug() -> None:
    f = Function("f")
    a, b = f.new_vreg("i32", RAX), f.new_vreg("i32", RAX)
    f.emit("mov", (a,), (1,))
    f.emit("mov", (b,), (2,))
    f.emit("i32_add", (a,), (a, b))
    f.emit("ret", (), (a,))
    with pytest.raises(AllocationError, match=r"%1<rax> is live .* where %0<rax> also is"):
        alloc(f)


def test_fixed_register_live_across_its_clobber_is_a_lowering_bug() -> None:
    f = Function("f")
    a = f.new_vreg("i32", RDX)
    f.emit("mov", (a,), (1,))
    f.emit("call", (), (), clobbers=CALL_CLOBBERS, func=0)
    f.emit("ret", (), (a,))
    with pytest.raises(AllocationError, match=r"%0<rdx> is live .* the clobber by instruction 1 `call"):
        alloc(f)


def test_fixed_register_of_the_wrong_class() -> None:
    f = Function("f")
    a = f.new_vreg("f64", RAX)
    f.emit("mov", (a,), (0,))
    f.emit("ret", (), (a,))
    with pytest.raises(AllocationError, match="wrong class"):
        alloc(f)


# --- hints --------------------------------------------------------------------------------------


def test_hint_makes_a_copy_vanish() -> None:
    f = Function("f")
    a, b, c = (f.new_vreg("i32") for _ in range(3))
    f.emit("mov", (a,), (1,))
    f.emit("i32_add", (c,), (a, 1))  # c takes the first free register, rcx
    f.emit("mov", (b,), (a,))  # a dies here: b can have its register
    f.emit("i32_add", (b,), (b, c))
    f.emit("ret", (), (b,))
    result = alloc(f)
    assert result.location(b) == result.location(a)


def test_hint_towards_a_fixed_register() -> None:
    """The shift count is copied into a vreg fixed to rcx; the value copied gets rcx itself."""
    f = Function("f")
    x, n = f.new_vreg("i64"), f.new_vreg("i64")
    f.emit("load", (x,), (0,), offset=0)
    f.emit("load", (n,), (0,), offset=8)
    count = f.new_vreg("i64", RCX)
    f.emit("mov", (count,), (n,))
    s = f.new_vreg("i64")
    f.emit("i64_shl", (s,), (x, count))
    f.emit("ret", (), (s,))
    result = alloc(f)
    assert result.location(n) == RCX


def test_merge_copy_vanishes_when_possible() -> None:
    """if/else writing a merge vreg on both arms (the lowering's pattern): the arm values are
    hinted to the merge register. The first arm's copy vanishes; the second's cannot in v1, as
    intervals have no holes: merge's covers the else arm, where b lives."""
    f = Function("f")
    (p,) = f.params = (f.new_vreg("i32"),)
    merge, a, b = (f.new_vreg("i32") for _ in range(3))
    other, done = f.new_label(), f.new_label()
    f.emit("br_if", (), (p,), targets=(other,))
    f.emit("i32_add", (a,), (p, 1))
    f.emit("mov", (merge,), (a,))
    f.emit("jmp", targets=(done,))
    f.place(other)
    f.emit("i32_sub", (b,), (p, 1))
    f.emit("mov", (merge,), (b,))
    f.place(done)
    f.emit("ret", (), (merge,))
    result = alloc(f)
    assert result.location(a) == result.location(merge)


# --- stack slots ------------------------------------------------------------------------------


def pair_then_sum(f: Function, type_: str) -> None:
    x, y, s = f.new_vreg(type_), f.new_vreg(type_), f.new_vreg(type_)
    f.emit("load", (x,), (0,), offset=0)
    f.emit("load", (y,), (0,), offset=8)
    f.emit("add", (s,), (x, y))
    f.emit("store", (), (s, 0), offset=0)


def test_spills_that_do_not_overlap_share_a_slot() -> None:
    f = Function("f")
    pair_then_sum(f, "i64")
    pair_then_sum(f, "i64")
    f.emit("ret", (), ())
    result = alloc(f, gprs=(RAX,))
    assert len(result.spilled) == 2
    assert result.num_slots == 1


def test_spills_that_overlap_get_their_own_slots() -> None:
    f = Function("f")
    vs = [f.new_vreg("i64") for _ in range(4)]
    for k, v in enumerate(vs):
        f.emit("load", (v,), (0,), offset=8 * k)
    f.emit("store4", (), tuple(vs))
    f.emit("ret", (), ())
    result = alloc(f, gprs=(RAX, RCX))
    slots = [result.location(v) for v in vs if isinstance(result.location(v), StackSlot)]
    assert len(slots) == 2 and len(set(slots)) == 2
    assert result.num_slots == 2


def test_slots_are_not_shared_between_classes() -> None:
    f = Function("f")
    pair_then_sum(f, "i64")
    pair_then_sum(f, "f64")
    f.emit("ret", (), ())
    result = alloc(f, gprs=(RAX,), xmms=(xmm(0),))
    assert len(result.spilled) == 2
    assert result.num_slots == 2


# --- the checker ------------------------------------------------------------------------------


def with_location(result: Allocation, func: Function, vreg: VReg, where: PReg | StackSlot) -> Allocation:
    locations = [result.location(v) for v in func.vregs]
    locations[vreg.index] = where
    return Allocation(func.vregs, locations, max(result.num_slots, 1))


def test_checker_catches_two_live_vregs_in_one_register() -> None:
    f = Function("f")
    a, b, c = (f.new_vreg("i32") for _ in range(3))
    f.emit("mov", (a,), (1,))
    f.emit("mov", (b,), (2,))
    f.emit("i32_add", (c,), (a, b))
    f.emit("ret", (), (c,))
    good = alloc(f)
    bad = with_location(good, f, b, good.location(a))  # type: ignore[arg-type]
    with pytest.raises(AllocationError, match=r"instruction 2 .* reads %0 from rax, but rax holds %1"):
        check(f, bad)


def test_checker_interference_pass_catches_what_no_use_reads() -> None:
    """Two results of one instruction in one register, neither used; and unreachable code. The
    replay sees no wrong read in either, the interference pass does."""
    f = Function("f")
    x, y = f.new_vreg("i32"), f.new_vreg("f64")
    f.emit("pair", (x, y), (0,))
    f.emit("ret", (), ())
    with pytest.raises(AllocationError, match=r"instruction 0 .*: writes %1 to slot0, where %0 is "
                                              r"written there too"):
        check(f, Allocation(f.vregs, [StackSlot(0), StackSlot(0)], 1))

    g = Function("g")
    g.emit("ret", (), ())
    g.place(g.new_label())
    a, b, c = (g.new_vreg("i32") for _ in range(3))
    g.emit("mov", (a,), (1,))
    g.emit("mov", (b,), (2,))
    g.emit("i32_add", (c,), (a, b))
    g.emit("ret", (), (c,))
    good = alloc(g)
    with pytest.raises(AllocationError, match="instruction 3 `%1 = mov 0x2`: writes %1 to rax, where %0 is "
                                              "live across it"):
        check(g, with_location(good, g, b, RAX))


def test_checker_catches_a_value_live_across_a_clobber() -> None:
    f = Function("f")
    a, b = f.new_vreg("i64"), f.new_vreg("i64")
    f.emit("mov", (a,), (1,))
    f.emit("call", (), (), clobbers=CALL_CLOBBERS, func=0)
    f.emit("i64_add", (b,), (a, a))
    f.emit("ret", (), (b,))
    good = alloc(f)
    assert good.location(a) == RBX
    with pytest.raises(AllocationError, match=r"reads %0 from rsi, but rsi holds what instruction 1 "
                                              r"`call func=0` left there \(it clobbers it\)"):
        check(f, with_location(good, f, a, RSI))


def test_checker_catches_a_live_value_in_a_clobbered_register_without_a_later_use() -> None:
    f = Function("f")
    a = f.new_vreg("i64")
    head = f.new_label()
    f.emit("mov", (a,), (1,))
    f.place(head)
    f.emit("call", (), (), clobbers=CALL_CLOBBERS, func=0)
    f.emit("br_if", (), (a,), targets=(head,))
    f.emit("ret", (), ())
    good = alloc(f)
    bad = with_location(good, f, a, RSI)
    with pytest.raises(AllocationError, match="rsi holds"):
        check(f, bad)


def test_checker_catches_a_wrong_value_after_a_branch_merge() -> None:
    f = Function("f")
    a, cond, b = f.new_vreg("i32"), f.new_vreg("i32"), f.new_vreg("i32")
    join = f.new_label()
    f.emit("mov", (a,), (1,))
    f.emit("load", (cond,), (0,), offset=0)
    f.emit("br_if", (), (cond,), targets=(join,))
    f.emit("mov", (b,), (2,))  # only on the fall-through path
    f.emit("store", (), (b, 0), offset=0)
    f.place(join)
    f.emit("ret", (), (a,))
    good = alloc(f)
    bad = with_location(good, f, b, good.location(a))  # type: ignore[arg-type]
    with pytest.raises(AllocationError, match=r"reads %0 from rax, but rax holds no single value "
                                              r"\(paths merging at instruction 5 `L0:` disagree\)"):
        check(f, bad)


def test_checker_catches_wrong_fixed_register_class_and_missing_location() -> None:
    f = Function("f")
    a, x = f.new_vreg("i32", RCX), f.new_vreg("f32")
    f.emit("mov", (a,), (1,))
    f.emit("mov", (x,), (0,))
    f.emit("ret", (), (a, x))
    good = alloc(f)
    with pytest.raises(AllocationError, match="fixed to rcx but was put in rax"):
        check(f, with_location(good, f, a, RAX))
    with pytest.raises(AllocationError, match="a register of the wrong class"):
        check(f, with_location(good, f, x, RAX))
    with pytest.raises(AllocationError, match="has no location"):
        check(f, Allocation(f.vregs, [RCX, None], 0))
    with pytest.raises(AllocationError, match="beyond the 0 slots"):
        check(f, Allocation(f.vregs, [RCX, StackSlot(0)], 0))


# --- golden allocation ------------------------------------------------------------------------


def sum_loop() -> Function:
    """The lowering's sum loop (tests/golden/lower/sum_loop.ir) plus a division and a call."""
    f = Function("sum")
    (n,) = f.params = (f.new_vreg("i32"),)
    i, s = f.new_vreg("i32"), f.new_vreg("i64")
    f.emit("mov", (i,), (0,))
    f.emit("mov", (s,), (0,))
    top, done = f.new_label(), f.new_label()
    f.place(top)
    f.emit("cmp_br", (), (i, n), targets=(done,), cmp="i32_ge_u", negate=False)
    x = f.new_vreg("i64")
    f.emit("load", (x,), (i,), kind="i64_load", offset=8, width=8)
    f.emit("i64_add", (s,), (s, x))
    f.emit("i32_add", (i,), (i, 8))
    f.emit("jmp", targets=(top,))
    f.place(done)
    q = division(f, n, i)
    ret = f.new_vreg("i64", RAX)
    f.emit("call", (ret,), (q, s), clobbers=CALL_CLOBBERS, func=1)
    out = f.new_vreg("i64")
    f.emit("mov", (out,), (ret,))
    f.emit("i64_add", (out,), (out, s))
    f.emit("ret", (), (out,))
    return f


def tiny_pressure() -> Function:
    f = Function("pressure")
    vs = [f.new_vreg("i64") for _ in range(4)]
    for k, v in enumerate(vs):
        f.emit("load", (v,), (0,), offset=8 * k)
    head = f.new_label()
    f.place(head)
    f.emit("i64_add", (vs[0],), (vs[0], vs[1]))
    f.emit("cmp_br", (), (vs[0], 100), targets=(head,), cmp="i64_lt_u")
    f.emit("ret", (), (vs[0], vs[2], vs[3]))
    return f


GOLDEN_CASES = {"sum_loop": (sum_loop, GPRS), "pressure": (tiny_pressure, (RAX, RCX))}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_allocation(name: str) -> None:
    build, gprs = GOLDEN_CASES[name]
    func = build()
    result = alloc(func, gprs=gprs)
    text = f"{func}\n\n{result}\nslots: {result.num_slots}\n"
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("WASMJIT_BLESS"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


# --- random programs --------------------------------------------------------------------------


class RandomProgram:
    """Random well-formed IR: arithmetic on a pool of values (some redefined, non-SSA), copies,
    dead results, two-result instructions, divisions and calls as codegen.legalize emits them,
    forward branches, loops with back edges, and a final ``ret``."""

    TYPES = ("i32", "i64", "f64")

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.f = Function(f"random{seed}")
        nparams = self.rng.randint(0, 4)
        self.f.params = tuple(self.f.new_vreg(self.rng.choice(self.TYPES)) for _ in range(nparams))
        self.pool: list[VReg] = list(self.f.params)
        self.pending: list[Label] = []  # forward-branch targets not placed yet
        self.heads: list[Label] = []  # loop heads placed, waiting for their back edge

    def value(self, type_: str | None = None) -> VReg | int:
        candidates = [v for v in self.pool if type_ is None or v.type == type_]
        if not candidates or self.rng.random() < 0.1:
            return self.rng.randint(0, 100)
        return self.rng.choice(candidates[-12:] if self.rng.random() < 0.7 else candidates)

    def fresh(self, type_: str) -> VReg:
        v = self.f.new_vreg(type_)
        self.pool.append(v)
        return v

    def build(self) -> Function:
        f, rng = self.f, self.rng
        steps = {self.arith: 10, self.redefine: 4, self.copy: 3, self.dead: 1, self.two_results: 1,
                 self.divide: 2, self.call: 2, self.branch: 2, self.place: 2, self.loop_head: 1,
                 self.back_edge: 1}
        actions, weights = list(steps), list(steps.values())
        for _ in range(rng.randint(1, 120)):
            rng.choices(actions, weights)[0]()
        while self.heads:
            self.back_edge()
        while self.pending:
            self.place()
        f.emit("ret", (), tuple(self.value() for _ in range(rng.randint(0, 2))))
        return f

    def arith(self) -> None:
        t = self.rng.choice(self.TYPES)
        self.f.emit(f"{t}_add", (self.fresh(t),), (self.value(t), self.value(t)))

    def redefine(self) -> None:
        if self.pool:
            v = self.rng.choice(self.pool)
            self.f.emit(f"{v.type}_sub", (v,), (v, self.value(v.type)))

    def copy(self) -> None:
        src = self.value()
        if isinstance(src, VReg):
            self.f.emit("mov", (self.fresh(src.type),), (src,))

    def dead(self) -> None:
        self.f.emit("i64_load", (self.f.new_vreg("i64"),), (self.value("i32"),))

    def two_results(self) -> None:
        self.f.emit("pair", (self.fresh("i32"), self.fresh("f64")), (self.value(),))

    def divide(self) -> None:
        a, b = self.value("i32"), self.value("i32")
        if isinstance(a, VReg) and isinstance(b, VReg):
            self.pool.append(division(self.f, a, b, rem=self.rng.random() < 0.5))

    def call(self) -> None:
        args = tuple(self.value() for _ in range(self.rng.randint(0, 3)))
        t = self.rng.choice(self.TYPES)
        fixed = self.f.new_vreg(t, xmm(0) if t == "f64" else RAX)
        self.f.emit("call", (fixed,), args, clobbers=CALL_CLOBBERS, func=0)
        self.f.emit("mov", (self.fresh(t),), (fixed,))

    def branch(self) -> None:
        target = self.f.new_label()
        self.pending.append(target)
        if self.rng.random() < 0.2:
            self.f.emit("jmp", targets=(target,))
            self.place()  # code right after a jmp is only reachable through a label
        else:
            self.f.emit("br_if", (), (self.value("i32"),), targets=(target,))

    def place(self) -> None:
        if self.pending:
            self.f.place(self.pending.pop(self.rng.randrange(len(self.pending))))

    def loop_head(self) -> None:
        head = self.f.new_label()
        self.f.place(head)
        self.heads.append(head)

    def back_edge(self) -> None:
        if self.heads:
            self.f.emit("br_if", (), (self.value("i32"),), targets=(self.heads.pop(),))


REGISTER_SETS = {
    "x64": (GPRS, XMMS),
    "tight": ((RAX, RCX, RDX, RBX), (xmm(0), xmm(1))),
    "starved": ((RBX,), (xmm(3),)),  # fixed vregs still get rax/rdx/xmm0, which are not allocatable
}


@pytest.mark.parametrize("registers", sorted(REGISTER_SETS))
@pytest.mark.parametrize("chunk", range(8))
def test_random_programs_allocate_and_check(registers: str, chunk: int) -> None:
    gprs, xmms = REGISTER_SETS[registers]
    for seed in range(chunk * 50, chunk * 50 + 50):
        func = RandomProgram(seed).build()
        result = allocate(func, gprs, xmms, verify=True)
        for v in func.vregs:
            where = result.location(v)
            assert where is None or isinstance(where, StackSlot) or where in gprs + xmms or where == v.fixed


def legalized(func: Function) -> Function:
    """A small stand-in for codegen.legalize: calls clobber the caller-saved registers and return
    in rax/xmm0, divisions take rax and clobber rdx (or the reverse for remainders)."""
    out = []
    for inst in func.insts:
        if inst.op in ("call", "call_indirect", "helper"):
            inst.clobbers = CALL_CLOBBERS
            if inst.defs:
                first = inst.defs[0]
                fixed = func.new_vreg(first.type, xmm(0) if first.cls is RegClass.XMM else RAX)
                inst.defs = (fixed, *inst.defs[1:])
                out += [inst, Inst("mov", (first,), (fixed,))]
                continue
        elif "_div_" in inst.op or "_rem_" in inst.op:
            (d,), (a, b) = inst.defs, inst.uses
            fixed_a = func.new_vreg(d.type, RAX)
            result = func.new_vreg(d.type, RDX if "_rem_" in inst.op else RAX)
            inst.defs, inst.uses = (result,), (fixed_a, b)
            inst.clobbers = frozenset({RAX if "_rem_" in inst.op else RDX})
            out += [Inst("mov", (fixed_a,), (a,)), inst, Inst("mov", (d,), (result,))]
            continue
        out.append(inst)
    func.insts = out
    return func


@pytest.mark.skipif(not SIGHTGLASS.is_dir(), reason="no ../shared/bench/sightglass")
@pytest.mark.parametrize("program", ["keccak", "matrix", "nestedloop"])
def test_real_functions_allocate_and_check(program: str) -> None:
    module = wasmjit.Module.from_file(wasmjit.Engine(), SIGHTGLASS / f"shootout-{program}.wasm")
    funcs = [legalized(lower(module._vmod.module, info)) for info in module._vmod.func_infos]
    assert sum(len(f.insts) for f in funcs) > 3000
    for func in funcs:
        allocate(func, GPRS, XMMS, verify=True)
        allocate(func, *REGISTER_SETS["tight"], verify=True)


def test_random_programs_exercise_spills_evictions_and_loops() -> None:
    """The generator is worth its keep: it makes loops, and tight register sets spill."""
    funcs = [RandomProgram(seed).build() for seed in range(100)]
    assert sum(any(i.targets and i.op == "br_if" for i in f.insts) for f in funcs) > 50
    spilled = sum(allocate(f, *REGISTER_SETS["tight"]).num_slots > 0 for f in funcs)
    assert spilled > 30
