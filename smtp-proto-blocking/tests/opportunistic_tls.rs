//! `TlsPolicy::Opportunistic` is TLS when it can be had: `client::send`
//! without a TLS configuration, and with one whose handshake fails,
//! against the server driver offering STARTTLS over loopback.

mod support;

use support::{bounded_timeouts, connect, spawn_server, Recorder, ServerThread};

use std::net::SocketAddr;
use std::sync::Arc;

use smtp_proto_blocking::client::{send, RunError, RunOptions};
use smtp_proto_blocking::rustls;
use smtp_proto_blocking::rustls::pki_types::ServerName;
use smtp_proto_blocking::server::{ServeEnd, ServeOptions};
use smtp_proto_blocking::smtp_proto::client::{
    Client, ClientConfig, Delivery, Envelope, NotAttempted, RecipientOutcome, TlsPolicy,
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

/// Without a TLS configuration, an opportunistic client does not send
/// STARTTLS to a server that offers it: the message goes in plain text.
/// Before, it sent STARTTLS and the run failed at the handshake it could
/// not run.
#[test]
fn opportunistic_without_tls_options_delivers_in_plain_text() {
    let (server_tls, _) = support::tls_configs();
    let (addr, server) = spawn_starttls_server(server_tls);
    let mut client = Client::new(client_config(TlsPolicy::Opportunistic));
    let report = send(
        connect(addr),
        &mut client,
        delivery(),
        MESSAGE,
        &RunOptions::default(),
    )
    .expect("the run ends with QUIT");
    assert!(report.all_delivered(), "{report:?}");
    assert!(!client.is_tls());
    let (end, rec) = server.join().expect("server thread");
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

/// Required TLS without a TLS configuration still fails: STARTTLS goes
/// out, and the run ends at the handshake it cannot run, nothing sent.
#[test]
fn required_without_tls_options_still_fails() {
    let (server_tls, _) = support::tls_configs();
    let (addr, server) = spawn_starttls_server(server_tls);
    let mut client = Client::new(client_config(TlsPolicy::Required));
    let failed = send(
        connect(addr),
        &mut client,
        delivery(),
        MESSAGE,
        &RunOptions::default(),
    )
    .expect_err("no TLS");
    assert!(
        matches!(
            failed.error,
            RunError::StartTls(StartTlsError::Handshake(_))
        ),
        "{:?}",
        failed.error
    );
    assert_eq!(
        failed.report.recipients[0].outcome,
        RecipientOutcome::NotAttempted {
            reason: NotAttempted::ConnectionLost
        }
    );
    let (_, rec) = server.join().expect("server thread");
    assert!(rec.seen.from.is_none());
    assert_eq!(rec.seen.message_starts, 0);
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

    let (addr, server) = spawn_starttls_server(Arc::clone(&server_tls));
    let mut client = Client::new(client_config(TlsPolicy::Opportunistic));
    let failed = send(
        connect(addr),
        &mut client,
        delivery(),
        MESSAGE,
        &tls_options(untrusting),
    )
    .expect_err("the certificate is not trusted");
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
    // The server's handshake failed too; no MAIL came.
    let (end, rec) = server.join().expect("server thread");
    assert!(end.is_err(), "{end:?}");
    assert!(rec.seen.from.is_none());

    // The retry: a new connection, TLS off.
    let (addr, server) = spawn_starttls_server(server_tls);
    let mut client = Client::new(client_config(TlsPolicy::Off));
    let report = send(
        connect(addr),
        &mut client,
        delivery(),
        MESSAGE,
        &RunOptions::default(),
    )
    .expect("the run ends with QUIT");
    assert!(report.all_delivered(), "{report:?}");
    let (end, rec) = server.join().expect("server thread");
    assert_eq!(end.expect("server result"), ServeEnd::Closed);
    assert_eq!(rec.seen.tls_at_hello, [false]);
    assert_eq!(rec.seen.message, MESSAGE);
}
