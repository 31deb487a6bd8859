//! A deterministic, seeded simulator of a SOC's AI-agent history: the decisions an agent made
//! (action class, confidence, model version, target, cited ATT&CK techniques) and the verdicts
//! analysts gave them, with known effects planted for `readiness` to find.
//!
//! # Output
//!
//! Columns, one month at a time: [`Simulator::month`] returns a [`DecisionChunk`] and a
//! [`VerdictChunk`] whose string-valued columns are indices into [`Dictionaries`] (no per-row
//! allocation), so 10^8 decisions never need to be in memory at once. A month is generated from
//! `(seed, month)` alone: months can be produced in any order, in parallel, and always come out
//! the same. Decision indices are global and contiguous; month sizes follow from the
//! configuration ([`Simulator::month_len`]) without generating anything. [`decision_id`] and
//! [`target_name`] turn indices into the strings the engine reads.
//!
//! # Model
//!
//! - **Traffic.** Month sizes are proportional to their number of days. Within a month, weekdays
//!   carry more than weekends (weekend weight 0.65, ±5% day-to-day noise), and 55% of decisions
//!   fall in business hours (07:00–19:00 UTC). Rows are in time order.
//! - **Classes.** Fourteen action classes in four impact tiers (see [`Truth::classes`] for
//!   volumes): `enrich_alert` alone is about 38% of decisions, each critical class well under 1%.
//!   `enrich_alert`, `tag_alert` and `block_ip` run autonomously (`executed = true`).
//! - **Model versions.** The year is split in thirds: `v1`, `v2`, `v3`. In the last 7 days
//!   before each switch, 10% of decisions already run on the next version (a canary).
//! - **Targets.** Each target kind (host, user, server, IP) has a fixed pool whose members keep
//!   their asset criticality and privileged flag all year; a class picks a segment
//!   (criticality × privileged) from its own mix, then a target uniformly within it.
//! - **Confidence and agreement.** Confidence is Beta-distributed per class and segment. The
//!   expected disagreement `1 − E[c]` is multiplied by 0.9/1.0/1.3/1.7 for low/medium/high/
//!   critical assets and by 1.6 for privileged targets, so agreement is a few points lower there.
//!   Unless an effect below says otherwise, the agent is calibrated: the analyst approves with
//!   probability equal to the confidence. The calibrated low-impact classes (`enrich_alert`,
//!   `tag_alert`, `add_to_watchlist`) agree at ≥ 0.99: they are promotable.
//! - **Verdicts.** Review delays are log-normal (hitl median 18 min, hotl median 90 min), always
//!   after the decision and before the SLA (4 h hitl, 24 h hotl). 2% of decisions end in a
//!   `timeout` recorded at the SLA; 3.5% (8% for the autonomous low-impact classes, 5% for
//!   `block_ip`) get no verdict row at all; about 2% get two rows (a timeout then a review, or an
//!   approval later overridden or rejected): the final verdict is the latest. Disagreements split
//!   into `reject` and `override` by class. Fifteen analysts share the work unevenly; one
//!   (`analyst-07`) rubber-stamps: 95% of their reviews are approvals within 2–8 seconds.
//! - **Techniques.** Each decision cites 0–3 current ATT&CK IDs (from the bundled TSV), 80% from
//!   its class's repertoire of 25.
//!
//! # Planted effects
//!
//! Recorded machine-readably in [`Truth`] (class, months, dates, versions, magnitudes):
//!
//! 1. **Over-confidence**: `close_alert_benign` reports confidence around 0.95 but is approved
//!    with probability `c − 0.095` (agreement about 0.86; large ECE).
//! 2. **Agreement drop with a new model version**: `block_ip` under `v3` is approved with
//!    probability `c − 0.06` (about 0.99 → 0.93) while its confidence distribution is unchanged.
//! 3. **Confidence shift without agreement change**: from month 7, `quarantine_email` reports
//!    `c · 0.80/0.905` (mean about 0.89 → 0.79, PSI far above 0.25) while the approve probability is
//!    still the unshifted latent confidence.
//! 4. **Manipulation burst** (`burst`): on the 13th–17th of month 10, about six times the
//!    normal daily `isolate_host` volume is added, confidence ≥ 0.95, on five hosts that appear
//!    nowhere else, mostly privileged or critical; 80% of their ordinary reviews are `reject`.
//! 5. **Fabricated reasoning** (`fabricated_reasoning`): `v2` cites an invented ID in 6% of its
//!    decisions and a revoked or deprecated one in 4%; `v1` and `v3` cite only current IDs.
//!
//! Every other class is drift-free: its confidence and agreement distributions do not change
//! with the month or the model version ([`Truth::drift_free_classes`]).
//!
//! # Determinism
//!
//! No clock, no global state, no hash-map iteration: a private xoshiro256** generator seeded
//! through SplitMix64 from `(seed, stream)`, with its own uniform, normal (polar), gamma
//! (Marsaglia–Tsang), beta and log-normal samplers.

#![warn(missing_docs)]

mod attack;
mod calendar;
mod generate;
mod model;
mod rng;
mod truth;

use serde::{Deserialize, Serialize};

pub use truth::{
    BurstTruth, ClassTruth, ConfidenceShiftTruth, FabricationTruth, MonthTruth,
    OverconfidenceTruth, ReviewTruth, RubberStampTruth, SegmentTruth, TargetTruth, Truth,
    VersionDropTruth, VersionTruth,
};

/// Names of the `criticality` codes in [`DecisionChunk::criticality`].
pub const CRITICALITY: [&str; 4] = ["low", "medium", "high", "critical"];

/// Names of the `verdict` codes in [`VerdictChunk::verdict`].
pub const VERDICTS: [&str; 4] = ["approve", "override", "reject", "timeout"];

/// Verdict code: the analyst approved.
pub const APPROVE: u8 = 0;
/// Verdict code: the analyst changed the action.
pub const OVERRIDE: u8 = 1;
/// Verdict code: the analyst refused the action.
pub const REJECT: u8 = 2;
/// Verdict code: nobody answered within the SLA.
pub const TIMEOUT: u8 = 3;

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimConfig {
    /// Seed of every random draw.
    pub seed: u64,
    /// Approximate total number of decisions (exact, plus the burst's extra decisions).
    pub decisions: u64,
    /// Year of the first simulated month.
    pub start_year: i32,
    /// First simulated month, 1–12.
    pub start_month: u32,
    /// Number of simulated months (at least 1).
    pub months: u32,
    /// Plant the manipulation burst (effect 4).
    pub burst: bool,
    /// Plant fabricated technique citations in `v2` (effect 5).
    pub fabricated_reasoning: bool,
}

impl Default for SimConfig {
    /// Seed 7, 200,000 decisions, January–December 2025, both optional effects on.
    fn default() -> Self {
        SimConfig {
            seed: 7,
            decisions: 200_000,
            start_year: 2025,
            start_month: 1,
            months: 12,
            burst: true,
            fabricated_reasoning: true,
        }
    }
}

/// The strings behind the index columns of the chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dictionaries {
    /// Action class names, indexed by [`DecisionChunk::class`].
    pub classes: Vec<String>,
    /// Model version names, indexed by [`DecisionChunk::model_version`].
    pub model_versions: Vec<String>,
    /// ATT&CK technique IDs, indexed by [`DecisionChunk::technique_ids`]: the current IDs of
    /// the bundled list, then its revoked or deprecated IDs, then invented ones.
    pub techniques: Vec<String>,
    /// Analyst IDs, indexed by [`VerdictChunk::analyst`].
    pub analysts: Vec<String>,
}

/// One month of decisions, column by column, in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecisionChunk {
    /// Global index of the first row; row `i` is decision `first_index + i`.
    pub first_index: u64,
    /// `decided_at`, microseconds since 1970-01-01 UTC.
    pub decided_at_us: Vec<i64>,
    /// Index into [`Dictionaries::classes`].
    pub class: Vec<u16>,
    /// Reported confidence in [0, 1].
    pub confidence: Vec<f64>,
    /// Index into [`Dictionaries::model_versions`].
    pub model_version: Vec<u8>,
    /// Asset criticality: 0 low, 1 medium, 2 high, 3 critical ([`CRITICALITY`]).
    pub criticality: Vec<u8>,
    /// The target is a privileged account or asset.
    pub privileged: Vec<bool>,
    /// Target number; [`target_name`] gives its name.
    pub target: Vec<u32>,
    /// CSR offsets into `technique_ids`: row `i` cites
    /// `technique_ids[technique_offsets[i]..technique_offsets[i + 1]]` (`len = rows + 1`).
    pub technique_offsets: Vec<u32>,
    /// Index into [`Dictionaries::techniques`].
    pub technique_ids: Vec<u16>,
    /// The action ran without prior approval (hotl).
    pub executed: Vec<bool>,
}

impl DecisionChunk {
    fn with_capacity(first_index: u64, rows: usize) -> Self {
        let mut technique_offsets = Vec::with_capacity(rows + 1);
        technique_offsets.push(0);
        DecisionChunk {
            first_index,
            decided_at_us: Vec::with_capacity(rows),
            class: Vec::with_capacity(rows),
            confidence: Vec::with_capacity(rows),
            model_version: Vec::with_capacity(rows),
            criticality: Vec::with_capacity(rows),
            privileged: Vec::with_capacity(rows),
            target: Vec::with_capacity(rows),
            technique_offsets,
            technique_ids: Vec::with_capacity(rows * 3 / 2),
            executed: Vec::with_capacity(rows),
        }
    }

    /// Number of decisions.
    pub fn len(&self) -> usize {
        self.decided_at_us.len()
    }

    /// `true` when the chunk has no decisions.
    pub fn is_empty(&self) -> bool {
        self.decided_at_us.is_empty()
    }

    /// Technique indices cited by row `i`.
    pub fn techniques(&self, i: usize) -> &[u16] {
        let (a, b) = (self.technique_offsets[i], self.technique_offsets[i + 1]);
        &self.technique_ids[a as usize..b as usize]
    }
}

/// One month of verdict rows, sorted by `(reviewed_at, decision_index)`. A decision has zero,
/// one or two rows; its final verdict is the row with the latest `reviewed_at`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerdictChunk {
    /// Global index of the decision reviewed (always in the same month's [`DecisionChunk`]).
    pub decision_index: Vec<u64>,
    /// `reviewed_at`, microseconds since 1970-01-01 UTC; always after `decided_at`.
    pub reviewed_at_us: Vec<i64>,
    /// Index into [`Dictionaries::analysts`].
    pub analyst: Vec<u16>,
    /// 0 approve, 1 override, 2 reject, 3 timeout ([`VERDICTS`]).
    pub verdict: Vec<u8>,
}

impl VerdictChunk {
    /// Number of verdict rows.
    pub fn len(&self) -> usize {
        self.decision_index.len()
    }

    /// `true` when the chunk has no verdict rows.
    pub fn is_empty(&self) -> bool {
        self.decision_index.is_empty()
    }
}

/// The decision ID of a global index: `d` and nine digits (`d000000042`), unique and of fixed
/// width up to 10^9 decisions.
pub fn decision_id(index: u64) -> String {
    format!("d{index:09}")
}

/// The name of target number `target` of a class: `host-00042`, `user-00042`, `srv-00042` or
/// `ip-00042` by what the class acts on (unknown classes are treated as host classes).
pub fn target_name(class: &str, target: u32) -> String {
    let prefix = model::CLASSES
        .iter()
        .find(|c| c.name == class)
        .map_or("host", |c| c.kind.prefix());
    format!("{prefix}-{target:05}")
}

pub use generate::Simulator;
