//! Writing a run directory: built under a temporary name next to its destination and renamed
//! into place only when complete, so a run killed at any point leaves the previous run intact
//! and no partial directory that looks complete. The ledger is rewritten copy-on-write (write a
//! new file, sync, rename), so an interrupted append never corrupts the history.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::Serialize;

/// A run directory being written.
pub struct RunDir {
    tmp: PathBuf,
    dest: PathBuf,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{}: {e}", path.display()))
}

impl RunDir {
    /// Starts a run directory that will become `dest` on [`RunDir::commit`].
    pub fn create(dest: &Path) -> io::Result<RunDir> {
        let parent = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        let name = dest
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| io_err(dest, "the output path needs a directory name"))?;
        let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| io_err(&tmp, e))?;
        }
        fs::create_dir_all(&tmp).map_err(|e| io_err(&tmp, e))?;
        Ok(RunDir {
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    /// Path of a file inside the (temporary) run directory; creates its parent folder.
    pub fn path(&self, rel: &str) -> io::Result<PathBuf> {
        let p = self.tmp.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        }
        Ok(p)
    }

    /// The temporary root, for renderers that write several files.
    pub fn root(&self) -> &Path {
        &self.tmp
    }

    /// Writes a DataFrame as Parquet.
    pub fn parquet(&self, rel: &str, df: &mut DataFrame) -> io::Result<()> {
        let path = self.path(rel)?;
        let file = File::create(&path).map_err(|e| io_err(&path, e))?;
        ParquetWriter::new(file)
            .finish(df)
            .map_err(|e| io_err(&path, e))?;
        Ok(())
    }

    /// Writes a value as pretty JSON with a final newline.
    pub fn json<T: Serialize>(&self, rel: &str, value: &T) -> io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| io_err(Path::new(rel), e))?;
        bytes.push(b'\n');
        self.bytes(rel, &bytes)
    }

    /// Writes raw bytes.
    pub fn bytes(&self, rel: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.path(rel)?;
        fs::write(&path, bytes).map_err(|e| io_err(&path, e))
    }

    /// Moves the finished directory into place, replacing a previous run at the same path.
    pub fn commit(self) -> io::Result<PathBuf> {
        let old = self.tmp.with_file_name(format!(
            ".{}.old-{}",
            self.dest
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("run"),
            std::process::id()
        ));
        if self.dest.exists() {
            fs::rename(&self.dest, &old).map_err(|e| io_err(&self.dest, e))?;
        }
        fs::rename(&self.tmp, &self.dest).map_err(|e| io_err(&self.dest, e))?;
        if old.exists() {
            fs::remove_dir_all(&old).map_err(|e| io_err(&old, e))?;
        }
        Ok(self.dest.clone())
    }
}

/// Replaces `path` with `bytes` atomically: write a sibling temporary file, sync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut f = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        f.write_all(bytes).map_err(|e| io_err(&tmp, e))?;
        f.sync_all().map_err(|e| io_err(&tmp, e))?;
    }
    fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

/// Appends records to a JSON-lines ledger unless a record with the same run id and class is
/// already there. Lines that do not parse (there should be none: writes are atomic) are kept
/// as they are. Returns how many records were added.
pub fn append_ledger<T: Serialize>(
    path: &Path,
    run_id: &str,
    records: &[(String, T)],
) -> io::Result<usize> {
    let existing = match fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io_err(path, e)),
    };
    let seen: std::collections::BTreeSet<(String, String)> = existing
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            Some((
                v.get("run_id")?.as_str()?.to_string(),
                v.get("action_class")?.as_str()?.to_string(),
            ))
        })
        .collect();
    let mut out = existing;
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    let mut added = 0;
    for (class, rec) in records {
        if seen.contains(&(run_id.to_string(), class.clone())) {
            continue;
        }
        out.push_str(&serde_json::to_string(rec).map_err(|e| io_err(path, e))?);
        out.push('\n');
        added += 1;
    }
    if added > 0 {
        write_atomic(path, out.as_bytes())?;
    }
    Ok(added)
}
