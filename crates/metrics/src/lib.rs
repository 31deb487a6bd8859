//! Pure statistics for `readiness`: functions from sufficient statistics (counts, sums,
//! histograms) to the numbers a recommendation rests on. No I/O, no clock, no DataFrames.

pub mod calibration;
pub mod drift;
pub mod evidence;
pub mod fdr;
pub mod gates;
pub mod interval;
pub mod manipulation;
pub mod period;
pub mod reasoning;
pub mod special;
pub mod suffstats;

pub use period::{Granularity, Period};
pub use suffstats::{Cell, CellKey, Criticality, Outcome, StatRow, SuffStats};
