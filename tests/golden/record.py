"""Record the golden metrics: ``python -m tests.golden.record [CASE ...]`` (all cases by default) rewrites
``tests/golden/metrics.json``. Only for a deliberate change of numbers; say which cases and why in the commit."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from tests.golden.cases import CASES, run_case

PATH = Path(__file__).with_name("metrics.json")


def encode(metrics: dict[str, np.ndarray]) -> dict[str, list]:
    """NaN (no episode finished) as ``null`` so the file is strict JSON."""
    return {name: [[None if not np.isfinite(v) else float(v) for v in row] for row in values] for name, values in metrics.items()}


def main(argv: list[str]) -> None:
    golden = json.loads(PATH.read_text()) if PATH.exists() else {}
    for case_id in argv or list(CASES):
        golden[case_id] = encode(run_case(case_id))
        print("recorded", case_id, flush=True)
    tmp = PATH.with_suffix(".tmp")
    tmp.write_text(json.dumps({k: golden[k] for k in sorted(golden)}, indent=None, separators=(",", ":")) + "\n")
    tmp.replace(PATH)


if __name__ == "__main__":
    main(sys.argv[1:])
