"""Refactoring guard: every algorithm reproduces its recorded per-update metrics (tests/golden/)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.golden.cases import CASES, run_case
from tests.golden.record import PATH

GOLDEN = json.loads(PATH.read_text())


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_reproduces_golden_metrics(case_id):
    assert case_id in GOLDEN, f"no golden metrics recorded for {case_id}: python -m tests.golden.record {case_id}"
    expected = GOLDEN[case_id]
    got = run_case(case_id)
    assert sorted(got) == sorted(expected), f"metric names changed: {sorted(set(got) ^ set(expected))}"
    for name, values in expected.items():
        want = np.asarray([[np.nan if v is None else v for v in row] for row in values], np.float64)
        np.testing.assert_allclose(got[name], want, rtol=2e-4, atol=2e-5, equal_nan=True, err_msg=f"{case_id}: {name}")
