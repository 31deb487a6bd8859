//! Spill files written and read past the kernel's page cache (`O_DIRECT`).
//!
//! A partitioned run writes its inputs' rows to spill files once and reads each back once, a
//! partition at a time, and every run writes the statistics set's two large files
//! (`confidence`, `reviews`) once without reading them back. Through
//! the page cache, each written byte is first copied into a page the kernel allocates for it,
//! and on the virtual machines measured here a fresh page costs far more than the copy:
//! writing 1 GiB through the page cache took 1.7–2.6 s of system time, with `O_DIRECT` 0.2 s;
//! at 10^8 decisions the copy into the page cache was a fifth of the routing's samples
//! (BENCHMARKS.md, "10^8 decisions, twenty-fifth session"). Direct transfers go between the
//! process's own buffers (pooled here, and kept by `crate::memory` in a partitioned run) and
//! the device.
//!
//! Direct transfers need buffers, file offsets and lengths aligned to the device's block size:
//! [`ALIGN`] (4 KiB) covers every block size Linux's direct I/O takes on common devices. A file
//! is written in whole blocks and cut to its length at the end. Where the file system refuses
//! direct I/O (tmpfs before Linux 6.6, some network file systems), the same calls go through
//! the page cache.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

/// The alignment of direct transfers' buffers, offsets and lengths.
const ALIGN: usize = 4096;

/// The size of a writer's buffer: the bytes handed to the device at a time.
const WRITE_BUFFER: usize = 1 << 21;

/// Buffers kept for reuse at most: as many as the routing's writers (twice the cores) or the
/// two tables' readers of a partition (twice the cores each) use at once, at most 32. Zeroing a
/// fresh buffer for each of a run's thousands of spill files would cost as much as the files'
/// bytes.
fn pooled() -> usize {
    (4 * crate::threads::workers()).clamp(8, 32)
}

/// Buffers no longer in use, for the next transfers.
static POOL: std::sync::Mutex<Vec<Aligned>> = std::sync::Mutex::new(Vec::new());

fn pool() -> std::sync::MutexGuard<'static, Vec<Aligned>> {
    POOL.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Hands back the buffers kept for reuse (when a run's spill files are gone).
pub fn release() {
    *pool() = Vec::new();
}

/// A buffer of `len` bytes whose start is aligned to [`ALIGN`] (a vector with room to spare,
/// used from its first aligned byte). Its bytes are zero or left from an earlier use.
struct Aligned {
    bytes: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    /// The smallest buffer of the pool with room for `len` bytes, or a new one (replacing the
    /// pool's largest, which is too small, so that the pool does not fill with small ones).
    fn new(len: usize) -> Aligned {
        let need = len + ALIGN;
        let reused = {
            let mut pool = pool();
            let fits = (0..pool.len())
                .filter(|&i| pool[i].bytes.len() >= need)
                .min_by_key(|&i| pool[i].bytes.len());
            let largest = || (0..pool.len()).max_by_key(|&i| pool[i].bytes.len());
            fits.or_else(largest).map(|i| pool.swap_remove(i))
        };
        let mut bytes = reused.map(|a| a.bytes).unwrap_or_default();
        if bytes.len() < need {
            bytes = vec![0u8; need];
        }
        let start = bytes.as_ptr().align_offset(ALIGN).min(ALIGN);
        Aligned { bytes, start, len }
    }

    /// Returns the buffer to the pool (or frees it when the pool is full).
    fn recycle(self) {
        let mut pool = pool();
        if pool.len() < pooled() {
            pool.push(self);
        }
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[self.start..self.start + self.len]
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.bytes[self.start..self.start + self.len]
    }
}

#[cfg(target_os = "linux")]
fn open_direct(options: &mut std::fs::OpenOptions) -> &mut std::fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    options.custom_flags(libc::O_DIRECT)
}

#[cfg(not(target_os = "linux"))]
fn open_direct(options: &mut std::fs::OpenOptions) -> &mut std::fs::OpenOptions {
    options
}

/// An open file's status flags (`O_DIRECT` among them).
#[cfg(target_os = "linux")]
fn status_flags(file: &File) -> std::io::Result<libc::c_int> {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on a descriptor this file owns; no memory is passed.
    match unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) } {
        flags if flags < 0 => Err(std::io::Error::last_os_error()),
        flags => Ok(flags),
    }
}

/// Turns direct I/O off on an open file (a file system that opened it so but refuses a
/// transfer).
#[cfg(target_os = "linux")]
fn through_page_cache(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let flags = status_flags(file)? & !libc::O_DIRECT;
    // SAFETY: fcntl on a descriptor this file owns; no memory is passed.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn through_page_cache(_file: &File) -> std::io::Result<()> {
    Ok(())
}

/// Whether `file` transfers past the page cache.
#[cfg(all(test, target_os = "linux"))]
fn is_direct(file: &File) -> bool {
    status_flags(file).is_ok_and(|flags| flags & libc::O_DIRECT != 0)
}

/// Whether an error is a refusal of direct I/O (rather than a failure of the device).
fn refused(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINVAL)
}

/// Opens `path` for reading or writing, directly where the file system allows it.
fn open(path: &Path, write: bool) -> std::io::Result<File> {
    let options = || {
        let mut options = std::fs::OpenOptions::new();
        match write {
            true => options.write(true).create(true).truncate(true),
            false => options.read(true),
        };
        options
    };
    match open_direct(&mut options()).open(path) {
        Err(e) if refused(&e) => options().open(path),
        opened => opened,
    }
}

/// Writes `all` (a whole number of blocks but at the end) to `file`, through the page cache
/// from the first transfer the file system refuses to make directly.
fn write_blocks(file: &mut File, all: &[u8]) -> std::io::Result<()> {
    let mut done = 0;
    let mut direct = true;
    while done < all.len() {
        match file.write(&all[done..]) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if direct && refused(&e) => {
                through_page_cache(file)?;
                direct = false;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A spill file being written: the bytes are gathered into an aligned buffer and handed to the
/// device a buffer at a time. [`DirectWriter::finish`] writes the rest and cuts the file to its
/// length; a writer dropped without it leaves an incomplete file.
pub struct DirectWriter {
    file: File,
    buffer: Aligned,
    /// Bytes of `buffer` in use.
    filled: usize,
    /// Bytes handed to the file.
    written: u64,
}

impl DirectWriter {
    pub fn create(path: &Path) -> std::io::Result<DirectWriter> {
        Ok(DirectWriter {
            file: open(path, true)?,
            buffer: Aligned::new(WRITE_BUFFER),
            filled: 0,
            written: 0,
        })
    }

    /// Writes what is buffered, padded to a whole block, and cuts the file to the bytes given.
    pub fn finish(mut self) -> std::io::Result<()> {
        let len = self.written + self.filled as u64;
        let padded = self.filled.div_ceil(ALIGN) * ALIGN;
        self.buffer.as_mut_slice()[self.filled..padded].fill(0);
        write_blocks(&mut self.file, &self.buffer.as_slice()[..padded])?;
        self.file.set_len(len)?;
        self.buffer.recycle();
        Ok(())
    }
}

impl Write for DirectWriter {
    /// Takes as much of `data` as the buffer holds, after handing a full buffer to the file (so
    /// that an error takes none of `data`).
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.filled == WRITE_BUFFER {
            write_blocks(&mut self.file, self.buffer.as_slice())?;
            self.written += WRITE_BUFFER as u64;
            self.filled = 0;
        }
        let n = data.len().min(WRITE_BUFFER - self.filled);
        self.buffer.as_mut_slice()[self.filled..self.filled + n].copy_from_slice(&data[..n]);
        self.filled += n;
        Ok(n)
    }

    /// Nothing: only whole blocks can be written before [`DirectWriter::finish`].
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The bytes of a file, read directly where the file system allows it.
pub struct DirectBytes(Aligned);

impl AsRef<[u8]> for DirectBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl Drop for DirectBytes {
    fn drop(&mut self) {
        let empty = Aligned {
            bytes: Vec::new(),
            start: 0,
            len: 0,
        };
        std::mem::replace(&mut self.0, empty).recycle();
    }
}

/// Reads the whole of `path`.
pub fn read(path: &Path) -> std::io::Result<DirectBytes> {
    let mut file = open(path, false)?;
    let len = usize::try_from(file.metadata()?.len())
        .map_err(|_| std::io::Error::other("a file larger than memory"))?;
    // Room for the last block whole: a direct read is a whole number of blocks.
    let mut buffer = Aligned::new(len.div_ceil(ALIGN) * ALIGN);
    let mut filled = 0;
    let mut direct = true;
    while filled < len {
        // From a block's start to the buffer's end: a whole number of blocks.
        match file.read(&mut buffer.as_mut_slice()[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if direct && refused(&e) => {
                through_page_cache(&file)?;
                direct = false;
            }
            Err(e) => return Err(e),
        }
    }
    if filled != len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("{filled} bytes read of {len}"),
        ));
    }
    buffer.len = len;
    Ok(DirectBytes(buffer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_read_back_what_was_written_at_every_length() {
        let name = format!("readiness-test-direct-{}", std::process::id());
        files_read_back(&std::env::temp_dir().join(&name));
        // tmpfs: through the page cache where it refuses `O_DIRECT` (before Linux 6.6).
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            files_read_back(&shm.join(&name));
        }
    }

    fn files_read_back(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        // Empty, shorter than a block, a block and one byte, past a buffer, written in pieces
        // of odd sizes.
        for len in [0, 1, 4095, 4096, 4097, WRITE_BUFFER, WRITE_BUFFER + 12_345] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 4096) as u8).collect();
            let path = dir.join(format!("{len}.bin"));
            let mut w = DirectWriter::create(&path).unwrap();
            for piece in data.chunks(1000 + len % 997) {
                w.write_all(piece).unwrap();
            }
            w.finish().unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().len(), len as u64);
            assert_eq!(
                std::fs::read(&path).unwrap(),
                data,
                "{len} bytes, read plainly"
            );
            assert_eq!(read(&path).unwrap().as_ref(), &data[..], "{len} bytes");
        }
        // A file written plainly is read the same way.
        let path = dir.join("plain.bin");
        std::fs::write(&path, b"written without direct I/O").unwrap();
        assert_eq!(read(&path).unwrap().as_ref(), b"written without direct I/O");
        assert!(read(&dir.join("missing.bin")).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Where the file system takes direct I/O, the writer and the reader use it.
    #[cfg(target_os = "linux")]
    #[test]
    fn files_are_transferred_directly_where_the_file_system_allows_it() {
        use std::os::unix::fs::OpenOptionsExt;
        let dir =
            std::env::temp_dir().join(format!("readiness-test-odirect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let probe = dir.join("probe.bin");
        let allowed = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(&probe)
            .is_ok();
        let path = dir.join("file.bin");
        let mut w = DirectWriter::create(&path).unwrap();
        assert_eq!(is_direct(&w.file), allowed);
        w.write_all(&[7u8; 10_000]).unwrap();
        w.finish().unwrap();
        assert_eq!(is_direct(&open(&path, false).unwrap()), allowed);
        assert_eq!(read(&path).unwrap().as_ref(), &[7u8; 10_000][..]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn buffers_are_aligned() {
        for len in [0, 1, 5000] {
            let a = Aligned::new(len);
            assert_eq!(a.as_slice().as_ptr() as usize % ALIGN, 0);
            assert_eq!(a.as_slice().len(), len);
        }
    }
}
