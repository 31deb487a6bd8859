//! The bundled MITRE ATT&CK Enterprise technique list, parsed at start-up from the TSV the
//! engine itself uses (`data/attack/enterprise_techniques.tsv`), so the simulator and the
//! fabricated-reasoning check can never disagree about which IDs exist.

/// The TSV: `id`, `name`, `is_subtechnique`, `deprecated_or_revoked` (header first).
const TSV: &str = include_str!("../../../data/attack/enterprise_techniques.tsv");

/// IDs the fabricating model version invents. Only those absent from the TSV are used, so a
/// future ATT&CK release that assigns one of them cannot turn an "invented" ID into a real one.
const INVENTED_CANDIDATES: &[&str] = &[
    "T1999",
    "T1777.003",
    "T1888",
    "T1999.002",
    "T1801.004",
    "T1950",
];

/// Technique IDs by status.
#[derive(Debug, Clone)]
pub(crate) struct Techniques {
    /// Current IDs (`deprecated_or_revoked == "false"`), in file order.
    pub current: Vec<String>,
    /// Revoked or deprecated IDs (`deprecated_or_revoked == "true"`), in file order.
    pub revoked: Vec<String>,
    /// Invented IDs: not in the file at all.
    pub invented: Vec<String>,
}

impl Techniques {
    /// Parses the bundled TSV.
    ///
    /// # Panics
    ///
    /// If the bundled file lacks the `id` or `deprecated_or_revoked` column (a build-time
    /// invariant of this repository, not user input).
    pub(crate) fn bundled() -> Self {
        let mut lines = TSV.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
        let col = |name: &str| {
            header
                .iter()
                .position(|h| h.trim() == name)
                .unwrap_or_else(|| panic!("bundled ATT&CK TSV has no `{name}` column"))
        };
        let (id_col, status_col) = (col("id"), col("deprecated_or_revoked"));
        let mut current = Vec::new();
        let mut revoked = Vec::new();
        for line in lines.filter(|l| !l.trim().is_empty()) {
            let fields: Vec<&str> = line.split('\t').collect();
            let (Some(id), Some(status)) = (fields.get(id_col), fields.get(status_col)) else {
                continue;
            };
            match status.trim() {
                "false" => current.push(id.trim().to_string()),
                "true" => revoked.push(id.trim().to_string()),
                _ => {}
            }
        }
        let invented = INVENTED_CANDIDATES
            .iter()
            .filter(|c| !current.iter().chain(&revoked).any(|id| id == *c))
            .map(|c| (*c).to_string())
            .collect();
        Techniques {
            current,
            revoked,
            invented,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_bundled_list() {
        let t = Techniques::bundled();
        // Counted independently: `awk -F'\t' 'NR>1{print $4}' | sort | uniq -c`.
        assert_eq!(t.current.len(), 697);
        assert_eq!(t.revoked.len(), 161);
        assert!(t.current.iter().any(|id| id == "T1059.001"));
        assert!(t.revoked.iter().any(|id| id == "T1562.001"));
        assert!(t.invented.len() >= 4);
        for id in &t.invented {
            assert!(!TSV
                .lines()
                .any(|l| l.split('\t').next() == Some(id.as_str())));
        }
    }
}
