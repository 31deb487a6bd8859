//! Test data shared by the unit tests.

use polars::prelude::*;

/// The `k`th string of a scrambled sequence over `distinct` values: every third value is long
/// (`long` and 20 digits, kept in a buffer), the others short (`short` and the number, inline
/// in their views).
pub(crate) fn scrambled(k: u64, distinct: u64, long: &str, short: &str) -> String {
    let k = k.wrapping_mul(0x2545_f491_4f6c_dd1d) % distinct;
    if k.is_multiple_of(3) {
        format!("{long}{k:020}")
    } else {
        format!("{short}{k}")
    }
}

/// `values` as a string column in chunks cut at `cuts` (ascending row numbers), as a
/// multi-file read gives them.
pub(crate) fn chunked(values: &[String], cuts: &[usize]) -> StringChunked {
    let chunk = |r: std::ops::Range<usize>| -> StringChunked {
        values[r].iter().map(|v| Some(v.as_str())).collect()
    };
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(values.len());
    let mut ca = chunk(bounds[0]..bounds[1]);
    for w in bounds[1..].windows(2) {
        ca.append(&chunk(w[0]..w[1])).unwrap();
    }
    ca
}

/// `df` with `columns` cast to the categories the engine reads and builds them with
/// (`crate::ingest::categorical`).
pub(crate) fn as_categories(df: &DataFrame, columns: &[&str]) -> DataFrame {
    let mut out = df.clone();
    for name in columns {
        let dtype = crate::ingest::categorical(name).expect("a categorical column");
        let cats = df.column(name).unwrap().cast(&dtype).unwrap();
        out.with_column(cats).unwrap();
    }
    out
}
