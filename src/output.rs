//! Writing a run directory: built under a temporary name next to its destination and renamed
//! into place only when complete, so a run killed at any point leaves the previous run intact
//! and no partial directory that looks complete. The ledger is rewritten copy-on-write (write a
//! new file, sync, rename), so an interrupted append never corrupts the history.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::Serialize;

/// What a directory this program writes holds: each command replaces only its own kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// `analyze`: a run (`manifest.json`, metrics, reports, `stats/`).
    Run,
    /// `board`: the quarterly pack (`board.json`).
    Board,
    /// `aggregate`: a statistics directory (`meta.parquet` and the tables).
    Stats,
}

impl OutputKind {
    const ALL: [OutputKind; 3] = [OutputKind::Run, OutputKind::Board, OutputKind::Stats];

    /// Files that together mark a directory of this kind.
    fn markers(self) -> &'static [&'static str] {
        match self {
            OutputKind::Run => &["manifest.json"],
            OutputKind::Board => &["board.json"],
            OutputKind::Stats => &["meta.parquet", "suffstats.parquet", "confidence.parquet"],
        }
    }

    fn describe(self) -> &'static str {
        match self {
            OutputKind::Run => "a run of `readiness analyze` (manifest.json)",
            OutputKind::Board => "a board pack of `readiness board` (board.json)",
            OutputKind::Stats => "a statistics directory of `readiness aggregate` (meta.parquet)",
        }
    }

    fn command(self) -> &'static str {
        match self {
            OutputKind::Run => "analyze",
            OutputKind::Board => "board",
            OutputKind::Stats => "aggregate",
        }
    }

    fn marks(self, dir: &Path) -> bool {
        self.markers().iter().all(|m| dir.join(m).is_file())
    }
}

/// A run directory being written.
pub struct RunDir {
    tmp: PathBuf,
    dest: PathBuf,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{}: {e}", path.display()))
}

impl RunDir {
    /// Starts a directory of `kind` that will become `dest` on [`RunDir::commit`].
    pub fn create(dest: &Path, kind: OutputKind) -> io::Result<RunDir> {
        let parent = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        let name = dest
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| io_err(dest, "the output path needs a directory name"))?;
        refuse_foreign(dest, kind)?;
        clean_leftovers(dest)?;
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

    /// Writes a DataFrame as Parquet, as the statistics set is written (`src/parquet_writer.rs`:
    /// each column encoded for its values, with column statistics).
    pub fn parquet(&self, rel: &str, df: &DataFrame) -> io::Result<()> {
        let path = self.path(rel)?;
        crate::parquet_writer::write_frame(&path, df, true).map_err(io::Error::other)
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

    /// Moves the finished directory into place. An existing run at the same path is swapped
    /// out in one atomic step (Linux `renameat2(RENAME_EXCHANGE)`), so at every instant `dest`
    /// is either the previous run or this one, complete; the previous run, now under the
    /// temporary name, is then removed. Where the exchange is not supported the previous run is
    /// first renamed aside (a kill between the two renames leaves it under its hidden `.old-`
    /// name, restored by the next run).
    pub fn commit(self) -> io::Result<PathBuf> {
        if self.dest.exists() {
            if exchange(&self.tmp, &self.dest).is_ok() {
                fs::remove_dir_all(&self.tmp).map_err(|e| io_err(&self.tmp, e))?;
                return Ok(self.dest.clone());
            }
            let old = sibling(&self.dest, "old");
            fs::rename(&self.dest, &old).map_err(|e| io_err(&self.dest, e))?;
            fs::rename(&self.tmp, &self.dest).map_err(|e| io_err(&self.dest, e))?;
            fs::remove_dir_all(&old).map_err(|e| io_err(&old, e))?;
        } else {
            fs::rename(&self.tmp, &self.dest).map_err(|e| io_err(&self.dest, e))?;
        }
        Ok(self.dest.clone())
    }
}

/// Refuses to replace `dest` unless it is absent, empty, or a directory of `kind` this program
/// wrote: `--out ~/work` must never delete someone's work, and `board --out` a month's run
/// must not replace that run's evidence. [`RunDir::create`] checks it; commands that compute
/// before they create their directory check it first too, so that a refusal comes at once.
pub fn refuse_foreign(dest: &Path, kind: OutputKind) -> io::Result<()> {
    if !dest.exists() {
        return Ok(());
    }
    if !dest.is_dir() {
        return Err(io_err(
            dest,
            "exists and is not a directory; choose another output path",
        ));
    }
    let empty = fs::read_dir(dest)
        .map_err(|e| io_err(dest, e))?
        .next()
        .is_none();
    if empty || kind.marks(dest) {
        return Ok(());
    }
    match OutputKind::ALL.into_iter().find(|other| other.marks(dest)) {
        Some(other) => Err(io_err(
            dest,
            format!(
                "holds {}; `readiness {}` would replace it: choose another output path",
                other.describe(),
                kind.command()
            ),
        )),
        None => Err(io_err(
            dest,
            "exists and is not a readiness output directory (no manifest.json, board.json or statistics tables); refusing to replace it: choose another output path",
        )),
    }
}

/// `.<name>.<kind>-<pid>` next to `path`.
fn sibling(path: &Path, kind: &str) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("run");
    path.with_file_name(format!(".{name}.{kind}-{}", std::process::id()))
}

/// Atomically swaps two directory entries (Linux only).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let cb = CString::new(b.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> io::Result<()> {
    Err(io::Error::other(
        "atomic exchange not supported on this platform",
    ))
}

/// Whether a process with this id is running (Linux: `/proc/<pid>`); elsewhere, assume it is.
fn alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Removes what killed runs left next to `path`: `.<name>.partial-<pid>`, `.<name>.tmp-<pid>`
/// of processes no longer running, and restores `.<name>.old-<pid>` when `path` itself is
/// missing (a kill between the two renames of the fallback commit).
fn clean_leftovers(path: &Path) -> io::Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(());
    };
    let Ok(entries) = fs::read_dir(parent) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        let Some(rest) = file.strip_prefix(&format!(".{name}.")) else {
            continue;
        };
        let Some((kind, pid)) = rest.rsplit_once('-') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() || alive(pid) {
            continue;
        }
        let p = entry.path();
        match kind {
            "old" if !path.exists() => fs::rename(&p, path).map_err(|e| io_err(&p, e))?,
            "partial" | "old" => fs::remove_dir_all(&p).map_err(|e| io_err(&p, e))?,
            "tmp" => fs::remove_file(&p).map_err(|e| io_err(&p, e))?,
            _ => {}
        }
    }
    Ok(())
}

/// Replaces `path` with `bytes` atomically: write a sibling temporary file, sync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
    clean_leftovers(path)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut f = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        f.write_all(bytes).map_err(|e| io_err(&tmp, e))?;
        f.sync_all().map_err(|e| io_err(&tmp, e))?;
    }
    fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

/// Checks, before a run starts, that the ledger at `path` can be read (absent is fine: it is
/// created), so that a bad `--ledger` (a directory, a file without read permission) fails
/// before the run directory is replaced. Returns a warning when some of its lines are not JSON
/// records (they are kept).
pub fn check_ledger(path: &Path) -> io::Result<Option<String>> {
    if path.is_dir() {
        return Err(io_err(
            path,
            "is a directory; --ledger takes a file (JSON lines, created if absent)",
        ));
    }
    let text = match fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, e)),
    };
    let bad: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            !l.trim().is_empty()
                && !serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v.is_object())
        })
        .map(|(i, _)| i + 1)
        .collect();
    Ok(match bad.as_slice() {
        [] => None,
        [first, ..] => Some(format!(
            "{}: {} line{} not a JSON record (the first at line {first}); kept as they are, \
             and not read as history",
            path.display(),
            bad.len(),
            if bad.len() == 1 { " is" } else { "s are" }
        )),
    })
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
