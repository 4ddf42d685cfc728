//! `TlsPolicy::Opportunistic` is TLS when it can be had: `client::send`
//! without a TLS connector, and with one whose handshake fails, against
//! the server driver offering STARTTLS over loopback.

mod support;

use support::{client_config, join, pair, spawn_starttls_server, Recorder, BOUND};

use std::sync::Arc;

use smtp_proto_tokio::client::{send, RunError, RunOptions, SendError};
use smtp_proto_tokio::rustls::pki_types::ServerName;
use smtp_proto_tokio::rustls::ClientConfig as TlsClientConfig;
use smtp_proto_tokio::rustls::ServerConfig as TlsServerConfig;
use smtp_proto_tokio::server::ServeEnd;
use smtp_proto_tokio::smtp_proto::client::{
    Client, Delivery, DeliveryReport, Envelope, NotAttempted, RecipientOutcome, TlsPolicy,
};
use smtp_proto_tokio::smtp_proto::command::{ForwardPath, Mailbox, ReversePath};
use smtp_proto_tokio::tls::StartTlsError;
use smtp_proto_tokio::tokio_rustls::TlsConnector;

const MESSAGE: &[u8] = b"Subject: hi\r\n\r\nhello\r\n";

fn delivery() -> Delivery {
    Delivery::new(
        Envelope::new(ReversePath::Mailbox(
            Mailbox::parse("alice@example.com").unwrap().into_owned(),
        ))
        .recipient(ForwardPath::Mailbox(
            Mailbox::parse("bob@example.org").unwrap().into_owned(),
        )),
    )
}

fn tls_options(client: Arc<TlsClientConfig>) -> RunOptions {
    let mut options = RunOptions::default();
    options.tls = Some((
        TlsConnector::from(client),
        ServerName::try_from("localhost").expect("name"),
    ));
    options
}

fn saw(rec: &Recorder, name: &str) -> bool {
    rec.events.iter().any(|(e, _)| e == name)
}

/// One run of `send` under `policy` against a server offering STARTTLS
/// with `server_tls`: the run's result, the client machine, and how the
/// server ended with what it saw.
async fn send_once(
    policy: TlsPolicy,
    server_tls: Arc<TlsServerConfig>,
    options: &RunOptions,
) -> (
    Result<DeliveryReport, SendError>,
    Client,
    Result<ServeEnd, String>,
    Recorder,
) {
    let (c, s) = pair().await;
    let server = spawn_starttls_server(s, server_tls);
    let mut client = Client::new(client_config(policy));
    let result = tokio::time::timeout(BOUND, send(c, &mut client, delivery(), MESSAGE, options))
        .await
        .expect("bounded");
    let (end, rec) = join(server).await;
    (result, client, end, rec)
}

/// The message went in plain text: no STARTTLS, and the server stored it.
fn assert_delivered_in_plain_text(
    result: Result<DeliveryReport, SendError>,
    end: Result<ServeEnd, String>,
    rec: &Recorder,
) {
    let report = result.expect("the run ends with QUIT");
    assert!(report.all_delivered(), "{report:?}");
    assert_eq!(end, Ok(ServeEnd::Closed));
    assert!(!saw(rec, "StartTls"), "{:?}", rec.events);
    assert_eq!(rec.messages, [MESSAGE.to_vec()]);
    // Every event of the session came in plain text.
    assert!(rec.events.iter().all(|(_, tls)| !tls), "{:?}", rec.events);
}

/// The run ended at the TLS handshake with nothing sent: the recipient is
/// `ConnectionLost` (to retry) and no MAIL reached the server.
fn assert_failed_at_the_handshake(result: Result<DeliveryReport, SendError>, rec: &Recorder) {
    let failed = result.expect_err("no TLS session");
    assert!(
        matches!(
            failed.error,
            RunError::StartTls(StartTlsError::Handshake(_))
        ),
        "{:?}",
        failed.error
    );
    let outcome = &failed.report.recipients[0].outcome;
    assert_eq!(
        outcome,
        &RecipientOutcome::NotAttempted {
            reason: NotAttempted::ConnectionLost
        }
    );
    assert!(outcome.is_retry());
    assert!(rec.messages.is_empty());
    assert!(!saw(rec, "Mail"), "{:?}", rec.events);
}

/// Without a connector, an opportunistic client does not send STARTTLS
/// to a server that offers it: the message goes in plain text. Before,
/// it sent STARTTLS and the run failed at the handshake it could not run.
#[tokio::test]
async fn opportunistic_without_a_connector_delivers_in_plain_text() {
    let (server_tls, _) = support::tls_configs();
    let (result, client, end, rec) =
        send_once(TlsPolicy::Opportunistic, server_tls, &RunOptions::default()).await;
    assert!(!client.is_tls());
    assert_delivered_in_plain_text(result, end, &rec);
}

/// Required TLS without a connector still fails: STARTTLS goes out, and
/// the run ends at the handshake it cannot run, with nothing sent.
#[tokio::test]
async fn required_without_a_connector_still_fails() {
    let (server_tls, _) = support::tls_configs();
    let (result, _, _, rec) =
        send_once(TlsPolicy::Required, server_tls, &RunOptions::default()).await;
    assert_failed_at_the_handshake(result, &rec);
}

/// A handshake that fails after the server's `220` (here: a certificate
/// the client does not trust) ends the run under opportunistic TLS too:
/// the connection cannot be used after it, and nothing was sent (the
/// recipients are `ConnectionLost`, to retry). The documented way on is
/// a new connection with a machine whose policy is `TlsPolicy::Off`,
/// once; it delivers in plain text.
#[tokio::test]
async fn a_failed_handshake_ends_the_run_and_a_plaintext_retry_delivers() {
    let (server_tls, _) = support::tls_configs();
    // Trusts another certificate only.
    let (_, untrusting) = support::tls_configs();
    let (result, _, end, rec) = send_once(
        TlsPolicy::Opportunistic,
        Arc::clone(&server_tls),
        &tls_options(untrusting),
    )
    .await;
    assert_failed_at_the_handshake(result, &rec);
    // The server answered 220 and its handshake failed too.
    assert!(end.is_err(), "{end:?}");

    // The retry: a new connection, TLS off.
    let (result, _, end, rec) = send_once(TlsPolicy::Off, server_tls, &RunOptions::default()).await;
    assert_delivered_in_plain_text(result, end, &rec);
}
