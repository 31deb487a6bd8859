//! `readiness`: which of a SOC AI agent's action classes have earned autonomy.
//!
//! The pipeline runs in one direction, one module per stage:
//! [`ingest`] → [`aggregate`] → metrics (the `readiness-metrics` crate) → recommend (the
//! `readiness-governance` crate) → report. Polars appears only in `ingest` and `aggregate`.

pub mod aggregate;
pub mod analysis;
pub mod board;
pub mod cli;
pub mod commands;
pub mod coverage;
mod direct;
pub mod generate;
pub mod ingest;
mod memory;
pub mod output;
mod parquet_writer;
pub mod partition;
pub mod pipeline;
pub mod present;
pub mod sql;
pub mod tables;
#[cfg(test)]
mod test_data;
mod threads;

pub use memory::small_pages;
