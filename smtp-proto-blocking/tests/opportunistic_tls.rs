//! `TlsPolicy::Opportunistic` is TLS when it can be had: `client::send`
//! without a TLS configuration, and with one whose handshake fails,
//! against the server driver offering STARTTLS over loopback.

mod support;

use support::{bounded_timeouts, connect, spawn_server, Recorder, ServerThread};

use std::net::SocketAddr;
use std::sync::Arc;

use smtp_proto_blocking::client::{send, RunError, RunOptions, SendError};
use smtp_proto_blocking::rustls;
use smtp_proto_blocking::rustls::pki_types::ServerName;
use smtp_proto_blocking::server::{ServeEnd, ServeError, ServeOptions};
use smtp_proto_blocking::smtp_proto::client::{
    Client, ClientConfig, Delivery, DeliveryReport, Envelope, NotAttempted, RecipientOutcome,
    TlsPolicy,
};
use smtp_proto_blocking::smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto_blocking::smtp_proto::server::ServerConfig;
use smtp_proto_blocking::StartTlsError;

const MESSAGE: &[u8] = b"Subject: hi\r\n\r\nhello\r\n";

fn delivery() -> Delivery {
    Delivery::new(
        Envelope::new(ReversePath::Mailbox(
            Mailbox::parse("alice@example.net").unwrap().into_owned(),
        ))
        .recipient(ForwardPath::Mailbox(
            Mailbox::parse("bob@example.org").unwrap().into_owned(),
        )),
    )
}

fn client_config(tls: TlsPolicy) -> ClientConfig {
    ClientConfig::new(Domain::new("client.test").expect("domain"))
        .with_tls(tls)
        .with_timeouts(bounded_timeouts())
}

/// The server driver on one loopback connection, offering STARTTLS with
/// `tls`.
fn spawn_starttls_server(tls: Arc<rustls::ServerConfig>) -> (SocketAddr, ServerThread<Recorder>) {
    let mut config = ServerConfig::new("mx.test");
    config.timeouts = bounded_timeouts();
    config.starttls = true;
    let mut options = ServeOptions::default();
    options.tls = Some(tls);
    spawn_server(config, options, Recorder::new(None))
}

fn tls_options(client: Arc<rustls::ClientConfig>) -> RunOptions {
    let mut options = RunOptions::default();
    options.tls = Some((client, ServerName::try_from("localhost").expect("name")));
    options
}

/// One run of `send` under `policy` against a server offering STARTTLS
/// with `server_tls`: the run's result, the client machine, and how the
/// server ended with what it saw.
fn send_once(
    policy: TlsPolicy,
    server_tls: Arc<rustls::ServerConfig>,
    options: &RunOptions,
) -> (
    Result<DeliveryReport, SendError>,
    Client,
    Result<ServeEnd, ServeError>,
    Recorder,
) {
    let (addr, server) = spawn_starttls_server(server_tls);
    let mut client = Client::new(client_config(policy));
    let result = send(connect(addr), &mut client, delivery(), MESSAGE, options);
    let (end, rec) = server.join().expect("server thread");
    (result, client, end, rec)
}

/// The message went in plain text: no STARTTLS, and the server stored it.
fn assert_delivered_in_plain_text(
    result: Result<DeliveryReport, SendError>,
    end: Result<ServeEnd, ServeError>,
    rec: &Recorder,
) {
    let report = result.expect("the run ends with QUIT");
    assert!(report.all_delivered(), "{report:?}");
    assert_eq!(end.expect("server result"), ServeEnd::Closed);
    assert!(
        !rec.seen.events.iter().any(|e| e == "StartTls"),
        "{:?}",
        rec.seen.events
    );
    assert_eq!(rec.seen.tls_at_hello, [false]);
    assert_eq!(rec.seen.message, MESSAGE);
    assert!(!rec.seen.tls_at_end);
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
    assert!(rec.seen.from.is_none());
    assert_eq!(rec.seen.message_starts, 0);
}

/// Without a TLS configuration, an opportunistic client does not send
/// STARTTLS to a server that offers it: the message goes in plain text.
/// Before, it sent STARTTLS and the run failed at the handshake it could
/// not run.
#[test]
fn opportunistic_without_tls_options_delivers_in_plain_text() {
    let (server_tls, _) = support::tls_configs();
    let (result, client, end, rec) =
        send_once(TlsPolicy::Opportunistic, server_tls, &RunOptions::default());
    assert!(!client.is_tls());
    assert_delivered_in_plain_text(result, end, &rec);
}

/// Required TLS without a TLS configuration still fails: STARTTLS goes
/// out, and the run ends at the handshake it cannot run, nothing sent.
#[test]
fn required_without_tls_options_still_fails() {
    let (server_tls, _) = support::tls_configs();
    let (result, _, _, rec) = send_once(TlsPolicy::Required, server_tls, &RunOptions::default());
    assert_failed_at_the_handshake(result, &rec);
}

/// A handshake that fails after the server's `220` (a certificate the
/// client does not trust) ends the run under opportunistic TLS too: the
/// connection cannot be used after it, and nothing was sent (the
/// recipients are `ConnectionLost`, to retry). The documented way on is a
/// new connection with a machine whose policy is `TlsPolicy::Off`, once;
/// it delivers in plain text.
#[test]
fn a_failed_handshake_ends_the_run_and_a_plaintext_retry_delivers() {
    let (server_tls, _) = support::tls_configs();
    // Trusts another certificate only.
    let (_, untrusting) = support::tls_configs();
    let (result, _, end, rec) = send_once(
        TlsPolicy::Opportunistic,
        Arc::clone(&server_tls),
        &tls_options(untrusting),
    );
    assert_failed_at_the_handshake(result, &rec);
    // The server's handshake failed too.
    assert!(end.is_err(), "{end:?}");

    // The retry: a new connection, TLS off.
    let (result, _, end, rec) = send_once(TlsPolicy::Off, server_tls, &RunOptions::default());
    assert_delivered_in_plain_text(result, end, &rec);
}
