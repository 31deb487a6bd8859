"""Independent reference for metrics/reasoning.parquet.

From the raw decisions and the bundled ATT&CK list (data/attack/), counts per action class and
model version the decisions citing at least one ID absent from the list (invented) and at least
one deprecated or revoked ID (stale), with plain Python; compares with the engine's counts
exactly and its Wilson intervals (statsmodels) to 1e-9.

Usage: reasoning_reference.py DECISIONS_DIR REASONING_PARQUET ATTACK_DIR
"""

import pathlib
import sys
from collections import defaultdict

import pyarrow.parquet as pq
from statsmodels.stats.proportion import proportion_confint


def main():
    decisions_dir, reasoning_path, attack_dir = sys.argv[1:4]
    status = {}
    lines = (pathlib.Path(attack_dir) / "enterprise_techniques.tsv").read_text().splitlines()[1:]
    for line in lines:
        f = line.split("\t")
        status[f[0].strip().upper()] = "stale" if f[3].strip() == "true" else "current"
    counts = defaultdict(lambda: [0, 0, 0, 0])
    for p in sorted(pathlib.Path(decisions_dir).rglob("*.parquet")):
        t = pq.read_table(p, columns=["action_class", "model_version", "technique_ids"]).to_pylist()
        for d in t:
            c = counts[(d["action_class"], d["model_version"])]
            c[0] += 1
            ids = [i.strip().upper() for i in (d["technique_ids"] or []) if i is not None]
            if ids:
                c[1] += 1
            kinds = {status.get(i, "unknown") for i in ids}
            c[2] += "unknown" in kinds
            c[3] += "stale" in kinds
    engine = pq.read_table(reasoning_path).to_pylist()
    assert len(engine) == len(counts), (len(engine), len(counts))
    for row in engine:
        n, citing, unknown, stale = counts[(row["action_class"], row["model_version"])]
        got = (row["n_decisions"], row["n_citing"], row["n_unknown"], row["n_stale"])
        assert got == (n, citing, unknown, stale), (row, (n, citing, unknown, stale))
        for k, name in [(unknown, "invented"), (stale, "stale")]:
            lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
            assert abs(row[f"{name}_low"] - lo) <= 1e-9 and abs(row[f"{name}_high"] - hi) <= 1e-9, (row, lo, hi)
            assert abs(row[f"{name}_share"] - k / n) <= 1e-15
    print(f"rows checked: {len(engine)}")


if __name__ == "__main__":
    main()
