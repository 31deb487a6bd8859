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

/// The guards alive and the purge delay they replaced (`None` when the user's delay is kept).
struct Kept {
    guards: usize,
    previous: Option<libc::c_long>,
}

static KEPT: std::sync::Mutex<Kept> = std::sync::Mutex::new(Kept {
    guards: 0,
    previous: None,
});

fn kept() -> std::sync::MutexGuard<'static, Kept> {
    KEPT.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// While any is alive, freed memory stays with the process for reuse; when the last is
/// dropped, everything freed meanwhile is handed back to the kernel and the previous purge
/// delay restored. Guards may nest and overlap (two runs in one process): they count.
///
/// Create and drop it between stages, where no other thread allocates: mimalloc's options are
/// plain values that its own threads read unsynchronised.
#[must_use = "freed memory is kept only while the guard lives"]
pub(crate) struct KeepFreed(());

impl KeepFreed {
    pub(crate) fn new() -> KeepFreed {
        let mut kept = kept();
        if kept.guards == 0 {
            // SAFETY: reading and setting an option of the allocator; see the type's note on
            // threads.
            let previous = unsafe { mi_option_get(PURGE_DELAY) };
            // A delay of 0 or less (set with `MIMALLOC_PURGE_DELAY`) is the user's choice:
            // purging at once, or never. Kept as it is.
            kept.previous = (previous > 0).then_some(previous);
            if kept.previous.is_some() {
                unsafe { mi_option_set(PURGE_DELAY, KEEP) };
            }
        }
        kept.guards += 1;
        KeepFreed(())
    }
}

impl Drop for KeepFreed {
    fn drop(&mut self) {
        let mut kept = kept();
        kept.guards -= 1;
        if kept.guards > 0 {
            return;
        }
        if let Some(previous) = kept.previous.take() {
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
    fn the_purge_delay_is_kept_long_while_any_guard_lives_and_then_restored() {
        let delay = || unsafe { mi_option_get(PURGE_DELAY) };
        let before = delay();
        // mimalloc v3's default purge delay is 1000 ms (v2's was 10 ms, at another number):
        // this fails if the option's number does not name the purge delay.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(before, 1000);
        }
        let while_kept = if before > 0 { KEEP } else { before };
        let first = KeepFreed::new();
        assert_eq!(delay(), while_kept);
        let second = KeepFreed::new();
        drop(first);
        assert_eq!(delay(), while_kept, "restored while a guard still lives");
        drop(second);
        assert_eq!(delay(), before);
    }
}
