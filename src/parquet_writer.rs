//! The engine's Parquet writer: the metric tables, the rejects, the statistics set's files and
//! the spill files of a partitioned run. Each column gets the encoding that suits what it holds,
//! chosen from its type and (for strings) from each row group's values, so the bytes depend on
//! the rows only:
//!
//! - a string column with few distinct values (a class, an analyst, a verdict) is
//!   dictionary-encoded: its codes ([`Codes::of`], which hashes each distinct view once per
//!   chunk) become the keys of one data page per row group;
//! - a string column with many distinct values is written plain (its coding stops at the
//!   first distinct value past the limit, [`Codes::of_at_most`]);
//! - floating-point values (confidences) are written plain and uncompressed: LZ4 gains nothing
//!   on them and costs most of the writing time;
//! - integers and dates are delta-encoded (Parquet's `DELTA_BINARY_PACKED`, which DuckDB,
//!   pyarrow, polars and Spark from 3.3 read; some older readers do not), uncompressed: the
//!   sorted tables' periods, counts and review delays change little from row to row, so their
//!   bit-packed differences take a fraction of the plain bytes (the 10^7-decision `reviews`
//!   table: 29 MB against 57 MB plain with LZ4) without a compressor's pass;
//! - everything else is written plain, LZ4-compressed.
//!
//! Readers see ordinary Parquet with the frame's own schema (strings, not dictionaries).

use std::fs::File;
use std::io::{BufWriter, Cursor, Write};
use std::path::Path;

use polars::prelude::*;
use polars_arrow::array::{Array, DictionaryArray, PrimitiveArray, Utf8ViewArray};
use polars_arrow::bitmap::Bitmap;
use polars_arrow::datatypes::{ArrowDataType, IntegerType};
use polars_buffer::Buffer;
use polars_parquet::parquet::error::ParquetError;
use polars_parquet::parquet::page::CompressedPage;
use polars_parquet::parquet::read::{get_page_iterator, read_metadata};
use polars_parquet::write::{
    array_to_columns, fallible_streaming_iterator, get_dtype_encoding, to_parquet_schema,
    CompressionOptions, Compressor, DynIter, DynStreamingIterator, Encoding,
    FallibleStreamingIterator, FileWriter, ParquetType, SchemaDescriptor, Version, WriteOptions,
};

use crate::aggregate::build::Codes;
use crate::ingest::IngestError;
use crate::partition::io_err;

/// A string column is dictionary-encoded when it has at most one distinct value per this many
/// rows of the row group.
const ROWS_PER_DISTINCT: usize = 4;

/// Where a file's bytes go: through the page cache, or past it ([`crate::direct`]).
enum Sink {
    Plain(BufWriter<File>),
    Direct(crate::direct::DirectWriter),
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(data),
            Sink::Direct(w) => w.write(data),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Direct(w) => w.flush(),
        }
    }
}

/// Writes frames to one Parquet file, one row group per frame.
pub(crate) struct ParquetOut {
    writer: FileWriter<Sink>,
    fields: Vec<ParquetType>,
    dtypes: Vec<DataType>,
    options: WriteOptions,
    path: std::path::PathBuf,
}

impl ParquetOut {
    /// Creates `path` for frames of `schema`, with column statistics (min, max, null count)
    /// when `statistics` is set.
    pub(crate) fn create(
        path: &Path,
        schema: &Schema,
        statistics: bool,
    ) -> Result<ParquetOut, IngestError> {
        let file = File::create(path).map_err(|e| io_err(path, e))?;
        let sink = Sink::Plain(BufWriter::with_capacity(1 << 20, file));
        ParquetOut::create_on(path, sink, schema, statistics)
    }

    /// [`ParquetOut::create`] for a large file the run does not read back (the statistics
    /// set's value counts), written past the page cache ([`crate::direct`]).
    pub(crate) fn create_direct(
        path: &Path,
        schema: &Schema,
        statistics: bool,
    ) -> Result<ParquetOut, IngestError> {
        let file = crate::direct::DirectWriter::create(path).map_err(|e| io_err(path, e))?;
        ParquetOut::create_on(path, Sink::Direct(file), schema, statistics)
    }

    fn create_on(
        path: &Path,
        sink: Sink,
        schema: &Schema,
        statistics: bool,
    ) -> Result<ParquetOut, IngestError> {
        // Categories are written as the strings they stand for.
        let schema: Schema = schema
            .iter()
            .map(|(name, dtype)| Field::new(name.clone(), file_dtype(dtype)))
            .collect();
        let arrow = schema.to_arrow(CompatLevel::newest());
        let parquet: SchemaDescriptor = to_parquet_schema(&arrow).map_err(|e| io_err(path, e))?;
        let options = WriteOptions {
            statistics: if statistics {
                StatisticsOptions::default()
            } else {
                StatisticsOptions::empty()
            },
            compression: CompressionOptions::Lz4Raw,
            version: Version::V1,
            data_page_size: None,
        };
        let fields = parquet.fields().to_vec();
        Ok(ParquetOut {
            writer: FileWriter::new_with_parquet_schema(sink, arrow, parquet, options),
            fields,
            dtypes: schema.iter_values().cloned().collect(),
            options,
            path: path.to_path_buf(),
        })
    }

    /// Writes `df` (of the file's schema) as one row group; an empty frame writes nothing.
    pub(crate) fn write(&mut self, df: &DataFrame) -> Result<(), IngestError> {
        if df.height() == 0 {
            return Ok(());
        }
        let err = |e: PolarsError| io_err(&self.path, e);
        if df.width() != self.fields.len() {
            return Err(io_err(
                &self.path,
                format!(
                    "a frame of {} columns for a file of {}",
                    df.width(),
                    self.fields.len()
                ),
            ));
        }
        let mut columns = Vec::with_capacity(df.width());
        for ((column, field), dtype) in df.columns().iter().zip(&self.fields).zip(&self.dtypes) {
            if column.name().as_str() != field.name() || file_dtype(column.dtype()) != *dtype {
                return Err(io_err(
                    &self.path,
                    format!(
                        "column {} is {}, the file's schema says {} {dtype}",
                        column.name(),
                        column.dtype(),
                        field.name()
                    ),
                ));
            }
            let series = column.as_materialized_series().rechunk();
            let (array, encoding, compression) = self.encoded(&series).map_err(err)?;
            // One data page per column and row group: polars-parquet gives each page of a
            // dictionary column the statistics of the whole array (null count included), so
            // more than one page would count its nulls more than once.
            let options = WriteOptions {
                compression,
                data_page_size: Some(usize::MAX),
                ..self.options
            };
            for pages in array_to_columns(&array, field.clone(), options, &encoding).map_err(err)? {
                let pages = pages
                    .map(|page| page.map_err(|e| ParquetError::FeatureNotSupported(e.to_string())));
                let compressed = Compressor::new_from_vec(pages, compression, Vec::new());
                columns.push(Ok(DynStreamingIterator::new(
                    compressed.map_err(PolarsError::from),
                )));
            }
        }
        self.writer
            .write(df.height() as u64, DynIter::new(columns.into_iter()))
            .map_err(err)
    }

    /// The arrow array of a one-chunk column with its leaves' encodings and its compression.
    fn encoded(
        &self,
        series: &Series,
    ) -> PolarsResult<(Box<dyn Array>, Vec<Encoding>, CompressionOptions)> {
        let lz4 = CompressionOptions::Lz4Raw;
        let limit = series.len() / ROWS_PER_DISTINCT;
        if let DataType::Categorical(..) = series.dtype() {
            // The same dictionary as the strings' (the codes are the same), or their values.
            let column = series.clone().into_column();
            let codes = Codes::of_column(&column)?;
            if codes.len() > 0 && codes.len() <= limit {
                return Ok((dictionary(&codes)?, vec![Encoding::RleDictionary], lz4));
            }
            return self.encoded(&series.cast(&DataType::String)?);
        }
        if let Ok(ca) = series.str() {
            // Coding stops at the first distinct string past the limit.
            let few = Codes::of_at_most(ca, limit);
            if let Some(codes) = few.filter(|c| c.len() > 0) {
                return Ok((dictionary(&codes)?, vec![Encoding::RleDictionary], lz4));
            }
        }
        let mut array = series.to_arrow(0, CompatLevel::newest());
        // Without nulls, no validity: the definition levels are then encoded the same way
        // whether or not the column happened to carry an all-valid bitmap.
        if array.null_count() == 0 && array.validity().is_some() {
            array = array.with_validity(None);
        }
        Ok(match series.dtype() {
            DataType::Float32 | DataType::Float64 => (
                array,
                vec![Encoding::Plain],
                CompressionOptions::Uncompressed,
            ),
            DataType::Int32
            | DataType::Int64
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Date => (
                array,
                vec![Encoding::DeltaBinaryPacked],
                CompressionOptions::Uncompressed,
            ),
            _ => {
                // One encoding per leaf (a list has one leaf), all plain.
                let leaves = get_dtype_encoding(array.dtype()).len();
                (array, vec![Encoding::Plain; leaves], lz4)
            }
        })
    }

    /// Writes `df` as row groups of at most [`ROW_GROUP`] rows cut from it: the file's bytes
    /// depend on the rows only, not on how frames happen to be chunked in memory, as long as
    /// the frames' boundaries are (a table written one period at a time, say).
    pub(crate) fn write_sliced(&mut self, df: &DataFrame) -> Result<(), IngestError> {
        for offset in (0..df.height()).step_by(ROW_GROUP) {
            self.write(&df.slice(offset as i64, ROW_GROUP))?;
        }
        Ok(())
    }

    /// Appends the row groups of `path`, a file written by a [`ParquetOut`] of the same schema
    /// and statistics setting, as they are: their pages are copied, not decoded and encoded
    /// again, so this file's bytes are those that writing the frames `path` was written from
    /// would have given. A file of other columns, of nested columns or with pages whose
    /// statistics this file would not have (or lacking those it would) is an error naming it,
    /// found before any of its rows is written.
    pub(crate) fn append(&mut self, path: &Path) -> Result<(), IngestError> {
        let err = |e: ParquetError| io_err(path, e);
        let bytes: Buffer<u8> = std::fs::read(path).map_err(|e| io_err(path, e))?.into();
        let metadata = read_metadata(&mut Cursor::new(bytes.clone())).map_err(err)?;
        if metadata.schema().fields() != self.fields.as_slice() {
            return Err(io_err(
                path,
                format!(
                    "its columns differ from {}'s: {:?}",
                    self.path.display(),
                    metadata.schema().fields()
                ),
            ));
        }
        // A page read back does not carry its rows (a version-1 page header has none); in a
        // column without repetition they are its values.
        let columns = metadata.schema().columns();
        if let Some(nested) = columns.iter().find(|c| c.descriptor.max_rep_level != 0) {
            return Err(io_err(
                path,
                format!("{} is a nested column", nested.path_in_schema.join(".")),
            ));
        }
        let statistics = !self.options.statistics.is_empty();
        // Each row group is read and checked whole before it is written.
        for group in &metadata.row_groups {
            let mut pages_of: Vec<Vec<CompressedPage>> = Vec::with_capacity(group.n_columns());
            for chunk in group.parquet_columns() {
                let reader =
                    get_page_iterator(chunk, Cursor::new(bytes.clone()), Vec::new(), usize::MAX)
                        .map_err(err)?;
                let mut pages = reader
                    .collect::<Result<Vec<CompressedPage>, _>>()
                    .map_err(err)?;
                for page in &mut pages {
                    if let CompressedPage::Data(page) = page {
                        if page.statistics().is_some() != statistics {
                            let (theirs, ours) = match statistics {
                                true => ("no statistics", "has"),
                                false => ("statistics", "has none"),
                            };
                            return Err(io_err(
                                path,
                                format!("its pages have {theirs}; {} {ours}", self.path.display()),
                            ));
                        }
                        page.num_rows = Some(page.num_values());
                    }
                }
                pages_of.push(pages);
            }
            let columns = pages_of.iter().map(|pages| {
                let pages = fallible_streaming_iterator::convert(pages.iter().map(Ok));
                Ok(DynStreamingIterator::new(pages))
            });
            self.writer
                .write(group.num_rows() as u64, DynIter::new(columns))
                .map_err(|e| io_err(&self.path, e))?;
        }
        Ok(())
    }

    /// Writes the footer and flushes the file.
    pub(crate) fn finish(mut self) -> Result<(), IngestError> {
        self.writer.end(None).map_err(|e| io_err(&self.path, e))?;
        match self.writer.into_inner() {
            Sink::Plain(mut file) => file.flush(),
            Sink::Direct(file) => file.finish(),
        }
        .map_err(|e| io_err(&self.path, e))
    }
}

/// The type a column of `dtype` has in the file: categories are written as strings.
fn file_dtype(dtype: &DataType) -> DataType {
    match dtype {
        DataType::Categorical(..) => DataType::String,
        other => other.clone(),
    }
}

/// Most rows in a row group.
const ROW_GROUP: usize = 512 * 512;

/// Writes `df` to `path` in row groups of [`ROW_GROUP`] rows.
pub(crate) fn write_frame(
    path: &Path,
    df: &DataFrame,
    statistics: bool,
) -> Result<(), IngestError> {
    let mut out = ParquetOut::create(path, df.schema(), statistics)?;
    out.write_sliced(df)?;
    out.finish()
}

/// A string column as an arrow dictionary of its distinct values (in byte order) and their
/// keys; nulls stay null.
fn dictionary(codes: &Codes<&str>) -> PolarsResult<Box<dyn Array>> {
    let keys: Vec<u32> = codes.codes.iter().map(|c| c.saturating_sub(1)).collect();
    let validity = codes
        .codes
        .contains(&0)
        .then(|| Bitmap::from_iter(codes.codes.iter().map(|&c| c != 0)));
    let keys = PrimitiveArray::<u32>::new(ArrowDataType::UInt32, keys.into(), validity);
    let values = Utf8ViewArray::from_slice_values(codes.values().collect::<Vec<&str>>());
    let dtype = ArrowDataType::Dictionary(
        IntegerType::UInt32,
        Box::new(ArrowDataType::Utf8View),
        false,
    );
    Ok(DictionaryArray::try_new(dtype, keys, values.boxed())?.boxed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::SpillDir;
    use polars_parquet::parquet::compression::Compression;
    use polars_parquet::parquet::statistics::Statistics;
    use polars_parquet::read::read_metadata;
    use std::path::PathBuf;

    /// 40 rows: a string column of 3 values with nulls, one of 40 distinct long strings, a
    /// float column, an integer column, a boolean column and a list of strings.
    fn sample() -> DataFrame {
        // Short (inline) and long (buffered) class names.
        let classes: Vec<Option<&str>> = (0..40)
            .map(|i| {
                [
                    Some("close_alert_benign"),
                    None,
                    Some("block_ip"),
                    Some("a"),
                ][i % 4]
            })
            .collect();
        let targets: Vec<String> = (0..40)
            .map(|i| format!("target-entity-with-a-long-name-{i:03}"))
            .collect();
        let confidence: Vec<f64> = (0..40).map(|i| f64::from(i) / 41.0).collect();
        let n: Vec<u64> = (0..40).map(|i| i % 3).collect();
        let flag: Vec<bool> = (0..40).map(|i| i % 5 == 0).collect();
        let lists: Vec<Series> = (0..40)
            .map(|i| Series::new("".into(), vec!["T1059"; i % 3]))
            .collect();
        DataFrame::new_infer_height(vec![
            Column::new("action_class".into(), classes),
            Column::new("target_entity".into(), targets),
            Column::new("confidence".into(), confidence),
            Column::new("n".into(), n),
            Column::new("flag".into(), flag),
            Column::new("techniques".into(), lists),
        ])
        .unwrap()
    }

    /// A writer of [`sample`]'s schema at `t.parquet` in a private directory.
    fn sample_writer(statistics: bool) -> (SpillDir, PathBuf, DataFrame, ParquetOut) {
        let dir = tempdir();
        let path = dir.path().join("t.parquet");
        let df = sample();
        let out = ParquetOut::create(&path, df.schema(), statistics).unwrap();
        (dir, path, df, out)
    }

    /// A string column's values as owned strings (new buffers when made a column again).
    fn owned_strings(df: &DataFrame, name: &str) -> Vec<Option<String>> {
        df.column(name)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|s| s.map(str::to_string))
            .collect()
    }

    fn read(path: &Path) -> DataFrame {
        ParquetReader::new(File::open(path).unwrap())
            .finish()
            .unwrap()
    }

    /// Writes `df` as `parts` (row ranges), finishes the file and checks that it reads back
    /// equal, schema included.
    fn write_parts_and_read_back(
        mut out: ParquetOut,
        path: &Path,
        df: &DataFrame,
        parts: &[(i64, usize)],
    ) {
        for &(offset, len) in parts {
            out.write(&df.slice(offset, len)).unwrap();
        }
        out.finish().unwrap();
        let back = read(path);
        assert!(back.equals_missing(df), "{back}\n{df}");
        assert_eq!(back.schema(), df.schema());
    }

    #[test]
    fn frames_read_back_equal_with_each_column_encoded_for_its_values() {
        let (_dir, path, df, out) = sample_writer(true);
        write_parts_and_read_back(out, &path, &df, &[(0, 25), (25, 100), (0, 0)]);

        let meta = read_metadata(&mut File::open(&path).unwrap()).unwrap();
        assert_eq!(
            meta.row_groups.len(),
            2,
            "the empty frame writes no row group"
        );
        let columns = meta.row_groups[0].parquet_columns();
        let dictionary = |i: usize| columns[i].dictionary_page_offset().is_some();
        // 3 distinct classes in 25 rows: a dictionary; 25 distinct targets: plain.
        assert!(dictionary(0));
        assert!(!dictionary(1));
        assert_eq!(columns[1].compression(), Compression::Lz4Raw);
        assert_eq!(columns[2].compression(), Compression::Uncompressed);
        // Integers: delta-encoded, uncompressed. Plain, 25 counts would take 200 bytes.
        assert_eq!(columns[3].compression(), Compression::Uncompressed);
        assert!(
            columns[3].compressed_size() < 200,
            "{}",
            columns[3].compressed_size()
        );
        assert_eq!(columns[4].compression(), Compression::Lz4Raw);
    }

    #[test]
    fn bytes_depend_on_the_rows_not_on_their_chunks_or_buffers() {
        let dir = tempdir();
        let df = sample();
        // The same rows in several chunks, their long strings in other buffers.
        let mut chunked = df.slice(0, 13);
        chunked.vstack_mut(&df.slice(13, 14)).unwrap();
        chunked.vstack_mut(&df.slice(27, 13)).unwrap();
        // The same strings copied into new buffers, row by row.
        let mut copied = df.clone();
        for name in ["action_class", "target_entity"] {
            copied
                .with_column(Column::new(name.into(), owned_strings(&df, name)))
                .unwrap();
        }
        let bytes = |df: &DataFrame, name: &str| {
            let path = dir.path().join(name);
            write_frame(&path, df, true).unwrap();
            std::fs::read(path).unwrap()
        };
        let one = bytes(&df, "one.parquet");
        assert_eq!(one, bytes(&chunked, "chunked.parquet"));
        assert_eq!(one, bytes(&copied, "copied.parquet"));
        // The same strings as categories (the classes a dictionary, the targets too many for
        // one), whose mappings hold other strings before them.
        let mut cats = df.clone();
        for name in ["action_class", "target_entity"] {
            let categories = Categories::new(
                format!("readiness.test.writer.{name}").into(),
                "readiness".into(),
                CategoricalPhysical::U32,
            );
            categories.mapping().insert_cat("not-in-the-frame").unwrap();
            let dtype = DataType::from_categories(categories);
            let column = df.column(name).unwrap().cast(&dtype).unwrap();
            cats.with_column(column).unwrap();
        }
        assert_eq!(one, bytes(&cats, "categories.parquet"));
        // And they do depend on the rows: one class changed.
        let mut changed = df.clone();
        let mut classes = owned_strings(&df, "action_class");
        classes[3] = Some("b".into());
        changed
            .with_column(Column::new("action_class".into(), classes))
            .unwrap();
        assert_ne!(one, bytes(&changed, "changed.parquet"));
    }

    #[test]
    fn a_large_row_group_has_the_statistics_of_its_rows() {
        // 300,000 rows in one row group (more than one default data page of keys), a third of
        // them null, four distinct values.
        let dir = tempdir();
        let path = dir.path().join("t.parquet");
        let values: Vec<Option<&str>> = (0..300_000)
            .map(|i| {
                [
                    Some("medium"),
                    None,
                    Some("critical"),
                    Some("high-value-target"),
                ][i % 4]
            })
            .collect();
        let df = df!("c" => values).unwrap();
        let mut out = ParquetOut::create(&path, df.schema(), true).unwrap();
        out.write(&df).unwrap();
        out.finish().unwrap();
        assert!(read(&path).equals_missing(&df));
        let meta = read_metadata(&mut File::open(&path).unwrap()).unwrap();
        let column = &meta.row_groups[0].parquet_columns()[0];
        assert!(column.dictionary_page_offset().is_some());
        let Some(Ok(Statistics::Binary(stats))) = column.statistics(&meta.footer_buf) else {
            panic!("no string statistics");
        };
        assert_eq!(stats.null_count, Some(75_000));
        assert_eq!(stats.min_value.as_deref(), Some(&b"critical"[..]));
        assert_eq!(stats.max_value.as_deref(), Some(&b"medium"[..]));
    }

    #[test]
    fn a_frame_of_another_schema_is_an_error_naming_the_file() {
        let (_dir, _path, df, mut out) = sample_writer(false);
        let err = out.write(&df.select(["n"]).unwrap()).unwrap_err();
        assert!(err.to_string().contains("t.parquet"), "{err}");
        let swapped = df
            .select([
                "n",
                "action_class",
                "target_entity",
                "confidence",
                "flag",
                "techniques",
            ])
            .unwrap();
        let err = out.write(&swapped).unwrap_err().to_string();
        assert!(err.contains("column n is u64"), "{err}");
        // Same types, other names.
        let renamed = df.clone().rename("n", "m".into()).unwrap().clone();
        let err = out.write(&renamed).unwrap_err().to_string();
        assert!(
            err.contains("column m is u64, the file's schema says n u64"),
            "{err}"
        );
    }

    /// `n` rows of flat columns, starting at row `from`: a class of 3 values (a dictionary),
    /// distinct targets, a confidence, a count, a delay with nulls and a column of nulls only.
    fn flat_rows(from: usize, n: usize, classes: [&str; 3]) -> DataFrame {
        let rows = from..from + n;
        DataFrame::new_infer_height(vec![
            Column::new(
                "action_class".into(),
                rows.clone()
                    .map(|i| (i % 7 != 0).then_some(classes[i % 3]))
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "target_entity".into(),
                rows.clone()
                    .map(|i| format!("target-{i:07}"))
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "confidence".into(),
                rows.clone()
                    .map(|i| (i % 1000) as f64 / 1000.0)
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "n".into(),
                rows.clone().map(|i| (i % 5) as u64).collect::<Vec<_>>(),
            ),
            Column::new(
                "delay_us".into(),
                rows.clone()
                    .map(|i| (i % 11 != 0).then_some(i as i64 * 1_000_003 - 40_000_000))
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "analyst_id".into(),
                rows.map(|_| None::<&str>).collect::<Vec<_>>(),
            ),
        ])
        .unwrap()
    }

    #[test]
    fn appended_files_give_the_bytes_of_writing_their_frames() {
        let dir = tempdir();
        let path = |name: &str| dir.path().join(name);
        // A small frame, and one of more rows than a row group with other classes.
        let frames = [
            flat_rows(0, 25, ["close_alert_benign", "block_ip", "a"]),
            flat_rows(25, ROW_GROUP + 1000, ["isolate_host", "tag", "b"]),
        ];
        let create = |name: &str, statistics: bool| {
            ParquetOut::create(&path(name), frames[0].schema(), statistics).unwrap()
        };
        let (mut whole, mut stitched) = (
            create("whole.parquet", true),
            create("stitched.parquet", true),
        );
        // A file of no row group appends nothing.
        let empty = path("empty.parquet");
        write_frame(&empty, &frames[0].clear(), true).unwrap();
        stitched.append(&empty).unwrap();
        for (k, frame) in frames.iter().enumerate() {
            whole.write_sliced(frame).unwrap();
            let part = path(&format!("part-{k}.parquet"));
            write_frame(&part, frame, true).unwrap();
            stitched.append(&part).unwrap();
        }
        whole.finish().unwrap();
        stitched.finish().unwrap();
        let bytes = |name: &str| std::fs::read(path(name)).unwrap();
        assert!(bytes("stitched.parquet") == bytes("whole.parquet"));
        let meta = read_metadata(&mut File::open(path("stitched.parquet")).unwrap()).unwrap();
        assert_eq!(meta.row_groups.len(), 3);
        let mut all = frames[0].clone();
        all.vstack_mut(&frames[1]).unwrap();
        assert!(read(&path("stitched.parquet")).equals_missing(&all));

        // Refused, named: a file of other columns, one without the statistics this file has,
        // one with statistics this file has not, and one of nested columns.
        let mut out = create("other.parquet", true);
        let narrow = path("narrow.parquet");
        write_frame(&narrow, &frames[0].select(["n"]).unwrap(), true).unwrap();
        let err = out.append(&narrow).unwrap_err().to_string();
        assert!(err.contains("narrow.parquet"), "{err}");
        let bare = path("bare.parquet");
        write_frame(&bare, &frames[0], false).unwrap();
        let err = out.append(&bare).unwrap_err().to_string();
        assert!(
            err.contains("bare.parquet") && err.contains("no statistics"),
            "{err}"
        );
        let err = create("without.parquet", false)
            .append(&path("part-0.parquet"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("part-0.parquet") && err.contains("has none"),
            "{err}"
        );
        let (_d, nested, df, out) = sample_writer(true);
        write_parts_and_read_back(out, &nested, &df, &[(0, 40)]);
        let mut out = ParquetOut::create(&path("nested.parquet"), df.schema(), true).unwrap();
        let err = out.append(&nested).unwrap_err().to_string();
        assert!(
            err.contains("t.parquet") && err.contains("techniques"),
            "{err}"
        );
        assert!(err.contains("nested column"), "{err}");
    }

    #[test]
    fn delta_encoded_integers_and_dates_read_back_exactly() {
        let dir = tempdir();
        let path = dir.path().join("ints.parquet");
        // Extremes whose differences need all 64 bits, nulls, unsigned values above 2^31,
        // dates before and after the epoch, in several row groups' worth of rows.
        let n = 3000usize;
        let big: Vec<Option<i64>> = (0..n)
            .map(|i| match i % 5 {
                0 => None,
                1 => Some(i64::MAX - i as i64),
                2 => Some(i64::MIN + i as i64),
                3 => Some(1 << 62),
                _ => Some(-(i as i64)),
            })
            .collect();
        let unsigned: Vec<u32> = (0..n as u32).map(|i| u32::MAX - i * 7).collect();
        let days: Vec<i32> = (0..n as i32).map(|i| (i - 1500) * 37).collect();
        let df = DataFrame::new_infer_height(vec![
            Column::new("big".into(), big),
            Column::new("unsigned".into(), unsigned),
            Column::new("day".into(), days)
                .cast(&DataType::Date)
                .unwrap(),
        ])
        .unwrap();
        let out = ParquetOut::create(&path, df.schema(), true).unwrap();
        write_parts_and_read_back(out, &path, &df, &[(0, 1000), (1000, 2000)]);
        let meta = read_metadata(&mut File::open(&path).unwrap()).unwrap();
        for column in meta.row_groups[0].parquet_columns() {
            assert_eq!(column.compression(), Compression::Uncompressed);
        }
    }

    /// A private directory, removed when dropped.
    fn tempdir() -> SpillDir {
        SpillDir::create(&std::env::temp_dir()).unwrap()
    }
}
