//! Runs an example server binary (`serve` or `serve-blocking`) as a child
//! process and stops it with signals, for the tests of both adapters.
//!
//! The binary is the one `cargo test` builds next to the test binaries
//! (`target/<profile>/examples/`); every wait is bounded, and the child is
//! killed when the test ends, passed or not.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The longest any one step waits.
pub const BOUND: Duration = Duration::from_secs(20);

/// The example binary `name`, built by `cargo test` beside this test.
/// Refused (a panic) when it is missing, or older than one of the sources
/// it is built from: `cargo test --test X` builds no example, and a test
/// of an old binary would pass or fail for code that is no longer there.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let examples = profile_dir.join("examples");
    let binary = examples.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "{} is missing: `cargo test -p <crate>` (without --test) builds the examples",
        binary.display()
    );
    if let Some(source) = newer_source(&binary, &examples.join(format!("{name}.d"))) {
        panic!(
            "{} is older than {}: build the examples first (`cargo build -p \
             smtp-proto-tokio -p smtp-proto-blocking --examples`, or `cargo test -p \
             <crate>` without --test)",
            binary.display(),
            source.display()
        );
    }
    binary
}

/// A source of `binary` changed after it was built: one of the files its
/// dep-info file `dep_info` (the `NAME.d` cargo writes beside it) lists,
/// modified after the binary. `None` when every source is older, or
/// without a dep-info file.
pub fn newer_source(binary: &Path, dep_info: &Path) -> Option<PathBuf> {
    let built = std::fs::metadata(binary)
        .and_then(|m| m.modified())
        .expect("the binary's modification time");
    let dep_info = std::fs::read_to_string(dep_info).ok()?;
    // `target: source source ...` on the first line, a space in a path
    // escaped as `\ `.
    let (_, sources) = dep_info.lines().next()?.split_once(": ")?;
    let mut paths = Vec::new();
    let mut path = String::new();
    let mut chars = sources.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => path.extend(chars.next()),
            ' ' => paths.push(std::mem::take(&mut path)),
            c => path.push(c),
        }
    }
    paths.push(path);
    paths
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .find(|source| {
            std::fs::metadata(source)
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified > built)
        })
}

/// A running example server.
pub struct Server {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    lines: mpsc::Receiver<String>,
    /// Every line it logged so far (standard output and error).
    pub log: Vec<String>,
}

impl Server {
    /// Starts the example `name` on a free port of 127.0.0.1 with its
    /// Maildir at `maildir`, and waits for it to listen.
    pub fn start(name: &str, maildir: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(example_binary(name))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--hostname",
                "mx.test",
                "--maildir",
            ])
            .arg(maildir)
            .args(extra)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the example");
        // `serve` logs to standard output, `serve-blocking` to standard
        // error: the lines of both.
        let (send, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        forward(stdout, send.clone());
        forward(stderr, send);
        let mut server = Server {
            child,
            port: 0,
            lines,
            log: Vec::new(),
        };
        let serving = server.wait_for_line("serving");
        let port = serving
            .split_whitespace()
            .find_map(|field| field.strip_prefix("listen="))
            .and_then(|addr| addr.rsplit_once(':'))
            .and_then(|(_, port)| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in {serving:?}"));
        server.port = port;
        server
    }

    /// Waits (bounded) for a logged line containing `text`, and returns it.
    pub fn wait_for_line(&mut self, text: &str) -> String {
        let deadline = Instant::now() + BOUND;
        loop {
            if let Some(line) = self.log.iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.log.push(line),
                Err(e) => panic!("no line with {text:?} ({e}); log: {:#?}", self.log),
            }
        }
    }

    /// Sends the signal `name` (`INT`, `TERM`) to the server.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name}: {status}");
    }

    /// Waits for the server to exit within `within`, then reads the rest
    /// of its log. Panics if it is still running.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the server still runs after {within:?}; log: {:#?}",
                self.log
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader threads end at the pipes' ends, which came with the
        // exit.
        while let Ok(line) = self.lines.recv_timeout(BOUND) {
            self.log.push(line);
        }
        status
    }
}

/// Sends each line read from `from` on `to`, on a thread of its own.
fn forward(from: impl Read + Send + 'static, to: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if to.send(line).is_err() {
                break;
            }
        }
    });
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client in the middle of a DATA body: it has sent more than the
/// 1 MiB a connection holds in memory, so the server has started the
/// message's file in `tmp/`.
pub struct MidData {
    /// The client's connection, kept open.
    pub socket: TcpStream,
}

/// Connects to `port`, opens a transaction, and sends 2 MiB of a message
/// body without its end.
pub fn start_message(port: u16) -> MidData {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    socket.set_read_timeout(Some(BOUND)).expect("read timeout");
    socket
        .set_write_timeout(Some(BOUND))
        .expect("write timeout");
    let mut reader = BufReader::new(socket.try_clone().expect("clone"));
    let mut expect = |code: &str| loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("a reply");
        assert!(n > 0, "closed while waiting for {code}");
        assert!(line.starts_with(code), "{line:?} where {code} was due");
        if line.as_bytes().get(3) == Some(&b' ') {
            break;
        }
    };
    expect("220");
    for (command, code) in [
        ("EHLO client.test\r\n", "250"),
        ("MAIL FROM:<alice@client.test>\r\n", "250"),
        ("RCPT TO:<bob@mx.test>\r\n", "250"),
        ("DATA\r\n", "354"),
    ] {
        socket.write_all(command.as_bytes()).expect(command);
        expect(code);
    }
    socket
        .write_all(b"Subject: cut off\r\n\r\n")
        .expect("header");
    // 998 octets with the CRLF: the longest line RFC 5321 §4.5.3.1.6
    // allows.
    let line = [b'x'; 996];
    for _ in 0..2200 {
        socket.write_all(&line).expect("body");
        socket.write_all(b"\r\n").expect("body");
    }
    MidData { socket }
}

/// The entries of `dir`.
pub fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

/// Waits (bounded) until `dir` has an entry.
pub fn wait_for_entry(dir: &Path) {
    let deadline = Instant::now() + BOUND;
    while entries(dir).is_empty() {
        assert!(Instant::now() < deadline, "nothing in {}", dir.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A second Ctrl-C during the grace cuts the connections off at once: the
/// server exits with status 130 (128 + SIGINT) long before the grace is
/// over, names the connection it cut off, and leaves nothing of the
/// message it was receiving in `tmp/` or `new/`. A copy of the first
/// signal right after it (as `timeout` delivers one SIGTERM twice) is the
/// same request: it cuts nothing off.
pub fn second_interrupt_cuts_off_at_once(name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let maildir = dir.path().join("maildir");
    let mut server = Server::start(name, &maildir, &[]);
    let client = start_message(server.port);
    wait_for_entry(&maildir.join("tmp"));
    let first = Instant::now();
    server.signal("INT");
    server.wait_for_line("shutting down");
    server.signal("INT");
    // The copy is only one while it comes within the second after the
    // first (a loaded machine may take longer to log "shutting down").
    if first.elapsed() < Duration::from_millis(800) {
        server.wait_for_line("the same shutdown signal again");
        assert!(
            server.child.try_wait().expect("try_wait").is_none(),
            "log: {:#?}",
            server.log
        );
    }
    // Past the time within which a signal is the first one again.
    std::thread::sleep(Duration::from_millis(1500).saturating_sub(first.elapsed()));
    let started = Instant::now();
    server.signal("INT");
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Some(130), "{status}; log: {:#?}", server.log);
    let cut = server.wait_for_line("connection cut off");
    let local = client.socket.local_addr().expect("local address");
    assert!(
        cut.contains(&local.to_string()),
        "{cut:?} does not name {local}"
    );
    server.wait_for_line("were not stored");
    assert_eq!(entries(&maildir.join("tmp")), Vec::<PathBuf>::new());
    assert_eq!(entries(&maildir.join("new")), Vec::<PathBuf>::new());
    assert_client_cut_off(client);
}

/// After the grace (`--shutdown-grace 1`), a connection still receiving
/// a message is cut off, its partial file is removed from `tmp/`, and the
/// server exits with status 0.
pub fn grace_over_removes_the_partial_message(name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let maildir = dir.path().join("maildir");
    let mut server = Server::start(name, &maildir, &["--shutdown-grace", "1"]);
    let client = start_message(server.port);
    wait_for_entry(&maildir.join("tmp"));
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{status}; log: {:#?}", server.log);
    server.wait_for_line("grace period over");
    server.wait_for_line("connection cut off");
    assert_eq!(entries(&maildir.join("tmp")), Vec::<PathBuf>::new());
    assert_eq!(entries(&maildir.join("new")), Vec::<PathBuf>::new());
    assert_client_cut_off(client);
}

/// Runs the example `name` with `args`, where it cannot start, and returns
/// its exit status and what it wrote to standard error. Panics if it is
/// still running after [`BOUND`] (it is then killed).
fn failed_start(name: &str, args: &[&std::ffi::OsStr]) -> (ExitStatus, String) {
    let mut child = Command::new(example_binary(name))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the example");
    let status = exit_within_bound(&mut child, name);
    (status, read_all(child.stderr.take()))
}

/// Waits for `child`, a run of the example `name`, to exit: its status.
/// Panics if it is still running after [`BOUND`] (it is then killed).
/// Its output must be small enough for the pipes, which are read after.
pub fn exit_within_bound(child: &mut Child, name: &str) -> ExitStatus {
    let deadline = Instant::now() + BOUND;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} still runs after {BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Everything in a child's output pipe, as text (empty when not piped).
pub fn read_all(pipe: Option<impl Read>) -> String {
    let mut text = String::new();
    if let Some(mut pipe) = pipe {
        pipe.read_to_string(&mut text).expect("read the output");
    }
    text
}

/// Asserts that a server that could not start exited with status 1 and
/// said why on one line of standard error: `serve: `, what it was doing
/// with `what` (a path or an address, named), and the error as a person
/// reads it, not as a Rust structure dumps it.
fn assert_start_failure(status: ExitStatus, stderr: &str, what: &str) {
    assert_eq!(status.code(), Some(1), "{status}; stderr: {stderr:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr:?}");
    let line = lines[0];
    assert!(line.starts_with("serve: "), "{line:?}");
    assert!(line.contains(what), "{line:?} does not name {what:?}");
    for dump in ["Os {", "kind:", "Error: ", "{ path"] {
        assert!(!line.contains(dump), "{line:?} holds {dump:?}");
    }
}

/// A server that cannot start (its Maildir cannot be made, its port is
/// taken, its certificate is missing) exits with status 1 and one line
/// naming the path or address at fault.
pub fn startup_failures_name_what_failed(name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").expect("write");
    // Below a regular file: no directory can be made there.
    let maildir = file.join("maildir");
    let (status, stderr) = failed_start(
        name,
        &[
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--maildir".as_ref(),
            maildir.as_os_str(),
        ],
    );
    assert_start_failure(status, &stderr, &maildir.display().to_string());

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    let maildir = dir.path().join("maildir");
    let (status, stderr) = failed_start(
        name,
        &[
            "--listen".as_ref(),
            addr.as_ref(),
            "--maildir".as_ref(),
            maildir.as_os_str(),
        ],
    );
    assert_start_failure(status, &stderr, &addr);
    drop(taken);

    let cert = dir.path().join("missing-cert.pem");
    let key = dir.path().join("missing-key.pem");
    let (status, stderr) = failed_start(
        name,
        &[
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--maildir".as_ref(),
            maildir.as_os_str(),
            "--tls-cert".as_ref(),
            cert.as_os_str(),
            "--tls-key".as_ref(),
            key.as_os_str(),
        ],
    );
    assert_start_failure(status, &stderr, &cert.display().to_string());
}

/// The client's connection is closed by the server's exit: no reply ends
/// the message, only the close (or a reset).
fn assert_client_cut_off(client: MidData) {
    let mut socket = client.socket;
    let mut rest = Vec::new();
    let _ = socket.read_to_end(&mut rest);
    let text = String::from_utf8_lossy(&rest);
    assert!(!text.contains("250"), "{text:?}");
}

/// Asserts that `output`, what an example printed, holds no raw control
/// character but LF and tab: what a peer said reaches the terminal escaped.
#[allow(
    dead_code,
    reason = "used by the tests of what examples print, not by every includer"
)]
pub fn assert_no_raw_controls(output: &[u8]) {
    assert!(
        !output
            .iter()
            .any(|&b| (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f),
        "raw control characters reach the terminal: {:?}",
        String::from_utf8_lossy(output)
    );
}
