//! Property-based fuzzing of the policy parser: mutations of the bundled policy and arbitrary
//! text never panic; every refusal names the file, and every refusal of a known key names the
//! key. Runs 256 cases per property in the test suite; `PROPTEST_CASES=100000 cargo test -p
//! readiness-governance --release --test fuzz` runs longer.

use proptest::prelude::*;
use readiness_governance::Policy;

const BUNDLED: &str = include_str!("../../../data/policy.toml");

/// Values of every TOML type, including out-of-range and hostile ones.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1.3".to_string()),
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("1e308".to_string()),
        Just("true".to_string()),
        Just("\"hotl\"".to_string()),
        Just("\"hitl\"".to_string()),
        Just("\"critical\"".to_string()),
        Just("\"\"".to_string()),
        Just("[1, 2]".to_string()),
        Just("{ a = 1 }".to_string()),
        Just("2024-01-01".to_string()),
        Just("\"<script>\"".to_string()),
        Just("9223372036854775807".to_string()),
        any::<f64>().prop_map(|x| format!("{x:?}")),
        any::<i64>().prop_map(|x| x.to_string()),
        "[a-z_]{0,12}".prop_map(|s| format!("\"{s}\"")),
    ]
}

/// Cases per property: `PROPTEST_CASES` when set, else the suite's default.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    /// Replace the value of one line of the bundled policy.
    #[test]
    fn mutated_values_never_panic(line in 0usize..200, v in value()) {
        let lines: Vec<&str> = BUNDLED.lines().collect();
        let i = line % lines.len();
        let mut out: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        if let Some((key, _)) = lines[i].split_once('=') {
            out[i] = format!("{key}= {v}");
        }
        let text = out.join("\n");
        match Policy::from_toml_str(&text, "fuzz.toml") {
            Ok(_) => {}
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains("fuzz.toml"), "{msg}");
                prop_assert!(e.line().is_some() || msg.contains("line"), "{msg}");
            }
        }
    }

    /// Insert an arbitrary key into an arbitrary table.
    #[test]
    fn unknown_keys_are_named(line in 0usize..200, key in "[a-z_]{1,16}", v in value()) {
        let lines: Vec<&str> = BUNDLED.lines().collect();
        let i = line % lines.len();
        let mut out: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        if lines[i].starts_with('[') {
            out.insert(i + 1, format!("{key} = {v}"));
            let text = out.join("\n");
            if let Err(e) = Policy::from_toml_str(&text, "fuzz.toml") {
                let msg = e.to_string();
                prop_assert!(msg.contains("fuzz.toml"), "{msg}");
                prop_assert!(msg.contains(&key) || e.key().is_some(), "{msg}");
            }
        }
    }

    /// Arbitrary text (mostly invalid TOML) never panics.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = Policy::from_toml_str(&text, "fuzz.toml");
    }

    /// Truncations of the bundled policy never panic.
    #[test]
    fn truncations_never_panic(cut in 0usize..8000) {
        let mut end = cut.min(BUNDLED.len());
        while !BUNDLED.is_char_boundary(end) {
            end -= 1;
        }
        let _ = Policy::from_toml_str(&BUNDLED[..end], "fuzz.toml");
    }
}
