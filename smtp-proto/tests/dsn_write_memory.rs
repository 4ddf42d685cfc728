//! The memory `smtp_proto::dsn::Bounce::write` takes for a hostile
//! original message (a peer's) full of boundaries it could pick: about the
//! report it writes.
//!
//! The peak resident size of the process is the measure (Linux only), so
//! this file holds a single test, run alone in its own process.

#![cfg(target_os = "linux")]

mod dsn_support;
mod memory;

use dsn_support::{at, host, rcpt, sender};
use memory::peak_resident;

use smtp_proto::command::Atom;
use smtp_proto::dsn::{Action, Bounce, Recipient, Returned};
use smtp_proto::status::EnhancedStatusCode;

/// The size of each hostile original.
const SIZE: usize = 4 << 20;

#[test]
fn hostile_originals_are_returned_in_memory_a_few_times_their_size() {
    let (host, sender, bob) = (host(), sender(), rcpt("bob@example.net"));
    // Millions of boundaries the writer could pick, each with the longest
    // run of digits it reads after one.
    let cases: [(&str, Vec<u8>); 1] = [(
        "boundary candidates",
        memory::repeat(
            SIZE,
            b"Subject: x\r\n\r\n",
            b"=_smtp-proto-dsn-123456789012345678\r\n",
            b"",
        ),
    )];
    let before = peak_resident();
    for (name, original) in &cases {
        let report = Bounce::new(&host, &sender, at(0, 0), &Atom::new("Q1").unwrap())
            .unwrap()
            .recipient(
                Recipient::new(&bob, Action::Failed, EnhancedStatusCode::BAD_MAILBOX).unwrap(),
            )
            .write(original)
            .unwrap();
        assert_eq!(report.returned(), Returned::Full, "{name}");
        assert!(report.as_bytes().len() >= original.len(), "{name}");
    }
    // The report, about the original's size, and little else: no
    // structure per boundary candidate is kept.
    let grown = peak_resident().saturating_sub(before);
    assert!(
        grown <= 2 * SIZE,
        "writing took {} MiB for an original of {} MiB",
        grown >> 20,
        SIZE >> 20
    );
}
