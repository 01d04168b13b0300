"""Register allocation: every virtual register of an IR :class:`~.ir.Function` gets a physical
register or a stack slot. Imports: jit.ir and the standard library only.

The design is the one recommended in ``jit-research.md`` section 1, a greedy allocator in the
manner of LLVM's ``RAGreedy`` without live-range splitting:

1. **Positions.** Instruction ``i`` reads its operands at ``4i+1``, destroys its clobbered registers
   at ``4i+2`` and writes its results at ``4i+3``. A result may therefore take the register of an
   operand that dies at the same instruction, and a value live *across* a clobbering instruction
   cannot sit in a clobbered register, while an operand dying there or a result made there can.
   Parameters (and anything else live when the function starts) are defined at ``-1``.
2. **Liveness.** Backward dataflow over basic blocks (the edges of ``Function.successors``) with
   Python ints as bitsets. Each virtual register gets one interval without holes: ``[first, last]``
   position where it is live. A value live at a loop header is live out of the loop's back edge,
   so its interval covers the whole loop. Vregs never live into a block (most temporaries) get
   their interval from one scan and stay out of the bitsets.
3. **Spill weight.** ``sum(10**loop_depth over uses and defs) / (length in instructions + 25)``
   (LLVM's ``normalizeSpillWeight``). Loop depth comes from backward branches.
4. **Pre-colouring.** Fixed virtual registers occupy their register first, and so does every
   clobber (at ``4i+2``). A fixed interval overlapping another or a clobber of its register is a
   lowering bug (:class:`AllocationError`).
5. **Greedy loop.** Intervals are taken longest first. Each tries its hinted registers (the
   other side of a ``mov``, fixed or already placed), then the preference order. A free register
   is taken; otherwise, if some register's conflicts are all strictly lighter (and evictable), the
   cheapest such set is evicted and requeued; otherwise the interval is spilled. An interval
   evicted ``_MAX_EVICTIONS`` times can no longer be evicted: with "strictly lighter" this
   guarantees termination (the job LLVM's cascade numbers do) and bounds the work.
6. **Stack slots.** Spilled intervals of one class share 8-byte slots when they do not overlap.

:func:`check` is an independent verifier (regalloc2's checker in spirit): it re-derives liveness
per instruction and replays the data flow, so a bug in the allocator's own liveness cannot hide.
``allocate(..., verify=True)`` runs it.

Left for later: live-range splitting (around calls, at loop boundaries), intervals with holes
(a merge register written on both arms of an ``if`` keeps one copy), rematerialising constants.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NoReturn

from .ir import TERMINATORS, Function, Inst, PReg, RegClass, VReg

__all__ = ["Allocation", "AllocationError", "StackSlot", "allocate", "check"]

_NOWHERE = 1 << 62  # start of an interval not (yet) seen
_MAX_EVICTIONS = 4  # after this many evictions an interval keeps whatever it gets
_MAX_DEPTH = 12  # loop depths beyond this weigh the same (keeps 10**depth a sane float)
_XMM_TYPES = ("f32", "f64")  # as VReg.cls


class AllocationError(Exception):
    """The allocator's input broke a rule (fixed registers overlapping, a fixed vreg live across
    a clobber of its register) or :func:`check` found a wrong allocation. Always an internal error:
    lowering or the allocator has a bug."""


@dataclass(frozen=True, slots=True)
class StackSlot:
    """An 8-byte spill slot in the frame; the code generator decides where slot ``index`` lives."""

    index: int

    def __str__(self) -> str:
        return f"slot{self.index}"


Location = PReg | StackSlot


class Allocation:
    """Where each virtual register of one function lives: ``locations[i]`` for ``vregs[i]``
    (None for vregs the function never mentions); slots are numbered from 0."""

    def __init__(self, vregs: Sequence[VReg], locations: list[Location | None], num_slots: int) -> None:
        self._vregs = list(vregs)
        self._locations = locations
        self.num_slots = num_slots  # stack slots used, numbered 0 .. num_slots-1

    def location(self, vreg: VReg) -> Location | None:
        """``vreg``'s register or stack slot; None for a vreg the function never mentions."""
        return self._locations[vreg.index]

    def used_callee_saved(self, callee_saved: Iterable[PReg]) -> list[PReg]:
        """The registers of ``callee_saved`` that some vreg was given (for the prologue's saves),
        in the order ``callee_saved`` lists them."""
        used = {loc.name for loc in self._locations if isinstance(loc, PReg)}  # names hash fast
        return [reg for reg in callee_saved if reg.name in used]

    @property
    def spilled(self) -> list[VReg]:
        """The vregs that live in stack slots."""
        return [v for v, loc in zip(self._vregs, self._locations, strict=True) if isinstance(loc, StackSlot)]

    def __str__(self) -> str:
        return "\n".join(f"{v} -> {'-' if loc is None else loc}"
                         for v, loc in zip(self._vregs, self._locations, strict=True))

    def __repr__(self) -> str:
        return f"<Allocation of {len(self._vregs)} vregs, {self.num_slots} slots>"


def allocate(func: Function, gprs: Sequence[PReg], xmms: Sequence[PReg], *,
             verify: bool = False) -> Allocation:
    """Give every vreg of ``func`` a location. ``gprs``/``xmms`` are the allocatable registers of
    each class in preference order; fixed vregs may name registers in or outside those lists.
    With ``verify`` the result goes through :func:`check` before it is returned."""
    live = _Intervals(func)
    allocation = _Greedy(live, gprs, xmms).run()
    if verify:
        check(func, allocation)
    return allocation


# --- Liveness and intervals -----------------------------------------------------------------------


def _bits(mask: int) -> Iterable[int]:
    """The indices of the set bits of ``mask``, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def _mask(indices: list[int]) -> int:
    """The bitset of ``indices``; a bytearray beats shifting once there are more than a few."""
    if len(indices) < 16:
        mask = 0
        for k in indices:
            mask |= 1 << k
        return mask
    buf = bytearray((max(indices) >> 3) + 1)
    for k in indices:
        buf[k >> 3] |= 1 << (k & 7)
    return int.from_bytes(buf, "little")


class _Intervals:
    """What the greedy loop needs, per vreg (by index): its interval ``[start, end]`` in positions,
    its spill weight, its ``mov`` partners (``hints``); and the clobbers as ``(registers, position)``.

    One forward scan gives each vreg's first def and last mention, which is its whole interval
    unless it is live into some block (used there before any def: *upward exposed*). Only those
    "global" vregs (wasm locals and merge registers, typically) take part in the block-level
    dataflow, renumbered densely so the bitsets stay narrow. The edges are those of
    :meth:`Function.successors`, taken at block ends only."""

    def __init__(self, func: Function) -> None:
        self.func = func
        nv = len(func.vregs)
        self.start = [_NOWHERE] * nv
        self.end = [-_NOWHERE] * nv
        self.weight = [0.0] * nv
        self.hints: dict[int, list[tuple[int, float]]] = {}  # vreg -> [(partner, loop weight)]
        self.clobbers: list[tuple[frozenset[PReg], int]] = []  # (registers, position)
        self._scan(self._loops())
        self._extend_by_liveness()
        # LLVM's normalizeSpillWeight; vregs never mentioned get nonsense, and are never looked at.
        self.weight = [w / (((e - s) >> 2) + 25)
                       for w, s, e in zip(self.weight, self.start, self.end, strict=True)]

    def _loops(self) -> dict[int, int]:
        """Finds the labels (``label_at``: label index -> instruction) and the loops: a branch to a
        label at or before it makes a loop from the label to the branch (the last such branch per
        label); nested loops add up. Returns the loop-depth changes by instruction; they all fall
        on block boundaries (a label, or just after a branch), so depth is constant in a block."""
        marks = [(i, inst) for i, inst in enumerate(self.func.insts) if inst.targets or inst.op == "label"]
        self.label_at = label_at = {}
        loop_end: dict[int, int] = {}
        for i, inst in marks:
            if inst.targets:
                for t in inst.targets:
                    head = label_at.get(t.index)
                    if head is not None:
                        loop_end[head] = i
            else:
                label_at[inst.attrs["label"].index] = i
        change: dict[int, int] = {}
        for head, tail in loop_end.items():
            change[head] = change.get(head, 0) + 1
            change[tail + 1] = change.get(tail + 1, 0) - 1
        return change

    def _scan(self, depth_change: dict[int, int]) -> None:
        """One pass over the instructions: first def and last mention per vreg, mentions weighted
        by loop depth, ``mov`` hints, clobbers, and per basic block its upward-exposed uses (gen)
        and its defs (kill) as lists of vreg indices."""
        func = self.func
        insts, label_at = func.insts, self.label_at
        start, end, weight, hints, clobbers = self.start, self.end, self.weight, self.hints, self.clobbers
        defined_in = [-1] * len(func.vregs)  # the block that last defined each vreg
        self.blocks = blocks = []  # (first, last) instruction
        self.exits = exits = []  # per block, the instructions control may go to next
        self.gen_lists = gen_lists = []
        self.kill_lists = kill_lists = []
        depth = depth_change.get(0, 0)
        f = 10.0 ** min(depth, _MAX_DEPTH)  # weight of one mention in the current block
        block, first, gen, kill = 0, 0, [], []
        pos = -3  # 4i+1 for instruction i
        for i, inst in enumerate(insts):
            pos += 4
            op = inst.op
            if op == "label" and i > first:
                blocks.append((first, i - 1))
                exits.append([i])
                gen_lists.append(gen)
                kill_lists.append(kill)
                block, first, gen, kill = block + 1, i, [], []
                if i in depth_change:
                    depth += depth_change[i]
                    f = 10.0 ** min(depth, _MAX_DEPTH)
            for u in inst.uses:
                if isinstance(u, VReg):
                    x = u.index
                    if defined_in[x] != block:
                        gen.append(x)
                    end[x] = pos
                    weight[x] += f
            if inst.defs:
                p = pos + 2
                for d in inst.defs:
                    x = d.index
                    defined_in[x] = block
                    kill.append(x)
                    if start[x] > p:
                        start[x] = p
                    end[x] = p
                    weight[x] += f
                if op == "mov" and len(inst.uses) == 1 and len(inst.defs) == 1:
                    src = inst.uses[0]
                    if isinstance(src, VReg):
                        dst = inst.defs[0].index
                        hints.setdefault(dst, []).append((src.index, f))
                        hints.setdefault(src.index, []).append((dst, f))
            if inst.clobbers:
                clobbers.append((inst.clobbers, pos + 1))
            if inst.targets or op in TERMINATORS:
                blocks.append((first, i))
                succ = [label_at[t.index] for t in inst.targets]
                if op not in TERMINATORS and i + 1 < len(insts):
                    succ.append(i + 1)
                exits.append(succ)
                gen_lists.append(gen)
                kill_lists.append(kill)
                block, first, gen, kill = block + 1, i + 1, [], []
                if i + 1 in depth_change:
                    depth += depth_change[i + 1]
                    f = 10.0 ** min(depth, _MAX_DEPTH)
        if first < len(insts):
            blocks.append((first, len(insts) - 1))
            exits.append([])
            gen_lists.append(gen)
            kill_lists.append(kill)
        for v in func.params:
            start[v.index] = -1
            end[v.index] = max(end[v.index], -1)
            weight[v.index] += 1.0  # the entry "defines" it

    def _extend_by_liveness(self) -> None:
        """Solve block liveness for the global vregs, then stretch their intervals: one live into
        a block before any def (in linear order) starts there, one live out of a block with no
        later mention ends there."""
        blocks = self.blocks
        nb = len(blocks)
        globals_ = sorted({x for gen in self.gen_lists for x in gen})
        if not globals_:
            return
        dense = {x: k for k, x in enumerate(globals_)}
        gens = [_mask([dense[x] for x in gen]) for gen in self.gen_lists]
        kills = [_mask([dense[x] for x in kill if x in dense]) for kill in self.kill_lists]
        block_at = {first: b for b, (first, _) in enumerate(blocks)}
        block_succ = [[block_at[i] for i in succ] for succ in self.exits]
        preds: list[list[int]] = [[] for _ in range(nb)]
        for b, succ in enumerate(block_succ):
            for s in succ:
                preds[s].append(b)
        not_kill = [~k for k in kills]
        live_in = [0] * nb
        live_out = [0] * nb
        # A worklist, seeded so the first sweep runs backwards through the code; afterwards only
        # the blocks a back edge reaches are revisited.
        work = list(range(nb))
        queued = [True] * nb
        while work:
            b = work.pop()
            queued[b] = False
            out = 0
            for s in block_succ[b]:
                out |= live_in[s]
            live_out[b] = out
            new_in = gens[b] | (out & not_kill[b])
            if new_in != live_in[b]:
                live_in[b] = new_in
                for p in preds[b]:
                    if not queued[p]:
                        queued[p] = True
                        work.append(p)
        start, end = self.start, self.end
        seen = 0
        for b in range(nb):
            fresh = live_in[b] & ~seen
            if fresh:
                first = 4 * blocks[b][0] if b else -1  # live at entry = defined at entry
                for k in _bits(fresh):
                    x = globals_[k]
                    if start[x] > first:
                        start[x] = first
            seen |= live_in[b] | kills[b]
        seen = 0
        for b in range(nb - 1, -1, -1):
            fresh = live_out[b] & ~seen
            if fresh:
                last = 4 * blocks[b][1] + 3
                for k in _bits(fresh):
                    x = globals_[k]
                    if end[x] < last:
                        end[x] = last
            seen |= live_out[b] | gens[b] | kills[b]


# --- The greedy loop --------------------------------------------------------------------------


class _Greedy:
    """Assigns registers to the intervals of one function, one register class at a time (the
    classes never interact).

    Registers are numbered. Register ``r``'s occupancy is kept per position, in two bytearrays
    indexed by ``position + 1`` (so the entry, position -1, is index 0): ``busy[r]`` has a 1
    wherever some interval covers the position, ``heads[r]`` a 1 where an interval starts, and
    ``owner_at[r]`` maps an interval's start index to its vreg. A start without an owner is a
    clobber. "Is ``[s, e]`` free in ``r``?" is then one C-level byte search, whatever the
    interval's length or the number of intervals already in ``r``. Only registers that can matter
    are tracked: those of a class with vregs to place, and those fixed vregs name; the others keep
    empty arrays (integer-only code never pays for the fifteen xmm registers)."""

    def __init__(self, live: _Intervals, gprs: Sequence[PReg], xmms: Sequence[PReg]) -> None:
        self.live = live
        self.size = 4 * len(live.func.insts) + 1  # indices of positions -1 .. 4n-1
        # Registers are numbered by name: hashing a PReg runs Python code (its enum field).
        self.regs = [*gprs, *xmms]
        self.reg_id = {reg.name: r for r, reg in enumerate(self.regs)}
        self.gprs = list(range(len(gprs)))
        self.xmms = list(range(len(gprs), len(self.regs)))
        self.busy = [bytearray() for _ in self.regs]  # empty: not tracked (see _track)
        self.heads = [bytearray() for _ in self.regs]
        self.owner_at: list[dict[int, int]] = [{} for _ in self.regs]
        nv = len(live.func.vregs)
        self.assigned = [-1] * nv  # register id, or -1
        self.evictions = [0] * nv  # _MAX_EVICTIONS for fixed vregs: never evicted
        self.requeued: list[tuple[int, int]] = []  # (-length, vreg) of evicted intervals
        self.spilled: list[int] = []

    def _id(self, reg: PReg) -> int:
        """The number of ``reg``, which fixed vregs and clobbers may name even if it is not
        allocatable."""
        r = self.reg_id.get(reg.name)
        if r is None:
            r = self.reg_id[reg.name] = len(self.regs)
            self.regs.append(reg)
            self.busy.append(bytearray())
            self.heads.append(bytearray())
            self.owner_at.append({})
        return r

    def _track(self, r: int) -> None:
        if not self.busy[r]:
            self.busy[r] = bytearray(self.size)
            self.heads[r] = bytearray(self.size)

    def run(self) -> Allocation:
        live = self.live
        vregs = live.func.vregs
        start, end = live.start, live.end
        keys = [s - e for s, e in zip(start, end, strict=True)]
        todo = sorted((x for x, v in enumerate(vregs) if start[x] != _NOWHERE and v.fixed is None),
                      key=keys.__getitem__)  # longest first; stable, so ties go by vreg index
        xmm_todo = [x for x in todo if vregs[x].type in _XMM_TYPES]
        gpr_todo = [x for x in todo if vregs[x].type not in _XMM_TYPES] if xmm_todo else todo
        for order, queue in ((self.gprs, gpr_todo), (self.xmms, xmm_todo)):
            if queue:
                for r in order:
                    self._track(r)
        self._precolour([(v, v.fixed) for x, v in enumerate(vregs)
                         if v.fixed is not None and start[x] != _NOWHERE])
        busy, heads, owner_at, assigned = self.busy, self.heads, self.owner_at, self.assigned
        hints = live.hints
        for order, queue in ((self.gprs, gpr_todo), (self.xmms, xmm_todo)):
            for x in queue:
                s, e = start[x] + 1, end[x] + 2  # the interval as indices [s, e)
                for r in self._hinted(x, order) if x in hints else order:
                    b = busy[r]
                    if b.find(1, s, e) < 0:  # free (this loop is the hot spot: _insert inlined)
                        b[s:e] = b"\x01" * (e - s)
                        heads[r][s] = 1
                        owner_at[r][s] = x
                        assigned[x] = r
                        break
                else:
                    self._evict_or_spill(x, order)
        regs = self.regs
        locations: list[Location | None] = [regs[r] if r >= 0 else None for r in assigned]
        num_slots = self._assign_slots(locations)
        return Allocation(vregs, locations, num_slots)

    # --- register occupancy (positions, not indices, from here on) ---

    def _is_free(self, r: int, x: int) -> bool:
        return self.busy[r].find(1, self.live.start[x] + 1, self.live.end[x] + 2) < 0

    def _overlapping(self, r: int, s: int, e: int) -> Iterator[int]:
        """What occupies register ``r`` somewhere in ``[s, e]``, in order: vreg indices, and
        ``-1 - i`` for the clobber by instruction ``i``."""
        heads, owner_at = self.heads[r], self.owner_at[r]
        k = s + 1
        if self.busy[r][k]:  # s itself is covered: by the interval starting last at or before it
            k = heads.rfind(1, 0, k + 1)
        else:
            k = heads.find(1, k, e + 2)
        while k >= 0:
            yield owner_at.get(k, -1 - ((k - 1) >> 2))
            k = heads.find(1, k + 1, e + 2)

    def _insert(self, r: int, x: int) -> None:
        s, e = self.live.start[x] + 1, self.live.end[x] + 2
        self.busy[r][s:e] = b"\x01" * (e - s)
        self.heads[r][s] = 1
        self.owner_at[r][s] = x
        self.assigned[x] = r

    def _remove(self, r: int, x: int) -> None:
        s, e = self.live.start[x] + 1, self.live.end[x] + 2
        self.busy[r][s:e] = bytes(e - s)
        self.heads[r][s] = 0
        del self.owner_at[r][s]
        self.assigned[x] = -1

    # --- pre-colouring, hints, eviction, spilling ---

    def _precolour(self, fixed: list[tuple[VReg, PReg]]) -> None:
        """Clobbers, then ``fixed`` vregs, occupy their (tracked) registers; overlaps among them
        are bugs."""
        live = self.live
        for v, reg in fixed:
            if reg.cls is not v.cls:
                raise AllocationError(f"{live.func.name}: {v} ({v.type}) is fixed to {reg}, a "
                                      f"register of the wrong class")
            self._track(self._id(reg))
        by_set: dict[int, tuple[frozenset[PReg], list[int]]] = {}  # calls share one clobber set
        for regs, pos in self.live.clobbers:
            known = by_set.get(id(regs))
            if known is None:
                known = by_set[id(regs)] = (regs, [])
            known[1].append(pos)
        for regs, positions in by_set.values():
            marks = bytearray(self.size)
            for p in positions:
                marks[p + 1] = 1
            for reg in regs:
                r = self.reg_id.get(reg.name, -1)
                if r < 0 or not self.busy[r]:
                    continue  # neither allocatable in a class with work nor named by a fixed vreg
                if self.heads[r].find(1) < 0:
                    self.heads[r][:] = self.busy[r][:] = marks
                else:  # a register clobbered by instructions with different clobber sets
                    merged = (int.from_bytes(self.heads[r], "little") | int.from_bytes(marks, "little"))
                    self.heads[r][:] = self.busy[r][:] = merged.to_bytes(self.size, "little")
        for v, reg in fixed:
            x, r = v.index, self._id(reg)
            s, e = live.start[x], live.end[x]
            for clash in self._overlapping(r, s, e):
                raise AllocationError(f"{live.func.name}: {v} is live at {self._span(s, e)} in "
                                      f"{reg}, where {self._describe(clash)} also is: the "
                                      f"lowering must not overlap fixed registers")
            self._insert(r, x)
            self.evictions[x] = _MAX_EVICTIONS

    def _span(self, s: int, e: int) -> str:
        return f"positions {s}..{e} (instructions {max(s, 0) >> 2}..{e >> 2})"

    def _describe(self, owner: int) -> str:
        if owner < 0:
            i = -1 - owner
            return f"the clobber by instruction {i} `{str(self.live.func.insts[i]).strip()}`"
        return f"{self.live.func.vregs[owner]}"

    def _hinted(self, x: int, order: list[int]) -> list[int]:
        """``order`` with the registers of ``x``'s already placed ``mov`` partners first (most
        valuable first: partners are weighted by the loop depth of the copy)."""
        votes: dict[int, float] = {}
        assigned = self.assigned
        for other, f in self.live.hints[x]:
            r = assigned[other]  # fixed partners were assigned their register up front
            if r >= 0:
                votes[r] = votes.get(r, 0.0) + f
        hinted = sorted((r for r in votes if r in order), key=lambda r: -votes[r])
        if not hinted:
            return order
        return hinted + [r for r in order if r not in votes]

    def _evict_or_spill(self, x: int, order: list[int]) -> None:
        """``x`` found no free register: evict for it or spill it, then place what it evicted
        (and what those evict, ...). Evicted intervals were placed before ``x``, so they are at
        least as long as it and anything still queued: handling them now keeps longest-first."""
        requeued = self.requeued
        if not self._evict_for(x, order):
            self.spilled.append(x)
        while requeued:
            _, y = heapq.heappop(requeued)
            for r in self._hinted(y, order) if y in self.live.hints else order:
                if self._is_free(r, y):
                    self._insert(r, y)
                    break
            else:
                if not self._evict_for(y, order):
                    self.spilled.append(y)

    def _evict_for(self, x: int, order: list[int]) -> bool:
        """Evict the cheapest set of strictly lighter, evictable intervals in one register of
        ``order`` and take it; False if no register has such a set."""
        live = self.live
        s, e, w = live.start[x], live.end[x], live.weight[x]
        weight, evictions = live.weight, self.evictions
        best = (w, 0.0)  # (heaviest, total) weight evicted; anything evicted must be lighter than w
        best_r = -1
        for r in self._hinted(x, order) if x in live.hints else order:
            # Give up on a register as soon as it cannot beat the best so far: a long interval
            # can overlap thousands of short ones.
            heaviest = total = 0.0
            for owner in self._overlapping(r, s, e):
                if owner < 0 or evictions[owner] >= _MAX_EVICTIONS:
                    break
                ow = weight[owner]
                if ow > heaviest:
                    heaviest = ow
                total += ow
                if (heaviest, total) >= best:
                    break
            else:
                best, best_r = (heaviest, total), r
        if best_r < 0:
            return False
        for owner in list(self._overlapping(best_r, s, e)):
            self._remove(best_r, owner)
            evictions[owner] += 1
            heapq.heappush(self.requeued, (live.start[owner] - live.end[owner], owner))
        self._insert(best_r, x)
        return True

    def _assign_slots(self, locations: list[Location | None]) -> int:
        """Give spilled vregs stack slots, reusing a slot of the same class once its previous
        occupant's interval has ended (interval-graph colouring by start order)."""
        live = self.live
        vregs = live.func.vregs
        active: list[tuple[int, int, RegClass]] = []  # (end, slot, class)
        free: dict[RegClass, list[int]] = {RegClass.GPR: [], RegClass.XMM: []}
        num_slots = 0
        for x in sorted(self.spilled, key=lambda x: (live.start[x], x)):
            s = live.start[x]
            while active and active[0][0] < s:
                _, slot, cls = heapq.heappop(active)
                heapq.heappush(free[cls], slot)
            cls = vregs[x].cls
            if free[cls]:
                slot = heapq.heappop(free[cls])
            else:
                slot, num_slots = num_slots, num_slots + 1
            locations[x] = StackSlot(slot)
            heapq.heappush(active, (live.end[x], slot, cls))
        return num_slots


# --- The checker --------------------------------------------------------------------------------


def check(func: Function, allocation: Allocation) -> None:
    """Verify ``allocation`` for ``func`` independently of how it was made; raise
    :class:`AllocationError` naming the first problem. Checks: every mentioned vreg has a location
    of its class (fixed ones their register); replaying the data flow, every use reads the value
    its reaching definition wrote; no two vregs live at the same point share a location; nothing
    live across a clobber sits in a clobbered register."""
    _Checker(func, allocation).run()


class _Checker:
    """Shares nothing with the allocator but the IR: liveness is per instruction and iterated to
    a fixed point, positions are not used at all. Locations are numbered by name (``rax``,
    ``slot3``) so the checks hash small ints, not PRegs."""

    def __init__(self, func: Function, allocation: Allocation) -> None:
        self.func = func
        self.allocation = allocation
        self.succ = func.successors()
        self.locations: list[Location] = []  # by location id
        self.ids: dict[str, int] = {}  # location name -> id
        self.key = [-1] * len(func.vregs)  # vreg index -> location id
        self.clobber_ids: dict[int, tuple[frozenset[PReg], list[int]]] = {}

    def run(self) -> None:
        self._check_locations()
        live_in, live_out = self._liveness()
        # The replay goes first: its message says what would go wrong (which value a use would
        # read instead). The interference pass then catches what no later use exposes: dead
        # results written over live values, unreachable code.
        self._check_dataflow(live_in)
        self._check_interference(live_in, live_out)

    # --- helpers ---

    def _inst(self, i: int) -> str:
        inst = self.func.insts[i]
        text = f"instruction {i} `{str(inst).strip()}`"
        if inst.wasm_offset >= 0:
            text += f" (wasm offset {inst.wasm_offset:#x})"
        return text

    def _fail(self, i: int | None, message: str) -> NoReturn:
        where = "function entry" if i is None else self._inst(i)
        raise AllocationError(f"{self.func.name}: {where}: {message}")

    def _id(self, loc: Location) -> int:
        name = str(loc)
        if name not in self.ids:
            self.ids[name] = len(self.locations)
            self.locations.append(loc)
        return self.ids[name]

    def _clobbered(self, inst: Inst) -> list[int]:
        known = self.clobber_ids.get(id(inst.clobbers))
        if known is None:
            ids = [self._id(r) for r in inst.clobbers]
            known = self.clobber_ids[id(inst.clobbers)] = (inst.clobbers, ids)  # keeps the set alive
        return known[1]

    def _where(self, x: int) -> Location:
        return self.locations[self.key[x]]

    # --- the checks ---

    def _check_locations(self) -> None:
        """Every mentioned vreg has a location, of its class, its fixed register if it has one."""
        func, allocation = self.func, self.allocation
        mentioned = {p.index: p for p in func.params}
        for inst in func.insts:
            for v in (*inst.defs, *inst.vreg_uses()):
                mentioned[v.index] = v
        for v in mentioned.values():
            loc = allocation.location(v)
            if loc is None:
                self._fail(None, f"{v} has no location")
            if isinstance(loc, PReg) and loc.cls is not v.cls:
                self._fail(None, f"{v} ({v.type}) is in {loc}, a register of the wrong class")
            if isinstance(loc, StackSlot) and not 0 <= loc.index < allocation.num_slots:
                self._fail(None, f"{v} is in {loc}, beyond the {allocation.num_slots} slots")
            if v.fixed is not None and loc != v.fixed:
                self._fail(None, f"{v} is fixed to {v.fixed} but was put in {loc}")
            self.key[v.index] = self._id(loc)

    def _liveness(self) -> tuple[list[int], list[int]]:
        """Per-instruction live-in/live-out bitsets, iterated to a fixed point."""
        insts, succ = self.func.insts, self.succ
        n = len(insts)
        uses = [sum({1 << v.index for v in inst.vreg_uses()}) for inst in insts]
        defs = [sum({1 << v.index for v in inst.defs}) for inst in insts]
        live_in, live_out = [0] * n, [0] * n
        changed = True
        while changed:
            changed = False
            for i in range(n - 1, -1, -1):
                out = 0
                for t in succ[i]:
                    out |= live_in[t]
                new_in = uses[i] | (out & ~defs[i])
                live_out[i] = out
                if new_in != live_in[i]:
                    live_in[i], changed = new_in, True
        return live_in, live_out

    def _distinct(self, live: list[int], i: int | None) -> None:
        """The vregs of ``live``, all live at one point, have distinct locations."""
        key = self.key
        if len({key[x] for x in live}) == len(live):
            return
        holder: dict[int, int] = {}
        for x in live:
            other = holder.setdefault(key[x], x)
            if other != x:
                vregs = self.func.vregs
                self._fail(i, f"{vregs[other]} and {vregs[x]} are both live there and both in "
                              f"{self._where(x)}")

    def _check_interference(self, live_in: list[int], live_out: list[int]) -> None:
        """At each instruction: what it reads (and whatever else is live) sits in distinct
        locations; nothing live across it sits in a register it clobbers; its results go neither
        where a value live across it sits nor where another of its results goes."""
        func, key = self.func, self.key
        if live_in:
            self._distinct(list({p.index for p in func.params} | set(_bits(live_in[0]))), None)
        for i, inst in enumerate(func.insts):
            self._distinct(list(_bits(live_in[i])), i)
            defined = [d.index for d in inst.defs]
            across = [x for x in _bits(live_out[i]) if x not in defined]
            if inst.clobbers:
                clobbered = self._clobbered(inst)
                for x in across:
                    if key[x] in clobbered:
                        self._fail(i, f"{func.vregs[x]} is live across it in {self._where(x)}, which it "
                                      f"clobbers")
            holder = {key[x]: x for x in across}  # distinct: they were all live-in
            for x in defined:
                other = holder.setdefault(key[x], x)
                if other != x:
                    what = "is live across it" if other in across else "is written there too"
                    self._fail(i, f"writes {func.vregs[x]} to {self._where(x)}, where {func.vregs[other]} "
                                  f"{what}")

    def _check_dataflow(self, live_in: list[int]) -> None:
        """Replay the function over abstract states ``location id -> what it holds``: a vreg
        index, or ``("clobber", i)`` / ``("merge", i)`` saying why it holds no single value. Every
        use must find its own vreg in its location. At a merge, locations on which the incoming
        states disagree hold nothing."""
        func, succ = self.func, self.succ
        n = len(func.insts)
        if n == 0:
            return
        leaders = {0}
        for i, targets in enumerate(succ):
            if targets != [i + 1]:
                leaders.update(targets)
                leaders.add(i + 1)
        entry: dict[int, int | tuple[str, int]] = {}
        for x in [p.index for p in func.params] + list(_bits(live_in[0])):
            entry[self.key[x]] = x  # live at entry, defined or not: its own garbage is fine
        states = {0: entry}
        work = [0]
        while work:
            i = work.pop()
            state = dict(states[i])
            while True:
                self._step(i, state)
                if succ[i] != [i + 1] or i + 1 in leaders:
                    break
                i += 1
            for t in succ[i]:
                if self._merge_into(states, t, state):
                    work.append(t)

    def _step(self, i: int, state: dict[int, int | tuple[str, int]]) -> None:
        inst, key = self.func.insts[i], self.key
        for v in inst.vreg_uses():
            held = state.get(key[v.index], ("nothing", 0))
            if held != v.index:
                self._fail(i, f"reads {v} from {self._where(v.index)}, but {self._where(v.index)} holds "
                              f"{self._describe(held)}")
        if inst.clobbers:
            for c in self._clobbered(inst):
                state[c] = ("clobber", i)
        for d in inst.defs:
            state[key[d.index]] = d.index

    def _describe(self, held: int | tuple[str, int]) -> str:
        if isinstance(held, int):
            return str(self.func.vregs[held])
        why, i = held
        if why == "clobber":
            return f"what {self._inst(i)} left there (it clobbers it)"
        if why == "merge":
            return f"no single value (paths merging at {self._inst(i)} disagree)"
        return "nothing written on some path from the entry"

    def _merge_into(self, states: dict[int, dict[int, int | tuple[str, int]]], t: int,
                    incoming: dict[int, int | tuple[str, int]]) -> bool:
        """Meet ``incoming`` into the state at instruction ``t``; True if that state changed."""
        old = states.get(t)
        if old is None:
            states[t] = dict(incoming)
            return True
        changed = False
        disagree = ("merge", t)
        for loc in old.keys() | incoming.keys():
            mine = old.get(loc)
            if mine != incoming.get(loc) and mine != disagree:
                old[loc] = disagree
                changed = True
        return changed
