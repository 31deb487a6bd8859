//! When the allocator hands freed memory back to the kernel: kept for reuse through the stages
//! of a partitioned run that free and allocate buffers of the same sizes over and over.
//!
//! mimalloc (the binary's allocator) hands freed memory back to the kernel about a second after
//! the first of it is freed, and then all of an arena's free memory at once. The kernel zeroes
//! every page again when it is next touched. Routing rows to partitions frees and allocates a
//! chunk's columns about ten times a second, and a partition's validation reads, checks and
//! drops columns of the same sizes as the partition before it: on a 2-core VM a quarter of a
//! 10^8-decision run's CPU time was the kernel zeroing those pages (BENCHMARKS.md, "10^8
//! decisions, thirteenth session"). The summing of the value counts merges period after period
//! of like sizes too (kept since the seventeenth session). [`KeepFreed`] holds freed memory for
//! reuse while it lives and hands all of it back when dropped.
//!
//! A partitioned run's spill directory holds one from the routing until the statistics set read
//! from it is dropped (a positive `MIMALLOC_PURGE_DELAY` set by the user is replaced meanwhile;
//! 0 or less is kept). Through the twentieth session each partition's validation handed back what it had
//! kept: the partition's statistics and the next partition's validation then faulted it in
//! again, about a million 4 KiB pages a partition at 10^8 decisions. Kept throughout, that run
//! took 78.8 s instead of 93.7 s (system time 14 s instead of 35 s) and peaked at 4.4 GiB
//! instead of 3.0 GiB, under the 8 GiB target and the default budget of 6 GiB (BENCHMARKS.md,
//! "10^8 decisions, twenty-first session").
//!
//! A one-pass run keeps the allocator's delay throughout (a second, or the user's
//! `MIMALLOC_PURGE_DELAY`): its statistics reuse the memory the ingest freed a moment before.
//! Handing that back when they started, and what they freed within 50 ms (as the engine did
//! from the fourteenth to the nineteenth session), lowered the peak at 10^7 decisions by
//! 130–210 MiB but made the run 2–9% slower: the kernel zeroed again the pages the statistics
//! then touched (BENCHMARKS.md, "Profile at 10^7 decisions, twentieth session").
//!
//! [`small_pages`] turns transparent huge pages off for the process: each fault then zeroes the
//! 4 KiB page touched, not a 2 MiB one (BENCHMARKS.md, "Profile at 10^7 decisions, fifteenth
//! session").

use libmimalloc_sys::{mi_collect, mi_option_get, mi_option_set};

/// mimalloc's `mi_option_purge_delay` (milliseconds; the numbering of mimalloc v3, the
/// version `libmimalloc-sys` builds by default). A test checks its default of 1000 ms.
const PURGE_DELAY: i32 = 15;

/// A purge delay no run outlasts (about 11 days), so that freed memory is scheduled for
/// purging (and handed back by [`mi_collect`]) but never purged on its own while kept.
const KEEP: libc::c_long = 1_000_000_000;

/// The guards alive and the purge delay they replaced (`None` when the user's delay is kept).
struct Guards {
    keep: usize,
    previous: Option<libc::c_long>,
}

static GUARDS: std::sync::Mutex<Guards> = std::sync::Mutex::new(Guards {
    keep: 0,
    previous: None,
});

fn guards() -> std::sync::MutexGuard<'static, Guards> {
    GUARDS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Guards {
    /// Counts a new guard; the first saves the delay it replaces. A delay of 0 or less (set
    /// with `MIMALLOC_PURGE_DELAY`) is the user's choice: purging at once, or never. It is left
    /// as it is.
    fn enter(&mut self) {
        if self.keep == 0 {
            // SAFETY: reading an option of the allocator; see the guards' note on threads.
            let previous = unsafe { mi_option_get(PURGE_DELAY) };
            self.previous = (previous > 0).then_some(previous);
        }
        self.keep += 1;
        self.apply();
    }

    /// Counts a guard out; the last one restores the saved delay.
    fn leave(&mut self) {
        self.keep -= 1;
        self.apply();
        if self.keep == 0 {
            self.previous = None;
        }
    }

    /// Sets the delay the live guards ask for.
    fn apply(&self) {
        let Some(previous) = self.previous else {
            return;
        };
        let delay = match self.keep {
            0 => previous,
            _ => KEEP,
        };
        // SAFETY: setting an option of the allocator; see the guards' note on threads.
        unsafe { mi_option_set(PURGE_DELAY, delay) };
    }
}

/// Turns transparent huge pages off for this process (Linux), unless `MIMALLOC_ALLOW_THP` is
/// set (mimalloc's own switch, whose name it reads in any case: `1` keeps them, `0` turns them
/// off as this does). Returns whether the process now runs without them.
///
/// mimalloc asks for huge pages on its arenas. On a virtual machine whose kernel hands free
/// memory back to the host in large blocks, a huge page faulted in may be faulted in by the host
/// as well: a run's system time swung from 2 to 5 s at 10^7 decisions, and with 4 KiB pages it
/// held at 2–3 s. The peak was 2–13% lower in every series measured.
pub fn small_pages() -> bool {
    if allocator_told() {
        return thp_disabled();
    }
    set_thp_disabled(true);
    thp_disabled()
}

/// Whether the environment holds mimalloc's `MIMALLOC_ALLOW_THP`, in any case (mimalloc
/// compares its variables' names without regard to case).
fn allocator_told() -> bool {
    std::env::vars_os().any(|(name, _)| {
        name.to_str()
            .is_some_and(|n| n.eq_ignore_ascii_case("MIMALLOC_ALLOW_THP"))
    })
}

/// Sets the process's flag that keeps transparent huge pages off (Linux; elsewhere nothing).
fn set_thp_disabled(off: bool) {
    #[cfg(target_os = "linux")]
    // SAFETY: a process flag set with integer arguments (unsigned long, as the kernel reads
    // them); no memory is passed.
    unsafe {
        let zero: libc::c_ulong = 0;
        libc::prctl(
            libc::PR_SET_THP_DISABLE,
            off as libc::c_ulong,
            zero,
            zero,
            zero,
        );
    }
    #[cfg(not(target_os = "linux"))]
    let _ = off;
}

/// Whether transparent huge pages are off for this process.
fn thp_disabled() -> bool {
    #[cfg(target_os = "linux")]
    // SAFETY: reads a process flag; no memory is passed.
    return unsafe {
        let zero: libc::c_ulong = 0;
        libc::prctl(libc::PR_GET_THP_DISABLE, zero, zero, zero, zero)
    } == 1;
    #[cfg(not(target_os = "linux"))]
    false
}

/// `n` zeros, written when made.
///
/// `vec![0; n]` asks the allocator for zeroed memory, and memory fresh from the kernel is
/// handed out without being written. Where such a vector is read before it is written (counts
/// incremented, sparse marks read back in full), the kernel maps each page read to its shared
/// page of zeros; the first write to it, or to the memory it becomes once freed and allocated
/// again, then faults a second time, copies the page and interrupts the other core to flush its
/// TLB. Written at once, each page faults once. At 10^7 decisions those second faults were 4%
/// of a run's CPU samples (BENCHMARKS.md, "Profile at 10^7 decisions, twenty-second session").
pub(crate) fn zeros<T: Copy + Default>(n: usize) -> Vec<T> {
    // Hidden from the optimiser, which would otherwise make the allocation and the zeros
    // written into it one zeroed allocation again.
    let mut v = std::hint::black_box(Vec::with_capacity(n));
    v.resize(n, T::default());
    v
}

/// Hands back to the kernel every range freed and not yet handed back.
fn hand_back() {
    // SAFETY: a collection of the calling thread's heap and of the arenas' freed ranges (a
    // delay above 0 schedules each freed range; forcing ignores the schedule).
    unsafe { mi_collect(true) };
}

/// While any is alive, freed memory stays with the process for reuse; when the last is
/// dropped, everything freed meanwhile is handed back to the kernel and the previous purge
/// delay restored. Guards may nest and overlap (two runs in one process): they count.
///
/// Create and drop it between stages: mimalloc's options are plain values that its own threads
/// read unsynchronised, so a thread that allocates meanwhile (the input files' hashing may run
/// then) purges on the old delay or the new one. Two runs in one process share the option: the
/// counting restores it when the last guard of either ends, and meanwhile each run purges on
/// the other's schedule.
#[derive(Debug)]
#[must_use = "freed memory is kept only while the guard lives"]
pub(crate) struct KeepFreed(());

impl KeepFreed {
    pub(crate) fn new() -> KeepFreed {
        guards().enter();
        KeepFreed(())
    }
}

impl Drop for KeepFreed {
    fn drop(&mut self) {
        let mut guards = guards();
        let last = guards.keep == 1 && guards.previous.is_some();
        // The delay is restored first: a forced collection moves mimalloc's next timed purge
        // to a tenth of the current delay from now, which under the kept delay would be a day
        // away (and every timed purge after it with it).
        guards.leave();
        if last {
            hand_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The only test in this binary that makes guards: the delays it reads are its own.
    #[test]
    fn the_purge_delay_follows_the_live_guards_and_is_then_restored() {
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

    #[test]
    fn zeros_are_zeros_of_the_length_asked_for_and_written() {
        let counts: Vec<u32> = zeros(3 << 20);
        // Written, not merely allocated zeroed: the pages are resident before anything reads
        // them (mincore reports on anonymous pages too; a page only read would be the kernel's
        // page of zeros, resident as well, so this looks first).
        #[cfg(target_os = "linux")]
        {
            // SAFETY: reads a system constant.
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
            let start = counts.as_ptr() as usize;
            let first = start.div_ceil(page) * page;
            let pages = (start + counts.len() * 4 - first) / page;
            let mut resident = vec![0u8; pages];
            // SAFETY: `first..first + pages * page` lies within `counts`' allocation, which
            // lives until the end of the test; `resident` has one byte a page.
            let rc = unsafe {
                libc::mincore(
                    first as *mut libc::c_void,
                    pages * page,
                    resident.as_mut_ptr(),
                )
            };
            assert_eq!(rc, 0, "mincore failed");
            let absent = resident.iter().filter(|&&r| r & 1 == 0).count();
            assert_eq!(
                absent, 0,
                "{absent} of {pages} pages of zeros were not written"
            );
        }
        assert_eq!(counts.len(), 3 << 20);
        assert!(counts.iter().all(|&c| c == 0));
        let marks: Vec<bool> = zeros(5);
        assert_eq!(marks, [false; 5]);
        assert!(zeros::<u64>(0).is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn huge_pages_are_turned_off_unless_the_allocator_is_told_otherwise() {
        // From huge pages on (the flag is inherited: the test's parent may have set it).
        set_thp_disabled(false);
        assert!(!thp_disabled());
        let off = small_pages();
        assert_eq!(off, thp_disabled());
        if allocator_told() {
            assert!(!off, "the user's setting was overridden");
        } else {
            assert!(off, "huge pages still on after small_pages");
        }
    }
}
