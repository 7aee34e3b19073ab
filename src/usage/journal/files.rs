//! The journal's files: the private folder and files (0700/0600: rows may hold prompt text),
//! the lock, segment names, and the binding of the folder to one database (`journal.id`), with
//! rows journaled for another database set aside under `foreign/<id>/`.

use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Holds the identity of the database the journal's rows belong to.
pub const ID_FILE: &str = "journal.id";
/// Where rows journaled for another database are moved, one subfolder per database.
pub const FOREIGN_DIR: &str = "foreign";
/// Rows the database refused, one JSON object a line: `{"reason", "row"}`.
pub const REJECTED_FILE: &str = "rejected.jsonl";

/// Rows of another database found at open and moved aside.
#[derive(Debug, Clone, PartialEq)]
pub struct SetAside {
    /// The identity in `journal.id` that the rows were journaled for.
    pub database_id: String,
    pub rows: u64,
    pub folder: PathBuf,
}

/// Journal errors name the directory: the operator's first question.
pub(crate) fn naming(dir: &Path, err: io::Error) -> io::Error {
    io::Error::new(
        err.kind(),
        format!("usage journal {}: {err}", dir.display()),
    )
}

/// Creates `dir` and missing parents, the journal folder itself readable by its owner only.
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Options that create a file readable and writable by its owner only, whatever the umask
/// allows beyond that.
pub(crate) fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

pub(crate) fn lock_dir(dir: &Path) -> io::Result<File> {
    let path = dir.join("LOCK");
    let open = private_file()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path);
    let file = open.map_err(|err| naming(dir, err))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(naming(
            dir,
            io::Error::new(io::ErrorKind::WouldBlock, "in use by another process"),
        )),
        Err(TryLockError::Error(err)) => Err(naming(dir, err)),
    }
}

pub(crate) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("segment-{seq:020}.jsonl"))
}

pub(crate) fn create_segment(dir: &Path, seq: u64) -> io::Result<File> {
    private_file()
        .append(true)
        .create_new(true)
        .open(segment_path(dir, seq))
}

/// Sequences of the segment files in `dir`, ascending; other files are ignored.
pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut seqs = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let seq = name
            .to_str()
            .and_then(|name| name.strip_prefix("segment-")?.strip_suffix(".jsonl"))
            .filter(|digits| digits.len() == 20)
            .and_then(|digits| digits.parse::<u64>().ok());
        seqs.extend(seq);
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// Complete (newline-terminated) lines in a segment: the rows it holds for the backlog.
pub(crate) fn count_lines(path: &Path) -> io::Result<u64> {
    let mut file = File::open(path)?;
    let mut chunk = vec![0u8; 64 * 1024];
    let mut lines = 0;
    loop {
        match file.read(&mut chunk) {
            Ok(0) => return Ok(lines),
            Ok(n) => lines += chunk[..n].iter().filter(|b| **b == b'\n').count() as u64,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

/// Binds the (locked) journal folder to `database_id`. A folder bound to another database has
/// its segments and refused rows moved to `foreign/<that id>/`, never to be inserted here; a
/// folder without `journal.id` (new, or from before the binding) is taken as this database's.
/// Segments set aside earlier for this very database come back, to be replayed.
pub(crate) fn bind(dir: &Path, database_id: &str) -> io::Result<Option<SetAside>> {
    let set_aside = bind_id(dir, database_id)?;
    restore(dir, database_id)?;
    Ok(set_aside)
}

fn bind_id(dir: &Path, database_id: &str) -> io::Result<Option<SetAside>> {
    let bound = match fs::read_to_string(dir.join(ID_FILE)) {
        Ok(text) => Some(text.trim().to_owned()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => return Err(err),
    };
    let set_aside = match bound {
        Some(bound) if bound == database_id => return Ok(None),
        Some(bound) => set_aside(dir, bound)?,
        None => None,
    };
    if let Err(error) = write_id(dir, database_id) {
        // A full disk must not stop the gateway from starting. Without `journal.id` the folder
        // is taken as the next run's database's, which holds: its rows are all this one's.
        match fs::remove_file(dir.join(ID_FILE)) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(_) => return Err(error),
        }
        tracing::warn!(%error, dir = %dir.display(), "cannot write journal.id; the usage journal stays unbound until a later start");
    }
    Ok(set_aside)
}

fn set_aside(dir: &Path, database_id: String) -> io::Result<Option<SetAside>> {
    let mut files: Vec<PathBuf> = list_segments(dir)?
        .into_iter()
        .map(|seq| segment_path(dir, seq))
        .collect();
    let rejected = dir.join(REJECTED_FILE);
    let mut rows = 0;
    for segment in &files {
        rows += count_lines(segment)?;
    }
    if rejected.exists() {
        files.push(rejected);
    }
    if files.is_empty() {
        return Ok(None);
    }
    let folder = dir.join(FOREIGN_DIR).join(folder_name(&database_id));
    create_private_dir(&folder)?;
    for file in files {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        fs::rename(&file, free_name(&folder, &name))?;
    }
    Ok(Some(SetAside {
        database_id,
        rows,
        folder,
    }))
}

/// Moves segments from `foreign/<database_id>/` (set aside by a run on another database) back
/// into the folder, after the segments it holds.
fn restore(dir: &Path, database_id: &str) -> io::Result<()> {
    let folder = dir.join(FOREIGN_DIR).join(folder_name(database_id));
    let mut segments = Vec::new();
    match fs::read_dir(&folder) {
        Ok(entries) => {
            for entry in entries {
                let path = entry?.path();
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                if name.contains("segment-") && name.ends_with(".jsonl") {
                    segments.push(path);
                }
            }
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    }
    segments.sort();
    let mut seq = list_segments(dir)?.last().copied().unwrap_or(0);
    let mut rows = 0;
    for segment in &segments {
        rows += count_lines(segment)?;
        seq += 1;
        fs::rename(segment, segment_path(dir, seq))?;
    }
    if rows > 0 {
        tracing::info!(rows, folder = %folder.display(), "usage rows set aside earlier for this database are back in its journal and will be written");
    }
    Ok(())
}

/// `journal.id` is written whole or not at all: a crash leaves the old binding.
fn write_id(dir: &Path, database_id: &str) -> io::Result<()> {
    let temporary = dir.join(format!("{ID_FILE}.new"));
    let mut file = private_file()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&temporary)?;
    file.write_all(format!("{database_id}\n").as_bytes())?;
    file.sync_all()?;
    fs::rename(temporary, dir.join(ID_FILE))
}

/// A file-system-safe folder name for an identity read from a file (anything may be in it).
fn folder_name(database_id: &str) -> String {
    let name: String = database_id
        .chars()
        .take(64)
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '_',
        })
        .collect();
    match name.trim_matches('.') {
        "" => "unknown".to_owned(),
        _ => name,
    }
}

/// `folder/name`, or `folder/<n>.name` when a file of that name was set aside before (the
/// same folder may be bound to a database, then another, then the first again).
fn free_name(folder: &Path, name: &str) -> PathBuf {
    let mut path = folder.join(name);
    let mut n = 1;
    while path.exists() {
        path = folder.join(format!("{n}.{name}"));
        n += 1;
    }
    path
}
