"""Independent reference for metrics/agreement.parquet.

Recomputes, from the raw input Parquet files and DESIGN.md's definitions, the per class and
UTC month counts (final verdict = latest reviewed_at, ties broken towards the most conservative
verdict reject > override > approve > timeout) with pyarrow and plain Python, and the Wilson and
Clopper-Pearson bounds with statsmodels' proportion_confint ('wilson', 'beta') at 95%; then
compares them with the engine's output: counts exactly, bounds to 1e-9.

Usage: agreement_reference.py DECISIONS_DIR VERDICTS_DIR AGREEMENT_PARQUET
Assumes clean inputs (the generator's), so no row is rejected.
"""

import math
import pathlib
import sys
from collections import defaultdict

import pyarrow.parquet as pq
from statsmodels.stats.proportion import proportion_confint

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import final_verdicts, month_start, read_all  # noqa: E402


def main():
    decisions_dir, verdicts_dir, agreement_path = sys.argv[1:4]
    final = final_verdicts(verdicts_dir)
    counts = defaultdict(lambda: defaultdict(int))
    for d in read_all(decisions_dir):
        cell = counts[(d["action_class"], month_start(d["decided_at"]))]
        cell["n_decisions"] += 1
        outcome = final.get(d["decision_id"], "unreviewed")
        cell["n_" + outcome] += 1

    engine = pq.read_table(agreement_path).to_pylist()
    assert len(engine) == len(counts), f"{len(engine)} engine rows vs {len(counts)} reference cells"
    worst = 0.0
    for row in engine:
        ref = counts[(row["action_class"], row["period_start"])]
        for c in ["n_decisions", "n_approve", "n_override", "n_reject", "n_timeout", "n_unreviewed"]:
            assert row[c] == ref[c], f"{row['action_class']} {row['period_start']} {c}: {row[c]} != {ref[c]}"
        k = ref["n_approve"]
        n = ref["n_approve"] + ref["n_override"] + ref["n_reject"]
        assert row["n_reviewed"] == n
        if n == 0:
            assert row["agreement"] is None and row["wilson_low"] is None
            continue
        w = proportion_confint(k, n, alpha=0.05, method="wilson")
        b = proportion_confint(k, n, alpha=0.05, method="beta")
        # statsmodels returns nan for the open end of the exact interval at k = 0 or k = n.
        b = (0.0 if math.isnan(b[0]) else b[0], 1.0 if math.isnan(b[1]) else b[1])
        for name, want in [
            ("wilson_low", w[0]),
            ("wilson_high", w[1]),
            ("exact_low", b[0]),
            ("exact_high", b[1]),
        ]:
            err = abs(row[name] - want)
            worst = max(worst, err)
            assert err <= 1e-9, f"{row['action_class']} {row['period_start']} {name}: {row[name]} vs {want}"
        assert abs(row["agreement"] - k / n) <= 1e-15
    print(f"rows checked: {len(engine)}; largest bound difference {worst:.3e}")


if __name__ == "__main__":
    main()
