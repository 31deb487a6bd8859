//! Safe file names derived from untrusted names (action classes come from user data).
//!
//! [`safe_file_stem`] keeps `[A-Za-z0-9_-]`, replaces every other character with `_` and caps the
//! length. Whenever that changes the name (a replaced character, truncation, an upper-case letter
//! that would collide on a case-insensitive file system, a reserved Windows device name, an empty
//! name), it appends `-` and eight hex digits of a stable hash of the original name, so two
//! distinct names never share a stem (up to a 2⁻³² hash collision) and clean names stay readable.
//! The hash is FNV-1a 64 (Fowler–Noll–Vo): stable across platforms and releases, not
//! cryptographic, which is fine for telling file names apart.

/// Longest kept prefix of the name, before the hash suffix; keeps file names well under 255 bytes
/// even with a chart prefix such as `risk_coverage_` and an extension.
const MAX_STEM: usize = 64;

/// Device names Windows refuses as file names whatever the extension.
const RESERVED: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// A file-name stem for `name`: only `[A-Za-z0-9_-]`, at most 73 bytes, never empty, never `.` or
/// `..`; distinct names give distinct stems. Clean lower-case names are returned unchanged.
pub fn safe_file_stem(name: &str) -> String {
    let mut stem = String::with_capacity(name.len().min(MAX_STEM));
    let mut changed = false;
    for (i, c) in name.chars().enumerate() {
        if i == MAX_STEM {
            changed = true;
            break;
        }
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            changed |= c.is_ascii_uppercase();
            stem.push(c);
        } else {
            changed = true;
            stem.push('_');
        }
    }
    if stem.is_empty() {
        changed = true;
        stem.push('_');
    }
    if RESERVED.contains(&stem.to_ascii_lowercase().as_str()) {
        changed = true;
    }
    if changed {
        stem.push_str(&format!("-{:08x}", fnv1a64(name.as_bytes()) >> 32));
    }
    stem
}

/// FNV-1a, 64-bit (offset basis and prime from the published FNV parameters).
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_safe(s: &str) -> bool {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.len() <= MAX_STEM + 9
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }

    #[test]
    fn clean_names_are_unchanged() {
        assert_eq!(safe_file_stem("isolate_host"), "isolate_host");
        assert_eq!(safe_file_stem("close-alert_2"), "close-alert_2");
    }

    #[test]
    fn hostile_names_are_sanitised() {
        for name in [
            "../../x",
            "a/b",
            "a\\b",
            "CON",
            "con",
            "lpt1",
            "",
            ".",
            "..",
            "héllo wörld",
            "日本語",
            "<script>",
            "a\nb",
            "Isolate_Host",
        ] {
            let s = safe_file_stem(name);
            assert!(is_safe(&s), "{name:?} -> {s:?}");
            assert_ne!(s, name, "{name:?} should have been changed");
        }
        assert!(safe_file_stem("../../x").starts_with("______x-"));
        assert!(safe_file_stem("CON").starts_with("CON-"));
    }

    #[test]
    fn long_names_are_capped_and_stay_distinct() {
        let a = "a".repeat(500);
        let b = format!("{}b", "a".repeat(499));
        let (sa, sb) = (safe_file_stem(&a), safe_file_stem(&b));
        assert!(is_safe(&sa) && is_safe(&sb));
        assert_eq!(sa.len(), MAX_STEM + 9);
        assert_ne!(sa, sb);
    }

    #[test]
    fn names_that_sanitise_alike_stay_distinct() {
        let names = ["a/b", "a_b", "a b", "a.b", "A_b", "", "_"];
        let stems: std::collections::BTreeSet<_> =
            names.iter().map(|n| safe_file_stem(n)).collect();
        assert_eq!(stems.len(), names.len());
    }

    #[test]
    fn stems_are_stable() {
        assert_eq!(safe_file_stem("a/b"), safe_file_stem("a/b"));
        // FNV-1a 64 of the empty input is the offset basis.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        // Published FNV-1a 64 test vector: "a" -> 0xaf63dc4c8601ec8c.
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
