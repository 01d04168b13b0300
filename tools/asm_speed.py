#!/usr/bin/env python3
"""Speed of assembly: Keystone, the cheap Capstone walk and the full operand check on a large
function (the mix of tests/unit/test_assemble.py's big_function). Prints instructions per second.

    python tools/asm_speed.py [--instructions 5000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "unit"))

from test_assemble import ADDRESS, big_function  # noqa: E402

from wasmjit.jit import assemble as assemble_module  # noqa: E402
from wasmjit.jit.assemble import assemble  # noqa: E402


def best_time(run: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instructions", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    m = big_function(args.instructions)
    listing = m.listing()
    n = m.insn_count
    code, _ = assemble_module._keystone_asm(listing.text, ADDRESS)
    walk = assemble_module._walk(listing, code, ADDRESS)
    keystone = best_time(lambda: assemble_module._keystone_asm(listing.text, ADDRESS), args.repeat)
    cheap = best_time(lambda: assemble_module._walk(listing, code, ADDRESS), args.repeat)
    full = best_time(lambda: assemble_module._check_operands(listing, code, ADDRESS, walk), args.repeat)
    total = best_time(lambda: assemble(m, ADDRESS, full=True), args.repeat)
    print(f"{n} instructions, {len(code)} bytes")
    print(f"  Keystone            {n / keystone:>12,.0f} insn/s  {1e3 * keystone:8.1f} ms")
    print(f"  cheap check (walk)  {n / cheap:>12,.0f} insn/s  {1e3 * cheap:8.1f} ms")
    print(f"  full operand check  {n / full:>12,.0f} insn/s  {1e3 * full:8.1f} ms")
    print(f"  assemble(full=True) {n / total:>12,.0f} insn/s  {1e3 * total:8.1f} ms")


if __name__ == "__main__":
    main()
