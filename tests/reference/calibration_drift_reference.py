"""Independent reference for metrics/calibration.parquet and metrics/drift.parquet.

From the raw inputs and DESIGN.md's definitions, with numpy, scikit-learn and scipy:

- calibration per class over the whole input, reviewed decisions only, y = 1 for approve:
  ten bins with edges k/10 (bin 0 = [0, 0.1], bin i = (i/10, (i+1)/10]); ECE, MCE, and Brier
  (sklearn.metrics.brier_score_loss); compared to 1e-9;
- PSI per class and month against the 3 months before it (months holding a flagged
  manipulation day, read from metrics/manipulation.parquet, are left out of baselines, as the
  README documents): edges = numpy linear-interpolation deciles of the baseline, duplicates
  dropped, right-closed bins, zero shares replaced by 1e-4; compared to 1e-9; and the
  chi-square test on the same bins (scipy chi2_contingency, no correction), p-values to 1e-6
  relative.

Usage: calibration_drift_reference.py DECISIONS_DIR VERDICTS_DIR RUN_DIR
"""

import pathlib
import sys
from collections import defaultdict

import numpy as np
import pyarrow.parquet as pq
import scipy.stats
from sklearn.metrics import brier_score_loss

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import add_months, final_verdicts, month_start, read_all  # noqa: E402


def calibration_check(decisions, final, run):
    conf, y = defaultdict(list), defaultdict(list)
    for d in decisions:
        v = final.get(d["decision_id"])
        if v in ("approve", "override", "reject"):
            conf[d["action_class"]].append(d["confidence"])
            y[d["action_class"]].append(1.0 if v == "approve" else 0.0)
    edges = np.arange(1, 10) / 10.0
    engine = pq.read_table(run / "metrics/calibration.parquet").to_pylist()
    assert len(engine) == len(conf), (len(engine), len(conf))
    worst = 0.0
    for row in engine:
        c = np.array(conf[row["action_class"]])
        t = np.array(y[row["action_class"]])
        b = np.searchsorted(edges, c, side="left")
        ece, mce = 0.0, 0.0
        for i in range(10):
            m = b == i
            if m.any():
                gap = abs(t[m].mean() - c[m].mean())
                ece += m.sum() / len(c) * gap
                mce = max(mce, gap)
        brier = brier_score_loss(t, c)
        assert row["n"] == len(c)
        for name, want in [("ece", ece), ("mce", mce), ("brier", brier)]:
            worst = max(worst, abs(row[name] - want))
            assert abs(row[name] - want) <= 1e-9, (row["action_class"], name, row[name], want)
    return len(engine), worst


def psi_check(decisions, run):
    by = defaultdict(list)
    for d in decisions:
        by[(d["action_class"], month_start(d["decided_at"]))].append(d["confidence"])
    flagged = set()
    for m in pq.read_table(run / "metrics/manipulation.parquet").to_pylist():
        flagged.add((m["action_class"], m["day"].replace(day=1)))
    engine = pq.read_table(run / "metrics/drift.parquet").to_pylist()
    checked, worst = 0, 0.0
    for row in engine:
        cls, period = row["action_class"], row["period_start"]
        base = []
        for k in (3, 2, 1):
            p = add_months(period, -k)
            if (cls, p) not in flagged:
                base.extend(by.get((cls, p), []))
        cur = np.array(by.get((cls, period), []))
        if not base or cur.size == 0:
            assert row["psi"] is None, row
            continue
        ref = np.array(base)
        e = np.unique(np.quantile(ref, np.arange(1, 10) / 10.0, method="linear"))
        rb = np.bincount(np.searchsorted(e, ref, side="left"), minlength=len(e) + 1)
        cb = np.bincount(np.searchsorted(e, cur, side="left"), minlength=len(e) + 1)
        pr, pc = rb / rb.sum(), cb / cb.sum()
        pr = np.where(pr == 0, 1e-4, pr)
        pc = np.where(pc == 0, 1e-4, pc)
        psi = float(np.sum((pc - pr) * np.log(pc / pr)))
        worst = max(worst, abs(row["psi"] - psi))
        assert abs(row["psi"] - psi) <= 1e-9, (cls, period, row["psi"], psi)
        table = np.array([rb, cb])
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] >= 2:
            _, p, _, _ = scipy.stats.chi2_contingency(table, correction=False)
            assert abs(row["chi2_p"] - p) <= 1e-6 * p + 1e-300, (cls, period, row["chi2_p"], p)
        checked += 1
    return checked, worst


def main():
    decisions_dir, verdicts_dir, run = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
    decisions = read_all(decisions_dir, ["decision_id", "decided_at", "action_class", "confidence"])
    final = final_verdicts(verdicts_dir)
    n_cal, w_cal = calibration_check(decisions, final, run)
    n_psi, w_psi = psi_check(decisions, run)
    print(f"calibration rows checked: {n_cal} (largest difference {w_cal:.2e})")
    print(f"psi rows checked: {n_psi} (largest difference {w_psi:.2e})")


if __name__ == "__main__":
    main()
