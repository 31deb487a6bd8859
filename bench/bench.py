"""Benchmark: the whole `readiness analyze` against DuckDB's core aggregation, side by side.

For each size, generates the input once with `readiness generate` (seed 1), then times, as whole
processes, `runs` runs of each after one warm-up each, the two taken in turns so that both see the
same stretches of the machine:

- readiness: `readiness --quiet analyze` (every metric, chart and report, the ledger);
- DuckDB: the core aggregation (final verdict per decision, join, group by class and month,
  verdict counts, confidence sum, ten-bin histogram) in a fresh Python process.

Reports median and spread of wall time, peak RSS (from wait4), and the ratio readiness/DuckDB.

Usage (from the project root, after `cargo build --release`):

    python3 bench/bench.py --sizes 1000000 10000000 [--runs 3] [--workdir /tmp/readiness-bench]
    python3 bench/bench.py --decisions DATA/decisions --verdicts DATA/verdicts   # any input

Installs the pinned DuckDB Python package first. Results go to stdout as a Markdown table.
"""

import argparse
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

DUCKDB = "duckdb==2.0.0"
ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "readiness"

DUCKDB_QUERY = """
WITH v AS (
  SELECT decision_id,
         arg_max(verdict, epoch_us({reviewed}) * 4 +
           CASE verdict WHEN 'reject' THEN 3 WHEN 'override' THEN 2 WHEN 'approve' THEN 1 ELSE 0 END)
           AS verdict
  FROM read_parquet('{v}')
  GROUP BY decision_id
)
SELECT d.action_class, date_trunc('month', {decided}) AS month,
       count(*) AS n,
       count(*) FILTER (WHERE v.verdict = 'approve') AS n_approve,
       count(*) FILTER (WHERE v.verdict = 'override') AS n_override,
       count(*) FILTER (WHERE v.verdict = 'reject') AS n_reject,
       count(*) FILTER (WHERE v.verdict = 'timeout') AS n_timeout,
       count(*) FILTER (WHERE v.verdict IS NULL) AS n_unreviewed,
       sum(d.confidence) AS sum_conf,
       {bins}
FROM read_parquet('{d}') d LEFT JOIN v USING (decision_id)
GROUP BY 1, 2
"""


def bins():
    parts = []
    for i in range(10):
        parts.append(
            f"count(*) FILTER (WHERE least(floor(d.confidence * 10), 9) = {i}) AS bin_{i}"
        )
    return ",\n       ".join(parts)


def pattern(path):
    """What DuckDB's read_parquet takes for an input path: every Parquet file below a folder."""
    p = pathlib.Path(path)
    return f"{p}/**/*.parquet" if p.is_dir() else str(p)


def row(label, size, gen_s, decisions, verdicts, out, ledger, runs, any_time=False):
    """Times readiness and DuckDB on one input; prints a table row and returns readiness's times.

    `any_time`: the timestamps may be of any unit and time zone (an input not generated here);
    DuckDB then reads them through TIMESTAMPTZ to a plain UTC TIMESTAMP."""
    analyze = [
        str(BIN), "--quiet", "analyze",
        "--decisions", str(decisions), "--verdicts", str(verdicts),
        "--policy", str(ROOT / "data/policy.toml"),
        "--out", str(out), "--ledger", str(ledger),
    ]
    ts = (lambda c: f"make_timestamp(epoch_us(CAST({c} AS TIMESTAMPTZ)))") if any_time else (lambda c: c)
    query = DUCKDB_QUERY.format(
        d=pattern(decisions), v=pattern(verdicts), bins=bins(),
        reviewed=ts("reviewed_at"), decided=ts("d.decided_at"),
    )
    duck = [sys.executable, "-c", f"import duckdb; duckdb.sql(\"SET TimeZone = 'UTC'\"); duckdb.sql({query!r}).fetchall()"]
    r, d = (summary(xs) for xs in interleaved(analyze, duck, runs))
    print(
        f"| {label} | {size:.0f} | {gen_s:.1f} | {r[0]:.2f} ({r[1]:.2f}–{r[2]:.2f}) | {r[3]:.0f} "
        f"| {d[0]:.2f} ({d[1]:.2f}–{d[2]:.2f}) | {d[3]:.0f} | {r[0] / d[0]:.2f} |",
        flush=True,
    )
    return r


def timed(cmd, env=None):
    """Wall seconds and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    err = p.stderr.read().decode(errors="replace")
    if status != 0:
        raise SystemExit(f"{cmd[0]} failed ({status}): {err}")
    return wall, usage.ru_maxrss / 1024.0


def series(cmd, runs):
    timed(cmd)  # warm-up (file cache, page cache)
    return [timed(cmd) for _ in range(runs)]


def interleaved(a, b, runs):
    """Runs of `a` and `b` taken in turns (a b, b a, a b, …) after a warm-up of each, so that
    both see the same stretches of a machine whose speed drifts from minute to minute."""
    timed(a)
    timed(b)
    xs, ys = [], []
    for i in range(runs):
        for cmd, out in ([(a, xs), (b, ys)] if i % 2 == 0 else [(b, ys), (a, xs)]):
            out.append(timed(cmd))
    return xs, ys


def summary(xs):
    walls = [w for w, _ in xs]
    rss = max(r for _, r in xs)
    return statistics.median(walls), min(walls), max(walls), rss


def machine():
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", default="/tmp/readiness-bench")
    ap.add_argument("--decisions", help="time this input instead of generated ones (file, folder or glob)")
    ap.add_argument("--verdicts", help="the verdicts that go with --decisions")
    args = ap.parse_args()
    if (args.decisions is None) != (args.verdicts is None):
        raise SystemExit("--decisions and --verdicts go together")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", DUCKDB], check=True)
    if not BIN.exists():
        raise SystemExit(f"{BIN} not found: run `cargo build --release` first")
    work = pathlib.Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    print()
    print("| decisions | input MiB | generate s | readiness analyze s (median, min–max) | peak RSS MiB | DuckDB core aggregation s | DuckDB peak RSS MiB | ratio |")
    print("|---:|---:|---:|---|---:|---|---:|---:|")
    if args.decisions:
        size = sum(
            p.stat().st_size
            for x in (args.decisions, args.verdicts)
            for p in ([pathlib.Path(x)] if pathlib.Path(x).is_file() else pathlib.Path(x).rglob("*.parquet"))
        ) / 2**20
        row("given input", size, float("nan"), args.decisions, args.verdicts,
            work / "run-given", work / "ledger-given.jsonl", args.runs, any_time=True)
        return
    full = {}
    for n in args.sizes:
        data = work / f"n{n}"
        gen_s = float("nan")
        if not (data / "truth.json").exists():
            gen_s, _ = timed([str(BIN), "--quiet", "generate", "--out", str(data), "--decisions", str(n), "--seed", "1"])
        size = sum(p.stat().st_size for p in data.rglob("*.parquet")) / 2**20
        r = row(f"{n:,}", size, gen_s, data / "decisions", data / "verdicts",
                work / f"run-{n}", work / f"ledger-{n}.jsonl", args.runs)
        full[n] = r

    # Incremental monthly run: the statistics of months 1–11 stored once by `aggregate`, then
    # `analyze --stats` with only month 12's raw files, against the full run above.
    print()
    print("| decisions | full analyze s (median) | incremental analyze s (median, min–max) | peak RSS MiB | speed-up |")
    print("|---:|---:|---|---:|---:|")
    for n in args.sizes:
        data = work / f"n{n}"
        months = sorted(p.name for p in (data / "decisions").iterdir() if p.name.startswith("month="))
        stored = work / f"stats-{n}"
        if not (stored / "meta.parquet").exists():
            subprocess.run(
                [str(BIN), "--quiet", "aggregate",
                 "--decisions", *[str(data / "decisions" / m) for m in months[:-1]],
                 "--verdicts", *[str(data / "verdicts" / m) for m in months[:-1]],
                 "--policy", str(ROOT / "data/policy.toml"), "--out", str(stored)],
                check=True,
            )
        incremental = [
            str(BIN), "--quiet", "analyze", "--stats", str(stored),
            "--decisions", str(data / "decisions" / months[-1]),
            "--verdicts", str(data / "verdicts" / months[-1]),
            "--policy", str(ROOT / "data/policy.toml"),
            "--out", str(work / f"run-incremental-{n}"),
            "--ledger", str(work / f"ledger-incremental-{n}.jsonl"),
        ]
        i = summary(series(incremental, args.runs))
        print(
            f"| {n:,} | {full[n][0]:.2f} | {i[0]:.2f} ({i[1]:.2f}–{i[2]:.2f}) | {i[3]:.0f} "
            f"| {full[n][0] / i[0]:.1f}× |",
            flush=True,
        )


if __name__ == "__main__":
    main()
