//! A partitioned run holds mimalloc's purge delay at its kept value (freed memory stays with
//! the process) until its statistics set has been decoded and read, and sets it back when it
//! ends; a one-pass run leaves the delay alone. What is checked is the option's span: test
//! binaries allocate through the system allocator (only the `readiness` binary makes mimalloc
//! the global one), and whether the hold starts before the routing cannot be seen from here.
//! This test is alone in its binary: the delay is one value for the whole process, and another
//! test's partitioned run would change it meanwhile.

mod util;

use readiness::pipeline::{compute_beside, InputConfig, Passes, Progress};
use util::*;

/// mimalloc v3's `mi_option_purge_delay` (`src/memory.rs` checks the number against the
/// option's default).
const PURGE_DELAY: i32 = 15;

fn purge_delay() -> std::ffi::c_long {
    // SAFETY: reads an option of the allocator.
    unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }
}

#[test]
fn a_partitioned_run_keeps_freed_memory_until_its_set_is_read_and_then_restores_the_delay() {
    let dir = scratch("memory");
    let data = dir.join("data");
    generate(&data, 6000, 3, &[]);
    let input = |budget: Option<u64>| InputConfig {
        decisions: vec![data.join("decisions").display().to_string()],
        verdicts: vec![data.join("verdicts").display().to_string()],
        policy: root().join("data/policy.toml"),
        period: None,
        stats: Vec::new(),
        memory_budget: budget,
    };
    let before = purge_delay();
    // 1 MB: the 6,000 decisions in several partitions, the large tables spilled.
    for (budget, partitioned) in [(None, false), (Some(1 << 20), true)] {
        let (_, (seen, spilled)) = compute_beside(
            &input(budget),
            Progress::new(true),
            Passes { oversight: true },
            |_| Ok(()),
            // Runs after the decoding in a partitioned run, beside it in one pass.
            |set| Ok((purge_delay(), set.spilled.is_some())),
        )
        .unwrap();
        assert_eq!(spilled, partitioned, "budget {budget:?}");
        match (partitioned, before > 0) {
            // Kept: a delay no run outlasts (more than a day).
            (true, true) => assert!(seen > 86_400_000, "delay {seen} ms while the set was read"),
            // One pass, or a delay of 0 or less set by the user: left as it was.
            _ => assert_eq!(seen, before, "budget {budget:?}"),
        }
        assert_eq!(
            purge_delay(),
            before,
            "not restored after budget {budget:?}"
        );
    }
}
