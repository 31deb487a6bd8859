//! Pure statistics for `readiness`: functions from sufficient statistics (counts, sums,
//! histograms) to the numbers a recommendation rests on. No I/O, no clock, no DataFrames.

pub mod period;
pub mod special;
pub mod suffstats;

pub use period::{Granularity, Period};
pub use suffstats::{Cell, CellKey, Criticality, Outcome, StatRow, SuffStats};
