//! Governance for `readiness`: the policy file people write ([`policy`]) and the rules that turn
//! a class's evidence into a recommendation ([`mod@recommend`]).
//!
//! Both are pure: no I/O beyond [`policy::Policy::from_file`], no clock. The schema and the
//! decision table are documented in `POLICY.md` next to this crate's `Cargo.toml`.

pub mod policy;
pub mod recommend;

pub use policy::{
    Columns, EffectiveSettings, FixedBaseline, Mode, Policy, PolicyError, RunSettings, Thresholds,
};
pub use recommend::{
    recommend, AgreementDrop, ClassEvidence, Gate, HoldEstimate, Kind, PsiFlag, Recommendation,
    Rule, RuleOutcome, VersionRegression,
};
