//! The pipeline, stage by stage: `ingest → aggregate → metrics → recommend → report`, and the
//! commands built from its stages (`validate`, `drift`, `explain`, `policy check`).
//!
//! Every function here takes plain configuration structs (the CLI builds them) and returns typed
//! results or a [`RunError`] that knows its exit code.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use readiness_governance::policy::Policy;
use readiness_metrics::Granularity;
use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::aggregate::signals::{oversight, signals, SignalTables};
use crate::aggregate::{samples_from_set, stats_from_table, Aggregated, StatsSet};
use crate::analysis::{analyze, Analysis};
use crate::ingest::{
    validate, ColumnMap, IngestError, IngestOptions, Ingested, InputFile, Positions, RowCounts,
    Table,
};
use crate::output::{append_ledger, RunDir};
use crate::partition::SpillDir;
use crate::present;
use crate::tables;

/// Exit codes, documented in the README and `--help`.
pub mod exit {
    /// Success (and, for `drift`, nothing flagged).
    pub const OK: i32 = 0;
    /// Bad input, bad policy or an I/O failure.
    pub const ERROR: i32 = 1;
    /// Command-line usage error (clap).
    pub const USAGE: i32 = 2;
    /// `drift` found a flagged drift or manipulation signal.
    pub const FLAGGED: i32 = 3;
    /// More input rows were rejected than the policy's `run.max_rejected_share` allows.
    pub const TOO_MANY_REJECTED: i32 = 4;
    /// `drift` flagged nothing, but some class with decisions in the evaluated period could
    /// not be compared with anything (no baseline, no earlier model version).
    pub const UNCHECKED: i32 = 5;
}

/// Why a command failed; [`RunError::exit_code`] maps it to the documented exit code.
#[derive(Debug, Error)]
pub enum RunError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Policy(#[from] readiness_governance::PolicyError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
    /// Too many rejected rows; the message says where the rejects were written.
    #[error("{0}")]
    Rejected(String),
    /// A command-line value the parser accepted but the command cannot use.
    #[error("{0}")]
    Usage(String),
}

impl RunError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Ingest(IngestError::TooManyRejected { .. }) | RunError::Rejected(_) => {
                exit::TOO_MANY_REJECTED
            }
            RunError::Usage(_) => exit::USAGE,
            _ => exit::ERROR,
        }
    }
}

/// Where the inputs are and which policy applies.
#[derive(Clone, Debug)]
pub struct InputConfig {
    pub decisions: Vec<String>,
    pub verdicts: Vec<String>,
    pub policy: PathBuf,
    /// Overrides the policy's `run.period`.
    pub period: Option<Granularity>,
    /// Statistics directories read instead of (or, for an incremental run, besides) raw
    /// inputs.
    pub stats: Vec<PathBuf>,
    /// Working memory for raw inputs, bytes ([`default_memory_budget`] when `None`): larger
    /// inputs are processed in partitions (see [`crate::partition`]).
    pub memory_budget: Option<u64>,
}

/// Half the available memory, at most 6 GiB (1 GiB when the available memory is unknown): 10^8
/// decisions then run in 10 partitions and peaked at 4.2 GiB (measured, BENCHMARKS.md), and
/// 10^7 generated decisions run in one pass.
pub fn default_memory_budget() -> u64 {
    const CAP: u64 = 6 << 30;
    crate::ingest::available_memory().map_or(1 << 30, |have| (have / 2).min(CAP))
}

/// Everything `analyze` needs.
#[derive(Clone, Debug)]
pub struct AnalyzeConfig {
    pub input: InputConfig,
    pub out: PathBuf,
    pub ledger: PathBuf,
    pub quiet: bool,
}

/// Stage messages on standard error, only when it is a terminal and not `--quiet`. With the
/// environment variable `READINESS_TIMINGS` set, every stage line carries the seconds elapsed
/// since the process's first stage and its resident memory in MiB, whatever the terminal (for
/// profiling; never in any output file).
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    on: bool,
    start: Option<std::time::Instant>,
}

impl Progress {
    /// Progress that shows only on an interactive terminal, never under `--quiet`.
    pub fn new(quiet: bool) -> Progress {
        let timings = std::env::var_os("READINESS_TIMINGS").is_some();
        Progress {
            on: timings || (!quiet && std::io::stderr().is_terminal()),
            start: timings.then(crate::ingest::timing_start),
        }
    }

    /// Prints one stage line.
    pub fn stage(&self, msg: impl AsRef<str>) {
        if self.on {
            match self.start {
                Some(t) => eprintln!(
                    "readiness: [{:7.2}s {}] {}",
                    t.elapsed().as_secs_f64(),
                    crate::ingest::resident_label(),
                    msg.as_ref()
                ),
                None => eprintln!("readiness: {}", msg.as_ref()),
            }
        }
    }
}

/// A policy and the SHA-256 of the exact bytes it was parsed from.
pub struct LoadedPolicy {
    pub policy: Policy,
    pub sha256: String,
    pub path: String,
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads and validates a policy file.
pub fn load_policy(path: &Path) -> Result<LoadedPolicy, RunError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        RunError::Other(format!(
            "cannot read policy {shown}: {e}; give one with --policy FILE"
        ))
    })?;
    let sha256 = sha256_hex(&bytes);
    let text = String::from_utf8(bytes)
        .map_err(|_| RunError::Other(format!("policy {shown} is not UTF-8 text")))?;
    let policy = Policy::from_toml_str(&text, &shown)?;
    Ok(LoadedPolicy {
        policy,
        sha256,
        path: shown,
    })
}

/// The bundled MITRE ATT&CK v19.1 Enterprise list (`data/attack/`, compiled in).
pub fn attack_catalog() -> &'static readiness_metrics::reasoning::AttackCatalog {
    static CATALOG: std::sync::OnceLock<readiness_metrics::reasoning::AttackCatalog> =
        std::sync::OnceLock::new();
    CATALOG.get_or_init(|| {
        readiness_metrics::reasoning::AttackCatalog::parse(
            include_str!("../data/attack/enterprise_techniques.tsv"),
            include_str!("../data/attack/enterprise_revoked_by.tsv"),
        )
        .unwrap_or_default()
    })
}

fn column_map(policy: &Policy) -> ColumnMap {
    ColumnMap {
        map: policy.columns().entries().clone(),
    }
}

fn ingest_options<'a>(input: &'a InputConfig, columns: &'a ColumnMap) -> IngestOptions<'a> {
    IngestOptions {
        decisions: &input.decisions,
        verdicts: &input.verdicts,
        columns,
    }
}

/// What [`ingest_parts`] saw over all partitions.
pub struct IngestSummary {
    pub files: Vec<InputFile>,
    pub counts: RowCounts,
    /// Every rejected row, in input order.
    pub rejects: polars::prelude::DataFrame,
    /// Distinct action classes among the valid decisions.
    pub classes: usize,
    /// Partitions the input was split into (1: one pass over all rows).
    pub partitions: usize,
    /// The spill directory of a partitioned run (removed when dropped).
    pub spill: Option<SpillDir>,
    /// The memory budget the partitions were cut for, bytes.
    pub budget: u64,
}

/// Validates the raw inputs and hands each partition's valid rows to `each` (with the
/// partition's number and, when there are several, the spill directory). One partition when
/// the estimated working set fits `input.memory_budget`; otherwise rows are routed by decision
/// id to partitions through a spill directory (see [`crate::partition`]), which keeps the
/// memory the process frees until it is dropped ([`SpillDir::keeping_freed`]): `analyze` and
/// `aggregate` hold it in the statistics set, `validate` and `drift` until they return.
pub fn ingest_parts(
    input: &InputConfig,
    policy: &Policy,
    progress: Progress,
    mut each: impl FnMut(usize, Ingested, Option<&Path>) -> Result<(), RunError>,
) -> Result<IngestSummary, RunError> {
    let columns = column_map(policy);
    let mut scanned = crate::ingest::scan(&ingest_options(input, &columns))?;
    let fingerprints = std::mem::take(&mut scanned.fingerprints);
    let budget = input.memory_budget.unwrap_or_else(default_memory_budget);
    let partitions = crate::partition::partitions_for(scanned.working_set(), budget);
    let names = scanned.file_names();
    let mut files = scanned.files.clone();
    let mut counts = RowCounts::default();
    let mut rejects = Vec::new();
    let mut classes = std::collections::HashSet::new();
    let mut take = |k: usize, mut ing: Ingested, spill: Option<&Path>| -> Result<(), RunError> {
        counts.add(&ing.counts);
        // The distinct classes through the string codes (a cache of the chunks' views answers
        // most rows), not a hashed unique of every row.
        let codes = ing
            .decisions
            .column("action_class")
            .and_then(crate::aggregate::build::Codes::of_column);
        if let Ok(codes) = codes {
            classes.extend(codes.values().map(str::to_string));
        }
        rejects.push(std::mem::take(&mut ing.rejects));
        // Nothing is handed back here: the statistics reuse the memory the ingest freed (handed
        // back first, it was faulted in again; see [`crate::memory`]).
        each(k, ing, spill)
    };
    let spill = if partitions <= 1 {
        // Each table's files with their paths, kept to name a file that fails to read.
        let per_file = |table: Table, frames: &[polars::prelude::LazyFrame]| {
            (table, frames.to_vec(), scanned.paths(table))
        };
        let files = [
            per_file(Table::Decisions, &scanned.decisions),
            per_file(Table::Verdicts, &scanned.verdicts),
        ];
        let positions = scanned.positions();
        let dec = crate::ingest::union("decisions", scanned.decisions)?;
        let ver = crate::ingest::union("verdicts", scanned.verdicts)?;
        let ing = validate(dec, ver, positions, Vec::new(), &names)
            .map_err(|e| name_the_file(e, files))?;
        take(0, ing, None)?;
        None
    } else {
        // From here to the end of the run the partitions free and allocate buffers of the same
        // sizes over and over: freed memory is kept for them.
        let spill = SpillDir::create(&std::env::temp_dir())?.keeping_freed();
        progress.stage(format!(
            "splitting the inputs into {partitions} partitions by decision id (spill directory {})",
            spill.path().display()
        ));
        let routed = crate::partition::route(scanned, partitions, spill.path())?;
        for (k, part) in routed.into_iter().enumerate() {
            progress.stage(format!(
                "partition {} of {partitions}: validating and aggregating",
                k + 1
            ));
            let routed = [Positions::Columns, Positions::Columns];
            let ing = validate(part.decisions, part.verdicts, routed, Vec::new(), &names)?;
            // The partition's rows are in memory now: their disk space is freed while they are
            // aggregated. Removed first, at 10^8 decisions, each partition's files held up its
            // aggregation for 0.17–0.27 s, one core idle (BENCHMARKS.md, twenty-first session).
            // The scope joins the removal on every path, a panic's included, before the spill
            // directory can be dropped.
            let dirs = ["decisions", "verdicts"].map(|t| spill.path().join(t).join(k.to_string()));
            let remove = move || {
                for dir in dirs {
                    let _ = std::fs::remove_dir_all(dir);
                }
            };
            std::thread::scope(|scope| {
                let removing = std::thread::Builder::new()
                    .name("spill removal".into())
                    .spawn_scoped(scope, remove.clone());
                if removing.is_err() {
                    remove();
                }
                take(k, ing, Some(spill.path()))
            })?;
        }
        Some(spill)
    };
    fingerprints.fill(&mut files)?;
    Ok(IngestSummary {
        files,
        counts,
        rejects: crate::ingest::finish_rejects(rejects)?,
        classes: classes.len(),
        partitions,
        spill,
        budget,
    })
}

/// A failure to read a table's files as one query ([`IngestError::Read`]) does not say which
/// file broke: read that table's files one at a time (only on this error path) and name the
/// first that fails.
fn name_the_file(
    e: IngestError,
    files: [(Table, Vec<polars::prelude::LazyFrame>, Vec<String>); 2],
) -> IngestError {
    let IngestError::Read { table, .. } = e else {
        return e;
    };
    let Some((_, frames, paths)) = files.into_iter().find(|(t, _, _)| *t == table) else {
        return e;
    };
    for (lf, path) in frames.into_iter().zip(paths) {
        // The same engine as the read that failed (`ingest::read_table`).
        if let Err(source) = lf.collect() {
            return IngestError::Unreadable {
                path,
                detail: source.to_string(),
            };
        }
    }
    e
}

/// The result of the stages up to recommend, shared by `analyze` and `drift`.
pub struct Computed {
    pub policy: LoadedPolicy,
    /// Raw input files and statistics files read, fingerprinted.
    pub inputs: Vec<InputFile>,
    /// Raw rows read, kept and rejected (zero when only statistics were read).
    pub counts: RowCounts,
    /// The statistics set every number comes from (written to `stats/`).
    pub set: StatsSet,
    pub aggregated: Aggregated,
    pub signals: SignalTables,
    pub analysis: Analysis,
    pub granularity: Granularity,
}

impl Computed {
    /// Warnings about the evaluated period and about policy classes that look misspelled
    /// (`crate::coverage`).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = crate::coverage::period_warnings(
            &crate::coverage::per_period(&self.aggregated.stats),
            self.granularity,
        );
        if let Some(b) = &self.policy.policy.run().baseline {
            warnings.extend(crate::coverage::baseline_warning(&self.aggregated.stats, b));
        }
        let data = self
            .analysis
            .classes
            .iter()
            .map(|c| c.action_class.as_str())
            .collect();
        warnings.extend(crate::coverage::policy_typo_warnings(
            self.policy.policy.classes().map(|c| c.class.as_str()),
            &data,
        ));
        warnings
    }
}

/// Prints warnings on standard error (also with `--quiet`: they say something may be wrong).
pub fn warn(warnings: &[String]) {
    for w in warnings {
        // Names from the data may hold control characters that would drive the terminal.
        eprintln!("readiness: warning: {}", readiness_report::text::clean(w));
    }
}

/// Classes the manipulation signature does not watch: the policy's classes of low and medium
/// tier (unowned classes are watched).
pub fn unwatched_classes(policy: &Policy) -> std::collections::BTreeSet<String> {
    policy
        .classes()
        .filter(|c| !crate::analysis::manipulation_watched(Some(c)))
        .map(|c| c.class.clone())
        .collect()
}

/// Which passes [`compute`] runs.
#[derive(Clone, Copy, Debug)]
pub struct Passes {
    /// The per-verdict review statistics and the oversight load (not needed by `drift`).
    pub oversight: bool,
}

/// The statistics set of a run: raw inputs validated and aggregated, statistics directories
/// read, checked and summed, and both merged for an incremental run. Returns the set, the files
/// read and the raw row counts.
fn statistics(
    input: &InputConfig,
    policy: &LoadedPolicy,
    granularity: Granularity,
    progress: Progress,
    passes: Passes,
    before_check: impl FnOnce(&polars::prelude::DataFrame) -> Result<(), RunError>,
) -> Result<(StatsSet, Vec<InputFile>, RowCounts), RunError> {
    let unwatched = unwatched_classes(&policy.policy);
    let mut inputs = Vec::new();
    let mut stored = Vec::new();
    let mut given = BTreeSet::new();
    for dir in &input.stats {
        // The same set twice would count its decisions twice; sets of the same periods built
        // from different rows (partitions aggregated apart) are summed as they should be.
        if !given.insert(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone())) {
            return Err(RunError::Usage(format!(
                "--stats {}: the same statistics directory is given twice; each is summed, so its \
                 decisions would count twice",
                dir.display()
            )));
        }
    }
    for dir in &input.stats {
        progress.stage(format!("reading statistics {}", dir.display()));
        let (set, files) = StatsSet::read(dir)?;
        set.meta
            .check(granularity, &unwatched, &dir.display().to_string())?;
        // A copy of a set given beside it: different decisions do not give equal counts and
        // confidence sums in every cell.
        // (Empty sets are all alike and add nothing.)
        let twin = stored
            .iter()
            .position(|s: &StatsSet| s.cells.equals_missing(&set.cells))
            .filter(|_| set.cells.height() > 0);
        if let Some(twin) = twin {
            return Err(RunError::Usage(format!(
                "--stats {}: holds the same statistics as --stats {} (a copy?); each is summed, \
                 so its decisions would count twice",
                dir.display(),
                input.stats[twin].display()
            )));
        }
        inputs.extend(files);
        stored.push(set);
    }
    let stored = if stored.is_empty() {
        None
    } else {
        Some(StatsSet::sum(stored)?)
    };
    let mut counts = RowCounts::default();
    let set = if input.decisions.is_empty() && input.verdicts.is_empty() {
        before_check(&crate::ingest::empty_rejects())?;
        stored.ok_or_else(|| {
            RunError::Usage("no inputs: give --decisions and --verdicts, or --stats".into())
        })?
    } else {
        progress.stage("reading and validating inputs");
        let mut built = crate::aggregate::store::BuiltSum::default();
        let summary = ingest_parts(input, &policy.policy, progress, |k, ing, spill| {
            if ing.decisions.height() == 0 {
                return Ok(());
            }
            progress.stage(format!("aggregating {} decisions", ing.decisions.height()));
            let mut set = StatsSet::build(
                ing,
                granularity,
                attack_catalog(),
                &unwatched,
                passes.oversight,
            )?;
            if let Some(dir) = spill {
                set.spill_large(dir, k)?;
            }
            built.add(set)?;
            Ok(())
        })?;
        before_check(&summary.rejects)?;
        crate::ingest::check_counts(
            &summary.counts,
            summary.classes,
            policy.policy.run().max_rejected_share,
            &summary.files,
        )?;
        let mut built = built
            .total()?
            .ok_or_else(|| RunError::Other("no valid decisions".into()))?;
        if let Some(spill) = summary.spill {
            progress.stage("summing the partitions' value counts, each period apart");
            built.gather_large(std::sync::Arc::new(spill), summary.budget)?;
        }
        let mut files = summary.files;
        files.append(&mut inputs);
        inputs = files;
        counts = summary.counts;
        match stored {
            Some(stored) => {
                progress.stage("merging with the stored statistics");
                stored.merge(built)?
            }
            None => built,
        }
    };
    Ok((set, inputs, counts))
}

/// Runs ingest → aggregate → metrics → recommend. `before_check` sees the rejected rows before
/// the rejected-share limit is applied (so `analyze` can write the rejects file first).
///
/// Raw inputs are validated and aggregated into a statistics set; statistics directories
/// (`--stats`) are read, checked against the policy and summed. With both, the raw inputs'
/// periods replace the stored ones (an incremental run).
pub fn compute(
    input: &InputConfig,
    progress: Progress,
    passes: Passes,
    before_check: impl FnOnce(&polars::prelude::DataFrame) -> Result<(), RunError>,
) -> Result<Computed, RunError> {
    compute_beside(input, progress, passes, before_check, |_| Ok(())).map(|(c, ())| c)
}

/// [`compute`], with `beside` given the statistics set as soon as it is built and run on a
/// thread of its own while the set is decoded and the metrics computed (after them when a
/// partitioned run left the set's large tables on disk). `analyze` writes the set's files
/// there: at 10^7 decisions they took 0.3 s after the metrics, while nothing else ran
/// (BENCHMARKS.md, eighteenth session). An error of either side is the run's, the decoding's
/// first: `beside` then runs to its end and its own error is dropped. A panic in `beside` is
/// resumed.
pub fn compute_beside<R: Send>(
    input: &InputConfig,
    progress: Progress,
    passes: Passes,
    before_check: impl FnOnce(&polars::prelude::DataFrame) -> Result<(), RunError>,
    beside: impl FnOnce(&StatsSet) -> Result<R, RunError> + Send,
) -> Result<(Computed, R), RunError> {
    let policy = load_policy(&input.policy)?;
    let granularity = input.period.unwrap_or(policy.policy.run().period);
    let (set, inputs, counts) =
        statistics(input, &policy, granularity, progress, passes, before_check)?;
    let (decoded, done) = if set.spilled.is_some() {
        // The large tables are on disk: their decoding keeps both cores busy reading them, and
        // at 10^8 decisions writing the set beside it saved no time and raised the peak by
        // 140 MiB.
        let decoded = decode(&set, &policy, granularity, progress, passes)?;
        (decoded, beside(&set)?)
    } else {
        let set = &set;
        let (done, decoded) = crate::threads::join(
            move || beside(set),
            || decode(set, &policy, granularity, progress, passes),
        );
        (decoded?, done?)
    };
    let (aggregated, signals, analysis) = decoded;
    Ok((
        Computed {
            policy,
            inputs,
            counts,
            set,
            aggregated,
            signals,
            analysis,
            granularity,
        },
        done,
    ))
}

/// The statistics set decoded, the signals and oversight load derived, the metrics and
/// recommendations computed.
fn decode(
    set: &StatsSet,
    policy: &LoadedPolicy,
    granularity: Granularity,
    progress: Progress,
    passes: Passes,
) -> Result<(Aggregated, SignalTables, Analysis), RunError> {
    progress.stage("decoding statistics and signals");
    // The signals (mostly the daily counts, on one core) beside the confidence samples: at 10^8
    // decisions the decoding ran at 1.4 cores (BENCHMARKS.md, eighteenth session).
    let (samples, signal_tables) =
        crate::threads::join(|| samples_from_set(set), || signals(set, attack_catalog()));
    let aggregated = Aggregated {
        stats: stats_from_table(&set.cells)?,
        samples: samples?,
    };
    let mut signal_tables = signal_tables?;
    if passes.oversight {
        progress.stage("aggregating oversight load");
        let (rows, analysts) = oversight(set, policy.policy.run().rubber_stamp_seconds)?;
        signal_tables.oversight = rows;
        signal_tables.analysts = analysts;
    }
    progress.stage("computing metrics and recommendations");
    let analysis = analyze(
        &aggregated.stats,
        &aggregated.samples,
        &policy.policy,
        granularity,
        &signal_tables,
    )
    .ok_or_else(|| RunError::Other("nothing to analyse: no valid decisions".into()))?;
    Ok((aggregated, signal_tables, analysis))
}

/// `manifest.json`: what the run read, with which policy and parameters. No clock.
#[derive(Serialize)]
pub struct Manifest {
    pub engine: &'static str,
    pub engine_version: &'static str,
    pub run_id: String,
    pub policy: PolicyRef,
    pub parameters: Parameters,
    pub inputs: Vec<InputFile>,
    pub rows: RowCounts,
    pub outputs: Vec<String>,
    /// What looks wrong: the evaluated period, a misspelled policy class (`crate::coverage`);
    /// absent when nothing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The policy a run used.
#[derive(Serialize)]
pub struct PolicyRef {
    pub path: String,
    pub sha256: String,
}

/// Run parameters that shape the numbers.
#[derive(Serialize)]
pub struct Parameters {
    pub period: &'static str,
    pub evaluated_period: String,
    pub first_period: String,
    pub baseline_periods: u32,
    pub fixed_baseline: Option<(String, String)>,
    pub fdr_level: f64,
    pub max_rejected_share: f64,
    pub defaults: readiness_governance::Thresholds,
}

/// One ledger record: a class's recommendation in one run.
#[derive(Serialize)]
pub struct LedgerRecord {
    pub run_id: String,
    pub evaluated_period: String,
    pub policy_sha256: String,
    pub action_class: String,
    pub owner: Option<String>,
    pub current_mode: String,
    pub recommendation: &'static str,
    pub model_version: Option<String>,
    pub n_reviewed: u64,
    pub agreement: Option<f64>,
    pub anytime_lower: Option<f64>,
    pub target_agreement: f64,
}

/// The run id: a hash of the input fingerprints, the policy and the period, so the same inputs
/// and policy always give the same id.
pub fn run_id(inputs: &[InputFile], policy_sha: &str, granularity: Granularity) -> String {
    let mut h = Sha256::new();
    for f in inputs {
        h.update(f.table.as_str().as_bytes());
        h.update(b"\0");
        h.update(f.sha256.as_bytes());
        h.update(b"\n");
    }
    h.update(policy_sha.as_bytes());
    h.update(granularity.as_str().as_bytes());
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What `analyze` wrote.
pub struct AnalyzeSummary {
    pub out: PathBuf,
    pub run_id: String,
    pub recommendations: BTreeMap<String, usize>,
    pub decisions_valid: u64,
    pub rows_rejected: u64,
    pub ledger_added: usize,
}

/// Where a failed run keeps its rejected rows: `<out>.rejects.parquet`, beside the run.
fn rejects_beside(out: &Path) -> PathBuf {
    out.with_file_name(format!(
        "{}.rejects.parquet",
        out.file_name().and_then(|n| n.to_str()).unwrap_or("run")
    ))
}

/// `readiness analyze`: the whole pipeline into a run directory, then the ledger.
pub fn run_analyze(cfg: &AnalyzeConfig) -> Result<AnalyzeSummary, RunError> {
    let progress = Progress::new(cfg.quiet);
    let ledger_warning = crate::output::check_ledger(&cfg.ledger)?;
    warn(ledger_warning.as_slice());
    let run = RunDir::create(&cfg.out, crate::output::OutputKind::Run)?;
    let c = compute_beside(
        &cfg.input,
        progress,
        Passes { oversight: true },
        |rejects| {
            // The rejects go next to the (failed) run so that the reasons are on disk; the run
            // directory itself is only renamed into place on success.
            run.parquet("rejects.parquet", rejects)?;
            Ok(())
        },
        // The statistics set's files are written while the metrics are computed.
        |set| {
            let mut written = Vec::new();
            set.write(|rel| {
                written.push(rel.to_string());
                Ok(run.path(rel)?)
            })?;
            crate::ingest::mark("statistics set written");
            Ok(written)
        },
    );
    let (c, set_files) = match c {
        Ok(c) => c,
        Err(e) => {
            let keep_rejects = matches!(
                e,
                RunError::Ingest(IngestError::TooManyRejected { .. })
                    | RunError::Ingest(IngestError::Empty { .. })
            ) && run.root().join("rejects.parquet").is_file();
            if keep_rejects {
                // Keep the evidence of what was rejected beside the previous run.
                let dest = rejects_beside(&cfg.out);
                let _ = std::fs::rename(run.root().join("rejects.parquet"), &dest);
                let _ = std::fs::remove_dir_all(run.root());
                let msg = format!(
                    "{e}\nthe rejected rows and their reasons are in {}",
                    dest.display()
                );
                return Err(match e {
                    RunError::Ingest(IngestError::TooManyRejected { .. }) => {
                        RunError::Rejected(msg)
                    }
                    _ => RunError::Other(msg),
                });
            }
            let _ = std::fs::remove_dir_all(run.root());
            return Err(e);
        }
    };
    let a = &c.analysis;
    let id = run_id(&c.inputs, &c.policy.sha256, c.granularity);
    let warnings = c.warnings();
    warn(&warnings);
    progress.stage("writing metrics");
    let mut outputs: Vec<String> = vec!["rejects.parquet".into()];
    let mut write = |rel: &str, df: polars::prelude::PolarsResult<polars::prelude::DataFrame>| {
        let df = df.map_err(|e| RunError::Other(format!("{rel}: {e}")))?;
        run.parquet(rel, &df)?;
        outputs.push(rel.to_string());
        Ok::<(), RunError>(())
    };
    write("metrics/agreement.parquet", tables::agreement(a))?;
    write("metrics/calibration.parquet", tables::calibration(a))?;
    write(
        "metrics/calibration_bins.parquet",
        tables::calibration_bins(a),
    )?;
    write(
        "metrics/calibration_periods.parquet",
        tables::calibration_periods(a),
    )?;
    write(
        "metrics/calibration_quantile_bins.parquet",
        tables::calibration_quantile_bins(a),
    )?;
    write("metrics/drift.parquet", tables::drift(a))?;
    write("metrics/versions.parquet", tables::versions(a))?;
    write("metrics/gates.parquet", tables::gates(a))?;
    write("metrics/gate_curves.parquet", tables::gate_curves(a))?;
    write("metrics/evidence.parquet", tables::evidence(a))?;
    write("metrics/manipulation.parquet", tables::manipulation(a))?;
    write("metrics/reasoning.parquet", tables::reasoning(a))?;
    write(
        "metrics/oversight.parquet",
        tables::oversight(a, &c.signals, c.policy.policy.run()),
    )?;
    write(
        "metrics/oversight_analysts.parquet",
        tables::oversight_analysts(&c.signals),
    )?;
    write(
        "metrics/reasoning_ids.parquet",
        tables::reasoning_ids(&c.signals.cited),
    )?;
    outputs.extend(set_files);

    let recs: Vec<_> = a.classes.iter().map(|cl| &cl.recommendation).collect();
    run.json("recommendations.json", &recs)?;
    outputs.push("recommendations.json".into());

    progress.stage("rendering charts and reports");
    let model = present::report_model(&c, &id);
    let written = readiness_report::render_all_on(&model, run.root(), crate::threads::workers())?;
    for p in written {
        if let Ok(rel) = p.strip_prefix(run.root()) {
            outputs.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    progress.stage("writing manifest and ledger");
    outputs.push("manifest.json".into());
    outputs.sort();
    let run_settings = c.policy.policy.run();
    let manifest = Manifest {
        engine: "readiness",
        engine_version: env!("CARGO_PKG_VERSION"),
        run_id: id.clone(),
        policy: PolicyRef {
            path: c.policy.path.clone(),
            sha256: c.policy.sha256.clone(),
        },
        parameters: Parameters {
            period: c.granularity.as_str(),
            evaluated_period: a.evaluated.date_string(),
            first_period: a
                .periods
                .first()
                .map(|p| p.date_string())
                .unwrap_or_default(),
            baseline_periods: run_settings.baseline_periods,
            fixed_baseline: run_settings.baseline.as_ref().map(|b| {
                (
                    readiness_governance::FixedBaseline::date_string(b.start),
                    readiness_governance::FixedBaseline::date_string(b.end),
                )
            }),
            fdr_level: run_settings.fdr_level,
            max_rejected_share: run_settings.max_rejected_share,
            defaults: c.policy.policy.defaults().clone(),
        },
        inputs: c.inputs.clone(),
        rows: c.counts.clone(),
        outputs,
        warnings,
    };
    run.json("manifest.json", &manifest)?;
    let out = run.commit()?;
    // The rejects a failed run left beside this directory describe other inputs.
    let stale = rejects_beside(&cfg.out);
    if stale.is_file() {
        if let Err(e) = std::fs::remove_file(&stale) {
            warn(&[format!(
                "{} (the rejects of an earlier failed run) could not be removed: {e}",
                stale.display()
            )]);
        }
    }

    let records: Vec<(String, LedgerRecord)> = a
        .classes
        .iter()
        .map(|cl| {
            let r = &cl.recommendation;
            (
                cl.action_class.clone(),
                LedgerRecord {
                    run_id: id.clone(),
                    evaluated_period: a.evaluated.date_string(),
                    policy_sha256: c.policy.sha256.clone(),
                    action_class: cl.action_class.clone(),
                    owner: r.owner.clone(),
                    current_mode: r.current_mode.clone(),
                    recommendation: r.recommendation.as_str(),
                    model_version: r.evidence.current_version.clone(),
                    n_reviewed: r.evidence.n_reviewed,
                    agreement: r.evidence.agreement,
                    anytime_lower: r.evidence.anytime_lower,
                    target_agreement: cl.thresholds.target_agreement,
                },
            )
        })
        .collect();
    let ledger_added = append_ledger(&cfg.ledger, &id, &records)?;
    progress.stage("done");
    let mut counts = BTreeMap::new();
    for cl in &a.classes {
        *counts
            .entry(cl.recommendation.recommendation.as_str().to_string())
            .or_insert(0) += 1;
    }
    Ok(AnalyzeSummary {
        out,
        run_id: id,
        recommendations: counts,
        decisions_valid: c.aggregated.stats.total(|_| true).n_decisions(),
        rows_rejected: c.counts.decisions_rejected + c.counts.verdicts_rejected,
        ledger_added,
    })
}

/// `readiness aggregate --emit-sql`: the aggregation as SQL for another engine, writing the
/// statistics directory `out`.
pub fn emit_sql(
    input: &InputConfig,
    dialect: crate::sql::Dialect,
    out: &Path,
) -> Result<EmittedSql, RunError> {
    if !input.stats.is_empty() {
        return Err(RunError::Usage(
            "--emit-sql aggregates raw inputs; --stats does not apply".into(),
        ));
    }
    let policy = load_policy(&input.policy)?;
    let granularity = input.period.unwrap_or(policy.policy.run().period);
    let unwatched = unwatched_classes(&policy.policy);
    let columns = ColumnMap {
        map: policy.policy.columns().entries().clone(),
    };
    let name = |column: &'static str| columns.map.get(column).map_or(column, String::as_str);
    let (decisions, verdicts) = (
        input_columns("decisions", &input.decisions),
        input_columns("verdicts", &input.verdicts),
    );
    let unseen = [("--decisions", &decisions), ("--verdicts", &verdicts)]
        .into_iter()
        .filter_map(|(option, held)| {
            let why = held.as_ref().err()?;
            Some(format!(
                "{option}: {why}; the SQL names the inputs as given and takes their timestamps \
                 to be in microseconds or coarser{}",
                if option == "--decisions" {
                    " and every optional column to be present"
                } else {
                    ""
                }
            ))
        })
        .collect();
    let (decisions, verdicts) = (decisions.ok(), verdicts.ok());
    let nanoseconds = crate::sql::Nanoseconds {
        decided_at: in_nanoseconds(decisions.as_ref(), name("decided_at")),
        reviewed_at: in_nanoseconds(verdicts.as_ref(), name("reviewed_at")),
    };
    // Optional columns that no decisions file holds (nor names in a hive folder) get the
    // native path's values in the SQL; a column some files hold is read from them.
    let absent: std::collections::BTreeSet<&'static str> =
        crate::ingest::optional_decision_columns()
            .filter(|&c| decisions.as_ref().is_some_and(|h| !h.contains_key(name(c))))
            .collect();
    let sql = crate::sql::emit(&crate::sql::SqlOptions {
        dialect,
        decisions: &input.decisions,
        verdicts: &input.verdicts,
        out: &out.display().to_string(),
        granularity,
        unwatched: &unwatched,
        columns: &columns,
        catalog: attack_catalog(),
        nanoseconds,
        absent: &absent,
    });
    Ok(EmittedSql { sql, unseen })
}

/// What `aggregate --emit-sql` prints: the script, and what this machine could not read of
/// the inputs it names (one note per table, for standard error).
pub struct EmittedSql {
    pub sql: String,
    pub unseen: Vec<String>,
}

/// The columns of `specs`' Parquet files, each with its type in the first file that holds it,
/// and the keys of their hive folders (typed `None`), where this machine can read every file;
/// otherwise why not (the SQL may be emitted for files only the engine that runs it sees).
fn input_columns(
    table: &'static str,
    specs: &[String],
) -> Result<BTreeMap<String, Option<polars_arrow::datatypes::ArrowDataType>>, String> {
    use polars::prelude::{ParquetReader, SerReader};
    let mut held = BTreeMap::new();
    let files = crate::ingest::resolve(table, specs).map_err(|e| e.to_string())?;
    if files.is_empty() {
        return Err(format!("no Parquet file found in {}", specs.join(" ")));
    }
    for (path, hive) in files {
        let unreadable = |e: &dyn std::fmt::Display| format!("cannot read {}: {e}", path.display());
        let file = std::fs::File::open(&path).map_err(|e| unreadable(&e))?;
        let schema = ParquetReader::new(file)
            .schema()
            .map_err(|e| unreadable(&e))?;
        for field in schema.iter_values() {
            held.entry(field.name.to_string())
                .or_insert_with(|| Some(field.dtype().clone()));
        }
        for (key, _) in hive {
            held.entry(key).or_insert(None);
        }
    }
    Ok(held)
}

/// Whether the files' `column` is a timestamp in nanoseconds (false when unknown).
fn in_nanoseconds(
    columns: Option<&BTreeMap<String, Option<polars_arrow::datatypes::ArrowDataType>>>,
    column: &str,
) -> bool {
    use polars_arrow::datatypes::{ArrowDataType, TimeUnit};
    matches!(
        columns.and_then(|c| c.get(column)),
        Some(Some(ArrowDataType::Timestamp(TimeUnit::Nanosecond, _)))
    )
}

/// `readiness aggregate`: validates raw inputs (merged with any `--stats`, as in an
/// incremental run) and writes the statistics directory `out` atomically. Returns where and
/// how many decisions the statistics hold.
pub fn run_aggregate(
    input: &InputConfig,
    out: &Path,
    quiet: bool,
) -> Result<(PathBuf, u64), RunError> {
    crate::output::refuse_foreign(out, crate::output::OutputKind::Stats)?;
    let policy = load_policy(&input.policy)?;
    let granularity = input.period.unwrap_or(policy.policy.run().period);
    let progress = Progress::new(quiet);
    let passes = Passes { oversight: true };
    let (set, _, _) = statistics(input, &policy, granularity, progress, passes, |_| Ok(()))?;
    let dir = RunDir::create(out, crate::output::OutputKind::Stats)?;
    set.write(|rel| Ok(dir.path(rel.strip_prefix("stats/").unwrap_or(rel))?))?;
    let n = stats_from_table(&set.cells)?.total(|_| true).n_decisions();
    Ok((dir.commit()?, n))
}

/// `readiness validate`: the ingest stage only; returns the findings as text and whether the
/// rejected share is within the policy's limit.
pub fn run_validate(input: &InputConfig) -> Result<(String, i32), RunError> {
    let policy = load_policy(&input.policy)?;
    let granularity = input.period.unwrap_or(policy.policy.run().period);
    // Valid decisions per period, for the warnings `analyze` would give about the evaluated
    // period.
    let mut per_period = crate::coverage::PerPeriod::new();
    let ing = ingest_parts(input, &policy.policy, Progress::new(true), |_, ing, _| {
        let us = ing
            .decisions
            .column("decided_us")
            .and_then(|c| c.i64().cloned())
            .map_err(|e| RunError::Other(format!("decisions: {e}")))?;
        for t in us.into_no_null_iter() {
            let day = t.div_euclid(crate::aggregate::store::DAY_US) as i32;
            *per_period.entry(granularity.period_of(day)).or_default() += 1;
        }
        Ok(())
    })?;
    let mut out = String::new();
    let counts = &ing.counts;
    let _ = writeln!(out, "inputs:");
    for f in &ing.files {
        let _ = writeln!(
            out,
            "  {:<9} {}  {} rows  sha256 {}",
            f.table.as_str(),
            f.path,
            f.rows,
            &f.sha256[..16]
        );
    }
    let _ = writeln!(
        out,
        "decisions: {} read, {} valid, {} rejected",
        counts.decisions_read, counts.decisions_valid, counts.decisions_rejected
    );
    let _ = writeln!(
        out,
        "verdicts:  {} read, {} valid, {} rejected",
        counts.verdicts_read, counts.verdicts_valid, counts.verdicts_rejected
    );
    for (table, reasons) in &counts.rejected_by_reason {
        for (reason, n) in reasons {
            let _ = writeln!(out, "  rejected {table}: {reason}: {n}");
        }
    }
    for w in crate::coverage::period_warnings(&per_period, granularity) {
        let _ = writeln!(out, "warning: {}", readiness_report::text::clean(&w));
    }
    let code = match crate::ingest::check_counts(
        &ing.counts,
        ing.classes,
        policy.policy.run().max_rejected_share,
        &ing.files,
    ) {
        Ok(()) => {
            let _ = writeln!(out, "ok: the inputs can be analysed");
            exit::OK
        }
        // The counts by reason are printed above.
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
            match e {
                IngestError::TooManyRejected { .. } => exit::TOO_MANY_REJECTED,
                _ => exit::ERROR,
            }
        }
    };
    Ok((out, code))
}

/// One flagged signal of the drift watch.
#[derive(Serialize, Debug, Clone)]
pub struct DriftFinding {
    pub action_class: String,
    pub period_start: String,
    pub signal: &'static str,
    pub detail: String,
}

/// The drift watch: every class in the evaluated period.
#[derive(Serialize, Debug, Clone)]
pub struct DriftWatch {
    /// The evaluated period's first day (`YYYY-MM-DD`).
    pub evaluated_period: String,
    /// The evaluated period as the reports print it (`2025-12`, `2025-Q4`, `2025-W41`).
    pub period_label: String,
    pub classes: Vec<DriftLine>,
    pub flagged: Vec<DriftFinding>,
    /// Classes with decisions in the evaluated period that nothing could be compared for: no
    /// baseline for their confidence or agreement, and no earlier model version.
    pub unchecked: Vec<String>,
    /// What looks wrong: the evaluated period, a misspelled policy class (`crate::coverage`).
    pub warnings: Vec<String>,
}

/// One class's line of the drift watch.
#[derive(Serialize, Debug, Clone)]
pub struct DriftLine {
    pub action_class: String,
    pub n_current: u64,
    pub psi: Option<f64>,
    pub max_psi: f64,
    pub chi2_p_adjusted: Option<f64>,
    pub agreement_current: Option<f64>,
    pub agreement_baseline: Option<f64>,
    pub agreement_p_adjusted: Option<f64>,
    pub model_version: Option<String>,
    pub flagged: bool,
}

/// `readiness drift`: the drift and model-version signals of the evaluated period.
///
/// A class is flagged when, in the evaluated period, its confidence PSI exceeds its `max_psi`
/// with a significant chi-square test, its agreement dropped significantly against the baseline
/// (Benjamini–Hochberg across all classes × periods at `run.fdr_level`), a manipulation window
/// was flagged, or its current model version's agreement dropped significantly against its
/// predecessor.
pub fn drift_watch(input: &InputConfig, quiet: bool) -> Result<DriftWatch, RunError> {
    let c = compute(
        input,
        Progress::new(quiet),
        Passes { oversight: false },
        |_| Ok(()),
    )?;
    let a = &c.analysis;
    let period = a.evaluated.date_string();
    let warnings = c.warnings();
    let mut unchecked = Vec::new();
    // The evaluated period's drift row and flagged manipulation days, by class (one pass each).
    let latest: BTreeMap<&str, &crate::analysis::DriftRow> = a
        .drift
        .iter()
        .filter(|d| d.period == a.evaluated)
        .map(|d| (d.action_class.as_str(), d))
        .collect();
    let mut manipulated: BTreeMap<&str, Vec<&crate::analysis::ManipulationRow>> = BTreeMap::new();
    for m in a.manipulation.iter().filter(|m| {
        m.assessment.flagged && c.granularity.period_of(m.assessment.day) == a.evaluated
    }) {
        manipulated
            .entry(m.action_class.as_str())
            .or_default()
            .push(m);
    }
    let mut classes = Vec::new();
    let mut flagged = Vec::new();
    for cl in &a.classes {
        let d = latest.get(cl.action_class.as_str()).copied();
        let before = flagged.len();
        let mut flag = |signal: &'static str, detail: String| {
            flagged.push(DriftFinding {
                action_class: cl.action_class.clone(),
                period_start: period.clone(),
                signal,
                detail,
            })
        };
        if let Some(d) = d.filter(|d| d.psi_flag) {
            flag(
                "confidence_psi",
                format!(
                    "PSI {:.3} > max_psi {:.3}",
                    d.psi.unwrap_or(f64::NAN),
                    d.max_psi
                ),
            );
        }
        if let Some(d) = d.filter(|d| d.agreement_flag) {
            flag(
                "agreement_drop",
                format!(
                    "agreement {:.2}% vs baseline {:.2}% (BH-adjusted p {:.2e})",
                    100.0 * d.agreement_current.unwrap_or(f64::NAN),
                    100.0 * d.agreement_baseline.unwrap_or(f64::NAN),
                    d.agreement_p_adjusted.unwrap_or(f64::NAN)
                ),
            );
        }
        if let Some(days) = manipulated.get(cl.action_class.as_str()) {
            let day = |m: &crate::analysis::ManipulationRow| {
                readiness_metrics::Period {
                    start: m.assessment.day,
                }
                .date_string()
            };
            let volume: u64 = days.iter().map(|m| m.assessment.volume).sum();
            flag(
                "manipulation",
                format!(
                    "{} flagged day(s) from {} to {}, {volume} decisions (see metrics/manipulation.parquet)",
                    days.len(),
                    day(days[0]),
                    day(days[days.len() - 1]),
                ),
            );
        }
        let version = cl.recommendation.evidence.version_regression.as_ref();
        if let Some(v) = version.filter(|v| v.flagged) {
            flag(
                "version_regression",
                format!(
                    "{} agreement {:.2}% vs {} {:.2}% (BH-adjusted p {:.2e})",
                    v.current_version,
                    100.0 * v.current_agreement,
                    v.previous_version,
                    100.0 * v.previous_agreement,
                    v.p_adjusted
                ),
            );
        }
        let compared = d.is_some_and(|d| d.psi.is_some() || d.agreement_baseline.is_some())
            || version.is_some();
        if d.is_some_and(|d| d.n_current > 0) && !compared {
            unchecked.push(cl.action_class.clone());
        }
        classes.push(DriftLine {
            action_class: cl.action_class.clone(),
            n_current: d.map(|d| d.n_current).unwrap_or(0),
            psi: d.and_then(|d| d.psi),
            max_psi: cl.thresholds.max_psi,
            chi2_p_adjusted: d.and_then(|d| d.chi2_p_adjusted),
            agreement_current: d.and_then(|d| d.agreement_current),
            agreement_baseline: d.and_then(|d| d.agreement_baseline),
            agreement_p_adjusted: d.and_then(|d| d.agreement_p_adjusted),
            model_version: cl.recommendation.evidence.current_version.clone(),
            flagged: flagged.len() > before,
        });
    }
    Ok(DriftWatch {
        evaluated_period: a.evaluated.date_string(),
        period_label: crate::present::period_label(c.granularity, a.evaluated),
        classes,
        flagged,
        unchecked,
        warnings,
    })
}
