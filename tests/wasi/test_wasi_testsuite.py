"""The WASI preview1 conformance suite (../shared/wasi-testsuite) under pytest: one test per case
per available tier, each a ``python -m wasmjit run`` subprocess checked as the suite specifies.

Discovery, running and checking are tools/wasi_testsuite.py's (also a command line: it prints a
per-suite table and can run wasmtime-py as the baseline). Cases in expected_failures.toml beside
this file are xfail(strict=True): fix the engine, then delete the entry.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from wasmjit.api import AVAILABLE_TIERS

REPO = Path(__file__).resolve().parents[2]


def _load_runner() -> ModuleType:
    """tools/wasi_testsuite.py as a module (tools/ is not a package)."""
    path = REPO / "tools" / "wasi_testsuite.py"
    spec = importlib.util.spec_from_file_location("wasi_testsuite", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


runner = _load_runner()

if not runner.SUITE_ROOT.is_dir():
    pytest.skip(f"the WASI testsuite {runner.SUITE_ROOT} does not exist: it is expected in the shared "
                "data folder ../shared beside the clone (or set WASMJIT_WASI_TESTSUITE_DIR)",
                allow_module_level=True)

CASES = runner.discover(runner.default_suite_dirs())
EXPECTED_FAILURES: dict[str, str] = runner.load_expected_failures()


def _params() -> list[object]:
    params = []
    for tier in AVAILABLE_TIERS:
        for case in CASES:
            reason = EXPECTED_FAILURES.get(case.id)
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason is not None else []
            params.append(pytest.param(case, tier, id=f"{tier}-{case.id}", marks=marks))
    return params


def test_expected_failures_name_cases() -> None:
    unknown = sorted(set(EXPECTED_FAILURES) - {case.id for case in CASES})
    assert not unknown, f"{runner.EXPECTED_FAILURES.name} lists cases the suite does not have: {unknown}"


@pytest.mark.parametrize(("case", "tier"), _params())
def test_wasi_testsuite(case: runner.TestCase, tier: str) -> None:
    if case.skip_reason is not None:
        pytest.skip(case.skip_reason)
    result = runner.run_case(case, engine="wasmjit", tier=tier)
    if not result.passed:
        pytest.fail(f"{case.id} on {tier}: {result.reason}", pytrace=False)
