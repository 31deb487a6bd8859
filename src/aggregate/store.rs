//! The statistics set: every table the metrics, signals and oversight load are computed from,
//! as mergeable group-by results.
//!
//! | table | key | measures |
//! |---|---|---|
//! | `suffstats` | `period`, then the other [`super::CELL_KEYS`] | `n`, `sum_conf` … `sum_conf4` (fixed point) |
//! | `confidence` | `period`, `action_class`, `confidence` | `n` |
//! | `daily` | `day`, `action_class`, `target_entity` | `n`, `n_priv_crit`, `sum_conf` (fixed point), `n_reviewed`, `n_disagree` |
//! | `reasoning` | `period`, `action_class`, `model_version` | `n_decisions`, `n_citing`, `n_unknown`, `n_stale` |
//! | `cited` | `period`, `model_version`, `technique_id`, `status` | `decisions` |
//! | `reviews` | `period`, `action_class`, `analyst_id`, `verdict`, `delay_us` | `n` |
//! | `days` | `day` | `n` (every class: the coverage an incremental merge checks) |
//! | `meta` | `key`, `value` | the period granularity, the format version, whether the tables are canonical and the classes without daily rows |
//!
//! The canonical form of a table has one row per key, sorted by the key with the period (or
//! day) first: tables of disjoint periods then merge by ordering whole periods, without a
//! row-level sort or group-by.
//!
//! Every measure is a count or a fixed-point sum, so the table of a union of inputs is the
//! key-wise sum of the tables of its parts: months, partitions of a cluster and engines can be
//! aggregated apart and merged here ([`StatsSet::merge`], [`StatsSet::sum`]). Every run writes
//! its set to `stats/`; `analyze --stats DIR` reads one instead of (or besides) raw inputs, and
//! `readiness aggregate --emit-sql` prints the queries that build it on another engine.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use readiness_metrics::reasoning::AttackCatalog;
use readiness_metrics::Granularity;

use super::period_expr;
use crate::ingest::{mark, pe, resolve, CollectStreaming, IngestError, Ingested, InputFile, Table};
use crate::parquet_writer::ParquetOut;
use crate::partition::{
    io_err, read_in_batches, read_spill, split_by_period, write_spill, SpillDir,
};

mod packed;

/// Microseconds per day.
pub const DAY_US: i64 = 86_400_000_000;

/// Version of the statistics set's layout, recorded in `meta`.
pub const FORMAT_VERSION: &str = "1";

/// Column types of the statistics tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    Str,
    I32,
    I64,
    U64,
    F64,
    Bool,
}

impl Ty {
    fn dtype(self) -> DataType {
        match self {
            Ty::Str => DataType::String,
            Ty::I32 => DataType::Int32,
            Ty::I64 => DataType::Int64,
            Ty::U64 => DataType::UInt64,
            Ty::F64 => DataType::Float64,
            Ty::Bool => DataType::Boolean,
        }
    }

    fn accepts(self, dt: &DataType) -> bool {
        match self {
            Ty::Str => matches!(dt, DataType::String | DataType::Categorical(..)),
            Ty::F64 => matches!(dt, DataType::Float64 | DataType::Float32),
            Ty::Bool => matches!(dt, DataType::Boolean),
            Ty::I32 | Ty::I64 | Ty::U64 => dt.is_integer() || matches!(dt, DataType::Date),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Ty::Str => "string",
            Ty::I32 | Ty::I64 => "integer",
            Ty::U64 => "non-negative integer",
            Ty::F64 => "float64",
            Ty::Bool => "bool",
        }
    }
}

/// One statistics table's layout: key columns (nullable or not), then summed measures.
pub struct Layout {
    pub name: &'static str,
    keys: &'static [(&'static str, Ty, bool)],
    measures: &'static [(&'static str, Ty)],
}

impl Layout {
    /// Whether this is one of the [`LARGE`] tables.
    fn is_large(&self) -> bool {
        LARGE.iter().any(|l| l.name == self.name)
    }

    /// The key column that says which period (or day) a row belongs to: the first key.
    fn period_key(&self) -> &'static str {
        self.keys[0].0
    }

    /// Key column names, in sort order.
    pub fn key_names(&self) -> Vec<&'static str> {
        self.keys.iter().map(|k| k.0).collect()
    }

    /// All column names, keys first.
    pub fn column_names(&self) -> Vec<&'static str> {
        self.keys
            .iter()
            .map(|k| k.0)
            .chain(self.measures.iter().map(|m| m.0))
            .collect()
    }

    /// Sums the measures per key and sorts by the key: the one canonical form of a table,
    /// whatever engine, partitioning or merge order produced it.
    fn canonical(&self, lf: LazyFrame) -> PolarsResult<DataFrame> {
        let keys: Vec<Expr> = self
            .keys
            .iter()
            .map(|(n, t, _)| col(*n).cast(t.dtype()))
            .collect();
        let sums: Vec<Expr> = self
            .measures
            .iter()
            .map(|(n, t)| col(*n).cast(t.dtype()).sum().cast(t.dtype()))
            .collect();
        lf.group_by(keys)
            .agg(sums)
            .sort(
                self.key_names(),
                SortMultipleOptions::default().with_maintain_order(true),
            )
            .collect_streaming()
    }
}

const CELLS: Layout = Layout {
    name: "suffstats",
    keys: &[
        ("period", Ty::I32, false),
        ("action_class", Ty::Str, false),
        ("model_version", Ty::Str, false),
        ("asset_criticality", Ty::Str, false),
        ("privileged", Ty::Bool, false),
        ("cal_bin", Ty::I32, false),
        ("fine_bin", Ty::I32, false),
        ("outcome", Ty::I32, false),
        ("executed", Ty::Bool, true),
    ],
    measures: &[
        ("n", Ty::U64),
        ("sum_conf", Ty::I64),
        ("sum_conf2", Ty::I64),
        ("sum_conf3", Ty::I64),
        ("sum_conf4", Ty::I64),
    ],
};

const CONFIDENCE: Layout = Layout {
    name: "confidence",
    keys: &[
        ("period", Ty::I32, false),
        ("action_class", Ty::Str, false),
        ("confidence", Ty::F64, false),
    ],
    measures: &[("n", Ty::U64)],
};

const DAILY: Layout = Layout {
    name: "daily",
    keys: &[
        ("day", Ty::I32, false),
        ("action_class", Ty::Str, false),
        ("target_entity", Ty::Str, true),
    ],
    measures: &[
        ("n", Ty::U64),
        ("n_priv_crit", Ty::U64),
        ("sum_conf", Ty::I64),
        ("n_reviewed", Ty::U64),
        ("n_disagree", Ty::U64),
    ],
};

const REASONING: Layout = Layout {
    name: "reasoning",
    keys: &[
        ("period", Ty::I32, false),
        ("action_class", Ty::Str, false),
        ("model_version", Ty::Str, false),
    ],
    measures: &[
        ("n_decisions", Ty::U64),
        ("n_citing", Ty::U64),
        ("n_unknown", Ty::U64),
        ("n_stale", Ty::U64),
    ],
};

const CITED: Layout = Layout {
    name: "cited",
    keys: &[
        ("period", Ty::I32, false),
        ("model_version", Ty::Str, false),
        ("technique_id", Ty::Str, false),
        ("status", Ty::Str, false),
    ],
    measures: &[("decisions", Ty::U64)],
};

const REVIEWS: Layout = Layout {
    name: "reviews",
    keys: &[
        ("period", Ty::I32, false),
        ("action_class", Ty::Str, false),
        ("analyst_id", Ty::Str, false),
        ("verdict", Ty::Str, false),
        ("delay_us", Ty::I64, false),
    ],
    measures: &[("n", Ty::U64)],
};

const DAYS: Layout = Layout {
    name: "days",
    keys: &[("day", Ty::I32, false)],
    measures: &[("n", Ty::U64)],
};

/// The layouts of the statistics tables, in file order.
pub const LAYOUTS: [&Layout; 7] = [
    &CELLS,
    &CONFIDENCE,
    &DAILY,
    &REASONING,
    &CITED,
    &REVIEWS,
    &DAYS,
];

/// What the statistics were built with, kept beside them in `meta.parquet`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    pub granularity: Granularity,
    /// Classes without rows in `daily` (the manipulation signature does not watch them).
    pub unwatched: BTreeSet<String>,
}

/// The statistics set (see the module docs).
#[derive(Clone)]
pub struct StatsSet {
    pub meta: Meta,
    pub cells: DataFrame,
    pub confidence: DataFrame,
    pub daily: DataFrame,
    pub reasoning: DataFrame,
    pub cited: DataFrame,
    /// Empty when built without the oversight pass (`drift` does not need it).
    pub reviews: DataFrame,
    /// Decisions per UTC day, every class: what an incremental merge checks coverage with.
    pub days: DataFrame,
    /// Where `confidence` and `reviews` are when a partitioned run left them on disk (those
    /// two fields are then empty); `None` when they are in memory. Read them through
    /// [`StatsSet::for_each_period`].
    pub spilled: Option<Spilled>,
}

/// The value-count tables of a partitioned run on disk: one canonical file per table and
/// period, `<dir>/final/<table>/<period>.parquet`.
#[derive(Clone, Debug)]
pub struct Spilled {
    dir: std::sync::Arc<SpillDir>,
    periods: Vec<i32>,
    /// Periods that may be worked on at once within the memory budget.
    parallel: usize,
}

impl Spilled {
    fn file(&self, table: &str, period: i32) -> std::path::PathBuf {
        self.dir
            .path()
            .join("final")
            .join(table)
            .join(format!("{period}.parquet"))
    }
}

/// Working memory of summing one period of a spilled value-count table, per byte of its parts
/// on disk (Parquet as `src/parquet_writer.rs` writes it, where a value-count row takes 6–9
/// bytes): the parts in memory (24–32 bytes a row with their strings as categories), their
/// string codes and packed keys (20–28), the measures and the summed keys (24), and the result
/// (24–32); the word path for keys over 127 bits needs more, up to about 32 times. Kept at the
/// word path's figure: the cores, not the budget, bound how many periods are summed at once
/// here.
pub const MERGE_BYTES_PER_SPILLED_BYTE: u64 = 32;

/// The value-count tables, one row per distinct value: those a partitioned run sums and keeps
/// on disk, each period apart.
pub const LARGE: [&Layout; 2] = [&CONFIDENCE, &REVIEWS];

/// The running sum of the sets of a partitioned run, added like a counter in base
/// [`SETS_PER_MERGE`]: that many sums of `SETS_PER_MERGE^l` partitions are merged into one sum
/// of the next level, so each partition's rows are merged about `log8(k) + 1` times over `k`
/// partitions instead of once for every later partition, and at most `SETS_PER_MERGE - 1` sums
/// a level are held. Parts are always merged in partition order.
#[derive(Default)]
pub struct BuiltSum {
    /// (level, the sum of `SETS_PER_MERGE^level` consecutive partitions), oldest first.
    stack: Vec<(u32, StatsSet)>,
}

/// The sums of one level that [`BuiltSum`] merges at once. On the generated data the
/// partitions' `daily` rows share few keys (a day, class and target holds about one decision),
/// so merging does not shrink them: in base 2 the seven partitions of 10^8 decisions merged 10
/// million `daily` rows between partitions (1.7 s) before the last merge's 7 million; in base 8
/// only the last merge is left (BENCHMARKS.md, "10^8 decisions, twenty-first session"). The
/// price is up to seven unmerged sets a level held instead of one sum: where partitions do
/// share keys, their tables are held unshrunk until the merge (the median peak at 10^8 rose by
/// about 100 MiB).
pub const SETS_PER_MERGE: usize = 8;

impl BuiltSum {
    /// Adds the next partition's set (see [`StatsSet::sum_built`]).
    pub fn add(&mut self, set: StatsSet) -> Result<(), IngestError> {
        self.stack.push((0, set));
        loop {
            let n = self.stack.len();
            let Some(&(level, _)) = self.stack.last() else {
                break;
            };
            if n < SETS_PER_MERGE || self.stack[n - SETS_PER_MERGE].0 != level {
                break;
            }
            let sets: Vec<StatsSet> = self
                .stack
                .drain(n - SETS_PER_MERGE..)
                .map(|(_, set)| set)
                .collect();
            self.stack.push((level + 1, StatsSet::sum_built(sets)?));
        }
        Ok(())
    }

    /// The sum of every set added, in one merge of the sums held; `None` when none was.
    pub fn total(self) -> Result<Option<StatsSet>, IngestError> {
        let sets: Vec<StatsSet> = self.stack.into_iter().map(|(_, set)| set).collect();
        if sets.is_empty() {
            return Ok(None);
        }
        StatsSet::sum_built(sets).map(Some)
    }
}

impl StatsSet {
    fn tables(&self) -> [&DataFrame; 7] {
        [
            &self.cells,
            &self.confidence,
            &self.daily,
            &self.reasoning,
            &self.cited,
            &self.reviews,
            &self.days,
        ]
    }

    /// The tables, moved out, in [`LAYOUTS`] order.
    fn into_tables(self) -> Vec<DataFrame> {
        vec![
            self.cells,
            self.confidence,
            self.daily,
            self.reasoning,
            self.cited,
            self.reviews,
            self.days,
        ]
    }

    fn from_tables(meta: Meta, mut t: Vec<DataFrame>) -> StatsSet {
        let days = t.pop().unwrap_or_default();
        let reviews = t.pop().unwrap_or_default();
        let cited = t.pop().unwrap_or_default();
        let reasoning = t.pop().unwrap_or_default();
        let daily = t.pop().unwrap_or_default();
        let confidence = t.pop().unwrap_or_default();
        let cells = t.pop().unwrap_or_default();
        StatsSet {
            meta,
            cells,
            confidence,
            daily,
            reasoning,
            cited,
            reviews,
            days,
            spilled: None,
        }
    }

    /// Builds the set from validated raw inputs, in native passes (see `super::build`), taking
    /// them so that their columns are dropped as soon as they have been read.
    /// `unwatched` classes get no `daily` rows;
    /// `with_reviews` adds the per-verdict `reviews` table.
    pub fn build(
        ing: Ingested,
        granularity: Granularity,
        catalog: &AttackCatalog,
        unwatched: &BTreeSet<String>,
        with_reviews: bool,
    ) -> Result<StatsSet, IngestError> {
        let (tables, reviews) =
            super::build::tables(ing, granularity, catalog, unwatched, with_reviews)?;
        mark("statistics built");
        let [cells, confidence, daily, reasoning, cited, days]: [DataFrame; 6] = tables
            .try_into()
            .map_err(|_| pe("statistics")(PolarsError::NoData("a table".into())))?;
        Ok(StatsSet {
            meta: Meta {
                granularity,
                unwatched: unwatched.clone(),
            },
            cells,
            confidence,
            daily,
            reasoning,
            cited,
            reviews: reviews.unwrap_or_else(|| empty(&REVIEWS)),
            days,
            spilled: None,
        })
    }

    /// Periods present in this set (from its cell statistics).
    pub fn periods(&self) -> Result<BTreeSet<i32>, IngestError> {
        let p = self
            .cells
            .column("period")
            .map_err(pe("statistics"))?
            .i32()
            .map_err(pe("statistics"))?;
        Ok(p.iter().flatten().collect())
    }

    /// Incremental merge: the stored set (`self`, closed periods) and a set built from new
    /// inputs. Periods the new set contains replace the stored ones (a re-supplied open month
    /// counts once); all other stored periods are kept. Both must share the granularity, and
    /// every class the stored set has no daily rows for must still be unwatched.
    pub fn merge(self, new: StatsSet) -> Result<StatsSet, IngestError> {
        let new = new.into_memory()?;
        self.check_replacement(&new)?;
        let new_periods = new.periods()?;
        let granularity = new.meta.granularity;
        let mut merged = Vec::with_capacity(LAYOUTS.len());
        for (layout, (old, newer)) in LAYOUTS
            .iter()
            .zip(self.tables().into_iter().zip(new.tables()))
        {
            let table = TableMerge {
                layout,
                old,
                newer,
                new_periods: &new_periods,
                granularity,
                unwatched: (layout.name == DAILY.name).then_some(&new.meta.unwatched),
            };
            let both = match table.stacked()? {
                Some(both) => both,
                None => table.by_query()?,
            };
            merged.push(both);
        }
        Ok(StatsSet::from_tables(new.meta, merged))
    }

    /// A stored period the new inputs touch is replaced as a whole, so the new inputs must hold
    /// every day the stored statistics have in it (a complete re-delivery); otherwise those
    /// days would be lost, e.g. a weekly period that straddles the boundary of two monthly
    /// deliveries. The error names the period and the days.
    fn check_replacement(&self, new: &StatsSet) -> Result<(), IngestError> {
        let g = new.meta.granularity;
        let days_of = |df: &DataFrame| -> Result<BTreeSet<i32>, IngestError> {
            Ok(df
                .column("day")
                .map_err(pe("days"))?
                .i32()
                .map_err(pe("days"))?
                .iter()
                .flatten()
                .collect())
        };
        let (stored, newer) = (days_of(&self.days)?, days_of(&new.days)?);
        let new_periods = new.periods()?;
        let missing: Vec<i32> = stored
            .iter()
            .copied()
            .filter(|d| new_periods.contains(&g.period_of(*d).start) && !newer.contains(d))
            .collect();
        if let Some(first) = missing.first() {
            let period = g.period_of(*first);
            let date = |d: i32| readiness_metrics::Period { start: d }.date_string();
            return Err(IngestError::Io {
                path: "--stats".into(),
                detail: format!(
                    "the new inputs touch the {} starting {} but lack {} of its days that the stored statistics hold (first {}, last {}); a stored period is replaced whole: give the whole period in the new inputs, or aggregate the stored statistics up to a period boundary",
                    g.as_str(),
                    period.date_string(),
                    missing.len(),
                    date(*first),
                    date(*missing.last().unwrap_or(first)),
                ),
            });
        }
        Ok(())
    }

    /// The key-wise sum of two sets that [`StatsSet::build`] made from disjoint rows of one run
    /// (two partitions): their tables are canonical, so each pair is summed by a merge of the
    /// sorted tables instead of a group-by of their union. Gives what [`StatsSet::sum`] gives.
    pub fn add_built(self, other: StatsSet) -> Result<StatsSet, IngestError> {
        StatsSet::sum_built(vec![self, other])
    }

    /// [`StatsSet::add_built`] of any number of sets (none is an error), each table in one
    /// merge of all the sets' tables, in ranges of its first key (a period or a day) summed on
    /// all cores side by side.
    pub fn sum_built(sets: Vec<StatsSet>) -> Result<StatsSet, IngestError> {
        let Some(first) = sets.first() else {
            return StatsSet::sum(sets);
        };
        if sets
            .iter()
            .any(|s| s.meta != first.meta || s.spilled.is_some())
        {
            return StatsSet::sum(sets);
        }
        let meta = first.meta.clone();
        let mut columns: Vec<Vec<DataFrame>> = LAYOUTS.iter().map(|_| Vec::new()).collect();
        for set in sets {
            for (column, table) in columns.iter_mut().zip(set.into_tables()) {
                column.push(table);
            }
        }
        let tables = LAYOUTS
            .iter()
            .zip(columns)
            .map(|(layout, parts)| merge_in_ranges(layout, parts))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(StatsSet::from_tables(meta, tables))
    }

    /// The key-wise sum of sets built from disjoint parts of the input (partitions of a
    /// cluster, or months aggregated apart). All parts must share their meta data.
    pub fn sum(parts: Vec<StatsSet>) -> Result<StatsSet, IngestError> {
        let mut parts = parts
            .into_iter()
            .map(StatsSet::into_memory)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter();
        let Some(first) = parts.next() else {
            return Err(IngestError::Empty {
                detail: "no statistics given".into(),
            });
        };
        let rest: Vec<StatsSet> = parts.collect();
        if rest.is_empty() {
            return Ok(first);
        }
        let mut meta = first.meta.clone();
        for part in &rest {
            if part.meta.granularity != meta.granularity {
                return Err(IngestError::Io {
                    path: "--stats".into(),
                    detail: format!(
                        "statistics per {} and per {} cannot be summed",
                        meta.granularity.as_str(),
                        part.meta.granularity.as_str()
                    ),
                });
            }
            // A class one part has no daily rows for has none in the sum either.
            meta.unwatched.extend(part.meta.unwatched.iter().cloned());
        }
        let mut merged = Vec::with_capacity(LAYOUTS.len());
        for (i, layout) in LAYOUTS.iter().enumerate() {
            let frames: Vec<LazyFrame> = std::iter::once(&first)
                .chain(rest.iter())
                .map(|s| s.tables()[i].clone().lazy())
                .collect();
            let all = concat(frames, UnionArgs::default()).map_err(pe(layout.name))?;
            merged.push(layout.canonical(all).map_err(pe(layout.name))?);
        }
        let mut sum = StatsSet::from_tables(meta, merged);
        let unwatched: Vec<&str> = sum.meta.unwatched.iter().map(String::as_str).collect();
        let skip = lit(Series::new("u".into(), unwatched)).implode(false);
        sum.daily = sum
            .daily
            .lazy()
            .filter(col("action_class").is_in(skip, false).not())
            .collect()
            .map_err(pe("daily"))?;
        Ok(sum)
    }

    /// Writes the set as `<table>.parquet` files at the paths `path_of` gives for
    /// `stats/<table>.parquet` (Parquet, each column encoded for its values: see
    /// `src/parquet_writer.rs`). The value-count tables are written one
    /// period at a time, in row groups that do not cross a period, so a set in memory and the
    /// same set spilled by a partitioned run give the same bytes.
    pub fn write(
        &self,
        mut path_of: impl FnMut(&str) -> Result<std::path::PathBuf, crate::pipeline::RunError>,
    ) -> Result<(), crate::pipeline::RunError> {
        // The files are independent: they are written on two threads, the large value-count
        // tables first (each file's bytes do not depend on the order).
        type WriteTask<'s> = super::build::Task<'s, Result<(), IngestError>>;
        let (mut large, mut small): (Vec<WriteTask>, Vec<WriteTask>) = (Vec::new(), Vec::new());
        for (layout, df) in LAYOUTS.iter().zip(self.tables()) {
            let path = path_of(&format!("stats/{}.parquet", layout.name))?;
            if layout.is_large() {
                large.push(Box::new(move || self.write_large(layout, &path)));
            } else {
                small.push(Box::new(move || {
                    write_rows(layout, &path, |writer| writer.write_sliced(df))
                }));
            }
        }
        large.append(&mut small);
        super::build::run_on(large, 2)
            .into_iter()
            .collect::<Result<Vec<()>, IngestError>>()?;
        let path = path_of("stats/meta.parquet")?;
        crate::parquet_writer::write_frame(&path, &self.meta.to_frame(), true)?;
        Ok(())
    }

    /// Writes a [`LARGE`] table one period at a time. The periods a partitioned run summed on
    /// disk are copied row group by row group ([`ParquetOut::append`]): at 10^8 decisions the
    /// metrics and the set's files took 3.5 s with the periods read and encoded again, 1.0 s
    /// with them copied (BENCHMARKS.md, "10^8 decisions, twenty-first session").
    fn write_large(&self, layout: &Layout, path: &Path) -> Result<(), IngestError> {
        write_rows(layout, path, |writer| match &self.spilled {
            None => self.for_each_period(layout.name, |df| writer.write_sliced(&df)),
            Some(spilled) => {
                for p in &spilled.periods {
                    let file = spilled.file(layout.name, *p);
                    if file.exists() {
                        writer.append(&file)?;
                    }
                }
                Ok(())
            }
        })
    }

    fn table(&self, name: &str) -> &DataFrame {
        match name {
            "confidence" => &self.confidence,
            _ => &self.reviews,
        }
    }

    fn table_mut(&mut self, name: &str) -> &mut DataFrame {
        match name {
            "confidence" => &mut self.confidence,
            _ => &mut self.reviews,
        }
    }

    /// Calls `f` with the rows of a [`LARGE`] table (`confidence` or `reviews`), one period at
    /// a time in period order, each in canonical order: from memory, or from disk when a
    /// partitioned run spilled them. Periods read from disk keep their strings:
    /// [`StatsSet::into_memory`] stacks them under the layout's string columns. (The set's
    /// files copy a spilled period's row groups instead: `StatsSet::write_large`.)
    pub fn for_each_period(
        &self,
        name: &str,
        mut f: impl FnMut(DataFrame) -> Result<(), IngestError>,
    ) -> Result<(), IngestError> {
        match &self.spilled {
            Some(spilled) => {
                for p in &spilled.periods {
                    let path = spilled.file(name, *p);
                    if !path.exists() {
                        continue;
                    }
                    f(read_spill(&path, Ok)?)?;
                }
                Ok(())
            }
            None => {
                for (_, slice) in split_by_period(self.table(name), "period")? {
                    f(slice)?;
                }
                Ok(())
            }
        }
    }

    /// Applies `f` to the rows of a [`LARGE`] table one period at a time, as
    /// [`StatsSet::for_each_period`] gives them, with the periods spread over the cores (for
    /// tables on disk, no more at once than [`StatsSet::gather_large`] found the budget to
    /// hold); the results are in period order.
    pub fn map_periods<R: Send>(
        &self,
        name: &str,
        f: impl Fn(DataFrame) -> Result<R, IngestError> + Sync,
    ) -> Result<Vec<R>, IngestError> {
        let f = &f;
        let parallel = self.spilled.as_ref().map_or(usize::MAX, |s| s.parallel);
        let tasks: Vec<super::build::Task<'_, Result<R, IngestError>>> = match &self.spilled {
            Some(spilled) => spilled
                .periods
                .iter()
                .map(|p| spilled.file(name, *p))
                .filter(|path| path.exists())
                .map(|path| {
                    Box::new(move || f(read_large(name, &path)?)) as super::build::Task<'_, _>
                })
                .collect(),
            None => split_by_period(self.table(name), "period")?
                .into_iter()
                .map(|(_, slice)| Box::new(move || f(slice)) as super::build::Task<'_, _>)
                .collect(),
        };
        super::build::run_on(tasks, parallel).into_iter().collect()
    }

    /// Moves this part's [`LARGE`] tables to `dir/parts/<table>/<period>/<part>.parquet`,
    /// leaving them empty here (a partitioned run; see [`StatsSet::gather_large`]).
    ///
    /// The files are written on all cores: one after another, a partition's took 0.55 s at 10^8
    /// decisions (BENCHMARKS.md, eighteenth session).
    pub fn spill_large(&mut self, dir: &Path, part: usize) -> Result<(), IngestError> {
        let mut slices = Vec::new();
        for layout in LARGE {
            let df = std::mem::replace(self.table_mut(layout.name), empty(layout));
            for (p, slice) in split_by_period(&df, layout.period_key())? {
                slices.push((layout.name, p, slice));
            }
        }
        let tasks: Vec<super::build::Task<'_, Result<(), IngestError>>> = slices
            .iter()
            .map(|(name, p, slice)| {
                Box::new(move || {
                    let d = dir.join("parts").join(name).join(p.to_string());
                    std::fs::create_dir_all(&d).map_err(|e| io_err(&d, e))?;
                    write_spill(&d.join(format!("{part:06}.parquet")), slice)
                }) as super::build::Task<'_, _>
            })
            .collect();
        super::build::run_all(tasks).into_iter().collect()
    }

    /// Sums the parts [`StatsSet::spill_large`] wrote into one canonical file per table and
    /// period, and points this set at them. Periods are summed apart, several at a time when
    /// `budget` (bytes) holds that many: a period's merge is estimated at
    /// [`MERGE_BYTES_PER_SPILLED_BYTE`] times its parts' size on disk.
    pub fn gather_large(
        &mut self,
        dir: std::sync::Arc<SpillDir>,
        budget: u64,
    ) -> Result<(), IngestError> {
        let listing = |d: &Path| -> Result<Vec<std::path::PathBuf>, IngestError> {
            let mut out: Vec<std::path::PathBuf> = match std::fs::read_dir(d) {
                Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(io_err(d, e)),
            };
            out.sort();
            Ok(out)
        };
        let mut periods = BTreeSet::new();
        // Per table and period: the parts' directory and files, and the summed file.
        let mut jobs: Vec<(&Layout, PathBuf, Vec<PathBuf>, PathBuf)> = Vec::new();
        for layout in LARGE {
            let out = dir.path().join("final").join(layout.name);
            std::fs::create_dir_all(&out).map_err(|e| io_err(&out, e))?;
            let mut found: Vec<(i32, PathBuf)> =
                listing(&dir.path().join("parts").join(layout.name))?
                    .into_iter()
                    .filter_map(|d| {
                        let p = d.file_name()?.to_str()?.parse().ok()?;
                        Some((p, d))
                    })
                    .collect();
            found.sort();
            for (p, pdir) in found {
                let files = listing(&pdir)?;
                jobs.push((layout, pdir, files, out.join(format!("{p}.parquet"))));
                periods.insert(p);
            }
        }
        let mut largest = 1u64;
        for (_, _, files, _) in &jobs {
            let bytes: u64 = files
                .iter()
                .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
                .sum();
            largest = largest.max(bytes.saturating_mul(MERGE_BYTES_PER_SPILLED_BYTE));
        }
        let parallel = usize::try_from(budget / largest)
            .unwrap_or(usize::MAX)
            .max(1);
        let tasks: Vec<super::build::Task<'_, Result<(), IngestError>>> = jobs
            .iter()
            .map(|(layout, pdir, files, out)| {
                Box::new(move || {
                    let parts = files
                        .iter()
                        .map(|f| read_large(layout.name, f))
                        .collect::<Result<Vec<_>, _>>()?;
                    let df = merge_sorted(layout, parts)?;
                    // Written as the set's file will hold them (with statistics), so that
                    // writing the set copies their row groups (`StatsSet::write_large`).
                    crate::parquet_writer::write_frame(out, &df, true)?;
                    let _ = std::fs::remove_dir_all(pdir);
                    Ok(())
                }) as super::build::Task<'_, _>
            })
            .collect();
        super::build::run_on(tasks, parallel)
            .into_iter()
            .collect::<Result<Vec<()>, _>>()?;
        self.spilled = Some(Spilled {
            dir,
            periods: periods.into_iter().collect(),
            parallel,
        });
        Ok(())
    }

    /// Reads spilled tables back into memory (an incremental merge works on tables in memory).
    pub fn into_memory(mut self) -> Result<StatsSet, IngestError> {
        if self.spilled.is_none() {
            return Ok(self);
        }
        for layout in LARGE {
            let mut all = empty(layout);
            self.for_each_period(layout.name, |df| {
                all.vstack_mut(&df).map_err(pe(layout.name))?;
                Ok(())
            })?;
            all.rechunk_mut_par();
            *self.table_mut(layout.name) = all;
        }
        self.spilled = None;
        Ok(self)
    }

    /// Reads a statistics directory (as written by a run into `stats/`, or by the emitted SQL).
    /// Each table is `DIR/<table>.parquet`, a file or a directory of part files. Returns the
    /// set and the fingerprints of the files read.
    pub fn read(dir: &Path) -> Result<(StatsSet, Vec<InputFile>), IngestError> {
        let shown = dir.display().to_string();
        if !dir.is_dir() {
            let what = match dir.exists() {
                true => "not a directory",
                false => "does not exist",
            };
            return Err(IngestError::Io {
                path: shown,
                detail: format!("{what}; --stats takes a statistics directory such as a run's stats/ or the output of `readiness aggregate --emit-sql`"),
            });
        }
        let mut files = Vec::new();
        let (meta_df, meta_files) = read_parts(dir, "meta", read_whole)?;
        files.extend(meta_files);
        let (meta, canonical) = Meta::from_frame(&meta_df, &format!("{shown}/meta.parquet"))?;
        // Each table's files fingerprinted and read, checked and given their categories: the
        // two large tables one after the other beside the five others. (All seven on a queue
        // read the large two at once: at 10^7 decisions 0.42 s against 0.54 s in layout order,
        // but at 10^8 12.9 s against 6.5 s, with 21 s of system time against 5.7 s, and a 1 GiB
        // higher peak; BENCHMARKS.md, twenty-third session.) The first failing table in layout
        // order is the error.
        let read = |layout: &'static Layout| -> Result<(DataFrame, Vec<InputFile>), IngestError> {
            let where_ = format!("{shown}/{}.parquet", layout.name);
            if canonical && layout.is_large() {
                return read_large_checked(dir, layout, &where_, CHECKED_ROWS);
            }
            let (df, found) = read_parts(dir, layout.name, read_whole)?;
            let lf = check_layout(layout, df, &where_, 0)?;
            // Tables this engine wrote are canonical already (meta says so); those of other
            // engines are summed per key and sorted here. Decoding does not depend on it.
            let table = if canonical {
                lf.collect()
            } else {
                layout.canonical(lf)
            };
            let table = table.and_then(|t| with_categories(layout, t));
            Ok((table.map_err(pe(where_))?, found))
        };
        let read_those = |large: bool| {
            LAYOUTS
                .iter()
                .enumerate()
                .filter(|(_, layout)| layout.is_large() == large)
                .map(|(k, &layout)| (k, read(layout)))
                .collect::<Vec<_>>()
        };
        let (large, small) = crate::threads::join(|| read_those(true), || read_those(false));
        let mut read_in_order: Vec<_> = large.into_iter().chain(small).collect();
        read_in_order.sort_by_key(|(k, _)| *k);
        let mut tables = Vec::with_capacity(LAYOUTS.len());
        for (_, result) in read_in_order {
            let (table, found) = result?;
            tables.push(table);
            files.extend(found);
        }
        let set = StatsSet::from_tables(meta, tables);
        set.check_totals(&shown)?;
        Ok((set, files))
    }

    /// The tables of one set must describe the same decisions, and the confidence values
    /// (expanded into samples for the PSI deciles) must fit in memory.
    fn check_totals(&self, dir: &str) -> Result<(), IngestError> {
        let total = |df: &DataFrame, column: &str| -> Result<u64, IngestError> {
            Ok(df
                .column(column)
                .map_err(pe(column))?
                .u64()
                .map_err(pe(column))?
                .iter()
                .flatten()
                .fold(0u64, |a, b| a.saturating_add(b)))
        };
        let n = total(&self.cells, "n")?;
        for (name, df, column) in [
            ("confidence", &self.confidence, "n"),
            ("reasoning", &self.reasoning, "n_decisions"),
            ("days", &self.days, "n"),
        ] {
            let m = total(df, column)?;
            if m != n {
                return Err(IngestError::Io {
                    path: format!("{dir}/{name}.parquet"),
                    detail: format!(
                        "holds {m} decisions, suffstats.parquet {n}: the tables come from different inputs"
                    ),
                });
            }
        }
        if let Some(have) = crate::ingest::available_memory() {
            let need = n.saturating_mul(8);
            if need > have / 2 {
                return Err(IngestError::TooLarge {
                    decisions: n,
                    verdicts: 0,
                    need_gib: need as f64 / (1u64 << 30) as f64,
                    have_gib: have as f64 / (1u64 << 30) as f64,
                });
            }
        }
        Ok(())
    }
}

/// Writes one Parquet file of `layout`, with column statistics, whose rows `rows` gives the
/// writer: frames through [`ParquetOut::write_sliced`] (row groups of at most 512² rows cut
/// from each frame, so that the file's bytes depend on the rows only, not on how the frames
/// happen to be chunked in memory), or files of the same layout through [`ParquetOut::append`].
/// A [`LARGE`] table's file (about 1 GB at 10^8 decisions, not read back by the run) is
/// written past the page cache ([`crate::direct`]).
fn write_rows(
    layout: &Layout,
    path: &Path,
    rows: impl FnOnce(&mut ParquetOut) -> Result<(), IngestError>,
) -> Result<(), IngestError> {
    let schema = empty(layout).schema().clone();
    let mut writer = match layout.is_large() {
        true => ParquetOut::create_direct(path, &schema, true)?,
        false => ParquetOut::create(path, &schema, true)?,
    };
    rows(&mut writer)?;
    writer.finish()
}

/// A table's key columns as rows of order-preserving words, so that comparing two rows' word
/// slices gives the order of polars' ascending sort: nulls first, strings by bytes (their
/// [`super::build::Codes`]), integers and booleans by value, floats by `f64::total_cmp`. A
/// 64-bit column with nulls gets a validity word before its value word. (`total_cmp` tells
/// -0.0 from 0.0 and puts negative NaNs first, where polars does not; the statistics hold
/// neither, as ingest rejects NaN confidences and turns -0.0 into 0.0.)
struct KeyWords {
    width: usize,
    words: Vec<u64>,
}

impl KeyWords {
    fn of(layout: &Layout, all: &DataFrame) -> PolarsResult<KeyWords> {
        let rows = all.height();
        let mut columns: Vec<Vec<u64>> = Vec::new();
        // Booleans: null 0, false 1, true 2.
        let small = |v: Vec<Option<u64>>| v.into_iter().map(|x| x.map_or(0, |x| x + 1)).collect();
        // 64-bit values fill the word: a validity word first when there are nulls.
        let wide = |v: Vec<Option<u64>>, columns: &mut Vec<Vec<u64>>| {
            if v.iter().any(Option::is_none) {
                columns.push(v.iter().map(|x| u64::from(x.is_some())).collect());
            }
            columns.push(v.into_iter().map(|x| x.unwrap_or(0)).collect());
        };
        for (name, ty, _) in layout.keys {
            let c = all.column(name)?;
            match ty {
                Ty::Str => {
                    let codes = super::build::Codes::of_column(c)?;
                    columns.push(codes.codes.into_iter().map(u64::from).collect());
                }
                Ty::Bool => {
                    columns.push(small(c.bool()?.iter().map(|b| b.map(u64::from)).collect()))
                }
                Ty::F64 => wide(
                    c.f64()?.iter().map(|x| x.map(packed::float_key)).collect(),
                    &mut columns,
                ),
                _ => wide(
                    c.cast(&DataType::Int64)?
                        .i64()?
                        .iter()
                        .map(|x| x.map(|x| (x as u64) ^ (1 << 63)))
                        .collect(),
                    &mut columns,
                ),
            }
        }
        let width = columns.len();
        let mut words = vec![0u64; rows * width];
        for (j, column) in columns.into_iter().enumerate() {
            for (i, w) in column.into_iter().enumerate() {
                words[i * width + j] = w;
            }
        }
        Ok(KeyWords { width, words })
    }

    fn row(&self, i: usize) -> &[u64] {
        &self.words[i * self.width..(i + 1) * self.width]
    }
}

/// `df` with its categorical columns as strings.
fn as_strings(mut df: DataFrame) -> PolarsResult<DataFrame> {
    let names: Vec<PlSmallStr> = df
        .columns()
        .iter()
        .filter(|c| matches!(c.dtype(), DataType::Categorical(..)))
        .map(|c| c.name().clone())
        .collect();
    for name in names {
        let strings = df.column(&name)?.cast(&DataType::String)?;
        df.with_column(strings)?;
    }
    Ok(df)
}

/// A period's rows in a canonical table: `(period, first row, rows)`.
type PeriodRun = (i32, usize, usize);

/// The rows of each period of a canonical table, ascending by period, or `None` when the
/// table's first key is not a 32-bit integer, has nulls or is not ascending (then it is not
/// canonical, and [`TableMerge::by_query`] sorts it). A `day`-keyed table's periods are its
/// days'.
fn period_runs(
    layout: &Layout,
    df: &DataFrame,
    granularity: Granularity,
) -> Result<Option<Vec<PeriodRun>>, IngestError> {
    let key = layout.period_key();
    let Ok(ca) = df.column(key).map_err(pe(layout.name))?.i32() else {
        return Ok(None);
    };
    if ca.null_count() > 0 {
        return Ok(None);
    }
    let by_day = key == "day";
    let mut runs: Vec<PeriodRun> = Vec::new();
    let (mut last_key, mut last_period) = (i32::MIN, i32::MIN);
    for (row, k) in ca.into_no_null_iter().enumerate() {
        if row > 0 && k < last_key {
            return Ok(None);
        }
        if row == 0 || k != last_key {
            last_period = if by_day {
                granularity.period_of(k).start
            } else {
                k
            };
            last_key = k;
        }
        match runs.last_mut() {
            Some(run) if run.0 == last_period => run.2 += 1,
            _ => runs.push((last_period, row, 1)),
        }
    }
    Ok(Some(runs))
}

/// One table's incremental merge: its stored and new rows, the new set's periods (which
/// replace the stored ones), the periods' granularity, and for `daily` the classes the new set
/// leaves unwatched (their stored rows are left out).
#[derive(Clone, Copy)]
struct TableMerge<'a> {
    layout: &'a Layout,
    old: &'a DataFrame,
    newer: &'a DataFrame,
    new_periods: &'a BTreeSet<i32>,
    granularity: Granularity,
    unwatched: Option<&'a BTreeSet<String>>,
}

impl TableMerge<'_> {
    /// The incremental merge of one table without copying its rows: both sides are canonical
    /// (sorted with the period first) and, once the stored periods the new set replaces are
    /// left out, share no period, so the canonical union is their periods' rows stacked in
    /// period order. Stored `daily` rows of classes the new set leaves unwatched are left out
    /// too. At 10^7 decisions, eleven months stored and the twelfth new, this took 0.02 s where
    /// the query took 0.41 s and copied 850 MiB (BENCHMARKS.md, twenty-third session). `None`
    /// when a side is not canonical, lacks a column, or the two sides' columns differ in type
    /// (categories of different mappings): [`TableMerge::by_query`] then does it.
    fn stacked(&self) -> Result<Option<DataFrame>, IngestError> {
        let TableMerge {
            layout,
            old,
            newer,
            new_periods,
            granularity,
            unwatched,
        } = *self;
        let names = layout.column_names();
        let (Ok(old), Ok(newer)) = (
            old.select(names.iter().copied()),
            newer.select(names.iter().copied()),
        ) else {
            return Ok(None);
        };
        if old.schema() != newer.schema() {
            return Ok(None);
        }
        let (Some(old_runs), Some(new_runs)) = (
            period_runs(layout, &old, granularity)?,
            period_runs(layout, &newer, granularity)?,
        ) else {
            return Ok(None);
        };
        // A new table's period that the set's periods (its `cells`') do not name would keep
        // stored rows of that period beside the new ones: left to the query, which sorts them.
        let kept: Vec<PeriodRun> = old_runs
            .into_iter()
            .filter(|run| !new_periods.contains(&run.0))
            .collect();
        if new_runs
            .iter()
            .any(|new| kept.binary_search_by_key(&new.0, |run| run.0).is_ok())
        {
            return Ok(None);
        }
        let mut pieces: Vec<(i32, &DataFrame, usize, usize)> = kept
            .into_iter()
            .map(|(p, at, n)| (p, &old, at, n))
            .chain(new_runs.into_iter().map(|(p, at, n)| (p, &newer, at, n)))
            .collect();
        // A period has rows on one side only.
        pieces.sort_by_key(|piece| piece.0);
        let mut out = old.clear();
        for (_, side, at, n) in pieces {
            let mut rows = side.slice(at as i64, n);
            if let (Some(unwatched), true) = (unwatched, std::ptr::eq(side, &old)) {
                rows = without_classes(layout, rows, unwatched)?;
            }
            out.vstack_mut_owned(rows).map_err(pe(layout.name))?;
        }
        Ok(Some(out))
    }

    /// [`TableMerge::stacked`] as a query: the stored rows of the replaced periods (and
    /// `daily`'s of unwatched classes) filtered out, the union with the new rows sorted by the
    /// period (stable: each side is canonical, so this gives the canonical order of the union).
    fn by_query(&self) -> Result<DataFrame, IngestError> {
        let layout = self.layout;
        let list: Vec<i32> = self.new_periods.iter().copied().collect();
        let drop = lit(Series::new("p".into(), list)).implode(false);
        let period = if layout.period_key() == "day" {
            period_expr(
                col("day").cast(DataType::Int64) * lit(DAY_US),
                self.granularity,
            )
        } else {
            col("period")
        };
        let mut old = self
            .old
            .clone()
            .lazy()
            .filter(period.is_in(drop, false).not());
        if let Some(unwatched) = self.unwatched {
            let list: Vec<&str> = unwatched.iter().map(String::as_str).collect();
            let skip = lit(Series::new("u".into(), list)).implode(false);
            old = old.filter(col("action_class").is_in(skip, false).not());
        }
        concat(
            [old, self.newer.clone().lazy()],
            UnionArgs {
                to_supertypes: true,
                ..Default::default()
            },
        )
        .map_err(pe(layout.name))?
        .sort(
            [layout.period_key()],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect_streaming()
        .map_err(pe(format!("merging {}", layout.name)))
    }
}

/// `rows` without those whose `action_class` is one of `classes`, or null when `classes` is not
/// empty, as the query's filter leaves them (polars' `is_in` of an empty list is false for a
/// null, of a list of classes null).
fn without_classes(
    layout: &Layout,
    rows: DataFrame,
    classes: &BTreeSet<String>,
) -> Result<DataFrame, IngestError> {
    if classes.is_empty() || rows.height() == 0 {
        return Ok(rows);
    }
    let list: Vec<&str> = classes.iter().map(String::as_str).collect();
    let keep = rows
        .column("action_class")
        .map_err(pe(layout.name))?
        .cast(&DataType::String)
        .map_err(pe(layout.name))?
        .str()
        .map_err(pe(layout.name))?
        .iter()
        .map(|c| c.is_some_and(|c| !list.contains(&c)))
        .collect::<BooleanChunked>();
    if keep.all() {
        return Ok(rows);
    }
    rows.filter(&keep).map_err(pe(layout.name))
}

/// The canonical sum of tables that are each canonical (one row per key, sorted by key): a
/// merge of the sorted parts that adds up the measures of equal keys. Gives what
/// [`Layout::canonical`] gives for their union, without hashing or re-sorting every row. The
/// merge compares each row's key columns packed into one integer ([`packed`]), or, for keys
/// too wide for that, as rows of words ([`merge_words`]).
fn merge_sorted(layout: &Layout, parts: Vec<DataFrame>) -> Result<DataFrame, IngestError> {
    let parts: Vec<DataFrame> = parts.into_iter().filter(|p| p.height() > 0).collect();
    if parts.len() <= 1 {
        return Ok(parts.into_iter().next().unwrap_or_else(|| empty(layout)));
    }
    match packed::merge(layout, parts) {
        Ok(packed::Merged::Sum(sum)) => Ok(sum),
        Ok(packed::Merged::TooWide(parts)) => merge_words(layout, parts),
        Err(packed::MergeError::Polars(e)) => Err(summing_error(layout, e)),
        Err(packed::MergeError::Overflow(name)) => Err(overflow(layout, name)),
    }
}

/// The fewest rows per range of [`merge_in_ranges`]: tables of fewer than twice as many are
/// merged in one range.
const ROWS_PER_RANGE: usize = 1 << 16;

/// [`merge_sorted`] with the parts cut at values of their first key (a period or a day,
/// ascending in every part) into up to one range per worker thread, the ranges summed side by
/// side and stacked in key order. Rows of different ranges never share a key, so the result is
/// [`merge_sorted`]'s. The cuts are at the largest part's quantiles.
fn merge_in_ranges(layout: &Layout, parts: Vec<DataFrame>) -> Result<DataFrame, IngestError> {
    let rows: usize = parts.iter().map(DataFrame::height).sum();
    merge_in(
        layout,
        parts,
        crate::threads::workers().min(rows / ROWS_PER_RANGE),
    )
}

/// [`merge_in_ranges`] in at most `ranges` ranges. Parts of different schemas (whose sum
/// [`merge_sorted`] gives as strings, while a range holding one part alone would keep its
/// categories), or with a first key that is not a 32-bit integer without nulls, are merged in
/// one range.
fn merge_in(
    layout: &Layout,
    parts: Vec<DataFrame>,
    ranges: usize,
) -> Result<DataFrame, IngestError> {
    let parts: Vec<DataFrame> = parts.into_iter().filter(|p| p.height() > 0).collect();
    if parts.len() <= 1 || ranges <= 1 {
        return merge_sorted(layout, parts);
    }
    let names = layout.column_names();
    let dtypes = |p: &DataFrame| -> Option<Vec<DataType>> {
        names
            .iter()
            .map(|n| p.column(n).ok().map(|c| c.dtype().clone()))
            .collect()
    };
    let same_schema = parts.windows(2).all(|w| dtypes(&w[0]) == dtypes(&w[1]));
    // Each part's first key, ascending.
    let firsts: Option<Vec<Vec<i32>>> = parts
        .iter()
        .map(|p| {
            let ca = p.column(layout.period_key()).ok()?.i32().ok()?;
            (ca.null_count() == 0).then(|| ca.into_no_null_iter().collect())
        })
        .collect();
    let (Some(firsts), true) = (firsts, same_schema) else {
        return merge_sorted(layout, parts);
    };
    let mut bounds: Vec<i32> = match firsts.iter().max_by_key(|keys| keys.len()) {
        Some(largest) => (1..ranges)
            .map(|r| largest[largest.len() * r / ranges])
            .collect(),
        None => Vec::new(),
    };
    bounds.dedup();
    // Per range, each part's rows in it (ranges a part has no rows in are left out).
    let mut sliced: Vec<Vec<DataFrame>> = vec![Vec::new(); bounds.len() + 1];
    for (part, keys) in parts.iter().zip(&firsts) {
        let mut at = 0;
        for (r, range) in sliced.iter_mut().enumerate() {
            let end = bounds
                .get(r)
                .map_or(part.height(), |&v| keys.partition_point(|&k| k < v));
            if end > at {
                range.push(part.slice(at as i64, end - at));
            }
            at = end;
        }
    }
    drop((parts, firsts));
    let tasks: Vec<super::build::Task<'_, Result<DataFrame, IngestError>>> = sliced
        .into_iter()
        .filter(|range| !range.is_empty())
        .map(|range| Box::new(move || merge_sorted(layout, range)) as super::build::Task<'_, _>)
        .collect();
    let mut summed = super::build::run_all(tasks).into_iter();
    let mut out = summed.next().unwrap_or_else(|| Ok(empty(layout)))?;
    for range in summed {
        out.vstack_mut_owned(range?)
            .map_err(|e| summing_error(layout, e))?;
    }
    Ok(out)
}

fn summing_error(layout: &Layout, e: PolarsError) -> IngestError {
    IngestError::Polars {
        context: format!("summing {}", layout.name),
        source: e,
    }
}

/// The error of a measure `name` whose sum overflows.
fn overflow(layout: &Layout, name: &str) -> IngestError {
    summing_error(
        layout,
        PolarsError::ComputeError(format!("the sum of '{name}' overflows").into()),
    )
}

/// [`merge_sorted`] of at least two non-empty parts through [`KeyWords`]: for keys that do
/// not pack into 127 bits.
fn merge_words(layout: &Layout, parts: Vec<DataFrame>) -> Result<DataFrame, IngestError> {
    let err = |e: PolarsError| summing_error(layout, e);
    let mut starts = Vec::with_capacity(parts.len() + 1);
    let mut union: Option<DataFrame> = None;
    for p in &parts {
        let p = p.select(layout.column_names()).map_err(err)?;
        let Some(all) = union.as_mut() else {
            starts.push(0);
            union = Some(p);
            continue;
        };
        starts.push(all.height());
        if all.schema() == p.schema() {
            all.vstack_mut(&p).map_err(err)?;
        } else {
            // Parts built in memory hold categories, parts read from files strings: the union
            // of both holds strings.
            *all = as_strings(std::mem::take(all)).map_err(err)?;
            all.vstack_mut(&as_strings(p).map_err(err)?).map_err(err)?;
        }
    }
    let mut all = union.unwrap_or_else(|| empty(layout));
    starts.push(all.height());
    drop(parts);
    all.rechunk_mut_par();
    let keys = KeyWords::of(layout, &all).map_err(err)?;
    let values: Vec<packed::Values> = layout
        .measures
        .iter()
        .map(|(name, ty)| packed::Values::of(all.column(name)?, *ty))
        .collect::<PolarsResult<_>>()
        .map_err(err)?;
    let mut sums: Vec<packed::Values> = values.iter().map(|v| v.empty_like(0)).collect();
    // Cursors into each part; the smallest key is taken next (few parts: a linear scan).
    let ends = &starts[1..];
    let mut cursor: Vec<usize> = starts[..ends.len()].to_vec();
    let mut order: Vec<IdxSize> = Vec::with_capacity(all.height());
    loop {
        let mut best: Option<(usize, &[u64])> = None;
        for (p, &c) in cursor.iter().enumerate() {
            if c < ends[p] {
                let key = keys.row(c);
                if best.is_none_or(|(_, b)| key < b) {
                    best = Some((p, key));
                }
            }
        }
        let Some((p, key)) = best else { break };
        let row = cursor[p];
        cursor[p] += 1;
        let same = order
            .last()
            .is_some_and(|&last| keys.row(last as usize) == key);
        if !same {
            order.push(row as IdxSize);
        }
        packed::sum_row(&mut sums, &values, row, same, layout)
            .map_err(|name| overflow(layout, name))?;
    }
    drop(keys);
    let mut out = all
        .take(&IdxCa::from_vec("idx".into(), order))
        .map_err(err)?;
    for ((name, ty), m) in layout.measures.iter().zip(sums) {
        let c = m.into_column(name).strict_cast(&ty.dtype()).map_err(err)?;
        out.with_column(c).map_err(err)?;
    }
    Ok(out)
}

fn empty(layout: &Layout) -> DataFrame {
    let columns: Vec<Column> = layout
        .keys
        .iter()
        .map(|(n, t, _)| Column::new_empty((*n).into(), &t.dtype()))
        .chain(
            layout
                .measures
                .iter()
                .map(|(n, t)| Column::new_empty((*n).into(), &t.dtype())),
        )
        .collect();
    DataFrame::new_infer_height(columns).unwrap_or_default()
}

impl Meta {
    fn to_frame(&self) -> DataFrame {
        let mut keys = vec![
            "format".to_string(),
            "period".to_string(),
            "canonical".to_string(),
        ];
        let mut values = vec![
            FORMAT_VERSION.to_string(),
            self.granularity.as_str().to_string(),
            "true".to_string(),
        ];
        for c in &self.unwatched {
            keys.push("unwatched".into());
            values.push(c.clone());
        }
        DataFrame::new_infer_height(vec![
            Column::new("key".into(), keys),
            Column::new("value".into(), values),
        ])
        .unwrap_or_default()
    }

    /// The meta data, and whether the tables say they are canonical (written by this engine).
    fn from_frame(df: &DataFrame, path: &str) -> Result<(Meta, bool), IngestError> {
        let bad = |detail: String| IngestError::Io {
            path: path.to_string(),
            detail,
        };
        let keys = df
            .column("key")
            .and_then(|c| c.str().cloned())
            .map_err(|e| bad(format!("expected string columns key and value: {e}")))?;
        let values = df
            .column("value")
            .and_then(|c| c.str().cloned())
            .map_err(|e| bad(format!("expected string columns key and value: {e}")))?;
        let mut granularity = None;
        let mut format = None;
        let mut unwatched = BTreeSet::new();
        let mut canonical = false;
        for (row, (k, v)) in keys.iter().zip(values.iter()).enumerate() {
            match (k, v) {
                (Some("canonical"), Some(v)) => canonical = v == "true",
                (Some("format"), Some(v)) => format = Some(v.to_string()),
                (Some("period"), Some(v)) => {
                    granularity = Some(Granularity::parse(v).ok_or_else(|| {
                        bad(format!(
                            "row {row}: period '{v}', expected week, month or quarter"
                        ))
                    })?)
                }
                (Some("unwatched"), Some(v)) => {
                    unwatched.insert(v.to_string());
                }
                (k, _) => {
                    return Err(bad(format!(
                        "row {row}: unexpected key {k:?} (expected format, period, canonical, unwatched)"
                    )))
                }
            }
        }
        if format.as_deref() != Some(FORMAT_VERSION) {
            return Err(bad(format!(
                "statistics format {format:?}, this engine reads format {FORMAT_VERSION}; rebuild the statistics with this version"
            )));
        }
        Ok((
            Meta {
                granularity: granularity.ok_or_else(|| bad("no 'period' row".into()))?,
                unwatched,
            },
            canonical,
        ))
    }

    /// Whether statistics built with this meta data can serve a run at `granularity` whose
    /// policy leaves `unwatched` classes without daily tables; the error says what differs.
    pub fn check(
        &self,
        granularity: Granularity,
        unwatched: &BTreeSet<String>,
        source: &str,
    ) -> Result<(), IngestError> {
        if self.granularity != granularity {
            return Err(IngestError::Io {
                path: source.to_string(),
                detail: format!(
                    "the statistics are per {}, the run is per {}; use --period {} or rebuild the statistics",
                    self.granularity.as_str(),
                    granularity.as_str(),
                    self.granularity.as_str()
                ),
            });
        }
        let missing: Vec<&str> = self
            .unwatched
            .difference(unwatched)
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(IngestError::Io {
                path: source.to_string(),
                detail: format!(
                    "the statistics have no daily volumes for {} (not watched for manipulation when they were built), which the policy now watches; rebuild the statistics with this policy",
                    missing.join(", ")
                ),
            });
        }
        Ok(())
    }
}

/// A [`LARGE`] table's classes, analysts and verdicts as the categories the engine builds them
/// with (`crate::ingest::categorical`): a stored set read for an incremental run holds 4 bytes
/// a row for each instead of a 16-byte string view, and so does its merge with the new months.
/// Other tables are returned as they are.
fn with_categories(layout: &Layout, mut df: DataFrame) -> PolarsResult<DataFrame> {
    if !layout.is_large() {
        return Ok(df);
    }
    for name in ["action_class", "analyst_id", "verdict"] {
        let (Some(dtype), Ok(column)) = (crate::ingest::categorical(name), df.column(name)) else {
            continue;
        };
        if column.dtype() == &DataType::String {
            let cats = crate::ingest::to_categories(column.clone(), &dtype)?;
            df.with_column(cats)?;
        }
    }
    Ok(df)
}

/// A [`LARGE`] table's file spilled by a partitioned run, read a row group at a time with its
/// strings made categories as [`with_categories`] makes them: only one row group's strings are
/// in memory at once (per file read), and a `reviews` row's fixed-width part takes 32 bytes
/// instead of 68. Another table's file is read as it is.
fn read_large(name: &str, path: &Path) -> Result<DataFrame, IngestError> {
    match LARGE.iter().find(|l| l.name == name) {
        Some(layout) => read_spill(path, |df| with_categories(layout, df)),
        None => read_spill(path, Ok),
    }
}

/// A statistics file read whole.
fn read_whole(path: &Path, shown: &str) -> Result<DataFrame, IngestError> {
    std::fs::File::open(path)
        .map_err(|e| IngestError::Io {
            path: shown.to_string(),
            detail: e.to_string(),
        })
        .and_then(|f| {
            ParquetReader::new(f)
                .finish()
                .map_err(|e| IngestError::Unreadable {
                    path: shown.to_string(),
                    detail: e.to_string(),
                })
        })
}

/// The rows [`read_large_checked`] reads, checks and makes categories of at once (its strings
/// then take about 200 MB for `reviews`; one row group at a time cost 0.1 s more at 10^7
/// decisions, a read and the checks' queries per group).
const CHECKED_ROWS: usize = 1 << 22;

/// A [`LARGE`] table of a set this engine wrote (canonical), read a few row groups at a time
/// ([`read_in_batches`]): each batch is checked against the layout ([`check_layout`], its rows
/// numbered in the whole table) and its classes, analysts and verdicts made categories
/// ([`with_categories`]) before the next is read, so only one batch's strings are held at
/// once. Read whole, then checked (which casts the categories to strings) and made categories,
/// an incremental run at 10^8 decisions peaked at 8.7 GiB instead of 7.6 GiB (BENCHMARKS.md,
/// twenty-third session).
fn read_large_checked(
    dir: &Path,
    layout: &Layout,
    where_: &str,
    batch_rows: usize,
) -> Result<(DataFrame, Vec<InputFile>), IngestError> {
    let mut first_row = 0usize;
    read_parts(dir, layout.name, |path, shown| {
        let unreadable = |e: PolarsError| IngestError::Unreadable {
            path: shown.to_string(),
            detail: e.to_string(),
        };
        read_in_batches(path, batch_rows, unreadable, |part| {
            let rows = part.height();
            let part = check_layout(layout, part, where_, first_row)?
                .collect()
                .and_then(|t| with_categories(layout, t))
                .map_err(pe(where_.to_string()))?;
            first_row += rows;
            Ok(part)
        })
    })
}

fn read_parts(
    dir: &Path,
    name: &str,
    mut read_file: impl FnMut(&Path, &str) -> Result<DataFrame, IngestError>,
) -> Result<(DataFrame, Vec<InputFile>), IngestError> {
    let spec = dir.join(format!("{name}.parquet"));
    let shown = spec.display().to_string();
    if !spec.exists() {
        return Err(IngestError::Io {
            path: shown,
            detail: format!(
                "missing: a statistics directory holds meta.parquet and {}",
                LAYOUTS
                    .iter()
                    .map(|l| format!("{}.parquet", l.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let parts = resolve("stats", std::slice::from_ref(&shown))?;
    let mut frames = Vec::with_capacity(parts.len());
    let mut files = Vec::with_capacity(parts.len());
    for (path, _) in parts {
        let p = path.display().to_string();
        let (sha256, bytes) = crate::ingest::fingerprint(&path)?;
        let df = read_file(&path, &p)?;
        files.push(InputFile {
            table: Table::Stats,
            path: p,
            sha256,
            bytes,
            rows: df.height() as u64,
        });
        frames.push(df);
    }
    let mut frames = frames.into_iter();
    let mut df = frames.next().unwrap_or_default();
    for f in frames {
        df.vstack_mut(&f).map_err(|e| IngestError::Unreadable {
            path: shown.clone(),
            detail: format!("part files differ in their columns: {e}"),
        })?;
    }
    Ok((df, files))
}

/// Checks a read table against its layout (columns, types, nulls in keys, negative counts)
/// and returns it with the canonical column types. `first_row` is the table's row number of
/// `df`'s first row (a row group read on its own), for the errors.
fn check_layout(
    layout: &Layout,
    df: DataFrame,
    path: &str,
    first_row: usize,
) -> Result<LazyFrame, IngestError> {
    let cols: Vec<(&str, Ty, bool)> = layout
        .keys
        .iter()
        .copied()
        .chain(layout.measures.iter().map(|(n, t)| (*n, *t, false)))
        .collect();
    let mut exprs = Vec::with_capacity(cols.len());
    for (name, ty, nullable) in cols {
        let column = df.column(name).map_err(|_| IngestError::MissingColumn {
            path: path.to_string(),
            column: name.to_string(),
            expected: ty.describe(),
            mapped: String::new(),
            found: df
                .get_column_names()
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        if !ty.accepts(column.dtype()) {
            return Err(IngestError::WrongType {
                path: path.to_string(),
                column: name.to_string(),
                expected: ty.describe(),
                found: column.dtype().to_string(),
            });
        }
        let bad_row = |what: &str, mask: &BooleanChunked| -> Result<(), IngestError> {
            if let Some(row) = mask.iter().position(|b| b == Some(true)) {
                return Err(IngestError::Io {
                    path: path.to_string(),
                    detail: format!("row {}: column '{name}' is {what}", first_row + row),
                });
            }
            Ok(())
        };
        if !nullable {
            bad_row("null", &column.is_null())?;
        }
        if ty == Ty::U64 && column.dtype().is_signed_integer() {
            let neg = column
                .as_materialized_series()
                .lt(0)
                .map_err(pe(path.to_string()))?;
            bad_row("negative", &neg)?;
        }
        let cast = if matches!(column.dtype(), DataType::Date) {
            col(name)
                .strict_cast(DataType::Int32)
                .strict_cast(ty.dtype())
        } else {
            col(name).strict_cast(ty.dtype())
        };
        exprs.push(cast.alias(name));
    }
    let df = df
        .lazy()
        .select(exprs)
        .collect()
        .map_err(|e| IngestError::Io {
            path: path.to_string(),
            detail: format!("a value does not fit its column's type: {e}"),
        })?;
    check_values(layout, &df, path, first_row)?;
    Ok(df.lazy())
}

/// Values a table's columns may hold beyond their types: the first offending row is named
/// (`first_row` is the table's row number of `df`'s first row).
fn check_values(
    layout: &Layout,
    df: &DataFrame,
    path: &str,
    first_row: usize,
) -> Result<(), IngestError> {
    let verdicts = Series::new("v".into(), ["approve", "override", "reject", "timeout"]);
    let statuses = Series::new("s".into(), ["stale", "unknown"]);
    let crit = Series::new("c".into(), ["low", "medium", "high", "critical"]);
    let rules: Vec<(&str, Expr, &str)> = match layout.name {
        "confidence" => vec![(
            "confidence",
            col("confidence")
                .is_nan()
                .or(col("confidence").lt(lit(0.0)))
                .or(col("confidence").gt(lit(1.0))),
            "a confidence in [0, 1]",
        )],
        "reviews" => vec![
            (
                "verdict",
                col("verdict")
                    .is_in(lit(verdicts).implode(false), false)
                    .not(),
                "approve, override, reject or timeout",
            ),
            ("delay_us", col("delay_us").lt(lit(0i64)), "a delay ≥ 0"),
        ],
        "cited" => vec![(
            "status",
            col("status")
                .is_in(lit(statuses).implode(false), false)
                .not(),
            "stale or unknown",
        )],
        "suffstats" => vec![(
            "asset_criticality",
            col("asset_criticality")
                .is_in(lit(crit).implode(false), false)
                .not(),
            "low, medium, high or critical",
        )],
        _ => Vec::new(),
    };
    for (column, bad, expected) in rules {
        let mask = df
            .clone()
            .lazy()
            .select([bad.fill_null(lit(true)).alias("bad")])
            .collect()
            .map_err(pe(path.to_string()))?;
        let mask = mask
            .column("bad")
            .map_err(pe(path.to_string()))?
            .bool()
            .map_err(pe(path.to_string()))?
            .clone();
        let first_bad = mask.iter().position(|b| b == Some(true));
        if let Some(row) = first_bad {
            return Err(IngestError::Io {
                path: path.to_string(),
                detail: format!(
                    "row {}: column '{column}' is not {expected}",
                    first_row + row
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_large_tables_are_read_with_categories_and_the_same_strings() {
        let table = confidence(&[("b", 0.5, 1), ("a", 0.25, 2), ("b", 0.75, 3)]);
        let read = with_categories(&CONFIDENCE, table.clone()).unwrap();
        let classes = read.column("action_class").unwrap();
        assert!(matches!(classes.dtype(), DataType::Categorical(..)));
        let strings = classes.cast(&DataType::String).unwrap();
        assert!(strings.equals(table.column("action_class").unwrap()));
        assert!(read.column("n").unwrap().equals(table.column("n").unwrap()));
        // The daily table keeps its strings (its queries join and filter them as strings).
        let daily = df!("action_class" => ["a"], "n" => [1u64]).unwrap();
        let kept = with_categories(&DAILY, daily.clone()).unwrap();
        assert_eq!(
            kept.column("action_class").unwrap().dtype(),
            &DataType::String
        );
    }

    #[test]
    fn large_tables_read_in_batches_equal_the_whole_read_and_number_rows_in_the_table() {
        let dir = std::env::temp_dir().join(format!("readiness-batches-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("confidence.parquet");
        let write = |table: &mut DataFrame| {
            let file = std::fs::File::create(&path).unwrap();
            ParquetWriter::new(file)
                .with_row_group_size(Some(7))
                .finish(table)
                .unwrap();
        };
        let rows: Vec<(&str, f64, u64)> = (0..50)
            .map(|i| {
                (
                    if i < 20 { "a" } else { "b" },
                    i as f64 / 100.0,
                    1 + i as u64 % 3,
                )
            })
            .collect();
        let mut table = confidence(&rows);
        write(&mut table);
        // Batches of two 7-row groups (and one of one group), against the file read whole.
        let (batched, files) = read_large_checked(&dir, &CONFIDENCE, "c", 10).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].rows, 50);
        let whole = read_whole(&path, "c").unwrap();
        let whole = check_layout(&CONFIDENCE, whole, "c", 0)
            .unwrap()
            .collect()
            .unwrap();
        let whole = with_categories(&CONFIDENCE, whole).unwrap();
        assert!(batched.equals_missing(&whole), "{batched}\n{whole}");
        // A confidence above 1 in row 37 (the third batch) is named by its row in the table.
        let mut bad = rows.clone();
        bad[37].1 = 1.5;
        write(&mut confidence(&bad));
        let err = read_large_checked(&dir, &CONFIDENCE, "c", 10)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("row 37") && err.contains("'confidence'"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stacking_by_period_gives_the_querys_merge() {
        // Month starts (days since 1970): January, February, March, April 2025.
        let (jan, feb, mar, apr) = (20089, 20120, 20148, 20179);
        let unwatched: BTreeSet<String> = ["enrich".to_string()].into();
        // Stored January to March (an unwatched class's row in January); new February again
        // (re-delivered: it replaces the stored one) and April.
        let old = daily(&[
            (jan, "block_ip", Some("h1"), 1),
            (jan + 11, "enrich", Some("h1"), 2),
            (feb, "block_ip", Some("h1"), 3),
            (feb + 10, "block_ip", Some("h1"), 4),
            (mar, "block_ip", Some("h1"), 5),
            (mar + 12, "isolate", Some("h1"), 6),
        ]);
        let new = daily(&[
            (feb + 3, "block_ip", Some("h1"), 7),
            (apr, "block_ip", Some("h1"), 8),
        ]);
        let merge = |layout, old, newer, new_periods, unwatched| TableMerge {
            layout,
            old,
            newer,
            new_periods,
            granularity: Granularity::Month,
            unwatched,
        };
        let periods: BTreeSet<i32> = [feb, apr].into();
        // Each row's `n`, in order: which row of which side it is.
        let counts = |df: &DataFrame| -> Vec<u64> {
            df.column("n")
                .unwrap()
                .u64()
                .unwrap()
                .into_no_null_iter()
                .collect()
        };
        let stacked = merge(&DAILY, &old, &new, &periods, Some(&unwatched))
            .stacked()
            .unwrap();
        let stacked = stacked.expect("both sides canonical, same columns");
        // By hand: January without the unwatched row, the new February, March, April.
        assert_eq!(counts(&stacked), [1, 7, 5, 6, 8]);
        let query = merge(&DAILY, &old, &new, &periods, Some(&unwatched))
            .by_query()
            .unwrap();
        assert!(stacked.equals_missing(&query), "{stacked}\n{query}");
        // Stored rows without a class: kept with no class unwatched, left out with one, as the
        // query does.
        let mut nulls = old.clone();
        let classes: Vec<Option<&str>> = vec![None, Some("enrich"), None, Some("a"), None, None];
        nulls
            .with_column(Column::new("action_class".into(), classes))
            .unwrap();
        let none_unwatched: BTreeSet<String> = BTreeSet::new();
        for (unwatched, expected) in [
            (&none_unwatched, vec![1, 2, 7, 5, 6, 8]),
            (&unwatched, vec![7, 8]),
        ] {
            let both = merge(&DAILY, &nulls, &new, &periods, Some(unwatched));
            let stacked = both.stacked().unwrap().expect("canonical");
            assert_eq!(counts(&stacked), expected);
            let query = both.by_query().unwrap();
            assert!(stacked.equals_missing(&query), "{stacked}\n{query}");
        }

        // A period-keyed table, the new period between stored ones.
        let at = |rows: &[(i32, &str, f64, u64)]| {
            let mut t = confidence(&rows.iter().map(|r| (r.1, r.2, r.3)).collect::<Vec<_>>());
            t.with_column(Column::new(
                "period".into(),
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            ))
            .unwrap();
            t
        };
        let old = at(&[(jan, "a", 0.5, 1), (jan, "b", 0.25, 2), (mar, "a", 0.75, 3)]);
        let new = at(&[(feb, "a", 0.5, 4)]);
        let periods: BTreeSet<i32> = [feb].into();
        let stacked = merge(&CONFIDENCE, &old, &new, &periods, None)
            .stacked()
            .unwrap()
            .expect("both sides canonical, same columns");
        assert_eq!(counts(&stacked), [1, 2, 4, 3]);
        let query = merge(&CONFIDENCE, &old, &new, &periods, None)
            .by_query()
            .unwrap();
        assert!(stacked.equals_missing(&query), "{stacked}\n{query}");

        // A new table's period that the set's periods do not name, while stored rows hold it:
        // left to the query.
        let more = at(&[(feb, "a", 0.5, 4), (mar, "b", 0.5, 5)]);
        let none = merge(&CONFIDENCE, &old, &more, &periods, None).stacked();
        assert!(none.unwrap().is_none());
        // Not canonical (periods descending), or the classes as categories on one side only:
        // left to the query.
        let descending = at(&[(mar, "a", 0.5, 1), (jan, "a", 0.5, 2)]);
        let none = merge(&CONFIDENCE, &descending, &new, &periods, None).stacked();
        assert!(none.unwrap().is_none());
        let categories = with_categories(&CONFIDENCE, old.clone()).unwrap();
        let none = merge(&CONFIDENCE, &categories, &new, &periods, None).stacked();
        assert!(none.unwrap().is_none());
        // A side without the table's columns (a set built without reviews) too.
        let empty = DataFrame::empty();
        let none = merge(&CONFIDENCE, &old, &empty, &periods, None).stacked();
        assert!(none.unwrap().is_none());
    }

    fn confidence(rows: &[(&str, f64, u64)]) -> DataFrame {
        df!(
            "period" => vec![20089i32; rows.len()],
            "action_class" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "confidence" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            "n" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    /// A set with only `confidence` and `daily` rows.
    fn set(confidence: DataFrame, daily: DataFrame) -> StatsSet {
        let mut tables: Vec<DataFrame> = LAYOUTS.iter().map(|l| empty(l)).collect();
        tables[1] = confidence;
        tables[2] = daily;
        StatsSet::from_tables(
            Meta {
                granularity: Granularity::Month,
                unwatched: BTreeSet::new(),
            },
            tables,
        )
    }

    fn daily(rows: &[(i32, &str, Option<&str>, u64)]) -> DataFrame {
        df!(
            "day" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "action_class" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            "target_entity" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            "n" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            "n_priv_crit" => rows.iter().map(|r| r.3 / 2).collect::<Vec<_>>(),
            "sum_conf" => rows.iter().map(|r| r.3 as i64 * 3).collect::<Vec<_>>(),
            "n_reviewed" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            "n_disagree" => rows.iter().map(|_| 0u64).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn a_counter_of_built_sets_equals_their_group_by_sum() {
        // Twenty partitions: the counter holds two sums of 8 and four single sets at the end.
        let parts: Vec<StatsSet> = (0..20u64)
            .map(|k| {
                set(
                    confidence(&[("a", 0.1, k + 1), ("b", 0.2 + k as f64 / 100.0, 1)]),
                    daily(&[(1, "a", Some("h1"), k + 2), (k as i32 + 2, "b", None, 1)]),
                )
            })
            .collect();
        let mut running = BuiltSum::default();
        for part in parts.iter().cloned() {
            running.add(part).unwrap();
        }
        let levels: Vec<u32> = running.stack.iter().map(|(l, _)| *l).collect();
        assert_eq!(levels, [1, 1, 0, 0, 0, 0]);
        let total = running.total().unwrap().unwrap();
        let summed = StatsSet::sum(parts).unwrap();
        for (layout, (t, s)) in LAYOUTS
            .iter()
            .zip(total.tables().into_iter().zip(summed.tables()))
        {
            assert!(t.equals_missing(s), "{}: {t} against {s}", layout.name);
        }
        // By hand: (1, a, h1) is 2 + 3 + … + 21 = 230.
        let h1 = total.daily.column("n").unwrap().u64().unwrap().get(0);
        assert_eq!(h1, Some(230));
        // 64 sets make one sum of the second level; the 65th is held beside it.
        let tiny = |k: u64| set(confidence(&[("a", 0.5, 1)]), daily(&[(1, "a", None, k)]));
        let mut running = BuiltSum::default();
        for k in 0..65u64 {
            running.add(tiny(k)).unwrap();
            let levels: Vec<u32> = running.stack.iter().map(|(l, _)| *l).collect();
            match k {
                63 => assert_eq!(levels, [2]),
                64 => assert_eq!(levels, [2, 0]),
                _ => {}
            }
        }
        let total = running.total().unwrap().unwrap();
        // 0 + 1 + … + 64 = 2080 decisions of day 1; 65 confidences of 0.5.
        assert_eq!(
            total.daily.column("n").unwrap().u64().unwrap().get(0),
            Some(2080)
        );
        assert_eq!(
            total.confidence.column("n").unwrap().u64().unwrap().get(0),
            Some(65)
        );
        assert!(BuiltSum::default().total().unwrap().is_none());
    }

    #[test]
    fn adding_built_sets_equals_their_group_by_sum() {
        let a = set(
            confidence(&[("a", 0.1, 2), ("b", 0.2, 1)]),
            daily(&[
                (1, "a", None, 1),
                (1, "a", Some("h1"), 2),
                (2, "b", Some("h2"), 5),
            ]),
        );
        let b = set(
            confidence(&[("a", 0.1, 3), ("a", 0.3, 1)]),
            daily(&[(1, "a", Some("h1"), 4), (3, "a", None, 1)]),
        );
        let merged = a.clone().add_built(b.clone()).unwrap();
        let summed = StatsSet::sum(vec![a, b]).unwrap();
        for (layout, (m, s)) in LAYOUTS
            .iter()
            .zip(merged.tables().into_iter().zip(summed.tables()))
        {
            assert!(m.equals_missing(s), "{}: {m} against {s}", layout.name);
        }
        // By hand: (1, a, h1) is 2 + 4; the null target sorts first.
        let want = daily(&[
            (1, "a", None, 1),
            (1, "a", Some("h1"), 6),
            (2, "b", Some("h2"), 5),
            (3, "a", None, 1),
        ]);
        assert_eq!(merged.daily.column("n").unwrap(), want.column("n").unwrap());
    }

    #[test]
    fn merged_measures_keep_their_sign_and_refuse_to_overflow() {
        let cited = |rows: &[(&str, u64)]| {
            df!(
                "period" => vec![1i32; rows.len()],
                "model_version" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                "technique_id" => vec!["T1"; rows.len()],
                "status" => vec!["known"; rows.len()],
                "decisions" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )
            .unwrap()
        };
        let merged = merge_sorted(
            &CITED,
            vec![cited(&[("a", 2)]), cited(&[("a", 3), ("b", 1)])],
        )
        .unwrap();
        assert_eq!(
            merged.column("decisions").unwrap().u64().unwrap().to_vec(),
            vec![Some(5), Some(1)]
        );
        let near_max = cited(&[("a", u64::MAX - 1)]);
        let err = merge_sorted(&CITED, vec![near_max, cited(&[("a", 2)])]).unwrap_err();
        assert!(err.to_string().contains("overflows"), "{err}");
        // A signed measure (fixed-point sums) adds negative values as such.
        let daily = |n: i64| {
            df!(
                "day" => [1i32], "action_class" => ["a"], "target_entity" => [Some("h")],
                "n" => [1u64], "n_priv_crit" => [0u64], "sum_conf" => [n],
                "n_reviewed" => [0u64], "n_disagree" => [0u64],
            )
            .unwrap()
        };
        let merged = merge_sorted(&DAILY, vec![daily(-5), daily(3)]).unwrap();
        assert_eq!(
            merged.column("sum_conf").unwrap().i64().unwrap().get(0),
            Some(-2)
        );
    }

    #[test]
    fn key_words_order_rows_as_polars_sorts_them() {
        // Nulls, negative and positive integers and floats (-0.0, tiny and huge values),
        // strings inline and longer than 12 bytes.
        let df = df!(
            "period" => [Some(3i32), None, Some(-2), Some(3), Some(3), Some(-2), Some(3), None],
            "action_class" => [Some("b"), Some("a"), None, Some("a-class-longer-than-12"), Some("a"), Some("a"), Some("a-class-longer-than-12"), None],
            "confidence" => [0.5f64, -0.0, 1e-300, -1.5, 0.0, f64::MAX, -1e-300, 0.25],
            "n" => [1u64, 2, 3, 4, 5, 6, 7, 8],
        )
        .unwrap();
        let sorted = df
            .sort(
                ["period", "action_class", "confidence"],
                SortMultipleOptions::default().with_maintain_order(true),
            )
            .unwrap();
        let words = KeyWords::of(&CONFIDENCE, &sorted).unwrap();
        // A validity word for the nullable period, then period, class and confidence.
        assert_eq!(words.width, 4);
        for i in 1..sorted.height() {
            assert!(
                words.row(i - 1) <= words.row(i),
                "rows {} and {i} out of order",
                i - 1
            );
        }
        // -0.0 and 0.0 are distinct keys, as `f64::total_cmp` has them.
        let z = df!("period" => [1i32, 1], "action_class" => ["a", "a"], "confidence" => [-0.0f64, 0.0], "n" => [1u64, 1]).unwrap();
        let w = KeyWords::of(&CONFIDENCE, &z).unwrap();
        assert!(w.row(0) < w.row(1));
    }

    /// Which key columns of [`random_table`] get nulls (never the first, the period or day).
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Nulls {
        No,
        Some,
        All,
    }

    /// `rows` random rows of a table (xorshift from `seed`), not summed: strings from `pool`,
    /// integers mostly near zero and sometimes at `span` or `-span - 1` (clamped to the
    /// column's type; every integer 0 when `span` is 0).
    fn random_table(
        layout: &Layout,
        rows: usize,
        seed: u64,
        span: i64,
        nulls: Nulls,
        pool: &[&str],
    ) -> DataFrame {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let columns: Vec<Column> = layout
            .keys
            .iter()
            .enumerate()
            .map(|(j, (name, ty, _))| {
                let draws: Vec<u64> = (0..rows).map(|_| next() >> 8).collect();
                let null = |d: u64| match nulls {
                    _ if j == 0 => false,
                    Nulls::No => false,
                    Nulls::Some => d.is_multiple_of(5),
                    Nulls::All => true,
                };
                let name = PlSmallStr::from_static(name);
                match ty {
                    Ty::Str => Column::new(
                        name,
                        draws
                            .iter()
                            .map(|&d| (!null(d)).then(|| pool[(d / 8) as usize % pool.len()]))
                            .collect::<Vec<_>>(),
                    ),
                    Ty::Bool => Column::new(
                        name,
                        draws
                            .iter()
                            .map(|&d| (!null(d)).then_some(d & 8 != 0))
                            .collect::<Vec<_>>(),
                    ),
                    Ty::F64 => Column::new(
                        name,
                        draws
                            .iter()
                            .map(|&d| (!null(d)).then(|| (d / 8 % 7) as f64 / 4.0 - 0.5))
                            .collect::<Vec<_>>(),
                    ),
                    _ => {
                        let span = match ty {
                            Ty::I32 => span.min(i32::MAX as i64),
                            _ => span,
                        };
                        let value = |d: u64| match d % 8 {
                            _ if span == 0 => 0,
                            0 => span,
                            1 => -span - 1,
                            _ => (d / 8 % 5) as i64 - 2,
                        };
                        Column::new(
                            name,
                            draws
                                .iter()
                                .map(|&d| (!null(d)).then(|| value(d)))
                                .collect::<Vec<_>>(),
                        )
                        .strict_cast(&ty.dtype())
                        .unwrap()
                    }
                }
            })
            .chain(layout.measures.iter().map(|(name, ty)| {
                let signed = matches!(ty, Ty::I64 | Ty::I32);
                Column::new(
                    (*name).into(),
                    (0..rows as i64)
                        .map(|i| i % 9 - if signed { 4 } else { 0 })
                        .collect::<Vec<i64>>(),
                )
                .strict_cast(&ty.dtype())
                .unwrap()
            }))
            .collect();
        DataFrame::new_infer_height(columns).unwrap()
    }

    #[test]
    fn packed_and_word_merges_equal_the_group_by_of_the_union() {
        // Both paths, and the merge cut into ranges of the first key, with nulls in the keys or
        // not, integers of every size (at 0 bits when they hold one value, at 65 with i64's
        // ends and nulls), parts that do not all hold the same strings (one part a string no
        // other has, and 9 strings in all, so that the codes need 4 bits), parts with
        // categories, with strings, or mixed. Cells with integers across their whole range
        // need more than 127 bits and take the word path through `merge_sorted` itself.
        let cases = [
            (&REVIEWS, 3, Nulls::No, true),
            (&REVIEWS, 0, Nulls::Some, true),
            (&REVIEWS, i32::MAX as i64, Nulls::Some, true),
            (&REVIEWS, i64::MAX, Nulls::Some, true),
            (&CONFIDENCE, 3, Nulls::Some, true),
            (&CONFIDENCE, 0, Nulls::No, true),
            (&DAILY, 40, Nulls::Some, true),
            (&DAILY, 40, Nulls::All, true),
            (&CELLS, 2, Nulls::Some, true),
            (&CELLS, 2, Nulls::No, true),
            (&CELLS, 2, Nulls::All, true),
            (&CELLS, i32::MAX as i64, Nulls::No, false),
        ];
        let pool = [
            "",
            "a",
            "analyst-longer-than-12",
            "b",
            "c",
            "d",
            "e",
            "f",
            "zz",
        ];
        for (layout, span, nulls, packs) in cases {
            for (k, kinds) in [
                (2, "mixed"),
                (3, "categories"),
                (7, "mixed"),
                (3, "strings"),
            ] {
                let parts: Vec<DataFrame> = (0..k)
                    .map(|p| {
                        // Rows of its own, from its own strings (part 0 alone has "zz"), and
                        // rows every part has, so that keys are shared.
                        let own_pool: Vec<&str> = pool
                            .iter()
                            .enumerate()
                            .filter(|&(i, _)| {
                                (i == 8 && p == 0) || (i < 8 && i % 3 != p as usize % 3)
                            })
                            .map(|(_, s)| *s)
                            .collect();
                        let own =
                            random_table(layout, 200, p * 31 + span as u64, span, nulls, &own_pool);
                        let shared = random_table(layout, 100, 7, span, nulls, &pool[1..3]);
                        let t = layout
                            .canonical(
                                concat([own.lazy(), shared.lazy()], UnionArgs::default()).unwrap(),
                            )
                            .unwrap();
                        match (kinds, p % 2) {
                            ("categories", _) | ("mixed", 0) => with_categories(layout, t).unwrap(),
                            _ => t,
                        }
                    })
                    .collect();
                let case = format!(
                    "{} span {span} nulls {nulls:?} {k} parts of {kinds}",
                    layout.name
                );
                let union = concat(
                    parts
                        .iter()
                        .map(|p| as_strings(p.clone()).unwrap().lazy())
                        .collect::<Vec<_>>(),
                    UnionArgs::default(),
                )
                .unwrap();
                let want = layout.canonical(union).unwrap();
                let rows: usize = parts.iter().map(DataFrame::height).sum();
                assert!(
                    want.height() > 3 && want.height() < rows,
                    "{case}: {} keys of {rows} rows, some shared",
                    want.height()
                );
                let words = merge_words(layout, parts.clone()).unwrap();
                let merged = match packed::merge(layout, parts.clone()) {
                    Ok(packed::Merged::Sum(df)) => Some(df),
                    Ok(packed::Merged::TooWide(_)) => None,
                    Err(e) => panic!("{case}: the packed merge failed: {e:?}"),
                };
                assert_eq!(merged.is_some(), packs, "{case}: packs");
                let ranges = merge_in(layout, parts.clone(), 3).unwrap();
                // The parts on periods (or days) of their own, 100 apart: ranges then hold one
                // part alone, given back as it is, and the others' merges must come out in the
                // same types (parts of different types are merged in one range).
                let apart: Vec<DataFrame> = parts
                    .iter()
                    .enumerate()
                    .map(|(p, df)| {
                        let key = df.column(layout.period_key()).unwrap().i32().unwrap();
                        let mut df = df.clone();
                        df.with_column((key + 100 * p as i32).into_column())
                            .unwrap();
                        df
                    })
                    .collect();
                let apart_ranges = merge_in(layout, apart.clone(), 3).unwrap();
                let apart_whole = merge_sorted(layout, apart).unwrap();
                assert_eq!(apart_ranges.schema(), apart_whole.schema(), "{case}: apart");
                assert!(
                    as_strings(apart_ranges.clone())
                        .unwrap()
                        .equals_missing(&as_strings(apart_whole.clone()).unwrap()),
                    "{case}, apart: {apart_ranges} against {apart_whole}"
                );
                let through = merge_sorted(layout, parts).unwrap();
                assert_eq!(through.schema(), words.schema(), "{case}: schema");
                assert_eq!(ranges.schema(), words.schema(), "{case}: schema in ranges");
                for (path, got) in [
                    ("words", Some(words)),
                    ("packed", merged),
                    ("merge_sorted", Some(through)),
                    ("in ranges", Some(ranges)),
                ] {
                    let Some(got) = got else { continue };
                    let strings = as_strings(got).unwrap();
                    assert!(
                        strings.equals_missing(&want),
                        "{case}, {path}: {strings} against {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn packed_merges_keep_the_parts_dtypes() {
        let a = confidence(&[("a", 0.1, 2), ("b", 0.2, 1)]);
        let b = confidence(&[("a", 0.1, 3), ("c", 0.9, 4)]);
        let cats = |df: &DataFrame| with_categories(&CONFIDENCE, df.clone()).unwrap();
        for parts in [
            vec![a.clone(), b.clone()],
            vec![cats(&a), cats(&b)],
            vec![cats(&a), b.clone()],
        ] {
            let words = merge_words(&CONFIDENCE, parts.clone()).unwrap();
            let Ok(packed::Merged::Sum(packed)) = packed::merge(&CONFIDENCE, parts) else {
                panic!("confidence keys pack");
            };
            assert_eq!(packed.schema(), words.schema());
            assert!(packed.equals(&words), "{packed} against {words}");
        }
    }

    #[test]
    fn merging_sorted_parts_sums_equal_keys_in_key_order() {
        let a = confidence(&[("a", 0.1, 2), ("a", 0.5, 1), ("b", 0.2, 1)]);
        let b = confidence(&[("a", 0.1, 3), ("a", 0.3, 1), ("c", 0.9, 4)]);
        let c = confidence(&[("b", 0.2, 6)]);
        let merged = merge_sorted(&CONFIDENCE, vec![a.clone(), b.clone(), c.clone()]).unwrap();
        // By hand: (a, 0.1) 2 + 3, (b, 0.2) 1 + 6; the rest once, sorted by class then value.
        let want = confidence(&[
            ("a", 0.1, 5),
            ("a", 0.3, 1),
            ("a", 0.5, 1),
            ("b", 0.2, 7),
            ("c", 0.9, 4),
        ]);
        assert!(merged.equals(&want), "{merged}");
        // The group-by of the union says the same.
        let union = concat(
            [a.clone().lazy(), b.clone().lazy(), c.clone().lazy()],
            UnionArgs::default(),
        )
        .unwrap();
        assert!(CONFIDENCE.canonical(union).unwrap().equals(&merged));
        // One part or none.
        let one = confidence(&[("z", 1.0, 1)]);
        assert!(merge_sorted(&CONFIDENCE, vec![one.clone()])
            .unwrap()
            .equals(&one));
        assert_eq!(merge_sorted(&CONFIDENCE, vec![]).unwrap().height(), 0);
        // Parts with categories (built in memory) and with strings (read from files) alike.
        let cats = |df: &DataFrame| with_categories(&CONFIDENCE, df.clone()).unwrap();
        for parts in [
            vec![cats(&a), cats(&b), cats(&c)],
            vec![cats(&a), b.clone(), cats(&c)],
            vec![a.clone(), cats(&b), c.clone()],
        ] {
            let mixed = merge_sorted(&CONFIDENCE, parts).unwrap();
            let mixed = as_strings(mixed).unwrap();
            assert!(mixed.equals(&want), "{mixed}");
        }
    }
}
