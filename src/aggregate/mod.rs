//! Aggregate: one group-by over the validated decisions joined to their final verdicts,
//! producing the long statistics table ([`StatRow`]s under their [`CellKey`]s) that every metric
//! is computed from, plus the sorted confidence samples per class and period that the exact PSI
//! deciles need.
//!
//! The grouping key is (action class, period, model version, asset criticality, privileged,
//! calibration bin, fine bin, final outcome, executed); the measures are the row count and the
//! sums of confidence to the fourth power. Summing two such tables key by key gives the table of
//! the union of their inputs, so partitions, months and engines can be aggregated separately.
//!
//! The sums are **fixed-point integers** in units of 2⁻³³ ([`FIXED_SCALE`]): each power of the
//! confidence is rounded to the nearest 2⁻³³ (an error below 6·10⁻¹¹ per decision) and summed as
//! a 64-bit integer, which cannot overflow below 10⁹ decisions per cell. Integer addition does
//! not depend on order, so the statistics — and every output — are bit-identical whatever the
//! thread count, the engine (in-memory or streaming) or the partitioning; floating-point sums
//! would differ in their last bits from run to run.

use std::collections::BTreeMap;

use polars::prelude::*;
use polars_arrow::array::{Array, PrimitiveArray};
use readiness_metrics::suffstats::{Criticality, Outcome, StatRow};
use readiness_metrics::{CellKey, Granularity, Period, SuffStats};

use crate::ingest::{IngestError, StrColumn};

fn pe(context: &str) -> impl FnOnce(PolarsError) -> IngestError {
    let context = context.to_string();
    move |source| IngestError::Polars { context, source }
}

/// Sorted confidences of all decisions of one class in one period.
pub type ConfidenceSamples = BTreeMap<(String, Period), Vec<f64>>;

/// The statistics the metrics are computed from, decoded from the statistics set.
pub struct Aggregated {
    pub stats: SuffStats,
    pub samples: ConfidenceSamples,
}

/// Period start (days since epoch, i32) of a microsecond timestamp column.
pub fn period_expr(us: Expr, granularity: Granularity) -> Expr {
    let every = match granularity {
        Granularity::Week => "1w",
        Granularity::Month => "1mo",
        Granularity::Quarter => "3mo",
    };
    us.cast(DataType::Datetime(TimeUnit::Microseconds, None))
        .dt()
        .truncate(lit(every))
        .cast(DataType::Date)
        .cast(DataType::Int32)
}

/// Units of the fixed-point sums: 2³³ per unit of confidence.
pub const FIXED_SCALE: f64 = 8_589_934_592.0;

/// The grouping key of the cell statistics, in their sort order.
pub const CELL_KEYS: [&str; 9] = [
    "action_class",
    "period",
    "model_version",
    "asset_criticality",
    "privileged",
    "cal_bin",
    "fine_bin",
    "outcome",
    "executed",
];

/// The confidence samples of a statistics set, read period by period, periods on every core
/// (a partitioned run keeps the value counts on disk).
pub fn samples_from_set(set: &StatsSet) -> Result<ConfidenceSamples, IngestError> {
    // Periods are part of the key and a (canonical) table gives each period once, so the
    // periods' samples are built apart and their keys never meet.
    let parts = set.map_periods("confidence", |df| {
        let mut part = ConfidenceSamples::new();
        add_samples(&mut part, &df)?;
        sort_samples(&mut part);
        Ok(part)
    })?;
    Ok(parts.into_iter().flatten().collect())
}

fn sort_samples(samples: &mut ConfidenceSamples) {
    for v in samples.values_mut() {
        if !v.is_sorted_by(|a, b| a <= b) {
            v.sort_by(f64::total_cmp);
        }
    }
}

/// A numeric column of a table in one chunk, read by row (`None` for null).
pub(crate) struct NumRows<T: PolarsNumericType> {
    arr: PrimitiveArray<T::Native>,
}

impl<T: PolarsNumericType> NumRows<T> {
    pub(crate) fn of(table: &DataFrame, name: &str) -> Result<NumRows<T>, IngestError> {
        let column = table
            .column(name)
            .map_err(pe(name))?
            .strict_cast(&T::get_static_dtype())
            .map_err(pe(name))?;
        let ca: &ChunkedArray<T> = column.as_materialized_series().as_ref().as_ref();
        let ca = ca.rechunk();
        let arr = match ca.downcast_iter().next() {
            Some(arr) => arr.clone(),
            None => {
                PrimitiveArray::new_empty(T::get_static_dtype().to_arrow(CompatLevel::newest()))
            }
        };
        Ok(NumRows { arr })
    }

    pub(crate) fn get(&self, i: usize) -> Option<T::Native> {
        self.arr.is_valid(i).then(|| self.arr.value(i))
    }

    /// The values by row (a null row's value is unspecified).
    pub(crate) fn values(&self) -> &[T::Native] {
        self.arr.values()
    }
}

/// Expands the value counts of `table` into `samples`.
fn add_samples(samples: &mut ConfidenceSamples, table: &DataFrame) -> Result<(), IngestError> {
    let class_column = StrColumn::of(table, "action_class")?;
    let classes = class_column.rows();
    let periods = NumRows::<Int32Type>::of(table, "period")?;
    let values = NumRows::<Float64Type>::of(table, "confidence")?;
    let counts = NumRows::<UInt64Type>::of(table, "n")?;
    // The first row of the current run of one (class, period), and its samples.
    let mut current: Option<(usize, i32, Vec<f64>)> = None;
    let mut flush = |cur: Option<(usize, i32, Vec<f64>)>| {
        if let Some((row, period, v)) = cur {
            let key = (
                classes.get(row).unwrap_or_default().to_string(),
                Period { start: period },
            );
            // A key's rows are one run in a canonical table: its samples move in whole.
            match samples.entry(key) {
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(v);
                }
                std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().extend(v),
            }
        }
    };
    for i in 0..table.height() {
        let (true, Some(period), Some(value), Some(n)) = (
            classes.is_valid(i),
            periods.get(i),
            values.get(i),
            counts.get(i),
        ) else {
            continue;
        };
        let key_matches =
            matches!(&current, Some((row, p, _)) if *p == period && classes.same(*row, i));
        if !key_matches {
            flush(current.take());
            current = Some((i, period, Vec::new()));
        }
        if let Some((_, _, v)) = current.as_mut() {
            v.extend(std::iter::repeat_n(value, n as usize));
        }
    }
    flush(current);
    Ok(())
}

/// Reads a long statistics table (as built by [`StatsSet::build`] or produced by an SQL engine)
/// into [`SuffStats`]. Unknown criticality or outcome spellings are errors naming the row.
pub fn stats_from_table(table: &DataFrame) -> Result<SuffStats, IngestError> {
    // One chunk per column, so that reading row i is direct.
    let mut table = table.clone();
    table.rechunk_mut_par();
    let table = &table;
    let err = pe;
    let get = |name: &str| table.column(name).map_err(err("statistics table"));
    let class = get("action_class")?
        .str()
        .map_err(err("action_class"))?
        .clone();
    let period = get("period")?
        .cast(&DataType::Int32)
        .map_err(err("period"))?;
    let period = period.i32().map_err(err("period"))?.clone();
    let version = get("model_version")?
        .str()
        .map_err(err("model_version"))?
        .clone();
    let crit = get("asset_criticality")?
        .str()
        .map_err(err("asset_criticality"))?
        .clone();
    let privileged = get("privileged")?
        .bool()
        .map_err(err("privileged"))?
        .clone();
    let cal = get("cal_bin")?
        .cast(&DataType::Int32)
        .map_err(err("cal_bin"))?;
    let cal = cal.i32().map_err(err("cal_bin"))?.clone();
    let fine = get("fine_bin")?
        .cast(&DataType::Int32)
        .map_err(err("fine_bin"))?;
    let fine = fine.i32().map_err(err("fine_bin"))?.clone();
    let outcome = get("outcome")?
        .cast(&DataType::Int32)
        .map_err(err("outcome"))?;
    let outcome = outcome.i32().map_err(err("outcome"))?.clone();
    let executed = get("executed")?.bool().map_err(err("executed"))?.clone();
    let n = get("n")?.cast(&DataType::UInt64).map_err(err("n"))?;
    let n = n.u64().map_err(err("n"))?.clone();
    // Fixed-point sums (see the module docs) back to confidence units.
    let sums: Vec<Float64Chunked> = ["sum_conf", "sum_conf2", "sum_conf3", "sum_conf4"]
        .iter()
        .map(|name| {
            let fixed = get(name)?.cast(&DataType::Int64).map_err(err(name))?;
            let units = fixed
                .cast(&DataType::Float64)
                .map_err(err(name))?
                .as_materialized_series()
                .clone()
                / FIXED_SCALE;
            units.f64().map_err(err(name)).cloned()
        })
        .collect::<Result<_, _>>()?;
    let mut stats = SuffStats::default();
    for i in 0..table.height() {
        let bad = |what: &str| IngestError::Polars {
            context: format!("statistics table row {i}"),
            source: PolarsError::ComputeError(format!("invalid or null {what}").into()),
        };
        let key = CellKey {
            action_class: class.get(i).ok_or_else(|| bad("action_class"))?.to_string(),
            period: Period {
                start: period.get(i).ok_or_else(|| bad("period"))?,
            },
            model_version: version
                .get(i)
                .ok_or_else(|| bad("model_version"))?
                .to_string(),
            criticality: crit
                .get(i)
                .and_then(Criticality::parse)
                .ok_or_else(|| bad("asset_criticality"))?,
            privileged: privileged.get(i).ok_or_else(|| bad("privileged"))?,
        };
        let outcome = match outcome.get(i) {
            Some(0) => Outcome::Approve,
            Some(1) => Outcome::Override,
            Some(2) => Outcome::Reject,
            Some(3) => Outcome::Timeout,
            Some(4) => Outcome::Unreviewed,
            _ => return Err(bad("outcome (0..4)")),
        };
        let cal_bin = cal
            .get(i)
            .filter(|b| (0..10).contains(b))
            .ok_or_else(|| bad("cal_bin (0..9)"))? as u8;
        let fine_bin = fine
            .get(i)
            .filter(|b| (0..100).contains(b))
            .ok_or_else(|| bad("fine_bin (0..99)"))? as u8;
        let row = StatRow {
            cal_bin,
            fine_bin,
            outcome,
            executed: executed.get(i).unwrap_or(false),
            n: n.get(i).ok_or_else(|| bad("n"))?,
            sum_conf: sums[0].get(i).unwrap_or(0.0),
            sum_conf2: sums[1].get(i).unwrap_or(0.0),
            sum_conf3: sums[2].get(i).unwrap_or(0.0),
            sum_conf4: sums[3].get(i).unwrap_or(0.0),
        };
        stats.add_row(key, &row);
    }
    Ok(stats)
}

pub(crate) mod build;
mod radix;
pub mod signals;
pub mod store;

pub use store::StatsSet;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_samples_expand_the_counts_of_strings_and_of_categories_alike() {
        let df = df!(
            "period" => [1i32, 1, 1, 1, 2, 2],
            "action_class" => ["a", "a", "b", "b", "a", "a-class-name-over-12-bytes"],
            "confidence" => [0.5, 0.7, 0.1, 0.2, 0.3, 0.9],
            "n" => [2u64, 1, 1, 3, 1, 1],
        )
        .unwrap();
        let key = |c: &str, p: i32| (c.to_string(), Period { start: p });
        let want: ConfidenceSamples = [
            (key("a", 1), vec![0.5, 0.5, 0.7]),
            (key("b", 1), vec![0.1, 0.2, 0.2, 0.2]),
            (key("a", 2), vec![0.3]),
            (key("a-class-name-over-12-bytes", 2), vec![0.9]),
        ]
        .into_iter()
        .collect();
        for table in [
            df.clone(),
            crate::test_data::as_categories(&df, &["action_class"]),
        ] {
            let mut samples = ConfidenceSamples::new();
            add_samples(&mut samples, &table).unwrap();
            assert_eq!(samples, want, "{table}");
        }
    }
}
