//! The policy file: the thresholds, ceilings and owners that people set and review (DESIGN.md
//! principle 2: the human sets the threshold, not the model). The engine reads it and never edits
//! it.
//!
//! The schema is documented in full in `crates/governance/POLICY.md`. In short:
//!
//! - `[run]`: reporting period, rejected-row limit, drift baseline, FDR level, rubber-stamp time;
//! - `[columns]`: input column names mapped onto the contract names;
//! - `[defaults]`: the promotion thresholds ([`Thresholds`]);
//! - `[tiers.<low|medium|high|critical>]`: any threshold, overriding `[defaults]` for that tier;
//! - `[classes.<name>]`: tier, mode, ceiling, reversibility, owner, approver, and any threshold,
//!   overriding the tier and the defaults.
//!
//! A threshold resolves from the most specific table that sets it: class, then tier, then
//! `[defaults]`, then the built-in default. [`EffectiveSettings::source`] records where each value
//! came from so that `policy check` and `explain` can show it.
//!
//! Validation is strict. Unknown keys (`serde(deny_unknown_fields)`), wrong types, out-of-range
//! values and contradictions are [`PolicyError`]s naming the file, the dotted key and the 1-based
//! line. Values carry their byte spans ([`toml::Spanned`]); errors raised by the deserializer carry
//! a span too ([`toml::de::Error::span`]), and a second, structure-only pass over the document (the
//! private `Loc` tree) maps that span back to the dotted key it belongs to, because toml does not
//! expose the key path of its errors.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::ops::Range;
use std::path::Path;

use readiness_metrics::period::{civil_from_days, parse_date};
use readiness_metrics::{Criticality, Granularity};
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// Contract column names of the decisions table (DESIGN.md, Inputs).
pub const DECISION_COLUMNS: [&str; 10] = [
    "decision_id",
    "decided_at",
    "action_class",
    "confidence",
    "model_version",
    "asset_criticality",
    "privileged",
    "target_entity",
    "technique_ids",
    "executed",
];

/// Contract column names of the verdicts table (DESIGN.md, Inputs).
pub const VERDICT_COLUMNS: [&str; 4] = ["decision_id", "reviewed_at", "analyst_id", "verdict"];

/// The `[columns]` key that renames the verdicts table's `decision_id` only.
pub const VERDICT_DECISION_ID: &str = "verdict_decision_id";

// ---------------------------------------------------------------------------------------------
// Public, validated types
// ---------------------------------------------------------------------------------------------

/// How a class runs: every action approved first (`hitl`) or executed and reviewed after
/// (`hotl`). `Hitl < Hotl`: a mode is "above" its ceiling when it grants more autonomy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Human in the loop: a human approves each action before it runs.
    Hitl,
    /// Human on the loop: the action runs; a human reviews it afterwards.
    Hotl,
}

impl Mode {
    /// The policy-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Hitl => "hitl",
            Mode::Hotl => "hotl",
        }
    }

    /// Parses the policy-file spelling (exact, lower case).
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "hitl" => Some(Mode::Hitl),
            "hotl" => Some(Mode::Hotl),
            _ => None,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The promotion thresholds: the keys of `[defaults]`, also accepted in `[tiers.*]` and
/// `[classes.*]`. [`Default`] gives the built-in values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Confidence level of intervals and of the promotion evidence, in (0, 1).
    pub confidence_level: f64,
    /// Agreement required for promotion, in (0, 1).
    pub target_agreement: f64,
    /// Evidence floor: reviewed decisions needed per class (and per gate scope), ≥ 1.
    pub min_reviewed: u64,
    /// Largest expected calibration error allowed for promotion, in [0, 1].
    pub max_ece: f64,
    /// Level of the Spiegelhalter calibration test (after FDR) below which a class is
    /// miscalibrated, in (0, 1).
    pub calibration_alpha: f64,
    /// PSI above which the confidence distribution has drifted, > 0.
    pub max_psi: f64,
    /// Periods of evidence (current model version only), ≥ 1.
    pub evidence_periods: u32,
    /// Largest share of executed (hotl) actions later reversed, in [0, 1].
    pub max_reversal_rate: f64,
    /// Largest share of decisions citing invented ATT&CK technique IDs, in [0, 1].
    pub max_invented_share: f64,
    /// Most critical asset level a gated promotion may cover.
    pub gate_max_criticality: Criticality,
    /// Whether a gated promotion may cover privileged targets.
    pub gate_allow_privileged: bool,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            confidence_level: 0.95,
            target_agreement: 0.98,
            min_reviewed: 400,
            max_ece: 0.05,
            calibration_alpha: 0.01,
            max_psi: 0.25,
            evidence_periods: 3,
            max_reversal_rate: 0.02,
            max_invented_share: 0.01,
            gate_max_criticality: Criticality::High,
            gate_allow_privileged: false,
        }
    }
}

impl Thresholds {
    /// The threshold keys, in documentation order.
    pub const KEYS: [&'static str; 11] = [
        "confidence_level",
        "target_agreement",
        "min_reviewed",
        "max_ece",
        "calibration_alpha",
        "max_psi",
        "evidence_periods",
        "max_reversal_rate",
        "max_invented_share",
        "gate_max_criticality",
        "gate_allow_privileged",
    ];

    /// The value of `key` as written in a policy file (`0.98`, `400`, `"high"`, `false`), or
    /// `None` for a key not in [`Thresholds::KEYS`].
    pub fn display_value(&self, key: &str) -> Option<String> {
        Some(match key {
            "confidence_level" => self.confidence_level.to_string(),
            "target_agreement" => self.target_agreement.to_string(),
            "min_reviewed" => self.min_reviewed.to_string(),
            "max_ece" => self.max_ece.to_string(),
            "calibration_alpha" => self.calibration_alpha.to_string(),
            "max_psi" => self.max_psi.to_string(),
            "evidence_periods" => self.evidence_periods.to_string(),
            "max_reversal_rate" => self.max_reversal_rate.to_string(),
            "max_invented_share" => self.max_invented_share.to_string(),
            "gate_max_criticality" => format!("\"{}\"", self.gate_max_criticality.as_str()),
            "gate_allow_privileged" => self.gate_allow_privileged.to_string(),
            _ => return None,
        })
    }

    fn set(&mut self, key: &str, v: KnobValue) {
        match (key, v) {
            ("confidence_level", KnobValue::Float(x)) => self.confidence_level = x,
            ("target_agreement", KnobValue::Float(x)) => self.target_agreement = x,
            ("min_reviewed", KnobValue::Int(x)) => self.min_reviewed = x,
            ("max_ece", KnobValue::Float(x)) => self.max_ece = x,
            ("calibration_alpha", KnobValue::Float(x)) => self.calibration_alpha = x,
            ("max_psi", KnobValue::Float(x)) => self.max_psi = x,
            // Range-checked to fit u32 before it gets here.
            ("evidence_periods", KnobValue::Int(x)) => self.evidence_periods = x as u32,
            ("max_reversal_rate", KnobValue::Float(x)) => self.max_reversal_rate = x,
            ("max_invented_share", KnobValue::Float(x)) => self.max_invented_share = x,
            ("gate_max_criticality", KnobValue::Crit(c)) => self.gate_max_criticality = c,
            ("gate_allow_privileged", KnobValue::Bool(b)) => self.gate_allow_privileged = b,
            _ => unreachable!("knob {key} validated against its own spec"),
        }
    }
}

/// Where a threshold's value came from when it is not set in any table of the file.
pub const SOURCE_BUILT_IN: &str = "built-in";

/// Everything the engine needs to judge one class: the class's own entries plus every threshold
/// resolved (class, then tier, then `[defaults]`, then built-in).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EffectiveSettings {
    /// The action class.
    pub class: String,
    /// Impact tier, on the same four-level scale as asset criticality.
    pub tier: Criticality,
    /// Current mode.
    pub mode: Mode,
    /// Highest mode the policy ever allows.
    pub ceiling: Mode,
    /// Whether the action can be undone.
    pub reversible: bool,
    /// The person accountable for the class.
    pub owner: String,
    /// Who signs off a promotion, when not the owner.
    pub approver: Option<String>,
    /// The resolved thresholds.
    pub thresholds: Thresholds,
    /// For each key of [`Thresholds::KEYS`], the table it came from: `"classes.<name>"`,
    /// `"tiers.<tier>"`, `"defaults"`, or [`SOURCE_BUILT_IN`].
    pub source: BTreeMap<String, String>,
}

impl EffectiveSettings {
    /// The table a threshold came from (see [`EffectiveSettings::source`]).
    pub fn source_of(&self, key: &str) -> &str {
        self.source
            .get(key)
            .map(String::as_str)
            .unwrap_or(SOURCE_BUILT_IN)
    }

    /// A citation for a threshold in words: `"policy classes.x"` when the class sets it,
    /// otherwise `"policy classes.x via tiers.high"` (or `via defaults`, `via built-in`).
    pub fn cite(&self, key: &str) -> String {
        let class = format!("classes.{}", key_segment(&self.class));
        let src = self.source_of(key);
        if src == class {
            format!("policy {class}")
        } else {
            format!("policy {class} via {src}")
        }
    }

    /// The gate scope the policy allows, in words (`"≤ high assets, non-privileged"`), or
    /// `"never (ceiling hitl)"`.
    pub fn gate_scope(&self) -> String {
        if self.ceiling == Mode::Hitl {
            return "never (ceiling hitl)".to_string();
        }
        format!(
            "≤ {} assets, {}",
            self.thresholds.gate_max_criticality.as_str(),
            if self.thresholds.gate_allow_privileged {
                "privileged allowed"
            } else {
                "non-privileged"
            }
        )
    }
}

/// A fixed drift baseline (`run.baseline_start` / `run.baseline_end`, both inclusive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedBaseline {
    /// First day, days since 1970-01-01.
    pub start: i32,
    /// Last day, days since 1970-01-01 (≥ `start`).
    pub end: i32,
}

impl FixedBaseline {
    /// Whether a period starting on day `period_start` belongs to the baseline: the periods
    /// that start within it, both ends included.
    pub fn holds(&self, period_start: i32) -> bool {
        period_start >= self.start && period_start <= self.end
    }

    /// `YYYY-MM-DD` of a day count.
    pub fn date_string(day: i32) -> String {
        let (y, m, d) = civil_from_days(day);
        format!("{y:04}-{m:02}-{d:02}")
    }
}

/// The `[run]` table, resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// Reporting period.
    pub period: Granularity,
    /// Largest share of rejected input rows before the run fails, in [0, 1].
    pub max_rejected_share: f64,
    /// Trailing baseline length for drift, in periods (ignored when `baseline` is set).
    pub baseline_periods: u32,
    /// A fixed baseline window, when set.
    pub baseline: Option<FixedBaseline>,
    /// False discovery rate level across the classes tested at once, in (0, 1).
    pub fdr_level: f64,
    /// Reviews faster than this many seconds count as rubber stamps, > 0.
    pub rubber_stamp_seconds: f64,
    /// Analyst minutes one review takes, for the hours a promotion would free, > 0.
    pub review_minutes: f64,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            period: Granularity::Month,
            max_rejected_share: 0.05,
            baseline_periods: 3,
            baseline: None,
            fdr_level: 0.05,
            rubber_stamp_seconds: 30.0,
            review_minutes: 5.0,
        }
    }
}

/// The `[columns]` table: input column names mapped onto the contract names.
///
/// `decision_id` renames the key column of both tables; `verdict_decision_id` renames the
/// verdicts table's key column only (and wins over `decision_id` there).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Columns {
    map: BTreeMap<String, String>,
}

impl Columns {
    /// The input column read for a decisions-table contract column.
    pub fn decisions<'a>(&'a self, column: &'a str) -> &'a str {
        self.map.get(column).map(String::as_str).unwrap_or(column)
    }

    /// The input column read for a verdicts-table contract column.
    pub fn verdicts<'a>(&'a self, column: &'a str) -> &'a str {
        if column == "decision_id" {
            if let Some(v) = self.map.get(VERDICT_DECISION_ID) {
                return v;
            }
        }
        self.map.get(column).map(String::as_str).unwrap_or(column)
    }

    /// The mappings as written (`[columns]` key → input column), in key order.
    pub fn entries(&self) -> &BTreeMap<String, String> {
        &self.map
    }

    /// Whether no column is renamed.
    pub fn is_identity(&self) -> bool {
        self.map.is_empty()
    }
}

/// A validated policy. Build it with [`Policy::from_toml_str`] or [`Policy::from_file`].
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    path: String,
    run: RunSettings,
    columns: Columns,
    defaults: Thresholds,
    classes: BTreeMap<String, EffectiveSettings>,
}

impl Policy {
    /// Parses and validates a policy. `path` is only used in error messages and
    /// [`Policy::describe`].
    pub fn from_toml_str(text: &str, path: &str) -> Result<Policy, PolicyError> {
        let cx = Cx { text, path };
        // Structure-only pass first: it accepts any well-formed TOML, so its errors are syntax
        // errors, and its tree locates the keys of the typed pass's errors.
        let root: Loc = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| cx.line(s.start)).unwrap_or(1);
            // The line itself names the key (the parser's message may not, e.g. for a number
            // too large).
            let shown = text
                .lines()
                .nth(line.saturating_sub(1))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| match l.char_indices().nth(80) {
                    Some((cut, _)) => format!(" (in `{}…`)", &l[..cut]),
                    None => format!(" (in `{l}`)"),
                })
                .unwrap_or_default();
            let message = e
                .message()
                .trim_end()
                .lines()
                .collect::<Vec<_>>()
                .join("; ");
            PolicyError::Syntax {
                path: path.to_string(),
                line,
                message: message + &shown,
            }
        })?;
        let locator = Locator::new(root);
        let raw: RawPolicy = toml::from_str(text).map_err(|e| cx.de_error(&e, &locator))?;
        build(raw, &cx, &locator)
    }

    /// Reads and validates a policy file.
    pub fn from_file(path: &Path) -> Result<Policy, PolicyError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: shown.clone(),
            source,
        })?;
        Policy::from_toml_str(&text, &shown)
    }

    /// The path given when the policy was read.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The settings of a class, or `None` when the policy has no entry for it (the class is
    /// unowned and never promoted).
    pub fn effective(&self, class: &str) -> Option<EffectiveSettings> {
        self.classes.get(class).cloned()
    }

    /// Every class of the policy, in name order.
    pub fn classes(&self) -> impl Iterator<Item = &EffectiveSettings> {
        self.classes.values()
    }

    /// The `[run]` settings.
    pub fn run(&self) -> &RunSettings {
        &self.run
    }

    /// The `[columns]` mapping.
    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    /// `[defaults]` resolved over the built-in values: the thresholds used to compute metrics for
    /// classes the policy does not own.
    pub fn defaults(&self) -> &Thresholds {
        &self.defaults
    }

    /// The human-readable summary printed by `readiness policy check FILE`: run settings, one
    /// row per class, then every threshold set above `[defaults]` with its source.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let mut per_tier = [0usize; 4];
        for c in self.classes.values() {
            per_tier[c.tier as usize] += 1;
        }
        let tiers: Vec<String> = Criticality::ALL
            .iter()
            .zip(per_tier)
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| format!("{n} {}", t.as_str()))
            .collect();
        let _ = writeln!(
            out,
            "policy {}: {} classes{}",
            self.path,
            self.classes.len(),
            if tiers.is_empty() {
                String::new()
            } else {
                format!(" ({})", tiers.join(", "))
            }
        );
        let r = &self.run;
        let baseline = match &r.baseline {
            Some(b) => format!(
                "fixed {} to {}",
                FixedBaseline::date_string(b.start),
                FixedBaseline::date_string(b.end)
            ),
            None => format!("trailing {} periods", r.baseline_periods),
        };
        let _ = writeln!(
            out,
            "run: period {}, baseline {}, max_rejected_share {}, fdr_level {}, rubber_stamp_seconds {}",
            r.period.as_str(),
            baseline,
            r.max_rejected_share,
            r.fdr_level,
            r.rubber_stamp_seconds
        );
        if !self.columns.is_identity() {
            let m: Vec<String> = self
                .columns
                .map
                .iter()
                .map(|(k, v)| format!("{k} <- {v}"))
                .collect();
            let _ = writeln!(out, "columns: {}", m.join(", "));
        }
        out.push('\n');
        if self.classes.is_empty() {
            out.push_str(
                "no classes: every action class in the data is unowned and never promoted\n",
            );
            return out;
        }
        let header = [
            "class",
            "tier",
            "mode",
            "ceiling",
            "owner",
            "target",
            "min_reviewed",
            "conf",
            "max_ece",
            "max_psi",
            "gate scope",
        ];
        let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
        for c in self.classes.values() {
            let t = &c.thresholds;
            rows.push(vec![
                c.class.clone(),
                c.tier.as_str().to_string(),
                c.mode.as_str().to_string(),
                c.ceiling.as_str().to_string(),
                c.owner.clone(),
                t.target_agreement.to_string(),
                t.min_reviewed.to_string(),
                t.confidence_level.to_string(),
                t.max_ece.to_string(),
                t.max_psi.to_string(),
                c.gate_scope(),
            ]);
        }
        write_table(&mut out, &rows);
        let mut overrides = Vec::new();
        for c in self.classes.values() {
            let set: Vec<String> = Thresholds::KEYS
                .iter()
                .filter(|k| !matches!(c.source_of(k), "defaults" | SOURCE_BUILT_IN))
                .map(|k| {
                    format!(
                        "{k} {} ({})",
                        c.thresholds.display_value(k).unwrap_or_default(),
                        c.source_of(k)
                    )
                })
                .collect();
            if !set.is_empty() {
                overrides.push(format!("  {}: {}", c.class, set.join(", ")));
            }
        }
        if !overrides.is_empty() {
            out.push_str("\nset above [defaults]:\n");
            for o in overrides {
                out.push_str(&o);
                out.push('\n');
            }
        }
        out
    }
}

/// Left-aligned columns separated by two spaces, widths in characters (owners may not be ASCII).
fn write_table(out: &mut String, rows: &[Vec<String>]) {
    let cols = rows[0].len();
    let width: Vec<usize> = (0..cols)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < cols {
                line.extend(std::iter::repeat_n(
                    ' ',
                    width[i] - cell.chars().count() + 2,
                ));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a policy was refused. Every variant but [`PolicyError::Read`] names the file and the
/// 1-based line; all but `Read` and `Syntax` name the dotted key (`classes.isolate_host.mode`).
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy {path}: {source}")]
    Read {
        /// The policy path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{path} line {line}: invalid TOML: {message}")]
    Syntax {
        /// The policy path.
        path: String,
        /// 1-based line.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// A key the schema does not know (often a typo).
    #[error("unknown key {key} at {path} line {line}: expected {expected}")]
    UnknownKey {
        /// The policy path.
        path: String,
        /// Dotted key.
        key: String,
        /// 1-based line.
        line: usize,
        /// The keys allowed there.
        expected: String,
    },
    /// A value of the wrong type (a string where a number is expected, ...).
    #[error("{key} = {value} at {path} line {line}: expected {expected}, found {found}")]
    WrongType {
        /// The policy path.
        path: String,
        /// Dotted key.
        key: String,
        /// 1-based line.
        line: usize,
        /// The value as written.
        value: String,
        /// What the key takes.
        expected: String,
        /// The type found (`a string`, `an integer`, ...).
        found: &'static str,
    },
    /// A value of the right type but outside its range or set.
    #[error("{key} = {value} at {path} line {line}: expected {expected}")]
    Invalid {
        /// The policy path.
        path: String,
        /// Dotted key.
        key: String,
        /// 1-based line.
        line: usize,
        /// The value as written.
        value: String,
        /// What the key takes.
        expected: String,
    },
    /// A required key is absent.
    #[error("{key} is missing at {path} line {line}: expected {expected}")]
    Missing {
        /// The policy path.
        path: String,
        /// Dotted key.
        key: String,
        /// 1-based line (of the table that lacks the key).
        line: usize,
        /// What the key takes.
        expected: String,
    },
    /// Values that are valid alone but not together (mode above ceiling, baseline start after
    /// end, the same input column mapped twice).
    #[error("{key} = {value} at {path} line {line}: {message}")]
    Contradiction {
        /// The policy path.
        path: String,
        /// Dotted key.
        key: String,
        /// 1-based line.
        line: usize,
        /// The value as written.
        value: String,
        /// What contradicts it and how to fix it.
        message: String,
    },
}

impl PolicyError {
    /// The dotted key the error is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            PolicyError::Read { .. } | PolicyError::Syntax { .. } => None,
            PolicyError::UnknownKey { key, .. }
            | PolicyError::WrongType { key, .. }
            | PolicyError::Invalid { key, .. }
            | PolicyError::Missing { key, .. }
            | PolicyError::Contradiction { key, .. } => Some(key),
        }
    }

    /// The 1-based line, when there is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            PolicyError::Read { .. } => None,
            PolicyError::Syntax { line, .. }
            | PolicyError::UnknownKey { line, .. }
            | PolicyError::WrongType { line, .. }
            | PolicyError::Invalid { line, .. }
            | PolicyError::Missing { line, .. }
            | PolicyError::Contradiction { line, .. } => Some(*line),
        }
    }

    /// The policy path given by the caller.
    pub fn path(&self) -> &str {
        match self {
            PolicyError::Read { path, .. }
            | PolicyError::Syntax { path, .. }
            | PolicyError::UnknownKey { path, .. }
            | PolicyError::WrongType { path, .. }
            | PolicyError::Invalid { path, .. }
            | PolicyError::Missing { path, .. }
            | PolicyError::Contradiction { path, .. } => path,
        }
    }
}

// What each key takes, in words (also used for the deserializer's type errors).
const OPEN01: &str = "a number in (0, 1)";
const CLOSED01: &str = "a number in [0, 1]";
const INT_GE1: &str = "an integer >= 1";
/// An evidence or baseline window, in periods.
const INT_WINDOW: &str = "an integer from 1 to 1000";

/// Longest evidence or baseline window, in periods (over 19 years of weeks).
pub const MAX_WINDOW_PERIODS: u32 = 1000;
const POSITIVE: &str = "a number > 0";
const CRITICALITY: &str = "one of \"low\", \"medium\", \"high\", \"critical\"";
const BOOL: &str = "true or false";
const MODE: &str = "\"hitl\" or \"hotl\"";
const PERIOD: &str = "one of \"week\", \"month\", \"quarter\"";
const DATE: &str = "a date YYYY-MM-DD";
const TEXT: &str = "a non-empty string";
const COLUMN: &str = "a non-empty input column name (string)";

/// The expectation of a key, by its dotted path (`None` for tables and unknown places).
fn expectation(key: &str) -> Option<&'static str> {
    let segments: Vec<&str> = key.split('.').collect();
    let knob = |k: &str| {
        KNOBS
            .iter()
            .find(|s| s.key == k)
            .map(|s| s.check.expected())
    };
    match segments.as_slice() {
        ["columns", _] => Some(COLUMN),
        ["run", k] => match *k {
            "period" => Some(PERIOD),
            "max_rejected_share" => Some(CLOSED01),
            "baseline_periods" => Some(INT_WINDOW),
            "baseline_start" | "baseline_end" => Some(DATE),
            "fdr_level" => Some(OPEN01),
            "rubber_stamp_seconds" | "review_minutes" => Some(POSITIVE),
            _ => None,
        },
        ["defaults", k] | ["tiers", _, k] => knob(k),
        ["classes", _, k] => knob(k).or(match *k {
            "tier" => Some(CRITICALITY),
            "mode" | "ceiling" => Some(MODE),
            "reversible" => Some(BOOL),
            "owner" | "approver" => Some(TEXT),
            _ => None,
        }),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Raw (as written) structures
// ---------------------------------------------------------------------------------------------

/// A threshold as written, borrowed from a raw table.
enum RawKnob<'a> {
    Float(&'a Spanned<f64>),
    Int(&'a Spanned<i64>),
    Text(&'a Spanned<String>),
    Bool(&'a Spanned<bool>),
}

/// Declares a raw table holding the threshold keys plus `extra` fields. `[defaults]`, the tiers
/// and the classes share the threshold keys; serde's `flatten` cannot be combined with
/// `deny_unknown_fields`, hence the macro.
macro_rules! knob_table {
    ($name:ident { $($extra:ident : $ety:ty),* $(,)? }) => {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $name {
            $($extra: $ety,)*
            confidence_level: Option<Spanned<f64>>,
            target_agreement: Option<Spanned<f64>>,
            min_reviewed: Option<Spanned<i64>>,
            max_ece: Option<Spanned<f64>>,
            calibration_alpha: Option<Spanned<f64>>,
            max_psi: Option<Spanned<f64>>,
            evidence_periods: Option<Spanned<i64>>,
            max_reversal_rate: Option<Spanned<f64>>,
            max_invented_share: Option<Spanned<f64>>,
            gate_max_criticality: Option<Spanned<String>>,
            gate_allow_privileged: Option<Spanned<bool>>,
        }

        impl $name {
            /// The threshold keys set in this table, in [`Thresholds::KEYS`] order.
            fn knobs(&self) -> Vec<(&'static str, RawKnob<'_>)> {
                let all = [
                    ("confidence_level", self.confidence_level.as_ref().map(RawKnob::Float)),
                    ("target_agreement", self.target_agreement.as_ref().map(RawKnob::Float)),
                    ("min_reviewed", self.min_reviewed.as_ref().map(RawKnob::Int)),
                    ("max_ece", self.max_ece.as_ref().map(RawKnob::Float)),
                    ("calibration_alpha", self.calibration_alpha.as_ref().map(RawKnob::Float)),
                    ("max_psi", self.max_psi.as_ref().map(RawKnob::Float)),
                    ("evidence_periods", self.evidence_periods.as_ref().map(RawKnob::Int)),
                    ("max_reversal_rate", self.max_reversal_rate.as_ref().map(RawKnob::Float)),
                    ("max_invented_share", self.max_invented_share.as_ref().map(RawKnob::Float)),
                    ("gate_max_criticality", self.gate_max_criticality.as_ref().map(RawKnob::Text)),
                    ("gate_allow_privileged", self.gate_allow_privileged.as_ref().map(RawKnob::Bool)),
                ];
                all.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect()
            }
        }
    };
}

knob_table!(RawKnobs {});
knob_table!(RawClass {
    tier: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    ceiling: Option<Spanned<String>>,
    reversible: Option<Spanned<bool>>,
    owner: Option<Spanned<String>>,
    approver: Option<Spanned<String>>,
});

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    run: Option<RawRun>,
    columns: Option<RawColumns>,
    defaults: Option<RawKnobs>,
    tiers: Option<RawTiers>,
    #[serde(default)]
    classes: BTreeMap<String, RawClass>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRun {
    period: Option<Spanned<String>>,
    max_rejected_share: Option<Spanned<f64>>,
    baseline_periods: Option<Spanned<i64>>,
    // A string or a TOML date: both `"2024-01-01"` and `2024-01-01` are accepted.
    baseline_start: Option<Spanned<toml::Value>>,
    baseline_end: Option<Spanned<toml::Value>>,
    fdr_level: Option<Spanned<f64>>,
    rubber_stamp_seconds: Option<Spanned<f64>>,
    review_minutes: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTiers {
    low: Option<RawKnobs>,
    medium: Option<RawKnobs>,
    high: Option<RawKnobs>,
    critical: Option<RawKnobs>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumns {
    decision_id: Option<Spanned<String>>,
    decided_at: Option<Spanned<String>>,
    action_class: Option<Spanned<String>>,
    confidence: Option<Spanned<String>>,
    model_version: Option<Spanned<String>>,
    asset_criticality: Option<Spanned<String>>,
    privileged: Option<Spanned<String>>,
    target_entity: Option<Spanned<String>>,
    technique_ids: Option<Spanned<String>>,
    executed: Option<Spanned<String>>,
    reviewed_at: Option<Spanned<String>>,
    analyst_id: Option<Spanned<String>>,
    verdict: Option<Spanned<String>>,
    verdict_decision_id: Option<Spanned<String>>,
}

impl RawColumns {
    fn entries(&self) -> Vec<(&'static str, &Spanned<String>)> {
        let all = [
            ("decision_id", &self.decision_id),
            ("decided_at", &self.decided_at),
            ("action_class", &self.action_class),
            ("confidence", &self.confidence),
            ("model_version", &self.model_version),
            ("asset_criticality", &self.asset_criticality),
            ("privileged", &self.privileged),
            ("target_entity", &self.target_entity),
            ("technique_ids", &self.technique_ids),
            ("executed", &self.executed),
            ("reviewed_at", &self.reviewed_at),
            ("analyst_id", &self.analyst_id),
            ("verdict", &self.verdict),
            (VERDICT_DECISION_ID, &self.verdict_decision_id),
        ];
        all.into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum KnobValue {
    Float(f64),
    Int(u64),
    Crit(Criticality),
    Bool(bool),
}

#[derive(Clone, Copy)]
enum Check {
    Open01,
    Closed01,
    Positive,
    IntAtLeast1 { max: u64 },
    Crit,
    Bool,
}

impl Check {
    fn expected(self) -> &'static str {
        match self {
            Check::Open01 => OPEN01,
            Check::Closed01 => CLOSED01,
            Check::Positive => POSITIVE,
            Check::IntAtLeast1 { max } if max == MAX_WINDOW_PERIODS as u64 => INT_WINDOW,
            Check::IntAtLeast1 { .. } => INT_GE1,
            Check::Crit => CRITICALITY,
            Check::Bool => BOOL,
        }
    }

    fn float_ok(self, x: f64) -> bool {
        match self {
            Check::Open01 => x > 0.0 && x < 1.0,
            Check::Closed01 => (0.0..=1.0).contains(&x),
            Check::Positive => x > 0.0 && x.is_finite(),
            _ => false,
        }
    }
}

struct KnobSpec {
    key: &'static str,
    check: Check,
}

const KNOBS: [KnobSpec; 11] = [
    KnobSpec {
        key: "confidence_level",
        check: Check::Open01,
    },
    KnobSpec {
        key: "target_agreement",
        check: Check::Open01,
    },
    KnobSpec {
        key: "min_reviewed",
        check: Check::IntAtLeast1 {
            max: i64::MAX as u64,
        },
    },
    KnobSpec {
        key: "max_ece",
        check: Check::Closed01,
    },
    KnobSpec {
        key: "calibration_alpha",
        check: Check::Open01,
    },
    KnobSpec {
        key: "max_psi",
        check: Check::Positive,
    },
    KnobSpec {
        key: "evidence_periods",
        check: Check::IntAtLeast1 {
            max: MAX_WINDOW_PERIODS as u64,
        },
    },
    KnobSpec {
        key: "max_reversal_rate",
        check: Check::Closed01,
    },
    KnobSpec {
        key: "max_invented_share",
        check: Check::Closed01,
    },
    KnobSpec {
        key: "gate_max_criticality",
        check: Check::Crit,
    },
    KnobSpec {
        key: "gate_allow_privileged",
        check: Check::Bool,
    },
];

/// The document being validated: its text (for lines and values as written) and its path.
struct Cx<'a> {
    text: &'a str,
    path: &'a str,
}

impl Cx<'_> {
    /// 1-based line of a byte offset.
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// The source text of a span, shortened for messages.
    fn raw(&self, span: &Range<usize>) -> String {
        let s = self.text.get(span.clone()).unwrap_or("").trim();
        let first = s.lines().next().unwrap_or("");
        if first.chars().count() > 60 || first.len() < s.len() {
            format!("{}…", first.chars().take(60).collect::<String>())
        } else {
            first.to_string()
        }
    }

    fn invalid(&self, key: &str, span: &Range<usize>, expected: &str) -> PolicyError {
        PolicyError::Invalid {
            path: self.path.to_string(),
            key: key.to_string(),
            line: self.line(span.start),
            value: self.raw(span),
            expected: expected.to_string(),
        }
    }

    fn contradiction(&self, key: &str, span: &Range<usize>, message: String) -> PolicyError {
        PolicyError::Contradiction {
            path: self.path.to_string(),
            key: key.to_string(),
            line: self.line(span.start),
            value: self.raw(span),
            message,
        }
    }

    /// Converts a typed-pass error of the deserializer into a [`PolicyError`] naming the key.
    fn de_error(&self, e: &toml::de::Error, loc: &Locator) -> PolicyError {
        let msg = e.message().trim_end();
        let span = e.span().unwrap_or(0..0);
        let line = self.line(span.start);
        let path = self.path.to_string();
        if let Some(rest) = msg.strip_prefix("unknown field `") {
            let field = rest.split('`').next().unwrap_or("");
            let expected = match msg.split_once(", expected ") {
                Some((_, list)) => list.replace('`', ""),
                None => "no keys here".to_string(),
            };
            let expected = if expected.contains(", ") {
                expected.replacen("one of ", "one of: ", 1)
            } else {
                expected
            };
            return PolicyError::UnknownKey {
                path,
                key: loc.unknown_key(self, &span, field),
                line,
                expected,
            };
        }
        let key = loc.value_at(span.start).unwrap_or_default();
        let serde_expected = msg
            .split_once(", expected ")
            .map(|(_, x)| x.to_string())
            .unwrap_or_default();
        // Tables deserialize into private structs or maps: say "a table", not the type name.
        let serde_expected = if serde_expected.starts_with("struct ") || serde_expected == "a map" {
            "a table".to_string()
        } else {
            serde_expected
        };
        let expected = expectation(&key)
            .map(str::to_string)
            .unwrap_or(serde_expected);
        if let Some(rest) = msg.strip_prefix("invalid type: ") {
            let found = found_type(
                rest.split_once(", expected")
                    .map(|(f, _)| f)
                    .unwrap_or(rest),
            );
            return PolicyError::WrongType {
                path,
                key,
                line,
                value: self.raw(&span),
                expected,
                found,
            };
        }
        PolicyError::Invalid {
            path,
            key,
            line,
            value: self.raw(&span),
            expected: format!("{expected} ({msg})"),
        }
    }
}

/// The type named by a serde "invalid type" message (`string "0.2"`, `integer `3``), in words.
fn found_type(what: &str) -> &'static str {
    const TYPES: [(&str, &str); 8] = [
        ("string", "a string"),
        ("integer", "an integer"),
        ("floating point", "a float"),
        ("boolean", "a boolean"),
        ("sequence", "an array"),
        ("map", "a table"),
        ("datetime", "a date-time"),
        ("unit", "nothing"),
    ];
    TYPES
        .iter()
        .find(|(k, _)| what.starts_with(k))
        .map_or("another type", |(_, v)| v)
}

/// Validates the thresholds set in one table (`defaults`, `tiers.high`, `classes.x`).
fn check_knobs(
    table: &str,
    knobs: Vec<(&'static str, RawKnob<'_>)>,
    cx: &Cx,
) -> Result<Vec<(&'static str, KnobValue)>, PolicyError> {
    let mut out = Vec::new();
    for (key, raw) in knobs {
        let spec = KNOBS
            .iter()
            .find(|s| s.key == key)
            .expect("knob keys come from KNOBS");
        let full = format!("{table}.{key}");
        let v = match (spec.check, raw) {
            (Check::Crit, RawKnob::Text(s)) => KnobValue::Crit(
                Criticality::parse(s.get_ref())
                    .ok_or_else(|| cx.invalid(&full, &s.span(), CRITICALITY))?,
            ),
            (Check::Bool, RawKnob::Bool(b)) => KnobValue::Bool(*b.get_ref()),
            (Check::IntAtLeast1 { max }, RawKnob::Int(i)) => {
                let x = *i.get_ref();
                if x < 1 || x as u64 > max {
                    return Err(cx.invalid(&full, &i.span(), spec.check.expected()));
                }
                KnobValue::Int(x as u64)
            }
            (check, RawKnob::Float(f)) => {
                if !check.float_ok(*f.get_ref()) {
                    return Err(cx.invalid(&full, &f.span(), check.expected()));
                }
                KnobValue::Float(*f.get_ref())
            }
            _ => unreachable!("the raw table's field types follow KNOBS"),
        };
        out.push((key, v));
    }
    Ok(out)
}

fn check_float(
    key: &str,
    v: &Option<Spanned<f64>>,
    check: Check,
    cx: &Cx,
) -> Result<Option<f64>, PolicyError> {
    match v {
        None => Ok(None),
        Some(s) if check.float_ok(*s.get_ref()) => Ok(Some(*s.get_ref())),
        Some(s) => Err(cx.invalid(key, &s.span(), check.expected())),
    }
}

fn check_date(key: &str, v: &Spanned<toml::Value>, cx: &Cx) -> Result<i32, PolicyError> {
    let text = match v.get_ref() {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Datetime(d) if d.time.is_none() && d.offset.is_none() => {
            d.date.map(|d| d.to_string())
        }
        _ => None,
    };
    text.as_deref()
        .and_then(parse_date)
        .ok_or_else(|| cx.invalid(key, &v.span(), DATE))
}

fn check_text(
    key: &str,
    v: &Spanned<String>,
    expected: &str,
    cx: &Cx,
) -> Result<String, PolicyError> {
    let s = v.get_ref().trim();
    if s.is_empty() {
        return Err(cx.invalid(key, &v.span(), expected));
    }
    Ok(s.to_string())
}

fn check_run(raw: Option<RawRun>, cx: &Cx) -> Result<RunSettings, PolicyError> {
    let mut run = RunSettings::default();
    let Some(r) = raw else { return Ok(run) };
    if let Some(p) = &r.period {
        run.period = match p.get_ref().as_str() {
            "week" => Granularity::Week,
            "month" => Granularity::Month,
            "quarter" => Granularity::Quarter,
            _ => return Err(cx.invalid("run.period", &p.span(), PERIOD)),
        };
    }
    if let Some(x) = check_float(
        "run.max_rejected_share",
        &r.max_rejected_share,
        Check::Closed01,
        cx,
    )? {
        run.max_rejected_share = x;
    }
    if let Some(b) = &r.baseline_periods {
        let x = *b.get_ref();
        if x < 1 || x > MAX_WINDOW_PERIODS as i64 {
            return Err(cx.invalid("run.baseline_periods", &b.span(), INT_WINDOW));
        }
        run.baseline_periods = x as u32;
    }
    if let Some(x) = check_float("run.fdr_level", &r.fdr_level, Check::Open01, cx)? {
        run.fdr_level = x;
    }
    if let Some(x) = check_float(
        "run.rubber_stamp_seconds",
        &r.rubber_stamp_seconds,
        Check::Positive,
        cx,
    )? {
        run.rubber_stamp_seconds = x;
    }
    if let Some(x) = check_float("run.review_minutes", &r.review_minutes, Check::Positive, cx)? {
        run.review_minutes = x;
    }
    run.baseline = match (&r.baseline_start, &r.baseline_end) {
        (None, None) => None,
        (Some(s), Some(e)) => {
            let start = check_date("run.baseline_start", s, cx)?;
            let end = check_date("run.baseline_end", e, cx)?;
            if start > end {
                return Err(cx.contradiction(
                    "run.baseline_start",
                    &s.span(),
                    format!(
                        "the fixed baseline starts after it ends (run.baseline_end = {} at line {}); swap them",
                        cx.raw(&e.span()),
                        cx.line(e.span().start)
                    ),
                ));
            }
            Some(FixedBaseline { start, end })
        }
        (Some(given), None) | (None, Some(given)) => {
            let (have, missing) = if r.baseline_start.is_some() {
                ("run.baseline_start", "run.baseline_end")
            } else {
                ("run.baseline_end", "run.baseline_start")
            };
            return Err(PolicyError::Missing {
                path: cx.path.to_string(),
                key: missing.to_string(),
                line: cx.line(given.span().start),
                expected: format!("{DATE}: a fixed baseline needs both ends when {have} is set"),
            });
        }
    };
    Ok(run)
}

/// How a table reads a contract column (see [`Columns::decisions`], [`Columns::verdicts`]).
type InputOf = fn(&Columns, &'static str) -> String;

fn check_columns(raw: Option<RawColumns>, cx: &Cx) -> Result<Columns, PolicyError> {
    let Some(raw) = raw else {
        return Ok(Columns::default());
    };
    let entries = raw.entries();
    let mut map = BTreeMap::new();
    for (k, v) in &entries {
        map.insert(
            k.to_string(),
            check_text(&format!("columns.{k}"), v, COLUMN, cx)?,
        );
    }
    let columns = Columns { map };
    // Within one table, two contract columns cannot read the same input column.
    let tables: [(&str, &[&str], InputOf); 2] = [
        ("decisions", &DECISION_COLUMNS, |c, k| {
            c.decisions(k).to_string()
        }),
        ("verdicts", &VERDICT_COLUMNS, |c, k| {
            c.verdicts(k).to_string()
        }),
    ];
    for (table, contract, input_of) in tables {
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for &k in contract {
            let input = input_of(&columns, k);
            if let Some(prev) = seen.insert(input.clone(), k) {
                // Report at a key the user wrote: the later one if mapped, else the earlier.
                let key = if table == "verdicts"
                    && k == "decision_id"
                    && columns.map.contains_key(VERDICT_DECISION_ID)
                {
                    VERDICT_DECISION_ID
                } else if columns.map.contains_key(k) {
                    k
                } else {
                    prev
                };
                let span = entries
                    .iter()
                    .find(|(e, _)| *e == key)
                    .map(|(_, v)| v.span())
                    .unwrap_or(0..0);
                return Err(cx.contradiction(
                    &format!("columns.{key}"),
                    &span,
                    format!(
                        "the {table} table would read input column \"{input}\" for both {prev} and {k}; map each contract column to its own input column"
                    ),
                ));
            }
        }
    }
    Ok(columns)
}

fn build(raw: RawPolicy, cx: &Cx, loc: &Locator) -> Result<Policy, PolicyError> {
    let run = check_run(raw.run, cx)?;
    let columns = check_columns(raw.columns, cx)?;

    let defaults_layer = match &raw.defaults {
        Some(d) => check_knobs("defaults", d.knobs(), cx)?,
        None => Vec::new(),
    };
    let mut tier_layers: [Vec<(&'static str, KnobValue)>; 4] = Default::default();
    if let Some(t) = &raw.tiers {
        for (i, (name, table)) in [
            ("low", &t.low),
            ("medium", &t.medium),
            ("high", &t.high),
            ("critical", &t.critical),
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(table) = table {
                tier_layers[i] = check_knobs(&format!("tiers.{name}"), table.knobs(), cx)?;
            }
        }
    }

    let mut base = Thresholds::default();
    let mut base_source: BTreeMap<String, String> = Thresholds::KEYS
        .iter()
        .map(|k| (k.to_string(), SOURCE_BUILT_IN.to_string()))
        .collect();
    for (k, v) in &defaults_layer {
        base.set(k, *v);
        base_source.insert(k.to_string(), "defaults".to_string());
    }

    let mut classes = BTreeMap::new();
    for (name, c) in &raw.classes {
        let table = format!("classes.{}", key_segment(name));
        let table_line = loc
            .table_line(&["classes", name.as_str()])
            .map(|o| cx.line(o))
            .unwrap_or(1);
        let missing = |key: &str, expected: &str| PolicyError::Missing {
            path: cx.path.to_string(),
            key: format!("{table}.{key}"),
            line: table_line,
            expected: expected.to_string(),
        };
        let tier_raw = c
            .tier
            .as_ref()
            .ok_or_else(|| missing("tier", CRITICALITY))?;
        let tier = Criticality::parse(tier_raw.get_ref())
            .ok_or_else(|| cx.invalid(&format!("{table}.tier"), &tier_raw.span(), CRITICALITY))?;
        let ceiling_raw = c.ceiling.as_ref().ok_or_else(|| missing("ceiling", MODE))?;
        let ceiling = Mode::parse(ceiling_raw.get_ref())
            .ok_or_else(|| cx.invalid(&format!("{table}.ceiling"), &ceiling_raw.span(), MODE))?;
        let mode = match &c.mode {
            None => Mode::Hitl,
            Some(m) => {
                let mode = Mode::parse(m.get_ref())
                    .ok_or_else(|| cx.invalid(&format!("{table}.mode"), &m.span(), MODE))?;
                if mode > ceiling {
                    return Err(cx.contradiction(
                        &format!("{table}.mode"),
                        &m.span(),
                        format!(
                            "mode is above the ceiling \"{}\" ({table}.ceiling, line {}): the policy never allows this class to run without prior approval; set mode = \"hitl\" or raise the ceiling",
                            ceiling.as_str(),
                            cx.line(ceiling_raw.span().start)
                        ),
                    ));
                }
                mode
            }
        };
        let reversible = *c
            .reversible
            .as_ref()
            .ok_or_else(|| missing("reversible", BOOL))?
            .get_ref();
        let owner_raw = c.owner.as_ref().ok_or_else(|| {
            missing(
                "owner",
                "a non-empty string naming the person accountable for the class",
            )
        })?;
        let owner = check_text(&format!("{table}.owner"), owner_raw, TEXT, cx)?;
        let approver = match &c.approver {
            Some(a) => Some(check_text(&format!("{table}.approver"), a, TEXT, cx)?),
            None => None,
        };
        let class_layer = check_knobs(&table, c.knobs(), cx)?;

        let mut thresholds = base.clone();
        let mut source = base_source.clone();
        for (k, v) in &tier_layers[tier as usize] {
            thresholds.set(k, *v);
            source.insert(k.to_string(), format!("tiers.{}", tier.as_str()));
        }
        for (k, v) in &class_layer {
            thresholds.set(k, *v);
            source.insert(k.to_string(), table.clone());
        }
        classes.insert(
            name.clone(),
            EffectiveSettings {
                class: name.clone(),
                tier,
                mode,
                ceiling,
                reversible,
                owner,
                approver,
                thresholds,
                source,
            },
        );
    }
    Ok(Policy {
        path: cx.path.to_string(),
        run,
        columns,
        defaults: base,
        classes,
    })
}

/// A key segment as it would be written in a dotted key: bare when it can be, quoted otherwise.
fn key_segment(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}

// ---------------------------------------------------------------------------------------------
// Locating keys: a structure-only pass that records every value's span
// ---------------------------------------------------------------------------------------------

// The wire protocol of `toml::Spanned` (serde_spanned 0.6, used by toml 0.8). `Spanned<T>` cannot
// be used for the tree itself: toml has no span for implicit tables (`[classes.x]` makes
// `classes` implicit), and `Spanned<T>` fails on them, whereas a visitor that speaks the protocol
// directly can accept a table with or without a span.
const SPANNED_NAME: &str = "$__serde_spanned_private_Spanned";
const SPANNED_START: &str = "$__serde_spanned_private_start";
const SPANNED_END: &str = "$__serde_spanned_private_end";
const SPANNED_VALUE: &str = "$__serde_spanned_private_value";
const SPANNED_FIELDS: [&str; 3] = [SPANNED_START, SPANNED_END, SPANNED_VALUE];

/// A value and its span (none for implicit tables).
struct Loc {
    span: Option<Range<usize>>,
    node: Node,
}

enum Node {
    Leaf,
    Table(Vec<(String, Loc)>),
}

impl<'de> Deserialize<'de> for Loc {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SPANNED_NAME, &SPANNED_FIELDS, LocVisitor)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LocVisitor).map(|l| l.node)
    }
}

struct LocVisitor;

macro_rules! leaf_visits {
    ($($name:ident : $ty:ty),*) => {
        $(fn $name<E>(self, _: $ty) -> Result<Loc, E> {
            Ok(Loc { span: None, node: Node::Leaf })
        })*
    };
}

impl<'de> serde::de::Visitor<'de> for LocVisitor {
    type Value = Loc;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }

    leaf_visits!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Loc, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Loc {
            span: None,
            node: Node::Leaf,
        })
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Loc, A::Error> {
        let first: Option<String> = map.next_key()?;
        if first.as_deref() == Some(SPANNED_START) {
            let start: usize = map.next_value()?;
            let mut end = start;
            let mut node = Node::Leaf;
            while let Some(k) = map.next_key::<String>()? {
                if k == SPANNED_END {
                    end = map.next_value()?;
                } else {
                    node = map.next_value::<Node>()?;
                }
            }
            return Ok(Loc {
                span: Some(start..end),
                node,
            });
        }
        let mut entries = Vec::new();
        let mut key = first;
        while let Some(k) = key {
            entries.push((k, map.next_value::<Loc>()?));
            key = map.next_key()?;
        }
        Ok(Loc {
            span: None,
            node: Node::Table(entries),
        })
    }
}

/// Every value of the document with its dotted key, for turning an error's byte offset into the
/// key it concerns.
struct Locator {
    entries: Vec<LocEntry>,
}

struct LocEntry {
    segments: Vec<String>,
    /// The value's span; for a table without one, the smallest start of its descendants.
    span: Option<Range<usize>>,
    first_descendant: Option<usize>,
    table: bool,
}

impl Locator {
    fn new(root: Loc) -> Locator {
        let mut entries = Vec::new();
        walk(&root, &mut Vec::new(), &mut entries);
        Locator { entries }
    }

    fn key(segments: &[String]) -> String {
        segments
            .iter()
            .map(|s| key_segment(s))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The deepest value whose span contains `offset`.
    fn value_at(&self, offset: usize) -> Option<String> {
        self.entries
            .iter()
            .filter(|e| !e.segments.is_empty())
            .filter(|e| {
                e.span
                    .as_ref()
                    .is_some_and(|s| s.contains(&offset) || s.start == offset)
            })
            .max_by_key(|e| {
                (
                    e.segments.len(),
                    std::cmp::Reverse(e.span.as_ref().map_or(0, |s| s.len())),
                )
            })
            .map(|e| Locator::key(&e.segments))
    }

    /// The dotted key of an unknown field named `field` whose key text is at `span`.
    fn unknown_key(&self, cx: &Cx, span: &Range<usize>, field: &str) -> String {
        let line = cx.line(span.start);
        let named = self
            .entries
            .iter()
            .filter(|e| e.segments.last().is_some_and(|s| s == field))
            .filter(|e| {
                let start = e.span.as_ref().map(|s| s.start).or(e.first_descendant);
                e.span.as_ref().is_some_and(|s| s.contains(&span.start))
                    || start.is_some_and(|s| cx.line(s) == line)
            });
        if let Some(e) = named.max_by_key(|e| e.segments.len()) {
            return Locator::key(&e.segments);
        }
        // Fall back to the deepest table containing the offset, plus the field.
        let table = self
            .entries
            .iter()
            .filter(|e| e.table && e.span.as_ref().is_some_and(|s| s.contains(&span.start)))
            .max_by_key(|e| e.segments.len());
        match table {
            Some(t) if !t.segments.is_empty() => {
                format!("{}.{}", Locator::key(&t.segments), key_segment(field))
            }
            _ => key_segment(field),
        }
    }

    /// Byte offset where a table starts (its header, or its first value if it is implicit).
    fn table_line(&self, segments: &[&str]) -> Option<usize> {
        let e = self.entries.iter().find(|e| {
            e.segments
                .iter()
                .map(String::as_str)
                .eq(segments.iter().copied())
        })?;
        e.span.as_ref().map(|s| s.start).or(e.first_descendant)
    }
}

fn walk(loc: &Loc, path: &mut Vec<String>, out: &mut Vec<LocEntry>) -> Option<usize> {
    let idx = out.len();
    out.push(LocEntry {
        segments: path.clone(),
        span: loc.span.clone(),
        first_descendant: None,
        table: matches!(loc.node, Node::Table(_)),
    });
    let mut first = loc.span.as_ref().map(|s| s.start);
    if let Node::Table(children) = &loc.node {
        let mut min: Option<usize> = None;
        for (k, child) in children {
            path.push(k.clone());
            if let Some(s) = walk(child, path, out) {
                min = Some(min.map_or(s, |m| m.min(s)));
            }
            path.pop();
        }
        out[idx].first_descendant = min;
        first = first.or(min);
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[defaults]
target_agreement = 0.97

[tiers.high]
target_agreement = 0.995
min_reviewed = 800

[classes.isolate_host]
tier = "high"
ceiling = "hotl"
reversible = true
owner = "Head of Detection & Response"
max_psi = 0.2

[classes.tag_alert]
tier = "low"
mode = "hotl"
ceiling = "hotl"
reversible = true
owner = "SOC Manager"
"#;

    #[test]
    fn resolution_order_class_then_tier_then_defaults_then_built_in() {
        let p = Policy::from_toml_str(MINIMAL, "p.toml").unwrap();
        let s = p.effective("isolate_host").unwrap();
        assert_eq!(s.thresholds.target_agreement, 0.995);
        assert_eq!(s.source_of("target_agreement"), "tiers.high");
        assert_eq!(s.thresholds.min_reviewed, 800);
        assert_eq!(s.thresholds.max_psi, 0.2);
        assert_eq!(s.source_of("max_psi"), "classes.isolate_host");
        assert_eq!(s.thresholds.max_ece, 0.05);
        assert_eq!(s.source_of("max_ece"), SOURCE_BUILT_IN);
        assert_eq!(s.mode, Mode::Hitl, "mode defaults to hitl");
        let t = p.effective("tag_alert").unwrap();
        assert_eq!(t.thresholds.target_agreement, 0.97);
        assert_eq!(t.source_of("target_agreement"), "defaults");
        assert_eq!(
            t.cite("target_agreement"),
            "policy classes.tag_alert via defaults"
        );
        assert_eq!(s.cite("max_psi"), "policy classes.isolate_host");
        assert!(p.effective("block_ip").is_none());
        assert_eq!(p.defaults().target_agreement, 0.97);
        let names: Vec<&str> = p.classes().map(|c| c.class.as_str()).collect();
        assert_eq!(names, ["isolate_host", "tag_alert"]);
    }

    #[test]
    fn run_defaults_and_dates() {
        let p = Policy::from_toml_str("", "p.toml").unwrap();
        assert_eq!(p.run(), &RunSettings::default());
        let p = Policy::from_toml_str(
            "[run]\nperiod = \"week\"\nbaseline_start = 2024-01-01\nbaseline_end = \"2024-03-31\"\n",
            "p.toml",
        )
        .unwrap();
        assert_eq!(p.run().period, Granularity::Week);
        let b = p.run().baseline.as_ref().unwrap();
        assert_eq!(FixedBaseline::date_string(b.start), "2024-01-01");
        assert_eq!(FixedBaseline::date_string(b.end), "2024-03-31");
    }

    #[test]
    fn columns_map_both_tables() {
        let p = Policy::from_toml_str(
            "[columns]\ndecision_id = \"id\"\nconfidence = \"score\"\nverdict_decision_id = \"ai_decision\"\n",
            "p.toml",
        )
        .unwrap();
        let c = p.columns();
        assert_eq!(c.decisions("decision_id"), "id");
        assert_eq!(c.decisions("confidence"), "score");
        assert_eq!(c.decisions("action_class"), "action_class");
        assert_eq!(c.verdicts("decision_id"), "ai_decision");
        let p = Policy::from_toml_str("[columns]\ndecision_id = \"id\"\n", "p.toml").unwrap();
        assert_eq!(p.columns().verdicts("decision_id"), "id");
        let e = Policy::from_toml_str(
            "[columns]\nconfidence = \"score\"\nexecuted = \"score\"\n",
            "p.toml",
        )
        .unwrap_err();
        assert_eq!(e.key(), Some("columns.executed"));
        assert_eq!(e.line(), Some(3));
    }

    #[test]
    fn dotted_and_inline_class_tables_locate_keys() {
        let text = "[classes]\nx.tier = \"high\"\nx.ceiling = \"hotl\"\nx.reversible = true\nx.bogus = 1\n";
        let e = Policy::from_toml_str(text, "p.toml").unwrap_err();
        assert_eq!(
            (e.key(), e.line()),
            (Some("classes.x.bogus"), Some(5)),
            "{e}"
        );
        let text = "classes = { y = { tier = \"low\", ceiling = \"hotl\", reversible = true } }\n";
        let e = Policy::from_toml_str(text, "p.toml").unwrap_err();
        assert_eq!(
            (e.key(), e.line()),
            (Some("classes.y.owner"), Some(1)),
            "{e}"
        );
        let text = "\n[classes]\nz.tier = \"low\"\nz.ceiling = \"hotl\"\nz.reversible = true\n";
        let e = Policy::from_toml_str(text, "p.toml").unwrap_err();
        assert_eq!(
            (e.key(), e.line()),
            (Some("classes.z.owner"), Some(3)),
            "{e}"
        );
    }

    #[test]
    fn message_names_path_key_line_and_expectation() {
        let text = "[classes.isolate_host]\ntier = \"high\"\nceiling = \"hotl\"\nreversible = true\nowner = \"x\"\ntarget_agreement = 1.3\n";
        let e = Policy::from_toml_str(text, "policy.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "classes.isolate_host.target_agreement = 1.3 at policy.toml line 6: expected a number in (0, 1)"
        );
    }

    #[test]
    fn describe_lists_every_class_and_overrides() {
        let p = Policy::from_toml_str(MINIMAL, "p.toml").unwrap();
        let d = p.describe();
        assert!(
            d.starts_with("policy p.toml: 2 classes (1 low, 1 high)\n"),
            "{d}"
        );
        assert!(d.contains("isolate_host  high  hitl  hotl"), "{d}");
        assert!(d.contains("≤ high assets, non-privileged"), "{d}");
        assert!(d.contains("isolate_host: target_agreement 0.995 (tiers.high), min_reviewed 800 (tiers.high), max_psi 0.2 (classes.isolate_host)"), "{d}");
    }
}
