"""Runs a script printed by `readiness aggregate --emit-sql duckdb` on DuckDB.

Usage: python3 run_sql_duckdb.py SCRIPT.sql

The script writes its statistics directory itself (the path given to --out when it was
emitted); this runner only creates that directory's parent and executes the statements.
"""

import re
import sys
from pathlib import Path

import duckdb


def main() -> None:
    sql = Path(sys.argv[1]).read_text()
    for out in re.findall(r"TO '([^']+)/[a-z]+\.parquet'", sql):
        Path(out).mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(sql)
    print("ok")


if __name__ == "__main__":
    main()
