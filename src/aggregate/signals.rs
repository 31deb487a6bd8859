//! The aggregate stage's second pass: the inputs of the SOC signals that the cell statistics
//! cannot carry.
//!
//! - **daily**: per class and UTC day, volume, privileged-or-critical count, confidence sum,
//!   reviewed and disagreeing counts, and target concentration (distinct targets, the top
//!   target's count, Σ count², decisions on targets first seen that day) for the manipulation
//!   signature (`readiness_metrics::manipulation`);
//! - **reasoning**: per class and model version, decisions citing at least one invented or stale
//!   ATT&CK ID (`readiness_metrics::reasoning`), and the most cited such IDs;
//! - **oversight**: per class and period, and per analyst and period, review counts, time from
//!   decision to review (median, p90), timeouts and approvals faster than a plausible review.

use std::collections::BTreeMap;
use std::ops::Range;

use polars::prelude::*;
use readiness_metrics::manipulation::DayCounts;
use readiness_metrics::reasoning::{normalise_id, AttackCatalog, ReasoningCounts};

use super::build::{dense_fits, Codes, Map};
use super::{NumRows, StatsSet};
use crate::ingest::{CollectStreaming, IngestError};
use crate::ingest::{StrColumn, StrRows};

fn pe(context: &str) -> impl FnOnce(PolarsError) -> IngestError {
    let context = context.to_string();
    move |source| IngestError::Polars { context, source }
}

/// A cited ID that is not current, with how often one model version cited it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CitedId {
    pub model_version: String,
    pub technique_id: String,
    /// `unknown` or `stale`.
    pub status: &'static str,
    pub replaced_by: Option<String>,
    pub decisions: u64,
}

/// The signal inputs.
#[derive(Clone, Debug, Default)]
pub struct SignalTables {
    /// Review load per class and period.
    pub oversight: Vec<OversightRow>,
    /// Review load per analyst and period.
    pub analysts: Vec<AnalystRow>,
    /// Per class, its days in order.
    pub daily: BTreeMap<String, Vec<DayCounts>>,
    /// Per (class, model version).
    pub reasoning: BTreeMap<(String, String), ReasoningCounts>,
    /// Unknown and stale IDs by model version, most cited first.
    pub cited: Vec<CitedId>,
}

fn u64_col(df: &DataFrame, name: &str) -> Result<Vec<u64>, IngestError> {
    let c = df
        .column(name)
        .map_err(pe(name))?
        .cast(&DataType::UInt64)
        .map_err(pe(name))?;
    Ok(c.u64()
        .map_err(pe(name))?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect())
}

#[cfg(test)]
fn f64_col(df: &DataFrame, name: &str) -> Result<Vec<f64>, IngestError> {
    let c = df
        .column(name)
        .map_err(pe(name))?
        .cast(&DataType::Float64)
        .map_err(pe(name))?;
    Ok(c.f64()
        .map_err(pe(name))?
        .iter()
        .map(|v| v.unwrap_or(0.0))
        .collect())
}

fn str_col(df: &DataFrame, name: &str) -> Result<Vec<String>, IngestError> {
    let c = df.column(name).map_err(pe(name))?;
    Ok(c.str()
        .map_err(pe(name))?
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect())
}

/// One class's day in [`daily_counts`].
#[derive(Default)]
struct DayAcc {
    n: u64,
    n_priv_crit: u64,
    sum_conf: i64,
    n_reviewed: u64,
    n_disagree: u64,
    n_with_target: u64,
    n_targets: u64,
    top_target: u64,
    sum_sq_targets: f64,
    n_new_target: u64,
}

impl DayAcc {
    /// Adds `other`'s rows. Counts wrap on overflow as polars' sums did; Σ count² is summed in
    /// floating point, as the query did (exact below 2^53).
    fn add(&mut self, other: &DayAcc) {
        self.n = self.n.wrapping_add(other.n);
        self.n_priv_crit = self.n_priv_crit.wrapping_add(other.n_priv_crit);
        self.sum_conf = self.sum_conf.wrapping_add(other.sum_conf);
        self.n_reviewed = self.n_reviewed.wrapping_add(other.n_reviewed);
        self.n_disagree = self.n_disagree.wrapping_add(other.n_disagree);
        self.n_with_target = self.n_with_target.wrapping_add(other.n_with_target);
        self.n_targets += other.n_targets;
        self.top_target = self.top_target.max(other.top_target);
        self.sum_sq_targets += other.sum_sq_targets;
        self.n_new_target = self.n_new_target.wrapping_add(other.n_new_target);
    }
}

/// Per class, its days in order, from the `daily` statistics: volumes summed over the day's
/// targets, and the target concentration (distinct targets, the top target's count, Σ count²,
/// decisions on targets first seen that day), as the group-bys and the join on the strings
/// gave them (kept in the tests as the reference). Summed over the classes' and targets' codes:
/// each target string is hashed once (less where the codes' cache of recent views answers),
/// where the group-bys and the join hashed it three times (at 10^8 decisions, 7 million rows).
fn daily_counts(daily: &DataFrame) -> Result<BTreeMap<String, Vec<DayCounts>>, IngestError> {
    // The table's 4 bytes a slot are then at most 16 bytes a row (82 MiB for 7 million rows at
    // 10^8 decisions; the rows' own columns take 52 bytes a row here): unlike a map, it is
    // walked in order within each run of one class and day, the targets coded in byte order.
    // At 10^8 the decoding took 3.7 s with it, 4.7 s with a map.
    daily_counts_in(daily, u64::MAX)
}

/// [`daily_counts`], the first days in a table of (classes + 1) × (targets + 1) slots when that
/// is at most `dense_limit` (and not many more than the rows), else in a map.
fn daily_counts_in(
    daily: &DataFrame,
    dense_limit: u64,
) -> Result<BTreeMap<String, Vec<DayCounts>>, IngestError> {
    let column = |name: &str| daily.column(name).map_err(pe(name));
    for key in ["day", "action_class"] {
        if column(key)?.null_count() > 0 {
            return Err(pe(key)(PolarsError::ComputeError(
                "the daily statistics' keys may not be null".into(),
            )));
        }
    }
    let class = Codes::of_column(column("action_class")?).map_err(pe("action_class"))?;
    let target = Codes::of_column(column("target_entity")?).map_err(pe("target_entity"))?;
    let days: Vec<i32> = column("day")?
        .i32()
        .map_err(pe("day"))?
        .into_no_null_iter()
        .collect();
    // The measures as they are (read checks them: never null).
    let counts = |name: &str| NumRows::<UInt64Type>::of(daily, name);
    let (n, n_priv, n_rev, n_dis) = (
        counts("n")?,
        counts("n_priv_crit")?,
        counts("n_reviewed")?,
        counts("n_disagree")?,
    );
    let sum_conf = NumRows::<Int64Type>::of(daily, "sum_conf")?;
    let (n, n_priv, n_rev, n_dis, sum_conf) = (
        n.values(),
        n_priv.values(),
        n_rev.values(),
        n_dis.values(),
        sum_conf.values(),
    );
    // The first day of each (class, target).
    let width = target.len() + 1;
    let slots = (class.len() + 1).saturating_mul(width);
    let dense = dense_fits(slots as u64, days.len(), dense_limit);
    let slot = |i: usize| class.codes[i] as usize * width + target.codes[i] as usize;
    let mut first_dense: Vec<i32> = if dense {
        vec![i32::MAX; slots]
    } else {
        Vec::new()
    };
    let mut first_map: Map<usize, i32> = Map::default();
    for i in (0..days.len()).filter(|&i| target.codes[i] != 0) {
        let d = match dense {
            true => &mut first_dense[slot(i)],
            false => first_map.entry(slot(i)).or_insert(i32::MAX),
        };
        *d = (*d).min(days[i]);
    }
    let first = |i: usize| match dense {
        true => first_dense[slot(i)],
        false => first_map.get(&slot(i)).copied().unwrap_or(i32::MAX),
    };
    // The table is canonical (sorted by day, class and target), so each class and day is one
    // run of rows: summed apart, then added to its day (rows in any order add up the same).
    let mut per_day: BTreeMap<(u32, i32), DayAcc> = BTreeMap::new();
    let mut run: Option<((u32, i32), DayAcc)> = None;
    for i in 0..days.len() {
        let key = (class.codes[i], days[i]);
        let acc = match &mut run {
            Some((k, acc)) if *k == key => acc,
            _ => {
                if let Some((k, done)) = run.take() {
                    per_day.entry(k).or_default().add(&done);
                }
                &mut run.insert((key, DayAcc::default())).1
            }
        };
        // The row as a day of its own: its target's counts where it has one.
        let has_target = target.codes[i] != 0;
        let on_target = |x: u64| if has_target { x } else { 0 };
        acc.add(&DayAcc {
            n: n[i],
            n_priv_crit: n_priv[i],
            sum_conf: sum_conf[i],
            n_reviewed: n_rev[i],
            n_disagree: n_dis[i],
            n_with_target: on_target(n[i]),
            n_targets: on_target(1),
            top_target: on_target(n[i]),
            sum_sq_targets: on_target(n[i]) as f64 * on_target(n[i]) as f64,
            n_new_target: if has_target && first(i) == days[i] {
                n[i]
            } else {
                0
            },
        });
    }
    if let Some((k, done)) = run {
        per_day.entry(k).or_default().add(&done);
    }
    let mut out: BTreeMap<String, Vec<DayCounts>> = BTreeMap::new();
    for ((c, day), acc) in per_day {
        out.entry(class.value(c).to_string())
            .or_default()
            .push(DayCounts {
                day,
                n: acc.n,
                n_priv_crit: acc.n_priv_crit,
                sum_conf: acc.sum_conf as f64 / super::FIXED_SCALE,
                n_reviewed: acc.n_reviewed,
                n_disagree: acc.n_disagree,
                n_with_target: acc.n_with_target,
                n_targets: acc.n_targets,
                top_target: acc.top_target,
                sum_sq_targets: acc.sum_sq_targets,
                n_new_target: acc.n_new_target,
            });
    }
    Ok(out)
}

/// Decodes the signal inputs (daily volumes and targets, reasoning counts, the most cited
/// invented and stale IDs) from the statistics set.
pub fn signals(set: &StatsSet, catalog: &AttackCatalog) -> Result<SignalTables, IngestError> {
    let mut out = SignalTables {
        daily: daily_counts(&set.daily)?,
        ..SignalTables::default()
    };

    let reasoning = set
        .reasoning
        .clone()
        .lazy()
        .group_by([col("action_class"), col("model_version")])
        .agg([
            col("n_decisions").sum(),
            col("n_citing").sum(),
            col("n_unknown").sum(),
            col("n_stale").sum(),
        ])
        .sort(
            ["action_class", "model_version"],
            SortMultipleOptions::default(),
        )
        .collect_streaming()
        .map_err(pe("classifying cited ATT&CK IDs"))?;
    let rc = str_col(&reasoning, "action_class")?;
    let rv = str_col(&reasoning, "model_version")?;
    let rn = u64_col(&reasoning, "n_decisions")?;
    let rcit = u64_col(&reasoning, "n_citing")?;
    let ru = u64_col(&reasoning, "n_unknown")?;
    let rs = u64_col(&reasoning, "n_stale")?;
    for i in 0..reasoning.height() {
        out.reasoning.insert(
            (rc[i].clone(), rv[i].clone()),
            ReasoningCounts {
                n_decisions: rn[i],
                n_citing: rcit[i],
                n_unknown: ru[i],
                n_stale: rs[i],
            },
        );
    }
    let ids = set
        .cited
        .clone()
        .lazy()
        .group_by([col("model_version"), col("technique_id"), col("status")])
        .agg([col("decisions").sum()])
        .sort(
            ["decisions", "model_version", "technique_id"],
            SortMultipleOptions::default().with_order_descending_multi([true, false, false]),
        )
        .limit(200)
        .collect_streaming()
        .map_err(pe("counting invented and stale IDs"))?;
    let iv = str_col(&ids, "model_version")?;
    let it = str_col(&ids, "technique_id")?;
    let is = str_col(&ids, "status")?;
    let id_n = u64_col(&ids, "decisions")?;
    for i in 0..ids.height() {
        let status = if is[i] == "stale" { "stale" } else { "unknown" };
        let replaced_by = match catalog.status(&it[i]) {
            readiness_metrics::reasoning::TechniqueStatus::Stale { replaced_by } => replaced_by,
            _ => None,
        };
        out.cited.push(CitedId {
            model_version: iv[i].clone(),
            technique_id: normalise_id(&it[i]),
            status,
            replaced_by,
            decisions: id_n[i],
        });
    }
    Ok(out)
}

/// Review load of one class in one period (`metrics/oversight.parquet`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct OversightRow {
    pub action_class: String,
    pub period: readiness_metrics::Period,
    /// Verdict rows other than `timeout`.
    pub n_reviews: u64,
    /// Verdict rows `timeout`.
    pub n_timeouts: u64,
    /// Median and 90th percentile of the time from decision to review, seconds (reviews only).
    pub median_delay_s: Option<f64>,
    pub p90_delay_s: Option<f64>,
    /// Distinct analysts who reviewed.
    pub n_analysts: u64,
    /// Approvals, and approvals given faster than `run.rubber_stamp_seconds`.
    pub n_approvals: u64,
    pub n_fast_approvals: u64,
}

/// Review load of one analyst in one period (`metrics/oversight_analysts.parquet`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AnalystRow {
    pub analyst_id: String,
    pub period: readiness_metrics::Period,
    pub n_reviews: u64,
    pub n_approvals: u64,
    pub n_fast_approvals: u64,
    pub median_delay_s: Option<f64>,
}

/// The reviews' delays (µs) and counts of one `reviews` table, read in sorted slices: each
/// slice is a range of rows whose delays do not decrease (a run of one class, period, analyst
/// and verdict in the canonical table, which lists its delays in order). `cum` holds the
/// counts' running sums, so that a slice's count up to a delay is a binary search away. The
/// statistics set's tables are canonical, so a key has one slice per run; a table out of order
/// would still give the same quantiles, in more and shorter slices, more slowly.
struct Delays<'a> {
    delays: &'a [i64],
    /// `cum[i]`: the counts of rows `0..i` as read (a skipped row adds 0).
    cum: Vec<u64>,
}

impl Delays<'_> {
    /// The slices' count.
    fn count(&self, slices: &[Range<usize>]) -> u64 {
        slices
            .iter()
            .map(|s| self.cum[s.end] - self.cum[s.start])
            .sum()
    }

    /// The count of the slices' delays at or below `v`.
    fn count_at_most(&self, slices: &[Range<usize>], v: i64) -> u64 {
        slices
            .iter()
            .map(|s| {
                let below = self.delays[s.clone()].partition_point(|&d| d <= v);
                self.cum[s.start + below] - self.cum[s.start]
            })
            .sum()
    }

    /// The delay at 0-based rank `rank` of the slices' expanded sample (each delay repeated
    /// its count times): the least delay whose count at or below it exceeds `rank`, found by
    /// bisecting the delays' range (at most 64 steps, each a binary search per slice). `rank`
    /// must be below the slices' total count.
    fn select(&self, slices: &[Range<usize>], rank: u64) -> i64 {
        debug_assert!(
            rank < self.count(slices),
            "rank {rank} is not below the slices' count"
        );
        let (mut lo, mut hi) = slices.iter().fold((i64::MAX, i64::MIN), |(lo, hi), s| {
            (lo.min(self.delays[s.start]), hi.max(self.delays[s.end - 1]))
        });
        while lo < hi {
            let mid = ((i128::from(lo) + i128::from(hi)).div_euclid(2)) as i64;
            if self.count_at_most(slices, mid) > rank {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    /// Exact quantile with linear interpolation (as polars' `Linear`) of the slices' delays, in
    /// seconds: with N the total count and h = (N − 1)·q, the values at ranks ⌊h⌋ and ⌈h⌉ of
    /// the expanded sample, interpolated.
    fn quantile(&self, slices: &[Range<usize>], q: f64) -> Option<f64> {
        let total = self.count(slices);
        if total == 0 {
            return None;
        }
        let h = (total - 1) as f64 * q;
        let lo = h.floor() as u64;
        let hi = h.ceil() as u64;
        let seconds = |us: i64| us as f64 / 1e6;
        let a = seconds(self.select(slices, lo));
        Some(if lo == hi {
            a
        } else {
            let b = seconds(self.select(slices, hi));
            a + (h - lo as f64) * (b - a)
        })
    }
}

/// A run's verdict, as the load counts it.
#[derive(Clone, Copy, PartialEq)]
enum Verdict {
    Timeout,
    Approve,
    Other,
}

/// Running totals of one class or analyst in one period.
#[derive(Default)]
struct Load {
    n_reviews: u64,
    n_timeouts: u64,
    n_approvals: u64,
    n_fast: u64,
    analysts: std::collections::BTreeSet<String>,
    /// The rows of its reviews (not timeouts) in `reviews`, as sorted slices ([`Delays`]).
    slices: Vec<Range<usize>>,
}

/// Oversight load per class and period, and per analyst and period, from the `reviews` table
/// of the statistics set. Medians and percentiles are exact (linear interpolation): the table
/// keeps every distinct delay with its count. The table is read period by period, periods on
/// every core (every output row belongs to one period, so each period's rows are made apart);
/// consecutive rows of the same (class, period, analyst, verdict), as the sorted table has
/// them, are added up before they reach the per-class and per-analyst maps.
pub fn oversight(
    set: &StatsSet,
    rubber_stamp_seconds: f64,
) -> Result<(Vec<OversightRow>, Vec<AnalystRow>), IngestError> {
    let fast_us = (rubber_stamp_seconds * 1e6).round() as i64;
    let mut class_rows = Vec::new();
    let mut analyst_rows = Vec::new();
    for (c, a) in set.map_periods("reviews", |df| oversight_of(&df, fast_us))? {
        class_rows.extend(c);
        analyst_rows.extend(a);
    }
    class_rows.sort_by(|a: &OversightRow, b: &OversightRow| {
        (&a.action_class, a.period.start).cmp(&(&b.action_class, b.period.start))
    });
    analyst_rows.sort_by(|a: &AnalystRow, b: &AnalystRow| {
        (&a.analyst_id, a.period.start).cmp(&(&b.analyst_id, b.period.start))
    });
    Ok((class_rows, analyst_rows))
}

/// [`oversight`] of the rows of one period (or of several: the maps are keyed by period).
fn oversight_of(
    df: &DataFrame,
    fast_us: i64,
) -> Result<(Vec<OversightRow>, Vec<AnalystRow>), IngestError> {
    let (class_column, analyst_column, verdict_column) = (
        StrColumn::of(df, "action_class")?,
        StrColumn::of(df, "analyst_id")?,
        StrColumn::of(df, "verdict")?,
    );
    let classes = class_column.rows();
    let periods = NumRows::<Int32Type>::of(df, "period")?;
    let analysts = analyst_column.rows();
    let verdicts = verdict_column.rows();
    let delay_rows = NumRows::<Int64Type>::of(df, "delay_us")?;
    let counts = NumRows::<UInt64Type>::of(df, "n")?;
    let mut cum = Vec::with_capacity(df.height() + 1);
    cum.push(0u64);

    let mut by_class: BTreeMap<(String, i32), Load> = BTreeMap::new();
    let mut by_analyst: BTreeMap<(String, i32), Load> = BTreeMap::new();
    // The rows of one (class, period, analyst, verdict) are added up locally and flushed into
    // the two maps when the run ends, so the maps are touched once per run, not per row. A run
    // is named by its first row.
    let mut flush = |row: usize, period: i32, verdict: Verdict, acc: &mut Load| {
        let value = |ids: &StrRows, row: usize| ids.get(row).unwrap_or_default().to_string();
        let c = by_class.entry((value(&classes, row), period)).or_default();
        if verdict == Verdict::Timeout {
            c.n_timeouts += acc.n_timeouts;
            return;
        }
        c.n_reviews += acc.n_reviews;
        c.n_approvals += acc.n_approvals;
        c.n_fast += acc.n_fast;
        let analyst = value(&analysts, row);
        c.analysts.insert(analyst.clone());
        c.slices.extend_from_slice(&acc.slices);
        let a = by_analyst.entry((analyst, period)).or_default();
        a.n_reviews += acc.n_reviews;
        a.n_approvals += acc.n_approvals;
        a.n_fast += acc.n_fast;
        a.slices.append(&mut acc.slices);
    };
    // The current run: its first row, period and verdict (timeout, approve or other).
    let mut run: Option<(usize, i32, Verdict)> = None;
    let mut acc = Load::default();
    // The open slice of the run's reviews: its first row and its last row's delay. The run's
    // end, a row that is skipped, or a delay below the last one closes it.
    let mut slice: Option<(usize, i64)> = None;
    for i in 0..df.height() {
        let (true, Some(period), true, Some(spelling), Some(delay), Some(n)) = (
            classes.is_valid(i),
            periods.get(i),
            analysts.is_valid(i),
            verdicts.get(i),
            delay_rows.get(i),
            counts.get(i),
        ) else {
            cum.push(cum[i]);
            if let Some((first, _)) = slice.take() {
                acc.slices.push(first..i);
            }
            continue;
        };
        cum.push(cum[i] + n);
        let verdict = match run {
            Some((r, p, verdict))
                if p == period
                    && classes.same(r, i)
                    && analysts.same(r, i)
                    && verdicts.same(r, i) =>
            {
                verdict
            }
            _ => {
                if let Some((first, _)) = slice.take() {
                    acc.slices.push(first..i);
                }
                if let Some((r, p, verdict)) = run {
                    flush(r, p, verdict, &mut acc);
                }
                acc = Load::default();
                let verdict = match spelling {
                    "timeout" => Verdict::Timeout,
                    "approve" => Verdict::Approve,
                    _ => Verdict::Other,
                };
                run = Some((i, period, verdict));
                verdict
            }
        };
        if verdict == Verdict::Timeout {
            acc.n_timeouts += n;
            continue;
        }
        acc.n_reviews += n;
        if verdict == Verdict::Approve {
            acc.n_approvals += n;
            if delay < fast_us {
                acc.n_fast += n;
            }
        }
        slice = match slice {
            Some((first, last)) if delay >= last => Some((first, delay)),
            Some((first, _)) => {
                acc.slices.push(first..i);
                Some((i, delay))
            }
            None => Some((i, delay)),
        };
    }
    if let Some((first, _)) = slice {
        acc.slices.push(first..df.height());
    }
    if let Some((r, p, verdict)) = run {
        flush(r, p, verdict, &mut acc);
    }
    let delays = Delays {
        delays: delay_rows.values(),
        cum,
    };
    let class_rows = by_class
        .into_iter()
        .map(|((action_class, period), l)| OversightRow {
            action_class,
            period: readiness_metrics::Period { start: period },
            n_reviews: l.n_reviews,
            n_timeouts: l.n_timeouts,
            median_delay_s: delays.quantile(&l.slices, 0.5),
            p90_delay_s: delays.quantile(&l.slices, 0.9),
            n_analysts: l.analysts.len() as u64,
            n_approvals: l.n_approvals,
            n_fast_approvals: l.n_fast,
        })
        .collect();
    let analyst_rows = by_analyst
        .into_iter()
        .map(|((analyst_id, period), l)| AnalystRow {
            analyst_id,
            period: readiness_metrics::Period { start: period },
            n_reviews: l.n_reviews,
            n_approvals: l.n_approvals,
            n_fast_approvals: l.n_fast,
            median_delay_s: delays.quantile(&l.slices, 0.5),
        })
        .collect();
    Ok((class_rows, analyst_rows))
}

#[cfg(test)]
mod tests {
    use super::{daily_counts, daily_counts_in, oversight_of, Delays};
    use polars::prelude::*;
    use proptest::prelude::*;
    use readiness_metrics::manipulation::DayCounts;
    use std::collections::BTreeMap;
    use std::ops::Range;

    /// The daily signal inputs by polars queries over the strings (what `signals` ran before
    /// `daily_counts`): the reference.
    fn daily_by_query(daily: &DataFrame) -> BTreeMap<String, Vec<DayCounts>> {
        let per_target = daily
            .clone()
            .lazy()
            .filter(col("target_entity").is_not_null())
            .select([
                col("action_class"),
                col("day"),
                col("target_entity"),
                col("n").alias("c"),
            ]);
        let first_seen = per_target
            .clone()
            .group_by([col("action_class"), col("target_entity")])
            .agg([col("day").min().alias("first_day")]);
        let targets = per_target
            .join(
                first_seen,
                [col("action_class"), col("target_entity")],
                [col("action_class"), col("target_entity")],
                JoinArgs::new(JoinType::Inner),
            )
            .group_by([col("action_class"), col("day")])
            .agg([
                col("c").sum().alias("n_with_target"),
                len().cast(DataType::UInt64).alias("n_targets"),
                col("c").max().alias("top_target"),
                (col("c").cast(DataType::Float64) * col("c").cast(DataType::Float64))
                    .sum()
                    .alias("sum_sq_targets"),
                col("c")
                    .filter(col("day").eq(col("first_day")))
                    .sum()
                    .alias("n_new_target"),
            ]);
        let out = daily
            .clone()
            .lazy()
            .group_by([col("action_class"), col("day")])
            .agg([
                col("n").sum(),
                col("n_priv_crit").sum(),
                col("sum_conf").sum(),
                col("n_reviewed").sum(),
                col("n_disagree").sum(),
            ])
            .join(
                targets,
                [col("action_class"), col("day")],
                [col("action_class"), col("day")],
                JoinArgs::new(JoinType::Left),
            )
            .sort(["action_class", "day"], SortMultipleOptions::default())
            .collect()
            .unwrap();
        let u = |name: &str| super::u64_col(&out, name).unwrap();
        let f = |name: &str| super::f64_col(&out, name).unwrap();
        let classes = super::str_col(&out, "action_class").unwrap();
        let days: Vec<i32> = out
            .column("day")
            .unwrap()
            .i32()
            .unwrap()
            .into_no_null_iter()
            .collect();
        let (n, priv_crit, conf, rev, dis) = (
            u("n"),
            u("n_priv_crit"),
            f("sum_conf"),
            u("n_reviewed"),
            u("n_disagree"),
        );
        let (wt, nt, top, ssq, new) = (
            u("n_with_target"),
            u("n_targets"),
            u("top_target"),
            f("sum_sq_targets"),
            u("n_new_target"),
        );
        let mut map: BTreeMap<String, Vec<DayCounts>> = BTreeMap::new();
        for i in 0..out.height() {
            map.entry(classes[i].clone()).or_default().push(DayCounts {
                day: days[i],
                n: n[i],
                n_priv_crit: priv_crit[i],
                sum_conf: conf[i] / super::super::FIXED_SCALE,
                n_reviewed: rev[i],
                n_disagree: dis[i],
                n_with_target: wt[i],
                n_targets: nt[i],
                top_target: top[i],
                sum_sq_targets: ssq[i],
                n_new_target: new[i],
            });
        }
        map
    }

    /// A `daily` table: (day, class, target, n); the other measures derived from `n`.
    fn daily_table(rows: &[(i32, &str, Option<&str>, u64)]) -> DataFrame {
        df!(
            "day" => rows.iter().map(|r| r.0).collect::<Vec<i32>>(),
            "action_class" => rows.iter().map(|r| r.1).collect::<Vec<&str>>(),
            "target_entity" => rows.iter().map(|r| r.2).collect::<Vec<Option<&str>>>(),
            "n" => rows.iter().map(|r| r.3).collect::<Vec<u64>>(),
            "n_priv_crit" => rows.iter().map(|r| r.3 / 2).collect::<Vec<u64>>(),
            "sum_conf" => rows.iter().map(|r| r.3 as i64 * 3_000_000_000).collect::<Vec<i64>>(),
            "n_reviewed" => rows.iter().map(|r| r.3 / 3).collect::<Vec<u64>>(),
            "n_disagree" => rows.iter().map(|r| r.3 / 5).collect::<Vec<u64>>(),
        )
        .unwrap()
    }

    #[test]
    fn daily_counts_are_as_by_hand_and_equal_the_query_over_the_strings() {
        let long = "workstation-with-a-long-name-01";
        let rows = [
            (1, "a", Some("h1"), 2),
            (1, "a", Some(long), 3),
            (1, "a", None, 4),
            (2, "a", Some("h1"), 5),
            (2, "a", Some("h3"), 1),
            // h3 seen by class b first on day 1: still new for class a on day 2.
            (1, "b", Some("h3"), 7),
            // A class whose day has no target.
            (3, "c", None, 4),
        ];
        let got = daily_counts(&daily_table(&rows)).unwrap();
        // By hand, class a: day 1 has 9 decisions, 5 on 2 targets (top 3, Σ count² 4 + 9, both
        // new); day 2 has 6 on 2 targets (top 5, Σ 25 + 1, h3 new).
        let a = &got["a"];
        let summary = |d: &DayCounts| {
            (
                d.day,
                d.n,
                d.n_with_target,
                d.n_targets,
                d.top_target,
                d.sum_sq_targets,
                d.n_new_target,
            )
        };
        assert_eq!(summary(&a[0]), (1, 9, 5, 2, 3, 13.0, 5));
        assert_eq!(summary(&a[1]), (2, 6, 6, 2, 5, 26.0, 1));
        assert_eq!(got["b"][0].n_new_target, 7);
        assert_eq!(summary(&got["c"][0]), (3, 4, 0, 0, 0, 0.0, 0));
        assert_eq!(got, daily_by_query(&daily_table(&rows)));
        assert_eq!(daily_counts_in(&daily_table(&rows), 0).unwrap(), got);
        // Many rows: classes and targets from small pools (targets long and short, some
        // missing), days out of order, the same key never twice; as strings and as categories.
        let classes = ["isolate_host", "block_ip", "a"];
        let targets: Vec<String> = (0..40)
            .map(|t| match t % 3 {
                0 => format!("h{t}"),
                _ => format!("{long}-{t}"),
            })
            .collect();
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut seen = std::collections::BTreeSet::new();
        let mut many = Vec::new();
        while many.len() < 3_000 {
            let r = next();
            let day = (r % 61) as i32 - 20;
            let class = classes[(r >> 8) as usize % 3];
            let target = ((r >> 16) % 7 != 0).then(|| targets[(r >> 24) as usize % 40].as_str());
            if seen.insert((day, class, target)) {
                many.push((day, class, target, (r >> 40) % 50 + 1));
            }
        }
        let table = daily_table(&many);
        let want = daily_by_query(&table);
        assert_eq!(want.values().map(Vec::len).sum::<usize>(), 3 * 61);
        assert_eq!(daily_counts(&table).unwrap(), want);
        // The first days in a map instead of a table.
        assert_eq!(daily_counts_in(&table, 0).unwrap(), want);
        // Sorted as the statistics are (long runs of one class and day), and with a key twice
        // (each row counts, as in the query).
        let mut sorted = many.clone();
        sorted.sort();
        sorted.push(sorted[10]);
        let table = daily_table(&sorted);
        let want = daily_by_query(&table);
        assert_eq!(daily_counts(&table).unwrap(), want);
        assert_eq!(daily_counts_in(&table, 0).unwrap(), want);
        // Classes and targets as categories give what the query gives on the strings.
        let categories = DataType::from_categories(Categories::global());
        let cats = table
            .clone()
            .lazy()
            .with_columns([
                col("action_class").cast(categories.clone()),
                col("target_entity").cast(categories),
            ])
            .collect()
            .unwrap();
        assert_eq!(daily_counts(&cats).unwrap(), want);
        assert_eq!(daily_counts_in(&cats, 0).unwrap(), want);
        // A null key is refused.
        let mut nulls = daily_table(&rows);
        nulls
            .with_column(Column::new(
                "day".into(),
                [
                    Some(1i32),
                    None,
                    Some(1),
                    Some(2),
                    Some(2),
                    Some(1),
                    Some(3),
                ],
            ))
            .unwrap();
        assert!(daily_counts(&nulls).is_err());
    }

    /// A `reviews` row: class, period, analyst, verdict, delay (µs), count.
    type Review<'a> = (&'a str, i32, Option<&'a str>, &'a str, i64, u64);

    /// A `reviews` table of `rows`.
    fn reviews(rows: &[Review]) -> DataFrame {
        let loose: Vec<Loose> = rows
            .iter()
            .map(|&(c, p, a, v, d, n)| (c, p, a, v, Some(d), n))
            .collect();
        loose_table(&loose)
    }

    #[test]
    fn oversight_counts_runs_by_their_strings_however_the_table_is_stored() {
        let (class, long_a, long_b) = (
            "quarantine_mailbox",
            "analyst-long-identifier-1",
            "analyst-long-identifier-2",
        );
        let rows = [
            (class, 100, Some(long_a), "approve", 2_000_000, 2),
            (class, 100, Some(long_a), "approve", 4_000_000, 1),
            // Same length and prefix as `long_a`, another analyst.
            (class, 100, Some(long_b), "approve", 1_000_000, 1),
            (class, 100, None, "approve", 9_000_000, 5),
            (class, 100, Some("bo"), "override", 10_000_000, 1),
            (class, 100, Some(long_a), "timeout", 0, 3),
        ];
        let whole = reviews(&rows);
        // The same rows in three chunks, each with its own string buffers: equal strings in
        // different chunks have different views.
        let mut chunked = reviews(&rows[..1]);
        chunked.vstack_mut(&reviews(&rows[1..3])).unwrap();
        chunked.vstack_mut(&reviews(&rows[3..])).unwrap();
        assert!(chunked.first_col_n_chunks() > 1);
        let a = oversight_of(&whole, 3_000_000).unwrap();
        let b = oversight_of(&chunked, 3_000_000).unwrap();
        assert_eq!(a, b);
        let (classes, analysts) = a;
        // By hand: reviews 2 + 1 + 1 + 1 = 5 (the null analyst's row is skipped), timeouts 3;
        // approvals 4, of which faster than 3 s: 2 + 1; delays 1, 2, 2, 4, 10 s → median 2,
        // p90 at h = 3.6: 4 + 0.6·(10 − 4) = 7.6.
        assert_eq!(classes.len(), 1);
        let c = &classes[0];
        assert_eq!(
            (c.n_reviews, c.n_timeouts, c.n_approvals, c.n_fast_approvals),
            (5, 3, 4, 3)
        );
        assert_eq!(c.n_analysts, 3);
        assert_eq!(c.median_delay_s, Some(2.0));
        assert!((c.p90_delay_s.unwrap() - 7.6).abs() < 1e-12);
        let per: Vec<(&str, u64, Option<f64>)> = analysts
            .iter()
            .map(|r| (r.analyst_id.as_str(), r.n_reviews, r.median_delay_s))
            .collect();
        assert_eq!(
            per,
            [
                (long_a, 3, Some(2.0)),
                (long_b, 1, Some(1.0)),
                ("bo", 1, Some(10.0)),
            ]
        );
    }

    #[test]
    fn oversight_reads_unsorted_runs_and_skips_rows_without_a_delay() {
        // One analyst's approvals of one class: delays out of order, and a row without a delay
        // (skipped, with its count) between them.
        let table = df!(
            "action_class" => ["c"; 6],
            "period" => [7; 6],
            "analyst_id" => ["a"; 6],
            "verdict" => ["approve"; 6],
            "delay_us" => [Some(5_000_000i64), Some(3_000_000), None, Some(1_000_000), Some(8_000_000), Some(2_000_000)],
            "n" => [1u64, 2, 4, 1, 1, 0],
        )
        .unwrap();
        let (classes, analysts) = oversight_of(&table, 4_000_000).unwrap();
        // By hand: the expanded delays 1, 3, 3, 5, 8 s (the last row counts 0): median 3; p90 at
        // h = 4·0.9 = 3.6: 5 + 0.6·(8 − 5) = 6.8. Faster than 4 s: 2 + 1 (the 0-count row adds
        // nothing).
        let c = &classes[0];
        assert_eq!((c.n_reviews, c.n_approvals, c.n_fast_approvals), (5, 5, 3));
        assert_eq!(c.median_delay_s, Some(3.0));
        assert!((c.p90_delay_s.unwrap() - 6.8).abs() < 1e-12);
        assert_eq!(analysts[0].median_delay_s, Some(3.0));
    }

    /// A `reviews` row that may hold nulls: class, period, analyst, verdict, delay, count.
    type Loose<'a> = (&'a str, i32, Option<&'a str>, &'a str, Option<i64>, u64);

    /// Oversight as its definition reads, row by row (every row with all six values; the
    /// delays expanded into a sample per class and per analyst).
    fn oversight_by_definition<'a>(
        rows: &[Loose<'a>],
        fast_us: i64,
    ) -> (Vec<super::OversightRow>, Vec<super::AnalystRow>) {
        use std::collections::{BTreeMap, BTreeSet};
        #[derive(Default)]
        struct L<'s> {
            reviews: u64,
            timeouts: u64,
            approvals: u64,
            fast: u64,
            analysts: BTreeSet<&'s str>,
            delays: Vec<(i64, u64)>,
        }
        let (mut by_class, mut by_analyst) = (BTreeMap::new(), BTreeMap::new());
        for &(class, period, analyst, verdict, delay, n) in rows {
            let (Some(analyst), Some(delay)) = (analyst, delay) else {
                continue;
            };
            let c: &mut L = by_class.entry((class, period)).or_default();
            if verdict == "timeout" {
                c.timeouts += n;
                continue;
            }
            let a: &mut L = by_analyst.entry((analyst, period)).or_default();
            c.analysts.insert(analyst);
            for l in [c, a] {
                l.reviews += n;
                if verdict == "approve" {
                    l.approvals += n;
                    l.fast += if delay < fast_us { n } else { 0 };
                }
                l.delays.push((delay, n));
            }
        }
        let classes = by_class
            .into_iter()
            .map(|((class, period), l)| super::OversightRow {
                action_class: class.to_string(),
                period: readiness_metrics::Period { start: period },
                n_reviews: l.reviews,
                n_timeouts: l.timeouts,
                median_delay_s: expanded_quantile(&l.delays, 0.5),
                p90_delay_s: expanded_quantile(&l.delays, 0.9),
                n_analysts: l.analysts.len() as u64,
                n_approvals: l.approvals,
                n_fast_approvals: l.fast,
            })
            .collect();
        let analysts = by_analyst
            .into_iter()
            .map(|((analyst, period), l)| super::AnalystRow {
                analyst_id: analyst.to_string(),
                period: readiness_metrics::Period { start: period },
                n_reviews: l.reviews,
                n_approvals: l.approvals,
                n_fast_approvals: l.fast,
                median_delay_s: expanded_quantile(&l.delays, 0.5),
            })
            .collect();
        (classes, analysts)
    }

    fn loose_table(rows: &[Loose]) -> DataFrame {
        df!(
            "action_class" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "period" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            "analyst_id" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            "verdict" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            "delay_us" => rows.iter().map(|r| r.4).collect::<Vec<_>>(),
            "n" => rows.iter().map(|r| r.5).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        /// Random `reviews` tables (keys interleaved or in runs, delays in and out of order,
        /// rows without an analyst or a delay, zero counts, timeouts), whole and in three
        /// chunks, against the definition.
        #[test]
        fn oversight_follows_its_definition(
            raw in proptest::collection::vec(
                (
                    0usize..2,
                    0i32..2,
                    proptest::option::weighted(0.9, 0usize..3),
                    0usize..3,
                    proptest::option::weighted(0.9, -3i64..40),
                    0u64..3,
                ),
                0..60,
            ),
            sorted in any::<bool>(),
            cuts in (0usize..60, 0usize..60),
        ) {
            let mut raw = raw;
            if sorted {
                raw.sort();
            }
            let rows: Vec<Loose> = raw
                .iter()
                .map(|&(c, p, a, v, d, n)| {
                    (
                        ["c1", "c2"][c],
                        p,
                        a.map(|a| ["analyst-long-name-1", "analyst-long-name-2", "a3"][a]),
                        ["approve", "override", "timeout"][v],
                        d.map(|d| d * 1_000_000),
                        n,
                    )
                })
                .collect();
            let want = oversight_by_definition(&rows, 10_000_000);
            prop_assert_eq!(&oversight_of(&loose_table(&rows), 10_000_000).unwrap(), &want);
            let (a, b) = (cuts.0.min(cuts.1).min(rows.len()), cuts.0.max(cuts.1).min(rows.len()));
            let mut chunked = loose_table(&rows[..a]);
            chunked.vstack_mut(&loose_table(&rows[a..b])).unwrap();
            chunked.vstack_mut(&loose_table(&rows[b..])).unwrap();
            prop_assert_eq!(&oversight_of(&chunked, 10_000_000).unwrap(), &want);
            // The classes, analysts (some null) and verdicts as the categories the engine
            // builds the table with.
            let cats = crate::test_data::as_categories(
                &loose_table(&rows),
                &["action_class", "analyst_id", "verdict"],
            );
            prop_assert_eq!(&oversight_of(&cats, 10_000_000).unwrap(), &want);
        }
    }

    /// The quantile of the expanded, sorted sample, as the definition reads.
    fn expanded_quantile(pairs: &[(i64, u64)], q: f64) -> Option<f64> {
        let mut all: Vec<i64> = pairs
            .iter()
            .flat_map(|&(v, n)| std::iter::repeat_n(v, n as usize))
            .collect();
        all.sort_unstable();
        let h = (all.len().checked_sub(1)?) as f64 * q;
        let (a, b) = (
            all[h.floor() as usize] as f64 / 1e6,
            all[h.ceil() as usize] as f64 / 1e6,
        );
        Some(a + (h - h.floor()) * (b - a))
    }

    /// The quantile of `pairs` (delay, count) read as [`oversight_of`] reads a table: in
    /// slices cut wherever a delay is below the one before.
    fn sliced_quantile(pairs: &[(i64, u64)], q: f64) -> Option<f64> {
        let (delays, cum, slices) = sliced(pairs);
        Delays {
            delays: &delays,
            cum,
        }
        .quantile(&slices, q)
    }

    fn sliced(pairs: &[(i64, u64)]) -> (Vec<i64>, Vec<u64>, Vec<Range<usize>>) {
        let delays: Vec<i64> = pairs.iter().map(|p| p.0).collect();
        let mut cum = vec![0u64];
        for p in pairs {
            cum.push(cum.last().unwrap() + p.1);
        }
        let mut slices = Vec::new();
        let mut first = 0;
        for i in 1..=pairs.len() {
            if i == pairs.len() || delays[i] < delays[i - 1] {
                slices.push(first..i);
                first = i;
            }
        }
        (delays, cum, slices)
    }

    #[test]
    fn delay_quantiles_match_the_expanded_sample() {
        // Expanded (seconds): 1, 1, 2, 5, 5, 5, 9 (n = 7). By hand, h = (n − 1)·q: median h = 3
        // → 5; p90 h = 5.4 → x₅ + 0.4·(x₆ − x₅) = 5 + 0.4·4 = 6.6.
        let pairs = [
            (9_000_000, 1),
            (2_000_000, 1),
            (5_000_000, 3),
            (1_000_000, 2),
        ];
        assert_eq!(sliced(&pairs).2.len(), 3, "three sorted slices");
        assert_eq!(sliced_quantile(&pairs, 0.5), Some(5.0));
        assert!((sliced_quantile(&pairs, 0.9).unwrap() - 6.6).abs() < 1e-12);
        // Even count: 1, 3 → median 2.
        assert_eq!(
            sliced_quantile(&[(3_000_000, 1), (1_000_000, 1)], 0.5),
            Some(2.0)
        );
        assert_eq!(sliced_quantile(&[], 0.5), None);
        // Zero counts hold no rank.
        assert_eq!(
            sliced_quantile(&[(7, 0), (4_000_000, 1), (8, 0)], 0.5),
            Some(4.0)
        );
        // The bisection spans the whole range of delays without overflowing: ranks 0 and 1 of
        // (−2^63, 2^63 − 1).
        let (lo, hi) = (i64::MIN, i64::MAX);
        let (delays, cum, slices) = sliced(&[(lo, 1), (hi, 1)]);
        let d = Delays {
            delays: &delays,
            cum,
        };
        assert_eq!((d.select(&slices, 0), d.select(&slices, 1)), (lo, hi));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Every rank of a sample with repeated values and zero counts, read in sorted slices
        /// (the pairs sorted in runs of one length per case, then cut wherever a delay falls),
        /// against the expanded, sorted sample.
        #[test]
        fn selection_finds_every_rank(
            pairs in proptest::collection::vec((-50i64..50, 0u64..4), 0..120),
            sorted_runs in 1usize..40,
        ) {
            let mut pairs = pairs;
            for run in pairs.chunks_mut(sorted_runs) {
                run.sort_unstable();
            }
            let mut all: Vec<i64> = pairs
                .iter()
                .flat_map(|&(v, n)| std::iter::repeat_n(v, n as usize))
                .collect();
            all.sort_unstable();
            let (delays, cum, slices) = sliced(&pairs);
            let d = Delays { delays: &delays, cum };
            for (rank, &want) in all.iter().enumerate() {
                prop_assert_eq!(d.select(&slices, rank as u64), want);
            }
            for q in [0.0, 0.1, 0.5, 0.9, 1.0] {
                prop_assert_eq!(d.quantile(&slices, q), expanded_quantile(&pairs, q));
            }
        }
    }
}
