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

use crate::ingest::{CollectStreaming, IngestError, Ingested};

fn pe(context: &str) -> impl FnOnce(PolarsError) -> IngestError {
    let context = context.to_string();
    move |source| IngestError::Polars { context, source }
}

/// Microseconds per day.
const DAY_US: i64 = 86_400_000_000;

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

fn flag_sum(e: Expr) -> Expr {
    e.cast(DataType::UInt32).sum().cast(DataType::UInt64)
}

/// Builds the signal inputs from the validated decisions and their final verdicts. Daily
/// tables are built only for classes not in `unwatched` (the manipulation signature watches
/// high-impact and unowned classes; skipping the rest keeps the per-target pass small).
pub fn signals(
    ing: &Ingested,
    catalog: &AttackCatalog,
    unwatched: &[String],
) -> Result<SignalTables, IngestError> {
    let unwatched = lit(Series::new("unwatched".into(), unwatched)).implode(false);
    let high = Series::new("h".into(), ["high", "critical"]);
    let base = ing
        .decisions
        .clone()
        .lazy()
        .filter(col("action_class").is_in(unwatched, false).not())
        .select([
            col("action_class"),
            col("decided_us"),
            col("confidence"),
            col("privileged"),
            col("asset_criticality"),
            col("target_entity"),
            col("outcome"),
        ])
        .with_column(
            col("decided_us")
                .floor_div(lit(DAY_US))
                .cast(DataType::Int32)
                .alias("day"),
        );
    let per_target = base
        .clone()
        .filter(col("target_entity").is_not_null())
        .group_by([col("action_class"), col("day"), col("target_entity")])
        .agg([len().cast(DataType::UInt64).alias("c")]);
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
    let daily = base
        .group_by([col("action_class"), col("day")])
        .agg([
            len().cast(DataType::UInt64).alias("n"),
            flag_sum(
                col("privileged")
                    .or(col("asset_criticality").is_in(lit(high).implode(false), false)),
            )
            .alias("n_priv_crit"),
            super::fixed_sum(col("confidence")).alias("sum_conf"),
            flag_sum(col("outcome").lt(lit(3i32))).alias("n_reviewed"),
            flag_sum(
                col("outcome")
                    .eq(lit(1i32))
                    .or(col("outcome").eq(lit(2i32))),
            )
            .alias("n_disagree"),
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

    // Reasoning. Only the (few) non-current citations are grouped by decision; every
    // decision is counted once per class and version without exploding its list.
    let (stale_ids, current_ids): (Vec<&str>, Vec<&str>) = {
        let (stale, current): (Vec<_>, Vec<_>) = catalog.entries().partition(|(_, s)| *s);
        (
            stale.into_iter().map(|(id, _)| id).collect(),
            current.into_iter().map(|(id, _)| id).collect(),
        )
    };
    let stale_set = lit(Series::new("stale".into(), stale_ids)).implode(false);
    let current_set = lit(Series::new("current".into(), current_ids)).implode(false);
    let per_version = ing
        .decisions
        .clone()
        .lazy()
        .select([
            col("action_class"),
            col("model_version"),
            col("technique_ids").list().len().alias("n_ids"),
        ])
        .group_by([col("action_class"), col("model_version")])
        .agg([
            len().cast(DataType::UInt64).alias("n_decisions"),
            flag_sum(col("n_ids").fill_null(lit(0)).gt(lit(0))).alias("n_citing"),
        ]);
    let cited = ing
        .decisions
        .clone()
        .lazy()
        .select([
            col("action_class"),
            col("model_version"),
            col("technique_ids"),
        ])
        .with_row_index("__d", None)
        .explode(
            cols(["technique_ids"]),
            ExplodeOptions {
                empty_as_null: false,
                keep_nulls: false,
            },
        )
        .filter(col("technique_ids").is_not_null())
        .with_column(
            col("technique_ids")
                .str()
                .strip_chars(lit(NULL))
                .str()
                .to_uppercase()
                .alias("technique_id"),
        )
        .filter(col("technique_id").is_in(current_set, false).not())
        .with_column(
            when(col("technique_id").is_in(stale_set, false))
                .then(lit("stale"))
                .otherwise(lit("unknown"))
                .alias("status"),
        )
        .collect_streaming()
        .map_err(pe("reading cited ATT&CK IDs"))?
        .lazy();
    let per_decision = cited
        .clone()
        .group_by([col("action_class"), col("model_version")])
        .agg([
            col("__d")
                .filter(col("status").eq(lit("unknown")))
                .n_unique()
                .cast(DataType::UInt64)
                .alias("n_unknown"),
            col("__d")
                .filter(col("status").eq(lit("stale")))
                .n_unique()
                .cast(DataType::UInt64)
                .alias("n_stale"),
        ]);
    let reasoning = per_version
        .join(
            per_decision,
            [col("action_class"), col("model_version")],
            [col("action_class"), col("model_version")],
            JoinArgs::new(JoinType::Left),
        )
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
    let ids = cited
        .group_by([col("model_version"), col("technique_id"), col("status")])
        .agg([col("__d")
            .n_unique()
            .cast(DataType::UInt64)
            .alias("decisions")])
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

fn opt_f64_col(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>, IngestError> {
    let c = df
        .column(name)
        .map_err(pe(name))?
        .cast(&DataType::Float64)
        .map_err(pe(name))?;
    Ok(c.f64().map_err(pe(name))?.iter().collect())
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

/// Oversight load per class and period, and per analyst and period, from every valid verdict
/// row. Medians and percentiles are exact (linear interpolation), computed here because they
/// are not mergeable statistics.
pub fn oversight(
    ing: &Ingested,
    granularity: readiness_metrics::Granularity,
    rubber_stamp_seconds: f64,
) -> Result<(Vec<OversightRow>, Vec<AnalystRow>), IngestError> {
    let fast_us = (rubber_stamp_seconds * 1e6).round() as i64;
    let rows = ing
        .verdict_rows
        .clone()
        .lazy()
        .with_columns([
            super::period_expr(col("decided_us"), granularity).alias("period"),
            col("verdict").neq(lit("timeout")).alias("is_review"),
            col("verdict").eq(lit("approve")).alias("is_approve"),
            (col("delay_us").cast(DataType::Float64) / lit(1e6)).alias("delay_s"),
        ])
        .with_column(
            col("is_approve")
                .and(col("delay_us").lt(lit(fast_us)))
                .alias("is_fast"),
        );
    let reviews_only = |e: Expr| e.filter(col("is_review"));
    let by_class = rows
        .clone()
        .group_by([col("action_class"), col("period")])
        .agg([
            flag_sum(col("is_review")).alias("n_reviews"),
            flag_sum(col("is_review").not()).alias("n_timeouts"),
            reviews_only(col("delay_s"))
                .median()
                .alias("median_delay_s"),
            reviews_only(col("delay_s"))
                .quantile(lit(0.9), QuantileMethod::Linear)
                .alias("p90_delay_s"),
            reviews_only(col("analyst_id"))
                .n_unique()
                .cast(DataType::UInt64)
                .alias("n_analysts"),
            flag_sum(col("is_approve")).alias("n_approvals"),
            flag_sum(col("is_fast")).alias("n_fast_approvals"),
        ])
        .sort(["action_class", "period"], SortMultipleOptions::default())
        .collect_streaming()
        .map_err(pe("oversight per class"))?;
    let by_analyst = rows
        .filter(col("is_review"))
        .group_by([col("analyst_id"), col("period")])
        .agg([
            len().cast(DataType::UInt64).alias("n_reviews"),
            flag_sum(col("is_approve")).alias("n_approvals"),
            flag_sum(col("is_fast")).alias("n_fast_approvals"),
            col("delay_s").median().alias("median_delay_s"),
        ])
        .sort(["analyst_id", "period"], SortMultipleOptions::default())
        .collect_streaming()
        .map_err(pe("oversight per analyst"))?;

    let classes = str_col(&by_class, "action_class")?;
    let periods = periods_col(&by_class)?;
    let n_reviews = u64_col(&by_class, "n_reviews")?;
    let n_timeouts = u64_col(&by_class, "n_timeouts")?;
    let median = opt_f64_col(&by_class, "median_delay_s")?;
    let p90 = opt_f64_col(&by_class, "p90_delay_s")?;
    let n_analysts = u64_col(&by_class, "n_analysts")?;
    let n_app = u64_col(&by_class, "n_approvals")?;
    let n_fast = u64_col(&by_class, "n_fast_approvals")?;
    let class_rows = (0..by_class.height())
        .map(|i| OversightRow {
            action_class: classes[i].clone(),
            period: periods[i],
            n_reviews: n_reviews[i],
            n_timeouts: n_timeouts[i],
            median_delay_s: median[i],
            p90_delay_s: p90[i],
            n_analysts: n_analysts[i],
            n_approvals: n_app[i],
            n_fast_approvals: n_fast[i],
        })
        .collect();
    let analysts = str_col(&by_analyst, "analyst_id")?;
    let periods = periods_col(&by_analyst)?;
    let n_reviews = u64_col(&by_analyst, "n_reviews")?;
    let n_app = u64_col(&by_analyst, "n_approvals")?;
    let n_fast = u64_col(&by_analyst, "n_fast_approvals")?;
    let median = opt_f64_col(&by_analyst, "median_delay_s")?;
    let analyst_rows = (0..by_analyst.height())
        .map(|i| AnalystRow {
            analyst_id: analysts[i].clone(),
            period: periods[i],
            n_reviews: n_reviews[i],
            n_approvals: n_app[i],
            n_fast_approvals: n_fast[i],
            median_delay_s: median[i],
        })
        .collect();
    Ok((class_rows, analyst_rows))
}
