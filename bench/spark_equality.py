"""Runs the aggregation emitted by `readiness aggregate --emit-sql spark` on Apache Spark in
local mode and checks that `readiness analyze --stats` on Spark's output gives the native run's
metrics, byte for byte.

Usage (from the project root, after `cargo build --release`):

    python3 bench/spark_equality.py [--decisions N] [--seed S] [--work DIR]

Installs pyspark (pinned below) when it is missing; needs Java 17 or later. Generates N
decisions with the project's generator, runs `readiness analyze` natively, emits the Spark
SQL, executes it statement by statement with `spark.sql` (session time zone UTC), runs
`readiness analyze --stats` on the statistics directory Spark wrote, and compares every file
under metrics/, stats/, charts/ and recommendations.json. Prints the timings and the verdict;
exits 1 when anything differs. Results are recorded in BENCHMARKS.md.
"""

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

PYSPARK = "pyspark==4.0.1"
ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
BIN = TARGET / "release" / "readiness"


def ensure_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", PYSPARK], check=True)


def readiness(*args: str, stdout=None) -> float:
    t = time.perf_counter()
    subprocess.run([str(BIN), "--quiet", *args], check=True, cwd=ROOT, stdout=stdout)
    return time.perf_counter() - t


def compared(run: Path) -> list[str]:
    out = ["recommendations.json"]
    for sub in ["metrics", "stats", "charts"]:
        out += sorted(f"{sub}/{p.name}" for p in (run / sub).iterdir())
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--decisions", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work", type=Path, default=Path("/tmp/readiness-spark"))
    a = ap.parse_args()
    ensure_pyspark()
    from pyspark.sql import SparkSession

    work = a.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data = work / "data"
    readiness("generate", "--out", str(data), "--decisions", str(a.decisions), "--seed", str(a.seed))
    native = work / "native"
    t_native = readiness(
        "analyze", "--decisions", str(data / "decisions"), "--verdicts", str(data / "verdicts"),
        "--out", str(native), "--ledger", str(work / "ledger.jsonl"),
    )
    stats = work / "spark-stats"
    script = work / "aggregate.sql"
    with open(script, "w") as f:
        readiness(
            "aggregate", "--emit-sql", "spark", "--decisions", str(data / "decisions"),
            "--verdicts", str(data / "verdicts"), "--out", str(stats), stdout=f,
        )

    spark = (
        SparkSession.builder.master("local[*]")
        .appName("readiness-aggregate")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    t = time.perf_counter()
    statements = [s.strip() for s in script.read_text().split(";\n") if s.strip()]
    for s in statements:
        body = "\n".join(line for line in s.splitlines() if not line.startswith("--"))
        if body.strip():
            spark.sql(body)
    t_spark = time.perf_counter() - t
    version = spark.version
    spark.stop()

    from_spark = work / "from-spark"
    t_stats = readiness(
        "analyze", "--stats", str(stats), "--out", str(from_spark),
        "--ledger", str(work / "ledger-spark.jsonl"),
    )
    files = compared(native)
    differ = [f for f in files if not (from_spark / f).is_file()
              or not filecmp.cmp(native / f, from_spark / f, shallow=False)]
    print(f"Spark {version} (local[*]), {a.decisions} decisions, seed {a.seed}")
    print(f"native analyze: {t_native:.1f} s; Spark SQL aggregation: {t_spark:.1f} s; "
          f"analyze --stats on Spark's output: {t_stats:.1f} s")
    if differ:
        print(f"DIFFERENT: {len(differ)} of {len(files)} files: {differ[:10]}")
        return 1
    print(f"identical: all {len(files)} compared files (metrics, stats, charts, recommendations)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
