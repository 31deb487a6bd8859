//! [`super::merge_sorted`] on packed keys: each row's key columns as one `u128` whose order is
//! the rows' canonical order, so that the merge compares integers, and the summed table's key
//! columns are decoded from the kept keys instead of gathered from the parts' rows.
//!
//! Each key column is a bit field, the first column in the highest bits:
//!
//! | type | field | width |
//! |---|---|---|
//! | string | 0 for null, else the string's rank among every part's distinct strings (byte order) | bits of the distinct count |
//! | integer | `value - min`, plus one when the column has nulls (0 is null) | bits of the range |
//! | boolean | false 0, true 1; null 0, false 1, true 2 with nulls | 1 or 2 |
//! | float | `f64::total_cmp`'s key as unsigned; with nulls a 65th bit set for values | 64 or 65 |
//!
//! So an integer column that holds one value (the period, when one period is summed) takes no
//! bits, nor does a string column of nulls only. Tables whose fields need more than 127 bits are
//! merged through [`super::KeyWords`] instead. As there, `total_cmp` tells -0.0 from 0.0 and puts
//! negative NaNs first, where polars does not; the statistics hold neither, as ingest rejects NaN
//! confidences and turns -0.0 into 0.0.

use polars::prelude::*;

use super::{Layout, Ty};
use crate::aggregate::build::Codes;

/// One key column's field.
struct Field {
    name: &'static str,
    bits: u32,
    /// Bits below this field (the later columns' widths).
    shift: u32,
    kind: Kind,
}

enum Kind {
    /// The string of code c is `dictionary[c]` (null for 0); per part, its own codes (as
    /// [`Codes`] gives them) and the map from those to the shared ones.
    Str {
        dictionary: Series,
        codes: Vec<Vec<u32>>,
        shared: Vec<Vec<u32>>,
    },
    Int {
        min: i64,
        nulls: bool,
        dtype: DataType,
    },
    Bool {
        nulls: bool,
    },
    F64 {
        nulls: bool,
    },
}

/// Width in bits of the fields `0..=max`.
fn width(max: u128) -> u32 {
    128 - max.leading_zeros()
}

/// `f64::total_cmp`'s key with the sign bit flipped, so that it orders as unsigned.
pub(super) fn float_key(x: f64) -> u64 {
    let b = x.to_bits() as i64;
    ((b ^ ((((b >> 63) as u64) >> 1) as i64)) as u64) ^ (1 << 63)
}

/// The inverse of [`float_key`].
fn key_float(k: u64) -> f64 {
    let b = (k ^ (1 << 63)) as i64;
    f64::from_bits((b ^ ((((b >> 63) as u64) >> 1) as i64)) as u64)
}

impl Field {
    /// The field of key column `name` of type `ty` over every part, or `None` when the parts'
    /// column is not of the layout's type (the caller then takes the general path).
    fn of(
        name: &'static str,
        ty: Ty,
        parts: &[DataFrame],
        same_schema: bool,
    ) -> PolarsResult<Option<Field>> {
        let columns: Vec<&Column> = parts
            .iter()
            .map(|p| p.column(name))
            .collect::<PolarsResult<_>>()?;
        let nulls = columns.iter().any(|c| c.null_count() > 0);
        let (bits, kind) = match ty {
            Ty::Str => {
                if !columns
                    .iter()
                    .all(|c| matches!(c.dtype(), DataType::String | DataType::Categorical(..)))
                {
                    return Ok(None);
                }
                let coded: Vec<Codes<&str>> = columns
                    .iter()
                    .map(|c| Codes::of_column(c))
                    .collect::<PolarsResult<_>>()?;
                // Every part's distinct strings (each part's in byte order already), sorted and
                // deduplicated: the shared codes. A part's code c ≥ 1 (its (c - 1)th string)
                // maps to one of them, found walking both lists in order; 0 stays null.
                let mut strings: Vec<&str> = coded.iter().flat_map(|c| c.values()).collect();
                strings.sort_unstable();
                strings.dedup();
                let shared: Vec<Vec<u32>> = coded
                    .iter()
                    .map(|c| {
                        let mut at = 0;
                        std::iter::once(0)
                            .chain(c.values().map(|s| {
                                while strings[at] != s {
                                    at += 1;
                                }
                                at as u32 + 1
                            }))
                            .collect()
                    })
                    .collect();
                let distinct = strings.len();
                let dictionary = Series::new(
                    PlSmallStr::from_static(name),
                    std::iter::once(None)
                        .chain(strings.into_iter().map(Some))
                        .collect::<Vec<Option<&str>>>(),
                );
                // Parts built in memory hold categories, parts read from files strings: as
                // their union would, the sum holds strings unless every part has one schema.
                let dictionary = match (same_schema, columns[0].dtype()) {
                    (true, dtype @ DataType::Categorical(..)) => dictionary.cast(dtype)?,
                    _ => dictionary,
                };
                let codes = coded.into_iter().map(|c| c.codes).collect();
                (
                    width(distinct as u128),
                    Kind::Str {
                        dictionary,
                        codes,
                        shared,
                    },
                )
            }
            Ty::I32 | Ty::I64 => {
                if !columns.iter().all(|c| c.dtype() == &ty.dtype()) {
                    return Ok(None);
                }
                let (mut min, mut max) = (i64::MAX, i64::MIN);
                for c in &columns {
                    let c = c.cast(&DataType::Int64)?;
                    let c = c.i64()?;
                    if let (Some(lo), Some(hi)) = (c.min(), c.max()) {
                        min = min.min(lo);
                        max = max.max(hi);
                    }
                }
                if min > max {
                    // Every value null.
                    (min, max) = (0, 0);
                }
                let range = (max as i128 - min as i128) as u128 + u128::from(nulls);
                (
                    width(range),
                    Kind::Int {
                        min,
                        nulls,
                        dtype: ty.dtype(),
                    },
                )
            }
            Ty::Bool => {
                if !columns.iter().all(|c| c.dtype() == &DataType::Boolean) {
                    return Ok(None);
                }
                (1 + u32::from(nulls), Kind::Bool { nulls })
            }
            Ty::F64 => {
                if !columns.iter().all(|c| c.dtype() == &DataType::Float64) {
                    return Ok(None);
                }
                (64 + u32::from(nulls), Kind::F64 { nulls })
            }
            Ty::U64 => return Ok(None),
        };
        Ok(Some(Field {
            name,
            bits,
            shift: 0,
            kind,
        }))
    }

    /// ORs this field of part `p`'s rows into `keys` (and drops the part's string codes).
    fn pack(&mut self, p: usize, part: &DataFrame, keys: &mut [u128]) -> PolarsResult<()> {
        fn put(keys: &mut [u128], shift: u32, values: impl Iterator<Item = u128>) {
            for (k, v) in keys.iter_mut().zip(values) {
                *k |= v << shift;
            }
        }
        if self.bits == 0 {
            // One value, field 0 in every row.
            return Ok(());
        }
        let c = part.column(self.name)?;
        match &mut self.kind {
            Kind::Str { codes, shared, .. } => {
                let shared = &shared[p];
                put(
                    keys,
                    self.shift,
                    std::mem::take(&mut codes[p])
                        .into_iter()
                        .map(|c| u128::from(shared[c as usize])),
                );
            }
            Kind::Int { min, nulls, .. } => {
                let c = c.cast(&DataType::Int64)?;
                let one = u128::from(*nulls);
                put(
                    keys,
                    self.shift,
                    c.i64()?.iter().map(|v| match v {
                        Some(v) => (v as i128 - *min as i128) as u128 + one,
                        None => 0,
                    }),
                );
            }
            Kind::Bool { nulls } => {
                let one = u128::from(*nulls);
                put(
                    keys,
                    self.shift,
                    c.bool()?.iter().map(|v| match v {
                        Some(b) => u128::from(b) + one,
                        None => 0,
                    }),
                );
            }
            Kind::F64 { nulls } => {
                let set = if *nulls { 1u128 << 64 } else { 0 };
                put(
                    keys,
                    self.shift,
                    c.f64()?.iter().map(|v| match v {
                        Some(x) => u128::from(float_key(x)) | set,
                        None => 0,
                    }),
                );
            }
        }
        Ok(())
    }

    /// This field's column of the rows with keys `keys`.
    fn decode(&self, keys: &[u128]) -> PolarsResult<Column> {
        let mask = if self.bits == 0 {
            0
        } else {
            u128::MAX >> (128 - self.bits)
        };
        let field = |k: &u128| (k >> self.shift) & mask;
        let name = PlSmallStr::from_static(self.name);
        Ok(match &self.kind {
            Kind::Str { dictionary, .. } => {
                let idx: Vec<IdxSize> = keys.iter().map(|k| field(k) as IdxSize).collect();
                dictionary.take(&IdxCa::from_vec(name, idx))?.into_column()
            }
            Kind::Int { min, nulls, dtype } => {
                let value = |f: u128| (f as i128 - i128::from(*nulls) + *min as i128) as i64;
                let or_null = |f: u128| (f != 0).then(|| value(f));
                // Every value lies between the parts' minimum and maximum, so it fits the
                // column's type. Without nulls the column gets no validity.
                match (dtype, nulls) {
                    (DataType::Int32, true) => Column::new(
                        name,
                        keys.iter()
                            .map(|k| or_null(field(k)).map(|v| v as i32))
                            .collect::<Vec<_>>(),
                    ),
                    (DataType::Int32, false) => Column::new(
                        name,
                        keys.iter()
                            .map(|k| value(field(k)) as i32)
                            .collect::<Vec<_>>(),
                    ),
                    (_, true) => Column::new(
                        name,
                        keys.iter().map(|k| or_null(field(k))).collect::<Vec<_>>(),
                    ),
                    (_, false) => Column::new(
                        name,
                        keys.iter().map(|k| value(field(k))).collect::<Vec<_>>(),
                    ),
                }
            }
            Kind::Bool { nulls } => {
                let one = u128::from(*nulls);
                match nulls {
                    true => Column::new(
                        name,
                        keys.iter()
                            .map(|k| match field(k) {
                                0 => None,
                                f => Some(f > one),
                            })
                            .collect::<Vec<Option<bool>>>(),
                    ),
                    false => Column::new(
                        name,
                        keys.iter().map(|k| field(k) == 1).collect::<Vec<bool>>(),
                    ),
                }
            }
            Kind::F64 { nulls } => match nulls {
                true => Column::new(
                    name,
                    keys.iter()
                        .map(|k| match field(k) {
                            0 => None,
                            f => Some(key_float(f as u64)),
                        })
                        .collect::<Vec<Option<f64>>>(),
                ),
                false => Column::new(
                    name,
                    keys.iter()
                        .map(|k| key_float(field(k) as u64))
                        .collect::<Vec<f64>>(),
                ),
            },
        })
    }
}

/// A measure's values in one part, or its sums, in the measure's signedness.
pub(super) enum Values {
    Unsigned(Vec<u64>),
    Signed(Vec<i64>),
}

impl Values {
    pub(super) fn of(c: &Column, ty: Ty) -> PolarsResult<Values> {
        Ok(match ty {
            Ty::I64 | Ty::I32 => Values::Signed(
                c.strict_cast(&DataType::Int64)?
                    .i64()?
                    .iter()
                    .map(|v| v.unwrap_or(0))
                    .collect(),
            ),
            _ => Values::Unsigned(
                c.strict_cast(&DataType::UInt64)?
                    .u64()?
                    .iter()
                    .map(|v| v.unwrap_or(0))
                    .collect(),
            ),
        })
    }

    pub(super) fn empty_like(&self, capacity: usize) -> Values {
        match self {
            Values::Unsigned(_) => Values::Unsigned(Vec::with_capacity(capacity)),
            Values::Signed(_) => Values::Signed(Vec::with_capacity(capacity)),
        }
    }

    /// Starts a new sum with `from[row]`.
    pub(super) fn push(&mut self, from: &Values, row: usize) {
        match (self, from) {
            (Values::Unsigned(s), Values::Unsigned(v)) => s.push(v[row]),
            (Values::Signed(s), Values::Signed(v)) => s.push(v[row]),
            _ => unreachable!("a measure's sums and values share its signedness"),
        }
    }

    /// Adds `from[row]` to the last sum; `None` on overflow.
    pub(super) fn add(&mut self, from: &Values, row: usize) -> Option<()> {
        match (self, from) {
            (Values::Unsigned(s), Values::Unsigned(v)) => {
                let last = s.last_mut()?;
                *last = last.checked_add(v[row])?;
            }
            (Values::Signed(s), Values::Signed(v)) => {
                let last = s.last_mut()?;
                *last = last.checked_add(v[row])?;
            }
            _ => unreachable!("a measure's sums and values share its signedness"),
        }
        Some(())
    }

    /// The sums as a column (their spare capacity given back: the column keeps the buffer).
    pub(super) fn into_column(self, name: &str) -> Column {
        match self {
            Values::Unsigned(mut v) => {
                v.shrink_to_fit();
                Column::new(name.into(), v)
            }
            Values::Signed(mut v) => {
                v.shrink_to_fit();
                Column::new(name.into(), v)
            }
        }
    }
}

/// The canonical sum of canonical `parts` (at least two, none empty) on packed keys, or the
/// parts given back (see [`Merged`]).
pub(super) fn merge(layout: &Layout, parts: Vec<DataFrame>) -> Result<Merged, MergeError> {
    let names = layout.column_names();
    let schema = |p: &DataFrame| -> Vec<DataType> {
        names
            .iter()
            .map(|n| p.column(n).map_or(DataType::Null, |c| c.dtype().clone()))
            .collect()
    };
    let first = schema(&parts[0]);
    let same_schema = parts.iter().all(|p| schema(p) == first);
    // The numbers' and booleans' fields first, so that keys too wide are found before any
    // string is coded; then in key order.
    let (strings, others): (Vec<usize>, Vec<usize>) =
        (0..layout.keys.len()).partition(|&j| layout.keys[j].1 == Ty::Str);
    let mut fields: Vec<(usize, Field)> = Vec::with_capacity(layout.keys.len());
    for j in others.into_iter().chain(strings) {
        let (name, ty, _) = layout.keys[j];
        match Field::of(name, ty, &parts, same_schema)? {
            Some(f) => fields.push((j, f)),
            None => return Ok(Merged::TooWide(parts)),
        }
        if fields.iter().map(|(_, f)| f.bits).sum::<u32>() > 127 {
            return Ok(Merged::TooWide(parts));
        }
    }
    fields.sort_by_key(|(j, _)| *j);
    let mut fields: Vec<Field> = fields.into_iter().map(|(_, f)| f).collect();
    let total: u32 = fields.iter().map(|f| f.bits).sum();
    let mut shift = total;
    for f in &mut fields {
        shift -= f.bits;
        f.shift = shift;
    }
    let mut keys: Vec<Vec<u128>> = Vec::with_capacity(parts.len());
    let mut values: Vec<Vec<Values>> = Vec::with_capacity(parts.len());
    for (p, part) in parts.into_iter().enumerate() {
        let mut k = vec![0u128; part.height()];
        for f in &mut fields {
            f.pack(p, &part, &mut k)?;
        }
        keys.push(k);
        values.push(
            layout
                .measures
                .iter()
                .map(|(name, ty)| Values::of(part.column(name)?, *ty))
                .collect::<PolarsResult<_>>()?,
        );
    }
    let most: usize = keys.iter().map(Vec::len).sum();
    let mut out: Vec<u128> = Vec::with_capacity(most);
    let mut sums: Vec<Values> = values[0].iter().map(|v| v.empty_like(most)).collect();
    // Each part's next key, `END` once it has none (no key is `END`: keys take at most 127
    // bits); the smallest is taken next (few parts: a linear scan).
    const END: u128 = u128::MAX;
    let mut head: Vec<u128> = keys.iter().map(|k| k.first().map_or(END, |&k| k)).collect();
    let mut cursor = vec![0usize; keys.len()];
    loop {
        let (mut p, mut key) = (0, head[0]);
        for (q, &h) in head.iter().enumerate().skip(1) {
            if h < key {
                (p, key) = (q, h);
            }
        }
        if key == END {
            break;
        }
        let row = cursor[p];
        cursor[p] = row + 1;
        head[p] = keys[p].get(row + 1).map_or(END, |&k| k);
        let same = out.last() == Some(&key);
        if !same {
            out.push(key);
        }
        sum_row(&mut sums, &values[p], row, same, layout).map_err(MergeError::Overflow)?;
    }
    drop(keys);
    drop(values);
    let mut columns = Vec::with_capacity(names.len());
    for f in &fields {
        columns.push(f.decode(&out)?);
    }
    drop(out);
    for ((name, ty), s) in layout.measures.iter().zip(sums) {
        columns.push(s.into_column(name).strict_cast(&ty.dtype())?);
    }
    Ok(Merged::Sum(DataFrame::new_infer_height(columns)?))
}

/// Adds row `row` of a part's measure `values` to the last `sums` when its key is the `same`
/// as the last one's, else starts new sums with it. The error is the measure whose sum
/// overflows. Both merge paths sum this way.
pub(super) fn sum_row(
    sums: &mut [Values],
    values: &[Values],
    row: usize,
    same: bool,
    layout: &Layout,
) -> Result<(), &'static str> {
    for ((s, v), (name, _)) in sums.iter_mut().zip(values).zip(layout.measures) {
        match same {
            true => s.add(v, row).ok_or(*name)?,
            false => s.push(v, row),
        }
    }
    Ok(())
}

/// What [`merge`] gives.
pub(super) enum Merged {
    /// The canonical sum.
    Sum(DataFrame),
    /// The parts, untouched: their keys need more than 127 bits, or a key column is not of
    /// the layout's type.
    TooWide(Vec<DataFrame>),
}

/// Why [`merge`] failed.
#[derive(Debug)]
pub(super) enum MergeError {
    Polars(PolarsError),
    /// The measure whose sum overflows.
    Overflow(&'static str),
}

impl From<PolarsError> for MergeError {
    fn from(e: PolarsError) -> Self {
        MergeError::Polars(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_keys_order_as_total_cmp_and_decode_back() {
        let xs = [
            f64::NEG_INFINITY,
            -1e300,
            -1.5,
            -1e-300,
            -0.0,
            0.0,
            1e-300,
            0.25,
            1.0,
            f64::MAX,
            f64::INFINITY,
        ];
        for w in xs.windows(2) {
            assert!(float_key(w[0]) < float_key(w[1]), "{} {}", w[0], w[1]);
        }
        for x in xs {
            assert_eq!(key_float(float_key(x)).to_bits(), x.to_bits());
        }
    }

    #[test]
    fn widths_count_the_bits_of_the_largest_field() {
        assert_eq!(width(0), 0);
        assert_eq!(width(1), 1);
        assert_eq!(width(2), 2);
        assert_eq!(width(255), 8);
        assert_eq!(width(256), 9);
        assert_eq!(width(u64::MAX as u128), 64);
        assert_eq!(width(1 << 64), 65);
    }

    /// Keys of two integer columns: `a` over i64's whole range with nulls (65 bits), `b` from 0
    /// to `b_max`.
    fn wide(b_max: i64) -> (Layout, Vec<DataFrame>) {
        let layout = Layout {
            name: "wide",
            keys: &[("a", Ty::I64, true), ("b", Ty::I64, false)],
            measures: &[("n", Ty::U64)],
        };
        let part = |a: [Option<i64>; 3], b: [i64; 3]| {
            df!("a" => a, "b" => b, "n" => [1u64, 2, 3]).unwrap()
        };
        let parts = vec![
            part([None, Some(i64::MIN), Some(7)], [b_max, 0, 1]),
            part([None, Some(7), Some(i64::MAX)], [b_max, 1, 0]),
        ];
        (layout, parts)
    }

    #[test]
    fn keys_of_127_bits_pack_and_of_128_do_not() {
        // 65 + 62 bits: packed, and summed as the word path sums.
        let (layout, parts) = wide((1 << 62) - 1);
        let words = super::super::merge_words(&layout, parts.clone()).unwrap();
        let Ok(Merged::Sum(packed)) = merge(&layout, parts) else {
            panic!("127 bits pack");
        };
        assert!(packed.equals_missing(&words), "{packed} against {words}");
        // By hand: (null, b_max) 1 + 1; (7, 1) 3 + 2.
        assert_eq!(
            packed.column("n").unwrap().u64().unwrap().to_vec(),
            vec![Some(2), Some(2), Some(5), Some(3)]
        );
        assert_eq!(
            packed.column("a").unwrap().i64().unwrap().to_vec(),
            vec![None, Some(i64::MIN), Some(7), Some(i64::MAX)]
        );
        // 65 + 63 bits: given back.
        let (layout, parts) = wide(i64::MAX);
        assert!(matches!(merge(&layout, parts), Ok(Merged::TooWide(p)) if p.len() == 2));
    }
}
