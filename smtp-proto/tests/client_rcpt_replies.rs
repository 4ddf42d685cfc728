//! How the client reads the replies to RCPT, against RFC 5321 §4.5.3.1.10.

mod client_support;

use client_support::{config, run_split_invariant, Actor, Job};
use smtp_proto::client::{TlsPolicy, Verdict};

const GREET: &str = "220 mx.example.org ESMTP\r\n";
const EHLO: &str = "250-mx.example.org\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n";
const BYE: &str = "221 2.0.0 Bye\r\n";

/// RFC 5321 §4.5.3.1.10: RFC 821 gave "too many recipients" the code 552;
/// the right one is 452, and "Clients SHOULD treat a 552 code in this case
/// as a temporary, rather than permanent, failure". A 552 whose enhanced
/// status code says too many recipients (X.5.3, RFC 3463 §3.6: "the
/// remainder of the recipients to be delivered on a subsequent delivery
/// attempt") is a retry later for its recipient, not a bounce; a 552 that
/// says something else (a full mailbox, 5.2.2) stays permanent, as does a
/// 550 5.5.3 (a site's policy may refuse that many recipients for good).
#[test]
fn a_552_too_many_recipients_to_rcpt_is_retried_later() {
    let s = [
        GREET,
        EHLO,
        "250 2.1.0 Sender ok\r\n",
        "250 2.1.5 ok\r\n",
        "552 5.5.3 Too many recipients\r\n",
        "552 5.2.2 Mailbox full\r\n",
        "550 5.5.3 Too many recipients for this site\r\n",
        "552 Too many recipients\r\n",
        "354 go ahead\r\n",
        "250 2.0.0 queued\r\n",
        BYE,
    ]
    .concat();
    let job = Job::new(
        "a@x.org",
        &["b@y.org", "c@y.org", "d@y.org", "e@y.org", "f@y.org"],
        &[b"hi\r\n"],
    );
    let run = run_split_invariant(
        config().with_tls(TlsPolicy::Off),
        &Actor::new(vec![job]),
        &[s.as_bytes()],
    );
    assert!(run.error.is_none(), "{:?}", run.error);
    let verdicts: Vec<Verdict> = run.summaries[0]
        .recipients
        .iter()
        .map(|r| r.verdict())
        .collect();
    assert_eq!(
        verdicts,
        [
            Verdict::Success,
            Verdict::RetryLater,
            Verdict::Permanent,
            Verdict::Permanent,
            Verdict::Permanent,
        ]
    );
    assert!(run
        .events
        .iter()
        .any(|e| e.starts_with("Recipient { index: 1") && e.ends_with("verdict: RetryLater }")));
}
