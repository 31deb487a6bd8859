//! The report model: everything the renderers show, fully computed upstream.
//!
//! The lead (the `recommend` stage and the CLI) fills these structs; the renderers only format,
//! sort for display and scale axes. No field is derived here. Shares and rates are fractions in
//! `[0, 1]` (the renderers print them as percentages); labels and pre-formatted values are shown
//! as given (after escaping). Every string may come from user data and is treated as hostile.

use serde::{Deserialize, Serialize};

/// The monthly readiness report: decisions to take, the evidence per class, data quality and
/// provenance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportModel {
    /// Report title, e.g. "Autonomy readiness review".
    pub title: String,
    /// The evaluated period, e.g. "2025-12".
    pub period_label: String,
    /// Version of the engine that produced the numbers.
    pub engine_version: String,
    /// Identifier of this run (deterministic, e.g. a hash of inputs and policy).
    pub run_id: String,
    /// Path of the policy file as given by the user.
    pub policy_path: String,
    /// SHA-256 of the policy file, hex.
    pub policy_hash: String,
    /// Every input file read, in the order read.
    pub inputs: Vec<InputFile>,
    /// Rejected rows, timeouts, unreviewed decisions and unowned classes.
    pub quality: DataQuality,
    /// What to decide this period, already selected and ordered by the lead.
    pub decisions: Vec<DecisionItem>,
    /// One evidence section per action class, in display order.
    pub classes: Vec<ClassSection>,
    /// Period labels of the readiness matrix, ascending.
    pub periods: Vec<String>,
    /// The readiness matrix: one row per class, cells aligned with `periods`.
    pub matrix: Vec<MatrixRow>,
    /// Daily volumes of high-impact classes with the manipulation flag per day.
    pub manipulation: Vec<ManipulationDay>,
    /// Share of decisions executed without prior approval, per period and tier.
    pub autonomy: Vec<AutonomyPoint>,
}

/// One input file and its fingerprint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputFile {
    /// Logical table: `decisions` or `verdicts`.
    pub table: String,
    /// Path as read.
    pub path: String,
    /// SHA-256 of the file bytes, hex.
    pub sha256: String,
    /// Rows read from the file (before rejection).
    pub rows: u64,
}

/// What was read, what was excluded and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataQuality {
    /// Decision rows read.
    pub decisions_read: u64,
    /// Decision rows rejected (excluded from every metric).
    pub decisions_rejected: u64,
    /// Verdict rows read.
    pub verdicts_read: u64,
    /// Verdict rows rejected.
    pub verdicts_rejected: u64,
    /// Rejected rows by `(table, reason, count)`, in display order.
    pub rejects_by_reason: Vec<(String, String, u64)>,
    /// Decisions whose final verdict is `timeout` (nobody answered in time).
    pub timeouts: u64,
    /// Decisions with no verdict at all.
    pub unreviewed: u64,
    /// Classes seen in the data but absent from the policy (never promoted).
    pub unowned_classes: Vec<String>,
    /// What the rows were read from, which decides what the rejected counts can say.
    #[serde(default)]
    pub source: RowSource,
}

/// What a run read its rows from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowSource {
    /// Raw inputs only: every rejected row is counted.
    #[default]
    Raw,
    /// Stored statistics only (`--stats`): the rows were validated when the statistics were
    /// built, and how many were rejected then is unknown here.
    Statistics,
    /// Raw inputs merged with stored statistics (an incremental run): the counts are the raw
    /// inputs'; the stored periods' rejected rows are unknown here.
    RawAndStatistics,
}

/// One line of "Decisions to take this period".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DecisionItem {
    /// The action class, e.g. `isolate_host`.
    pub action_class: String,
    /// The human who owns the class (from the policy); `None` = unowned.
    pub owner: Option<String>,
    /// `promote`, `promote_gated`, `hold`, `demote` or `never`.
    pub recommendation: String,
    /// One sentence saying what to decide and why.
    pub headline: String,
}

/// The evidence for one action class.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassSection {
    /// The action class.
    pub action_class: String,
    /// Owner from the policy; `None` = unowned.
    pub owner: Option<String>,
    /// Impact tier from the policy, e.g. `high`.
    pub tier: Option<String>,
    /// `hitl` or `hotl`.
    pub current_mode: String,
    /// `promote`, `promote_gated`, `hold`, `demote` or `never`.
    pub recommendation: String,
    /// The recommended gate, pre-formatted, e.g. "low/medium assets, non-privileged, confidence ≥ 0.97".
    pub gate: Option<String>,
    /// The rules that decided, in words.
    pub reasons: Vec<String>,
    /// When a held class could expect enough evidence, pre-formatted, e.g. "about 2 more months".
    pub hold: Option<String>,
    /// Key numbers as `(label, pre-formatted value)`.
    pub key_numbers: Vec<(String, String)>,
    /// Required agreement (fraction), drawn as the target line.
    pub target: f64,
    /// Agreement per period, ascending.
    pub agreement: Vec<AgreementPoint>,
    /// Calibration bins (usually ten).
    pub reliability: Vec<ReliabilityBin>,
    /// Risk–coverage curve, one point per candidate confidence threshold.
    pub risk_coverage: Vec<RiskCoveragePoint>,
    /// Maximum tolerated disagreement rate among gated decisions (1 − target).
    pub max_risk: f64,
    /// The recommended gate's confidence threshold, if any.
    pub gate_threshold: Option<f64>,
    /// Why there is no gate, for the risk–coverage chart's legend: the gate rule's own words
    /// where it did not apply (e.g. "no gate needed: the whole class qualifies"), else
    /// "no gate recommended" (which an empty string also reads as).
    pub no_gate: String,
    /// Share of the current period's decisions per 0.01 confidence bin (100 values, or empty).
    pub confidence_current: Vec<f64>,
    /// Share of the baseline window's decisions per 0.01 confidence bin (100 values, or empty).
    pub confidence_baseline: Vec<f64>,
    /// Population stability index of current vs baseline confidence, if computed.
    pub psi: Option<f64>,
}

/// Agreement of one class in one period, with its interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgreementPoint {
    /// Period label, e.g. "2025-10".
    pub period: String,
    /// Reviewed decisions (approve + override + reject).
    pub n_reviewed: u64,
    /// approve / reviewed; `None` when nothing was reviewed.
    pub agreement: Option<f64>,
    /// Lower bound of the two-sided interval.
    pub low: Option<f64>,
    /// Upper bound of the two-sided interval.
    pub high: Option<f64>,
}

/// One calibration bin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// Lower confidence edge.
    pub lower: f64,
    /// Upper confidence edge.
    pub upper: f64,
    /// Reviewed decisions in the bin.
    pub n: u64,
    /// Mean confidence in the bin; `None` when empty.
    pub mean_confidence: Option<f64>,
    /// Observed approve share in the bin; `None` when empty.
    pub observed: Option<f64>,
}

/// One point of the risk–coverage curve.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RiskCoveragePoint {
    /// Confidence threshold λ: decisions with confidence ≥ λ would run on their own.
    pub threshold: f64,
    /// Share of the class's decisions at or above the threshold.
    pub coverage: f64,
    /// Disagreement rate among reviewed decisions at or above the threshold; `None` if none.
    pub risk: Option<f64>,
    /// Whether the fixed-sequence test certified this threshold.
    pub certified: bool,
}

/// One row of the readiness matrix.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MatrixRow {
    /// The action class.
    pub action_class: String,
    /// Required agreement for the class (fraction).
    pub target: f64,
    /// Agreement per period, aligned with [`ReportModel::periods`]; `None` = nothing reviewed.
    pub cells: Vec<Option<f64>>,
    /// Reviewed decisions per period, aligned with [`ReportModel::periods`].
    pub n: Vec<u64>,
}

/// Volume of one class on one day, for the manipulation timeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ManipulationDay {
    /// The action class.
    pub action_class: String,
    /// Day label, e.g. "2025-12-03"; days of a class arrive in ascending order.
    pub day: String,
    /// Decisions that day.
    pub volume: u64,
    /// Trailing baseline volume for that day; NaN while there is not enough history (the
    /// baseline line is not drawn there).
    pub baseline: f64,
    /// Whether the day is inside a flagged manipulation window.
    pub flagged: bool,
}

/// Share of decisions executed without prior approval in one period and tier.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AutonomyPoint {
    /// Period label.
    pub period: String,
    /// Impact tier.
    pub tier: String,
    /// Share of decisions executed without prior approval (fraction).
    pub share: f64,
}

/// The one-page quarterly board report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BoardModel {
    /// The quarter reported, e.g. "2025-Q4".
    pub quarter: String,
    /// The quarter compared against, e.g. "2025-Q3".
    pub previous_quarter: Option<String>,
    /// Share of the AI's actions this quarter that ran without prior approval (fraction).
    pub autonomy_share: f64,
    /// The same share last quarter.
    pub autonomy_share_previous: Option<f64>,
    /// Classes per impact tier as `(tier, classes needing approval first, classes running on their own)`.
    pub classes_by_mode: Vec<(String, u64, u64)>,
    /// Autonomous actions later reversed by an analyst this quarter.
    pub reversed_actions: u64,
    /// Actions that ran without prior approval this quarter.
    pub autonomous_actions: u64,
    /// Suspected manipulation episodes, one plain sentence each.
    pub manipulation_signals: Vec<String>,
    /// Estimated analyst hours saved this quarter.
    pub hours_saved: f64,
    /// The main risks, one plain sentence each, most important first.
    pub top_risks: Vec<String>,
    /// The latest period in the data when it is after the quarter: the top risks are those of
    /// the latest recommendations, not of the quarter's end. `None` for the latest quarter.
    #[serde(default)]
    pub risks_as_of: Option<String>,
    /// Autonomy share over time by tier, for the chart.
    pub autonomy: Vec<AutonomyPoint>,
    /// Version of the engine.
    pub engine_version: String,
    /// Identifier of the run.
    pub run_id: String,
}
