//! Freed memory kept for reuse through the stages of a partitioned run that free and allocate
//! buffers of the same sizes over and over.
//!
//! mimalloc (the binary's allocator) hands freed memory back to the kernel about a second after
//! the first of it is freed, and then all of an arena's free memory at once. The kernel zeroes
//! every page again when it is next touched. Routing rows to partitions frees and allocates a
//! chunk's columns about ten times a second, and a partition's validation reads, checks and
//! drops columns of the same sizes as the partition before it: on a 2-core VM a quarter of a
//! 10^8-decision run's CPU time was the kernel zeroing those pages (BENCHMARKS.md, "10^8
//! decisions, thirteenth session"). [`KeepFreed`] holds freed memory for reuse while it lives
//! and hands all of it back when dropped, so the stages after it (the statistics, whose peak
//! sets the run's) start from the memory a default run would have.

use libmimalloc_sys::{mi_collect, mi_option_get, mi_option_set};

/// mimalloc's `mi_option_purge_delay` (milliseconds; the numbering of mimalloc v3, the
/// version `libmimalloc-sys` builds by default). A test checks its default of 1000 ms.
const PURGE_DELAY: i32 = 15;

/// A purge delay no run outlasts (about 11 days), so that freed memory is scheduled for
/// purging (and handed back by [`mi_collect`]) but never purged on its own while kept.
const KEEP: libc::c_long = 1_000_000_000;

/// While alive, freed memory stays with the process for reuse; when dropped, everything freed
/// meanwhile is handed back to the kernel and the previous purge delay restored.
///
/// Create and drop it where no other thread of the process allocates (between stages):
/// mimalloc's options are plain values, not synchronised.
#[must_use = "freed memory is kept only while the guard lives"]
pub struct KeepFreed {
    previous: Option<libc::c_long>,
}

impl KeepFreed {
    pub fn new() -> KeepFreed {
        // SAFETY: reading and setting an option of the allocator; see the type's note on
        // threads.
        let previous = unsafe { mi_option_get(PURGE_DELAY) };
        // A delay of 0 or less (set with `MIMALLOC_PURGE_DELAY`) is the user's choice: purging
        // at once, or never. Kept as it is.
        if previous <= 0 {
            return KeepFreed { previous: None };
        }
        unsafe { mi_option_set(PURGE_DELAY, KEEP) };
        KeepFreed {
            previous: Some(previous),
        }
    }
}

impl Default for KeepFreed {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for KeepFreed {
    fn drop(&mut self) {
        if let Some(previous) = self.previous {
            // SAFETY: as in `new`. The forced collection purges every range freed while kept
            // (a delay above 0 schedules each freed range; forcing ignores the schedule).
            unsafe {
                mi_collect(true);
                mi_option_set(PURGE_DELAY, previous);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_is_kept_long_and_restored() {
        // mimalloc v3's default purge delay is 1000 ms (v2's was 10 ms, at another number):
        // this fails if the option's number does not name the purge delay.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        let delay = || unsafe { mi_option_get(PURGE_DELAY) };
        assert_eq!(delay(), 1000);
        {
            let _keep = KeepFreed::new();
            assert_eq!(delay(), KEEP);
        }
        assert_eq!(delay(), 1000);
    }
}
