//! The `send` examples' `--message FILE` runs (several messages over one
//! session): the messages read from the files, the line printed for each
//! recipient from its delivery report, and the exit status.

// The examples use the rest of it.
#[allow(dead_code)]
#[path = "../examples/support/send_app.rs"]
mod send_app;
#[path = "../examples/support/send_tokio.rs"]
mod send_tokio;

mod support;
// Only its command line is used here.
#[allow(dead_code)]
#[path = "support/send_run.rs"]
mod send_run;

use send_app::{report_line, Args, Exit, Tally};
use send_run::send_args;
use smtp_proto_tokio::smtp_proto::client::{
    Delivery, DeliveryReport, NotAttempted, RecipientOutcome, Stage,
};
use smtp_proto_tokio::smtp_proto::reply::OwnedReply;
use smtp_proto_tokio::smtp_proto::status::ReplyCode;

fn args(extra: &[&str]) -> Args {
    send_args(&["bob@example.org", "carol@example.org"], extra)
}

fn reply(code: u16, text: &str) -> OwnedReply {
    OwnedReply::new(ReplyCode::new(code).expect("code"), text).expect("reply")
}

/// A report for the two recipients of `args`, both with `outcome`.
fn report(outcome: &RecipientOutcome) -> DeliveryReport {
    let (_, envelope) =
        send_app::outgoing(&args(&[]), b"Subject: x\r\n\r\nx\r\n").expect("envelope");
    let mut report = Delivery::new(envelope).abandon(NotAttempted::ConnectionLost);
    for r in &mut report.recipients {
        r.outcome = outcome.clone();
    }
    report
}

#[test]
fn the_messages_are_read_from_the_files_in_order() {
    let dir = std::env::temp_dir().join(format!("send-several-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let first = dir.join("first.eml");
    let second = dir.join("second.eml");
    std::fs::write(&first, b"Subject: one\n\nbare LF\n").expect("write");
    std::fs::write(&second, "Subject: two\r\n\r\nGr\u{fc}\u{df}e\r\n").expect("write");
    let (a, b) = (first.display().to_string(), second.display().to_string());
    let messages =
        send_app::read_messages(&args(&["--message", &a, "--message", &b])).expect("read");
    std::fs::remove_dir_all(&dir).expect("clean up");
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].name, a);
    // Line ends made CRLF, as for standard input.
    assert_eq!(messages[0].message, b"Subject: one\r\n\r\nbare LF\r\n");
    assert_eq!(messages[1].name, b);
    assert_eq!(
        messages[1].message,
        "Subject: two\r\n\r\nGr\u{fc}\u{df}e\r\n".as_bytes()
    );
    for m in &messages {
        assert_eq!(m.envelope.recipients.len(), 2);
        assert_eq!(m.envelope.size, Some(m.message.len() as u64));
    }
    // 8-bit text: BODY=8BITMIME for the second only.
    assert!(
        messages[0].envelope.body.is_none(),
        "{:?}",
        messages[0].envelope
    );
    assert!(
        messages[1].envelope.body.is_some(),
        "{:?}",
        messages[1].envelope
    );
}

#[test]
fn a_missing_file_fails_before_anything_is_sent() {
    let missing = "/nonexistent/send-several/missing.eml";
    let Err(e) = send_app::read_messages(&args(&["--message", missing])) else {
        panic!("a missing file was read");
    };
    assert!(e.to_string().starts_with(missing), "{e}");
}

#[test]
fn each_recipient_gets_a_line_from_its_outcome() {
    let line = |outcome: RecipientOutcome| {
        let report = report(&outcome);
        report
            .recipients
            .iter()
            .map(report_line)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        line(RecipientOutcome::Delivered {
            reply: reply(250, "2.0.0 queued as 1")
        }),
        [
            "delivery <bob@example.org>: ACCEPTED 250 2.0.0 queued as 1",
            "delivery <carol@example.org>: ACCEPTED 250 2.0.0 queued as 1",
        ]
    );
    assert_eq!(
        line(RecipientOutcome::PermanentFailure {
            stage: Stage::Rcpt,
            reply: reply(550, "no such user"),
        })[0],
        "recipient <bob@example.org>: REJECTED 550 no such user"
    );
    assert_eq!(
        line(RecipientOutcome::TemporaryFailure {
            stage: Stage::Mail,
            reply: reply(451, "try later"),
        })[0],
        "recipient <bob@example.org>: REJECTED 451 try later (MAIL)"
    );
    assert_eq!(
        line(RecipientOutcome::PermanentFailure {
            stage: Stage::EndOfData,
            reply: reply(554, "spam"),
        })[0],
        "delivery <bob@example.org>: REJECTED 554 spam"
    );
    assert_eq!(
        line(RecipientOutcome::NotAttempted {
            reason: NotAttempted::ConnectionLost
        })[0],
        "recipient <bob@example.org>: NOT SENT (the connection ended before the message was sent)"
    );
    assert_eq!(
        line(RecipientOutcome::NotAttempted {
            reason: NotAttempted::TransactionLimit { limit: 1 }
        })[1],
        "recipient <carol@example.org>: NOT SENT (the server allows 1 transactions per connection)"
    );
    assert_eq!(
        line(RecipientOutcome::Unknown)[0],
        "delivery <bob@example.org>: UNKNOWN (the connection ended before the reply to the message)"
    );
}

#[test]
fn the_exit_status_is_zero_only_when_every_message_reached_everyone() {
    let delivered = report(&RecipientOutcome::Delivered {
        reply: reply(250, "ok"),
    });
    let lost = report(&RecipientOutcome::NotAttempted {
        reason: NotAttempted::ConnectionLost,
    });
    let mut all = Tally::default();
    all.record(1, "a.eml", &delivered);
    all.record(2, "b.eml", &delivered);
    assert_eq!((all.messages, all.delivered), (2, 2));
    assert_eq!(
        all.finish(1, Ok::<_, String>(())),
        Exit {
            status: 0,
            message: None
        }
    );

    // The first delivered, then the server went away: exit 1, and the
    // failed QUIT is only a warning.
    let mut dropped = Tally::default();
    dropped.record(1, "a.eml", &delivered);
    dropped.record(2, "b.eml", &lost);
    dropped.record(3, "c.eml", &lost);
    assert_eq!((dropped.messages, dropped.delivered), (3, 1));
    assert_eq!(
        dropped.finish(1, Err("the server closed the connection")),
        Exit {
            status: 1,
            message: Some(
                "warning: the server closed the connection (after the messages were sent)"
                    .to_owned()
            ),
        }
    );
}
