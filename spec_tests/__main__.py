"""``python -m spec_tests FILE [--line N] [--tier T] [--verbose] [--json OUT]``.

Runs spec files with the wasmjit wast runner. A FILE that is not a path is looked up in the
spec directory, with or without ``.wast`` (``python -m spec_tests i32 --line 12``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from wasmjit.wast import build_parser, run_cli

from . import SPEC_DIR


def resolve(name: str) -> str:
    """``name`` if it is a file, else the spec file it names."""
    if Path(name).is_file():
        return name
    for candidate in (SPEC_DIR / name, SPEC_DIR / f"{name}.wast"):
        if candidate.is_file():
            return str(candidate)
    return name  # run_wast reports the missing file


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.prog = "python -m spec_tests"
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.line is not None and len(args.files) != 1:
        parser.error("--line takes exactly one FILE")
    args.files = [resolve(name) for name in args.files]
    return run_cli(args)


if __name__ == "__main__":
    sys.exit(main())
