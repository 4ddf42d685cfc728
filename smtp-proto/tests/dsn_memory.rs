//! The memory `smtp_proto::dsn::parse_report` takes for a hostile bounce:
//! a few times the message at most, however its structure is shaped.
//!
//! The peak resident size of the process is the measure (Linux only), so
//! this file holds a single test, run alone in its own process.

#![cfg(target_os = "linux")]

mod memory;

use memory::peak_resident;

use smtp_proto::dsn::{parse_report, ReadError};

/// The size of each hostile message.
const SIZE: usize = 4 << 20;

/// `head`, then `unit` repeated up to [`SIZE`] octets, then `tail`.
fn message(head: &[u8], unit: &[u8], tail: &[u8]) -> Vec<u8> {
    memory::repeat(SIZE, head, unit, tail)
}

#[test]
fn hostile_reports_are_read_in_memory_a_few_times_their_size() {
    const MULTIPART: &[u8] = b"Content-Type: multipart/report; boundary=b\r\n\r\n";
    let cases: [(&str, Vec<u8>, Result<(), ReadError>); 5] = [
        // Millions of empty parts.
        (
            "parts",
            message(MULTIPART, b"--b\n", b""),
            Err(ReadError::NoStatusPart),
        ),
        // A top-level header of millions of fields.
        (
            "top-level fields",
            message(b"", b"a:\n", b"\n"),
            Err(ReadError::NotMultipart),
        ),
        // A part header of millions of fields.
        (
            "part fields",
            message(
                b"Content-Type: multipart/report; boundary=b\r\n\r\n--b\n",
                b"a:\n",
                b"\n",
            ),
            Err(ReadError::NoStatusPart),
        ),
        // A content type of millions of parameters.
        (
            "parameters",
            message(
                b"Content-Type: multipart/report",
                b";a=",
                b"; boundary=b\r\n\r\n--b\n",
            ),
            Err(ReadError::NoStatusPart),
        ),
        // Many parts, each a multipart of its own: the reader looks one
        // level down in each.
        (
            "nested parts",
            message(
                MULTIPART,
                b"--b\nContent-Type: multipart/mixed; boundary=c\n\n--c\n",
                b"",
            ),
            Err(ReadError::NoStatusPart),
        ),
    ];
    let before = peak_resident();
    for (name, msg, want) in cases {
        let got = parse_report(&msg).map(|_| ());
        assert_eq!(got, want, "{name}");
    }
    // The message being read, and a few copies of it at most: no
    // structure per part, per field or per parameter is kept.
    let grown = peak_resident().saturating_sub(before);
    assert!(
        grown <= 5 * SIZE,
        "reading took {} MiB for messages of {} MiB",
        grown >> 20,
        SIZE >> 20
    );
}
