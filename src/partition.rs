//! Inputs larger than the memory budget: split by decision id, processed a partition at a time.
//!
//! Every row of both tables goes to the partition of a hash of its `decision_id` (rows with a
//! null id to partition 0), written to a spill directory in input order. A decision's rows and
//! all its verdicts then share one partition, so the duplicate rule, the verdicts' join and the
//! final verdict need only that partition: each is validated and aggregated into a statistics
//! set like a whole input, and the sets are summed. The large value-count tables
//! (`confidence`, `reviews`) are summed on disk, each period apart (as many at once as the
//! memory budget holds). The result, the rejected
//! rows and the counts are the same as those of one pass over all rows, whatever the number of
//! partitions.

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use polars_arrow::array::{Array, ListArray};

use crate::ingest::{mark, pe, IngestError, Scanned, Table};

/// Rows of an input file routed at a time (the streaming engine's chunk size).
const ROUTE_CHUNK_ROWS: usize = 1 << 20;

pub(crate) fn io_err(path: &Path, e: impl std::fmt::Display) -> IngestError {
    IngestError::Io {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

/// A private working directory under the system's temporary directory (or `$TMPDIR`), removed
/// with everything in it when dropped, also when the run fails. A partitioned run's directory
/// also holds the memory the run frees ([`SpillDir::keeping_freed`]): it lives as long as the
/// statistics set read from it.
#[derive(Debug)]
pub struct SpillDir {
    path: PathBuf,
    /// Dropped after the directory is removed.
    keep: Option<crate::memory::KeepFreed>,
}

impl SpillDir {
    /// Creates a fresh directory `readiness-spill-<pid>-<n>` under `base`, after removing the
    /// spill directories of runs that were killed: a run stopped by a signal (Ctrl-C, the OOM
    /// killer) cannot remove its own (see [`remove_ended`]).
    pub fn create(base: &Path) -> Result<SpillDir, IngestError> {
        remove_ended(base, "readiness-spill-");
        let pid = std::process::id();
        for n in 0..1000u32 {
            let path = base.join(format!("readiness-spill-{pid}-{n}"));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(SpillDir { path, keep: None }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err(&path, e)),
            }
        }
        Err(io_err(base, "no free name for a spill directory"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory, keeping the memory the process frees from now until it is dropped (see
    /// `crate::memory`): a partitioned run's partitions free and allocate buffers of the same
    /// sizes over and over, from the routing to the decoding of the summed statistics.
    pub fn keeping_freed(mut self) -> SpillDir {
        self.keep = Some(crate::memory::KeepFreed::new());
        self
    }
}

/// Removes the directories `<prefix><name>-<pid>-<n>` under `base` (`name` may be empty or hold
/// dashes) whose process no longer runs on this machine: the spill directories of killed runs,
/// and the test suite's scratch directories. Where `/proc` does not list processes nothing is
/// removed, and a directory whose pid belongs to a live process (this one, or a process that
/// reused the pid) is kept.
pub fn remove_ended(base: &Path, prefix: &str) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let mut fields = rest.rsplitn(3, '-');
        let (Some(n), Some(pid)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !numeric(pid) || !numeric(n) || proc.join(pid).exists() {
            continue;
        }
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        crate::direct::release();
    }
}

/// Number of partitions that keeps each one's working set within `budget` bytes.
pub fn partitions_for(working_set: u64, budget: u64) -> usize {
    let budget = budget.max(1 << 20);
    working_set.div_ceil(budget).clamp(1, 4096) as usize
}

/// The partition of a decision id.
fn partition_of(id: &str, partitions: usize) -> usize {
    use std::hash::BuildHasher;
    (foldhash::fast::FixedState::with_seed(0x2545_f491_4f6c_dd1d).hash_one(id) as usize)
        % partitions
}

/// Writes `df` as a spill file only this process reads back: Parquet ([`crate::parquet_writer`])
/// without column statistics (nothing filters on them). The value counts of a partitioned run
/// are spilled this way: Parquet reads them back faster than Arrow IPC (BENCHMARKS.md).
pub(crate) fn write_spill(path: &Path, df: &DataFrame) -> Result<(), IngestError> {
    crate::parquet_writer::write_frame(path, df, false)
}

/// Reads a file written by [`write_spill`] a row group at a time, each passed through `each`
/// (which may make it smaller, e.g. strings into categories) before the next is read.
pub(crate) fn read_spill(
    path: &Path,
    each: impl Fn(DataFrame) -> PolarsResult<DataFrame>,
) -> Result<DataFrame, IngestError> {
    let shown = path.display().to_string();
    let err = |e: PolarsError| pe(shown.clone())(e);
    read_in_batches(path, 0, err, |part| each(part).map_err(err))
}

/// Reads a Parquet file a few row groups at a time (runs of at least `batch_rows` rows; 0 reads
/// one group at a time), each batch passed through `each` before the next is read, and stacks
/// what `each` returns. Each read is given a footer that holds its batch alone, so no other
/// group is visited. A file of at most one row group is read whole. A read that fails is
/// `unreadable`'s error.
pub(crate) fn read_in_batches(
    path: &Path,
    batch_rows: usize,
    unreadable: impl Fn(PolarsError) -> IngestError,
    mut each: impl FnMut(DataFrame) -> Result<DataFrame, IngestError>,
) -> Result<DataFrame, IngestError> {
    let open = || File::open(path).map_err(|e| io_err(path, e));
    let metadata = ParquetReader::new(open()?)
        .get_metadata()
        .map_err(&unreadable)?
        .clone();
    if metadata.row_groups.len() <= 1 {
        return each(ParquetReader::new(open()?).finish().map_err(unreadable)?);
    }
    let mut batches: Vec<Vec<_>> = Vec::new();
    let mut rows_in_last = usize::MAX;
    for group in &metadata.row_groups {
        if rows_in_last >= batch_rows {
            batches.push(Vec::new());
            rows_in_last = 0;
        }
        rows_in_last += group.num_rows();
        if let Some(batch) = batches.last_mut() {
            batch.push(group.clone());
        }
    }
    let mut all: Option<DataFrame> = None;
    for batch in batches {
        let mut alone = (*metadata).clone();
        alone.num_rows = batch.iter().map(|g| g.num_rows()).sum();
        alone.row_groups = batch;
        let mut reader = ParquetReader::new(open()?);
        reader.set_metadata(std::sync::Arc::new(alone));
        let part = each(reader.finish().map_err(&unreadable)?)?;
        match all.as_mut() {
            Some(all) => {
                all.vstack_mut_owned(part)
                    .map_err(pe(path.display().to_string()))?;
            }
            None => all = Some(part),
        }
    }
    Ok(all.unwrap_or_default())
}

/// Writes a chunk of routed rows as an Arrow IPC file (LZ4-compressed buffers): the column
/// buffers as they are in memory, with no encoding to undo when the partition reads them back.
/// Categories are written as their ids (the process's mappings give them back, see
/// [`scan_routed`]): written as categories, each file's dictionary was rebuilt through a hash
/// map row by row, 4.5% of the routing's time (BENCHMARKS.md, eighteenth session).
fn write_routed(path: &Path, df: &mut DataFrame) -> Result<(), IngestError> {
    let categories: Vec<PlSmallStr> = df
        .columns()
        .iter()
        .filter(|c| c.dtype().is_categorical())
        .map(|c| c.name().clone())
        .collect();
    for name in categories {
        let ids = df
            .column(&name)
            .map_err(pe("routing rows"))?
            .to_physical_repr();
        df.with_column(ids).map_err(pe("routing rows"))?;
    }
    let mut file = crate::direct::DirectWriter::create(path).map_err(|e| io_err(path, e))?;
    IpcWriter::new(&mut file)
        .with_compression(Some(IpcCompression::LZ4))
        .finish(df)
        .map_err(|e| io_err(path, e))?;
    file.finish().map_err(|e| io_err(path, e))
}

/// Reads the files written by [`write_routed`] as one query, in the order given, with the
/// columns of `schema` (the categories' ids, spilled as integers, become categories again).
/// The files are read when the query runs, past the page cache ([`crate::direct`]), each
/// decoded from memory, on twice as many threads as cores (some wait on the device while
/// others decode).
fn scan_routed(paths: &[PathBuf], schema: &Schema) -> Result<LazyFrame, IngestError> {
    let empty = DataFrame::empty_with_schema(schema);
    if paths.is_empty() {
        return Ok(empty.lazy());
    }
    let spilled: Schema = schema
        .iter()
        .map(|(name, dtype)| {
            let dtype = match dtype.is_categorical() {
                true => DataType::UInt32,
                false => dtype.clone(),
            };
            (name.clone(), dtype)
        })
        .collect();
    let (paths, schema) = (paths.to_vec(), std::sync::Arc::new(schema.clone()));
    let read_schema = schema.clone();
    let read = move |_: DataFrame| -> PolarsResult<DataFrame> {
        let threads = 2 * crate::threads::workers();
        let parts =
            crate::threads::map_interleaved(paths.len(), threads, |i| read_routed_file(&paths[i]));
        let mut all = DataFrame::empty_with_schema(&spilled);
        for part in parts {
            all.vstack_mut_owned(part?)?;
        }
        let columns = all
            .columns()
            .iter()
            .zip(read_schema.iter())
            .map(|(c, (_, dtype))| match dtype.is_categorical() {
                true => crate::ingest::categorical_column(c.u32()?.clone(), dtype),
                false => Ok(c.clone()),
            })
            .collect::<PolarsResult<Vec<Column>>>()?;
        DataFrame::new(all.height(), columns)
    };
    let out = schema.clone();
    // No optimisation may push a filter, a projection or a slice into the empty frame the
    // reading ignores.
    Ok(empty.lazy().map(
        read,
        AllowedOptimizations::empty(),
        Some(std::sync::Arc::new(move |_: &Schema| Ok(out.clone()))),
        Some("routed rows"),
    ))
}

/// One file written by [`write_routed`], read past the page cache and decoded from memory. An
/// error names the file; a reader that panics on its bytes is an unreadable file, not a crash.
fn read_routed_file(path: &Path) -> PolarsResult<DataFrame> {
    let shown = path.display();
    let failed = |e: &dyn std::fmt::Display| polars_err!(ComputeError: "reading the spill file {shown}: {e}");
    let bytes = crate::direct::read(path).map_err(|e| failed(&e))?;
    let decoded = std::panic::catch_unwind(|| IpcReader::new(std::io::Cursor::new(bytes)).finish());
    match decoded {
        Ok(read) => read.map_err(|e| failed(&e)),
        Err(panic) => Err(failed(&panic_message(
            &*panic,
            "the Arrow IPC reader stopped",
        ))),
    }
}

/// The message a panic carried (`otherwise` when it carried none).
fn panic_message(panic: &(dyn std::any::Any + Send), otherwise: &str) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| otherwise.into())
}

/// One partition's rows of both tables, as queries over its spill files in input order.
pub struct Partition {
    pub decisions: LazyFrame,
    pub verdicts: LazyFrame,
}

/// Routes every row of both tables to its partition's files under `dir` (`decisions/<k>/` and
/// `verdicts/<k>/`, one file per chunk read, numbered in input order) and returns the
/// partitions' queries. Reads each input file once, in chunks of about 2^20 rows.
pub fn route(
    scanned: Scanned,
    partitions: usize,
    dir: &Path,
) -> Result<Vec<Partition>, IngestError> {
    let mut per_table: Vec<Vec<LazyFrame>> = Vec::with_capacity(2);
    let (dec_files, ver_files) = (
        scanned.file_rows(Table::Decisions),
        scanned.file_rows(Table::Verdicts),
    );
    let tables = [
        ("decisions", dec_files, scanned.decisions),
        ("verdicts", ver_files, scanned.verdicts),
    ];
    for (table, files, frames) in tables {
        let root = dir.join(table);
        for k in 0..partitions {
            let d = root.join(k.to_string());
            std::fs::create_dir_all(&d).map_err(|e| io_err(&d, e))?;
        }
        let mut schema: Option<Schema> = None;
        let mut written: Vec<Vec<PathBuf>> = vec![Vec::new(); partitions];
        let mut seq = 0u64;
        let (mut reading, mut writing) = (0f64, 0f64);
        for (i, mut lf) in frames.into_iter().enumerate() {
            // The query's file: its index (as `__file`) and its path, to name it in errors.
            let file = files.get(i).map(|&(file, _)| file);
            let path = file
                .and_then(|f| scanned.files.get(f as usize))
                .map_or(table, |f| f.path.as_str());
            let unreadable = |detail: String| IngestError::Unreadable {
                path: path.to_string(),
                detail,
            };
            let Some(file) = file else {
                return Err(unreadable("a query without its file".into()));
            };
            if schema.is_none() {
                let mut read = lf
                    .collect_schema()
                    .map_err(|e| unreadable(e.to_string()))?
                    .as_ref()
                    .clone();
                // The rows' file and row, added to each chunk (`with_positions`).
                read.insert("__file".into(), DataType::UInt32);
                read.insert("__row".into(), IDX_DTYPE);
                schema = Some(read);
            }
            let mut first_row = 0u64;
            // The streaming engine reads the file once, in order, and hands over chunks of
            // about 2^20 rows; the chunks are split here while the next ones are decoded.
            let (send, chunks) = std::sync::mpsc::sync_channel::<DataFrame>(1);
            let sink = lf
                .sink_batches(
                    PlanCallback::new(move |df: DataFrame| Ok(send.send(df).is_err())),
                    true,
                    std::num::NonZeroUsize::new(ROUTE_CHUNK_ROWS),
                )
                .map_err(|e| unreadable(e.to_string()))?;
            let reader =
                std::thread::spawn(move || sink.collect_with_engine(Engine::Streaming).map(|_| ()));
            let mut wait = std::time::Instant::now();
            let mut failed = None;
            for chunk in chunks {
                reading += wait.elapsed().as_secs_f64();
                let t = std::time::Instant::now();
                let rows = chunk.height() as u64;
                let routed = with_positions(chunk, file, first_row)
                    .and_then(|chunk| split_chunk(&chunk, partitions, &root, seq, &mut written));
                first_row += rows;
                if let Err(e) = routed {
                    // Leaving the loop drops the receiver, which stops the reader.
                    failed = Some(e);
                    break;
                }
                seq += 1;
                writing += t.elapsed().as_secs_f64();
                wait = std::time::Instant::now();
            }
            // A reader that panicked on the file's contents is an unreadable file, not a
            // crash.
            let read = reader.join().unwrap_or_else(|panic| {
                let what = panic_message(&*panic, "the Parquet reader stopped");
                Err(PolarsError::ComputeError(what.into()))
            });
            if let Some(e) = failed {
                return Err(e);
            }
            read.map_err(|e| unreadable(e.to_string()))?;
        }
        mark(&format!(
            "{table} routed to {partitions} partitions ({reading:.1} s reading, {writing:.1} s writing)"
        ));
        let schema = schema.unwrap_or_default();
        per_table.push(
            written
                .iter()
                .map(|paths| scan_routed(paths, &schema))
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    let verdicts = per_table.pop().unwrap_or_default();
    let decisions = per_table.pop().unwrap_or_default();
    Ok(decisions
        .into_iter()
        .zip(verdicts)
        .map(|(decisions, verdicts)| Partition {
            decisions,
            verdicts,
        })
        .collect())
}

/// `chunk`, rows `first..` of file `file`, with each row's `__file` and `__row`.
fn with_positions(mut chunk: DataFrame, file: u32, first: u64) -> Result<DataFrame, IngestError> {
    let n = chunk.height();
    let end = first + n as u64;
    // The last row, `end - 1`, must be a row index.
    if end > IdxSize::MAX as u64 + 1 {
        return Err(pe("routing rows")(polars_err!(
            ComputeError: "a file with more than {} rows", IdxSize::MAX as u64 + 1
        )));
    }
    let rows: Vec<IdxSize> = (first..end).map(|r| r as IdxSize).collect();
    chunk
        .with_column(UInt32Chunked::full("__file".into(), file, n).into_column())
        .map_err(pe("routing rows"))?;
    chunk
        .with_column(IdxCa::from_vec("__row".into(), rows).into_column())
        .map_err(pe("routing rows"))?;
    Ok(chunk)
}

/// Writes each partition's rows of one chunk (in their order) to `root/<k>/<seq>.arrow`.
fn split_chunk(
    chunk: &DataFrame,
    partitions: usize,
    root: &Path,
    seq: u64,
    written: &mut [Vec<PathBuf>],
) -> Result<(), IngestError> {
    if chunk.height() == 0 {
        return Ok(());
    }
    let ids = chunk
        .column("decision_id")
        .map_err(pe("routing rows"))?
        .str()
        .map_err(pe("routing rows"))?;
    // One chunk per column, so that each partition's take does not concatenate them again.
    let mut chunk = chunk.clone();
    chunk.rechunk_mut_par();
    let chunk = &chunk;
    let mut rows: Vec<Vec<IdxSize>> = vec![Vec::new(); partitions];
    for (i, id) in ids.iter().enumerate() {
        let k = id.map_or(0, |id| partition_of(id, partitions));
        rows[k].push(i as IdxSize);
    }
    let jobs: Vec<(usize, Vec<IdxSize>)> = rows
        .into_iter()
        .enumerate()
        .filter(|(_, r)| !r.is_empty())
        .collect();
    // Several writers (twice as many as cores: a direct write waits on the device): the take
    // and the writing of one partition run beside another's.
    let results = crate::threads::map_interleaved(jobs.len(), 2 * crate::threads::workers(), |i| {
        let (k, idx) = &jobs[i];
        let mut part = take_rows(chunk, idx).map_err(pe("routing rows"))?;
        let path = root.join(k.to_string()).join(format!("{seq:010}.arrow"));
        write_routed(&path, &mut part)?;
        Ok::<_, IngestError>((*k, path))
    });
    for r in results {
        let (k, path) = r?;
        written[k].push(path);
    }
    Ok(())
}

/// The rows `idx` of `chunk` (one chunk per column), in that order. Lists of strings and of
/// ids (the cited techniques, as read) are gathered here, through their offsets and one gather
/// of their values; polars' own list gather, element by element, was a fifth of the routing's
/// time (BENCHMARKS.md).
fn take_rows(chunk: &DataFrame, idx: &[IdxSize]) -> PolarsResult<DataFrame> {
    let rows = IdxCa::from_vec("i".into(), idx.to_vec());
    let columns = chunk
        .columns()
        .iter()
        .map(|c| {
            let lists = c.list().ok().and_then(|ca| take_lists(ca, idx));
            match lists {
                Some(taken) => taken.map(|ca| ca.into_column()),
                None => c.take(&rows),
            }
        })
        .collect::<PolarsResult<Vec<Column>>>()?;
    DataFrame::new(idx.len(), columns)
}

/// The rows `idx` of a one-chunk column of lists of strings or of 32-bit ids: the new offsets
/// from the rows' lengths, the values of the rows' ranges gathered at once, the validity bit by
/// bit. `None` for another column (several chunks, or lists of something else), which polars
/// gathers.
fn take_lists(ca: &ListChunked, idx: &[IdxSize]) -> Option<PolarsResult<ListChunked>> {
    let [arr] = ca.chunks().as_slice() else {
        return None;
    };
    let arr = arr.as_any().downcast_ref::<ListArray<i64>>()?;
    match arr.values().dtype() {
        ArrowDataType::Utf8View | ArrowDataType::UInt32 => Some(gather_lists(ca, arr, idx)),
        _ => None,
    }
}

fn gather_lists(
    ca: &ListChunked,
    arr: &ListArray<i64>,
    idx: &[IdxSize],
) -> PolarsResult<ListChunked> {
    let offsets = arr.offsets().buffer();
    let len = arr.len();
    let mut new_offsets = Vec::with_capacity(idx.len() + 1);
    new_offsets.push(0i64);
    let mut inner: Vec<IdxSize> = Vec::new();
    for &i in idx {
        let i = i as usize;
        polars_ensure!(i < len, OutOfBounds: "row {i} of a list column of {len} rows");
        // A null list keeps no values (its range may still cover some).
        let (a, b) = match arr.is_valid(i) {
            true => (offsets[i], offsets[i + 1]),
            false => (0, 0),
        };
        polars_ensure!(
            b as u64 <= IdxSize::MAX as u64,
            ComputeError: "a list column of more than {} values", IdxSize::MAX
        );
        inner.extend((a..b).map(|k| k as IdxSize));
        new_offsets.push(new_offsets[new_offsets.len() - 1] + (b - a));
    }
    let values = Series::try_from((PlSmallStr::EMPTY, arr.values().clone()))?
        .take(&IdxCa::from_vec("".into(), inner))?
        .rechunk();
    let values: Box<dyn Array> = match values.chunks().first() {
        Some(a) => a.clone(),
        None => arr.values().sliced(0, 0),
    };
    let validity = arr
        .validity()
        .map(|v| idx.iter().map(|&i| v.get_bit(i as usize)).collect());
    let taken = ListArray::<i64>::try_new(
        arr.dtype().clone(),
        new_offsets.try_into()?,
        values,
        validity,
    )?;
    Ok(ListChunked::with_chunk_like(ca, taken))
}

/// Splits a table sorted by its period key (`period` or `day`, an Int32 column) into one slice
/// per value of that key.
pub(crate) fn split_by_period(
    df: &DataFrame,
    key: &str,
) -> Result<Vec<(i32, DataFrame)>, IngestError> {
    let keys = df.column(key).map_err(pe(key))?.i32().map_err(pe(key))?;
    let mut out = Vec::new();
    let mut start = 0usize;
    let mut current: Option<i32> = None;
    for (i, k) in keys.iter().enumerate() {
        let k = k.unwrap_or(i32::MIN);
        match current {
            Some(c) if c == k => {}
            Some(c) => {
                out.push((c, df.slice(start as i64, i - start)));
                start = i;
                current = Some(k);
            }
            None => current = Some(k),
        }
    }
    if let Some(c) = current {
        out.push((c, df.slice(start as i64, df.height() - start)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spill_files_are_read_back_a_row_group_at_a_time() {
        // Three row groups (two full, one short), and a file of one.
        let dir =
            std::env::temp_dir().join(format!("readiness-test-spill-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for rows in [2 * 262_144 + 1_000, 10] {
            let df = df!(
                "period" => (0..rows as i32).map(|i| i / 100_000).collect::<Vec<_>>(),
                "action_class" => (0..rows).map(|i| ["a", "b", "c"][i % 3]).collect::<Vec<_>>(),
                "n" => (0..rows as u64).collect::<Vec<_>>(),
            )
            .unwrap();
            let path = dir.join(format!("{rows}.parquet"));
            write_spill(&path, &df).unwrap();
            let calls = std::sync::atomic::AtomicUsize::new(0);
            let read = read_spill(&path, |part| {
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                assert!(part.height() <= 262_144, "{} rows at once", part.height());
                Ok(part)
            })
            .unwrap();
            assert!(read.equals(&df), "{rows} rows");
            let groups = if rows > 10 { 3 } else { 1 };
            assert_eq!(calls.into_inner(), groups, "{rows} rows");
            // What `each` makes of a row group is what is kept: each group's first row.
            let firsts = read_spill(&path, |part| Ok(part.head(Some(1)))).unwrap();
            let want: Vec<Option<u64>> = (0..groups as u64).map(|g| Some(g * 262_144)).collect();
            assert_eq!(firsts.column("n").unwrap().u64().unwrap().to_vec(), want);
            // An error of `each` names the file.
            let err = read_spill(&path, |_| polars_bail!(ComputeError: "no")).unwrap_err();
            assert!(
                err.to_string().contains(&format!("{rows}.parquet")),
                "{err}"
            );
        }
        // A file without rows.
        let empty = df!("n" => Vec::<u64>::new()).unwrap();
        let path = dir.join("empty.parquet");
        write_spill(&path, &empty).unwrap();
        assert_eq!(read_spill(&path, Ok).unwrap().height(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn routed_files_are_read_back_in_order_and_a_missing_one_is_named() {
        let dir =
            std::env::temp_dir().join(format!("readiness-test-routed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let class = crate::ingest::categorical("action_class").unwrap();
        let frame = |ids: &[&str], classes: &[&str]| {
            let classes = Column::new("action_class".into(), classes);
            DataFrame::new(
                ids.len(),
                vec![
                    Column::new("decision_id".into(), ids),
                    crate::ingest::to_categories(classes, &class).unwrap(),
                    Column::new("n".into(), (0..ids.len() as i64).collect::<Vec<_>>()),
                ],
            )
            .unwrap()
        };
        // Files of several sizes (one past a direct transfer's block), one of them empty.
        let many: Vec<String> = (0..5000).map(|i| format!("d{i:07}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let classes: Vec<&str> = (0..5000)
            .map(|i| ["isolate_host", "tag_alert"][i % 2])
            .collect();
        let frames = [
            frame(&["a", "b"], &["tag_alert", "block_ip"]),
            frame(&[], &[]),
            frame(&many, &classes),
        ];
        let schema = frames[0].schema().as_ref().clone();
        let mut paths = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            let path = dir.join(format!("{i}.arrow"));
            write_routed(&path, &mut f.clone()).unwrap();
            paths.push(path);
        }
        let read = scan_routed(&paths, &schema).unwrap().collect().unwrap();
        let mut want = frames[0].clone();
        for f in &frames[1..] {
            want.vstack_mut(f).unwrap();
        }
        assert_eq!(read.schema(), want.schema());
        assert!(read.equals_missing(&want), "{read} against {want}");
        std::fs::remove_file(&paths[2]).unwrap();
        let err = scan_routed(&paths, &schema)
            .unwrap()
            .collect()
            .unwrap_err()
            .to_string();
        assert!(err.contains("2.arrow"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_panic_is_told_by_its_message() {
        let caught = |f: fn()| std::panic::catch_unwind(f).unwrap_err();
        let (text, formatted, other) = (
            caught(|| panic!("bad page")),
            caught(|| panic!("bad page {}", 7)),
            caught(|| std::panic::panic_any(7u8)),
        );
        assert_eq!(panic_message(&*text, "none"), "bad page");
        assert_eq!(panic_message(&*formatted, "none"), "bad page 7");
        assert_eq!(panic_message(&*other, "none"), "none");
    }

    #[test]
    fn rows_are_taken_as_polars_takes_them() {
        // Lists of strings with null lists, empty lists, null elements and strings too long to
        // sit in their views; a second column gathered by polars; rows repeated, reordered and
        // none at all.
        let lists: Vec<Option<Series>> = (0..200usize)
            .map(|i| {
                (i % 11 != 3).then(|| {
                    let items: Vec<Option<String>> = (0..i % 4)
                        .map(|k| {
                            (k != 2 || i % 5 != 0).then(|| match (i + k) % 3 {
                                0 => format!("T{}", 1000 + i),
                                1 => format!("a-much-longer-technique-spelling-{i}-{k}"),
                                _ => String::new(),
                            })
                        })
                        .collect();
                    Series::new("".into(), items)
                })
            })
            .collect();
        let mut techniques: ListChunked = lists.into_iter().collect();
        techniques.rename("technique_ids".into());
        let ids = crate::ingest::technique_codes(&techniques.clone().into_column()).unwrap();
        // The same lists as strings and as the ids they are read as.
        for techniques in [techniques.into_column(), ids] {
            rows_of_lists_are_taken_as_polars_takes_them(techniques);
        }
    }

    fn rows_of_lists_are_taken_as_polars_takes_them(techniques: Column) {
        let n = techniques.len();
        let chunk = DataFrame::new(
            n,
            vec![
                Column::new("row".into(), (0..n as u32).collect::<Vec<u32>>()),
                techniques,
            ],
        )
        .unwrap();
        assert_eq!(chunk.column("technique_ids").unwrap().n_chunks(), 1);
        let lists = chunk.column("technique_ids").unwrap().list().unwrap();
        assert!(take_lists(lists, &[1, 0]).is_some(), "gathered here");
        for idx in [
            (0..n as IdxSize).rev().step_by(3).collect::<Vec<_>>(),
            vec![5, 5, 3, 199, 0, 3],
            Vec::new(),
        ] {
            let ours = take_rows(&chunk, &idx).unwrap();
            let theirs = chunk
                .take(&IdxCa::from_vec("i".into(), idx.clone()))
                .unwrap();
            assert_eq!(ours.schema(), theirs.schema());
            assert!(
                ours.equals_missing(&theirs),
                "{idx:?}: {ours} against {theirs}"
            );
        }
        // A slice (its list offsets no longer start at 0), as the routing's batches are.
        let sliced = chunk.slice(37, 120);
        let lists = sliced
            .column("technique_ids")
            .unwrap()
            .list()
            .unwrap()
            .clone();
        assert_ne!(lists.downcast_iter().next().unwrap().offsets().first(), &0);
        for idx in [vec![0, 119, 5, 5], (0..120).rev().collect()] {
            let ours = take_rows(&sliced, &idx).unwrap();
            let theirs = sliced.take(&IdxCa::from_vec("i".into(), idx)).unwrap();
            assert!(ours.equals_missing(&theirs));
        }
        // Null lists whose ranges still cover strings (a validity laid over full lists).
        let full = chunk
            .column("technique_ids")
            .unwrap()
            .list()
            .unwrap()
            .clone();
        let arr = full.downcast_iter().next().unwrap().clone();
        let validity: polars_arrow::bitmap::Bitmap = (0..n).map(|i| i % 7 != 1).collect();
        let covered = ListChunked::with_chunk_like(&full, arr.with_validity(Some(validity)));
        let frame = DataFrame::new(n, vec![covered.into_column()]).unwrap();
        let idx: Vec<IdxSize> = (0..n as IdxSize).rev().collect();
        let ours = take_rows(&frame, &idx).unwrap();
        let theirs = frame.take(&IdxCa::from_vec("i".into(), idx)).unwrap();
        assert!(ours.equals_missing(&theirs));
        let lists_only = chunk.select(["technique_ids"]).unwrap();
        assert!(
            take_rows(&lists_only, &[n as IdxSize]).is_err(),
            "a row past the end"
        );
    }

    #[test]
    fn routed_chunks_carry_their_file_and_rows_counted_from_the_first() {
        let chunk = df!("decision_id" => ["a", "b", "c"]).unwrap();
        let routed = with_positions(chunk.clone(), 4, 0).unwrap();
        let next = with_positions(chunk, 4, 3).unwrap();
        let column = |df: &DataFrame, name: &str| -> Vec<u64> {
            let c = df.column(name).unwrap().cast(&DataType::UInt64).unwrap();
            c.u64().unwrap().iter().flatten().collect()
        };
        assert_eq!(column(&routed, "__file"), [4, 4, 4]);
        assert_eq!(column(&routed, "__row"), [0, 1, 2]);
        assert_eq!(column(&next, "__row"), [3, 4, 5]);
        assert_eq!(routed.column("__file").unwrap().dtype(), &DataType::UInt32);
        assert_eq!(routed.column("__row").unwrap().dtype(), &IDX_DTYPE);
        // The last row of a file must be a row index.
        let last = IdxSize::MAX as u64;
        let at_end = with_positions(df!("decision_id" => ["a", "b", "c"]).unwrap(), 4, last - 2);
        assert_eq!(
            column(&at_end.unwrap(), "__row"),
            [last - 2, last - 1, last]
        );
        let past = with_positions(df!("decision_id" => ["a", "b", "c"]).unwrap(), 4, last - 1);
        assert!(past.is_err());
    }

    #[test]
    fn spill_directories_of_dead_runs_are_removed_and_live_ones_kept() {
        let base = std::env::temp_dir().join(format!("readiness-stale-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        // No process has a pid above Linux's maximum of 2^22.
        let dead = base.join("readiness-spill-99999999-0");
        let live = base.join(format!("readiness-spill-{}-7", std::process::id()));
        let other = base.join("readiness-spill-notes");
        for d in [&dead, &live, &other] {
            std::fs::create_dir_all(d.join("decisions")).unwrap();
        }
        let spill = SpillDir::create(&base).unwrap();
        assert!(!dead.exists(), "a dead run's directory is removed");
        assert!(live.exists(), "a live run's directory is kept");
        assert!(
            other.exists(),
            "a directory not named like a spill directory is kept"
        );
        assert!(spill.path().exists());
        drop(spill);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn partitions_cover_the_working_set() {
        assert_eq!(partitions_for(0, 1 << 30), 1);
        assert_eq!(partitions_for(1 << 30, 1 << 30), 1);
        assert_eq!(partitions_for((1 << 30) + 1, 1 << 30), 2);
        assert_eq!(partitions_for(10 << 30, 3 << 30), 4);
    }

    #[test]
    fn an_id_always_goes_to_the_same_partition() {
        for id in ["a", "dec-000001", "ü"] {
            let k = partition_of(id, 7);
            assert!(k < 7);
            assert_eq!(partition_of(id, 7), k);
        }
        // Ids spread over the partitions.
        let used: std::collections::BTreeSet<usize> = (0..1000)
            .map(|i| partition_of(&format!("dec-{i}"), 8))
            .collect();
        assert_eq!(used.len(), 8);
    }

    #[test]
    fn split_by_period_gives_one_slice_per_run() {
        let df = df!("period" => [1i32, 1, 3, 3, 3, 7], "n" => [1u64, 2, 3, 4, 5, 6]).unwrap();
        let parts = split_by_period(&df, "period").unwrap();
        let shape: Vec<(i32, usize)> = parts.iter().map(|(p, d)| (*p, d.height())).collect();
        assert_eq!(shape, vec![(1, 2), (3, 3), (7, 1)]);
        let empty = df.slice(0, 0);
        assert!(split_by_period(&empty, "period").unwrap().is_empty());
    }
}
