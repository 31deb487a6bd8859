//! The statistics set of validated raw inputs, built in native passes over integer keys.
//!
//! Each string key column is interned once into integer codes whose order is the strings' byte
//! order (code 0 is null, which sorts first), each row's period comes from a table per UTC day,
//! and every table is summed over packed integer keys. The value-count tables (`confidence`,
//! `reviews`) are built by a counting sort of the rows into their groups and a sort of each
//! group's values. The tables come out canonical: one row per key, sorted by the key, nulls
//! first, exactly as `Layout::canonical` makes them from any other source (the emitted SQL run
//! on DuckDB gives byte-identical statistics files; `tests/stats.rs` checks it).
//!
//! Independent tables are built on separate threads; every sum is an integer sum, so the
//! result does not depend on the thread count.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use foldhash::fast::FixedState;
use polars::prelude::*;
use polars_arrow::array::{Array, ListArray, PrimitiveArray, Utf8ViewArray, View};
use readiness_metrics::reasoning::AttackCatalog;
use readiness_metrics::suffstats::{cal_bin, fine_bin};
use readiness_metrics::Granularity;

use super::period_expr;
use super::radix::RadixKey;
use super::store::DAY_US;
use crate::ingest::{mark, pe, IngestError, Ingested};

pub(crate) type Map<K, V> = HashMap<K, V, FixedState>;

/// Rounds `x` to the nearest 2⁻³³ in fixed-point units (`FIXED_SCALE`), as the emitted SQL does.
fn fixed(x: f64) -> i64 {
    (x * super::FIXED_SCALE + 0.5).floor() as i64
}

/// A string of up to 12 bytes as a key that is compared without reading the string: its
/// 16-byte Arrow view with the bytes past the string masked off (length, then the bytes inline).
/// `None` for longer strings, whose views point into a data buffer.
pub(crate) fn short_key(view: &View) -> Option<u128> {
    let len = view.length;
    (len <= View::MAX_INLINE_SIZE).then(|| {
        let mask = u128::MAX
            .checked_shr(128 - 32 - 8 * len)
            .unwrap_or(u128::MAX);
        view.as_u128() & mask
    })
}

/// A string column as codes: 0 is null, `c ≥ 1` is `values[c - 1]`, and codes follow the
/// strings' byte order. The distinct strings are borrowed from the column (`S = &str`) or,
/// once the column is dropped, owned (`S = String`, [`Codes::owned`]).
pub(crate) struct Codes<S> {
    pub(crate) codes: Vec<u32>,
    values: Vec<S>,
}

/// The slot of a raw string view in a direct-mapped cache of `2^bits` slots (`bits` from 1 to
/// 63): the view's halves folded and multiplied by a Fibonacci constant, top bits kept.
fn view_slot(raw: u128, bits: u32) -> usize {
    let folded = (raw as u64) ^ ((raw >> 64) as u64);
    (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
}

/// Appends a code per row of `arr` to `out` (0 for a null row). A 256-slot direct-mapped cache
/// of the chunk's raw views answers a row whose view it holds (an equal view is an equal
/// string: the same inline bytes, or the same bytes of the same buffer, as a dictionary's
/// values decode); `miss(j)` gives the code of row `j` otherwise. `miss` never returns
/// `u32::MAX` (the cache's empty mark); its error stops the coding.
pub(crate) fn codes_through_views<E>(
    arr: &Utf8ViewArray,
    out: &mut Vec<u32>,
    mut miss: impl FnMut(usize) -> Result<u32, E>,
) -> Result<(), E> {
    let mut cache = [(0u128, u32::MAX); 256];
    for (j, view) in arr.views().iter().enumerate() {
        if !arr.is_valid(j) {
            out.push(0);
            continue;
        }
        let raw = view.as_u128();
        let slot = view_slot(raw, 8);
        let (cached, code) = cache[slot];
        if code != u32::MAX && cached == raw {
            out.push(code);
            continue;
        }
        let code = miss(j)?;
        cache[slot] = (raw, code);
        out.push(code);
    }
    Ok(())
}

impl<'a> Codes<&'a str> {
    pub(crate) fn of(ca: &'a StringChunked) -> Codes<&'a str> {
        Self::of_at_most(ca, usize::MAX).unwrap_or(Codes {
            codes: Vec::new(),
            values: Vec::new(),
        })
    }

    /// [`Codes::of`], or `None` as soon as the column shows more than `max` distinct strings
    /// (before their sort).
    pub(crate) fn of_at_most(ca: &'a StringChunked, max: usize) -> Option<Codes<&'a str>> {
        let mut inline: Map<u128, u32> = Map::default();
        let mut long: Map<&'a str, u32> = Map::default();
        let mut first: Vec<&'a str> = Vec::new();
        let mut codes = Vec::with_capacity(ca.len());
        for arr in ca.downcast_iter() {
            let coded = codes_through_views(arr, &mut codes, |j| {
                let mut new = || {
                    first.push(arr.value(j));
                    first.len() as u32
                };
                let code = match short_key(&arr.views()[j]) {
                    Some(key) => *inline.entry(key).or_insert_with(new),
                    None => *long.entry(arr.value(j)).or_insert_with(&mut new),
                };
                if first.len() > max {
                    return Err(());
                }
                Ok(code)
            });
            coded.ok()?;
        }
        Some(Self::ranked(first, codes))
    }

    /// [`Codes::of`] a column of strings or of categories (the inputs' low-cardinality columns
    /// are read as categories, `crate::ingest::categorical`).
    pub(crate) fn of_column(c: &'a Column) -> PolarsResult<Codes<&'a str>> {
        match c.dtype() {
            DataType::Categorical(..) => Self::of_categories(c.cat32()?),
            _ => Ok(Self::of(c.str()?)),
        }
    }

    /// [`Codes::of`] a categorical column: each category's string is looked up once, the
    /// rows' ids are renumbered in the order the strings first appear, then ranked.
    fn of_categories(ca: &'a Categorical32Chunked) -> PolarsResult<Codes<&'a str>> {
        let mapping = ca.get_mapping();
        // Per category id: its number + 1 once seen; in a vector indexed by id, or in a map
        // where the mapping holds many more categories than the column has rows.
        let upper = mapping.num_cats_upper_bound();
        let dense = upper <= 4 * ca.len() + 4096;
        let mut seen: Vec<u32> = if dense {
            crate::memory::zeros(upper)
        } else {
            Vec::new()
        };
        let mut sparse: Map<u32, u32> = Map::default();
        let mut first: Vec<&'a str> = Vec::new();
        let mut codes = Vec::with_capacity(ca.len());
        for arr in ca.physical().downcast_iter() {
            for (j, &id) in arr.values().iter().enumerate() {
                if !arr.is_valid(j) {
                    codes.push(0);
                    continue;
                }
                let unknown = || {
                    PolarsError::ComputeError(
                        format!("category id {id} is not in its mapping").into(),
                    )
                };
                let slot = match dense {
                    true => seen.get_mut(id as usize).ok_or_else(unknown)?,
                    false if (id as usize) < upper => sparse.entry(id).or_insert(0),
                    false => return Err(unknown()),
                };
                if *slot == 0 {
                    first.push(mapping.cat_to_str(id).ok_or_else(unknown)?);
                    *slot = first.len() as u32;
                }
                codes.push(*slot);
            }
        }
        Ok(Self::ranked(first, codes))
    }

    /// The codes numbered by first appearance (`codes[i] - 1` indexes `first`), renumbered in
    /// the strings' byte order.
    fn ranked(first: Vec<&'a str>, mut codes: Vec<u32>) -> Codes<&'a str> {
        let mut order: Vec<u32> = (0..first.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| first[a as usize].cmp(first[b as usize]));
        let mut rank = vec![0u32; first.len() + 1];
        for (r, &o) in order.iter().enumerate() {
            rank[o as usize + 1] = r as u32 + 1;
        }
        for c in &mut codes {
            *c = rank[*c as usize];
        }
        let values = order.iter().map(|&o| first[o as usize]).collect();
        Codes { codes, values }
    }

    /// The distinct strings alone, copied (for [`coded_col`] once the codes are used up), so
    /// that the column can be dropped.
    fn strings(self) -> Codes<String> {
        Codes {
            codes: Vec::new(),
            ..self.owned()
        }
    }

    /// The same codes with their distinct strings copied, so that the column can be dropped.
    fn owned(self) -> Codes<String> {
        Codes {
            codes: self.codes,
            values: self.values.into_iter().map(str::to_string).collect(),
        }
    }
}

impl<S: AsRef<str>> Codes<S> {
    /// The number of distinct strings.
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    /// The distinct strings, in code order (code `c ≥ 1` is the `c - 1`th).
    pub(crate) fn values(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(AsRef::as_ref)
    }

    /// The string of code `c` (`None` for null).
    fn get(&self, c: u32) -> Option<&str> {
        c.checked_sub(1).map(|i| self.values[i as usize].as_ref())
    }

    pub(crate) fn value(&self, c: u32) -> &str {
        self.get(c).unwrap_or_default()
    }
}

/// Day and period of every row: the period of a UTC day from `period_expr`, evaluated once per
/// day of the input's range.
struct Days {
    first: i64,
    /// Per row: days since `first`.
    day: Vec<u32>,
    /// Per day since `first`: index into `periods`.
    period_of_day: Vec<u32>,
    /// Distinct periods (first day, days since epoch), ascending.
    periods: Vec<i32>,
}

impl Days {
    fn of(us: &Int64Chunked, granularity: Granularity) -> Result<Days, IngestError> {
        let days = || {
            us.downcast_iter()
                .flat_map(|a| a.values_iter().map(|u| u.div_euclid(DAY_US)))
        };
        let range = days().fold(None, |r: Option<(i64, i64)>, d| {
            Some(r.map_or((d, d), |(lo, hi)| (lo.min(d), hi.max(d))))
        });
        let Some((first, last)) = range else {
            return Ok(Days {
                first: 0,
                day: Vec::new(),
                period_of_day: Vec::new(),
                periods: Vec::new(),
            });
        };
        let starts: Vec<i64> = (first..=last).map(|d| d * DAY_US).collect();
        let table = df!("us" => starts)
            .map_err(pe("periods"))?
            .lazy()
            .select([period_expr(col("us"), granularity).alias("period")])
            .collect()
            .map_err(pe("periods"))?;
        let per_day: Vec<i32> = table
            .column("period")
            .map_err(pe("periods"))?
            .i32()
            .map_err(pe("periods"))?
            .iter()
            .map(|p| p.unwrap_or_default())
            .collect();
        let mut periods = per_day.clone();
        periods.dedup();
        periods.sort_unstable();
        periods.dedup();
        let period_of_day = per_day
            .iter()
            .map(|p| periods.partition_point(|q| q < p) as u32)
            .collect();
        Ok(Days {
            first,
            day: days().map(|d| (d - first) as u32).collect(),
            period_of_day,
            periods,
        })
    }

    fn period(&self, row: usize) -> u32 {
        self.period_of_day[self.day[row] as usize]
    }
}

/// Runs `f`, then marks (with `READINESS_TIMINGS`) that table `what` is built.
fn timed<R>(what: &str, f: impl FnOnce() -> R) -> R {
    let r = f();
    mark(&format!("statistics: {what} built"));
    r
}

/// A unit of work for [`run_all`].
pub(super) type Task<'s, R> = Box<dyn FnOnce() -> R + Send + 's>;

/// Runs `tasks` on up to [`crate::threads::workers`] threads, results in task order.
pub(super) fn run_all<'s, R: Send>(tasks: Vec<Task<'s, R>>) -> Vec<R> {
    run_on(tasks, usize::MAX)
}

/// Runs `tasks` on up to `threads` threads (and no more than [`crate::threads::workers`]),
/// results in task order.
pub(super) fn run_on<'s, R: Send>(tasks: Vec<Task<'s, R>>, threads: usize) -> Vec<R> {
    let n = tasks.len();
    let threads = crate::threads::workers().min(threads).clamp(1, n.max(1));
    let queue: Vec<Mutex<Option<Task<'s, R>>>> =
        tasks.into_iter().map(|t| Mutex::new(Some(t))).collect();
    let results: Vec<Mutex<Option<R>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let task = queue[i].lock().ok().and_then(|mut t| t.take());
                if let Some(task) = task {
                    let r = task();
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    // Every task ran (a panicking one re-raised its panic when the scope ended), and the
    // locks are only poisoned by a panic.
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .ok()
                .flatten()
                .expect("every task of run_on has run")
        })
        .collect()
}

/// Rows grouped by key: the distinct keys in order, and the rows of each, in row order.
struct Groups<K> {
    keys: Vec<K>,
    /// Group `g` is `rows[start[g]..start[g + 1]]`.
    start: Vec<usize>,
    rows: Vec<u32>,
}

impl<K: Copy + Ord + Hash> Groups<K> {
    /// Groups the rows by key (a counting sort); rows with no key are left out.
    fn of(keys: impl Iterator<Item = Option<K>>) -> Groups<K> {
        let mut slot_of: Map<K, u32> = Map::default();
        let mut slot_keys: Vec<K> = Vec::new();
        let row_slot: Vec<u32> = keys
            .map(|k| match k {
                None => u32::MAX,
                Some(k) => *slot_of.entry(k).or_insert_with(|| {
                    slot_keys.push(k);
                    slot_keys.len() as u32 - 1
                }),
            })
            .collect();
        let mut order: Vec<u32> = (0..slot_keys.len() as u32).collect();
        order.sort_unstable_by_key(|&s| slot_keys[s as usize]);
        let mut position = vec![0u32; order.len()];
        for (p, &s) in order.iter().enumerate() {
            position[s as usize] = p as u32;
        }
        let mut start = crate::memory::zeros(order.len() + 1);
        for &s in row_slot.iter().filter(|&&s| s != u32::MAX) {
            start[position[s as usize] as usize + 1] += 1;
        }
        for p in 0..order.len() {
            start[p + 1] += start[p];
        }
        let mut rows = vec![0u32; start[order.len()]];
        let mut next = start.clone();
        for (row, &s) in row_slot.iter().enumerate() {
            if s != u32::MAX {
                let p = position[s as usize] as usize;
                rows[next[p]] = row as u32;
                next[p] += 1;
            }
        }
        Groups {
            keys: order.iter().map(|&s| slot_keys[s as usize]).collect(),
            start,
            rows,
        }
    }

    fn rows(&self, g: usize) -> &[u32] {
        &self.rows[self.start[g]..self.start[g + 1]]
    }
}

/// Value counts: one row per (group, value), sorted by group key, then value.
struct Counted<K, T> {
    /// The group keys, ascending.
    groups: Vec<K>,
    /// Per row: index into `groups`.
    group: Vec<u32>,
    values: Vec<T>,
    counts: Vec<u64>,
}

impl<K: Copy, T> Counted<K, T> {
    fn keys(&self) -> impl Iterator<Item = K> + Clone + '_ {
        self.group.iter().map(|&g| self.groups[g as usize])
    }

    /// The same counts with each group key replaced by `f` of it (which must keep their order).
    fn map_keys<L>(self, f: impl Fn(K) -> L) -> Counted<L, T> {
        Counted {
            groups: self.groups.into_iter().map(f).collect(),
            group: self.group,
            values: self.values,
            counts: self.counts,
        }
    }
}

/// The rows' `values` counted per (group key, value). The rows are grouped by a counting sort;
/// each group's values are then sorted on their own (the groups split between two threads).
/// Takes the inputs by value to free them before the result is built.
fn value_counts<K, T>(keys: Vec<K>, values: Vec<T>) -> Counted<K, T>
where
    K: Copy + Ord + Hash + Send + Sync,
    T: RadixKey + Send,
{
    let groups = Groups::of(keys.iter().map(|k| Some(*k)));
    drop(keys);
    let grouped: Vec<T> = groups.rows.iter().map(|&r| values[r as usize]).collect();
    drop(values);
    let Groups { keys, start, rows } = groups;
    drop(rows);
    count_in_groups(keys, start, grouped)
}

/// At most this many dense ranks for [`value_counts_dense`] (and no more than
/// [`dense_fits`] allows for the rows): its array of 4 bytes a rank stays within 32 MiB, and
/// the ranks fit a `u32`.
const DENSE_KEYS: u64 = 1 << 23;

/// Whether `ranks` dense ranks may index the value counts of `rows` rows: at most `limit`, and
/// not many more than the rows (a rank array much longer than the input costs more to scan
/// than hashing the rows would).
pub(crate) fn dense_fits(ranks: u64, rows: usize, limit: u64) -> bool {
    ranks <= limit && ranks <= 4 * rows as u64 + (1 << 16)
}

/// [`value_counts`] of keys that are dense ranks below `n` (ordered as what they stand for):
/// the rows are grouped by indexing, without hashing, and the values are placed in their group
/// directly. The groups are the ranks present, ascending.
/// Takes owned keys (or borrowed ones) and values, to free them before the result is built.
fn value_counts_dense<T>(owned: impl AsRef<[u32]>, n: usize, values: Vec<T>) -> Counted<u32, T>
where
    T: RadixKey + Send + Default,
{
    let keys = owned.as_ref();
    let mut next = crate::memory::zeros(n);
    for &k in keys {
        next[k as usize] += 1;
    }
    let (mut present, mut start) = (Vec::new(), vec![0usize]);
    let mut at = 0u32;
    for (k, slot) in next.iter_mut().enumerate() {
        if *slot > 0 {
            present.push(k as u32);
            let len = *slot;
            *slot = at;
            at += len;
            start.push(at as usize);
        }
    }
    let mut grouped = vec![T::default(); keys.len()];
    for (&k, v) in keys.iter().zip(values) {
        let slot = &mut next[k as usize];
        grouped[*slot as usize] = v;
        *slot += 1;
    }
    drop(next);
    drop(owned);
    count_in_groups(present, start, grouped)
}

/// The value counts of values already grouped (group `g` is `grouped[start[g]..start[g + 1]]`,
/// `keys` ascending): each group's values sorted, then counted.
fn count_in_groups<K, T>(keys: Vec<K>, start: Vec<usize>, mut grouped: Vec<T>) -> Counted<K, T>
where
    T: RadixKey + Send,
{
    // Split the groups where half of the rows are sorted, and sort each half's groups.
    let half = grouped.len() / 2;
    let cut = start.partition_point(|&s| s < half).min(keys.len());
    let (low, high) = grouped.split_at_mut(start[cut]);
    let sort_groups = |part: &mut [T], bounds: &[usize], base: usize| {
        let mut scratch = Vec::new();
        for w in bounds.windows(2) {
            super::radix::sort(&mut part[w[0] - base..w[1] - base], &mut scratch);
        }
    };
    crate::threads::join(
        || sort_groups(low, &start[..=cut], 0),
        || sort_groups(high, &start[cut..], start[cut]),
    );
    // The output's length first, so that its vectors are allocated once, to size.
    let distinct = grouped
        .chunk_by(|a, b| a == b)
        .count()
        .saturating_add(start.len());
    let (mut group, mut out_values, mut counts) = (
        Vec::with_capacity(distinct),
        Vec::with_capacity(distinct),
        Vec::with_capacity(distinct),
    );
    for g in 0..keys.len() {
        let mut prev: Option<T> = None;
        for &v in &grouped[start[g]..start[g + 1]] {
            match counts.last_mut() {
                Some(c) if prev == Some(v) => *c += 1,
                _ => {
                    group.push(g as u32);
                    out_values.push(v);
                    counts.push(1u64);
                    prev = Some(v);
                }
            }
        }
    }
    Counted {
        groups: keys,
        group,
        values: out_values,
        counts,
    }
}

/// `entries` (a map's, or several maps') sorted by key.
fn sorted<K: Ord + Copy, V: Copy>(entries: impl IntoIterator<Item = (K, V)>) -> Vec<(K, V)> {
    let mut rows: Vec<(K, V)> = entries.into_iter().collect();
    rows.sort_unstable_by_key(|r| r.0);
    rows
}

fn frame(columns: Vec<Column>) -> Result<DataFrame, IngestError> {
    DataFrame::new_infer_height(columns).map_err(pe("statistics"))
}

fn str_col<'a>(name: &str, values: impl Iterator<Item = &'a str>) -> Column {
    Column::new(name.into(), values.collect::<Vec<&str>>())
}

/// The string column of `codes` picked row by row (as [`Codes::value`] gives them: code 0 is the
/// empty string): a gather from the distinct strings, which copies 16-byte views instead of
/// building every string again (the value-count tables have a row per decision or verdict).
fn coded_col(
    name: &str,
    codes: &Codes<impl AsRef<str>>,
    picks: impl Iterator<Item = u32>,
) -> Result<Column, IngestError> {
    let distinct: StringChunked = std::iter::once("")
        .chain(codes.values())
        .map(Some)
        .collect();
    let picks = IdxCa::from_vec(name.into(), picks.map(|c| c as IdxSize).collect());
    let column = distinct.take(&picks).map_err(pe(name))?;
    Ok(column.with_name(name.into()).into_column())
}

/// [`coded_col`] as the categories the column is read with (`crate::ingest::categorical`): a
/// 4-byte id per row instead of a 16-byte string view, for the value-count tables with a row
/// per decision or verdict (430 MiB less at 10^7 decisions). Each distinct string is looked up
/// in the categories once. A column that is not read as categories stays strings.
fn coded_cats(
    name: &str,
    codes: &Codes<impl AsRef<str>>,
    picks: impl Iterator<Item = u32>,
) -> Result<Column, IngestError> {
    let Some(dtype @ DataType::Categorical(..)) = crate::ingest::categorical(name) else {
        return coded_col(name, codes, picks);
    };
    let mapping = dtype.cat_mapping().map_err(pe(name))?;
    let ids = std::iter::once("")
        .chain(codes.values())
        .map(|s| mapping.insert_cat(s))
        .collect::<PolarsResult<Vec<u32>>>()
        .map_err(pe(name))?;
    let picked = UInt32Chunked::from_vec(name.into(), picks.map(|c| ids[c as usize]).collect());
    crate::ingest::categorical_column(picked, &dtype).map_err(pe(name))
}

/// Bits of the fields packed below the three 32-bit codes of a cell key.
fn low_bits(crit: u32, privileged: bool, cal: usize, fine: usize, outcome: i32, exec: u8) -> u128 {
    // Validation guarantees these widths: 4 criticality spellings, outcomes 0–4, 10 and 100
    // bins, a nullable bool.
    debug_assert!(crit < 8 && cal < 16 && fine < 128 && (0..8).contains(&outcome) && exec < 4);
    ((crit as u128) << 17)
        | ((privileged as u128) << 16)
        | ((cal as u128) << 12)
        | ((fine as u128) << 5)
        | (((outcome as u128) & 7) << 2)
        | exec as u128
}

fn high(a: u32, b: u32, c: u32) -> u128 {
    ((a as u128) << 96) | ((b as u128) << 64) | ((c as u128) << 32)
}

fn part(key: u128, shift: u32) -> u32 {
    (key >> shift) as u32
}

/// `period`, `action_class` and `model_version` of keys packed as `high(period, class, version)`.
fn class_version_columns(r: &Rows, keys: impl Iterator<Item = u128> + Clone) -> Vec<Column> {
    vec![
        Column::new(
            "period".into(),
            keys.clone()
                .map(|k| r.period_value(part(k, 96)))
                .collect::<Vec<i32>>(),
        ),
        str_col(
            "action_class",
            keys.clone().map(|k| r.class.value(part(k, 64))),
        ),
        str_col("model_version", keys.map(|k| r.version.value(part(k, 32)))),
    ]
}

/// A numeric column's values, `null` where a row is null; copied a chunk at a time where a
/// chunk has no nulls.
fn values_or<T: PolarsNumericType>(ca: &ChunkedArray<T>, null: T::Native) -> Vec<T::Native> {
    let mut out = Vec::with_capacity(ca.len());
    for arr in ca.downcast_iter() {
        match arr.null_count() {
            0 => out.extend_from_slice(arr.values()),
            _ => out.extend(arr.iter().map(|v| v.copied().unwrap_or(null))),
        }
    }
    out
}

/// A boolean column's values as `code` gives them (nulls included), read from the chunks' bits
/// where a chunk has no nulls.
fn bool_codes<T: Copy>(ca: &BooleanChunked, code: fn(Option<bool>) -> T) -> Vec<T> {
    let (no, yes) = (code(Some(false)), code(Some(true)));
    let mut out = Vec::with_capacity(ca.len());
    for arr in ca.downcast_iter() {
        match arr.null_count() {
            0 => out.extend(arr.values().iter().map(|b| if b { yes } else { no })),
            _ => out.extend(arr.iter().map(code)),
        }
    }
    out
}

/// The decision columns every table reads, as codes and plain vectors (the columns they were
/// made from are dropped: the statistics tasks' working memory reuses theirs).
struct Rows {
    days: Days,
    class: Codes<String>,
    /// Per row, where there are at most [`DENSE_KEYS`] (period, class) pairs: the pair's dense
    /// rank, `period × (classes + 1) + class code`.
    period_class: Option<Vec<u32>>,
    /// The most dense ranks the `reviews` value counts may index by ([`DENSE_KEYS`]; tests
    /// lower it), eight times the most (day, class) slots `daily` sums rows without a target
    /// in, and 64 times the most cells `cells` sums in one map. `confidence` indexes by
    /// `period_class` wherever it is set.
    dense_limit: u64,
    version: Codes<String>,
    crit: Codes<String>,
    target: StringChunked,
    confidence: Vec<f64>,
    privileged: Vec<bool>,
    outcome: Vec<i32>,
    /// 0 null, 1 false, 2 true (the sort order of a nullable bool).
    executed: Vec<u8>,
    /// The cited IDs as lists of ids of [`crate::ingest::techniques`].
    techniques: ListChunked,
}

impl Rows {
    /// Takes the valid decisions' frame, which is dropped once its columns are codes and
    /// vectors (only `target_entity` and `technique_ids` are kept, as shared arrays).
    fn of(df: DataFrame, granularity: Granularity) -> Result<Rows, IngestError> {
        let df = &df;
        let get = |name: &str| df.column(name).map_err(pe("statistics"));
        let s = |name: &'static str| -> Result<&StringChunked, IngestError> {
            df.column(name)
                .map_err(pe("statistics"))?
                .str()
                .map_err(pe(name))
        };
        let us = get("decided_us")?.i64().map_err(pe("decided_us"))?;
        let (class, version, crit, target) = (
            get("action_class")?,
            get("model_version")?,
            get("asset_criticality")?,
            s("target_entity")?,
        );
        // The plain vectors, without nulls (a null confidence is 0, a null outcome 4).
        let numbers = || -> Result<(Vec<f64>, Vec<i32>), IngestError> {
            let confidence = get("confidence")?.f64().map_err(pe("confidence"))?;
            let outcome = get("outcome")?.i32().map_err(pe("outcome"))?;
            Ok((values_or(confidence, 0.0), values_or(outcome, 4)))
        };
        // Privileged: a null is false. Executed: 0 null, 1 false, 2 true.
        let flags = || -> Result<(Vec<bool>, Vec<u8>), IngestError> {
            let privileged = get("privileged")?.bool().map_err(pe("privileged"))?;
            let executed = get("executed")?.bool().map_err(pe("executed"))?;
            Ok((
                bool_codes(privileged, |b| b.unwrap_or_default()),
                bool_codes(executed, |b| b.map_or(0, |b| 1 + b as u8)),
            ))
        };
        // The days and the numbers beside the string codes and the flags (each side about
        // 0.1 s at 10^7 decisions).
        let ((days, numbers), (flags, mut codes)) = crate::threads::join(
            || (Days::of(us, granularity), numbers()),
            || {
                let codes = run_all::<PolarsResult<Codes<String>>>(vec![
                    Box::new(move || Codes::of_column(class).map(Codes::owned)),
                    Box::new(move || Codes::of_column(version).map(Codes::owned)),
                    Box::new(move || Codes::of_column(crit).map(Codes::owned)),
                ]);
                (flags(), codes)
            },
        );
        let (Some(crit), Some(version), Some(class)) = (codes.pop(), codes.pop(), codes.pop())
        else {
            return Err(missing("string codes"));
        };
        let (class, version, crit) = (
            class.map_err(pe("action_class"))?,
            version.map_err(pe("model_version"))?,
            crit.map_err(pe("asset_criticality"))?,
        );
        let days = days?;
        let ((confidence, outcome), (privileged, executed)) = (numbers?, flags?);
        let pairs = days.periods.len() as u64 * (class.len() as u64 + 1);
        let dense_limit = DENSE_KEYS;
        let period_class = dense_fits(pairs, class.codes.len(), dense_limit).then(|| {
            let width = class.len() as u32 + 1;
            let mut ranks = vec![0u32; class.codes.len()];
            crate::threads::map_parts_mut(&mut ranks, |offset, part| {
                for (o, rank) in part.iter_mut().enumerate() {
                    let i = offset + o;
                    *rank = days.period(i) * width + class.codes[i];
                }
            });
            ranks
        });
        Ok(Rows {
            days,
            class,
            period_class,
            dense_limit,
            version,
            crit,
            target: target.clone(),
            confidence,
            privileged,
            outcome,
            executed,
            techniques: get("technique_ids")?
                .list()
                .map_err(pe("technique_ids"))?
                .clone(),
        })
    }

    /// The number of dense ranks of (period, class, `a` and `b`), for codes of two more
    /// columns with `a` and `b` values (their null code included).
    fn dense_ranks(&self, a: u32, b: u32) -> u64 {
        (self.days.periods.len() as u64)
            .saturating_mul(self.class.len() as u64 + 1)
            .saturating_mul(a as u64)
            .saturating_mul(b as u64)
    }

    fn period_value(&self, idx: u32) -> i32 {
        self.days.periods[idx as usize]
    }
}

fn missing(what: &str) -> IngestError {
    IngestError::Polars {
        context: "statistics".into(),
        source: PolarsError::ComputeError(format!("{what} not built").into()),
    }
}

/// The buckets [`cells`] sums in once it has many cells: with 279,000 cells, about 1,100 a
/// bucket (a map of 60 KiB).
const CELL_BUCKETS: usize = 256;

/// The rows [`cells`] spreads into its buckets at a time (32 bytes each: 32 MiB), enough for
/// each bucket's map to be summed into several times a block.
const CELL_BLOCK: usize = 1 << 20;

/// A cell key's bucket: the top bits of a multiplicative hash, a function apart from the maps'
/// own hash (whose top bits tag the entries within a map).
fn cell_bucket(key: u128) -> usize {
    let folded = (key as u64) ^ ((key >> 64) as u64).rotate_left(29);
    (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize
}

/// One cell's decisions and fixed-point sums of confidence to the fourth power.
type CellSums = (u64, [i64; 4]);

fn add_cell(acc: &mut CellSums, c: f64) {
    acc.0 += 1;
    let (c2, c3) = (c * c, c * c * c);
    acc.1[0] += fixed(c);
    acc.1[1] += fixed(c2);
    acc.1[2] += fixed(c3);
    acc.1[3] += fixed(c * c * c * c);
}

/// Per cell (period, class, version, criticality, privileged, calibration and fine bins,
/// outcome, executed): decisions and the fixed-point sums of confidence to the fourth power.
///
/// The rows are summed in one map while it holds fewer than a 64th of the dense limit (2^17
/// cells). Past that, the map would no longer stay in the cache on input not in time order, whose
/// rows visit all cells at random (279,000 cells at 10^7 never-seen decisions: BENCHMARKS.md,
/// fifteenth session): the cells are split into [`CELL_BUCKETS`] maps by a hash of their key,
/// and each block of rows is spread into the buckets first, then summed bucket by bucket.
fn cells(r: &Rows) -> Result<DataFrame, IngestError> {
    cells_in_blocks(r, CELL_BLOCK)
}

/// [`cells`], spreading `block` rows at a time once the cells are in buckets.
fn cells_in_blocks(r: &Rows, block: usize) -> Result<DataFrame, IngestError> {
    let key = |i: usize, c: f64| {
        high(r.days.period(i), r.class.codes[i], r.version.codes[i])
            | low_bits(
                r.crit.codes[i],
                r.privileged[i],
                cal_bin(c),
                fine_bin(c),
                r.outcome[i],
                r.executed[i],
            )
    };
    let n = r.confidence.len();
    let spread_at = (r.dense_limit / 64) as usize;
    let mut single: Map<u128, CellSums> = Map::default();
    let mut i = 0;
    while i < n && single.len() < spread_at {
        for i in i..(i + 4096).min(n) {
            let c = r.confidence[i];
            add_cell(single.entry(key(i, c)).or_default(), c);
        }
        i += 4096;
    }
    let mut maps: Vec<Map<u128, CellSums>> = Vec::new();
    if i < n {
        maps = (0..CELL_BUCKETS).map(|_| Map::default()).collect();
        for (k, sums) in single.drain() {
            maps[cell_bucket(k)].insert(k, sums);
        }
        let mut spread: Vec<Vec<(u128, f64)>> = vec![Vec::new(); CELL_BUCKETS];
        for start in (i..n).step_by(block) {
            for i in start..(start + block).min(n) {
                let c = r.confidence[i];
                let k = key(i, c);
                spread[cell_bucket(k)].push((k, c));
            }
            for (map, rows) in maps.iter_mut().zip(&mut spread) {
                for &(k, c) in rows.iter() {
                    add_cell(map.entry(k).or_default(), c);
                }
                rows.clear();
            }
        }
    }
    let rows = sorted(single.into_iter().chain(maps.into_iter().flatten()));
    let low = |k: u128| part(k, 0);
    let mut columns = class_version_columns(r, rows.iter().map(|x| x.0));
    columns.extend([
        str_col(
            "asset_criticality",
            rows.iter().map(|x| r.crit.value(low(x.0) >> 17)),
        ),
        Column::new(
            "privileged".into(),
            rows.iter()
                .map(|x| (low(x.0) >> 16) & 1 == 1)
                .collect::<Vec<bool>>(),
        ),
        Column::new(
            "cal_bin".into(),
            rows.iter()
                .map(|x| ((low(x.0) >> 12) & 15) as i32)
                .collect::<Vec<i32>>(),
        ),
        Column::new(
            "fine_bin".into(),
            rows.iter()
                .map(|x| ((low(x.0) >> 5) & 127) as i32)
                .collect::<Vec<i32>>(),
        ),
        Column::new(
            "outcome".into(),
            rows.iter()
                .map(|x| ((low(x.0) >> 2) & 7) as i32)
                .collect::<Vec<i32>>(),
        ),
        Column::new(
            "executed".into(),
            rows.iter()
                .map(|x| match low(x.0) & 3 {
                    0 => None,
                    1 => Some(false),
                    _ => Some(true),
                })
                .collect::<Vec<Option<bool>>>(),
        ),
        Column::new(
            "n".into(),
            rows.iter().map(|x| x.1 .0).collect::<Vec<u64>>(),
        ),
        Column::new(
            "sum_conf".into(),
            rows.iter().map(|x| x.1 .1[0]).collect::<Vec<i64>>(),
        ),
        Column::new(
            "sum_conf2".into(),
            rows.iter().map(|x| x.1 .1[1]).collect::<Vec<i64>>(),
        ),
        Column::new(
            "sum_conf3".into(),
            rows.iter().map(|x| x.1 .1[2]).collect::<Vec<i64>>(),
        ),
        Column::new(
            "sum_conf4".into(),
            rows.iter().map(|x| x.1 .1[3]).collect::<Vec<i64>>(),
        ),
    ]);
    frame(columns)
}

fn confidence(r: &Rows) -> Result<DataFrame, IngestError> {
    // Confidences are in [0, 1] without -0.0 (ingest normalises it): their bit patterns sort
    // like the numbers.
    let bits: Vec<u64> = r.confidence.iter().map(|c| c.to_bits()).collect();
    let width = r.class.len() as u64 + 1;
    let counted = match &r.period_class {
        Some(keys) => value_counts_dense(keys, r.days.periods.len() * width as usize, bits)
            .map_keys(|k| ((k as u64 / width) << 32) | (k as u64 % width)),
        None => {
            let keys: Vec<u64> = (0..r.confidence.len())
                .map(|i| ((r.days.period(i) as u64) << 32) | r.class.codes[i] as u64)
                .collect();
            value_counts(keys, bits)
        }
    };
    frame(vec![
        Column::new(
            "period".into(),
            counted
                .keys()
                .map(|k| r.period_value((k >> 32) as u32))
                .collect::<Vec<i32>>(),
        ),
        coded_cats("action_class", &r.class, counted.keys().map(|k| k as u32))?,
        // Collected in place: the bits' vector becomes the numbers'.
        Column::new(
            "confidence".into(),
            counted
                .values
                .into_iter()
                .map(f64::from_bits)
                .collect::<Vec<f64>>(),
        ),
        Column::new("n".into(), counted.counts),
    ])
}

/// Per day, class and target: decisions, those on privileged or high/critical assets, the
/// confidence sum, reviewed and disagreed. Rows without a target are summed in one pass in row
/// order, into a table indexed by day and class (when it is not much larger than the rows).
/// Rows with a target are grouped by (day, class) first; each group's targets are then summed
/// in a small map (a map over all targets at once would miss the cache on every row). A
/// group's row without a target comes first, then its targets in byte order.
fn daily(r: &Rows, unwatched: &BTreeSet<String>) -> Result<DataFrame, IngestError> {
    let watched: Vec<bool> = std::iter::once(false)
        .chain(r.class.values().map(|c| !unwatched.contains(c)))
        .collect();
    let priv_crit: Vec<bool> = std::iter::once(false)
        .chain(r.crit.values().map(|c| matches!(c, "high" | "critical")))
        .collect();
    let targets = crate::ingest::Ids::of(&r.target);
    let add = |acc: &mut DailyAcc, i: usize| {
        let o = r.outcome[i];
        acc.n += 1;
        acc.priv_crit += (r.privileged[i] || priv_crit[r.crit.codes[i] as usize]) as u64;
        acc.sum_conf += fixed(r.confidence[i]);
        acc.reviewed += (o < 3) as u64;
        acc.disagree += (o == 1 || o == 2) as u64;
    };
    // Rows without a target, by day and class code (slot `day * classes + class`).
    let classes = watched.len();
    let slots = r.days.period_of_day.len().saturating_mul(classes);
    let rows = r.confidence.len();
    // At most an eighth of the dense limit (2^20 slots of 40 bytes) and not many more than the
    // rows; otherwise every row goes through the groups.
    let dense = r.target.null_count() > 0
        && slots as u64 <= (r.dense_limit / 8).min(rows as u64 + (1 << 16));
    let mut untargeted: Vec<DailyAcc> = Vec::new();
    if dense {
        untargeted = vec![DailyAcc::default(); slots];
        for i in 0..rows {
            let class = r.class.codes[i] as usize;
            if watched[class] && targets.get(i).is_none() {
                add(&mut untargeted[r.days.day[i] as usize * classes + class], i);
            }
        }
    }
    let groups = Groups::of((0..rows).map(|i| {
        let class = r.class.codes[i];
        let grouped = !dense || targets.get(i).is_some();
        (grouped && watched[class as usize]).then(|| ((r.days.day[i] as u64) << 32) | class as u64)
    }));
    // Both kinds of rows in key order, `day << 32 | class`: a slot's sums (`None`) or a
    // group (`Some`); at one key the slot first, as the row without a target sorts first.
    let mut order: Vec<(u64, Option<usize>)> = untargeted
        .iter()
        .enumerate()
        .filter(|(_, acc)| acc.n > 0)
        .map(|(slot, _)| {
            (
                (((slot / classes) as u64) << 32) | (slot % classes) as u64,
                None,
            )
        })
        .chain(
            groups
                .keys
                .iter()
                .enumerate()
                .map(|(g, &key)| (key, Some(g))),
        )
        .collect();
    order.sort_unstable();
    let mut out: Vec<(u64, Option<&str>, DailyAcc)> = Vec::new();
    let mut per_target: Map<Option<&str>, DailyAcc> = Map::default();
    for (key, group) in order {
        let Some(g) = group else {
            let slot = (key >> 32) as usize * classes + (key & u64::from(u32::MAX)) as usize;
            out.push((key, None, untargeted[slot]));
            continue;
        };
        per_target.clear();
        for &row in groups.rows(g) {
            let i = row as usize;
            add(per_target.entry(targets.get(i)).or_default(), i);
        }
        let first = out.len();
        out.extend(per_target.iter().map(|(t, a)| (key, *t, *a)));
        out[first..].sort_unstable_by_key(|x| x.1);
    }
    let first = r.days.first;
    frame(vec![
        Column::new(
            "day".into(),
            out.iter()
                .map(|x| (first + (x.0 >> 32) as i64) as i32)
                .collect::<Vec<i32>>(),
        ),
        coded_col("action_class", &r.class, out.iter().map(|x| x.0 as u32))?,
        Column::new(
            "target_entity".into(),
            out.iter().map(|x| x.1).collect::<Vec<Option<&str>>>(),
        ),
        Column::new("n".into(), out.iter().map(|x| x.2.n).collect::<Vec<u64>>()),
        Column::new(
            "n_priv_crit".into(),
            out.iter().map(|x| x.2.priv_crit).collect::<Vec<u64>>(),
        ),
        Column::new(
            "sum_conf".into(),
            out.iter().map(|x| x.2.sum_conf).collect::<Vec<i64>>(),
        ),
        Column::new(
            "n_reviewed".into(),
            out.iter().map(|x| x.2.reviewed).collect::<Vec<u64>>(),
        ),
        Column::new(
            "n_disagree".into(),
            out.iter().map(|x| x.2.disagree).collect::<Vec<u64>>(),
        ),
    ])
}

/// One `daily` row's sums.
#[derive(Default, Clone, Copy)]
struct DailyAcc {
    n: u64,
    priv_crit: u64,
    sum_conf: i64,
    reviewed: u64,
    disagree: u64,
}

fn days(r: &Rows) -> Result<DataFrame, IngestError> {
    let mut n = vec![0u64; r.days.period_of_day.len()];
    for &d in &r.days.day {
        n[d as usize] += 1;
    }
    let present: Vec<(usize, u64)> = n.into_iter().enumerate().filter(|x| x.1 > 0).collect();
    frame(vec![
        Column::new(
            "day".into(),
            present
                .iter()
                .map(|x| (r.days.first + x.0 as i64) as i32)
                .collect::<Vec<i32>>(),
        ),
        Column::new(
            "n".into(),
            present.iter().map(|x| x.1).collect::<Vec<u64>>(),
        ),
    ])
}

/// The cited IDs that are not current ATT&CK techniques, normalised (trimmed, upper case),
/// each with whether the catalogue lists it as deprecated or revoked.
struct Cited<'a> {
    catalog: Map<&'a str, bool>,
    /// By spelling's id in [`crate::ingest::techniques`]: `Some` once classified, holding the
    /// index into `ids`, or `None` for a current technique.
    raw: Vec<Option<Option<u32>>>,
    ids: Vec<(String, bool)>,
    index: Map<String, u32>,
}

impl Cited<'_> {
    /// The class of the spelling with id `raw`: an error if the id is not in the mapping.
    fn classify(&mut self, raw: u32) -> Result<Option<u32>, IngestError> {
        let k = raw as usize;
        if let Some(Some(c)) = self.raw.get(k) {
            return Ok(*c);
        }
        let spelling = crate::ingest::techniques()
            .cat_to_str(raw)
            .ok_or_else(|| missing("a cited ID's spelling"))?;
        let id = spelling.trim().to_uppercase();
        let class = match self.catalog.get(id.as_str()) {
            Some(false) => None,
            status => Some(match self.index.get(&id) {
                Some(&i) => i,
                None => {
                    let i = self.ids.len() as u32;
                    self.ids.push((id.clone(), status.is_some()));
                    self.index.insert(id, i);
                    i
                }
            }),
        };
        if self.raw.len() <= k {
            self.raw.resize(k + 1, None);
        }
        self.raw[k] = Some(class);
        Ok(class)
    }
}

/// `reasoning` (per class, period and version: decisions, decisions citing any ID, citing an
/// unknown one, citing a stale one) and `cited` (per period, version and non-current ID: the
/// decisions citing it).
fn reasoning_and_cited(
    r: &Rows,
    catalog: &AttackCatalog,
) -> Result<(DataFrame, DataFrame), IngestError> {
    let mut cited = Cited {
        catalog: catalog.entries().collect(),
        raw: Vec::new(),
        ids: Vec::new(),
        index: Map::default(),
    };
    let mut reasoning: Map<u128, [u64; 4]> = Map::default();
    let mut counts: Map<u128, u64> = Map::default();
    let mut found: Vec<u32> = Vec::new();
    let mut row = 0usize;
    for arr in r.techniques.downcast_iter() {
        let arr: &ListArray<i64> = arr;
        let values = arr
            .values()
            .as_any()
            .downcast_ref::<PrimitiveArray<u32>>()
            .ok_or_else(|| missing("technique_ids as a list of ids"))?;
        let offsets = arr.offsets().buffer();
        for j in 0..arr.len() {
            let (p, class, version) =
                (r.days.period(row), r.class.codes[row], r.version.codes[row]);
            row += 1;
            found.clear();
            let mut citing = false;
            if arr.is_valid(j) {
                let (a, b) = (offsets[j] as usize, offsets[j + 1] as usize);
                citing = b > a;
                for k in a..b {
                    if values.is_valid(k) {
                        if let Some(id) = cited.classify(values.value(k))? {
                            found.push(id);
                        }
                    }
                }
            }
            found.sort_unstable();
            found.dedup();
            let unknown = found.iter().any(|&i| !cited.ids[i as usize].1);
            let stale = found.iter().any(|&i| cited.ids[i as usize].1);
            let acc = reasoning.entry(high(p, class, version)).or_default();
            acc[0] += 1;
            acc[1] += citing as u64;
            acc[2] += unknown as u64;
            acc[3] += stale as u64;
            for &id in &found {
                *counts.entry(high(p, version, id)).or_default() += 1;
            }
        }
    }
    let rows = sorted(reasoning);
    let mut columns = class_version_columns(r, rows.iter().map(|x| x.0));
    columns.extend([
        Column::new(
            "n_decisions".into(),
            rows.iter().map(|x| x.1[0]).collect::<Vec<u64>>(),
        ),
        Column::new(
            "n_citing".into(),
            rows.iter().map(|x| x.1[1]).collect::<Vec<u64>>(),
        ),
        Column::new(
            "n_unknown".into(),
            rows.iter().map(|x| x.1[2]).collect::<Vec<u64>>(),
        ),
        Column::new(
            "n_stale".into(),
            rows.iter().map(|x| x.1[3]).collect::<Vec<u64>>(),
        ),
    ]);
    let reasoning = frame(columns)?;
    // IDs in byte order: re-key the counts by the IDs' ranks.
    let mut order: Vec<u32> = (0..cited.ids.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| cited.ids[a as usize].0.cmp(&cited.ids[b as usize].0));
    let mut rank = vec![0u32; order.len()];
    for (k, &i) in order.iter().enumerate() {
        rank[i as usize] = k as u32;
    }
    let mut rows: Vec<(u128, u64)> = counts
        .into_iter()
        .map(|(k, n)| {
            let id = (rank[part(k, 32) as usize] as u128) << 32;
            ((k & !(0xffff_ffff_u128 << 32)) | id, n)
        })
        .collect();
    rows.sort_unstable_by_key(|x| x.0);
    let id = |x: &(u128, u64)| &cited.ids[order[part(x.0, 32) as usize] as usize];
    let cited_table = frame(vec![
        Column::new(
            "period".into(),
            rows.iter()
                .map(|x| r.period_value(part(x.0, 96)))
                .collect::<Vec<i32>>(),
        ),
        str_col(
            "model_version",
            rows.iter().map(|x| r.version.value(part(x.0, 64))),
        ),
        str_col("technique_id", rows.iter().map(|x| id(x).0.as_str())),
        str_col(
            "status",
            rows.iter()
                .map(|x| if id(x).1 { "stale" } else { "unknown" }),
        ),
        Column::new(
            "decisions".into(),
            rows.iter().map(|x| x.1).collect::<Vec<u64>>(),
        ),
    ])?;
    Ok((reasoning, cited_table))
}

/// Value counts of the review delays per period, class, analyst and verdict. A verdict's
/// class and period are those of its decision (`decision_row` into `r`).
fn reviews(r: &Rows, vr: DataFrame) -> Result<DataFrame, IngestError> {
    // Dense ranks of (period, class, analyst, verdict) where they are few enough, 128-bit keys
    // otherwise.
    enum Keys {
        Dense(Vec<u32>),
        Wide(Vec<u128>),
    }
    // The verdict rows become keys and delays; the rows are dropped before they are counted.
    let (analyst, verdict, keys, delays) = {
        let get = |name: &str| vr.column(name).map_err(pe("verdict rows"));
        let (analyst, verdict) = (get("analyst_id")?, get("verdict")?);
        let (analyst, verdict) = crate::threads::join(
            || Codes::of_column(analyst).map_err(pe("analyst_id")),
            || Codes::of_column(verdict).map_err(pe("verdict")),
        );
        let (analyst, verdict) = (analyst?, verdict?);
        let delays: Vec<i64> = get("delay_us")?
            .i64()
            .map_err(pe("delay_us"))?
            .iter()
            .map(|d| d.unwrap_or_default())
            .collect();
        let decision_row = get("decision_row")?.idx().map_err(pe("decision_row"))?;
        if decision_row.null_count() > 0 {
            return Err(missing("a decision row for every verdict row"));
        }
        let rows = || {
            decision_row
                .downcast_iter()
                .flat_map(|a| a.values_iter().map(|&k| k as usize))
                .enumerate()
        };
        let (a_width, v_width) = (analyst.len() as u32 + 1, verdict.len() as u32 + 1);
        let keys = match &r.period_class {
            Some(pc)
                if dense_fits(
                    r.dense_ranks(a_width, v_width),
                    decision_row.len(),
                    r.dense_limit,
                ) =>
            {
                Keys::Dense(
                    rows()
                        .map(|(i, k)| {
                            (pc[k] * a_width + analyst.codes[i]) * v_width + verdict.codes[i]
                        })
                        .collect(),
                )
            }
            _ => Keys::Wide(
                rows()
                    .map(|(i, k)| {
                        high(r.days.period(k), r.class.codes[k], analyst.codes[i])
                            | verdict.codes[i] as u128
                    })
                    .collect(),
            ),
        };
        (analyst.strings(), verdict.strings(), keys, delays)
    };
    drop(vr);
    let counted = match keys {
        Keys::Dense(keys) => {
            let (width, a_width, v_width) = (
                r.class.len() as u64 + 1,
                analyst.len() as u64 + 1,
                verdict.len() as u64 + 1,
            );
            let ranks = r.dense_ranks(a_width as u32, v_width as u32) as usize;
            value_counts_dense(keys, ranks, delays).map_keys(|k| {
                let k = k as u64;
                let (v, rest) = (k % v_width, k / v_width);
                let (a, pc) = (rest % a_width, rest / a_width);
                high((pc / width) as u32, (pc % width) as u32, a as u32) | v as u128
            })
        }
        Keys::Wide(keys) => value_counts(keys, delays),
    };
    let keys = || counted.keys();
    let mut columns = vec![
        Column::new(
            "period".into(),
            keys()
                .map(|k| r.period_value(part(k, 96)))
                .collect::<Vec<i32>>(),
        ),
        coded_cats("action_class", &r.class, keys().map(|k| part(k, 64)))?,
        coded_cats("analyst_id", &analyst, keys().map(|k| part(k, 32)))?,
        coded_cats("verdict", &verdict, keys().map(|k| part(k, 0)))?,
    ];
    columns.push(Column::new("delay_us".into(), counted.values));
    columns.push(Column::new("n".into(), counted.counts));
    frame(columns)
}

/// The seven statistics tables of validated inputs, canonical, in the order of
/// `store::LAYOUTS`. `unwatched` classes get no `daily` rows; without `with_reviews`,
/// `reviews` is `None`.
pub(super) fn tables(
    ing: Ingested,
    granularity: Granularity,
    catalog: &AttackCatalog,
    unwatched: &BTreeSet<String>,
    with_reviews: bool,
) -> Result<(Vec<DataFrame>, Option<DataFrame>), IngestError> {
    // Rows, groups and codes are indexed with u32.
    if ing.decisions.height().max(ing.verdict_rows.height()) >= u32::MAX as usize {
        return Err(IngestError::Polars {
            context: "statistics".into(),
            source: PolarsError::ComputeError(
                "more than 2^32 - 1 rows in one pass: give a smaller --memory-budget".into(),
            ),
        });
    }
    let Ingested {
        decisions,
        verdict_rows,
        ..
    } = ing;
    let rows = Rows::of(decisions, granularity)?;
    mark("statistics: decision columns as codes");
    let r = &rows;
    // The longest tasks first, so that the threads end together: on input in time order
    // `reviews` is the longest (0.5 s at 10^7 decisions), then `cells`, `reasoning and cited`
    // and `daily` (0.3–0.4 s each); on shuffled input `cells` (1.1–1.3 s: its groups' sums miss
    // the cache) and `daily` (0.7–0.8 s) are. Started last, `daily` had run alone for up to 0.7
    // s (BENCHMARKS.md, fifteenth session). `reviews` owns the verdict rows, dropped when it is
    // done. On two threads (the machine measured) the statistics' peak stays below the
    // ingest's.
    let mut tasks: Vec<Task<Result<Vec<DataFrame>, IngestError>>> = vec![
        Box::new(move || timed("cells", || Ok(vec![cells(r)?, days(r)?]))),
        Box::new(move || timed("daily", || Ok(vec![daily(r, unwatched)?]))),
        Box::new(move || timed("confidence", || Ok(vec![confidence(r)?]))),
        Box::new(move || {
            timed("reasoning and cited", || {
                let (reasoning, cited) = reasoning_and_cited(r, catalog)?;
                Ok(vec![reasoning, cited])
            })
        }),
    ];
    if with_reviews {
        tasks.insert(
            2,
            Box::new(move || timed("reviews", || Ok(vec![reviews(r, verdict_rows)?]))),
        );
    } else {
        drop(verdict_rows);
    }
    let done: Vec<Vec<DataFrame>> = run_all(tasks).into_iter().collect::<Result<_, _>>()?;
    // The tables in task order.
    let mut all = done.into_iter().flatten();
    let mut next = || all.next().ok_or_else(|| missing("a statistics table"));
    let (cells, days, daily) = (next()?, next()?, next()?);
    let reviews = match with_reviews {
        true => Some(next()?),
        false => None,
    };
    let (confidence, reasoning, cited) = (next()?, next()?, next()?);
    debug_assert!(
        all.next().is_none(),
        "a statistics task returned more tables"
    );
    Ok((
        vec![cells, confidence, daily, reasoning, cited, days],
        reviews,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn codes_follow_byte_order_with_null_first_for_inline_and_long_strings() {
        let long_a = "host-0000000000001.example.org";
        let long_b = "host-0000000000001.example.net";
        let values = [
            Some("b"),
            None,
            Some(long_a),
            Some("a"),
            Some(long_b),
            Some("b"),
            Some(""),
            Some(long_a),
            Some("abcdefghijkl"),
            Some("abcdefghijklm"),
        ];
        let mut ca: StringChunked = values[..5].iter().copied().collect();
        ca.append(&values[5..].iter().copied().collect::<StringChunked>())
            .unwrap();
        assert!(ca.chunks().len() > 1);
        let codes = Codes::of(&ca);
        assert_eq!(
            codes.values,
            [
                "",
                "a",
                "abcdefghijkl",
                "abcdefghijklm",
                "b",
                long_b,
                long_a
            ]
        );
        let decoded: Vec<Option<&str>> = codes.codes.iter().map(|&c| codes.get(c)).collect();
        assert_eq!(decoded, values);
        assert_eq!(codes.codes[1], 0);
    }

    #[test]
    fn codes_agree_with_a_sorted_map_over_many_repeated_values() {
        // 1,000 distinct strings (inline and long) repeated in a scrambled order over three
        // chunks: more distinct views than the cache has slots, so slots are shared and
        // replaced.
        let values: Vec<String> = (0..30_000)
            .map(|k| crate::test_data::scrambled(k, 1_000, "a-long-class-name-", "c"))
            .collect();
        let ca = crate::test_data::chunked(&values, &[10_000, 10_001]);
        assert_eq!(ca.chunks().len(), 3);
        let codes = Codes::of(&ca);
        let sorted: std::collections::BTreeSet<&str> = values.iter().map(String::as_str).collect();
        let rank: std::collections::BTreeMap<&str, u32> =
            sorted.iter().zip(1..).map(|(v, r)| (*v, r)).collect();
        assert_eq!(codes.values, sorted.into_iter().collect::<Vec<_>>());
        for (i, v) in values.iter().enumerate() {
            assert_eq!(codes.codes[i], rank[v.as_str()], "row {i}");
        }
    }

    #[test]
    fn codes_of_categories_equal_the_codes_of_their_strings() {
        // 1,000 distinct strings (inline and long) with nulls, over three chunks, as categories
        // whose mapping already holds other strings and holds these in another order.
        let values: Vec<Option<String>> = (0..30_000)
            .map(|k| {
                (k % 97 != 0).then(|| crate::test_data::scrambled(k, 1_000, "a-long-class-", "c"))
            })
            .collect();
        let strings: StringChunked = values.iter().map(Option::as_deref).collect();
        let cats = Categories::new(
            "readiness.test.codes".into(),
            "readiness".into(),
            CategoricalPhysical::U32,
        );
        let mapping = cats.mapping();
        for k in (0..4_000).rev() {
            mapping.insert_cat(&format!("z-{k}")).unwrap();
            mapping
                .insert_cat(&crate::test_data::scrambled(k, 1_000, "a-long-class-", "c"))
                .unwrap();
        }
        let dtype = DataType::from_categories(cats);
        let mut column = strings.slice(0, 10_000).into_column().cast(&dtype).unwrap();
        for (offset, len) in [(10_000, 10_001), (20_001, 9_999)] {
            let part = strings
                .slice(offset, len)
                .into_column()
                .cast(&dtype)
                .unwrap();
            column.append(&part).unwrap();
        }
        assert_eq!(column.n_chunks(), 3);
        let from_categories = Codes::of_column(&column).unwrap();
        let from_strings = Codes::of(&strings);
        assert_eq!(from_categories.values, from_strings.values);
        assert_eq!(from_categories.codes, from_strings.codes);
        // A few rows of a mapping with many more categories (the ids kept in a map).
        let few = column.slice(20_000, 100);
        assert!(mapping.num_cats_upper_bound() > 4 * few.len() + 4096);
        let from_few = Codes::of_column(&few).unwrap();
        let few_strings = strings.slice(20_000, 100);
        let want = Codes::of(&few_strings);
        assert_eq!(from_few.values, want.values);
        assert_eq!(from_few.codes, want.codes);
        // A string column gives the same codes through the same entry point.
        let plain = strings.clone().into_column();
        assert_eq!(Codes::of_column(&plain).unwrap().codes, from_strings.codes);
    }

    #[test]
    fn value_counts_are_sorted_by_key_then_value() {
        let keys = [2u64, 1, 2, 1, 2, 3, 1];
        let values = [5i64, 7, 5, -1, 4, 0, 7];
        let counted = value_counts(keys.to_vec(), values.to_vec());
        assert_eq!(counted.keys().collect::<Vec<_>>(), [1, 1, 2, 2, 3]);
        assert_eq!(counted.values, [-1, 7, 4, 5, 0]);
        assert_eq!(counted.counts, [1, 2, 1, 2, 1]);
    }

    #[test]
    fn dense_value_counts_equal_the_hashed_ones() {
        // Keys below 63 in a scrambled order (some ranks absent), values with repeats.
        let keys: Vec<u32> = (0..5000u32)
            .map(|i| (i * 7919 + 13) % 37 + (i % 3) * 13)
            .collect();
        let values: Vec<i64> = (0..5000i64).map(|i| (i * 31 % 97) - 40).collect();
        let dense = value_counts_dense(&keys, 63, values.clone());
        let hashed = value_counts(keys, values);
        assert_eq!(
            dense.keys().collect::<Vec<_>>(),
            hashed.keys().collect::<Vec<_>>()
        );
        assert_eq!(dense.values, hashed.values);
        assert_eq!(dense.counts, hashed.counts);
        assert_eq!(dense.counts.iter().sum::<u64>(), 5000);
    }

    /// Rows of three periods, four classes (one of them long), three analysts and four
    /// verdicts, scrambled.
    fn mixed_rows() -> (DataFrame, DataFrame) {
        let n = 3000usize;
        let day = 86_400_000_000i64;
        let classes = [
            "block_ip",
            "isolate_host",
            "add_to_watchlist_of_suspects",
            "reset",
        ];
        let decisions = df!(
            "decided_us" => (0..n).map(|i| 1_735_689_600_000_000 + (i * 7 % 80) as i64 * day).collect::<Vec<_>>(),
            "action_class" => (0..n).map(|i| classes[i * 5 % 4]).collect::<Vec<_>>(),
            "confidence" => (0..n).map(|i| (i * 37 % 101) as f64 / 100.0).collect::<Vec<_>>(),
            "model_version" => (0..n).map(|i| if i % 2 == 0 { "v1" } else { "v2" }).collect::<Vec<_>>(),
            "asset_criticality" => (0..n).map(|_| "low").collect::<Vec<_>>(),
            "privileged" => (0..n).map(|i| i % 3 == 0).collect::<Vec<_>>(),
            "target_entity" => (0..n).map(|i| format!("host-{}", i % 9)).collect::<Vec<_>>(),
            "executed" => (0..n).map(|i| i % 4 == 0).collect::<Vec<_>>(),
            "outcome" => (0..n).map(|i| (i % 5) as i32).collect::<Vec<_>>(),
        )
        .unwrap();
        let lists: Vec<Series> = (0..n).map(|_| Series::new("".into(), ["T1001"])).collect();
        let mut decisions = decisions;
        // As the ingest reads them: lists of ids.
        let lists = crate::ingest::technique_codes(&Column::new("technique_ids".into(), lists));
        decisions.with_column(lists.unwrap()).unwrap();
        let m = 4000usize;
        let verdicts = ["approve", "override", "reject", "timeout"];
        let verdict_rows = df!(
            "analyst_id" => (0..m).map(|j| ["ana", "bob", "carol-the-long-named"][j * 11 % 3]).collect::<Vec<_>>(),
            "verdict" => (0..m).map(|j| verdicts[j * 3 % 4]).collect::<Vec<_>>(),
            "delay_us" => (0..m).map(|j| (j * 7919 % 600) as i64 * 1_000_000).collect::<Vec<_>>(),
            "decision_row" => (0..m).map(|j| (j * 13 % n) as IdxSize).collect::<Vec<_>>(),
        )
        .unwrap();
        (decisions, verdict_rows)
    }

    /// Chunks with and without nulls give each row's value, or the value given for a null
    /// (here, in the hand-written list), in row order.
    #[test]
    fn plain_values_are_the_rows_values_with_nulls_replaced() {
        let mut f = Float64Chunked::new("c".into(), &[Some(0.25), None, Some(1.0)]);
        f.append(&Float64Chunked::new("c".into(), &[0.5, 0.75]))
            .unwrap();
        assert_eq!(f.chunks().len(), 2);
        assert_eq!(values_or(&f, -1.0), vec![0.25, -1.0, 1.0, 0.5, 0.75]);
        let mut i = Int32Chunked::new("o".into(), &[3, 0]);
        i.append(&Int32Chunked::new("o".into(), &[None, Some(2)]))
            .unwrap();
        assert_eq!(values_or(&i, 4), vec![3, 0, 4, 2]);
        let mut b = BooleanChunked::new("e".into(), &[true, false, true]);
        b.append(&BooleanChunked::new(
            "e".into(),
            &[None, Some(false), Some(true)],
        ))
        .unwrap();
        let executed = |b: Option<bool>| b.map_or(0u8, |b| 1 + b as u8);
        assert_eq!(bool_codes(&b, executed), vec![2, 1, 2, 0, 1, 2]);
        assert_eq!(
            bool_codes(&b, |b| b.unwrap_or_default()),
            vec![true, false, true, false, false, true]
        );
        // Slices start within their chunks' values and bits.
        assert_eq!(values_or(&f.slice(1, 4), -1.0), vec![-1.0, 1.0, 0.5, 0.75]);
        assert_eq!(values_or(&f.slice(3, 1), -1.0), vec![0.5]);
        assert_eq!(bool_codes(&b.slice(1, 4), executed), vec![1, 2, 0, 1]);
    }

    #[test]
    fn confidence_and_reviews_are_the_same_with_and_without_dense_keys() {
        let (decisions, verdict_rows) = mixed_rows();
        let mut rows = Rows::of(decisions, Granularity::Month).unwrap();
        assert!(rows.period_class.is_some());
        let dense = (
            confidence(&rows).unwrap(),
            reviews(&rows, verdict_rows.clone()).unwrap(),
        );
        // The verdict rows in three chunks, as the join leaves them.
        let mut chunked = verdict_rows.slice(0, 1000);
        chunked.vstack_mut(&verdict_rows.slice(1000, 1500)).unwrap();
        chunked.vstack_mut(&verdict_rows.slice(2500, 1500)).unwrap();
        assert_eq!(chunked.first_col_n_chunks(), 3);
        assert!(reviews(&rows, chunked).unwrap().equals_missing(&dense.1));
        // Too many ranks for the reviews (the classes' ranks still dense), then none dense.
        rows.dense_limit = 0;
        let wide = reviews(&rows, verdict_rows.clone()).unwrap();
        rows.period_class = None;
        let hashed = (
            confidence(&rows).unwrap(),
            reviews(&rows, verdict_rows).unwrap(),
        );
        assert!(dense.0.height() > 100 && dense.1.height() > 100);
        assert!(dense.0.equals_missing(&hashed.0));
        assert!(dense.1.equals_missing(&hashed.1));
        assert!(wide.equals_missing(&hashed.1));
        // Every verdict row is counted once.
        let n: u64 = dense.1.column("n").unwrap().u64().unwrap().sum().unwrap();
        assert_eq!(n, 4000);
    }

    /// `daily` computed row by row into a sorted map: (day, class, target) → n, privileged or
    /// high/critical, confidence sum, reviewed, disagreed.
    type DailyKey = (i32, String, Option<String>);
    fn daily_by_hand(decisions: &DataFrame, unwatched: &str) -> BTreeMap<DailyKey, [i64; 5]> {
        let s = |name: &str| decisions.column(name).unwrap().str().unwrap().clone();
        let (class, crit, target) = (
            s("action_class"),
            s("asset_criticality"),
            s("target_entity"),
        );
        let us = decisions
            .column("decided_us")
            .unwrap()
            .i64()
            .unwrap()
            .clone();
        let conf = decisions
            .column("confidence")
            .unwrap()
            .f64()
            .unwrap()
            .clone();
        let privileged = decisions
            .column("privileged")
            .unwrap()
            .bool()
            .unwrap()
            .clone();
        let outcome = decisions.column("outcome").unwrap().i32().unwrap().clone();
        let mut map: BTreeMap<DailyKey, [i64; 5]> = BTreeMap::new();
        for i in 0..decisions.height() {
            let c = class.get(i).unwrap();
            if c == unwatched {
                continue;
            }
            let day = us.get(i).unwrap().div_euclid(86_400_000_000) as i32;
            let key = (day, c.to_string(), target.get(i).map(str::to_string));
            let acc = map.entry(key).or_default();
            let o = outcome.get(i).unwrap();
            acc[0] += 1;
            acc[1] += (privileged.get(i).unwrap()
                || matches!(crit.get(i).unwrap(), "high" | "critical"))
                as i64;
            acc[2] += fixed(conf.get(i).unwrap());
            acc[3] += (o < 3) as i64;
            acc[4] += (o == 1 || o == 2) as i64;
        }
        map
    }

    /// A `daily` table as the map [`daily_by_hand`] makes, asserting its rows are in the map's
    /// order.
    fn daily_as_map(daily: &DataFrame) -> BTreeMap<DailyKey, [i64; 5]> {
        let day = daily.column("day").unwrap().i32().unwrap().clone();
        let class = daily.column("action_class").unwrap().str().unwrap().clone();
        let target = daily
            .column("target_entity")
            .unwrap()
            .str()
            .unwrap()
            .clone();
        let n = |name: &str| daily.column(name).unwrap().cast(&DataType::Int64).unwrap();
        let sums = ["n", "n_priv_crit", "sum_conf", "n_reviewed", "n_disagree"].map(n);
        let mut map = BTreeMap::new();
        let mut previous: Option<DailyKey> = None;
        for i in 0..daily.height() {
            let key = (
                day.get(i).unwrap(),
                class.get(i).unwrap().to_string(),
                target.get(i).map(str::to_string),
            );
            assert!(previous.as_ref() < Some(&key), "row {i} out of order");
            previous = Some(key.clone());
            let acc = sums.each_ref().map(|c| c.i64().unwrap().get(i).unwrap());
            map.insert(key, acc);
        }
        map
    }

    #[test]
    fn daily_sums_rows_with_and_without_targets_as_by_hand_in_both_paths() {
        let (mut decisions, _) = mixed_rows();
        // One row in three without a target, several classes a day, and criticalities that
        // do not follow the class.
        let n = decisions.height();
        let targets: Vec<Option<String>> = (0..n)
            .map(|i| (i % 3 != 1).then(|| format!("host-{}", i % 9)))
            .collect();
        let crits: Vec<&str> = (0..n)
            .map(|i| ["low", "high", "critical", "medium"][i / 5 % 4])
            .collect();
        let classes = [
            "block_ip",
            "isolate_host",
            "add_to_watchlist_of_suspects",
            "reset",
        ];
        let class: Vec<&str> = (0..n).map(|i| classes[i / 7 % 4]).collect();
        decisions
            .with_column(Column::new("action_class".into(), class))
            .unwrap();
        decisions
            .with_column(Column::new("target_entity".into(), targets))
            .unwrap();
        decisions
            .with_column(Column::new("asset_criticality".into(), crits))
            .unwrap();
        let expected = daily_by_hand(&decisions, "reset");
        let unwatched: BTreeSet<String> = ["reset".to_string()].into();
        let mut rows = Rows::of(decisions, Granularity::Month).unwrap();
        let dense = daily(&rows, &unwatched).unwrap();
        rows.dense_limit = 0;
        let grouped = daily(&rows, &unwatched).unwrap();
        assert!(expected.keys().any(|k| k.2.is_none()) && expected.keys().any(|k| k.2.is_some()));
        assert!(expected.len() > 300, "{} rows", expected.len());
        // Days with more than one class, both with rows without a target.
        let untargeted: Vec<(i32, &str)> = expected
            .keys()
            .filter(|k| k.2.is_none())
            .map(|k| (k.0, k.1.as_str()))
            .collect();
        assert!(untargeted
            .windows(2)
            .any(|w| w[0].0 == w[1].0 && w[0].1 != w[1].1));
        assert_eq!(daily_as_map(&dense), expected);
        assert_eq!(daily_as_map(&grouped), expected);
    }

    #[test]
    fn cells_are_the_same_from_one_map_from_buckets_and_when_switching_between() {
        let (one, _) = mixed_rows();
        let mut decisions = one.clone();
        for _ in 0..6 {
            decisions.vstack_mut(&one).unwrap();
        }
        let mut rows = Rows::of(decisions, Granularity::Month).unwrap();
        let single = cells(&rows).unwrap();
        // Buckets from the first row.
        rows.dense_limit = 0;
        let buckets = cells(&rows).unwrap();
        let buckets_in_blocks = cells_in_blocks(&rows, 1000).unwrap();
        // One map for the first 4,096 rows (which hold every cell of the 3,000-row pattern),
        // then buckets, in blocks of 1,000 rows.
        rows.dense_limit = 64 * 100;
        let switched = cells_in_blocks(&rows, 1000).unwrap();
        assert!(single.height() > 1000, "{} cells", single.height());
        assert!(single.equals_missing(&buckets));
        assert!(single.equals_missing(&buckets_in_blocks));
        assert!(single.equals_missing(&switched));
        let n: u64 = single.column("n").unwrap().u64().unwrap().sum().unwrap();
        assert_eq!(n, 21_000);
    }

    #[test]
    fn groups_keep_row_order_and_skip_rows_without_a_key() {
        let g = Groups::of([Some(9u32), None, Some(3), Some(9), Some(3)].into_iter());
        assert_eq!(g.keys, [3, 9]);
        assert_eq!(g.rows(0), [2, 4]);
        assert_eq!(g.rows(1), [0, 3]);
    }

    #[test]
    fn fixed_point_rounds_to_the_nearest_unit() {
        assert_eq!(fixed(1.0), 1i64 << 33);
        assert_eq!(fixed(0.5), 1i64 << 32);
        // 2^-34 is half a unit: rounds up.
        assert_eq!(fixed(2f64.powi(-34)), 1);
        assert_eq!(fixed(2f64.powi(-35)), 0);
    }
}
