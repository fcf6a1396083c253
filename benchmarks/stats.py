"""Summary statistics of the benchmark comparisons (the one implementation every script uses): mean ± 95% CI over
seeds and Welch's t-test. Every seed counts: a seed that logged no value (NaN) stays in ``per_seed`` (as ``None`` in
JSON) and in ``missing``; the statistics are over the seeds with a value, and say how many that was."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy import stats


def mean_ci(values: Sequence[float]) -> dict[str, Any]:
    """Per-seed ``values`` ``[S]`` → ``{"mean", "std", "ci95": [lo, hi], "ci95_half_width", "n", "missing",
    "per_seed"}``: Student-t 95% interval of the mean (``n − 1`` dof) over the ``n`` finite seeds; ``missing``
    counts the others. Statistics that need more seeds than there are are ``None``."""
    x = np.asarray(values, np.float64).reshape(-1)
    finite = x[np.isfinite(x)]
    n = int(finite.size)
    mean = float(finite.mean()) if n else None
    std = float(finite.std(ddof=1)) if n > 1 else None
    half = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else None
    return {"mean": mean, "std": std, "ci95": [mean - half, mean + half] if half is not None else None,
            "ci95_half_width": half, "n": n, "missing": int(x.size - n),
            "per_seed": [float(v) if np.isfinite(v) else None for v in x]}


def welch(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Welch's t-test of ``mean(a) − mean(b)`` (unequal variances) over the finite values: ``t``, two-sided ``p``,
    ``diff`` and its 95% CI with Welch–Satterthwaite ``dof``; ``n_a``/``n_b`` say how many values entered."""
    a, b = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    out: dict[str, Any] = {"t": None, "p": None, "diff": None, "diff_ci95": None, "dof": None,
                           "n_a": int(a.size), "n_b": int(b.size)}
    if a.size < 2 or b.size < 2:
        return out
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    diff, se = float(a.mean() - b.mean()), float(math.sqrt(va + vb))
    out["diff"] = diff
    if se == 0.0:  # identical constants: no test
        return out
    dof = float((va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)))
    result = stats.ttest_ind(a, b, equal_var=False)
    half = float(stats.t.ppf(0.975, dof) * se)
    out.update(t=float(result.statistic), p=float(result.pvalue), diff_ci95=[diff - half, diff + half], dof=dof)
    return out
