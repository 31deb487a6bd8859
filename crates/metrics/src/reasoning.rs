//! Fabricated and stale reasoning: MITRE ATT&CK technique IDs cited by the agent, checked
//! against the bundled ATT&CK v19.1 Enterprise list.
//!
//! An ID (trimmed, upper-cased) is **current** when it is in the list and neither deprecated
//! nor revoked, **stale** when it is in the list but deprecated or revoked (with its
//! replacement when the list names one), and **unknown** (invented) when it is not in the list.
//! Per class and model version, the share of decisions citing at least one unknown ID, and the
//! share citing at least one stale ID, each with a Wilson interval.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::interval::{wilson, ConfidenceLevel};

/// What an ID is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TechniqueStatus {
    /// In the list, in force.
    Current,
    /// Deprecated or revoked; the replacement when the list names one.
    Stale {
        /// The ID that replaced it.
        replaced_by: Option<String>,
    },
    /// Not in the list: invented.
    Unknown,
}

/// The ATT&CK list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttackCatalog {
    /// ID → deprecated or revoked.
    ids: BTreeMap<String, bool>,
    /// Revoked ID → replacement.
    replaced_by: BTreeMap<String, String>,
}

/// Canonical spelling of a cited ID.
pub fn normalise_id(id: &str) -> String {
    id.trim().to_ascii_uppercase()
}

impl AttackCatalog {
    /// Parses `enterprise_techniques.tsv` (`id`, `name`, `is_subtechnique`,
    /// `deprecated_or_revoked`) and `enterprise_revoked_by.tsv` (`revoked_id`,
    /// `replaced_by_id`, `replaced_by_name`). Errors name the file line.
    pub fn parse(techniques_tsv: &str, revoked_by_tsv: &str) -> Result<AttackCatalog, String> {
        let mut ids = BTreeMap::new();
        for (i, line) in techniques_tsv.lines().enumerate().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 4 {
                return Err(format!("techniques line {}: expected 4 fields", i + 1));
            }
            let stale = match f[3].trim() {
                "true" => true,
                "false" => false,
                other => {
                    return Err(format!(
                        "techniques line {}: deprecated_or_revoked is '{other}', expected true or false",
                        i + 1
                    ))
                }
            };
            ids.insert(normalise_id(f[0]), stale);
        }
        let mut replaced_by = BTreeMap::new();
        for (i, line) in revoked_by_tsv.lines().enumerate().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 2 {
                return Err(format!("revoked_by line {}: expected 3 fields", i + 1));
            }
            replaced_by.insert(normalise_id(f[0]), normalise_id(f[1]));
        }
        Ok(AttackCatalog { ids, replaced_by })
    }

    /// The status of one cited ID.
    pub fn status(&self, id: &str) -> TechniqueStatus {
        let id = normalise_id(id);
        match self.ids.get(&id) {
            Some(false) => TechniqueStatus::Current,
            Some(true) => TechniqueStatus::Stale {
                replaced_by: self.replaced_by.get(&id).cloned(),
            },
            None => TechniqueStatus::Unknown,
        }
    }

    /// Every listed ID with whether it is stale, in ID order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, bool)> {
        self.ids.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Number of listed IDs.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Citation counts of one class and model version.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReasoningCounts {
    /// Decisions.
    pub n_decisions: u64,
    /// Decisions citing at least one ID.
    pub n_citing: u64,
    /// Decisions citing at least one unknown (invented) ID.
    pub n_unknown: u64,
    /// Decisions citing at least one stale (deprecated or revoked) ID.
    pub n_stale: u64,
}

/// Shares of decisions with fabricated or stale citations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReasoningShares {
    /// n_unknown / n_decisions.
    pub invented_share: f64,
    /// Wilson interval of the invented share.
    pub invented_low: f64,
    /// Upper end.
    pub invented_high: f64,
    /// n_stale / n_decisions.
    pub stale_share: f64,
    /// Wilson interval of the stale share.
    pub stale_low: f64,
    /// Upper end.
    pub stale_high: f64,
}

/// Shares with intervals; `None` without decisions.
pub fn shares(c: &ReasoningCounts, level: ConfidenceLevel) -> Option<ReasoningShares> {
    let inv = wilson(c.n_unknown, c.n_decisions, level)?;
    let st = wilson(c.n_stale, c.n_decisions, level)?;
    Some(ReasoningShares {
        invented_share: c.n_unknown as f64 / c.n_decisions as f64,
        invented_low: inv.low,
        invented_high: inv.high,
        stale_share: c.n_stale as f64 / c.n_decisions as f64,
        stale_low: st.low,
        stale_high: st.high,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TECH: &str = "id\tname\tis_subtechnique\tdeprecated_or_revoked\n\
        T1001\tData Obfuscation\tfalse\tfalse\n\
        T1002\tData Compressed\tfalse\ttrue\n\
        T1562.001\tDisable Tools\ttrue\ttrue\n";
    const REV: &str = "revoked_id\treplaced_by_id\treplaced_by_name\nT1002\tT1560\tArchive\n";

    #[test]
    fn statuses() {
        let c = AttackCatalog::parse(TECH, REV).unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c.status("T1001"), TechniqueStatus::Current);
        assert_eq!(c.status(" t1001 "), TechniqueStatus::Current);
        assert_eq!(
            c.status("T1002"),
            TechniqueStatus::Stale {
                replaced_by: Some("T1560".into())
            }
        );
        assert_eq!(
            c.status("T1562.001"),
            TechniqueStatus::Stale { replaced_by: None }
        );
        assert_eq!(c.status("T9999"), TechniqueStatus::Unknown);
        assert_eq!(c.status(""), TechniqueStatus::Unknown);
    }

    #[test]
    fn malformed_catalog_names_the_line() {
        let e = AttackCatalog::parse("id\tname\tx\td\nT1\tx\tfalse\tmaybe\n", REV).unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn bundled_list_counts() {
        let c = AttackCatalog::parse(
            include_str!("../../../data/attack/enterprise_techniques.tsv"),
            include_str!("../../../data/attack/enterprise_revoked_by.tsv"),
        )
        .unwrap();
        // data/attack/README.md: 858 rows, 222 + 475 active, 12 deprecated, 149 revoked.
        assert_eq!(c.len(), 858);
        assert_eq!(c.entries().filter(|(_, s)| !s).count(), 222 + 475);
        assert!(matches!(
            c.status("T1562"),
            TechniqueStatus::Stale {
                replaced_by: Some(_)
            }
        ));
    }

    #[test]
    fn shares_by_hand() {
        let c = ReasoningCounts {
            n_decisions: 200,
            n_citing: 150,
            n_unknown: 12,
            n_stale: 8,
        };
        let s = shares(&c, ConfidenceLevel::new(0.95).unwrap()).unwrap();
        assert_eq!(s.invented_share, 0.06);
        assert_eq!(s.stale_share, 0.04);
        assert!(s.invented_low < 0.06 && s.invented_high > 0.06);
        assert!(shares(
            &ReasoningCounts::default(),
            ConfidenceLevel::new(0.95).unwrap()
        )
        .is_none());
    }
}
