//! Runs a `send` example binary (`send` or `send-blocking`) as a child
//! process against a scripted peer, for the tests of both adapters. The
//! including file also includes `serve_example.rs` (the binary's path and
//! the bound of every wait) as `serve_example`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, ExitStatus, Stdio};

use crate::serve_example::{self, BOUND};

/// A peer that answers with control characters in its reply texts: an
/// escape sequence that clears the screen, one that retitles the
/// terminal window, backspaces that would write over the line.
/// Bounded: 20 commands and 1000 message lines, each read within
/// [`BOUND`].
fn hostile_peer(listener: TcpListener) {
    let (socket, _) = listener.accept().expect("accept");
    socket.set_read_timeout(Some(BOUND)).expect("read timeout");
    socket
        .set_write_timeout(Some(BOUND))
        .expect("write timeout");
    let mut out = socket.try_clone().expect("clone");
    let mut lines = BufReader::new(socket);
    out.write_all(b"220 mx.test ESMTP\r\n").expect("greeting");
    for _ in 0..20 {
        let mut line = Vec::new();
        if lines.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&line).trim_end().to_owned();
        let reply: &[u8] = match line.split(' ').next().unwrap_or_default() {
            "EHLO" => b"250 mx.test\r\n",
            "RCPT" => b"250 2.1.5 ok \x1b]0;owned\x07\r\n",
            "DATA" => {
                out.write_all(b"354 go ahead\r\n").expect("354");
                for _ in 0..1000 {
                    let mut body = Vec::new();
                    if lines.read_until(b'\n', &mut body).unwrap_or(0) == 0 || body == b".\r\n" {
                        break;
                    }
                }
                b"250 2.0.0 queued \x1b[2J\x08\x08forged\r\n"
            }
            "QUIT" => {
                let _ = out.write_all(b"221 2.0.0 bye\r\n");
                break;
            }
            _ => b"250 2.0.0 Ok\r\n",
        };
        out.write_all(reply).expect("reply");
    }
}

/// Runs the example binary `name` against [`hostile_peer`] with the
/// arguments `args` gives for the peer's address, the message on its
/// standard input, and returns its exit status and what it printed
/// (standard output, then standard error). Bounded by [`BOUND`].
pub fn run_against_hostile_peer(
    name: &str,
    args: impl FnOnce(&str) -> Vec<String>,
) -> (ExitStatus, Vec<u8>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let peer = std::thread::spawn(move || hostile_peer(listener));
    let mut child = Command::new(serve_example::example_binary(name))
        .args(args(&addr.to_string()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the example");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"Subject: hi\r\n\r\nhello\r\n")
        .expect("message");
    let status = serve_example::exit_within_bound(&mut child, name);
    peer.join().expect("peer thread");
    let mut output = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut output)
        .expect("read stdout");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_end(&mut output)
        .expect("read stderr");
    (status, output)
}

/// The server's words reach the terminal escaped: the `send` example
/// binary `name` prints the replies with their control characters as
/// `\u{..}` escapes, never as the raw octets a terminal would obey.
pub fn replies_are_printed_escaped(name: &str) {
    let (status, output) = run_against_hostile_peer(name, |server| {
        [
            "--server",
            server,
            "--from",
            "alice@example.net",
            "--to",
            "bob@example.org",
            "--starttls",
            "off",
        ]
        .map(String::from)
        .to_vec()
    });
    let text = String::from_utf8_lossy(&output);
    assert_eq!(status.code(), Some(0), "{status}: {text:?}");
    assert!(text.contains("queued"), "{text:?}");
    serve_example::assert_no_raw_controls(&output);
    assert!(text.contains(r"\u{1b}]0;owned\u{7}"), "{text:?}");
    assert!(text.contains(r"\u{1b}[2J\u{8}\u{8}forged"), "{text:?}");
}

/// Runs the example binary `name` with `args` and the message on its
/// standard input, to its exit (bounded by [`BOUND`]); returns its exit
/// status and standard error.
fn run_to_exit(name: &str, args: &[&str]) -> (ExitStatus, String) {
    let (status, _, stderr) = run_capturing(name, args);
    (status, stderr)
}

/// A server that cannot be reached (nothing listens on its port; no port
/// given): the `send` example binary `name` exits with status 2 and one
/// line that names the server it could not connect to, in both modes
/// (standard input, `--message`).
pub fn an_unreachable_server_is_named(name: &str) {
    // A port nothing listens on: bound, then closed.
    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a.eml");
    std::fs::write(&file, b"Subject: hi\r\n\r\nhello\r\n").expect("write");
    let file = file.to_str().expect("UTF-8 path");
    for server in [closed.as_str(), "127.0.0.1"] {
        let base = [
            "--server",
            server,
            "--from",
            "alice@example.net",
            "--to",
            "bob@example.org",
            "--starttls",
            "off",
        ];
        for extra in [&[][..], &["--message", file][..]] {
            let args: Vec<&str> = base.iter().chain(extra).copied().collect();
            let (status, stderr) = run_to_exit(name, &args);
            assert_eq!(status.code(), Some(2), "{args:?}: {status}: {stderr:?}");
            let lines: Vec<&str> = stderr.lines().collect();
            assert_eq!(lines.len(), 1, "{args:?}: {stderr:?}");
            assert!(
                lines[0].starts_with(&format!("send: cannot connect to {server}: ")),
                "{args:?}: {stderr:?}"
            );
        }
    }
}

/// A peer that greets with `greeting` (closing at once after a 421), then
/// answers every command with `replies`, until QUIT. Bounded: 20
/// commands, each read within [`BOUND`].
fn refusing_peer(listener: TcpListener, greeting: &'static [u8], replies: &'static [u8]) {
    let (socket, _) = listener.accept().expect("accept");
    socket.set_read_timeout(Some(BOUND)).expect("read timeout");
    socket
        .set_write_timeout(Some(BOUND))
        .expect("write timeout");
    let mut out = socket.try_clone().expect("clone");
    let mut lines = BufReader::new(socket);
    out.write_all(greeting).expect("greeting");
    if greeting.starts_with(b"421") {
        return;
    }
    for _ in 0..20 {
        let mut line = Vec::new();
        if lines.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
            break;
        }
        if line.starts_with(b"QUIT") {
            let _ = out.write_all(b"221 2.0.0 bye\r\n");
            break;
        }
        if out.write_all(replies).is_err() {
            break;
        }
    }
}

/// The session is refused before any transaction (a 421 greeting, a 554
/// greeting, STARTTLS required and not offered): the `send` example binary
/// `name` names each recipient `NOT SENT`, as it does when a transaction
/// leaves one out and as `--message` runs do, and exits 1.
pub fn session_refusals_name_every_recipient(name: &str) {
    // The greeting, the reply to every command but QUIT, `--starttls`,
    // and the reason printed.
    let cases: [(&[u8], &[u8], &str, &str); 3] = [
        (
            b"421 4.3.2 mx.test busy\r\n",
            b"",
            "off",
            "the server closed the session",
        ),
        (
            b"554 5.7.1 mx.test no service for you\r\n",
            b"503 5.5.1 no\r\n",
            "off",
            "the server refused the session",
        ),
        (
            b"220 mx.test ESMTP\r\n",
            b"250 mx.test\r\n",
            "required",
            "TLS is required",
        ),
    ];
    for (greeting, replies, starttls, why) in cases {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address").to_string();
        let peer = std::thread::spawn(move || refusing_peer(listener, greeting, replies));
        let mut args = vec![
            "--server",
            &addr,
            "--from",
            "alice@example.net",
            "--to",
            "bob@example.org",
            "--to",
            "carol@example.org",
        ];
        args.extend(["--starttls", starttls]);
        let (status, stdout, stderr) = run_capturing(name, &args);
        peer.join().expect("peer thread");
        assert_eq!(
            status.code(),
            Some(1),
            "{starttls}: {status}: {stdout:?} {stderr:?}"
        );
        for to in ["bob@example.org", "carol@example.org"] {
            let line = format!("recipient <{to}>: NOT SENT ({why}");
            assert!(
                stdout.lines().any(|l| l.starts_with(&line)),
                "{starttls}: no {line:?} in {stdout:?}"
            );
        }
    }
}

/// Runs the example binary `name` with `args` and a message on its
/// standard input, to its exit (bounded by [`BOUND`]): its exit status,
/// standard output and standard error.
fn run_capturing(name: &str, args: &[&str]) -> (ExitStatus, String, String) {
    let mut child = Command::new(serve_example::example_binary(name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the example");
    // The example may exit before it reads its input: a failed write is
    // no failure of the test.
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"Subject: hi\r\n\r\nhello\r\n");
    let status = serve_example::exit_within_bound(&mut child, name);
    let stdout = serve_example::read_all(child.stdout.take());
    (status, stdout, serve_example::read_all(child.stderr.take()))
}
