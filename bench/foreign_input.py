"""Writes decisions and verdicts shaped unlike `readiness generate`'s, for the benchmark on data
the project has never seen: UUID-like ids (36 bytes, not stored inline), nanosecond timestamps
with a time zone, a dictionary-encoded class column, float32 confidences, criticality and verdict
spellings in mixed case with stray spaces, no optional columns, one file per table with large row
groups, snappy and gzip compression.

Usage: python3 bench/foreign_input.py --decisions 10000000 --out /tmp/foreign
then:  python3 bench/bench.py --decisions /tmp/foreign/decisions.parquet --verdicts /tmp/foreign/verdicts.parquet
"""

import argparse
import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--decisions", type=int, default=1_000_000)
    ap.add_argument("--out", default="/tmp/foreign")
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    n = args.decisions
    ids = np.char.add(np.char.add("8c7f1a2e-", np.char.zfill(np.arange(n).astype(str), 8)), "-4b1d-9e55-3f0c2a7d9b11")
    classes = np.array(["isolate_host", "block_ip", "close_alert_benign", "reset_password",
                        "quarantine_file", "disable_account", "revoke_session"])
    t0 = np.datetime64("2025-03-01T00:00:00", "ns")
    decided = t0 + rng.integers(0, 180 * 86400, n).astype("timedelta64[s]").astype("timedelta64[ns]")
    decisions = pa.table({
        "decision_id": pa.array(ids, type=pa.large_string()),
        "decided_at": pa.array(decided, type=pa.timestamp("ns", tz="Europe/Paris")),
        "action_class": pa.array(classes[rng.integers(0, len(classes), n)]).dictionary_encode(),
        "confidence": pa.array(rng.beta(8, 2, n).astype(np.float32)),
        "model_version": pa.array(np.array(["2025.1", "2025.2", "2025.3"])[rng.integers(0, 3, n)]),
        "asset_criticality": pa.array(np.array(["Low", "MEDIUM", " high", "critical"])[rng.integers(0, 4, n)]),
        "privileged": pa.array(rng.random(n) < 0.1),
    })
    pq.write_table(decisions, out / "decisions.parquet", row_group_size=1_000_000, compression="snappy")
    m = int(n * 0.8)
    picked = rng.choice(n, m, replace=False)
    reviewed = decided[picked] + rng.integers(60, 86400, m).astype("timedelta64[s]").astype("timedelta64[ns]")
    verdicts = pa.table({
        "decision_id": pa.array(ids[picked], type=pa.large_string()),
        "reviewed_at": pa.array(reviewed, type=pa.timestamp("ns", tz="UTC")),
        "analyst_id": pa.array(np.array([f"analyst-{k}" for k in range(40)])[rng.integers(0, 40, m)]),
        "verdict": pa.array(np.array(["approve", "Override", "reject ", "timeout"])[rng.choice(4, m, p=[0.8, 0.1, 0.05, 0.05])]),
    })
    pq.write_table(verdicts, out / "verdicts.parquet", compression="gzip")
    print(f"{n} decisions, {m} verdicts in {out}")


if __name__ == "__main__":
    main()
