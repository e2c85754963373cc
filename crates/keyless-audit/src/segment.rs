//! Journal segments. The journal directory contains the active file
//! `journal.jsonl`, which the writer appends to, and sealed files
//! `journal-<first seq, 20 digits>.jsonl`, which nothing writes to again.
//!
//! A segment is named by the `seq` of its first whole entry. The writer seals
//! the active file by renaming it once it reaches its size limit, and starts a
//! new active file. Delivery reads segments in `seq` order and deletes a sealed
//! segment only after it has committed a position in a later one.
//!
//! The active file is preallocated: the writer keeps zero bytes written and
//! synced ahead of its last line (see `journal`), so the file's data ends at
//! the first zero byte, not at its length. JSON escapes every control
//! character, so no entry contains a zero byte. A sealed file has no zero tail,
//! because the writer truncates the active file to its data before sealing it.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncSeekExt};

/// The file the writer appends to.
pub(crate) const ACTIVE_NAME: &str = "journal.jsonl";
const SEALED_PREFIX: &str = "journal-";
const SEALED_SUFFIX: &str = ".jsonl";

/// One segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    /// The `seq` of the first whole entry in the file.
    pub id: u64,
    pub path: PathBuf,
    pub sealed: bool,
}

/// The part of a journal line that names a segment.
#[derive(Deserialize)]
struct SeqOnly {
    seq: u64,
}

pub(crate) fn sealed_name(first_seq: u64) -> String {
    format!("{SEALED_PREFIX}{first_seq:020}{SEALED_SUFFIX}")
}

pub(crate) fn parse_sealed_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(SEALED_PREFIX)?.strip_suffix(SEALED_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Returns the `seq` of the first whole entry of an open file, read from its
/// start, or `None` when it has none yet. The file's position afterwards is
/// unspecified.
pub(crate) async fn first_seq_of(file: &mut tokio::fs::File) -> std::io::Result<Option<u64>> {
    file.seek(std::io::SeekFrom::Start(0)).await?;
    let mut reader = tokio::io::BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        if !read_line(&mut reader, &mut line).await? {
            return Ok(None);
        }
        if let Ok(entry) = serde_json::from_slice::<SeqOnly>(&line) {
            return Ok(Some(entry.seq));
        }
    }
}

/// Reads one line, newline included, into `line`. Returns false at the end of
/// the data: the end of the file, a zero byte, or a line without its newline,
/// which is still being written or was torn by a crash. Unlike `read_until`,
/// it stops at the first zero byte instead of reading a preallocated tail.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R, line: &mut Vec<u8>) -> std::io::Result<bool> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(false);
        }
        match available.iter().position(|b| *b == b'\n' || *b == 0) {
            Some(at) if available[at] == b'\n' => {
                line.extend_from_slice(&available[..=at]);
                reader.consume(at + 1);
                return Ok(true);
            }
            Some(_) => return Ok(false),
            None => {
                let consumed = available.len();
                line.extend_from_slice(available);
                reader.consume(consumed);
            }
        }
    }
}

/// Returns the part of a journal file's bytes that contains data: everything
/// before the first zero byte.
pub(crate) fn data_part(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|b| *b == 0) {
        Some(end) => &bytes[..end],
        None => bytes,
    }
}

/// The end of the whole entries in a journal file, found when the writer
/// opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DataEnd {
    /// The `seq` of the last whole entry, or 0 when there is none.
    pub last_seq: u64,
    /// The offset just after the last newline before the first zero byte. What
    /// follows is a torn line or a zero tail, and neither was acknowledged.
    pub offset: u64,
}

/// Finds the data end of the file at `path`; a missing file has an empty one.
/// A torn last line (a crash mid-write, never acknowledged) is not counted.
pub(crate) async fn data_end(path: &Path) -> std::io::Result<DataEnd> {
    let bytes = match tokio::fs::read(path).await {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(DataEnd { last_seq: 0, offset: 0 }),
        Err(err) => return Err(err),
    };
    let data = data_part(&bytes);
    let whole = match data.iter().rposition(|b| *b == b'\n') {
        Some(last_newline) => &data[..=last_newline],
        None => &data[..0],
    };
    let mut last_seq = 0;
    for line in whole.split(|b| *b == b'\n') {
        if let Ok(entry) = serde_json::from_slice::<SeqOnly>(line) {
            last_seq = entry.seq;
        }
    }
    Ok(DataEnd { last_seq, offset: whole.len() as u64 })
}

/// Returns the length of the data in the file at `path` without reading all
/// of it: the file's length less its zero tail, found by reading backwards.
/// A missing file has none.
pub(crate) fn data_len(path: &Path) -> std::io::Result<u64> {
    use std::io::{Read, Seek};
    const BLOCK: u64 = 64 * 1024;
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let mut end = file.metadata()?.len();
    let mut block = Vec::with_capacity(BLOCK as usize);
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        file.seek(std::io::SeekFrom::Start(start))?;
        block.clear();
        (&mut file).take(end - start).read_to_end(&mut block)?;
        if let Some(last) = block.iter().rposition(|b| *b != 0) {
            return Ok(start + last as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Returns the `seq` of the first whole entry of the file at `path`, or `None`
/// when the file is missing or has no whole entry.
pub(crate) async fn first_seq(path: &Path) -> std::io::Result<Option<u64>> {
    match tokio::fs::File::open(path).await {
        Ok(mut file) => first_seq_of(&mut file).await,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// Lists the segments of the journal in `dir` in `seq` order. The active file
/// is listed only once it contains a whole entry.
pub(crate) async fn list(dir: &Path) -> std::io::Result<Vec<Segment>> {
    let mut segments = Vec::new();
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(segments),
        Err(err) => return Err(err),
    };
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name();
        if let Some(id) = name.to_str().and_then(parse_sealed_name) {
            segments.push(Segment { id, path: entry.path(), sealed: true });
        }
    }
    let active = dir.join(ACTIVE_NAME);
    if let Some(id) = first_seq(&active).await? {
        // A sealed file with the same first entry would be the same data; the
        // sealed name wins, because the writer never appends to it again.
        if !segments.iter().any(|s| s.id == id) {
            segments.push(Segment { id, path: active, sealed: false });
        }
    }
    segments.sort_by_key(|s| s.id);
    Ok(segments)
}

/// Seals the active file and creates a new, empty one. Returns the new file,
/// opened for reading and writing at chosen offsets, or `None` when the active
/// file has no whole entry yet and stays as it is.
///
/// Every byte of the active file must be written and synced, and its zero
/// tail cut off, before this runs. The directory is synced last, so that the
/// new name of the sealed file is durable before the writer acknowledges
/// anything written to the new file.
pub(crate) async fn seal_active(dir: &Path) -> std::io::Result<Option<tokio::fs::File>> {
    let active = dir.join(ACTIVE_NAME);
    let Some(id) = first_seq(&active).await? else { return Ok(None) };
    tokio::fs::rename(&active, dir.join(sealed_name(id))).await?;
    let file = tokio::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&active).await?;
    tokio::fs::File::open(dir).await?.sync_all().await?;
    Ok(Some(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_names_round_trip() {
        assert_eq!(sealed_name(42), "journal-00000000000000000042.jsonl");
        assert_eq!(parse_sealed_name(&sealed_name(42)), Some(42));
        assert_eq!(parse_sealed_name(&sealed_name(u64::MAX)), Some(u64::MAX));
    }

    #[test]
    fn other_names_are_not_segments() {
        assert_eq!(parse_sealed_name("journal.jsonl"), None);
        assert_eq!(parse_sealed_name("journal-42.jsonl"), None);
        assert_eq!(parse_sealed_name("journal-0000000000000000004x.jsonl"), None);
        assert_eq!(parse_sealed_name("journal-00000000000000000042.jsonl.tmp"), None);
    }
}
