//! The memory `smtp_proto::dsn::parse_delivery_status` (and
//! `parse_report` around it) takes for a hostile delivery status part: a
//! few times the part at most, however its fields and blocks are shaped.
//!
//! The peak resident size of the process is the measure (Linux only), as
//! in `dsn_memory.rs`; it only grows, so each shape is read in a process
//! of its own: the test runs this test binary again once per shape, with
//! the shape named in [`SHAPE_VAR`], and reads back the growth it prints.

#![cfg(target_os = "linux")]

mod memory;

use memory::peak_resident;

use smtp_proto::dsn::{parse_delivery_status, parse_report, RecipientStatus};

/// The size of each hostile status part.
const SIZE: usize = 4 << 20;

/// The environment variable naming the shape a child process reads.
const SHAPE_VAR: &str = "DSN_STATUS_MEMORY_SHAPE";

/// `head`, then `unit` repeated up to [`SIZE`] octets, then `tail`.
fn repeat(head: &[u8], unit: &[u8], tail: &[u8]) -> Vec<u8> {
    memory::repeat(SIZE, head, unit, tail)
}

/// A recipient block that reads.
const RECIPIENT: &[u8] = b"Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.1.1\n";

/// A recipient block that reads, after the per-message block.
const HEAD: &[u8] = b"Reporting-MTA: dns; mx.example.org\n\n\
    Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.1.1\n";

/// Whether the status is read from a whole report.
#[derive(Clone, Copy)]
enum Via {
    Status,
    Report,
}

/// A hostile shape: a name, the status part (made only in the process
/// that reads it), how it is read, and how many recipients and problems
/// it reads to (checked, so that what is measured is a whole reading).
type Shape = (&'static str, Box<dyn Fn() -> Vec<u8>>, Via, usize, usize);

/// The hostile shapes.
fn shapes() -> Vec<Shape> {
    let tail_recipient = || {
        let mut tail = b"\n".to_vec();
        tail.extend_from_slice(RECIPIENT);
        tail
    };
    let unit_recipient: &[u8] = b"Final-Recipient:a;b\nAction:failed\nStatus:5.0.0\n";
    let unit_mismatch: &[u8] = b"Final-Recipient:a\nAction:failed\nStatus:2.0.0\n";
    let n = |unit: &[u8]| SIZE.div_ceil(unit.len());
    vec![
        // Millions of tiny extension fields in the per-message block.
        (
            "per-message fields",
            Box::new(move || repeat(b"", b"X:y\n", &tail_recipient())),
            Via::Status,
            1,
            0,
        ),
        // The same with CRLF line ends.
        (
            "per-message fields, CRLF",
            Box::new(move || repeat(b"", b"X:y\r\n", &tail_recipient())),
            Via::Status,
            1,
            0,
        ),
        // Millions of tiny extension fields in one recipient block.
        (
            "recipient fields",
            Box::new(move || repeat(HEAD, b"X:y\n", b"")),
            Via::Status,
            1,
            0,
        ),
        // A repeated known field is an extension field too.
        (
            "repeated recipient fields",
            Box::new(move || repeat(HEAD, b"Action:x\n", b"")),
            Via::Status,
            1,
            0,
        ),
        // Millions of the smallest recipient blocks that read (a second
        // `Final-Recipient` starts a block without an empty line), each
        // with a type and an address to keep.
        (
            "recipients",
            Box::new(move || repeat(b"", unit_recipient, b"")),
            Via::Status,
            n(unit_recipient),
            0,
        ),
        // The same, each a problem too (its status goes not with its action).
        (
            "mismatched recipients",
            Box::new(move || repeat(b"", unit_mismatch, b"")),
            Via::Status,
            n(unit_mismatch),
            n(unit_mismatch),
        ),
        // Millions of the smallest blocks that do not read: a field and an
        // empty line.
        (
            "bad blocks",
            Box::new(move || repeat(HEAD, b"\nA:\n", b"")),
            Via::Status,
            1,
            n(b"\nA:\n"),
        ),
        // The same, each with a field of an octet that is not UTF-8: two
        // problems a block.
        (
            "bad blocks, not UTF-8",
            Box::new(move || repeat(HEAD, b"\nA:\xff\n", b"")),
            Via::Status,
            1,
            2 * n(b"\nA:\xff\n"),
        ),
        // Millions of per-message fields that are not UTF-8: named once.
        (
            "per-message fields, not UTF-8",
            Box::new(move || repeat(b"", b"X:\xff\n", &tail_recipient())),
            Via::Status,
            1,
            0,
        ),
        // Millions of blocks cut by a second `Original-Recipient`.
        (
            "cut blocks",
            Box::new(move || repeat(HEAD, b"Original-Recipient:\n", b"")),
            Via::Status,
            1,
            // The first joins the block before it.
            n(b"Original-Recipient:\n") - 1,
        ),
        // One field folded over millions of lines.
        (
            "folded field",
            Box::new(move || repeat(b"X-Long: a\n", b" b\n", &tail_recipient())),
            Via::Status,
            1,
            0,
        ),
        // Millions of lines that are not fields, and empty lines.
        (
            "other lines",
            Box::new(move || repeat(HEAD, b"x\n\n", b"")),
            Via::Status,
            1,
            0,
        ),
        // The per-message fields again, in the status part of a report.
        (
            "report, per-message fields",
            Box::new(move || {
                repeat(
                b"Content-Type: multipart/report; boundary=b\n\n\
                  --b\nContent-Type: message/delivery-status\n\n",
                b"X:y\n",
                b"\nFinal-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.1.1\n--b--\n",
            )
            }),
            Via::Report,
            1,
            0,
        ),
    ]
}

/// In a child process: reads the shape named and prints the growth of the
/// peak resident size.
fn measure(name: &str) {
    let (_, make, via, recipients, problems) = shapes()
        .into_iter()
        .find(|s| s.0 == name)
        .expect("a known shape");
    let input = make();
    let before = peak_resident();
    let status = match via {
        Via::Status => parse_delivery_status(&input).expect("the status reads"),
        Via::Report => parse_report(&input).expect("the report reads").status,
    };
    let grown = peak_resident().saturating_sub(before);
    assert_eq!(status.recipients.len(), recipients, "{name}: recipients");
    assert_eq!(status.problems.len(), problems, "{name}: problems");
    drop(status);
    println!("\nGROWN {grown} INPUT {}", input.len());
}

#[test]
fn hostile_status_parts_are_read_in_memory_a_few_times_their_size() {
    if let Ok(name) = std::env::var(SHAPE_VAR) {
        measure(&name);
        return;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let mut report = Vec::new();
    for (name, ..) in shapes() {
        let out = std::process::Command::new(&exe)
            .args([
                "hostile_status_parts_are_read_in_memory_a_few_times_their_size",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(SHAPE_VAR, name)
            .output()
            .expect("the test binary runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The test harness's own `test ... ` may come first on the line.
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("GROWN ").map(|(_, g)| g))
            .expect("the growth printed");
        let (grown, input) = line.split_once(" INPUT ").expect("GROWN n INPUT n");
        let grown: f64 = grown.parse().expect("a number");
        let input: f64 = input.parse().expect("a number");
        report.push((name, grown / input));
    }
    for (name, ratio) in &report {
        println!("{name}: {ratio:.2}x");
    }
    // What is kept is what is returned: the extension fields and the
    // problems in about their own size, and each recipient read as a
    // `RecipientStatus` (a fixed size, checked here) with its strings.
    // The smallest block that reads a recipient is 47 octets, so that
    // recipients cost up to about 8 times the part; all the rest, 5 at
    // most.
    let recipient = std::mem::size_of::<RecipientStatus>();
    assert!(recipient <= 320, "RecipientStatus is {recipient} octets");
    let over: Vec<_> = report
        .iter()
        .filter(|(name, r)| {
            *r > if name.contains("recipients") {
                8.5
            } else {
                5.0
            }
        })
        .collect();
    assert!(over.is_empty(), "over the bound: {over:?}");
}
