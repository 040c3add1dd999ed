//! Destination-only entries kept for `--purge` (`--mirror`) in bounded
//! memory: the first [`IN_MEMORY`] are held as they are, the rest are
//! appended to an unlinked temporary file and read back, in order, when the
//! purge walks them. A mirror onto a destination with a million extras so
//! costs a file of ~50 bytes per entry, not a million `String`s in RAM.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::Mutex;

use smb_core::FileTime;

use crate::backend::Entry;

/// Entries kept in memory before the rest go to the spill file.
const IN_MEMORY: usize = 16_384;

/// Destination-only entries (relative path, entry), in the order found.
#[derive(Debug, Default)]
pub struct Extras {
    mem: Vec<(String, Entry)>,
    /// Behind a lock only so that [`Extras::iter`] can take `&self`.
    spill: Option<Mutex<BufWriter<File>>>,
    spilled: usize,
    /// The spill file could not be written: the purge must not run on a
    /// partial list.
    pub error: Option<String>,
}

impl Extras {
    /// Records one entry.
    pub fn push(&mut self, rel: String, e: Entry) {
        if self.mem.len() < IN_MEMORY && self.spill.is_none() {
            self.mem.push((rel, e));
            return;
        }
        if self.error.is_some() {
            self.spilled += 1;
            return;
        }
        let r = match &mut self.spill {
            Some(w) => write_record(w.get_mut().unwrap_or_else(|e| e.into_inner()), &rel, &e),
            None => spill_file().and_then(|f| {
                let mut w = BufWriter::new(f);
                let r = write_record(&mut w, &rel, &e);
                self.spill = Some(Mutex::new(w));
                r
            }),
        };
        if let Err(err) = r {
            self.error = Some(format!("spilling extra entries to a temporary file: {err}"));
        }
        self.spilled += 1;
    }

    /// How many were recorded.
    pub fn len(&self) -> usize {
        self.mem.len() + self.spilled
    }

    /// True when none were.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries held in memory (the rest are in the spill file).
    pub fn in_memory(&self) -> usize {
        self.mem.len()
    }

    /// Every entry in the order recorded; a spill file that cannot be read
    /// back ends the iteration with an error. Nothing is pushed after.
    pub fn iter(&self) -> impl Iterator<Item = io::Result<(String, Entry)>> + '_ {
        let mut file = self.spill.as_ref().map(|w| {
            let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
            w.flush()
                .and_then(|()| w.get_mut().try_clone())
                .and_then(|mut f| f.seek(SeekFrom::Start(0)).map(|_| BufReader::new(f)))
        });
        let mut left = self.spilled;
        let mem = self.mem.iter().map(|(r, e)| Ok((r.clone(), e.clone())));
        mem.chain(std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            match file.as_mut()? {
                Ok(r) => Some(read_record(r)),
                Err(e) => {
                    let e = io::Error::new(e.kind(), e.to_string());
                    left = 0;
                    Some(Err(e))
                }
            }
        }))
    }
}

/// An anonymous temporary file (created, then unlinked at once on Unix).
fn spill_file() -> io::Result<File> {
    let path = std::env::temp_dir().join(format!(
        ".smbcp-extras-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    #[cfg(unix)]
    std::fs::remove_file(&path)?;
    Ok(f)
}

fn write_record(w: &mut impl Write, rel: &str, e: &Entry) -> io::Result<()> {
    let len = u32::try_from(rel.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(rel.as_bytes())?;
    // Flags: bit 0 a directory, bit 1 a creation time follows.
    w.write_all(&[u8::from(e.is_dir) | (u8::from(e.created.is_some()) << 1)])?;
    w.write_all(&e.size.to_le_bytes())?;
    w.write_all(&e.mtime.0.to_le_bytes())?;
    w.write_all(&e.attributes.to_le_bytes())?;
    w.write_all(&e.created.map_or(0, |t| t.0).to_le_bytes())
}

fn read_record(r: &mut impl Read) -> io::Result<(String, Entry)> {
    let mut n = [0u8; 4];
    r.read_exact(&mut n)?;
    let mut rel = vec![0u8; u32::from_le_bytes(n) as usize];
    r.read_exact(&mut rel)?;
    let rel = String::from_utf8(rel).map_err(|_| io::ErrorKind::InvalidData)?;
    let mut fixed = [0u8; 1 + 8 + 8 + 4 + 8];
    r.read_exact(&mut fixed)?;
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&fixed[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let entry = Entry {
        name: rel.rsplit('/').next().unwrap_or_default().to_string(),
        is_dir: fixed[0] & 1 != 0,
        size: u64_at(1),
        mtime: FileTime(u64_at(9)),
        attributes: u32::from_le_bytes([fixed[17], fixed[18], fixed[19], fixed[20]]),
        created: (fixed[0] & 2 != 0).then(|| FileTime(u64_at(21))),
    };
    Ok((rel, entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extras_past_the_memory_bound_spill_and_come_back_in_order() {
        let mut x = Extras::default();
        let n = IN_MEMORY + 5_000;
        for i in 0..n {
            let e = Entry {
                name: format!("é{i}"),
                is_dir: i % 7 == 0,
                size: i as u64 * 3,
                mtime: FileTime(i as u64 * 1_000_003),
                attributes: (i % 64) as u32,
                created: (i % 3 == 0).then(|| FileTime(i as u64 * 7)),
            };
            x.push(format!("d{}/é{i}", i % 10), e);
        }
        assert_eq!(x.len(), n);
        assert_eq!(x.in_memory(), IN_MEMORY);
        assert!(x.error.is_none());
        for _ in 0..2 {
            // Twice: a second walk reads the file from the start again.
            let got: Vec<_> = x.iter().map(Result::unwrap).collect();
            assert_eq!(got.len(), n);
            for (i, (rel, e)) in got.iter().enumerate() {
                assert_eq!(rel, &format!("d{}/é{i}", i % 10));
                assert_eq!(e.name, format!("é{i}"));
                assert_eq!(e.is_dir, i % 7 == 0);
                assert_eq!(e.size, i as u64 * 3);
                assert_eq!(e.mtime, FileTime(i as u64 * 1_000_003));
                assert_eq!(e.attributes, (i % 64) as u32);
                assert_eq!(e.created, (i % 3 == 0).then(|| FileTime(i as u64 * 7)));
            }
        }
    }
}
