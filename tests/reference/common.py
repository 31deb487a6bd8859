"""Shared input reading for the reference scripts: raw Parquet rows and DESIGN.md's final verdict."""

import datetime as dt
import pathlib

import pyarrow.parquet as pq

SEVERITY = {"reject": 3, "override": 2, "approve": 1, "timeout": 0}


def read_all(folder, columns=None):
    """Every row of every Parquet file under `folder`, in path order, as dicts."""
    rows = []
    for p in sorted(pathlib.Path(folder).rglob("*.parquet")):
        rows.extend(pq.read_table(p, columns=columns).to_pylist())
    return rows


def final_verdicts(verdicts_dir):
    """decision_id -> final verdict: latest reviewed_at, ties to the most conservative."""
    final = {}
    for v in read_all(verdicts_dir):
        verdict = v["verdict"].strip().lower()
        key = (v["reviewed_at"], SEVERITY[verdict])
        cur = final.get(v["decision_id"])
        if cur is None or key > cur[0]:
            final[v["decision_id"]] = (key, verdict)
    return {k: v[1] for k, v in final.items()}


def month_start(ts):
    if ts.tzinfo is not None:
        ts = ts.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return dt.date(ts.year, ts.month, 1)


def add_months(d, k):
    m = d.year * 12 + d.month - 1 + k
    return dt.date(m // 12, m % 12 + 1, 1)
