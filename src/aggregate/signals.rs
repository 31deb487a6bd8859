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

use polars::prelude::*;
use readiness_metrics::manipulation::DayCounts;
use readiness_metrics::reasoning::{normalise_id, AttackCatalog, ReasoningCounts};

use super::StatsSet;
use crate::ingest::{CollectStreaming, IngestError};

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

/// Decodes the signal inputs (daily volumes and targets, reasoning counts, the most cited
/// invented and stale IDs) from the statistics set.
pub fn signals(set: &StatsSet, catalog: &AttackCatalog) -> Result<SignalTables, IngestError> {
    let per_target = set
        .daily
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
    let daily = set
        .daily
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
        .collect_streaming()
        .map_err(pe("aggregating daily volumes"))?;

    let mut out = SignalTables::default();
    let classes = str_col(&daily, "action_class")?;
    let days: Vec<i32> = daily
        .column("day")
        .map_err(pe("day"))?
        .i32()
        .map_err(pe("day"))?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect();
    let n = u64_col(&daily, "n")?;
    let n_priv = u64_col(&daily, "n_priv_crit")?;
    let sum_conf: Vec<f64> = f64_col(&daily, "sum_conf")?
        .into_iter()
        .map(|x| x / super::FIXED_SCALE)
        .collect();
    let n_rev = u64_col(&daily, "n_reviewed")?;
    let n_dis = u64_col(&daily, "n_disagree")?;
    let n_wt = u64_col(&daily, "n_with_target")?;
    let n_t = u64_col(&daily, "n_targets")?;
    let top = u64_col(&daily, "top_target")?;
    let ssq = f64_col(&daily, "sum_sq_targets")?;
    let n_new = u64_col(&daily, "n_new_target")?;
    for i in 0..daily.height() {
        out.daily
            .entry(classes[i].clone())
            .or_default()
            .push(DayCounts {
                day: days[i],
                n: n[i],
                n_priv_crit: n_priv[i],
                sum_conf: sum_conf[i],
                n_reviewed: n_rev[i],
                n_disagree: n_dis[i],
                n_with_target: n_wt[i],
                n_targets: n_t[i],
                top_target: top[i],
                sum_sq_targets: ssq[i],
                n_new_target: n_new[i],
            });
    }

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

fn periods_col(df: &DataFrame) -> Result<Vec<readiness_metrics::Period>, IngestError> {
    let c = df
        .column("period")
        .map_err(pe("period"))?
        .cast(&DataType::Int32)
        .map_err(pe("period"))?;
    Ok(c.i32()
        .map_err(pe("period"))?
        .iter()
        .map(|v| readiness_metrics::Period {
            start: v.unwrap_or(0),
        })
        .collect())
}

/// Exact quantile with linear interpolation (as polars' `Linear`) of the values of sorted
/// (value, count) pairs.
fn weighted_quantile(pairs: &[(f64, u64)], q: f64) -> Option<f64> {
    let total: u64 = pairs.iter().map(|p| p.1).sum();
    if total == 0 {
        return None;
    }
    let h = (total - 1) as f64 * q;
    let lo = h.floor() as u64;
    let hi = h.ceil() as u64;
    let at = |idx: u64| {
        let mut seen = 0u64;
        for (v, n) in pairs {
            seen += n;
            if idx < seen {
                return *v;
            }
        }
        pairs.last().map(|p| p.0).unwrap_or(f64::NAN)
    };
    let (a, b) = (at(lo), at(hi));
    Some(if lo == hi {
        a
    } else {
        a + (h - lo as f64) * (b - a)
    })
}

/// (key, period start) → (median, p90) of review delays, seconds.
type DelayQuantiles = BTreeMap<(String, i32), (Option<f64>, Option<f64>)>;

/// Median and p90 of review delays (seconds) per group of a table sorted by `keys` and
/// `delay_us`, with counts `n`.
fn delay_quantiles(df: &DataFrame, key: &str) -> Result<DelayQuantiles, IngestError> {
    let keys = str_col(df, key)?;
    let periods = periods_col(df)?;
    let delays = df
        .column("delay_us")
        .map_err(pe("delay_us"))?
        .i64()
        .map_err(pe("delay_us"))?
        .clone();
    let n = u64_col(df, "n")?;
    let mut out = BTreeMap::new();
    let mut start = 0;
    for i in 0..=df.height() {
        let boundary = i == df.height()
            || (i > start && (keys[i] != keys[start] || periods[i] != periods[start]));
        if boundary && i > start {
            let pairs: Vec<(f64, u64)> = (start..i)
                .map(|j| (delays.get(j).unwrap_or(0) as f64 / 1e6, n[j]))
                .collect();
            out.insert(
                (keys[start].clone(), periods[start].start),
                (
                    weighted_quantile(&pairs, 0.5),
                    weighted_quantile(&pairs, 0.9),
                ),
            );
            start = i;
        }
    }
    Ok(out)
}

/// Oversight load per class and period, and per analyst and period, from the `reviews` table
/// of the statistics set. Medians and percentiles are exact (linear interpolation): the table
/// keeps every distinct delay with its count.
pub fn oversight(
    set: &StatsSet,
    rubber_stamp_seconds: f64,
) -> Result<(Vec<OversightRow>, Vec<AnalystRow>), IngestError> {
    let fast_us = (rubber_stamp_seconds * 1e6).round() as i64;
    let rows = set.reviews.clone().lazy().with_columns([
        col("verdict").neq(lit("timeout")).alias("is_review"),
        col("verdict").eq(lit("approve")).alias("is_approve"),
    ]);
    let weighted = |e: Expr| {
        when(e)
            .then(col("n"))
            .otherwise(lit(0u64).cast(DataType::UInt64))
            .sum()
            .cast(DataType::UInt64)
    };
    let fast = col("is_approve").and(col("delay_us").lt(lit(fast_us)));
    let by_class = rows
        .clone()
        .group_by([col("action_class"), col("period")])
        .agg([
            weighted(col("is_review")).alias("n_reviews"),
            weighted(col("is_review").not()).alias("n_timeouts"),
            col("analyst_id")
                .filter(col("is_review"))
                .n_unique()
                .cast(DataType::UInt64)
                .alias("n_analysts"),
            weighted(col("is_approve")).alias("n_approvals"),
            weighted(fast.clone()).alias("n_fast_approvals"),
        ])
        .sort(["action_class", "period"], SortMultipleOptions::default())
        .collect_streaming()
        .map_err(pe("oversight per class"))?;
    let delays_by = |key: &str| {
        rows.clone()
            .filter(col("is_review"))
            .group_by([col(key), col("period"), col("delay_us")])
            .agg([col("n").sum()])
            .sort([key, "period", "delay_us"], SortMultipleOptions::default())
            .collect_streaming()
            .map_err(pe("review delays"))
    };
    let class_delays = delay_quantiles(&delays_by("action_class")?, "action_class")?;
    let by_analyst = rows
        .clone()
        .filter(col("is_review"))
        .group_by([col("analyst_id"), col("period")])
        .agg([
            col("n").sum().cast(DataType::UInt64).alias("n_reviews"),
            weighted(col("is_approve")).alias("n_approvals"),
            weighted(fast).alias("n_fast_approvals"),
        ])
        .sort(["analyst_id", "period"], SortMultipleOptions::default())
        .collect_streaming()
        .map_err(pe("oversight per analyst"))?;
    let analyst_delays = delay_quantiles(&delays_by("analyst_id")?, "analyst_id")?;

    let classes = str_col(&by_class, "action_class")?;
    let periods = periods_col(&by_class)?;
    let n_reviews = u64_col(&by_class, "n_reviews")?;
    let n_timeouts = u64_col(&by_class, "n_timeouts")?;
    let n_analysts = u64_col(&by_class, "n_analysts")?;
    let n_app = u64_col(&by_class, "n_approvals")?;
    let n_fast = u64_col(&by_class, "n_fast_approvals")?;
    let class_rows = (0..by_class.height())
        .map(|i| {
            let (median, p90) = class_delays
                .get(&(classes[i].clone(), periods[i].start))
                .copied()
                .unwrap_or((None, None));
            OversightRow {
                action_class: classes[i].clone(),
                period: periods[i],
                n_reviews: n_reviews[i],
                n_timeouts: n_timeouts[i],
                median_delay_s: median,
                p90_delay_s: p90,
                n_analysts: n_analysts[i],
                n_approvals: n_app[i],
                n_fast_approvals: n_fast[i],
            }
        })
        .collect();
    let analysts = str_col(&by_analyst, "analyst_id")?;
    let periods = periods_col(&by_analyst)?;
    let n_reviews = u64_col(&by_analyst, "n_reviews")?;
    let n_app = u64_col(&by_analyst, "n_approvals")?;
    let n_fast = u64_col(&by_analyst, "n_fast_approvals")?;
    let analyst_rows = (0..by_analyst.height())
        .map(|i| AnalystRow {
            analyst_id: analysts[i].clone(),
            period: periods[i],
            n_reviews: n_reviews[i],
            n_approvals: n_app[i],
            n_fast_approvals: n_fast[i],
            median_delay_s: analyst_delays
                .get(&(analysts[i].clone(), periods[i].start))
                .and_then(|d| d.0),
        })
        .collect();
    Ok((class_rows, analyst_rows))
}

#[cfg(test)]
mod tests {
    use super::weighted_quantile;

    #[test]
    fn weighted_quantiles_match_the_expanded_sample() {
        // Expanded: 1, 1, 2, 5, 5, 5, 9 (n = 7). By hand, h = (n − 1)·q: median h = 3 → 5;
        // p90 h = 5.4 → x₅ + 0.4·(x₆ − x₅) = 5 + 0.4·4 = 6.6.
        let pairs = [(1.0, 2), (2.0, 1), (5.0, 3), (9.0, 1)];
        assert_eq!(weighted_quantile(&pairs, 0.5), Some(5.0));
        assert!((weighted_quantile(&pairs, 0.9).unwrap() - 6.6).abs() < 1e-12);
        // Even count: 1, 3 → median 2.
        assert_eq!(weighted_quantile(&[(1.0, 1), (3.0, 1)], 0.5), Some(2.0));
        assert_eq!(weighted_quantile(&[], 0.5), None);
    }
}
