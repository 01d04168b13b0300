"""``wasmjit fuzz``: differential fuzzing of every tier against wasmtime-py.

Smith mode (the default, :mod:`wasmjit.fuzz.smith`) generates modules with ``wasm-tools smith``
and compares the engines on each with :mod:`wasmjit.difftest`; ``--mutate`` hands over to
:mod:`wasmjit.fuzz.mutate` (imported only then).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..difftest import available_tiers

    parser.add_argument("--seconds", type=float, default=60.0, metavar="N",
                        help="how long to fuzz (default 60; a shrink in progress finishes)")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="random seed: the same seed generates the same modules (default 0)")
    parser.add_argument("--tiers", metavar="A,B,...",
                        help="wasmjit tiers to compare with wasmtime "
                             f"(default: {','.join(available_tiers())})")
    parser.add_argument("--out", default="fuzz-crashes", metavar="DIR",
                        help="where shrunk findings are written (default fuzz-crashes)")
    parser.add_argument("--timeout", type=float, default=20.0, metavar="SECONDS",
                        help="per engine and module (default 20)")
    parser.add_argument("--tier-up", default="2,10", metavar="CALLS,LOOPS",
                        help="tier 'tiered' thresholds, low so that generated code tiers up and "
                             "enters native code by OSR (default 2,10)")
    parser.add_argument("--max-modules", type=int, default=None, metavar="N",
                        help="stop after N modules even if time is left")
    parser.add_argument("--shrink-attempts", type=int, default=60, metavar="N",
                        help="wasm-tools shrink --attempts (default 60)")
    parser.add_argument("--no-shrink", action="store_true", help="write findings unshrunk")
    parser.add_argument("--mutate", action="store_true",
                        help="mutation mode (wasmjit.fuzz.mutate) instead of wasm-tools smith")


def main(args: argparse.Namespace) -> int:
    """Exit status 0 when nothing was found, 1 otherwise (2: usage error)."""
    if args.mutate:
        from . import mutate  # written separately; only needed in this mode

        return int(mutate.run(args))
    from . import smith

    return smith.run(args)
