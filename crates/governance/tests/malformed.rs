//! Malformed policies: each must be refused with an error naming the file, the dotted key and the
//! line, and saying what was expected.

use readiness_governance::{Policy, PolicyError};

/// A valid class table to build the broken policies around.
const CLASS: &str = r#"
[classes.isolate_host]
tier = "high"
mode = "hitl"
ceiling = "hotl"
reversible = true
owner = "Head of Detection & Response"
"#;

fn refuse(text: &str) -> PolicyError {
    match Policy::from_toml_str(text, "policy.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

/// Asserts the key, the line, and that the message names both and the file.
fn assert_at(e: &PolicyError, key: &str, line: usize) {
    let msg = e.to_string();
    assert_eq!(e.key(), Some(key), "{msg}");
    assert_eq!(e.line(), Some(line), "{msg}");
    assert_eq!(e.path(), "policy.toml");
    assert!(msg.contains(key), "{msg}");
    assert!(msg.contains(&format!("policy.toml line {line}")), "{msg}");
}

#[test]
fn unknown_key_at_top_level() {
    let e = refuse(&format!(
        "[defaults]\nmax_ece = 0.05\n\n[clases.x]\ntier = \"low\"\n{CLASS}"
    ));
    assert!(matches!(e, PolicyError::UnknownKey { .. }), "{e}");
    assert_at(&e, "clases", 4);
    assert!(
        e.to_string()
            .contains("expected one of: run, columns, defaults, tiers, classes"),
        "{e}"
    );
}

#[test]
fn unknown_key_in_a_class() {
    let e = refuse(&format!("{CLASS}target_agreemnt = 0.99\n"));
    assert!(matches!(e, PolicyError::UnknownKey { .. }), "{e}");
    assert_at(&e, "classes.isolate_host.target_agreemnt", 8);
    assert!(
        e.to_string().contains("target_agreement"),
        "the allowed keys are listed: {e}"
    );
}

#[test]
fn unknown_key_in_a_tier() {
    let e = refuse(&format!(
        "[tiers.high]\ntarget_agreement = 0.995\nmin_reviewd = 800\n{CLASS}"
    ));
    assert!(matches!(e, PolicyError::UnknownKey { .. }), "{e}");
    assert_at(&e, "tiers.high.min_reviewd", 3);
}

#[test]
fn unknown_key_in_run() {
    let e = refuse("[run]\nperiod = \"month\"\nperoid = \"week\"\n");
    assert_at(&e, "run.peroid", 3);
}

#[test]
fn target_above_one() {
    let e = refuse(&format!("{CLASS}target_agreement = 1.3\n"));
    assert!(matches!(e, PolicyError::Invalid { .. }), "{e}");
    assert_at(&e, "classes.isolate_host.target_agreement", 8);
    assert_eq!(
        e.to_string(),
        "classes.isolate_host.target_agreement = 1.3 at policy.toml line 8: expected a number in (0, 1)"
    );
}

#[test]
fn confidence_level_zero() {
    let e = refuse(&format!("[defaults]\nconfidence_level = 0\n{CLASS}"));
    assert_at(&e, "defaults.confidence_level", 2);
    assert!(
        e.to_string().ends_with("expected a number in (0, 1)"),
        "{e}"
    );
}

#[test]
fn min_reviewed_negative() {
    let e = refuse(&format!("[tiers.medium]\nmin_reviewed = -5\n{CLASS}"));
    assert!(matches!(e, PolicyError::Invalid { .. }), "{e}");
    assert_at(&e, "tiers.medium.min_reviewed", 2);
    assert!(
        e.to_string().contains("= -5") && e.to_string().ends_with("expected an integer >= 1"),
        "{e}"
    );
    // No upper bound: a critical tier may ask for thousands of reviews.
    let text = format!("[tiers.high]\nmin_reviewed = 5000\n{CLASS}");
    let p = Policy::from_toml_str(&text, "policy.toml").unwrap();
    let class = p.effective("isolate_host").unwrap();
    assert_eq!(class.thresholds.min_reviewed, 5000);
    // Windows are bounded, and say so.
    let e = refuse(&format!("[defaults]\nevidence_periods = 1001\n{CLASS}"));
    assert_at(&e, "defaults.evidence_periods", 2);
    assert!(
        e.to_string()
            .ends_with("expected an integer from 1 to 1000"),
        "{e}"
    );
}

#[test]
fn mode_above_ceiling() {
    let text = "[classes.notify_breach]\ntier = \"critical\"\nmode = \"hotl\"\nceiling = \"hitl\"\nreversible = false\nowner = \"CISO with General Counsel\"\n";
    let e = refuse(text);
    assert!(matches!(e, PolicyError::Contradiction { .. }), "{e}");
    assert_at(&e, "classes.notify_breach.mode", 3);
    assert!(e.to_string().contains("above the ceiling \"hitl\""), "{e}");
}

#[test]
fn unknown_tier() {
    let e = refuse(
        "[classes.x]\ntier = \"extreme\"\nceiling = \"hotl\"\nreversible = true\nowner = \"o\"\n",
    );
    assert_at(&e, "classes.x.tier", 2);
    assert!(
        e.to_string()
            .contains("one of \"low\", \"medium\", \"high\", \"critical\""),
        "{e}"
    );
    let e = refuse(&format!("{CLASS}\n[tiers.extreme]\nmax_psi = 0.2\n"));
    assert!(matches!(e, PolicyError::UnknownKey { .. }), "{e}");
    assert_at(&e, "tiers.extreme", 9);
}

#[test]
fn string_for_a_number() {
    let e = refuse(&format!("{CLASS}max_psi = \"0.2\"\n"));
    assert!(matches!(e, PolicyError::WrongType { .. }), "{e}");
    assert_at(&e, "classes.isolate_host.max_psi", 8);
    assert!(
        e.to_string()
            .contains("expected a number > 0, found a string"),
        "{e}"
    );
}

#[test]
fn float_for_an_integer() {
    let e = refuse("[defaults]\nmin_reviewed = 400.5\n");
    assert!(matches!(e, PolicyError::WrongType { .. }), "{e}");
    assert_at(&e, "defaults.min_reviewed", 2);
}

#[test]
fn bad_period_name() {
    let e = refuse("[run]\nperiod = \"monthly\"\n");
    assert_at(&e, "run.period", 2);
    assert!(
        e.to_string()
            .contains("one of \"week\", \"month\", \"quarter\""),
        "{e}"
    );
}

#[test]
fn bad_date() {
    let e = refuse("[run]\nbaseline_start = \"2024-02-30\"\nbaseline_end = \"2024-03-31\"\n");
    assert_at(&e, "run.baseline_start", 2);
    assert!(e.to_string().ends_with("expected a date YYYY-MM-DD"), "{e}");
}

#[test]
fn baseline_start_after_end() {
    let e = refuse("[run]\nbaseline_start = 2024-04-01\nbaseline_end = 2024-03-31\n");
    assert!(matches!(e, PolicyError::Contradiction { .. }), "{e}");
    assert_at(&e, "run.baseline_start", 2);
}

#[test]
fn missing_owner() {
    let e = refuse("[defaults]\nmax_ece = 0.05\n\n[classes.kill_process]\ntier = \"high\"\nceiling = \"hotl\"\nreversible = false\n");
    assert!(matches!(e, PolicyError::Missing { .. }), "{e}");
    assert_at(&e, "classes.kill_process.owner", 4);
}

#[test]
fn empty_owner() {
    let e = refuse(
        "[classes.k]\ntier = \"high\"\nceiling = \"hotl\"\nreversible = false\nowner = \"  \"\n",
    );
    assert_at(&e, "classes.k.owner", 5);
}

#[test]
fn bad_gate_criticality() {
    let e = refuse("[tiers.high]\ngate_max_criticality = \"severe\"\n");
    assert_at(&e, "tiers.high.gate_max_criticality", 2);
}

#[test]
fn unknown_column() {
    let e = refuse("[columns]\nconfidence = \"score\"\nseverity = \"sev\"\n");
    assert!(matches!(e, PolicyError::UnknownKey { .. }), "{e}");
    assert_at(&e, "columns.severity", 3);
}

#[test]
fn toml_syntax_error_names_the_line() {
    let e = refuse("[defaults]\nmax_ece = 0.05\ntarget_agreement = = 0.9\n");
    assert!(matches!(e, PolicyError::Syntax { .. }), "{e}");
    assert_eq!(e.line(), Some(3), "{e}");
    assert!(
        e.to_string()
            .starts_with("policy.toml line 3: invalid TOML")
            && e.to_string().ends_with("(in `target_agreement = = 0.9`)"),
        "{e}"
    );
    // A number too large: the parser's message alone does not name the key.
    let e = refuse(&format!(
        "[defaults]\nmin_reviewed = 99999999999999999999\n{CLASS}"
    ));
    assert_eq!(e.line(), Some(2), "{e}");
    assert!(
        e.to_string()
            .ends_with("(in `min_reviewed = 99999999999999999999`)"),
        "{e}"
    );
}

#[test]
fn duplicate_key_is_a_syntax_error() {
    let e = refuse(&format!("{CLASS}owner = \"someone else\"\n"));
    assert!(matches!(e, PolicyError::Syntax { .. }), "{e}");
    assert_eq!(e.line(), Some(8), "{e}");
}

#[test]
fn unreadable_file_names_the_path() {
    let e = Policy::from_file(std::path::Path::new("/nonexistent/policy.toml")).unwrap_err();
    assert!(matches!(e, PolicyError::Read { .. }));
    assert!(
        e.to_string()
            .starts_with("cannot read policy /nonexistent/policy.toml"),
        "{e}"
    );
}
