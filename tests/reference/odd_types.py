"""Variants of a valid decisions file with columns of uncommon Parquet types (tests/malformed.rs).

Usage: odd_types.py DECISIONS.parquet OUT_DIR

Writes OUT_DIR/<case>/decisions.parquet for each case below: the same rows, with one column
added or retyped. The engine must read the first group as it reads the original file, refuse
the second with a message naming the column (the Parquet reader has no conversion for those
types, and decimals wider than 38 digits in a column the engine reads), and read
`confidence_decimal` as `confidence_float`, the same values as doubles.
"""

import decimal
import pathlib
import sys
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def main(src, out):
    table = pq.read_table(src)
    n = table.num_rows
    ids = [uuid.UUID(int=i).bytes for i in range(n)]
    read = {
        "extra_decimal": pa.array([decimal.Decimal(i) / 100 for i in range(n)], pa.decimal128(12, 2)),
        "extra_decimal256": pa.array([decimal.Decimal(i) for i in range(n)], pa.decimal256(40, 0)),
        "extra_fixed_list": pa.array([[i, i + 1] for i in range(n)], pa.list_(pa.int32(), 2)),
        "extra_map": pa.array([[("k", i)] for i in range(n)], pa.map_(pa.string(), pa.int64())),
        "extra_struct": pa.array([{"x": i} for i in range(n)], pa.struct([("x", pa.int64())])),
    }
    refused = {
        "extra_float16": pa.array(np.arange(n, dtype=np.float16)),
        "extra_uuid": pa.array(ids, pa.uuid()),
        "extra_unknown_zone": pa.array(range(n), pa.timestamp("us", tz="Mars/Olympus")),
    }
    for case, column in {**read, **refused}.items():
        write(out / case, table.append_column(case, column))
    i = table.schema.get_field_index("decision_id")
    write(out / "id_uuid", table.set_column(i, "decision_id", pa.array(ids, pa.uuid())))
    # Confidences as decimals, and as the doubles nearest to those decimals.
    exact = [decimal.Decimal(repr(round(c, 6))) for c in table["confidence"].to_pylist()]
    i = table.schema.get_field_index("confidence")
    write(out / "confidence_decimal", table.set_column(i, "confidence", pa.array(exact, pa.decimal128(10, 6))))
    floats = pa.array([float(c) for c in exact], pa.float64())
    write(out / "confidence_float", table.set_column(i, "confidence", floats))
    # Wider than the 38 digits polars holds, in a column the engine reads.
    wide = pa.array(exact, pa.decimal256(50, 20))
    write(out / "confidence_decimal_wide", table.set_column(i, "confidence", wide))
    # A zoned timestamp at an offset polars has no zone for (India's +05:30).
    i = table.schema.get_field_index("decided_at")
    shifted = table["decided_at"].cast(pa.timestamp("us", tz="+05:30"))
    write(out / "decided_at_half_hour_offset", table.set_column(i, "decided_at", shifted))


def write(folder, table):
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "decisions.parquet")


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]))
