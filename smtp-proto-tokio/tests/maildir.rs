//! The example server's Maildir writer, on real temporary directories.

#[path = "../examples/support/maildir.rs"]
mod maildir;

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use maildir::{Maildir, Trace};
use smtp_proto::command::{Domain, Mailbox, ReversePath};
use smtp_proto::trace::{Received, Timestamp, WithProtocol};

/// 2026-01-01T00:00:00Z.
const NEW_YEAR: i64 = 1_767_225_600;

/// The trace of a message from `sender` (empty for `<>`), received by
/// mx.test from client.test at 127.0.0.1.
fn trace_from(sender: &str) -> Trace {
    let sender = match sender {
        "" => ReversePath::Null,
        s => ReversePath::Mailbox(Mailbox::parse(s).expect("mailbox")),
    };
    let by = Domain::new("mx.test").expect("domain");
    let helo = Domain::new("client.test").expect("domain");
    let at = Timestamp::new(NEW_YEAR, 0).expect("time");
    let received = Received::new(&helo, [127, 0, 0, 1].into(), &by, at).with(WithProtocol::esmtp());
    Trace::new(&sender, &received)
}

fn trace() -> Trace {
    trace_from("sender@client.test")
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

#[test]
fn create_makes_the_three_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("inbox");
    let md = Maildir::create(&root).expect("create");
    assert_eq!(md.root(), root);
    for sub in ["tmp", "new", "cur"] {
        let meta = fs::metadata(root.join(sub)).expect(sub);
        assert!(meta.is_dir(), "{sub}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(meta.permissions().mode() & 0o777, 0o700, "{sub}");
        }
    }
    // Opening an existing Maildir is fine and keeps its messages.
    let path = md
        .deliver(&trace(), b"Subject: a\r\n\r\nbody\r\n")
        .expect("deliver");
    let again = Maildir::create(&root).expect("create again");
    assert_eq!(entries(&again.new_dir()), vec![path]);
}

#[test]
fn delivered_file_is_trace_lines_then_message_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let md = Maildir::create(dir.path()).expect("create");
    // Bytes as received, bare LF and 8-bit included: stored unchanged.
    let message = b"Subject: test\r\n\r\nline one\r\nbare\nlf \xe9\r\n..dot stays as given\r\n";
    let path = md.deliver(&trace(), message).expect("deliver");

    assert_eq!(path.parent(), Some(md.new_dir().as_path()));
    let mut expected = b"Return-Path: <sender@client.test>\r\n\
        Received: from client.test ([127.0.0.1])\r\n\tby mx.test with ESMTP;\r\n\
        \tThu, 1 Jan 2026 00:00:00 +0000\r\n"
        .to_vec();
    expected.extend_from_slice(message);
    assert_eq!(fs::read(&path).expect("read"), expected);
    assert!(entries(&md.tmp_dir()).is_empty(), "tmp/ must be empty");
    assert!(entries(&md.root().join("cur")).is_empty());
}

#[test]
fn null_sender_is_written_as_empty_brackets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let md = Maildir::create(dir.path()).expect("create");
    let path = md.deliver(&trace_from(""), b"\r\n").expect("deliver");
    let stored = fs::read(path).expect("read");
    assert!(stored.starts_with(b"Return-Path: <>\r\nReceived: from client.test "));
    assert!(stored.ends_with(b" +0000\r\n\r\n"));
}

#[test]
fn file_name_has_time_unique_part_and_escaped_hostname() {
    let dir = tempfile::tempdir().expect("tempdir");
    let md = Maildir::create(dir.path())
        .expect("create")
        .with_hostname("mx/1:test");
    let path = md.deliver(&trace(), b"x\r\n").expect("deliver");
    let name = path.file_name().and_then(|n| n.to_str()).expect("name");

    let mut parts = name.splitn(3, '.');
    let secs = parts.next().expect("time part");
    let unique = parts.next().expect("unique part");
    let host = parts.next().expect("host part");
    assert!(secs.parse::<u64>().expect("seconds") > 1_600_000_000);
    assert_eq!(host, "mx\\0571\\072test");
    assert!(!name.contains(':') && !name.contains('/'));
    // M<usec>P<pid>Q<counter>R<random>
    let pid = format!("P{}Q", std::process::id());
    assert!(unique.starts_with('M'), "{unique}");
    assert!(unique.contains(&pid), "{unique}");
    assert!(unique.contains('R'), "{unique}");
}

/// A host name as long as a domain may be (253 octets, RFC 1035 §2.3.4)
/// still leaves room in the file name: the system's limit on a name is
/// 255 octets, and a delivery under a longer one would fail every time.
/// The host part is cut to [`maildir::HOST_PART_MAX`] octets (escapes
/// whole), the other parts keeping the name unique.
#[test]
fn a_long_hostname_is_cut_so_the_file_name_fits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let long = [
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(61),
    ]
    .join(".");
    assert_eq!(long.len(), 253);
    let md = Maildir::create(dir.path())
        .expect("create")
        .with_hostname(&long);
    let first = md.deliver(&trace(), b"x\r\n").expect("deliver");
    let second = md.deliver(&trace(), b"y\r\n").expect("deliver");
    assert_ne!(first, second);
    for path in [&first, &second] {
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(name.len() <= 255, "{} octets: {name}", name.len());
        let (_, host) = name
            .split_once(".M")
            .and_then(|(_, rest)| rest.split_once('.'))
            .expect("host part");
        assert_eq!(host.len(), maildir::HOST_PART_MAX, "{host}");
        assert!(long.starts_with(host), "{host}");
    }

    // An escape is kept whole or left out, never cut in two.
    let colons = ":".repeat(200);
    let md = Maildir::create(dir.path())
        .expect("create")
        .with_hostname(&colons);
    let path = md.deliver(&trace(), b"z\r\n").expect("deliver");
    let name = path.file_name().and_then(|n| n.to_str()).expect("name");
    let (_, host) = name
        .split_once(".M")
        .and_then(|(_, rest)| rest.split_once('.'))
        .expect("host part");
    assert!(host.len() <= maildir::HOST_PART_MAX, "{host}");
    assert_eq!(host, "\\072".repeat(host.len() / 4), "{host}");
}

/// A reader that yields some bytes, then fails.
struct FailingReader {
    given: usize,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.given >= 20_000 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "peer went away",
            ));
        }
        let n = buf.len().min(1000);
        buf[..n].fill(b'a');
        self.given += n;
        Ok(n)
    }
}

#[test]
fn failed_read_leaves_nothing_in_new_or_tmp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let md = Maildir::create(dir.path()).expect("create");
    let err = md
        .deliver_from(&trace(), &mut FailingReader { given: 0 })
        .expect_err("read error must fail the delivery");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    assert!(entries(&md.new_dir()).is_empty(), "new/ must be empty");
    assert!(entries(&md.tmp_dir()).is_empty(), "tmp/ must be cleaned");
}

#[test]
fn deliver_from_copies_a_large_message_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let md = Maildir::create(dir.path()).expect("create");
    let message: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let path = md
        .deliver_from(&trace(), &mut message.as_slice())
        .expect("deliver");
    let stored = fs::read(path).expect("read");
    assert!(stored.ends_with(&message));
    assert!(stored.starts_with(b"Return-Path: <sender@client.test>\r\n"));
}

#[test]
fn unfinished_delivery_is_invisible_then_removed_on_drop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let md = Maildir::create(dir.path()).expect("create");
    let mut delivery = md.begin(&trace()).expect("begin");
    delivery.write_all(b"Subject: half\r\n").expect("write");
    let tmp_path = delivery.tmp_path().to_owned();
    assert!(tmp_path.exists(), "being written in tmp/");
    assert_eq!(tmp_path.parent(), Some(md.tmp_dir().as_path()));
    assert!(entries(&md.new_dir()).is_empty(), "not visible in new/");
    drop(delivery);
    assert!(!tmp_path.exists(), "dropped delivery is removed");
    assert!(entries(&md.new_dir()).is_empty());
}

/// A server that exits with deliveries under way (their writers never
/// dropped: a process that ends does not unwind its threads) removes
/// their files with `abandon`; a delivery committed before stays, one
/// still running fails at its commit, and no new one starts.
#[test]
fn abandon_removes_the_files_under_way_and_refuses_new_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let md = Maildir::create(dir.path()).expect("create");
    let stored = md.deliver(&trace(), b"complete\r\n").expect("deliver");
    let mut first = md.begin(&trace()).expect("begin");
    first.write_all(b"Subject: half\r\n").expect("write");
    let second = md.begin(&trace()).expect("begin");
    let kept = md.begin(&trace()).expect("begin");
    drop(kept);
    assert_eq!(md.in_progress(), 2);
    assert_eq!(entries(&md.tmp_dir()).len(), 2);
    // Forgotten, as by a thread the process exit ends.
    std::mem::forget(second);
    assert_eq!(md.clone().abandon(), 2);
    assert_eq!(md.in_progress(), 0);
    assert!(entries(&md.tmp_dir()).is_empty(), "partial files removed");
    assert!(first.commit().is_err(), "its file is gone");
    assert_eq!(entries(&md.new_dir()), vec![stored], "the stored one stays");
    assert!(md.begin(&trace()).is_err(), "no new delivery");
    assert!(entries(&md.tmp_dir()).is_empty());
}

#[test]
fn failed_commit_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let md = Maildir::create(dir.path()).expect("create");
    let mut delivery = md.begin(&trace()).expect("begin");
    delivery.write_all(b"body\r\n").expect("write");
    let tmp_path = delivery.tmp_path().to_owned();
    // new/ vanishing under the writer makes the rename fail.
    fs::remove_dir(md.new_dir()).expect("remove new/");
    assert!(delivery.commit().is_err());
    assert!(!tmp_path.exists(), "tmp/ file removed after failed commit");
    assert!(!md.new_dir().exists());
}

#[test]
fn concurrent_writers_get_unique_names_and_intact_files() {
    const THREADS: usize = 8;
    const EACH: usize = 50;
    let dir = tempfile::tempdir().expect("tempdir");
    let md = Arc::new(Maildir::create(dir.path()).expect("create"));

    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            // Half the threads share one handle, half open their own.
            let md = if t % 2 == 0 {
                Arc::clone(&md)
            } else {
                Arc::new(Maildir::create(dir.path()).expect("create"))
            };
            std::thread::spawn(move || {
                (0..EACH)
                    .map(|i| {
                        let body = format!("Subject: {t}-{i}\r\n\r\nthread {t} message {i}\r\n");
                        let path = md.deliver(&trace(), body.as_bytes()).expect("deliver");
                        (path, body)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();

    let mut names = HashSet::new();
    let mut count = 0;
    for handle in handles {
        for (path, body) in handle.join().expect("thread") {
            count += 1;
            assert!(names.insert(path.clone()), "duplicate name {path:?}");
            let stored = fs::read(&path).expect("read");
            assert!(
                stored.ends_with(body.as_bytes()),
                "{path:?} holds another message"
            );
        }
    }
    assert_eq!(count, THREADS * EACH);
    assert_eq!(entries(&md.new_dir()).len(), THREADS * EACH);
    assert!(entries(&md.tmp_dir()).is_empty());
}
