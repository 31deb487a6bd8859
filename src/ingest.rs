//! Ingest: find the input files, check every file's schema against the input contract, normalise
//! types, quarantine bad rows with their reason, and fingerprint the inputs.
//!
//! Schema problems (a missing or mistyped column, an unreadable file, no files at all) are errors
//! that name the file, the column, what was expected and what was found: the run cannot proceed.
//! Row problems are not errors: the row is excluded from the metrics, counted by reason and
//! written to `rejects.parquet` with its file and row number, so nothing is lost silently.
//!
//! Row rules, in the order they are checked (the first that applies is the reason):
//!
//! | table | reason | rule |
//! |---|---|---|
//! | both | `null_<column>` | a required column is null |
//! | both | `string_too_long` | an id, class, version, target or analyst longer than [`MAX_STRING_BYTES`] |
//! | both | `timestamp_out_of_range` | a timestamp outside [2000-01-01, 2100-01-01) UTC |
//! | decisions | `confidence_out_of_range` | confidence NaN, infinite, below 0 or above 1 |
//! | decisions | `unknown_asset_criticality` | not `low`, `medium`, `high`, `critical` (after trimming and lower-casing) |
//! | decisions | `duplicate_decision_id` | the id already appeared earlier (file order, then row order); the first occurrence is kept |
//! | verdicts | `unknown_verdict` | not `approve`, `override`, `reject`, `timeout` (after trimming and lower-casing) |
//! | verdicts | `decision_rejected` | the verdict's decision was itself rejected |
//! | verdicts | `unknown_decision` | no decision with that id |
//! | verdicts | `review_before_decision` | `reviewed_at` earlier than the decision's `decided_at` |
//!
//! Timestamps of any Parquet unit, naive (read as UTC) or zoned (converted to UTC), become
//! microseconds since the epoch.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

use polars::prelude::*;
use polars_arrow::array::{Array, Utf8ViewArray, View};
use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Lower bound of plausible timestamps: 2000-01-01T00:00:00Z in microseconds.
pub(crate) const MIN_TS_US: i64 = 946_684_800_000_000;
/// Upper bound (exclusive) of plausible timestamps: 2100-01-01T00:00:00Z in microseconds.
pub(crate) const MAX_TS_US: i64 = 4_102_444_800_000_000;

/// Collects lazy queries on polars' streaming engine: it runs the aggregation queries (and the
/// rejects' sort) in parallel pipelines and gives the same rows in the same order. (The input
/// tables themselves are read on the in-memory engine: see `read_table`.)
pub trait CollectStreaming {
    /// Executes the query on the streaming engine.
    fn collect_streaming(self) -> PolarsResult<DataFrame>;
}

impl CollectStreaming for LazyFrame {
    fn collect_streaming(self) -> PolarsResult<DataFrame> {
        // A query without sinks always yields one frame (`Multiple` is reserved for plans that
        // end in several in-memory sinks, which ingest and aggregate never build).
        Ok(self.collect_with_engine(Engine::Streaming)?.unwrap_single())
    }
}

/// Errors that stop a run before any metric is computed.
#[derive(Debug, Error)]
pub enum IngestError {
    #[error("no Parquet files found for {table} input '{spec}': give a file, a directory or a glob such as 'data/*.parquet'")]
    NoFiles { table: &'static str, spec: String },
    #[error("cannot read {path}: {detail}")]
    Io { path: String, detail: String },
    #[error("{path}: not a readable Parquet file ({detail}); is it truncated or another format?")]
    Unreadable { path: String, detail: String },
    #[error("{path}: required column '{column}' ({expected}) is missing{mapped}; columns found: {found}")]
    MissingColumn {
        path: String,
        column: String,
        expected: &'static str,
        mapped: String,
        found: String,
    },
    #[error(
        "{path}: column '{column}' has type {found}, which the Parquet reader cannot take; {what}"
    )]
    UnsupportedType {
        path: String,
        column: String,
        found: String,
        /// What the engine reads the column as, or that it reads none of it.
        what: String,
    },
    #[error("{path}: column '{column}' has type {found}, expected {expected}")]
    WrongType {
        path: String,
        column: String,
        expected: &'static str,
        found: String,
    },
    #[error("{table}: {rejected} of {total} rows rejected ({share:.2}%), above the limit of {limit:.2}% (run.max_rejected_share); fix the input or raise the limit")]
    TooManyRejected {
        table: &'static str,
        rejected: u64,
        total: u64,
        share: f64,
        limit: f64,
    },
    #[error("the inputs ({decisions} decisions, {verdicts} verdict rows) need about {need_gib:.1} GiB of memory and {have_gib:.1} GiB is available; analyse fewer periods at a time (a glob over some months, or fewer statistics directories)")]
    TooLarge {
        decisions: u64,
        verdicts: u64,
        need_gib: f64,
        have_gib: f64,
    },
    #[error("{classes} distinct action classes, above the limit of {limit}; is action_class mapped to the right column?")]
    TooManyClasses { classes: usize, limit: usize },
    #[error("nothing to analyse: {detail}")]
    Empty { detail: String },
    /// Reading one table's files as one query failed (the query does not say which file).
    #[error("reading {}: {source}", table.as_str())]
    Read {
        table: Table,
        #[source]
        source: PolarsError,
    },
    #[error("{context}: {source}")]
    Polars {
        context: String,
        #[source]
        source: PolarsError,
    },
}

pub(crate) fn pe(context: impl Into<String>) -> impl FnOnce(PolarsError) -> IngestError {
    let context = context.into();
    move |source| IngestError::Polars { context, source }
}

/// Which input table a file belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Table {
    Decisions,
    Verdicts,
    /// A table of a statistics set read with `--stats`.
    Stats,
}

impl Table {
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Decisions => "decisions",
            Table::Verdicts => "verdicts",
            Table::Stats => "stats",
        }
    }
}

/// The kinds of column the contract knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Str,
    Timestamp,
    Float,
    Bool,
    StrList,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Str => "string",
            Kind::Timestamp => "timestamp",
            Kind::Float => "float64",
            Kind::Bool => "bool",
            Kind::StrList => "list<string>",
        }
    }

    fn accepts(self, dt: &DataType) -> bool {
        match self {
            Kind::Str => matches!(
                dt,
                DataType::String | DataType::Categorical(..) | DataType::Enum(..)
            ),
            Kind::Timestamp => matches!(dt, DataType::Datetime(..)),
            // Polars holds decimals of up to 38 digits; a wider one (from a 256-bit Arrow
            // decimal) is typed but cannot be read.
            Kind::Float => match dt {
                DataType::Float64 | DataType::Float32 => true,
                DataType::Decimal(precision, _) => *precision <= 38,
                _ => false,
            },
            Kind::Bool => matches!(dt, DataType::Boolean),
            Kind::StrList => match dt {
                DataType::List(inner) => matches!(**inner, DataType::String | DataType::Null),
                DataType::Null => true,
                _ => false,
            },
        }
    }
}

struct Spec {
    name: &'static str,
    kind: Kind,
    required: bool,
}

/// The decisions' optional columns (null, empty or false where a file lacks them).
pub(crate) fn optional_decision_columns() -> impl Iterator<Item = &'static str> {
    DECISION_COLUMNS
        .iter()
        .filter(|s| !s.required)
        .map(|s| s.name)
}

const DECISION_COLUMNS: [Spec; 10] = [
    Spec {
        name: "decision_id",
        kind: Kind::Str,
        required: true,
    },
    Spec {
        name: "decided_at",
        kind: Kind::Timestamp,
        required: true,
    },
    Spec {
        name: "action_class",
        kind: Kind::Str,
        required: true,
    },
    Spec {
        name: "confidence",
        kind: Kind::Float,
        required: true,
    },
    Spec {
        name: "model_version",
        kind: Kind::Str,
        required: true,
    },
    Spec {
        name: "asset_criticality",
        kind: Kind::Str,
        required: true,
    },
    Spec {
        name: "privileged",
        kind: Kind::Bool,
        required: true,
    },
    Spec {
        name: "target_entity",
        kind: Kind::Str,
        required: false,
    },
    Spec {
        name: "technique_ids",
        kind: Kind::StrList,
        required: false,
    },
    Spec {
        name: "executed",
        kind: Kind::Bool,
        required: false,
    },
];

const VERDICT_COLUMNS: [Spec; 4] = [
    Spec {
        name: "decision_id",
        kind: Kind::Str,
        required: true,
    },
    Spec {
        name: "reviewed_at",
        kind: Kind::Timestamp,
        required: true,
    },
    Spec {
        name: "analyst_id",
        kind: Kind::Str,
        required: true,
    },
    Spec {
        name: "verdict",
        kind: Kind::Str,
        required: true,
    },
];

/// Maps contract column names to the names found in the input files.
///
/// Keys are contract names; `verdict_decision_id` maps the verdicts table's `decision_id`
/// separately from the decisions table's.
#[derive(Clone, Debug, Default)]
pub struct ColumnMap {
    pub map: BTreeMap<String, String>,
}

impl ColumnMap {
    fn input_name(&self, table: Table, contract: &str) -> String {
        if table == Table::Verdicts && contract == "decision_id" {
            if let Some(name) = self.map.get("verdict_decision_id") {
                return name.clone();
            }
        }
        self.map
            .get(contract)
            .cloned()
            .unwrap_or_else(|| contract.to_string())
    }
}

/// One input file and its fingerprint.
#[derive(Clone, Debug, Serialize)]
pub struct InputFile {
    pub table: Table,
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    pub rows: u64,
}

/// The validated inputs: clean rows ready for aggregation, and the accounting of what was
/// excluded.
pub struct Ingested {
    pub files: Vec<InputFile>,
    /// Valid decisions, one row per decision id (without the id, which only the verdicts'
    /// join needs): `decided_us`, `action_class`, `confidence`, `model_version`,
    /// `asset_criticality`, `privileged`, `target_entity`, `technique_ids` (lists of ids of
    /// the process's technique spellings: `ingest::techniques`), `executed`, and `outcome` of
    /// the final verdict (0 approve, 1 override, 2 reject, 3 timeout, 4 no verdict).
    pub decisions: DataFrame,
    /// Every valid verdict row (not only final ones): `analyst_id`, `verdict` (normalised),
    /// `delay_us` (review time minus decision time) and `decision_row`, the row of its decision
    /// in `decisions`.
    pub verdict_rows: DataFrame,
    /// Excluded rows: `table`, `file`, `row`, `decision_id`, `reason`, sorted (and, from
    /// [`validate`], the file's index `__file`, which [`finish_rejects`] removes).
    pub rejects: DataFrame,
    pub counts: RowCounts,
}

/// A rejects table without rows (`table`, `file`, `row`, `decision_id`, `reason`), for runs
/// that read no raw rows.
pub fn empty_rejects() -> DataFrame {
    DataFrame::new_infer_height(vec![
        Column::new_empty("table".into(), &DataType::String),
        Column::new_empty("file".into(), &DataType::String),
        Column::new_empty("row".into(), &DataType::UInt64),
        Column::new_empty("decision_id".into(), &DataType::String),
        Column::new_empty("reason".into(), &DataType::String),
    ])
    .unwrap_or_default()
}

/// Rows read, kept and rejected per table, and rejects by reason.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RowCounts {
    pub decisions_read: u64,
    pub decisions_valid: u64,
    pub decisions_rejected: u64,
    pub verdicts_read: u64,
    pub verdicts_valid: u64,
    pub verdicts_rejected: u64,
    /// (table, reason) → rows.
    pub rejected_by_reason: BTreeMap<String, BTreeMap<String, u64>>,
}

impl RowCounts {
    /// Adds the counts of another part of the input.
    pub fn add(&mut self, other: &RowCounts) {
        self.decisions_read += other.decisions_read;
        self.decisions_valid += other.decisions_valid;
        self.decisions_rejected += other.decisions_rejected;
        self.verdicts_read += other.verdicts_read;
        self.verdicts_valid += other.verdicts_valid;
        self.verdicts_rejected += other.verdicts_rejected;
        for (table, reasons) in &other.rejected_by_reason {
            let mine = self.rejected_by_reason.entry(table.clone()).or_default();
            for (reason, n) in reasons {
                *mine.entry(reason.clone()).or_default() += n;
            }
        }
    }
}

/// Where to read and how.
pub struct IngestOptions<'a> {
    pub decisions: &'a [String],
    pub verdicts: &'a [String],
    pub columns: &'a ColumnMap,
}

/// A resolved input file with the hive partition values (`key=value` folders) on its path.
pub type ResolvedFile = (PathBuf, Vec<(String, String)>);

/// Expands a list of files, directories and globs into a sorted list of Parquet files, each
/// with the hive partition values (`key=value` folders) found between the root and the file.
pub fn resolve(table: &'static str, specs: &[String]) -> Result<Vec<ResolvedFile>, IngestError> {
    let mut out = Vec::new();
    for spec in specs {
        let before = out.len();
        let p = Path::new(spec);
        if spec.contains(['*', '?', '[']) {
            let paths = glob::glob(spec).map_err(|e| IngestError::Io {
                path: spec.clone(),
                detail: format!("invalid glob pattern: {e}"),
            })?;
            for entry in paths {
                let path = entry.map_err(|e| IngestError::Io {
                    path: spec.clone(),
                    detail: e.to_string(),
                })?;
                if path.is_file() {
                    out.push((path, Vec::new()));
                } else if path.is_dir() {
                    walk(&path, &path, &mut out)?;
                }
            }
        } else if p.is_dir() {
            walk(p, p, &mut out)?;
        } else if p.is_file() {
            out.push((p.to_path_buf(), Vec::new()));
        } else {
            return Err(IngestError::Io {
                path: spec.clone(),
                detail: "no such file or directory".into(),
            });
        }
        if out.len() == before {
            return Err(IngestError::NoFiles {
                table,
                spec: spec.clone(),
            });
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|a, b| a.0 == b.0);
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<ResolvedFile>) -> Result<(), IngestError> {
    let io = |e: std::io::Error| IngestError::Io {
        path: dir.display().to_string(),
        detail: e.to_string(),
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        if path.is_dir() {
            walk(root, &path, out)?;
        } else if name.ends_with(".parquet") || name.ends_with(".pq") {
            let hive = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .parent()
                .map(|rel| {
                    rel.components()
                        .filter_map(|c| c.as_os_str().to_str())
                        .filter_map(|s| s.split_once('='))
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                })
                .unwrap_or_default();
            out.push((path, hive));
        }
    }
    Ok(())
}

/// SHA-256 (hex) and size of a file.
pub fn fingerprint(path: &Path) -> Result<(String, u64), IngestError> {
    let io = |e: std::io::Error| IngestError::Io {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    let mut f = File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buf[..n]);
    }
    let hex = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((hex, bytes))
}

/// The SHA-256 and size of the input files, computed on a thread of its own at the lowest
/// scheduling priority while the files are read and validated: the hashing fills the time a
/// core would otherwise idle instead of delaying the read (at 10^8 decisions, 2.5 GB hashed
/// before the first row was read). The files are read twice either way, as before: once to
/// hash them, once to decode them. What that thread has not started when the fingerprints are
/// needed is hashed by [`Fingerprints::fill`] on every core at normal priority; dropped, the
/// fingerprints stop the thread after its current file.
#[derive(Default)]
pub struct Fingerprints {
    queue: Option<std::sync::Arc<HashQueue>>,
    running: Option<std::thread::JoinHandle<()>>,
}

/// A file's SHA-256 (hex) and size, or why it could not be read.
type Hashed = Result<(String, u64), IngestError>;

/// The files to hash, taken one at a time by whoever works on the queue.
struct HashQueue {
    paths: Vec<PathBuf>,
    next: std::sync::atomic::AtomicUsize,
    hashed: std::sync::Mutex<Vec<Option<Hashed>>>,
    stop: std::sync::atomic::AtomicBool,
}

impl HashQueue {
    /// Hashes the next file not yet taken, until none is left (or the queue is stopped).
    fn work(&self) {
        while !self.stop.load(Ordering::Relaxed) {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(path) = self.paths.get(i) else {
                return;
            };
            let result = fingerprint(path);
            let mut hashed = self
                .hashed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            hashed[i] = Some(result);
        }
    }
}

impl Fingerprints {
    /// Starts hashing `paths`, in order.
    pub fn start(paths: Vec<PathBuf>) -> Fingerprints {
        let queue = std::sync::Arc::new(HashQueue {
            hashed: std::sync::Mutex::new((0..paths.len()).map(|_| None).collect()),
            paths,
            next: Default::default(),
            stop: Default::default(),
        });
        let worker = std::sync::Arc::clone(&queue);
        let running = std::thread::Builder::new()
            .name("fingerprints".into())
            .spawn(move || {
                lowest_priority();
                worker.work();
            })
            .ok();
        Fingerprints {
            queue: Some(queue),
            running,
        }
    }

    /// Hashes what is left (on every core), waits for the hashing thread, and writes the
    /// fingerprints into `files` (the same files, in the same order, as
    /// [`Fingerprints::start`] was given); the first file that could not be hashed is the error.
    pub fn fill(mut self, files: &mut [InputFile]) -> Result<(), IngestError> {
        let queue = self.queue.take();
        if let Some(queue) = &queue {
            crate::threads::map_range(crate::threads::workers(), usize::MAX, |_| queue.work());
        }
        if let Some(running) = self.running.take() {
            running
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
        }
        let hashed = queue.map_or_else(Vec::new, |queue| {
            std::mem::take(
                &mut *queue
                    .hashed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            )
        });
        let mismatch = |detail: String| IngestError::Io {
            path: "the input files".into(),
            detail,
        };
        if hashed.len() != files.len() {
            return Err(mismatch(format!(
                "{} fingerprints for {} files",
                hashed.len(),
                files.len()
            )));
        }
        for (file, result) in files.iter_mut().zip(hashed) {
            let (sha256, bytes) =
                result.ok_or_else(|| mismatch(format!("{} was not hashed", file.path)))??;
            file.sha256 = sha256;
            file.bytes = bytes;
        }
        Ok(())
    }
}

impl Drop for Fingerprints {
    fn drop(&mut self) {
        if let Some(queue) = &self.queue {
            queue.stop.store(true, Ordering::Relaxed);
        }
    }
}

/// Lowers the calling thread (alone: Linux gives each thread its own nice value) to the lowest
/// priority, so that it runs on cores the others leave idle. Best effort.
fn lowest_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take plain integers and touch no memory of ours.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19);
    }
}

/// Reads one file's schema and row count, checks the contract, and returns a LazyFrame with
/// the canonical columns.
fn scan_file(
    table: Table,
    path: &Path,
    hive: &[(String, String)],
    columns: &ColumnMap,
) -> Result<(LazyFrame, InputFile), IngestError> {
    let shown = path.display().to_string();
    let unreadable = |e: PolarsError| IngestError::Unreadable {
        path: shown.clone(),
        detail: e.to_string(),
    };
    let mut reader = File::open(path)
        .map(ParquetReader::new)
        .map_err(|e| IngestError::Io {
            path: shown.clone(),
            detail: e.to_string(),
        })?;
    let rows = reader.num_rows().map_err(unreadable)? as u64;
    let specs: &[Spec] = match table {
        Table::Decisions => &DECISION_COLUMNS,
        Table::Verdicts => &VERDICT_COLUMNS,
        Table::Stats => &[],
    };
    // Polars stops the process on a column type it has no conversion for (in any column of
    // the file, read or not): such a file is refused first, naming the column.
    for field in reader.schema().map_err(unreadable)?.iter_values() {
        if !readable_type(field.dtype()) {
            let read = specs
                .iter()
                .find(|spec| columns.input_name(table, spec.name) == field.name.as_str());
            return Err(IngestError::UnsupportedType {
                path: shown,
                column: field.name.to_string(),
                found: match field.dtype() {
                    ArrowDataType::Extension(ext) => format!("extension type {}", ext.name),
                    ArrowDataType::Timestamp(unit, Some(zone)) => {
                        format!("timestamp ({unit:?}) in the unknown time zone '{zone}'")
                    }
                    other => format!("{other:?}"),
                },
                what: match (read, field.dtype()) {
                    (Some(_), ArrowDataType::Timestamp(_, Some(_))) => {
                        "the reader knows named time zones (e.g. Asia/Kolkata) and whole-hour \
                         offsets only: write the column in UTC or with a named zone"
                            .into()
                    }
                    (Some(spec), _) => format!(
                        "the engine reads it as {}: cast it to that type",
                        spec.kind.describe()
                    ),
                    (None, _) => "the engine does not use this column: drop it or cast it to a \
                                  common type (string, integer, float, timestamp in UTC)"
                        .into(),
                },
            });
        }
    }
    let mut lf =
        LazyFrame::scan_parquet(PlRefPath::new(shown.as_str()), ScanArgsParquet::default())
            .map_err(unreadable)?;
    let schema = lf.collect_schema().map_err(unreadable)?;
    let mut exprs = Vec::with_capacity(specs.len());
    for spec in specs {
        let name = columns.input_name(table, spec.name);
        let expr = match schema.get(name.as_str()) {
            Some(dt) => {
                if !spec.kind.accepts(dt) {
                    return Err(IngestError::WrongType {
                        path: shown,
                        column: name,
                        expected: spec.kind.describe(),
                        found: dt.to_string(),
                    });
                }
                normalise(col(name.as_str()), spec.kind, dt)
            }
            None => match hive.iter().find(|(k, _)| *k == name) {
                Some((_, v)) => hive_value(v, spec.kind).ok_or_else(|| IngestError::WrongType {
                    path: shown.clone(),
                    column: name.clone(),
                    expected: spec.kind.describe(),
                    found: format!("hive partition value '{v}'"),
                })?,
                None if spec.required => {
                    let mut found: Vec<&str> = schema.iter_names().map(|s| s.as_str()).collect();
                    found.truncate(30);
                    return Err(IngestError::MissingColumn {
                        path: shown,
                        column: spec.name.to_string(),
                        expected: spec.kind.describe(),
                        mapped: if name != spec.name {
                            format!(" (mapped to '{name}' by [columns])")
                        } else {
                            String::new()
                        },
                        found: found.join(", "),
                    });
                }
                None => missing_optional(spec),
            },
        };
        let expr = match (categorical(spec.name), spec.kind) {
            (Some(dtype), _) => {
                let field = dtype.clone();
                expr.map(
                    move |c| to_categories(c, &dtype),
                    move |_, f| Ok(Field::new(f.name().clone(), field.clone())),
                )
            }
            (None, Kind::StrList) => expr.map(
                |c| technique_codes(&c),
                |_, f| Ok(Field::new(f.name().clone(), technique_list_type())),
            ),
            (None, _) => expr,
        };
        exprs.push(expr.alias(spec.name));
    }
    // No file index or row per row: a table read in one pass has its files' rows in file
    // order ([`Positions::Files`]), and routing adds them to the rows it spills.
    let lf = lf.select(exprs);
    // The fingerprint comes later, from [`Fingerprints`].
    let file = InputFile {
        table,
        path: shown,
        sha256: String::new(),
        bytes: 0,
        rows,
    };
    Ok((lf, file))
}

/// Whether polars (with this build's features) has a column type for `dt`: its conversion
/// from Arrow (`DataType::from_arrow`) panics on the others, and on a timestamp whose time zone
/// it does not know.
fn readable_type(dt: &ArrowDataType) -> bool {
    match dt {
        ArrowDataType::Null
        | ArrowDataType::Boolean
        | ArrowDataType::Int8
        | ArrowDataType::Int16
        | ArrowDataType::Int32
        | ArrowDataType::Int64
        | ArrowDataType::UInt8
        | ArrowDataType::UInt16
        | ArrowDataType::UInt32
        | ArrowDataType::UInt64
        | ArrowDataType::Float32
        | ArrowDataType::Float64
        | ArrowDataType::Date32
        | ArrowDataType::Date64
        | ArrowDataType::Time32(_)
        | ArrowDataType::Time64(_)
        | ArrowDataType::Duration(_)
        | ArrowDataType::Binary
        | ArrowDataType::LargeBinary
        | ArrowDataType::FixedSizeBinary(_)
        | ArrowDataType::BinaryView
        | ArrowDataType::Utf8
        | ArrowDataType::LargeUtf8
        | ArrowDataType::Utf8View
        | ArrowDataType::Decimal(..)
        | ArrowDataType::Decimal32(..)
        | ArrowDataType::Decimal64(..)
        | ArrowDataType::Decimal256(..) => true,
        ArrowDataType::Timestamp(_, tz) => TimeZone::opt_try_new(tz.clone()).is_ok(),
        ArrowDataType::List(f)
        | ArrowDataType::LargeList(f)
        | ArrowDataType::FixedSizeList(f, _)
        | ArrowDataType::Map(f, _) => readable_type(f.dtype()),
        ArrowDataType::Struct(fields) => fields.iter().all(|f| readable_type(f.dtype())),
        ArrowDataType::Dictionary(_, values, _) => readable_type(values),
        // Intervals (read as structs only where the environment allows it), 16-bit floats,
        // 128-bit integers, unions and extension types (the Parquet UUID among them).
        _ => false,
    }
}

/// The inputs' low-cardinality string columns, read as categories: a 4-byte id per row instead
/// of a 16-byte string view, 320 MiB less for the decisions at 10^7 rows and 230 MiB less for
/// their verdicts (BENCHMARKS.md, twelfth session). Each column has categories of its own.
const CATEGORICAL: [&str; 5] = [
    "action_class",
    "model_version",
    "asset_criticality",
    "analyst_id",
    "verdict",
];

/// The categorical type a column is read as, if it is one of [`CATEGORICAL`]. The ids depend on
/// the order rows are read in: whatever the engine derives from them goes through the strings
/// (`Codes::of_column` ranks them in byte order).
pub(crate) fn categorical(column: &str) -> Option<DataType> {
    // Made once and kept for the whole process: the columns' identity (polars compares
    // categories by pointer) never depends on a registry lookup by name.
    static TYPES: std::sync::OnceLock<Vec<DataType>> = std::sync::OnceLock::new();
    let types = TYPES.get_or_init(|| {
        CATEGORICAL
            .iter()
            .map(|name| {
                DataType::from_categories(Categories::new(
                    format!("readiness.{name}").into(),
                    "readiness".into(),
                    CategoricalPhysical::U32,
                ))
            })
            .collect()
    });
    let k = CATEGORICAL.iter().position(|c| *c == column)?;
    types.get(k).cloned()
}

/// A column of categories of `dtype` (a categorical type) from their ids, which must come from
/// its mapping: an id past the mapping's categories is an error.
pub(crate) fn categorical_column(ids: UInt32Chunked, dtype: &DataType) -> PolarsResult<Column> {
    let DataType::Categorical(_, mapping) = dtype else {
        polars_bail!(ComputeError: "{dtype} is not a categorical type");
    };
    if let Some(max) = ids.max() {
        polars_ensure!(
            (max as usize) < mapping.num_cats_upper_bound(),
            ComputeError: "category id {max} is not in its mapping"
        );
    }
    // Safety: every id is below the mapping's number of categories (checked above).
    let cats = unsafe { Categorical32Chunked::from_cats_and_dtype_unchecked(ids, dtype.clone()) };
    Ok(cats.into_column())
}

/// A string column as categories of `dtype` (from [`categorical`]). Polars' own cast hashes
/// every row; here the string codes' cache of raw views answers most rows
/// (`codes_through_views`), and only a miss looks the string up in the categories.
pub(crate) fn to_categories(c: Column, dtype: &DataType) -> PolarsResult<Column> {
    use polars_arrow::array::PrimitiveArray;
    let DataType::Categorical(_, mapping) = dtype else {
        polars_bail!(ComputeError: "{dtype} is not a categorical type");
    };
    let ca = c.str()?;
    let chunks = ca.downcast_iter().map(|arr| {
        let mut ids = Vec::with_capacity(arr.len());
        crate::aggregate::build::codes_through_views(arr, &mut ids, |j| {
            mapping.insert_cat(arr.value(j))
        })?;
        Ok(PrimitiveArray::new(
            ArrowDataType::UInt32,
            ids.into(),
            arr.validity().cloned(),
        ))
    });
    let chunks = chunks.collect::<PolarsResult<Vec<_>>>()?;
    categorical_column(
        UInt32Chunked::from_chunk_iter(c.name().clone(), chunks),
        dtype,
    )
}

/// The process's technique spellings, each with a 32-bit id: a decision's cited IDs are kept
/// as lists of these ids ([`technique_codes`]), 4 bytes an ID instead of a 16-byte string
/// view. Spellings are added as they are read and never removed.
pub(crate) fn techniques() -> &'static CategoricalMapping {
    static MAPPING: std::sync::OnceLock<Arc<CategoricalMapping>> = std::sync::OnceLock::new();
    MAPPING.get_or_init(|| {
        Categories::new(
            "readiness.technique_ids".into(),
            "readiness".into(),
            CategoricalPhysical::U32,
        )
        .mapping()
    })
}

/// The type of a decision's cited IDs once read: a list of ids of [`techniques`].
pub(crate) fn technique_list_type() -> DataType {
    DataType::List(Box::new(DataType::UInt32))
}

/// A column of lists of technique spellings as lists of their ids in [`techniques`] (null
/// lists and null entries stay null). A spelling of
/// up to 12 bytes is looked up in the mapping once per call (one batch of a file; ATT&CK has
/// several hundred IDs, more than a small cache of views holds), a longer one once per entry.
pub(crate) fn technique_codes(c: &Column) -> PolarsResult<Column> {
    use polars_arrow::array::{ListArray, PrimitiveArray};
    let mapping = techniques();
    let ca = c.list()?;
    let mut short: std::collections::HashMap<u128, u32, foldhash::fast::FixedState> =
        Default::default();
    let chunks = ca.downcast_iter().map(|arr| {
        let values = arr
            .values()
            .as_any()
            .downcast_ref::<Utf8ViewArray>()
            .ok_or_else(|| polars_err!(ComputeError: "technique_ids is not a list of strings"))?;
        let mut ids = Vec::with_capacity(values.len());
        for (j, view) in values.views().iter().enumerate() {
            let id = match (values.is_valid(j), crate::aggregate::build::short_key(view)) {
                (false, _) => 0,
                (true, Some(key)) => match short.get(&key) {
                    Some(&id) => id,
                    None => {
                        let id = mapping.insert_cat(values.value(j))?;
                        short.insert(key, id);
                        id
                    }
                },
                (true, None) => mapping.insert_cat(values.value(j))?,
            };
            ids.push(id);
        }
        let ids = PrimitiveArray::new(
            ArrowDataType::UInt32,
            ids.into(),
            values.validity().cloned(),
        );
        Ok(ListArray::<i64>::new(
            ListArray::<i64>::default_datatype(ArrowDataType::UInt32),
            arr.offsets().clone(),
            ids.boxed(),
            arr.validity().cloned(),
        ))
    });
    let chunks = chunks.collect::<PolarsResult<Vec<_>>>()?;
    if chunks.is_empty() {
        // No chunk to take the type from.
        return Ok(Column::new_empty(c.name().clone(), &technique_list_type()));
    }
    Ok(ListChunked::from_chunk_iter(c.name().clone(), chunks).into_column())
}

/// Canonical type per kind: strings stay strings, timestamps become i64 microseconds (null when
/// outside the plausible range, flagged by a companion boolean), floats become f64.
fn normalise(e: Expr, kind: Kind, dt: &DataType) -> Expr {
    match kind {
        Kind::Str => e.cast(DataType::String),
        Kind::Float => e.cast(DataType::Float64),
        Kind::Bool => e,
        Kind::StrList => e.cast(DataType::List(Box::new(DataType::String))),
        Kind::Timestamp => {
            let DataType::Datetime(tu, _) = dt else {
                return e;
            };
            // The physical value of a zoned timestamp is already UTC.
            let raw = e.cast(DataType::Int64);
            let (lo, hi) = match tu {
                TimeUnit::Nanoseconds => (MIN_TS_US * 1000, MAX_TS_US * 1000),
                TimeUnit::Microseconds => (MIN_TS_US, MAX_TS_US),
                TimeUnit::Milliseconds => (MIN_TS_US / 1000, MAX_TS_US / 1000),
            };
            let in_range = raw.clone().gt_eq(lit(lo)).and(raw.clone().lt(lit(hi)));
            let us = match tu {
                TimeUnit::Nanoseconds => raw.clone().floor_div(lit(1000i64)),
                TimeUnit::Microseconds => raw.clone(),
                TimeUnit::Milliseconds => raw.clone() * lit(1000i64),
            };
            // Out-of-range timestamps become the sentinel i64::MIN so that validation can tell
            // them from nulls; they are rejected before any arithmetic uses them.
            when(raw.clone().is_null())
                .then(lit(NULL).cast(DataType::Int64))
                .when(in_range)
                .then(us)
                .otherwise(lit(i64::MIN))
        }
    }
}

fn hive_value(v: &str, kind: Kind) -> Option<Expr> {
    match kind {
        Kind::Str => Some(lit(v.to_string())),
        Kind::Bool => match v {
            "true" => Some(lit(true)),
            "false" => Some(lit(false)),
            _ => None,
        },
        _ => None,
    }
}

fn missing_optional(spec: &Spec) -> Expr {
    match spec.kind {
        Kind::Bool => lit(false),
        Kind::StrList => lit(NULL).cast(DataType::List(Box::new(DataType::String))),
        _ => lit(NULL).cast(DataType::String),
    }
}

/// [`scan_file`] of both tables' files (file indices in that order), the files split between
/// the cores (each reads its file's footer), then their fingerprints started
/// ([`Fingerprints`]). The first failing file in that order is the error.
fn scan_tables(
    decisions: &[ResolvedFile],
    verdicts: &[ResolvedFile],
    columns: &ColumnMap,
) -> Result<Scanned, IngestError> {
    let all: Vec<(Table, &ResolvedFile)> = decisions
        .iter()
        .map(|f| (Table::Decisions, f))
        .chain(verdicts.iter().map(|f| (Table::Verdicts, f)))
        .collect();
    let scanned = crate::threads::map_range(all.len(), usize::MAX, |i| {
        let (table, (path, hive)) = all[i];
        scan_file(table, path, hive, columns)
    });
    let mut out = Scanned {
        fingerprints: Fingerprints::default(),
        files: Vec::with_capacity(all.len()),
        decisions: Vec::with_capacity(decisions.len()),
        verdicts: Vec::with_capacity(verdicts.len()),
    };
    for ((table, _), result) in all.iter().zip(scanned) {
        let (lf, file) = result?;
        match table {
            Table::Decisions => out.decisions.push(lf),
            _ => out.verdicts.push(lf),
        }
        out.files.push(file);
    }
    // Hashed once every file has passed its checks.
    out.fingerprints = Fingerprints::start(all.iter().map(|(_, (path, _))| path.clone()).collect());
    Ok(out)
}

/// The files of one table as one query, in file order.
pub(crate) fn union(table: &str, frames: Vec<LazyFrame>) -> Result<LazyFrame, IngestError> {
    concat(
        frames,
        UnionArgs {
            parallel: true,
            rechunk: false,
            // The files' rows in file order: a table read in one pass has no row positions of
            // its own ([`Positions::Files`]).
            maintain_order: true,
            ..Default::default()
        },
    )
    .map_err(pe(format!("combining {table} files")))
}

/// Both tables' files, schema-checked, not yet read: one query per file with the canonical
/// columns. The files' fingerprints are being computed meanwhile ([`Fingerprints::fill`] gives
/// them to `files`).
pub struct Scanned {
    pub files: Vec<InputFile>,
    pub fingerprints: Fingerprints,
    pub decisions: Vec<LazyFrame>,
    pub verdicts: Vec<LazyFrame>,
}

impl Scanned {
    /// Estimated working memory of validating and aggregating all rows at once, bytes.
    pub fn working_set(&self) -> u64 {
        let (mut dec, mut ver) = (0u64, 0u64);
        for f in &self.files {
            match f.table {
                Table::Decisions => dec = dec.saturating_add(f.rows),
                Table::Verdicts => ver = ver.saturating_add(f.rows),
                Table::Stats => {}
            }
        }
        // Row counts come from the files' footers: saturate rather than trust them not to
        // overflow.
        dec.saturating_mul(BYTES_PER_DECISION)
            .saturating_add(ver.saturating_mul(BYTES_PER_VERDICT))
    }

    /// The paths of one table's files, in the order of its queries.
    pub fn paths(&self, table: Table) -> Vec<String> {
        self.files
            .iter()
            .filter(|f| f.table == table)
            .map(|f| f.path.clone())
            .collect()
    }

    /// The file paths, indexed like `__file`.
    pub fn file_names(&self) -> Vec<String> {
        self.files.iter().map(|f| f.path.clone()).collect()
    }

    /// Each of one table's files, in the order of its queries: its index (as `__file`) and
    /// its row count.
    pub fn file_rows(&self, table: Table) -> Vec<(u32, u64)> {
        self.files
            .iter()
            .enumerate()
            .filter(|(_, f)| f.table == table)
            .map(|(i, f)| (i as u32, f.rows))
            .collect()
    }

    /// Where the rows of the decisions' and the verdicts' queries, each table's read one after
    /// another, come from.
    pub fn positions(&self) -> [Positions; 2] {
        [Table::Decisions, Table::Verdicts].map(|table| Positions::Files(self.file_rows(table)))
    }
}

/// Where each row of a table came from: the rejects file names the file and row of each
/// rejected row.
#[derive(Clone, Debug, PartialEq)]
pub enum Positions {
    /// The table is its files' rows, file after file: each file's index (into the file names,
    /// as `__file`) and its row count from the footer. Nothing per row is kept: at 10^7
    /// decisions with their verdicts a file index and row per row held 150 MiB at the ingest's
    /// peak.
    Files(Vec<(u32, u64)>),
    /// The table has `__file` and `__row` columns (rows routed to a partition), in input order
    /// or sorted into it.
    Columns,
}

/// Resolves, fingerprints and schema-checks the input files of both tables.
pub fn scan(opts: &IngestOptions) -> Result<Scanned, IngestError> {
    let dec_files = resolve("decisions", opts.decisions)?;
    let ver_files = resolve("verdicts", opts.verdicts)?;
    scan_tables(&dec_files, &ver_files, opts.columns)
}

/// The reasons a row is rejected for: first the row rules, in priority order (the first that
/// applies is a row's reason), then the reasons found across rows after them. Code `k` in
/// [`Reasons`] and in the [`REASON`] column is `list[k - 1]`.
const DECISION_REASONS: [&str; 12] = [
    "null_decision_id",
    "null_decided_at",
    "null_action_class",
    "null_confidence",
    "null_model_version",
    "null_asset_criticality",
    "null_privileged",
    "string_too_long",
    "timestamp_out_of_range",
    "confidence_out_of_range",
    "unknown_asset_criticality",
    // Found after the row rules, in input order.
    "duplicate_decision_id",
];

const VERDICT_REASONS: [&str; 10] = [
    "null_decision_id",
    "null_reviewed_at",
    "null_analyst_id",
    "null_verdict",
    "string_too_long",
    "timestamp_out_of_range",
    "unknown_verdict",
    // Found by the join to the decisions.
    "review_before_decision",
    "decision_rejected",
    "unknown_decision",
];

/// The code of `reason` in `list` (one plus its index; 0 is no reason).
fn reason_code(list: &[&str], reason: &str) -> u32 {
    list.iter()
        .position(|r| *r == reason)
        .map_or(0, |i| i as u32 + 1)
}

/// Each row's rejection reason as a code into a reasons list (see [`Reasons`]), kept beside
/// the rows as a 32-bit code per row rather than as a string column.
const REASON: &str = "__reason";

/// Each row's first failing rule, as an index into a reasons list plus one (0: none). Rules are
/// applied from the last to the first, each overwriting, so the first that applies wins.
struct Reasons {
    list: &'static [&'static str],
    code: Vec<u32>,
}

impl Reasons {
    fn new(list: &'static [&'static str], rows: usize) -> Reasons {
        Reasons {
            list,
            code: crate::memory::zeros(rows),
        }
    }

    /// Marks the rows where `failed` is true with `reason`.
    fn rule(&mut self, reason: &str, failed: impl Iterator<Item = bool>) {
        let k = reason_code(self.list, reason);
        debug_assert!(k != 0, "reason {reason} is not in the list");
        for (c, f) in self.code.iter_mut().zip(failed) {
            if f {
                *c = k;
            }
        }
    }

    /// Marks the null rows of each column with its reason (a column without nulls marks none).
    fn nulls(&mut self, df: &DataFrame, columns: &[(&str, &str)]) -> PolarsResult<()> {
        for (column, reason) in columns.iter().rev() {
            let column = df.column(column)?;
            if column.null_count() == 0 {
                continue;
            }
            let nulls = column.is_null();
            self.rule(reason, nulls.iter().map(|b| b.unwrap_or(false)));
        }
        Ok(())
    }

    /// The codes as the [`REASON`] column.
    fn column(self) -> Column {
        Column::new(REASON.into(), self.code)
    }
}

/// Per row: the value is longer than [`MAX_STRING_BYTES`] in any of `columns` (nulls are not).
fn too_long(df: &DataFrame, columns: &[&str]) -> PolarsResult<Vec<bool>> {
    let mut long = crate::memory::zeros(df.height());
    for name in columns {
        let column = df.column(name)?;
        if let DataType::Categorical(..) = column.dtype() {
            // Each category's length once, then the rows' ids.
            let ca = column.cat32()?;
            let mapping = ca.get_mapping();
            let too: Vec<bool> = (0..mapping.num_cats_upper_bound() as u32)
                .map(|id| mapping.cat_to_str(id).map_or(0, str::len) > MAX_STRING_BYTES as usize)
                .collect();
            let ids = ca.physical().iter();
            for (l, id) in long.iter_mut().zip(ids) {
                *l |= id.is_some_and(|id| too.get(id as usize).copied().unwrap_or(false));
            }
            continue;
        }
        let ca = column.str()?;
        let mut i = 0;
        for arr in ca.downcast_iter() {
            for (j, view) in arr.views().iter().enumerate() {
                long[i] |= view.length > MAX_STRING_BYTES && arr.is_valid(j);
                i += 1;
            }
        }
    }
    Ok(long)
}

/// A spelling column normalised (whitespace trimmed, lower case), with, per row, whether the
/// normalised value is outside `allowed` (nulls are not). The column is rebuilt only when some
/// value changes. Each distinct spelling is normalised once, through the column's string codes.
fn normalised(
    df: &DataFrame,
    name: &str,
    allowed: &[&str],
) -> PolarsResult<(Option<Column>, Vec<bool>)> {
    let original = df.column(name)?;
    let codes = crate::aggregate::build::Codes::of_column(original)?;
    // Per code (0 is null): the normalised spelling where it differs from the value.
    let norm: Vec<Option<String>> = std::iter::once(None)
        .chain(codes.values().map(|s| {
            let n = s.trim().to_lowercase();
            (n != s).then_some(n)
        }))
        .collect();
    let spelled: Vec<Option<&str>> = std::iter::once(None)
        .chain(
            codes
                .values()
                .zip(&norm[1..])
                .map(|(s, n)| Some(n.as_deref().unwrap_or(s))),
        )
        .collect();
    let bad: Vec<bool> = spelled
        .iter()
        .map(|s| s.is_some_and(|s| !allowed.contains(&s)))
        .collect();
    let unknown = codes.codes.iter().map(|&c| bad[c as usize]).collect();
    if norm.iter().all(Option::is_none) {
        return Ok((None, unknown));
    }
    // Of the type it was read as: categories stay categories, each spelling looked up once.
    let column = match original.dtype() {
        dtype @ DataType::Categorical(_, mapping) => {
            let ids = spelled
                .iter()
                .map(|s| s.map(|s| mapping.insert_cat(s)).transpose())
                .collect::<PolarsResult<Vec<Option<u32>>>>()?;
            let ids: UInt32Chunked = codes.codes.iter().map(|&c| ids[c as usize]).collect();
            categorical_column(ids.with_name(name.into()), dtype)?
        }
        _ => Column::new(
            name.into(),
            codes
                .codes
                .iter()
                .map(|&c| spelled[c as usize])
                .collect::<Vec<Option<&str>>>(),
        ),
    };
    Ok((Some(column), unknown))
}

/// Per row of a numeric column: whether the value is present and `failed` holds for it.
fn failing<'a, T: PolarsNumericType>(
    ca: &'a ChunkedArray<T>,
    failed: impl Fn(T::Native) -> bool + Copy + 'a,
) -> impl Iterator<Item = bool> + 'a {
    ca.downcast_iter().flat_map(move |arr| {
        arr.values()
            .iter()
            .enumerate()
            .map(move |(j, &v)| failed(v) && arr.is_valid(j))
    })
}

/// The decisions as read, with [`REASON`] (the first failing row rule, 0 if none), the
/// criticality normalised and -0.0 confidences made 0.0 (sums and value counts stay
/// sign-clean).
fn check_decisions(mut df: DataFrame) -> PolarsResult<DataFrame> {
    let mut reasons = Reasons::new(&DECISION_REASONS, df.height());
    let (crit, unknown_crit) = normalised(
        &df,
        "asset_criticality",
        &["low", "medium", "high", "critical"],
    )?;
    reasons.rule("unknown_asset_criticality", unknown_crit.into_iter());
    let confidence = df.column("confidence")?.f64()?.clone();
    reasons.rule(
        "confidence_out_of_range",
        failing(&confidence, |c| c.is_nan() || !(0.0..=1.0).contains(&c)),
    );
    let decided = df.column("decided_at")?.i64()?;
    reasons.rule(
        "timestamp_out_of_range",
        failing(decided, |t| t == i64::MIN),
    );
    let long = too_long(
        &df,
        &[
            "decision_id",
            "action_class",
            "model_version",
            "target_entity",
        ],
    )?;
    reasons.rule("string_too_long", long.into_iter());
    reasons.nulls(
        &df,
        &[
            ("decision_id", "null_decision_id"),
            ("decided_at", "null_decided_at"),
            ("action_class", "null_action_class"),
            ("confidence", "null_confidence"),
            ("model_version", "null_model_version"),
            ("asset_criticality", "null_asset_criticality"),
            ("privileged", "null_privileged"),
        ],
    )?;
    df.with_column(reasons.column())?;
    if let Some(crit) = crit {
        df.with_column(crit)?;
    }
    if failing(&confidence, |c| c == 0.0 && c.is_sign_negative()).any(|negative| negative) {
        let clean: Float64Chunked = confidence
            .iter()
            .map(|c| c.map(|c| if c == 0.0 { 0.0 } else { c }))
            .collect();
        df.with_column(clean.with_name("confidence".into()).into_column())?;
    }
    Ok(df)
}

/// The verdicts as read, with [`REASON`] (the first failing row rule, 0 if none) and the
/// verdict normalised.
fn check_verdicts(mut df: DataFrame) -> PolarsResult<DataFrame> {
    let mut reasons = Reasons::new(&VERDICT_REASONS, df.height());
    let (verdict, unknown) = normalised(
        &df,
        "verdict",
        &["approve", "override", "reject", "timeout"],
    )?;
    reasons.rule("unknown_verdict", unknown.into_iter());
    let reviewed = df.column("reviewed_at")?.i64()?;
    reasons.rule(
        "timestamp_out_of_range",
        failing(reviewed, |t| t == i64::MIN),
    );
    reasons.rule(
        "string_too_long",
        too_long(&df, &["decision_id", "analyst_id"])?.into_iter(),
    );
    reasons.nulls(
        &df,
        &[
            ("decision_id", "null_decision_id"),
            ("reviewed_at", "null_reviewed_at"),
            ("analyst_id", "null_analyst_id"),
            ("verdict", "null_verdict"),
        ],
    )?;
    df.with_column(reasons.column())?;
    if let Some(verdict) = verdict {
        df.with_column(verdict)?;
    }
    Ok(df)
}

/// Longest accepted identifier or name, in bytes (decision ids, classes, versions, targets,
/// analysts). Longer values are quarantined as `string_too_long`: they are not identifiers, and
/// they would bloat every table and report that repeats them.
pub const MAX_STRING_BYTES: u32 = 1024;

/// Most distinct action classes a run accepts.
pub const MAX_CLASSES: usize = 100_000;

/// Working memory per input row, bytes. At 10^7 decisions (8.5·10^6 verdicts) one pass peaks
/// at 2.2–2.5 GiB on generated inputs and 2.5–2.7 GiB on inputs with 36-byte ids (twelfth
/// session, with the short strings as categories), 240–290 bytes per decision with its
/// verdicts; the estimate, 330 + 0.85 · 110 ≈ 424 bytes per decision (3.9 GiB at 10^7), errs on
/// the safe side by half or more. (It was 450 and 150 while
/// the peak was 5.4 GiB.) Inputs whose estimate exceeds the memory budget are split into
/// partitions by decision id and processed one partition at a time (see `crate::partition`):
/// fewer, larger partitions are faster (BENCHMARKS.md, "10^8 decisions, eighth session").
const BYTES_PER_DECISION: u64 = 330;
const BYTES_PER_VERDICT: u64 = 110;

/// A `key: value kB` field of a `/proc` file (Linux), KiB.
fn proc_kib(file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| {
        l.strip_prefix(key)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Available memory from `/proc/meminfo` (Linux), bytes.
pub(crate) fn available_memory() -> Option<u64> {
    proc_kib("/proc/meminfo", "MemAvailable").map(|kib| kib * 1024)
}

/// The instant profiling times count from: the first call (by `Progress` at the start of a run).
pub(crate) fn timing_start() -> std::time::Instant {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *START.get_or_init(std::time::Instant::now)
}

/// Resident memory of this process from `/proc/self/status` (Linux), MiB.
pub(crate) fn resident_mib() -> Option<u64> {
    proc_kib("/proc/self/status", "VmRSS").map(|kib| kib / 1024)
}

/// Field `k` of `/proc/self/stat` (Linux), counted from the process state (field 3) on.
fn stat_field(k: usize) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = &text[text.rfind(')')? + 1..];
    rest.split_whitespace().nth(k)?.parse().ok()
}

/// For a timing line: the resident memory in MiB, the page faults so far in thousands (each
/// zeroes a fresh page: 4 KiB, or 2 MiB for a transparent huge page), and the user and system
/// CPU time so far in clock ticks (`-` where the system does not tell).
pub(crate) fn resident_label() -> String {
    let shown = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |m| m.to_string());
    format!(
        "{:>6} MiB {:>5}k faults, cpu {:>4} user {:>4} sys",
        shown(resident_mib()),
        shown(stat_field(7).map(|f| f / 1000)),
        shown(stat_field(11)),
        shown(stat_field(12))
    )
}

/// With `READINESS_TIMINGS` set, prints the seconds since the run started, the resident memory
/// and `what` (the steps inside ingest, for profiling; never in any output file).
pub fn mark(what: &str) {
    if std::env::var_os("READINESS_TIMINGS").is_some() {
        eprintln!(
            "readiness:   ingest [{:7.2}s {}] {what}",
            timing_start().elapsed().as_secs_f64(),
            resident_label()
        );
    }
}

/// A string column of a table, read by row ([`StrColumn::rows`]) whether it holds strings or
/// categories (the value-count tables hold their classes, analysts and verdicts as categories;
/// the same tables read from files hold strings).
pub(crate) enum StrColumn {
    Strings(StringChunked),
    /// The ids in one chunk, and their categories.
    Categories(UInt32Chunked, Arc<CategoricalMapping>),
}

impl StrColumn {
    pub(crate) fn of(df: &DataFrame, name: &str) -> Result<StrColumn, IngestError> {
        let column = df.column(name).map_err(pe(name))?;
        if let DataType::Categorical(..) = column.dtype() {
            let ca = column.cat32().map_err(pe(name))?;
            let ids = ca.physical().rechunk().into_owned();
            return Ok(StrColumn::Categories(ids, ca.get_mapping().clone()));
        }
        Ok(StrColumn::Strings(string_column(df, name)?))
    }

    pub(crate) fn rows(&self) -> StrRows<'_> {
        match self {
            StrColumn::Strings(ca) => StrRows::Views(Ids::of(ca)),
            StrColumn::Categories(ids, mapping) => {
                // One chunk (rechunked in `of`); none when the table is empty.
                let arr = ids.downcast_iter().next();
                StrRows::Categories(
                    arr.map_or(&[], |a| a.values().as_slice()),
                    arr.and_then(|a| a.validity()),
                    mapping,
                )
            }
        }
    }
}

/// The rows of a [`StrColumn`].
pub(crate) enum StrRows<'a> {
    Views(Ids<'a>),
    /// Ids, their validity (none: all valid) and categories.
    Categories(
        &'a [u32],
        Option<&'a polars_arrow::bitmap::Bitmap>,
        &'a CategoricalMapping,
    ),
}

impl<'a> StrRows<'a> {
    /// Whether row `i` is not null.
    pub(crate) fn is_valid(&self, i: usize) -> bool {
        match self {
            StrRows::Views(ids) => ids.is_valid(i),
            StrRows::Categories(_, validity, _) => validity.is_none_or(|v| v.get_bit(i)),
        }
    }

    /// The value of row `i`, `None` where it is null.
    pub(crate) fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            StrRows::Views(ids) => ids.get(i),
            StrRows::Categories(ids, _, mapping) => self
                .is_valid(i)
                .then(|| mapping.cat_to_str(ids[i]))
                .flatten(),
        }
    }

    /// Whether rows `i` and `j` hold the same string (nulls read as the empty string). Equal
    /// ids of one mapping are equal strings.
    pub(crate) fn same(&self, i: usize, j: usize) -> bool {
        match self {
            StrRows::Views(ids) => ids.same(i, ids, j),
            StrRows::Categories(ids, _, _) => match (self.is_valid(i), self.is_valid(j)) {
                (true, true) => ids[i] == ids[j],
                (false, false) => true,
                _ => self.get(i).unwrap_or_default() == self.get(j).unwrap_or_default(),
            },
        }
    }
}

/// A string column's chunks addressed by row, without copying them into one chunk (the id
/// index's ids, the statistics' targets).
pub(crate) struct Ids<'a> {
    chunks: Vec<&'a Utf8ViewArray>,
    /// The row of each chunk's first value.
    starts: Vec<usize>,
    /// Per block of 2^[`Ids::BLOCK_BITS`] rows: the chunk holding the block's first row, where a
    /// row's search for its chunk starts (a few steps at most: chunks are rarely shorter than a
    /// block).
    block_chunk: Vec<u32>,
    len: usize,
}

impl<'a> Ids<'a> {
    pub(crate) fn of(ca: &'a StringChunked) -> Ids<'a> {
        Self::of_chunks(ca.downcast_iter().collect())
    }

    const BLOCK_BITS: u32 = 14;

    fn of_chunks(chunks: Vec<&'a Utf8ViewArray>) -> Ids<'a> {
        let mut starts = Vec::with_capacity(chunks.len());
        let mut len = 0;
        for c in &chunks {
            starts.push(len);
            len += c.len();
        }
        let mut ids = Ids {
            chunks,
            starts,
            block_chunk: Vec::new(),
            len,
        };
        ids.block_chunk = (0..len.div_ceil(1 << Self::BLOCK_BITS))
            .map(|b| ids.chunk_of(b << Self::BLOCK_BITS, 0) as u32)
            .collect();
        ids
    }

    /// The chunk of row `i < len`, searching forward from chunk `from` (at or before it): the
    /// last chunk starting at or before `i` (an empty chunk shares the next one's start).
    fn chunk_of(&self, i: usize, from: usize) -> usize {
        let mut c = from;
        while c + 1 < self.starts.len() && self.starts[c + 1] <= i {
            c += 1;
        }
        c
    }

    fn len(&self) -> usize {
        self.len
    }

    /// Whether row `i < len` is not null.
    pub(crate) fn is_valid(&self, i: usize) -> bool {
        let (arr, j) = self.locate(i);
        arr.is_valid(j)
    }

    /// The value of row `i < len`, `None` where it is null.
    pub(crate) fn get(&self, i: usize) -> Option<&'a str> {
        let (arr, j) = self.locate(i);
        arr.is_valid(j).then(|| arr.value(j))
    }

    /// The array holding row `i < len` and the row's index in it.
    fn locate(&self, i: usize) -> (&'a Utf8ViewArray, usize) {
        if let [only] = self.chunks[..] {
            return (only, i);
        }
        let c = self.chunk_of(i, self.block_chunk[i >> Self::BLOCK_BITS] as usize);
        (self.chunks[c], i - self.starts[c])
    }

    /// Whether row `i` here and row `j` of `other` hold the same string (nulls read as the
    /// empty string). Compared through their views: an equal view in the same array is the
    /// same string (the same inline bytes, or the same bytes of the same buffer); otherwise
    /// lengths, then the bytes held in the view (a string of up to 12 bytes), or a long
    /// string's 4-byte prefix, and only then its bytes in the buffer.
    pub(crate) fn same(&self, i: usize, other: &Ids, j: usize) -> bool {
        let ((a_arr, ai), (b_arr, bj)) = (self.locate(i), other.locate(j));
        let (a, b) = (a_arr.views()[ai], b_arr.views()[bj]);
        if std::ptr::eq(a_arr, b_arr) && a.as_u128() == b.as_u128() {
            return true;
        }
        if a.length != b.length {
            return false;
        }
        if let (Some(x), Some(y)) = (
            crate::aggregate::build::short_key(&a),
            crate::aggregate::build::short_key(&b),
        ) {
            return x == y;
        }
        a.prefix == b.prefix && a_arr.value(ai) == b_arr.value(bj)
    }

    /// Asks the processor to start loading row `i`'s view (`i < len`), so that a later read of
    /// a row far from the last one does not wait for memory.
    fn prefetch_view(&self, i: usize) {
        let (arr, j) = self.locate(i);
        prefetch(arr.views().as_ptr().wrapping_add(j));
    }

    /// Asks the processor to start loading the bytes of row `i`'s string (`i < len`) where they
    /// are not held in its view (a string over 12 bytes): the cache lines of its first and
    /// last bytes (a 36-byte id crosses a line more often than not). Reads the view: best after
    /// [`Ids::prefetch_view`] of the row.
    fn prefetch_bytes(&self, i: usize) {
        let (arr, j) = self.locate(i);
        let view = arr.views()[j];
        if view.length > View::MAX_INLINE_SIZE {
            if let Some(buffer) = arr.data_buffers().get(view.buffer_idx as usize) {
                let first = buffer.as_ptr().wrapping_add(view.offset as usize);
                prefetch(first);
                prefetch(first.wrapping_add(view.length as usize - 1));
            }
        }
    }

    /// The rows from `start` on, in order.
    fn iter_from(&self, start: usize) -> impl Iterator<Item = Option<&'a str>> + '_ {
        let first = self.starts.partition_point(|&s| s <= start).max(1) - 1;
        self.chunks
            .iter()
            .zip(&self.starts)
            .skip(first)
            .flat_map(move |(a, &s)| {
                (start.saturating_sub(s).min(a.len())..a.len())
                    .map(move |j| a.is_valid(j).then(|| a.value(j)))
            })
    }
}

/// A hint to the processor to load the cache line at `p`. A prefetch never faults, whatever
/// the address; elsewhere than on x86-64 it does nothing.
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing the program sees and cannot fault.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Decision id → row in the decisions table, as a hash join does it: the ids are grouped by
/// the top bits of their hash into buckets of about a thousand, and each bucket gets its own
/// small table, built and probed while it sits in the processor's cache. A table slot holds
/// the low half of the id's hash and its row; the id itself is compared, through its row in
/// the id column, only when the halves agree. Worker threads take contiguous ranges of buckets.
struct IdIndex<'a> {
    ids: Ids<'a>,
    /// The id hash ([`IdIndex::hash`]; tests give a degenerate one).
    hash: fn(&str) -> u64,
    /// An id's bucket is the top `bits` bits of its hash.
    bits: u32,
    buckets: Vec<hashbrown::HashTable<(u32, IdxSize)>>,
    /// Per decision row: a later valid row of an id seen before.
    duplicate: Vec<bool>,
    /// Per decision row: its row in the valid decisions (valid, non-duplicate rows only);
    /// `None` where every row is kept, each row then being its own (the lookup reads no
    /// position from memory: a cache miss less per verdict row).
    position: Option<Vec<IdxSize>>,
}

/// The rows flagged for a join, grouped by bucket: `rows[starts[b]..starts[b + 1]]` are bucket
/// `b`'s rows in input order, each with the low half of its id's hash.
struct Grouped {
    starts: Vec<usize>,
    rows: Vec<(u32, IdxSize)>,
}

impl<'a> IdIndex<'a> {
    /// At least this many rows per bucket (and fewer than twice as many; the bucket count is a
    /// power of two): a bucket's table (8 bytes a slot) then fits in the first- or
    /// second-level cache.
    const PER_BUCKET: usize = 1024;

    /// How many rows ahead of its comparison a candidate's view is asked for
    /// ([`Ids::prefetch_view`]), and its bytes ([`Ids::prefetch_bytes`]). On the never-seen
    /// data (verdicts in random order, 40-byte ids) the lookup took 0.48–0.72 s with 16 and 8,
    /// 0.58–0.76 s with 32 and 16, 0.86–1.09 s without (BENCHMARKS.md, seventeenth session).
    const VIEWS_AHEAD: usize = 16;
    const BYTES_AHEAD: usize = 8;

    fn hash(id: &str) -> u64 {
        use std::hash::BuildHasher;
        foldhash::fast::FixedState::with_seed(0x9e37_79b9_7f4a_7c15).hash_one(id)
    }

    /// The table hash of a slot: its stored hash half, spread over 64 bits (odd multiplier, so
    /// the low bits the table indexes by stay uniform and the top bits it tags by are mixed).
    fn spread(low: u32) -> u64 {
        u64::from(low).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    fn bucket_of(hash: u64, bits: u32) -> usize {
        hash.checked_shr(64 - bits).unwrap_or(0) as usize
    }

    /// Groups the rows of `ids` where `flags` holds by bucket, in input order within a bucket
    /// (a stable counting sort). Each worker hashes a contiguous range of rows and counts them
    /// per bucket; then each fills the grouped rows of a contiguous range of buckets, scanning
    /// the hashes in row order (every filler reads all the hashes, sequentially, and writes
    /// only its own buckets' rows).
    fn group(ids: &Ids, flags: &[bool], bits: u32, hash: fn(&str) -> u64) -> Grouped {
        Self::group_in(ids, flags, bits, hash, crate::threads::workers())
    }

    /// [`IdIndex::group`] with the buckets filled in `regions` contiguous ranges.
    fn group_in(
        ids: &Ids,
        flags: &[bool],
        bits: u32,
        hash: fn(&str) -> u64,
        regions: usize,
    ) -> Grouped {
        assert_eq!(flags.len(), ids.len(), "one flag per id");
        let buckets = 1usize << bits;
        let mut hashes = vec![0u64; ids.len()];
        let counts = crate::threads::map_parts_mut(&mut hashes, |offset, part| {
            let mut count = vec![0usize; buckets];
            let rows = part
                .iter_mut()
                .zip(&flags[offset..])
                .zip(ids.iter_from(offset));
            for ((h, _), id) in rows.filter(|((_, &flag), _)| flag) {
                if let Some(id) = id {
                    *h = hash(id);
                }
                count[Self::bucket_of(*h, bits)] += 1;
            }
            count
        });
        let mut starts = vec![0usize; buckets + 1];
        for b in 0..buckets {
            starts[b + 1] = starts[b] + counts.iter().map(|c| c[b]).sum::<usize>();
        }
        drop(counts);
        let mut rows = vec![(0u32, 0 as IdxSize); starts[buckets]];
        let per = buckets.div_ceil(regions.max(1));
        let mut regions = Vec::new();
        let mut rest = rows.as_mut_slice();
        for first in (0..buckets).step_by(per) {
            let last = (first + per).min(buckets);
            let (region, tail) = rest.split_at_mut(starts[last] - starts[first]);
            regions.push((first..last, region));
            rest = tail;
        }
        crate::threads::map_parts_mut(&mut regions, |_, part| {
            for (range, region) in part.iter_mut() {
                let mut next: Vec<usize> = starts[range.clone()]
                    .iter()
                    .map(|s| s - starts[range.start])
                    .collect();
                let flagged = hashes.iter().zip(flags).enumerate();
                for (i, (&h, _)) in flagged.filter(|(_, (_, &flag))| flag) {
                    let b = Self::bucket_of(h, bits);
                    if range.contains(&b) {
                        let slot = &mut next[b - range.start];
                        region[*slot] = (h as u32, i as IdxSize);
                        *slot += 1;
                    }
                }
            }
        });
        Grouped { starts, rows }
    }

    /// Runs `work` on every bucket, the buckets split into one contiguous range per worker
    /// thread, and returns the workers' results in bucket order.
    fn per_bucket<T: Send>(
        grouped: &Grouped,
        work: impl Fn(usize, &[(u32, IdxSize)]) -> T + Sync,
    ) -> Vec<T> {
        crate::threads::map_range(grouped.starts.len() - 1, usize::MAX, |b| {
            work(b, &grouped.rows[grouped.starts[b]..grouped.starts[b + 1]])
        })
    }

    /// Indexes the ids of the rows where `valid` holds (a reason-free row with an id), in input
    /// order: the first row of an id is kept, later ones are duplicates.
    fn build(ids: Ids<'a>, valid: &[bool]) -> IdIndex<'a> {
        Self::build_with(ids, valid, Self::hash)
    }

    /// [`IdIndex::build`] with another id hash.
    fn build_with(ids: Ids<'a>, valid: &[bool], hash: fn(&str) -> u64) -> IdIndex<'a> {
        let rows = ids.len();
        let bits = (rows / Self::PER_BUCKET).max(1).ilog2().min(20);
        let grouped = Self::group(&ids, valid, bits, hash);
        let ids_ref = &ids;
        let built = Self::per_bucket(&grouped, |_, part| {
            let mut table = hashbrown::HashTable::with_capacity(part.len());
            let mut dups = Vec::new();
            for &(low, i) in part {
                // The strings are read only for a slot whose hash half agrees.
                let same = |&(l, j): &(u32, IdxSize)| {
                    l == low && ids_ref.same(j as usize, ids_ref, i as usize)
                };
                match table.entry(Self::spread(low), same, |&(l, _)| Self::spread(l)) {
                    hashbrown::hash_table::Entry::Occupied(_) => dups.push(i),
                    hashbrown::hash_table::Entry::Vacant(v) => {
                        v.insert((low, i));
                    }
                }
            }
            (table, dups)
        });
        drop(grouped);
        let mut duplicate = crate::memory::zeros(rows);
        let mut buckets = Vec::with_capacity(built.len());
        for (table, dups) in built {
            for i in dups {
                duplicate[i as usize] = true;
            }
            buckets.push(table);
        }
        let kept_all = valid.iter().all(|&v| v) && !duplicate.contains(&true);
        let position = (!kept_all).then(|| {
            let mut position = vec![IdxSize::MAX; rows];
            let mut next: IdxSize = 0;
            for (i, slot) in position.iter_mut().enumerate() {
                if valid[i] && !duplicate[i] {
                    *slot = next;
                    next += 1;
                }
            }
            position
        });
        IdIndex {
            ids,
            hash,
            bits,
            buckets,
            duplicate,
            position,
        }
    }

    /// The row of decision row `i` in the valid decisions (`IdxSize::MAX` for a row not kept).
    fn position(&self, i: usize) -> IdxSize {
        match &self.position {
            Some(position) => position[i],
            None => i as IdxSize,
        }
    }

    /// Per row of `ids` where `probe` holds: the valid decision (its row in the valid
    /// decisions) of that id; `IdxSize::MAX` where there is none or the row is not probed.
    ///
    /// Two passes. The probe, bucket by bucket, compares hash halves only and stores the
    /// candidate decision row (a slot whose half agrees) in place. Then each row with a
    /// candidate has its id compared with the candidate's, in row order, where verdicts and their
    /// decisions both advance with time: the decisions' ids are read close to one another
    /// instead of at random. Each candidate's id is asked for a few rows ahead (for rows out of
    /// order, where the ids are loads from anywhere in memory). A candidate whose id differs
    /// (a hash half shared by two ids) is probed again with the ids compared.
    fn lookup(&self, ids: &Ids, probe: &[bool]) -> Vec<IdxSize> {
        let grouped = Self::group(ids, probe, self.bits, self.hash);
        // Each probed row's candidate is stored in place by the worker that holds its bucket
        // (each row is in exactly one bucket, so no two workers store to one slot).
        let out: Vec<AtomicU32> = (0..ids.len())
            .map(|_| AtomicU32::new(IdxSize::MAX))
            .collect();
        Self::per_bucket(&grouped, |b, part| {
            let table = &self.buckets[b];
            for &(low, j) in part {
                if let Some(&(_, i)) = table.find(Self::spread(low), |&(l, _)| l == low) {
                    out[j as usize].store(i, Ordering::Relaxed);
                }
            }
        });
        drop(grouped);
        let mut out: Vec<IdxSize> = out.into_iter().map(AtomicU32::into_inner).collect();
        crate::threads::map_parts_mut(&mut out, |offset, part| {
            for o in 0..part.len() {
                // Where verdicts do not follow their decisions' order, each candidate's view and
                // bytes are loads from anywhere in memory: they are asked for ahead, the view
                // first, its bytes once the view has had time to arrive.
                let ahead = |d: usize| part.get(o + d).filter(|&&i| i != IdxSize::MAX);
                if let Some(&i) = ahead(Self::VIEWS_AHEAD) {
                    self.ids.prefetch_view(i as usize);
                }
                if let Some(&i) = ahead(Self::BYTES_AHEAD) {
                    self.ids.prefetch_bytes(i as usize);
                }
                let (j, slot) = (offset + o, &mut part[o]);
                let i = *slot;
                if i == IdxSize::MAX {
                    continue;
                }
                *slot = if self.ids.same(i as usize, ids, j) {
                    self.position(i as usize)
                } else {
                    self.probe_exactly(ids, j)
                };
            }
        });
        out
    }

    /// The valid decision of row `j` of `ids` (`IdxSize::MAX` where there is none), its id
    /// compared with every slot whose hash half agrees.
    fn probe_exactly(&self, ids: &Ids, j: usize) -> IdxSize {
        let hash = ids.get(j).map_or(0, self.hash);
        let low = hash as u32;
        let same = |&(l, i): &(u32, IdxSize)| l == low && self.ids.same(i as usize, ids, j);
        self.buckets[Self::bucket_of(hash, self.bits)]
            .find(Self::spread(low), same)
            .map_or(IdxSize::MAX, |&(_, i)| self.position(i as usize))
    }
}

/// The rows of one table's query; a failure is [`IngestError::Read`] of that table (so that
/// the caller can name the broken file).
///
/// Read on the in-memory engine, which decodes a union's files in parallel: at 10^7 decisions
/// it reads the ten decision columns in 1.5–2.1 s where the streaming engine took 1.9–3.3 s,
/// and the verdicts in about half the time (BENCHMARKS.md, seventh session).
fn read_table(lf: LazyFrame, table: Table) -> Result<DataFrame, IngestError> {
    let read = lf
        .collect()
        .map_err(|source| IngestError::Read { table, source })?;
    mark(&format!("{} read", table.as_str()));
    Ok(read)
}

/// A string column of `df` (a cheap clone: the arrays are shared).
pub(crate) fn string_column(df: &DataFrame, name: &str) -> Result<StringChunked, IngestError> {
    Ok(df
        .column(name)
        .map_err(pe(name))?
        .str()
        .map_err(pe(name))?
        .clone())
}

/// The [`REASON`] codes of a checked table.
fn reason_codes(df: &DataFrame) -> Result<Vec<u32>, IngestError> {
    Ok(df
        .column(REASON)
        .map_err(pe("reasons"))?
        .u32()
        .map_err(pe("reasons"))?
        .into_no_null_iter()
        .collect())
}

/// The rows of a checked table with a reason (`codes` into `list`), as the rejects file's
/// columns: `table`, `__file`, `__row`, `decision_id`, `reason`.
fn rejects_of(
    table: &str,
    df: &DataFrame,
    positions: &Positions,
    codes: &[u32],
    list: &[&'static str],
) -> Result<DataFrame, IngestError> {
    let rejected: BooleanChunked = codes.iter().map(|&c| c != 0).collect();
    let kept = match positions {
        Positions::Columns => &["__file", "__row", "decision_id"][..],
        Positions::Files(_) => &["decision_id"][..],
    };
    let mut out = df
        .select(kept.iter().copied())
        .map_err(pe(table))?
        .filter(&rejected)
        .map_err(pe(table))?;
    if let Positions::Files(files) = positions {
        let (file, row) = rejected_positions(files, codes);
        out.with_column(Column::new("__file".into(), file))
            .map_err(pe(table))?;
        out.with_column(Column::new("__row".into(), row))
            .map_err(pe(table))?;
    }
    let reasons: Vec<&str> = codes
        .iter()
        .filter(|&&c| c != 0)
        .map(|&c| {
            debug_assert!(
                c as usize <= list.len(),
                "reason code {c} is not in the list"
            );
            list.get(c as usize - 1).copied().unwrap_or("unknown")
        })
        .collect();
    out.with_column(Column::new("reason".into(), reasons))
        .map_err(pe(table))?;
    out.lazy()
        .select([
            lit(table).alias("table"),
            col("__file"),
            col("__row"),
            col("decision_id"),
            col("reason"),
        ])
        .collect()
        .map_err(pe(table))
}

/// The file index and the row in its file of each row with a reason (`codes[i] != 0`), for a
/// table of `files`' rows file after file (`checked_read` checks their counts).
fn rejected_positions(files: &[(u32, u64)], codes: &[u32]) -> (Vec<u32>, Vec<IdxSize>) {
    let (mut file, mut row) = (Vec::new(), Vec::new());
    // The current file: its index and its first and end rows in the table.
    let mut next = files.iter();
    let (mut index, mut first, mut end) = (0u32, 0u64, 0u64);
    for (i, _) in codes.iter().enumerate().filter(|(_, &c)| c != 0) {
        let i = i as u64;
        while i >= end {
            let Some(&(f, rows)) = next.next() else {
                break;
            };
            (index, first, end) = (f, end, end + rows);
        }
        file.push(index);
        row.push((i - first) as IdxSize);
    }
    (file, row)
}

/// The rows of a collected table in input order (file, then row): the duplicate rule and the
/// rejects file depend on it. Sorts only when the engine returned another order.
fn in_input_order(df: DataFrame) -> Result<DataFrame, IngestError> {
    let file = df
        .column("__file")
        .map_err(pe("input order"))?
        .u32()
        .map_err(pe("input order"))?;
    let row = df
        .column("__row")
        .map_err(pe("input order"))?
        .idx()
        .map_err(pe("input order"))?;
    let mut prev: Option<(u32, IdxSize)> = None;
    let mut ordered = true;
    for (f, r) in file.iter().zip(row.iter()) {
        let key = (f.unwrap_or(0), r.unwrap_or(0));
        if prev.is_some_and(|p| p > key) {
            ordered = false;
            break;
        }
        prev = Some(key);
    }
    if ordered {
        return Ok(df);
    }
    df.sort(["__file", "__row"], SortMultipleOptions::default())
        .map_err(pe("input order"))
}

/// Reads, validates and de-duplicates both tables in one pass over all rows.
pub fn ingest(opts: &IngestOptions) -> Result<Ingested, IngestError> {
    mark("start");
    let scanned = scan(opts)?;
    let names = scanned.file_names();
    let positions = scanned.positions();
    let dec_lf = union("decisions", scanned.decisions)?;
    let ver_lf = union("verdicts", scanned.verdicts)?;
    let mut ingested = validate(dec_lf, ver_lf, positions, scanned.files, &names)?;
    scanned.fingerprints.fill(&mut ingested.files)?;
    ingested.rejects = finish_rejects(vec![ingested.rejects])?;
    Ok(ingested)
}

/// The rejects of one or more [`validate`] calls as one table in input order (table, file,
/// row), without the file index.
pub fn finish_rejects(parts: Vec<DataFrame>) -> Result<DataFrame, IngestError> {
    let sorted = parts.len() > 1;
    let frames: Vec<LazyFrame> = parts.into_iter().map(|df| df.lazy()).collect();
    if frames.is_empty() {
        return Ok(empty_rejects());
    }
    let mut all = concat(frames, UnionArgs::default()).map_err(pe("rejects"))?;
    if sorted {
        all = all.sort(["table", "__file", "row"], SortMultipleOptions::default());
    }
    all.select([
        col("table"),
        col("file"),
        col("row"),
        col("decision_id"),
        col("reason"),
    ])
    .collect()
    .map_err(pe("rejects"))
}

/// Validates and de-duplicates the rows of `dec_lf` and `ver_lf` (queries as [`scan`] builds
/// them, in input order), whose rows come from `positions` (decisions, verdicts). Every row of
/// a decision id, in both tables, must be in these two queries: the duplicate rule and the
/// verdicts' join see only them. `file_names` are indexed by `__file`; `files` is passed
/// through to the result.
pub fn validate(
    dec_lf: LazyFrame,
    ver_lf: LazyFrame,
    positions: [Positions; 2],
    files: Vec<InputFile>,
    file_names: &[String],
) -> Result<Ingested, IngestError> {
    let [dec_positions, ver_positions] = &positions;
    let read = read_table(dec_lf, Table::Decisions)?;
    // The verdicts are read and checked row by row while the decisions are checked and
    // indexed, steps that keep one core busy, not two. A failure of the decisions is still
    // reported first (once the verdicts' thread has ended). A panic on that thread is caught
    // there and resumed only where the verdicts are used, so that it cannot replace the
    // decisions' error.
    std::thread::scope(|scope| {
        let verdicts = scope.spawn(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let read = read_table(ver_lf, Table::Verdicts)?;
                checked_read(read, Table::Verdicts, ver_positions, check_verdicts)
            }))
        });
        let verdicts = || {
            verdicts
                .join()
                .and_then(|caught| caught)
                .unwrap_or_else(|e| std::panic::resume_unwind(e))
        };
        validate_read(
            read,
            [dec_positions, ver_positions],
            verdicts,
            files,
            file_names,
        )
    })
}

/// A table as read, checked row by row (`check`) and in input order.
fn checked_read(
    read: DataFrame,
    table: Table,
    positions: &Positions,
    check: fn(DataFrame) -> PolarsResult<DataFrame>,
) -> Result<DataFrame, IngestError> {
    let checked = check(read).map_err(pe(format!("validating {}", table.as_str())))?;
    mark(&format!("{} checked row by row", table.as_str()));
    match positions {
        Positions::Columns => in_input_order(checked),
        // Read file after file, as the union of the files' queries gives them (`union` keeps
        // their order): each row's file and row follow from the files' row counts, which must
        // add up to the rows read.
        Positions::Files(files) => {
            let footers: u64 = files.iter().map(|&(_, rows)| rows).sum();
            let largest = files.iter().map(|&(_, rows)| rows).max().unwrap_or(0);
            if footers != checked.height() as u64 || largest > IdxSize::MAX as u64 {
                return Err(IngestError::Polars {
                    context: format!("reading {}", table.as_str()),
                    source: polars_err!(
                        ComputeError: "{} rows read from {} files whose footers give {footers} (at most {} a file)",
                        checked.height(), files.len(), IdxSize::MAX
                    ),
                });
            }
            Ok(checked)
        }
    }
}

/// [`validate`] of the decisions as read, with the verdicts read and checked by `verdicts`.
fn validate_read(
    read: DataFrame,
    [dec_positions, ver_positions]: [&Positions; 2],
    verdicts: impl FnOnce() -> Result<DataFrame, IngestError>,
    files: Vec<InputFile>,
    file_names: &[String],
) -> Result<Ingested, IngestError> {
    // Decisions: per-row rules, then duplicates among otherwise valid rows.
    let checked = checked_read(read, Table::Decisions, dec_positions, check_decisions)?;
    let dec_read = checked.height() as u64;

    // Duplicates and the decision index: the ids are grouped by hash bucket, in input order
    // within a bucket, so the first valid row of an id is kept and gets its index (its row in
    // the valid decisions); later valid rows of that id are duplicates. The same index then
    // serves the verdicts' join.
    // The id column shares its arrays with the table (which is dropped before the join).
    let id_column = string_column(&checked, "decision_id")?;
    let ids = Ids::of(&id_column);
    let mut codes = reason_codes(&checked)?;
    let valid: Vec<bool> = codes
        .iter()
        .zip(ids.iter_from(0))
        .map(|(&c, id)| c == 0 && id.is_some())
        .collect();
    let index = IdIndex::build(ids, &valid);
    drop(valid);
    let duplicate = reason_code(&DECISION_REASONS, "duplicate_decision_id");
    let mut rejected_ids: std::collections::HashSet<&str, foldhash::fast::FixedState> =
        Default::default();
    let rows = codes
        .iter_mut()
        .zip(&index.duplicate)
        .zip(index.ids.iter_from(0));
    for ((code, &duplicated), id) in rows {
        if duplicated {
            *code = duplicate;
        }
        if let (true, Some(id)) = (*code != 0, id) {
            rejected_ids.insert(id);
        }
    }
    mark("duplicates found, decisions indexed");
    let dec_rejects = rejects_of(
        "decisions",
        &checked,
        dec_positions,
        &codes,
        &DECISION_REASONS,
    )?;
    let valid_mask: BooleanChunked = codes.iter().map(|&c| c == 0).collect();
    drop(codes);
    // Without their ids: the index and the rejected ids hold what the join needs of them (in
    // the id column read), and nothing after the join reads them. A filtered copy would hold 16
    // bytes a decision until the join is done.
    let mut decisions = checked
        .select([
            "decided_at",
            "action_class",
            "confidence",
            "model_version",
            "asset_criticality",
            "privileged",
            "target_entity",
            "technique_ids",
            "executed",
        ])
        .map_err(pe("decisions"))?
        .filter(&valid_mask)
        .map_err(pe("decisions"))?;
    drop(checked);
    decisions
        .rename("decided_at", "decided_us".into())
        .map_err(pe("decisions"))?;

    mark("valid decisions and their rejects split");
    // Verdicts: per-row rules, then the decision rules through the index.
    let vchecked = verdicts()?;
    let ver_read = vchecked.height() as u64;
    // The decision times in one chunk, read as a slice: the join looks them up by row, and a
    // copy beside the column would add 8 bytes a decision to the ingest's peak.
    let one_chunk = decisions
        .column("decided_us")
        .map_err(pe("decisions"))?
        .rechunk();
    decisions.with_column(one_chunk).map_err(pe("decisions"))?;
    // (A filtered table has a chunk even when empty: the slice is then empty.)
    let decided: &[i64] = decisions
        .column("decided_us")
        .map_err(pe("decisions"))?
        .i64()
        .map_err(pe("decisions"))?
        .cont_slice()
        .map_err(pe("decision times"))?;
    let mut vcodes = reason_codes(&vchecked)?;
    let vid_column = string_column(&vchecked, "decision_id")?;
    let vids = Ids::of(&vid_column);
    // Rows still valid and with an id, from the chunks' validity (no string is read).
    let mut probe: Vec<bool> = Vec::with_capacity(vcodes.len());
    for arr in vid_column.downcast_iter() {
        let codes = &vcodes[probe.len()..probe.len() + arr.len()];
        match arr.validity() {
            None => probe.extend(codes.iter().map(|&c| c == 0)),
            Some(valid) => probe.extend(codes.iter().zip(valid.iter()).map(|(&c, v)| c == 0 && v)),
        }
    }
    let decision_of = index.lookup(&vids, &probe);
    drop(probe);
    // The index's tables are not needed past the lookup: freed before the join allocates.
    drop(index);
    mark("verdicts' decisions looked up");
    // Each verdict's severity for the final verdict's tie-break: reject 3, override 2,
    // approve 1, anything else 0 (computed once per distinct spelling).
    let (severity, verdict_codes) = {
        let column = vchecked.column("verdict").map_err(pe("verdicts"))?;
        let codes = crate::aggregate::build::Codes::of_column(column).map_err(pe("verdicts"))?;
        let severity: Vec<i64> = std::iter::once(0)
            .chain(codes.values().map(|v| match v {
                "reject" => 3,
                "override" => 2,
                "approve" => 1,
                _ => 0,
            }))
            .collect();
        (severity, codes.codes)
    };
    let reviewed = vchecked
        .column("reviewed_at")
        .map_err(pe("verdicts"))?
        .i64()
        .map_err(pe("verdicts"))?;
    let code = |reason: &str| {
        let k = reason_code(&VERDICT_REASONS, reason);
        debug_assert!(k != 0, "reason {reason} is not in the list");
        k
    };
    let (before, rejected, unknown, null_id) = (
        code("review_before_decision"),
        code("decision_rejected"),
        code("unknown_decision"),
        code("null_decision_id"),
    );
    // Final verdict: latest reviewed_at; ties go to the most conservative verdict
    // (reject > override > approve > timeout). Packing (time, severity) into one integer
    // makes it a maximum per decision, kept in a vector indexed like the decisions (updated
    // with atomic maxima: the verdict rows are split between the worker threads, and a maximum
    // does not depend on the order).
    let best: Vec<AtomicI64> = (0..decided.len())
        .map(|_| AtomicI64::new(i64::MIN))
        .collect();
    // Per part of the verdict rows: the valid rows' decision rows and review delays. A row is
    // valid exactly where its code stays 0.
    let joined = crate::threads::map_parts_mut(&mut vcodes, |offset, codes| {
        let len = codes.len();
        let (verdicts, reviewed) = (
            &verdict_codes[offset..offset + len],
            reviewed.slice(offset as i64, len),
        );
        // Room for every row, so that the vectors are not copied as they grow (rejected rows
        // leave their room unused).
        let (mut matched, mut delay) = (Vec::with_capacity(len), Vec::with_capacity(len));
        let rows = verdicts
            .iter()
            .zip(reviewed.iter())
            .zip(codes.iter_mut())
            .zip(vids.iter_from(offset));
        // The decision rows are known ahead: their times and maxima, scattered over 160 MB at
        // 10^7 decisions when the verdicts are not in the decisions' order, are prefetched
        // this many rows ahead.
        const AHEAD: usize = 16;
        let part_rows = &decision_of[offset..offset + len];
        for (o, (((verdict, at), slot), id)) in rows.enumerate() {
            if let Some(&ahead) = part_rows.get(o + AHEAD) {
                if ahead != IdxSize::MAX {
                    prefetch(decided.as_ptr().wrapping_add(ahead as usize));
                    prefetch(best.as_ptr().wrapping_add(ahead as usize));
                }
            }
            let k = part_rows[o];
            let k = (k != IdxSize::MAX).then_some(k);
            let kept = match (*slot, id, at, k) {
                (0, Some(_), Some(at), Some(k)) if at < decided[k as usize] => {
                    *slot = before;
                    None
                }
                (0, Some(_), Some(at), Some(k)) => Some((k, at)),
                (0, Some(id), _, None) if rejected_ids.contains(id) => {
                    *slot = rejected;
                    None
                }
                (0, Some(_), _, None) => {
                    *slot = unknown;
                    None
                }
                (0, _, _, _) => {
                    *slot = null_id;
                    None
                }
                _ => None,
            };
            if let Some((k, at)) = kept {
                let severity = severity[*verdict as usize];
                best[k as usize].fetch_max(at * 4 + severity, Ordering::Relaxed);
                matched.push(k);
                delay.push(at - decided[k as usize]);
            }
        }
        (matched, delay)
    });
    drop(decision_of);
    // Each part's rows become a chunk of the columns (not copied into one vector).
    let (mut matched, mut delay) = (
        IdxCa::from_vec("decision_row".into(), Vec::new()),
        Int64Chunked::from_vec("delay_us".into(), Vec::new()),
    );
    for (m, d) in joined {
        matched
            .append_owned(IdxCa::from_vec("decision_row".into(), m))
            .map_err(pe("verdicts"))?;
        delay
            .append_owned(Int64Chunked::from_vec("delay_us".into(), d))
            .map_err(pe("verdicts"))?;
    }
    mark("verdicts joined to decisions, final verdicts chosen");
    drop(rejected_ids);
    drop(id_column);
    let ver_rejects = rejects_of(
        "verdicts",
        &vchecked,
        ver_positions,
        &vcodes,
        &VERDICT_REASONS,
    )?;
    let valid_rows: BooleanChunked = vcodes.iter().map(|&c| c == 0).collect();
    drop(vcodes);
    drop(vid_column);
    // The decision's row stands for the verdict's class and period.
    let mut kept = vchecked
        .select(["analyst_id", "verdict"])
        .map_err(pe("verdicts"))?
        .filter(&valid_rows)
        .map_err(pe("verdicts"))?;
    drop(vchecked);
    kept.with_column(delay.into_column())
        .map_err(pe("verdicts"))?;
    kept.with_column(matched.into_column())
        .map_err(pe("verdicts"))?;
    let verdict_rows = kept;
    mark("valid verdict rows kept");

    // Every later stage needs each decision's final outcome (4 = no verdict).
    // severity 3,2,1,0 → outcome 2 reject, 1 override, 0 approve, 3 timeout
    let outcome: Vec<i32> = best
        .into_iter()
        .map(|key| match key.into_inner() {
            i64::MIN => 4,
            key => match key.rem_euclid(4) {
                0 => 3,
                s => (s - 1) as i32,
            },
        })
        .collect();
    decisions
        .with_column(Column::new("outcome".into(), outcome))
        .map_err(pe("attaching final verdicts"))?;
    mark("final outcome attached");
    let dec_rejects = dec_rejects.lazy();
    let ver_rejects = ver_rejects.lazy();
    let rejects = concat([dec_rejects, ver_rejects], UnionArgs::default())
        .map_err(pe("rejects"))?
        .sort(["table", "__file", "__row"], SortMultipleOptions::default())
        .collect_streaming()
        .map_err(pe("collecting rejected rows"))?;
    let mut counts = RowCounts {
        decisions_read: dec_read,
        decisions_valid: decisions.height() as u64,
        verdicts_read: ver_read,
        ..Default::default()
    };
    {
        let table = rejects
            .column("table")
            .map_err(pe("rejects"))?
            .str()
            .map_err(pe("rejects"))?;
        let reason = rejects
            .column("reason")
            .map_err(pe("rejects"))?
            .str()
            .map_err(pe("rejects"))?;
        for (t, r) in table.iter().zip(reason.iter()) {
            let (t, r) = (t.unwrap_or_default(), r.unwrap_or_default());
            *counts
                .rejected_by_reason
                .entry(t.to_string())
                .or_default()
                .entry(r.to_string())
                .or_default() += 1;
            if t == "decisions" {
                counts.decisions_rejected += 1;
            } else {
                counts.verdicts_rejected += 1;
            }
        }
    }
    counts.verdicts_valid = counts.verdicts_read - counts.verdicts_rejected;
    // Replace the file index by the file path for the rejects file.
    let file_col: Vec<String> = rejects
        .column("__file")
        .map_err(pe("rejects"))?
        .u32()
        .map_err(pe("rejects"))?
        .iter()
        .map(|i| {
            i.and_then(|i| file_names.get(i as usize).cloned())
                .unwrap_or_default()
        })
        .collect();
    let rejects = rejects
        .lazy()
        .with_column(lit(Series::new("file".into(), file_col)).alias("file"))
        .select([
            col("table"),
            col("file"),
            col("__row").cast(DataType::UInt64).alias("row"),
            col("decision_id"),
            col("reason"),
            // Kept for [`finish_rejects`]: the order of rejects from several partitions.
            col("__file"),
        ])
        .collect_streaming()
        .map_err(pe("rejects"))?;

    mark("rejects collected");
    Ok(Ingested {
        files,
        decisions,
        verdict_rows,
        rejects,
        counts,
    })
}

impl Ingested {
    /// Fails when there is nothing to analyse, or when a table's rejected share exceeds `limit`
    /// (the policy's `run.max_rejected_share`). Called after the rejects file is written, so the
    /// reasons are on disk when the run stops.
    pub fn check(&self, limit: f64) -> Result<(), IngestError> {
        let classes = self
            .decisions
            .column("action_class")
            .and_then(|c| c.n_unique())
            .unwrap_or(0);
        check_counts(&self.counts, classes, limit, &self.files)
    }
}

/// [`Ingested::check`] from the row counts and the number of distinct valid action classes (a
/// partitioned run has no single table of decisions).
pub fn check_counts(
    counts: &RowCounts,
    classes: usize,
    limit: f64,
    files: &[InputFile],
) -> Result<(), IngestError> {
    if counts.decisions_read == 0 {
        let read: Vec<&str> = files
            .iter()
            .filter(|f| f.table == Table::Decisions)
            .map(|f| f.path.as_str())
            .collect();
        let shown = match read.as_slice() {
            [one] => format!(" ({one})"),
            [first, ..] => format!(" ({} files, none with a row, from {first})", read.len()),
            [] => String::new(),
        };
        return Err(IngestError::Empty {
            detail: format!("the decisions input{shown} has no rows"),
        });
    }
    if classes > MAX_CLASSES {
        return Err(IngestError::TooManyClasses {
            classes,
            limit: MAX_CLASSES,
        });
    }
    for (table, read, rejected) in [
        (
            Table::Decisions,
            counts.decisions_read,
            counts.decisions_rejected,
        ),
        (
            Table::Verdicts,
            counts.verdicts_read,
            counts.verdicts_rejected,
        ),
    ] {
        let share = if read == 0 {
            0.0
        } else {
            rejected as f64 / read as f64
        };
        if share > limit {
            return Err(IngestError::TooManyRejected {
                table: table.as_str(),
                rejected,
                total: read,
                share: share * 100.0,
                limit: limit * 100.0,
            });
        }
    }
    if counts.decisions_valid == 0 {
        return Err(IngestError::Empty {
            detail: format!(
                "all {} decision rows were rejected (see the reasons in the rejects file)",
                counts.decisions_read
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_each_files_digest_in_order_and_name_a_missing_file() {
        let dir = std::env::temp_dir().join(format!("readiness-fp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Files of 0 bytes to 3 MiB (several of the hasher's 1 MiB reads), more than the cores.
        let paths: Vec<PathBuf> = (0..9)
            .map(|k| {
                let path = dir.join(format!("{k}.bin"));
                let bytes: Vec<u8> = (0..k * 350_000).map(|i| (i * 7 + k) as u8).collect();
                std::fs::write(&path, bytes).unwrap();
                path
            })
            .collect();
        let file = |p: &PathBuf| InputFile {
            table: Table::Decisions,
            path: p.display().to_string(),
            sha256: String::new(),
            bytes: 0,
            rows: 0,
        };
        let mut files: Vec<InputFile> = paths.iter().map(file).collect();
        Fingerprints::start(paths.clone()).fill(&mut files).unwrap();
        for (f, p) in files.iter().zip(&paths) {
            let bytes = std::fs::read(p).unwrap();
            let digest: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(f.sha256, digest, "{}", f.path);
            assert_eq!(f.bytes, bytes.len() as u64);
        }
        // A file gone before it was hashed is named; fewer files than fingerprints is an error.
        let mut gone = paths.clone();
        gone.insert(4, dir.join("gone.bin"));
        let mut files: Vec<InputFile> = gone.iter().map(file).collect();
        let err = Fingerprints::start(gone).fill(&mut files).unwrap_err();
        assert!(err.to_string().contains("gone.bin"), "{err}");
        let mut short: Vec<InputFile> = paths[..3].iter().map(file).collect();
        let err = Fingerprints::start(paths).fill(&mut short).unwrap_err();
        assert!(
            err.to_string().contains("9 fingerprints for 3 files"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn spellings_are_normalised_row_by_row_across_chunks() {
        let allowed = ["low", "medium", "high", "critical"];
        let spellings = [
            Some("low"),
            Some("High"),
            None,
            Some(" critical "),
            Some("bogus"),
            Some(""),
            Some("a-long-unknown-spelling"),
            Some("MEDIUM"),
            Some("low"),
        ];
        // 200 rows in three chunks, every spelling many times in each.
        let rows: Vec<Option<&str>> = (0..200).map(|i| spellings[(i * 7) % 9]).collect();
        // As strings and as the categories the column is read as.
        let (strings, cats) = three_chunks(&rows, "asset_criticality");
        assert_eq!(strings.n_chunks(), 3);
        for column in [strings, cats] {
            let dtype = column.dtype().clone();
            let df = DataFrame::new_infer_height(vec![column]).unwrap();
            let (rebuilt, unknown) = normalised(&df, "c", &allowed).unwrap();
            let rebuilt = rebuilt.expect("some spellings change");
            assert_eq!(rebuilt.dtype(), &dtype);
            let rebuilt = rebuilt.cast(&DataType::String).unwrap();
            let rebuilt: Vec<Option<&str>> = rebuilt.str().unwrap().iter().collect();
            for (i, v) in rows.iter().enumerate() {
                let want = v.map(|s| s.trim().to_lowercase());
                assert_eq!(rebuilt[i].map(str::to_string), want, "row {i}");
                let outside = want.is_some_and(|w| !allowed.contains(&w.as_str()));
                assert_eq!(unknown[i], outside, "row {i}: {v:?}");
            }
        }
        // Nothing to rebuild when every spelling is already normal.
        let plain = df!("c" => [Some("low"), None, Some("bogus")]).unwrap();
        let (rebuilt, unknown) = normalised(&plain, "c", &allowed).unwrap();
        assert!(rebuilt.is_none());
        assert_eq!(unknown, [false, false, true]);
    }

    /// `rows` in three chunks, as a string column or read as the categories of `name`.
    fn three_chunks(rows: &[Option<&str>], name: &str) -> (Column, Column) {
        let mut column = array(&rows[..50]);
        column.append(&array(&rows[50..120])).unwrap();
        column.append(&array(&rows[120..])).unwrap();
        let strings = column.with_name("c".into()).into_column();
        let dtype = categorical(name).expect("a categorical column");
        let cats = to_categories(strings.clone(), &dtype).unwrap();
        (strings, cats)
    }

    #[test]
    fn strings_read_as_categories_keep_their_values_nulls_and_chunks() {
        // More distinct strings than the view cache has slots, inline and long, with nulls.
        let owned: Vec<String> = (0..1_000)
            .map(|k| crate::test_data::scrambled(k, 600, "an-analyst-with-a-long-id-", "a"))
            .collect();
        let rows: Vec<Option<&str>> = owned
            .iter()
            .enumerate()
            .map(|(i, s)| (i % 13 != 5).then_some(s.as_str()))
            .collect();
        let (strings, cats) = three_chunks(&rows, "analyst_id");
        assert!(matches!(cats.dtype(), DataType::Categorical(..)));
        assert_eq!(cats.n_chunks(), 3);
        assert_eq!(cats.null_count(), strings.null_count());
        let back: Vec<Option<&str>> = cats.cat32().unwrap().iter_str().collect();
        assert_eq!(back, rows);
        // Equal strings get one id, distinct strings distinct ids.
        let ids: Vec<Option<u32>> = cats.cat32().unwrap().physical().iter().collect();
        let mut id_of = std::collections::HashMap::new();
        for (row, id) in rows.iter().zip(&ids) {
            if let (Some(s), Some(id)) = (row, id) {
                assert_eq!(*id_of.entry(*s).or_insert(*id), *id, "{s}");
            }
        }
        let distinct: std::collections::HashSet<_> = id_of.values().collect();
        assert_eq!(distinct.len(), id_of.len());
    }

    #[test]
    fn cited_ids_read_as_ids_keep_their_spellings_nulls_and_chunks() {
        // More distinct spellings than ATT&CK has IDs, inline and long, over two chunks; null
        // lists, empty lists and null entries.
        let owned: Vec<String> = (0..3_000)
            .map(|k| crate::test_data::scrambled(k, 900, "T1059.001-with-a-long-tail-", "T"))
            .collect();
        let lists: Vec<Option<Vec<Option<&str>>>> = (0..1_000)
            .map(|i| {
                (i % 17 != 3).then(|| {
                    (0..i % 4)
                        .map(|j| {
                            let k = 3 * i + j;
                            (k % 11 != 7).then_some(owned[k % owned.len()].as_str())
                        })
                        .collect()
                })
            })
            .collect();
        let series = |rows: &[Option<Vec<Option<&str>>>]| -> Series {
            let rows: Vec<Option<Series>> = rows
                .iter()
                .map(|l| l.as_ref().map(|l| Series::new("".into(), l.as_slice())))
                .collect();
            let mut s = Series::new("technique_ids".into(), rows);
            s = s.cast(&DataType::List(Box::new(DataType::String))).unwrap();
            s
        };
        let mut column = series(&lists[..400]);
        column.append(&series(&lists[400..])).unwrap();
        let column = column.into_column();
        assert_eq!(column.n_chunks(), 2);
        let ids = technique_codes(&column).unwrap();
        assert_eq!(ids.dtype(), &technique_list_type());
        assert_eq!(ids.n_chunks(), 2);
        let back: Vec<Option<Vec<Option<String>>>> = ids
            .list()
            .unwrap()
            .amortized_iter()
            .map(|l| {
                l.map(|l| {
                    let l = l.as_ref();
                    l.u32()
                        .unwrap()
                        .iter()
                        .map(|id| id.map(|id| techniques().cat_to_str(id).unwrap().to_string()))
                        .collect()
                })
            })
            .collect();
        let expected: Vec<Option<Vec<Option<String>>>> = lists
            .iter()
            .map(|l| {
                l.as_ref()
                    .map(|l| l.iter().map(|s| s.map(str::to_string)).collect())
            })
            .collect();
        assert_eq!(back, expected);
    }

    #[test]
    fn values_too_long_are_found_in_categories_as_in_strings() {
        let limit = "x".repeat(MAX_STRING_BYTES as usize);
        let over = "y".repeat(MAX_STRING_BYTES as usize + 1);
        let values = [
            Some(limit.as_str()),
            Some(over.as_str()),
            None,
            Some("short"),
        ];
        let rows: Vec<Option<&str>> = (0..200).map(|i| values[(i * 7) % 4]).collect();
        let (strings, cats) = three_chunks(&rows, "model_version");
        let want: Vec<bool> = rows.iter().map(|r| *r == Some(over.as_str())).collect();
        for column in [strings, cats] {
            let df = DataFrame::new_infer_height(vec![column]).unwrap();
            assert_eq!(too_long(&df, &["c"]).unwrap(), want);
        }
    }

    fn array(values: &[Option<&str>]) -> StringChunked {
        values
            .iter()
            .copied()
            .collect::<StringChunked>()
            .rechunk()
            .into_owned()
    }

    #[test]
    fn the_id_index_keeps_the_first_valid_row_of_an_id_and_finds_it_by_value() {
        let long = "decision-0000000000000000000001";
        let ids = array(&[
            Some("a"),
            Some(long),
            Some("a"),
            None,
            Some("c"),
            Some(long),
            Some("b"),
        ]);
        // Row 6 fails a row rule: it is neither indexed nor a duplicate.
        let valid = [true, true, true, false, true, true, false];
        let index = IdIndex::build(Ids::of(&ids), &valid);
        assert_eq!(
            index.duplicate,
            [false, false, true, false, false, true, false]
        );
        let none = IdxSize::MAX;
        assert_eq!(index.position, Some(vec![0, 1, none, none, 2, none, none]));

        let probes = array(&[Some(long), Some("x"), Some("a"), Some("c"), None, Some("b")]);
        let found = index.lookup(&Ids::of(&probes), &[true, true, true, true, false, true]);
        assert_eq!(found, [1, none, 0, 2, none, none]);
        // A row that is not probed is not looked up.
        let found = index.lookup(&Ids::of(&probes), &[false; 6]);
        assert_eq!(found, [none; 6]);
    }

    #[test]
    fn the_bucketed_id_index_agrees_with_a_plain_map_over_many_buckets() {
        // 50,000 rows over 20,000 ids (inline and long, so both view kinds are compared), some
        // rows invalid: 32 buckets of the index (50,000 / 1,024 rounded down to a power of
        // two), each id's first valid row kept.
        let id = |k: u64| crate::test_data::scrambled(k, 20_000, "decision-", "d");
        let values: Vec<String> = (0..50_000u64).map(id).collect();
        let ids = crate::test_data::chunked(&values, &[20_000, 20_001]);
        assert_eq!(ids.chunks().len(), 3);
        let valid: Vec<bool> = (0..values.len()).map(|i| i % 7 != 3).collect();
        let index = IdIndex::build(Ids::of(&ids), &valid);
        assert_eq!(index.buckets.len(), 32);

        let mut first: std::collections::HashMap<&str, IdxSize> = Default::default();
        let mut next = 0;
        for (i, v) in values.iter().enumerate() {
            let expected_duplicate = valid[i] && first.contains_key(v.as_str());
            assert_eq!(index.duplicate[i], expected_duplicate, "row {i}");
            if valid[i] && !expected_duplicate {
                first.insert(v, next);
                assert_eq!(index.position(i), next, "row {i}");
                next += 1;
            } else {
                assert_eq!(index.position(i), IdxSize::MAX, "row {i}");
            }
        }

        let mut probes: Vec<String> = (0..30_000u64).map(|k| id(k * 7 + 1)).collect();
        probes.push("not an id".into());
        let parray = array(&probes.iter().map(|v| Some(v.as_str())).collect::<Vec<_>>());
        let flags: Vec<bool> = (0..probes.len()).map(|j| j % 11 != 5).collect();
        let found = index.lookup(&Ids::of(&parray), &flags);
        for (j, p) in probes.iter().enumerate() {
            let expected = match flags[j] {
                true => first.get(p.as_str()).copied().unwrap_or(IdxSize::MAX),
                false => IdxSize::MAX,
            };
            assert_eq!(found[j], expected, "probe {j} ({p})");
        }
    }

    #[test]
    fn grouping_is_a_stable_counting_sort_whatever_the_number_of_regions() {
        // 5,000 rows (some not flagged, some null) into 2^bits buckets, filled in 1 to 64
        // regions: more regions than buckets, uneven ones, one alone.
        let values: Vec<Option<String>> = (0..5_000u64)
            .map(|k| (k % 97 != 13).then(|| format!("d{}", k.wrapping_mul(0x9e37_79b9) % 1_500)))
            .collect();
        let ids = array(&values.iter().map(|v| v.as_deref()).collect::<Vec<_>>());
        let flags: Vec<bool> = (0..values.len()).map(|i| i % 5 != 2).collect();
        for bits in [0, 2, 6] {
            // The expected grouping: each bucket's flagged rows in row order (a null id hashes
            // as 0, into bucket 0).
            let bucket = |i: usize| {
                let h = values[i].as_deref().map_or(0, IdIndex::hash);
                IdIndex::bucket_of(h, bits)
            };
            let mut expected: Vec<Vec<IdxSize>> = vec![Vec::new(); 1 << bits];
            for i in (0..values.len()).filter(|&i| flags[i]) {
                expected[bucket(i)].push(i as IdxSize);
            }
            for regions in [1, 2, 3, 64] {
                let g = IdIndex::group_in(&Ids::of(&ids), &flags, bits, IdIndex::hash, regions);
                assert_eq!(g.starts.len(), (1 << bits) + 1);
                for (b, rows) in expected.iter().enumerate() {
                    let got: Vec<IdxSize> = g.rows[g.starts[b]..g.starts[b + 1]]
                        .iter()
                        .map(|&(_, i)| i)
                        .collect();
                    assert_eq!(&got, rows, "bits {bits}, {regions} regions, bucket {b}");
                }
            }
        }
    }

    #[test]
    fn an_index_that_keeps_every_row_finds_each_id_at_its_row() {
        // Distinct ids in a scrambled order, all valid: no positions are stored.
        let values: Vec<String> = (0..4_000u64)
            .map(|k| format!("decision-{:012}", k.wrapping_mul(0x9e37_79b9) % 1_000_003))
            .collect();
        let ids = array(&values.iter().map(|v| Some(v.as_str())).collect::<Vec<_>>());
        let index = IdIndex::build(Ids::of(&ids), &vec![true; values.len()]);
        assert!(index.position.is_none());
        assert!(!index.duplicate.contains(&true));
        // Every third probe is an unknown id.
        let probes: Vec<Option<String>> = (0..6_000usize)
            .map(|j| {
                Some(match j % 3 {
                    2 => format!("unknown-{j}"),
                    _ => values[j * 7 % values.len()].clone(),
                })
            })
            .collect();
        let parray = array(&probes.iter().map(|v| v.as_deref()).collect::<Vec<_>>());
        let found = index.lookup(&Ids::of(&parray), &vec![true; probes.len()]);
        for (j, &f) in found.iter().enumerate() {
            let expected = match j % 3 {
                2 => IdxSize::MAX,
                _ => (j * 7 % values.len()) as IdxSize,
            };
            assert_eq!(f, expected, "probe {j}");
        }
    }

    #[test]
    fn ids_with_the_same_hash_are_told_apart_by_their_strings() {
        // A hash of the length puts every id of one length in one bucket with the same stored
        // hash half: only the string comparison separates them.
        let by_length: fn(&str) -> u64 = |id| id.len() as u64;
        let values: Vec<String> = (0..3_000).map(|k| format!("d{:05}", k % 1_000)).collect();
        let ids = array(&values.iter().map(|v| Some(v.as_str())).collect::<Vec<_>>());
        let index = IdIndex::build_with(Ids::of(&ids), &vec![true; 3_000], by_length);
        let none = IdxSize::MAX;
        for i in 0..3_000 {
            assert_eq!(index.duplicate[i], i >= 1_000, "row {i}");
            let expected = if i < 1_000 { i as IdxSize } else { none };
            assert_eq!(index.position(i), expected, "row {i}");
        }
        let probes = array(&[
            Some("d00999"),
            Some("d00000"),
            Some("d01000"),
            Some("d0099"),
        ]);
        let found = index.lookup(&Ids::of(&probes), &[true; 4]);
        assert_eq!(found, [999, 0, none, none]);
    }

    #[test]
    fn ids_are_compared_by_length_inline_bytes_prefix_and_buffer() {
        let left = [
            "abcdefghijk",
            "abcdefghijkl",
            "abcdefghijklm",
            "decision-0001",
            "",
            "decision-0001",
        ];
        let right = [
            "abcdefghijx",
            "abcdefghijkl",
            "abcdefghijklx",
            "decision-0001",
            "",
            "decisioN-0001",
        ];
        let (a, b) = (array(&left.map(Some)), array(&right.map(Some)));
        let (a, b) = (Ids::of(&a), Ids::of(&b));
        for (i, l) in left.iter().enumerate() {
            for (j, r) in right.iter().enumerate() {
                assert_eq!(a.same(i, &b, j), l == r, "{l:?} {r:?}");
            }
        }
    }

    #[test]
    fn proc_fields_are_read_by_exact_key() {
        let dir = std::env::temp_dir().join(format!("readiness-proc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("meminfo");
        std::fs::write(
            &file,
            "MemTotal:       24000000 kB\nMemAvailableX:  1 kB\nMemAvailable:   20000000 kB\n",
        )
        .unwrap();
        let file = file.to_str().unwrap();
        assert_eq!(proc_kib(file, "MemAvailable"), Some(20_000_000));
        assert_eq!(proc_kib(file, "MemTotal"), Some(24_000_000));
        assert_eq!(proc_kib(file, "SwapTotal"), None);
        assert_eq!(proc_kib("/no/such/file", "MemTotal"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ids_are_read_across_chunks_including_empty_ones() {
        let chunks = [
            &[Some("a"), None][..],
            &[],
            &[Some("b")],
            &[],
            &[Some("c"), Some("d")],
            &[],
        ]
        .map(Utf8ViewArray::from_slice);
        let ids = Ids::of_chunks(chunks.iter().collect());
        assert_eq!(ids.len(), 5);
        let all = [Some("a"), None, Some("b"), Some("c"), Some("d")];
        for start in 0..=5 {
            assert_eq!(
                ids.iter_from(start).collect::<Vec<_>>(),
                all[start..],
                "from {start}"
            );
        }
        assert_eq!((0..5).map(|i| ids.get(i)).collect::<Vec<_>>(), all);

        let empty = StringChunked::from_slice("decision_id".into(), &[] as &[&str]);
        let index = IdIndex::build(Ids::of(&empty), &[]);
        assert!(index.position.is_none());
        assert!(index.lookup(&Ids::of(&empty), &[]).is_empty());
    }

    #[test]
    fn reason_codes_name_their_reason_and_zero_is_none() {
        let code = reason_code(&VERDICT_REASONS, "unknown_decision");
        assert_eq!(VERDICT_REASONS[code as usize - 1], "unknown_decision");
        assert_eq!(reason_code(&VERDICT_REASONS, "no such reason"), 0);
        let df = df!(
            "__file" => [0u32, 0, 1],
            "__row" => [0 as IdxSize, 1, 0],
            "decision_id" => ["d1", "d2", "d3"],
        )
        .unwrap();
        let rejects = rejects_of(
            "decisions",
            &df,
            &Positions::Columns,
            &[0, 1, 12],
            &DECISION_REASONS,
        )
        .unwrap();
        let strings = |name: &str| -> Vec<String> {
            let column = rejects.column(name).unwrap().str().unwrap();
            column.iter().flatten().map(str::to_string).collect()
        };
        assert_eq!(
            strings("reason"),
            ["null_decision_id", "duplicate_decision_id"]
        );
        assert_eq!(strings("decision_id"), ["d2", "d3"]);
        assert_eq!(strings("table"), ["decisions", "decisions"]);
    }

    /// A table read file after file names each rejected row by its file and its row in that
    /// file, as the same table with `__file` and `__row` columns does; a table read with a row
    /// count other than the footers' is an error.
    #[test]
    fn rejects_of_files_read_in_order_name_the_file_and_the_row_in_it() {
        let ids = ["a", "b", "c", "d", "e", "f"];
        let codes = [0, 1, 0, 0, 0, 12];
        // Files 3 (2 rows), 5 (no rows), 8 (4 rows).
        let files = Positions::Files(vec![(3, 2), (5, 0), (8, 4)]);
        let read = df!("decision_id" => ids).unwrap();
        let by_files = rejects_of("decisions", &read, &files, &codes, &DECISION_REASONS).unwrap();
        let columns = df!(
            "__file" => [3u32, 3, 8, 8, 8, 8],
            "__row" => [0 as IdxSize, 1, 0, 1, 2, 3],
            "decision_id" => ids,
        )
        .unwrap();
        let by_columns = rejects_of(
            "decisions",
            &columns,
            &Positions::Columns,
            &codes,
            &DECISION_REASONS,
        )
        .unwrap();
        assert!(by_files.equals_missing(&by_columns), "{by_files}");
        let file: Vec<u32> = by_files
            .column("__file")
            .unwrap()
            .u32()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        let row: Vec<IdxSize> = by_files
            .column("__row")
            .unwrap()
            .idx()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!((file, row), (vec![3, 8], vec![1, 3]));

        // The table as read must have the footers' rows.
        let read_as = |footers| {
            checked_read(
                read.clone(),
                Table::Decisions,
                &Positions::Files(footers),
                Ok,
            )
        };
        assert!(read_as(vec![(3, 2), (5, 0), (8, 4)]).is_ok());
        for footers in [vec![(3, 2), (8, 3)], vec![(3, 2), (8, 5)]] {
            assert!(read_as(footers).is_err());
        }
    }
}
