//! Command-line parsing. The only module that knows clap: it turns flags into the plain
//! configuration structs the library takes.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::pipeline::{AnalyzeConfig, InputConfig, RunError};
use readiness_metrics::Granularity;

/// Bundled sample inputs, relative to the project root (the working directory of `cargo run`).
pub const SAMPLE_DECISIONS: &str = "data/sample/decisions";
pub const SAMPLE_VERDICTS: &str = "data/sample/verdicts";
pub const DEFAULT_POLICY: &str = "data/policy.toml";

#[derive(Parser, Debug)]
#[command(
    name = "readiness",
    version,
    about = "Which of a SOC AI agent's action classes have earned autonomy, and which have lost it",
    long_about = "Reads AI decisions and analyst verdicts (Parquet), computes per-class agreement with \
intervals, calibration, drift and gate thresholds, applies a human-written policy and writes \
recommendations and reports. With no subcommand, runs `analyze` on the bundled sample.\n\n\
Exit codes: 0 success; 1 error (bad input, policy or I/O); 2 usage error; 3 `drift` found a \
flagged signal; 4 too many rejected rows (run.max_rejected_share); 5 `drift` flagged nothing \
but could not check a class (no baseline, no earlier model version)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// No progress output (for cron).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Worker threads for the compute engine and the native passes (default: all cores).
    /// Outputs do not depend on it.
    #[arg(long, global = true)]
    pub threads: Option<usize>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the whole pipeline and write a run directory (the default command).
    Analyze(AnalyzeArgs),
    /// Check the inputs against the contract and print the findings (no metrics).
    // Statistics hold no rows to check: --stats is left out of the help (and refused).
    #[command(mut_arg("stats", |a| a.hide(true)))]
    Validate(InputArgs),
    /// Write the statistics set of raw inputs (for --stats and incremental runs), or print
    /// the same aggregation as SQL for another engine (--emit-sql).
    Aggregate(AggregateArgs),
    /// Print the drift and manipulation table; exit 3 when anything is flagged, 5 when nothing
    /// is but a class with decisions in the latest period could not be compared with anything.
    Drift(DriftArgs),
    /// Print the full evidence chain of one class from a run directory.
    Explain(ExplainArgs),
    /// Write the one-page quarterly board report (board.html, board.md, board.json, charts/).
    Board(BoardArgs),
    /// Policy tools.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Generate a synthetic SOC history with planted effects (Parquet + truth file).
    Generate(GenerateArgs),
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Validate a policy file and print the effective settings per class.
    Check {
        /// The policy file.
        file: PathBuf,
    },
}

#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// Decisions: Parquet files, directories (hive partitions welcome) or globs
    /// [default: the bundled sample, unless --stats is given].
    #[arg(long, num_args = 1..)]
    pub decisions: Vec<String>,
    /// Verdicts: Parquet files, directories or globs [default: the bundled sample, unless
    /// --stats is given].
    #[arg(long, num_args = 1..)]
    pub verdicts: Vec<String>,
    /// A statistics directory (a run's stats/, or built by the SQL of `aggregate --emit-sql`)
    /// read instead of raw inputs; with --decisions and --verdicts too, the raw inputs' periods
    /// replace the stored ones (an incremental run). Repeat to sum several.
    #[arg(long, value_name = "DIR")]
    pub stats: Vec<PathBuf>,
    /// The policy file (TOML).
    #[arg(long, default_value = DEFAULT_POLICY)]
    pub policy: PathBuf,
    /// Reporting period; overrides the policy's run.period.
    #[arg(long, value_enum)]
    pub period: Option<PeriodArg>,
    /// Working memory for raw inputs, GiB. Inputs estimated to need more are split by
    /// decision id into partitions processed one at a time, through a spill directory under
    /// $TMPDIR; results are identical [default: half the available memory, at most 6].
    #[arg(long, value_name = "GIB", allow_negative_numbers = true)]
    pub memory_budget: Option<f64>,
}

#[derive(Args, Debug, Clone)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// The run directory to write (replaced atomically when the run completes).
    #[arg(long, default_value = "reports/latest")]
    pub out: PathBuf,
    /// The ledger (JSON lines) this run appends one record per class to.
    #[arg(long, default_value = "reports/ledger.jsonl")]
    pub ledger: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct AggregateArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// The statistics directory to write (or, with --emit-sql, the directory the SQL writes).
    #[arg(long, default_value = "reports/stats")]
    pub out: PathBuf,
    /// Print the aggregation as SQL for this engine instead of running it.
    #[arg(long, value_enum, value_name = "ENGINE")]
    pub emit_sql: Option<SqlEngine>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqlEngine {
    Duckdb,
    Spark,
}

impl From<SqlEngine> for crate::sql::Dialect {
    fn from(e: SqlEngine) -> crate::sql::Dialect {
        match e {
            SqlEngine::Duckdb => crate::sql::Dialect::DuckDb,
            SqlEngine::Spark => crate::sql::Dialect::Spark,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct DriftArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args, Debug, Clone)]
pub struct BoardArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// The quarter, e.g. 2025Q3 (default: the latest complete quarter in the data).
    #[arg(long)]
    pub quarter: Option<String>,
    /// The directory to write (replaced atomically when complete).
    #[arg(long, default_value = "reports/board")]
    pub out: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct ExplainArgs {
    /// The action class.
    pub class: String,
    /// The run directory (as written by `analyze`).
    #[arg(long, default_value = "reports/latest")]
    pub run: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct GenerateArgs {
    /// Output directory (gets decisions/, verdicts/ and truth.json).
    #[arg(long, default_value = "data/sample")]
    pub out: PathBuf,
    /// Approximate number of decisions.
    #[arg(long, default_value_t = 100_000)]
    pub decisions: u64,
    /// Random seed (recorded in truth.json).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Number of months, starting at --start.
    #[arg(long, default_value_t = 12)]
    pub months: u32,
    /// First month, YYYY-MM.
    #[arg(long, default_value = "2025-01")]
    pub start: String,
    /// Do not plant the manipulation burst.
    #[arg(long)]
    pub no_burst: bool,
    /// Do not plant fabricated ATT&CK IDs.
    #[arg(long)]
    pub no_fabricated: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum PeriodArg {
    Week,
    Month,
    Quarter,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

impl From<PeriodArg> for Granularity {
    fn from(p: PeriodArg) -> Granularity {
        match p {
            PeriodArg::Week => Granularity::Week,
            PeriodArg::Month => Granularity::Month,
            PeriodArg::Quarter => Granularity::Quarter,
        }
    }
}

impl InputArgs {
    /// The library's view of the input flags.
    pub fn to_config(&self) -> Result<InputConfig, RunError> {
        let (mut decisions, mut verdicts) = (self.decisions.clone(), self.verdicts.clone());
        match (decisions.is_empty(), verdicts.is_empty()) {
            (true, true) if self.stats.is_empty() => {
                decisions.push(SAMPLE_DECISIONS.to_string());
                verdicts.push(SAMPLE_VERDICTS.to_string());
            }
            (true, false) | (false, true) => return Err(RunError::Usage(
                "give both --decisions and --verdicts, or neither (the bundled sample, or --stats \
                     where the command takes it)"
                    .into(),
            )),
            _ => {}
        }
        Ok(InputConfig {
            decisions,
            verdicts,
            policy: self.policy.clone(),
            period: self.period.map(Granularity::from),
            stats: self.stats.clone(),
            memory_budget: match self.memory_budget {
                None => None,
                Some(g) if g.is_finite() && g > 0.0 => Some((g * (1u64 << 30) as f64) as u64),
                Some(g) => {
                    return Err(RunError::Usage(format!(
                        "--memory-budget {g}: expected a positive number of GiB, e.g. 4"
                    )))
                }
            },
        })
    }
}

impl GenerateArgs {
    /// The library's view of the generate flags.
    pub fn to_config(&self) -> Result<readiness_simulate::SimConfig, RunError> {
        let bad = || {
            RunError::Usage(format!(
                "--start {}: expected YYYY-MM from 2000-01, e.g. 2025-01",
                self.start
            ))
        };
        let (y, m) = self.start.split_once('-').ok_or_else(bad)?;
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u32 = m.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || !(2000..=2099).contains(&year) {
            return Err(bad());
        }
        let last = year as u32 * 12 + month - 1 + self.months.saturating_sub(1);
        if self.months == 0 || self.months > 240 || last / 12 >= 2100 {
            return Err(RunError::Usage(format!(
                "--months {}: expected 1 to 240, ending before 2100 (timestamps outside 2000–2099 are rejected on input)",
                self.months
            )));
        }
        if self.decisions == 0 || self.decisions > 1_000_000_000 {
            return Err(RunError::Usage(format!(
                "--decisions {}: expected 1 to 1,000,000,000",
                self.decisions
            )));
        }
        Ok(readiness_simulate::SimConfig {
            seed: self.seed,
            decisions: self.decisions,
            start_year: year,
            start_month: month,
            months: self.months,
            burst: !self.no_burst,
            fabricated_reasoning: !self.no_fabricated,
        })
    }
}

impl AnalyzeArgs {
    /// Defaults for `readiness` with no subcommand: the bundled sample.
    pub fn sample() -> AnalyzeArgs {
        AnalyzeArgs::parse_from_defaults()
    }

    fn parse_from_defaults() -> AnalyzeArgs {
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            a: AnalyzeArgs,
        }
        Wrapper::parse_from(["readiness"]).a
    }

    /// The library's view of the analyze flags.
    pub fn to_config(&self, quiet: bool) -> Result<AnalyzeConfig, RunError> {
        Ok(AnalyzeConfig {
            input: self.input.to_config()?,
            out: self.out.clone(),
            ledger: self.ledger.clone(),
            quiet,
        })
    }
}
