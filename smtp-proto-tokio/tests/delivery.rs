//! `client::send`: one message to its recipients over loopback against
//! scripted servers and the server driver, and the report it returns, the
//! run failed or not.

mod support;

use support::{join, pair, read_line, spawn_recorder, Recorder, BOUND};

use std::sync::{Arc, Mutex};

use smtp_proto_tokio::client::{send, RunError, RunOptions, SendError, PIECE_SIZE};
use smtp_proto_tokio::server::{serve, ServeEnd, ServeOptions};
use smtp_proto_tokio::smtp_proto::client::{
    AuthCredentials, ChunkingPolicy, Client, ClientConfig, Delivery, DeliveryReport, Envelope,
    NotAttempted, RecipientOutcome, SaslAnswer, SaslResponder, Stage, TlsPolicy,
};
use smtp_proto_tokio::smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto_tokio::smtp_proto::sasl::{CustomMechanism, SaslMechanism};
use smtp_proto_tokio::smtp_proto::server::{ServerConfig, ServerSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the scripted server does after the end of the message.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AfterBody {
    /// Answers `250` and then QUIT.
    Accept,
    /// Closes the connection without a reply.
    Close,
}

/// A server without PIPELINING: greets, answers EHLO with `ehlo`, MAIL
/// with 250, each RCPT with 550 for `nobody@` and 250 otherwise, DATA
/// with 354 (or closes at DATA when `close_at_data`), reads the message
/// (DATA or BDAT), then acts as `after`. Returns the command lines it read
/// and the message octets it got.
async fn scripted_server(
    mut s: TcpStream,
    ehlo: &'static str,
    close_at_data: bool,
    after: AfterBody,
) -> (Vec<String>, Vec<u8>) {
    let mut buf = Vec::new();
    let mut seen = Vec::new();
    let mut message = Vec::new();
    s.write_all(b"220 mx.example.net ESMTP\r\n")
        .await
        .expect("greeting");
    for _ in 0..1000 {
        let Some(cmd) = read_line(&mut s, &mut buf).await else {
            break;
        };
        seen.push(cmd.clone());
        let upper = cmd.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            format!("250-mx.example.net\r\n{ehlo}")
        } else if upper.starts_with("RCPT") {
            if cmd.contains("nobody@") {
                "550 5.1.1 no such user\r\n".into()
            } else {
                "250 2.1.5 Ok\r\n".into()
            }
        } else if upper == "DATA" {
            if close_at_data {
                break;
            }
            s.write_all(b"354 Go ahead\r\n").await.expect("354");
            loop {
                match read_line(&mut s, &mut buf).await {
                    Some(l) if l == "." => break,
                    Some(l) => {
                        message.extend_from_slice(l.as_bytes());
                        message.extend_from_slice(b"\r\n");
                    }
                    None => return (seen, message),
                }
            }
            if after == AfterBody::Close {
                break;
            }
            "250 2.0.0 queued as Q1\r\n".into()
        } else if upper.starts_with("BDAT") {
            let mut words = cmd.split(' ').skip(1);
            let n: usize = words.next().and_then(|n| n.parse().ok()).expect("size");
            let last = words.next().is_some();
            while buf.len() < n {
                let mut chunk = [0u8; 8192];
                let got = tokio::time::timeout(BOUND, s.read(&mut chunk))
                    .await
                    .expect("bounded")
                    .expect("read");
                assert!(got > 0, "closed inside a chunk");
                buf.extend_from_slice(&chunk[..got]);
            }
            message.extend(buf.drain(..n));
            if !last {
                "250 2.0.0 chunk Ok\r\n".into()
            } else if after == AfterBody::Close {
                break;
            } else {
                "250 2.0.0 queued as Q1\r\n".into()
            }
        } else if upper == "QUIT" {
            let _ = s.write_all(b"221 2.0.0 bye\r\n").await;
            break;
        } else {
            "250 2.0.0 Ok\r\n".into()
        };
        if s.write_all(reply.as_bytes()).await.is_err() {
            break;
        }
    }
    (seen, message)
}

fn envelope(to: &[&str], size: usize) -> Envelope<'static> {
    let mut env = Envelope::new(ReversePath::Mailbox(
        Mailbox::parse("alice@example.com").unwrap().into_owned(),
    ))
    .with_size(size as u64);
    for t in to {
        env = env.recipient(ForwardPath::Mailbox(
            Mailbox::parse(t).unwrap().into_owned(),
        ));
    }
    env
}

async fn send_to(
    ehlo: &'static str,
    close_at_data: bool,
    after: AfterBody,
    to: &[&str],
    message: &[u8],
) -> (Vec<String>, Vec<u8>, Result<DeliveryReport, SendError>) {
    let (c, s) = pair().await;
    let server = tokio::spawn(scripted_server(s, ehlo, close_at_data, after));
    let config = ClientConfig::new(Domain::new("client.example.com").unwrap())
        .with_tls(TlsPolicy::Off)
        .with_chunking(ChunkingPolicy::Prefer);
    let mut client = Client::new(config);
    let delivery = Delivery::new(envelope(to, message.len()));
    let result = tokio::time::timeout(
        BOUND,
        send(c, &mut client, delivery, message, &RunOptions::default()),
    )
    .await
    .expect("bounded");
    let (seen, got) = join(server).await;
    (seen, got, result)
}

const MESSAGE: &[u8] = b"Subject: hello\r\n\r\nhello\r\n";

#[tokio::test]
async fn a_message_to_two_recipients_one_refused() {
    let (seen, got, result) = send_to(
        "250 8BITMIME\r\n",
        false,
        AfterBody::Accept,
        &["bob@example.org", "nobody@example.org"],
        MESSAGE,
    )
    .await;
    let report = result.expect("the run ends with QUIT");
    assert_eq!(got, MESSAGE);
    assert_eq!(seen.last().map(String::as_str), Some("QUIT"), "{seen:?}");
    let RecipientOutcome::Delivered { reply } = &report.recipients[0].outcome else {
        panic!("{report:?}")
    };
    assert_eq!(reply.text(), b"queued as Q1");
    let RecipientOutcome::PermanentFailure { stage, reply } = &report.recipients[1].outcome else {
        panic!("{report:?}")
    };
    assert_eq!(*stage, Stage::Rcpt);
    assert_eq!(u16::from(reply.code()), 550);
    assert_eq!(report.error, None);
    assert_eq!(report.permanent_failures().count(), 1);
}

#[tokio::test]
async fn a_connection_closed_after_the_message_leaves_the_outcome_unknown() {
    let (seen, got, result) = send_to(
        "250 8BITMIME\r\n",
        false,
        AfterBody::Close,
        &["bob@example.org"],
        MESSAGE,
    )
    .await;
    assert_eq!(got, MESSAGE, "{seen:?}");
    let e = result.expect_err("the server closed without a reply");
    assert!(matches!(e.error, RunError::PeerClosed), "{:?}", e.error);
    assert_eq!(e.report.recipients[0].outcome, RecipientOutcome::Unknown);
    assert_eq!(
        e.report.error.as_deref(),
        Some(e.error.to_string().as_str())
    );
    assert_eq!(e.report.unknown().count(), 1);
    assert_eq!(e.report.to_retry().count(), 0);
}

#[tokio::test]
async fn a_connection_closed_before_the_message_leaves_it_unsent() {
    let (seen, got, result) = send_to(
        "250 8BITMIME\r\n",
        true,
        AfterBody::Accept,
        &["bob@example.org"],
        MESSAGE,
    )
    .await;
    assert_eq!(seen.last().map(String::as_str), Some("DATA"));
    assert!(got.is_empty());
    let e = result.expect_err("the server closed at DATA");
    assert_eq!(
        e.report.recipients[0].outcome,
        RecipientOutcome::NotAttempted {
            reason: NotAttempted::ConnectionLost
        }
    );
    assert_eq!(e.report.to_retry().count(), 1);
}

#[tokio::test]
async fn a_large_message_goes_out_in_pieces_as_bdat_chunks() {
    // 200 KB of 100-octet lines.
    let mut message = b"Subject: big\r\n\r\n".to_vec();
    while message.len() < 200_000 {
        message.extend_from_slice(&[b'x'; 98]);
        message.extend_from_slice(b"\r\n");
    }
    let (seen, got, result) = send_to(
        "250 CHUNKING\r\n",
        false,
        AfterBody::Accept,
        &["bob@example.org", "carol@example.org"],
        &message,
    )
    .await;
    let report = result.expect("delivered");
    assert!(report.all_delivered(), "{report:?}");
    assert_eq!(got, message);
    let chunks: Vec<&String> = seen.iter().filter(|l| l.starts_with("BDAT ")).collect();
    // Pieces of at most 64 KiB, one chunk each, then `BDAT 0 LAST`.
    assert_eq!(
        chunks.len(),
        message.len().div_ceil(PIECE_SIZE) + 1,
        "{chunks:?}"
    );
    assert_eq!(chunks[0], &format!("BDAT {PIECE_SIZE}"));
    assert_eq!(chunks.last().map(|s| s.as_str()), Some("BDAT 0 LAST"));
}

#[tokio::test]
async fn limits_split_the_recipients_and_mailmax_stops_the_rest() {
    let (seen, _, result) = send_to(
        "250 LIMITS RCPTMAX=1 MAILMAX=2\r\n",
        false,
        AfterBody::Accept,
        &["bob@example.org", "carol@example.org", "dave@example.org"],
        MESSAGE,
    )
    .await;
    let report = result.expect("the run ends with QUIT");
    let mails = seen.iter().filter(|l| l.starts_with("MAIL ")).count();
    assert_eq!(mails, 2, "{seen:?}");
    assert!(report.recipients[0].outcome.is_delivered());
    assert!(report.recipients[1].outcome.is_delivered());
    assert_eq!(
        report.recipients[2].outcome,
        RecipientOutcome::NotAttempted {
            reason: NotAttempted::TransactionLimit { limit: 2 }
        }
    );
    assert_eq!(report.transactions, 2);
}

/// Against the server driver taking two recipients per transaction
/// without saying so in `LIMITS`: it answers `452 4.5.3` to the others,
/// and the client sends them in the next transactions over the same
/// session (RFC 5321 §4.5.3.1.10), until every one has the message.
#[tokio::test]
async fn recipients_refused_as_too_many_go_in_the_next_transactions_over_the_session() {
    let to = [
        "r1@example.org",
        "r2@example.org",
        "r3@example.org",
        "r4@example.org",
        "r5@example.org",
    ];
    let (c, s) = pair().await;
    let mut config = ServerConfig::new("mx.example.org");
    config.max_recipients = 2;
    let server = spawn_recorder(s, config);
    let mut client = Client::new(
        ClientConfig::new(Domain::new("client.example.com").unwrap()).with_tls(TlsPolicy::Off),
    );
    let delivery = Delivery::new(envelope(&to, MESSAGE.len()));
    let report = tokio::time::timeout(
        BOUND,
        send(c, &mut client, delivery, MESSAGE, &RunOptions::default()),
    )
    .await
    .expect("bounded")
    .expect("the run ends with QUIT");
    let (end, rec) = join(server).await;
    assert_eq!(end.expect("serve"), ServeEnd::Closed);
    assert_eq!(report.transactions, 3);
    assert_eq!(rec.messages, vec![MESSAGE.to_vec(); 3]);
    assert_eq!(rec.recipients, 5, "each recipient accepted once");
    assert!(report.all_delivered(), "{report:?}");
    let order: Vec<String> = report
        .recipients
        .iter()
        .map(|r| match &r.recipient.path {
            ForwardPath::Mailbox(m) => m.to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(order, to, "the report's order");
    assert_eq!(report.error, None);
}

/// RFC 2195 §2's CRAM-MD5 example: the challenge and tim's answer.
const CRAM_CHALLENGE: &[u8] = b"<1896.697170952@postoffice.reston.mci.net>";
const CRAM_ANSWER: &[u8] = b"tim b913a602c7eda7a495b4e6e7334d3890";

/// Sends to `bob@` with CRAM-MD5 answered by `responder`, against the
/// server driver running CRAM-MD5 through its application (the
/// [`Recorder`] sends [`CRAM_CHALLENGE`] and accepts [`CRAM_ANSWER`] as
/// `tim`). The run is spawned: the future of `send` with a responder
/// is `Send`.
async fn send_with_responder(
    responder: impl SaslResponder + Clone + Send + Sync + 'static,
) -> (Result<DeliveryReport, SendError>, Recorder) {
    let (c, s) = pair().await;
    let server = tokio::spawn(async move {
        let mut config = ServerConfig::new("mx.example.org");
        config.auth_mechanisms = vec![SaslMechanism::custom("CRAM-MD5").expect("name")];
        config.auth_requires_tls = false;
        let mut session = ServerSession::new(config).expect("session");
        session.greet().expect("greet");
        let mut rec = Recorder {
            exchange: Some((CRAM_CHALLENGE.to_vec(), CRAM_ANSWER.to_vec())),
            ..Recorder::default()
        };
        let end = serve(s, &mut session, &mut rec, &ServeOptions::default()).await;
        assert_eq!(end.expect("serve"), ServeEnd::Closed);
        rec
    });
    let cram = CustomMechanism::new("CRAM-MD5").expect("name");
    let delivery = Delivery::new(envelope(&["bob@example.org"], MESSAGE.len()))
        .with_auth(AuthCredentials::custom(cram, None))
        .with_auth_responder(responder);
    let run = tokio::spawn(async move {
        let config = ClientConfig::new(Domain::new("client.example.com").unwrap())
            .with_tls(TlsPolicy::Off)
            .with_auth_without_tls(true);
        let mut client = Client::new(config);
        send(c, &mut client, delivery, MESSAGE, &RunOptions::default()).await
    });
    let result = tokio::time::timeout(BOUND, run)
        .await
        .expect("bounded")
        .expect("join");
    (result, join(server).await)
}

#[tokio::test]
async fn a_custom_mechanism_answered_by_a_responder_against_the_server_driver() {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&asked);
    let responder = move |_: CustomMechanism, challenge: &[u8], round: usize| {
        log.lock().unwrap().push((challenge.to_vec(), round));
        SaslAnswer::respond(CRAM_ANSWER)
    };
    let (result, rec) = send_with_responder(responder).await;
    let report = result.expect("the run ends with QUIT");
    assert_eq!(*asked.lock().unwrap(), [(CRAM_CHALLENGE.to_vec(), 1)]);
    assert_eq!(rec.auth_user.as_deref(), Some("tim"));
    assert_eq!(rec.messages, [MESSAGE.to_vec()]);
    assert!(report.all_delivered(), "{report:?}");
    assert_eq!(report.error, None);
}

#[tokio::test]
async fn a_responder_that_cancels_leaves_the_message_unsent() {
    let (result, rec) =
        send_with_responder(|_: CustomMechanism, _: &[u8], _: usize| SaslAnswer::Cancel).await;
    let report = result.expect("the run ends with QUIT");
    assert_eq!(rec.auth_user, None);
    assert!(rec.messages.is_empty());
    let RecipientOutcome::NotAttempted {
        reason: NotAttempted::AuthFailed { reply },
    } = &report.recipients[0].outcome
    else {
        panic!("{report:?}")
    };
    // RFC 4954 §4: the server answers the client's `*` with 501.
    assert_eq!(u16::from(reply.code()), 501);
    assert_eq!(report.to_retry().count(), 1);
}
