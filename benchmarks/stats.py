"""Summary statistics for benchmark comparisons: mean ± 95% CI over seeds and Welch's t-test, with every seed
counted (a seed that logged no value is reported in ``missing``, never silently dropped)."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy import stats


def mean_ci(values: Sequence[float]) -> dict[str, Any]:
    """``{"mean", "ci95", "std", "n", "missing", "per_seed"}`` of per-seed values: a Student-t 95% half-width over
    the seeds with a value; ``missing`` counts the seeds without one (NaN), which the mean excludes and says so."""
    x = np.asarray(values, np.float64)
    finite = x[np.isfinite(x)]
    n = int(finite.size)
    mean = float(finite.mean()) if n else None
    std = float(finite.std(ddof=1)) if n > 1 else None
    half = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else None
    return {"mean": mean, "ci95": half, "std": std, "n": n, "missing": int(x.size - n),
            "per_seed": [float(v) if np.isfinite(v) else None for v in x]}


def welch(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Welch's t-test of ``a`` vs ``b`` (finite values only; ``n_a``/``n_b`` say how many entered)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 2 or b.size < 2:
        return {"t": None, "p": None, "n_a": int(a.size), "n_b": int(b.size)}
    result = stats.ttest_ind(a, b, equal_var=False)
    t, p = float(result.statistic), float(result.pvalue)
    return {"t": t if np.isfinite(t) else None, "p": p if np.isfinite(p) else None, "n_a": int(a.size), "n_b": int(b.size)}
