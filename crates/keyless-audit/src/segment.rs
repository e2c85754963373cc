//! Journal segments. The journal directory contains the active file
//! `journal.jsonl`, which the writer appends to, and sealed files
//! `journal-<first seq, 20 digits>.jsonl`, which nothing writes to again.
//!
//! A segment is named by the `seq` of its first whole entry. The writer seals
//! the active file by renaming it once it reaches its size limit, and starts a
//! new active file. Delivery reads segments in `seq` order and deletes a sealed
//! segment only after it has committed a position in a later one.

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
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(None);
        }
        // A line without its newline is still being written, or torn.
        if line.last() != Some(&b'\n') {
            return Ok(None);
        }
        if let Ok(entry) = serde_json::from_slice::<SeqOnly>(&line) {
            return Ok(Some(entry.seq));
        }
    }
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

/// Returns the `seq` of the last whole entry of the file at `path`, or 0 when
/// the file is missing or has none. A torn last line (a crash mid-write, never
/// acknowledged) is ignored.
pub(crate) async fn last_seq(path: &Path) -> std::io::Result<u64> {
    let text = match tokio::fs::read(path).await {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let mut last = 0;
    for line in text.split(|b| *b == b'\n') {
        if let Ok(entry) = serde_json::from_slice::<SeqOnly>(line) {
            last = entry.seq;
        }
    }
    Ok(last)
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
/// or `None` when the active file has no whole entry yet and stays as it is.
///
/// Every byte of the active file must be written and synced before this runs.
/// The directory is synced last, so that the new name of the sealed file is
/// durable before the writer acknowledges anything written to the new file.
pub(crate) async fn seal_active(dir: &Path) -> std::io::Result<Option<tokio::fs::File>> {
    let active = dir.join(ACTIVE_NAME);
    let Some(id) = first_seq(&active).await? else { return Ok(None) };
    tokio::fs::rename(&active, dir.join(sealed_name(id))).await?;
    let file = tokio::fs::OpenOptions::new().create(true).append(true).open(&active).await?;
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
