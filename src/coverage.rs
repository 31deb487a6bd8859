//! Whether the run looks at what the user meant: the evaluated period, and the policy's class
//! names.
//!
//! The evaluated period is the latest period with a decision, so one stray row (a clock-skewed
//! timestamp still inside the accepted years) or a period that has only begun decides what every
//! recommendation and the drift watch look at. Neither is an error: a warning names the period
//! and what looks wrong, on standard error and in the outputs that carry warnings. So does a
//! policy class that matches no decision while the data holds an unowned class spelled almost
//! the same.

use readiness_metrics::suffstats::SuffStats;
use readiness_metrics::{Granularity, Period};

/// The evaluated period holds fewer decisions than this share of the median earlier period.
pub const THIN_SHARE: f64 = 0.1;

/// Valid decisions per period.
pub type PerPeriod = std::collections::BTreeMap<Period, u64>;

/// The decisions per period of a statistics set.
pub fn per_period(stats: &SuffStats) -> PerPeriod {
    let mut per_period = PerPeriod::new();
    for (key, cell) in &stats.cells {
        *per_period.entry(key.period).or_default() += cell.n_decisions();
    }
    per_period
}

/// Warnings about the evaluated period, the latest of `per_period` with a decision: empty
/// periods between it and the previous period with decisions, or far fewer decisions than the
/// earlier periods (the median of those with decisions). Empty when nothing looks wrong or
/// there is no earlier period.
pub fn period_warnings(per_period: &PerPeriod, granularity: Granularity) -> Vec<String> {
    let mut per_period = per_period.clone();
    per_period.retain(|_, n| *n > 0);
    let Some((&evaluated, &n)) = per_period.last_key_value() else {
        return Vec::new();
    };
    let mut earlier: Vec<u64> = per_period.range(..evaluated).map(|(_, &n)| n).collect();
    let Some((&previous, _)) = per_period.range(..evaluated).next_back() else {
        return Vec::new();
    };
    let label = |p: Period| crate::present::period_label(granularity, p);
    let what = format!(
        "the evaluated period {} (the latest with a decision) holds {n} decision{}",
        label(evaluated),
        if n == 1 { "" } else { "s" }
    );
    let advice = "every recommendation and the drift watch look at it: if it holds stray or \
                  clock-skewed rows, or has only begun, give the inputs up to the period to \
                  evaluate (a glob over the closed periods)";
    let mut warnings = Vec::new();
    let gap = granularity.distance(previous, evaluated) - 1;
    if gap > 0 {
        warnings.push(format!(
            "{what} and follows {gap} period{} without any after {}; {advice}",
            if gap == 1 { "" } else { "s" },
            label(previous)
        ));
    }
    earlier.sort_unstable();
    let median = earlier[earlier.len() / 2];
    if gap == 0 && (n as f64) < THIN_SHARE * median as f64 {
        warnings.push(format!(
            "{what}, {:.1}% of the median earlier period ({median}); {advice}",
            100.0 * n as f64 / median as f64
        ));
    }
    warnings
}

/// A warning when the policy's fixed baseline holds no period with a decision: no drift can
/// then be measured.
pub fn baseline_warning(
    stats: &SuffStats,
    baseline: &readiness_governance::FixedBaseline,
) -> Option<String> {
    let covered = stats
        .cells
        .iter()
        .any(|(k, c)| baseline.holds(k.period.start) && c.n_decisions() > 0);
    (!covered).then(|| {
        format!(
            "the policy's fixed baseline ({} to {}, run.baseline_start and run.baseline_end) \
             holds no period with a decision: no confidence or agreement drift can be measured",
            Period {
                start: baseline.start
            }
            .date_string(),
            Period {
                start: baseline.end
            }
            .date_string()
        )
    })
}

/// Warnings for policy classes that match no decision while a class of the data without a
/// policy entry is spelled almost the same (a typo leaves the class unowned and the policy's
/// settings unused). `policy_classes` and `data_classes` are the two sets of names; the
/// unowned classes are the data's names the policy lacks.
pub fn policy_typo_warnings<'a>(
    policy_classes: impl IntoIterator<Item = &'a str>,
    data_classes: &std::collections::BTreeSet<&str>,
) -> Vec<String> {
    let policy: std::collections::BTreeSet<&str> = policy_classes.into_iter().collect();
    let unowned: Vec<&str> = data_classes
        .iter()
        .copied()
        .filter(|c| !policy.contains(c))
        .collect();
    policy
        .iter()
        .filter(|p| !data_classes.contains(*p))
        .filter_map(|p| {
            let near: Vec<&str> = unowned
                .iter()
                .copied()
                .filter(|u| spelled_alike(p, u))
                .collect();
            (!near.is_empty()).then(|| {
                format!(
                    "policy class '{p}' matches no decision, and the data's {} without a \
                     policy entry (unowned, held under [defaults]): a typo in the policy?",
                    near.iter()
                        .map(|c| format!("'{c}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                        + if near.len() == 1 { " is" } else { " are" }
                )
            })
        })
        .collect()
}

/// Whether two class names differ only in case, in `-`/`_`/space, or by at most two edits
/// (insertions, deletions, substitutions of one character).
fn spelled_alike(a: &str, b: &str) -> bool {
    let fold = |s: &str| -> Vec<char> {
        s.chars()
            .filter(|c| !matches!(c, '-' | '_' | ' '))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let (a, b) = (fold(a), fold(b));
    if a == b {
        return true;
    }
    if a.len().abs_diff(b.len()) > 2 || a.len().min(b.len()) < 4 {
        return false;
    }
    // Levenshtein distance, one row at a time.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()] <= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alike_spellings_are_told_from_different_names() {
        for (a, b) in [
            ("isolate_hosts", "isolate_host"),
            ("isolate_host", "Isolate-Host"),
            ("block_ip", "block_ips"),
            ("enrich_alert", "enrich_alret"),
        ] {
            assert!(spelled_alike(a, b), "{a} {b}");
        }
        for (a, b) in [
            ("block_ip", "block_url"),
            ("tag_alert", "enrich_alert"),
            ("abc", "abd"),
            ("isolate_host", "disable_user"),
        ] {
            assert!(!spelled_alike(a, b), "{a} {b}");
        }
    }

    #[test]
    fn only_a_policy_class_without_data_near_an_unowned_class_is_warned_about() {
        let data = ["isolate_host", "block_ip", "tag_alert"]
            .into_iter()
            .collect();
        let w = policy_typo_warnings(["isolate_hosts", "block_ip", "notify_breach"], &data);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("policy class 'isolate_hosts' matches no decision, and the data's 'isolate_host' is without"),
            "{w:?}"
        );
        // The near class has its own entry: nothing to warn about.
        let w = policy_typo_warnings(["isolate_hosts", "isolate_host"], &data);
        assert!(w.is_empty(), "{w:?}");
    }
}
