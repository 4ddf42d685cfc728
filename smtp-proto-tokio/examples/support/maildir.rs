//! A Maildir writer for the example server.
//!
//! Delivery follows the Maildir rules: the message is written under `tmp/`
//! with a name no other delivery can pick, flushed to disk, then renamed
//! into `new/`. A reader scanning `new/` therefore only ever sees complete
//! messages, and a delivery that fails part-way leaves nothing in `new/`.
//!
//! File names have the form `SECONDS.MmicrosPpidQcounterRrandom.HOSTNAME`:
//! the time, the process id, a per-process delivery counter and a random
//! number tell deliveries apart, and the host name (with `/` and `:` escaped
//! as `\057` and `\072`, cut to [`HOST_PART_MAX`] octets so that the name
//! fits the file system's 255) tells machines apart.
//!
//! The stored file is the message exactly as received, after the two trace
//! fields of final delivery (`Return-Path:` and `Received:`, RFC 5321
//! §4.4), written by `smtp_proto::trace` from checked values, so nothing a
//! client sent can add a header line. They end in CRLF like the SMTP
//! message itself, so the file holds one consistent line ending.
//!
//! This writer is blocking (`std::fs`); an async server calls it from
//! `tokio::task::spawn_blocking`, since file system calls block anyway.
//!
//! A server that stops before its deliveries end calls
//! [`Maildir::abandon`]: it removes the files still being written in
//! `tmp/` (which a process that exits never drops) and refuses new ones.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use smtp_proto::command::ReversePath;
use smtp_proto::trace::{write_return_path, Received};

/// Deliveries made by this process, for unique names.
static DELIVERIES: AtomicU64 = AtomicU64::new(0);

/// The most octets of the host name part of a file name. The other parts
/// take at most 69 (`SECONDS.MmicrosPpidQcounterRrandom.`), and a file
/// name may have 255 on common file systems: a domain of up to 253
/// octets, or its escapes, would not fit whole. The cut keeps the name
/// unique, since the other parts make it so.
pub const HOST_PART_MAX: usize = 100;

/// How often a name collision in `tmp/` is retried with a fresh name.
const NAME_ATTEMPTS: u32 = 8;

/// A Maildir: a directory with `tmp/`, `new/` and `cur/` below it.
/// Clones share the record of the deliveries under way.
#[derive(Debug, Clone)]
pub struct Maildir {
    root: PathBuf,
    hostname: String,
    open: Arc<Mutex<Open>>,
}

/// The files in `tmp/` of the deliveries under way (begun, neither
/// committed nor dropped), and whether [`Maildir::abandon`] closed the
/// Maildir.
#[derive(Debug, Default)]
struct Open {
    closed: bool,
    files: HashSet<PathBuf>,
}

fn lock(open: &Mutex<Open>) -> MutexGuard<'_, Open> {
    open.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The trace fields put in front of a delivered message: `Return-Path:`
/// and `Received:`, as the core writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    lines: Vec<u8>,
}

impl Trace {
    /// The fields for a message from `sender`, received as `received`
    /// tells.
    pub fn new(sender: &ReversePath<'_>, received: &Received<'_>) -> Self {
        let mut lines = Vec::with_capacity(256);
        write_return_path(sender, &mut lines);
        received.write_to(&mut lines);
        Trace { lines }
    }

    /// The header lines, CRLF-ended.
    pub fn as_bytes(&self) -> &[u8] {
        &self.lines
    }
}

impl Maildir {
    /// Opens the Maildir at `root`, creating `root`, `tmp/`, `new/` and
    /// `cur/` as needed (mode 0700 on Unix). The host name part of file
    /// names is read from the system.
    ///
    /// # Errors
    /// Any error from creating the directories.
    pub fn create(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        for sub in ["tmp", "new", "cur"] {
            create_private_dir(&root.join(sub))?;
        }
        Ok(Maildir {
            root,
            hostname: escape_hostname(&system_hostname()),
            open: Arc::default(),
        })
    }

    /// Uses `hostname` in file names instead of the system's host name.
    #[must_use]
    pub fn with_hostname(mut self, hostname: &str) -> Self {
        self.hostname = escape_hostname(hostname);
        self
    }

    /// The Maildir's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The `new/` directory, where delivered messages appear.
    pub fn new_dir(&self) -> PathBuf {
        self.root.join("new")
    }

    /// The `tmp/` directory, where deliveries are written.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Starts a delivery: writes the trace lines into a fresh file in
    /// `tmp/`. Write the message with [`Delivery::write_all`], then
    /// [`Delivery::commit`]. A delivery dropped before `commit` removes
    /// its file.
    ///
    /// # Errors
    /// Any I/O error; an error after [`Maildir::abandon`].
    pub fn begin(&self, trace: &Trace) -> io::Result<Delivery> {
        let mut open = lock(&self.open);
        if open.closed {
            return Err(io::Error::other("the Maildir was closed"));
        }
        // Created and recorded under the lock: `abandon` sees every file.
        let (name, file) = self.create_unique()?;
        let tmp_path = self.tmp_dir().join(&name);
        open.files.insert(tmp_path.clone());
        drop(open);
        let mut delivery = Delivery {
            tmp_path,
            new_path: self.new_dir().join(&name),
            new_dir: self.new_dir(),
            file: Some(io::BufWriter::new(file)),
            open: Arc::clone(&self.open),
        };
        delivery.write_all(trace.as_bytes())?;
        Ok(delivery)
    }

    /// Closes the Maildir for a server that stops with deliveries under
    /// way: removes their files from `tmp/` and makes every later
    /// [`Maildir::begin`] fail. A delivery still running then fails at its
    /// commit (its file is gone), or has already moved its complete file
    /// into `new/`, which stays. Returns how many files were removed.
    pub fn abandon(&self) -> usize {
        let mut open = lock(&self.open);
        open.closed = true;
        open.files
            .drain()
            .filter(|path| fs::remove_file(path).is_ok())
            .count()
    }

    /// How many deliveries are under way: begun, neither committed nor
    /// dropped.
    pub fn in_progress(&self) -> usize {
        lock(&self.open).files.len()
    }

    /// Delivers a whole message held in memory. Returns the path of the
    /// file in `new/`.
    ///
    /// # Errors
    /// As [`Maildir::begin`] and [`Delivery::commit`].
    pub fn deliver(&self, trace: &Trace, message: &[u8]) -> io::Result<PathBuf> {
        let mut delivery = self.begin(trace)?;
        delivery.write_all(message)?;
        delivery.commit()
    }

    /// Delivers a message read from `message` to its end. If reading fails,
    /// nothing is delivered and the error is returned.
    ///
    /// # Errors
    /// The read error, or as [`Maildir::begin`] and [`Delivery::commit`].
    pub fn deliver_from(&self, trace: &Trace, message: &mut dyn Read) -> io::Result<PathBuf> {
        let mut delivery = self.begin(trace)?;
        let mut buf = [0u8; 8192];
        loop {
            match message.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => delivery.write_all(buf.get(..n).unwrap_or_default())?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        delivery.commit()
    }

    /// Creates a new file in `tmp/` under a name no other delivery uses.
    fn create_unique(&self) -> io::Result<(String, File)> {
        let mut last_err = None;
        for _ in 0..NAME_ATTEMPTS {
            let name = self.unique_name();
            let path = self.tmp_dir().join(&name);
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            match options.open(&path) {
                Ok(file) => return Ok((name, file)),
                // Only possible if the clock went back or another process
                // reused our pid: take a fresh name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("no unique Maildir name")))
    }

    fn unique_name(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let counter = DELIVERIES.fetch_add(1, Ordering::Relaxed);
        format!(
            "{}.M{}P{}Q{}R{:016x}.{}",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id(),
            counter,
            random_u64(),
            self.hostname
        )
    }
}

/// A message being written into `tmp/`.
#[derive(Debug)]
pub struct Delivery {
    tmp_path: PathBuf,
    new_path: PathBuf,
    new_dir: PathBuf,
    file: Option<io::BufWriter<File>>,
    /// The Maildir's record of deliveries under way, left at the end.
    open: Arc<Mutex<Open>>,
}

impl Delivery {
    /// Appends message bytes, as received.
    ///
    /// # Errors
    /// Any write error; the delivery should then be dropped.
    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self.file.as_mut() {
            Some(file) => file.write_all(bytes),
            None => Err(io::Error::other("delivery already finished")),
        }
    }

    /// Finishes the delivery: flushes and syncs the file, renames it into
    /// `new/` and syncs `new/`. Returns the path in `new/`. On error the
    /// file is removed from `tmp/` and nothing is in `new/`.
    ///
    /// # Errors
    /// Any flush, sync or rename error.
    pub fn commit(mut self) -> io::Result<PathBuf> {
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("delivery already finished"))?;
        let result = finish(file, &self.tmp_path, &self.new_path, &self.new_dir);
        if result.is_err() {
            let _ = fs::remove_file(&self.tmp_path);
        }
        lock(&self.open).files.remove(&self.tmp_path);
        result.map(|()| self.new_path.clone())
    }

    /// The file's path in `tmp/` while the delivery is being written.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp_path
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp_path);
            lock(&self.open).files.remove(&self.tmp_path);
        }
    }
}

fn finish(
    file: io::BufWriter<File>,
    tmp_path: &Path,
    new_path: &Path,
    new_dir: &Path,
) -> io::Result<()> {
    let file = file.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()?;
    drop(file);
    fs::rename(tmp_path, new_path)?;
    // A rename that may not survive a crash is no delivery: take it back.
    sync_dir(new_dir).inspect_err(|_| {
        let _ = fs::remove_file(new_path);
    })
}

/// Makes the rename durable: sync the directory entry (Unix only; other
/// systems cannot open a directory as a file).
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// The host name for file names: `/proc/sys/kernel/hostname`, then
/// `/etc/hostname`, then the `HOSTNAME` variable, else `localhost`.
fn system_hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .chain(std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Escapes `/` and `:` (which cannot appear in the name part) as the
/// Maildir convention asks, drops anything that is not printable ASCII,
/// and keeps at most [`HOST_PART_MAX`] octets (an escape whole or not at
/// all).
fn escape_hostname(hostname: &str) -> String {
    let mut out = String::with_capacity(hostname.len().min(HOST_PART_MAX));
    for c in hostname.chars() {
        let mut one = [0u8; 4];
        let piece = match c {
            '/' => "\\057",
            ':' => "\\072",
            c if c.is_ascii_graphic() => c.encode_utf8(&mut one),
            _ => continue,
        };
        if out.len() + piece.len() > HOST_PART_MAX {
            break;
        }
        out.push_str(piece);
    }
    if out.is_empty() {
        out.push_str("localhost");
    }
    out
}

/// A random number from the standard library's per-instance SipHash keys.
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(DELIVERIES.load(Ordering::Relaxed));
    hasher.finish()
}
