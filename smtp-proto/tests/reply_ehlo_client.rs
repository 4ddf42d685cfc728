//! What the client machine does with the capabilities the EHLO reply
//! reader finds: a `SIZE` limit written with more than 20 digits is still
//! the server's limit (RFC 1870 §3: `size-param ::= [1*DIGIT]`).

mod client_support;

use client_support::{config, run_split_invariant, Actor, Job};
use smtp_proto::client::{ClientError, Refusal, TlsPolicy};

fn refusals_with_size(size_line: &str, size: u64) -> Vec<ClientError> {
    let job = Job::new("alice@example.net", &["bob@example.org"], &[b"hi\r\n"])
        .with_envelope(|e| e.with_size(size));
    let script = format!(
        "220 mx.example.org ESMTP\r\n250-mx.example.org\r\n250 {size_line}\r\n221 2.0.0 Bye\r\n"
    );
    let run = run_split_invariant(
        config().with_tls(TlsPolicy::Off),
        &Actor::new(vec![job]),
        &[script.as_bytes()],
    );
    run.refusals
}

#[test]
fn a_size_limit_with_leading_zeros_refuses_a_larger_message() {
    assert_eq!(
        refusals_with_size("SIZE 000000000000000000000050", 51),
        [ClientError::Refused(Refusal::TooLarge {
            size: 51,
            limit: 50
        })]
    );
}
