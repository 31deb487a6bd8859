//! The bundled default policy (`data/policy.toml`) parses and covers the simulator's 14 classes.

use readiness_governance::{Mode, Policy};
use readiness_metrics::Criticality;

fn bundled() -> Policy {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/policy.toml");
    Policy::from_file(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn bundled_policy_covers_the_sample_classes() {
    let p = bundled();
    let expected: [(&str, Criticality, Mode, Mode); 14] = [
        ("enrich_alert", Criticality::Low, Mode::Hotl, Mode::Hotl),
        ("tag_alert", Criticality::Low, Mode::Hotl, Mode::Hotl),
        ("add_to_watchlist", Criticality::Low, Mode::Hitl, Mode::Hotl),
        (
            "close_alert_benign",
            Criticality::Low,
            Mode::Hitl,
            Mode::Hotl,
        ),
        (
            "quarantine_email",
            Criticality::Medium,
            Mode::Hitl,
            Mode::Hotl,
        ),
        ("block_ip", Criticality::Medium, Mode::Hotl, Mode::Hotl),
        (
            "reset_password",
            Criticality::Medium,
            Mode::Hitl,
            Mode::Hotl,
        ),
        ("isolate_host", Criticality::High, Mode::Hitl, Mode::Hotl),
        ("disable_account", Criticality::High, Mode::Hitl, Mode::Hotl),
        ("kill_process", Criticality::High, Mode::Hitl, Mode::Hotl),
        (
            "isolate_production_server",
            Criticality::Critical,
            Mode::Hitl,
            Mode::Hitl,
        ),
        (
            "revoke_privileged_access",
            Criticality::Critical,
            Mode::Hitl,
            Mode::Hitl,
        ),
        (
            "notify_breach",
            Criticality::Critical,
            Mode::Hitl,
            Mode::Hitl,
        ),
        (
            "escalate_law_enforcement",
            Criticality::Critical,
            Mode::Hitl,
            Mode::Hitl,
        ),
    ];
    assert_eq!(p.classes().count(), 14);
    for (class, tier, mode, ceiling) in expected {
        let s = p
            .effective(class)
            .unwrap_or_else(|| panic!("{class} missing"));
        assert_eq!(
            (s.tier, s.mode, s.ceiling),
            (tier, mode, ceiling),
            "{class}"
        );
        assert!(!s.owner.is_empty());
    }
    let iso = p.effective("isolate_host").unwrap();
    assert_eq!(iso.thresholds.target_agreement, 0.995);
    assert_eq!(iso.thresholds.min_reviewed, 800);
    assert_eq!(iso.source_of("min_reviewed"), "tiers.high");
    assert_eq!(iso.thresholds.gate_max_criticality, Criticality::Medium);
    assert!(p.columns().is_identity());
    assert_eq!(p.run().period, readiness_metrics::Granularity::Month);
}

#[test]
fn bundled_policy_describes_every_class() {
    let p = bundled();
    let d = p.describe();
    for s in p.classes() {
        assert!(d.contains(&s.class), "{d}");
    }
    assert!(d.contains("never (ceiling hitl)"), "{d}");
    print!("{d}");
}
