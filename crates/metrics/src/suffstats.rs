//! Sufficient statistics: the mergeable summary of decisions and final verdicts that every
//! metric is computed from.
//!
//! One [`Cell`] summarises the decisions of one [`CellKey`] (action class, period, model version,
//! asset criticality, privileged). Cells add (`+=`): the statistics of two disjoint sets of
//! decisions summed equal the statistics of their union, which is what makes partitioned,
//! incremental and distributed aggregation possible. Counts add exactly; floating-point sums add
//! up to rounding.
//!
//! Two confidence histograms are kept:
//!
//! - the **calibration bins** of DESIGN.md: ten equal-width bins, bin 0 = [0, 0.1],
//!   bin i = (i/10, (i+1)/10] (a value on an edge goes to the lower bin);
//! - the **fine bins**: one hundred bins, bin k = [k/100, (k+1)/100), with 1.0 in bin 99, so that
//!   "confidence ≥ k/100" is a suffix sum (gate thresholds on a 0.01 grid).
//!
//! Edges are the correctly rounded quotients k/10 and k/100, as the `f64` division gives them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::AddAssign;

use crate::period::Period;

/// Number of calibration bins (DESIGN.md).
pub const CAL_BINS: usize = 10;
/// Number of fine confidence bins (gate threshold grid of 0.01).
pub const FINE_BINS: usize = 100;

/// The calibration bins' edges i/10, i = 0..=10, as the division rounds them.
const CAL_EDGES: [f64; CAL_BINS + 1] = edges::<{ CAL_BINS + 1 }>(10.0);
/// The fine bins' edges k/100, k = 0..=100, as the division rounds them.
const FINE_EDGES: [f64; FINE_BINS + 1] = edges::<{ FINE_BINS + 1 }>(100.0);

const fn edges<const N: usize>(per_unit: f64) -> [f64; N] {
    let mut e = [0.0; N];
    let mut i = 0;
    while i < N {
        e[i] = i as f64 / per_unit;
        i += 1;
    }
    e
}

/// Calibration bin of a confidence in [0, 1]: bin 0 = [0, 0.1], bin i = (i/10, (i+1)/10].
pub fn cal_bin(c: f64) -> usize {
    // Smallest i with c ≤ (i+1)/10, comparing against the correctly rounded edges; the first
    // guess (truncation, no call into the maths library) is off by at most one.
    let mut i = ((c * 10.0) as isize).clamp(0, 9) as usize;
    while i > 0 && c <= CAL_EDGES[i] {
        i -= 1;
    }
    while i < 9 && c > CAL_EDGES[i + 1] {
        i += 1;
    }
    i
}

/// Fine bin of a confidence in [0, 1]: bin k = [k/100, (k+1)/100), 1.0 in bin 99.
pub fn fine_bin(c: f64) -> usize {
    let mut k = ((c * 100.0) as isize).clamp(0, 99) as usize;
    while k > 0 && c < FINE_EDGES[k] {
        k -= 1;
    }
    while k < 99 && c >= FINE_EDGES[k + 1] {
        k += 1;
    }
    k
}

/// Asset criticality, ordered from least to most critical.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Criticality {
    Low,
    Medium,
    High,
    Critical,
}

impl Criticality {
    /// All levels, least critical first.
    pub const ALL: [Criticality; 4] = [
        Criticality::Low,
        Criticality::Medium,
        Criticality::High,
        Criticality::Critical,
    ];

    /// The input-contract spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Criticality::Low => "low",
            Criticality::Medium => "medium",
            Criticality::High => "high",
            Criticality::Critical => "critical",
        }
    }

    /// Parses the input-contract spelling (exact, lower case).
    pub fn parse(s: &str) -> Option<Criticality> {
        Criticality::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// A final verdict, or none (the decision was never reviewed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Approve,
    Override,
    Reject,
    Timeout,
    Unreviewed,
}

impl Outcome {
    /// The spelling used in statistics tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Approve => "approve",
            Outcome::Override => "override",
            Outcome::Reject => "reject",
            Outcome::Timeout => "timeout",
            Outcome::Unreviewed => "unreviewed",
        }
    }

    /// Parses [`Outcome::as_str`]'s spelling.
    pub fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::Approve,
            Outcome::Override,
            Outcome::Reject,
            Outcome::Timeout,
            Outcome::Unreviewed,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }

    /// Reviewed = approve, override or reject (DESIGN.md).
    pub fn is_reviewed(self) -> bool {
        matches!(self, Outcome::Approve | Outcome::Override | Outcome::Reject)
    }
}

/// The grouping key of one cell.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CellKey {
    pub action_class: String,
    pub period: Period,
    pub model_version: String,
    pub criticality: Criticality,
    pub privileged: bool,
}

/// Counts of one fine confidence bin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FineBin {
    /// Decisions in the bin.
    pub n: u64,
    /// Reviewed decisions (final verdict approve, override or reject).
    pub reviewed: u64,
    /// Approved decisions.
    pub approve: u64,
}

/// Counts and confidence sum of one calibration bin, reviewed decisions only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CalBin {
    /// Reviewed decisions in the bin.
    pub n: u64,
    /// Approved decisions in the bin (Σ y).
    pub approve: u64,
    /// Σ confidence over the bin's reviewed decisions.
    pub sum_conf: f64,
}

/// Sufficient statistics of one set of decisions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub n_approve: u64,
    pub n_override: u64,
    pub n_reject: u64,
    pub n_timeout: u64,
    pub n_unreviewed: u64,
    /// Decisions executed without prior approval (hotl).
    pub n_executed: u64,
    /// Executed decisions whose final verdict is override or reject (reversed autonomous actions).
    pub n_executed_reversed: u64,
    /// Σ confidence over all decisions.
    pub sum_conf_all: f64,
    /// Σ c, Σ c², Σ c³, Σ c⁴ over reviewed decisions.
    pub sum_conf: f64,
    pub sum_conf2: f64,
    pub sum_conf3: f64,
    pub sum_conf4: f64,
    /// Σ c·y over reviewed decisions (y = 1 if approved).
    pub sum_conf_approve: f64,
    pub cal: [CalBin; CAL_BINS],
    pub fine: Vec<FineBin>,
}

impl Default for Cell {
    fn default() -> Self {
        Cell {
            n_approve: 0,
            n_override: 0,
            n_reject: 0,
            n_timeout: 0,
            n_unreviewed: 0,
            n_executed: 0,
            n_executed_reversed: 0,
            sum_conf_all: 0.0,
            sum_conf: 0.0,
            sum_conf2: 0.0,
            sum_conf3: 0.0,
            sum_conf4: 0.0,
            sum_conf_approve: 0.0,
            cal: [CalBin::default(); CAL_BINS],
            fine: vec![FineBin::default(); FINE_BINS],
        }
    }
}

impl Cell {
    /// All decisions.
    pub fn n_decisions(&self) -> u64 {
        self.n_reviewed() + self.n_timeout + self.n_unreviewed
    }

    /// Decisions whose final verdict is approve, override or reject.
    pub fn n_reviewed(&self) -> u64 {
        self.n_approve + self.n_override + self.n_reject
    }

    /// Reviewed decisions the analyst did not approve.
    pub fn n_disagree(&self) -> u64 {
        self.n_override + self.n_reject
    }

    /// Adds one decision. `conf` must be in [0, 1].
    pub fn add_decision(&mut self, conf: f64, outcome: Outcome, executed: bool) {
        self.add_group(conf, outcome, executed, 1, conf, conf * conf);
    }

    /// Adds `n` decisions that share one calibration bin, fine bin, outcome and execution flag,
    /// given Σ c and Σ c² (and the representative `conf` that locates the bins). Higher power
    /// sums are then only exact for `n` = 1; use [`Cell::add_row`] for pre-aggregated rows.
    fn add_group(
        &mut self,
        conf: f64,
        outcome: Outcome,
        executed: bool,
        n: u64,
        sum_c: f64,
        sum_c2: f64,
    ) {
        let c3 = conf * conf * conf;
        self.add_row(&StatRow {
            cal_bin: cal_bin(conf) as u8,
            fine_bin: fine_bin(conf) as u8,
            outcome,
            executed,
            n,
            sum_conf: sum_c,
            sum_conf2: sum_c2,
            sum_conf3: c3 * n as f64,
            sum_conf4: c3 * conf * n as f64,
        });
    }

    /// Adds one pre-aggregated statistics row (the long form written by the aggregate stage).
    pub fn add_row(&mut self, r: &StatRow) {
        let n = r.n;
        match r.outcome {
            Outcome::Approve => self.n_approve += n,
            Outcome::Override => self.n_override += n,
            Outcome::Reject => self.n_reject += n,
            Outcome::Timeout => self.n_timeout += n,
            Outcome::Unreviewed => self.n_unreviewed += n,
        }
        if r.executed {
            self.n_executed += n;
            if matches!(r.outcome, Outcome::Override | Outcome::Reject) {
                self.n_executed_reversed += n;
            }
        }
        self.sum_conf_all += r.sum_conf;
        let fine = &mut self.fine[r.fine_bin as usize];
        fine.n += n;
        if r.outcome.is_reviewed() {
            self.sum_conf += r.sum_conf;
            self.sum_conf2 += r.sum_conf2;
            self.sum_conf3 += r.sum_conf3;
            self.sum_conf4 += r.sum_conf4;
            fine.reviewed += n;
            let cal = &mut self.cal[r.cal_bin as usize];
            cal.n += n;
            cal.sum_conf += r.sum_conf;
            if r.outcome == Outcome::Approve {
                self.sum_conf_approve += r.sum_conf;
                fine.approve += n;
                cal.approve += n;
            }
        }
    }
}

impl AddAssign<&Cell> for Cell {
    fn add_assign(&mut self, o: &Cell) {
        self.n_approve += o.n_approve;
        self.n_override += o.n_override;
        self.n_reject += o.n_reject;
        self.n_timeout += o.n_timeout;
        self.n_unreviewed += o.n_unreviewed;
        self.n_executed += o.n_executed;
        self.n_executed_reversed += o.n_executed_reversed;
        self.sum_conf_all += o.sum_conf_all;
        self.sum_conf += o.sum_conf;
        self.sum_conf2 += o.sum_conf2;
        self.sum_conf3 += o.sum_conf3;
        self.sum_conf4 += o.sum_conf4;
        self.sum_conf_approve += o.sum_conf_approve;
        for (a, b) in self.cal.iter_mut().zip(o.cal.iter()) {
            a.n += b.n;
            a.approve += b.approve;
            a.sum_conf += b.sum_conf;
        }
        for (a, b) in self.fine.iter_mut().zip(o.fine.iter()) {
            a.n += b.n;
            a.reviewed += b.reviewed;
            a.approve += b.approve;
        }
    }
}

/// One row of the long statistics table: decisions sharing a cell key, calibration bin, fine
/// bin, final outcome and execution flag. This is the exchange format with SQL engines.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatRow {
    pub cal_bin: u8,
    pub fine_bin: u8,
    pub outcome: Outcome,
    pub executed: bool,
    pub n: u64,
    pub sum_conf: f64,
    pub sum_conf2: f64,
    pub sum_conf3: f64,
    pub sum_conf4: f64,
}

/// The sufficient statistics of a whole input: cells by key, in key order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SuffStats {
    pub cells: BTreeMap<CellKey, Cell>,
}

impl SuffStats {
    /// Adds one long-form row under its key.
    pub fn add_row(&mut self, key: CellKey, row: &StatRow) {
        self.cells.entry(key).or_default().add_row(row);
    }

    /// Merges another set of statistics into this one.
    pub fn merge(&mut self, other: &SuffStats) {
        for (k, c) in &other.cells {
            *self.cells.entry(k.clone()).or_default() += c;
        }
    }

    /// Sum of the cells that satisfy `keep`.
    pub fn total<F: Fn(&CellKey) -> bool>(&self, keep: F) -> Cell {
        let mut acc = Cell::default();
        for (k, c) in &self.cells {
            if keep(k) {
                acc += c;
            }
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_bins_follow_design_edges() {
        assert_eq!(cal_bin(0.0), 0);
        assert_eq!(cal_bin(0.1), 0, "an edge goes to the lower bin");
        assert_eq!(cal_bin(f64::from_bits(0.1_f64.to_bits() + 1)), 1);
        assert_eq!(cal_bin(0.3), 2, "0.3 is the edge 3/10");
        assert_eq!(cal_bin(0.7), 6);
        assert_eq!(cal_bin(0.95), 9);
        assert_eq!(cal_bin(1.0), 9);
    }

    #[test]
    fn bins_follow_their_definitions_at_and_around_every_edge() {
        // The bins by definition, with the edges computed as i/10 and k/100 at run time.
        let cal = |c: f64| (0..10).find(|&i| c <= (i + 1) as f64 / 10.0).unwrap_or(9);
        let fine = |c: f64| (0..100).rev().find(|&k| c >= k as f64 / 100.0).unwrap_or(0);
        let mut values = vec![0.0, 1.0, f64::MIN_POSITIVE, 0.5 + f64::EPSILON];
        for k in 0..=100 {
            let edge = k as f64 / 100.0;
            for ulps in [-2i64, -1, 0, 1, 2] {
                let v = f64::from_bits((edge.to_bits() as i64 + ulps).max(0) as u64);
                values.push(v.clamp(0.0, 1.0));
            }
        }
        values.extend((0..10_000).map(|i| i as f64 / 9_999.0));
        for c in values {
            assert_eq!(cal_bin(c), cal(c), "cal_bin({c:e})");
            assert_eq!(fine_bin(c), fine(c), "fine_bin({c:e})");
        }
    }

    #[test]
    fn fine_bins_are_left_closed() {
        assert_eq!(fine_bin(0.0), 0);
        assert_eq!(fine_bin(0.97), 97, "0.97 is the edge 97/100");
        assert_eq!(fine_bin(f64::from_bits(0.97_f64.to_bits() - 1)), 96);
        assert_eq!(fine_bin(0.29), 29);
        assert_eq!(fine_bin(0.57), 57);
        assert_eq!(fine_bin(1.0), 99);
    }

    #[test]
    fn cells_merge_like_their_union() {
        let data = [
            (0.95, Outcome::Approve, false),
            (0.1, Outcome::Reject, true),
            (0.5, Outcome::Timeout, false),
            (0.99, Outcome::Override, true),
            (0.3, Outcome::Unreviewed, false),
        ];
        let mut whole = Cell::default();
        let (mut a, mut b) = (Cell::default(), Cell::default());
        for (i, &(c, o, e)) in data.iter().enumerate() {
            whole.add_decision(c, o, e);
            if i % 2 == 0 {
                a.add_decision(c, o, e)
            } else {
                b.add_decision(c, o, e)
            }
        }
        a += &b;
        assert_eq!(a.n_decisions(), 5);
        assert_eq!(a.n_reviewed(), 3);
        assert_eq!(a.n_executed_reversed, 2);
        assert_eq!(a.fine, whole.fine);
        assert_eq!(a.cal.iter().map(|c| c.n).sum::<u64>(), 3);
        assert!((a.sum_conf - whole.sum_conf).abs() < 1e-15);
    }
}
