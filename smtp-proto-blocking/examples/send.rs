//! Sends one message read from standard input, or several over one
//! connection, over blocking IO.
//!
//! ```text
//! cargo run --release -p smtp-proto-blocking --example send-blocking -- --server HOST:PORT \
//!     --from A --to B [--to C ...] [--starttls required|opportunistic|off] \
//!     [--implicit-tls] \
//!     [--auth USER:PASS] [--chunking auto|off] [--tls-ca FILE] [--helo NAME] \
//!     [--lmtp] < message.eml
//! ... same options ... --message a.eml [--message b.eml ...]
//! ```
//!
//! Prints one line per recipient and the final reply. Exits 0 only if
//! every recipient was accepted and got the message, 1 if the server
//! refused something or cannot take the message (over its `SIZE`, 8-bit
//! or UTF-8 without 8BITMIME or SMTPUTF8), 2 if the run failed before the
//! server's verdict on the message. A connection error after the verdict (a server that
//! closes without answering QUIT) is printed as a warning and does not
//! change the exit status: the server has taken the message.
//!
//! With `--message FILE` (repeatable) the messages are read from the
//! files and sent one after the other over one session
//! (`client::Connection`), printed and judged as the tokio `send` example
//! does (see its documentation).

#[path = "../../smtp-proto-tokio/examples/support/send_app.rs"]
mod send_app;

use std::net::TcpStream;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use send_app::{Args, Sender, Tally};
use smtp_proto_blocking::client::{run, ClientHandler, Connection, ConnectionError, RunOptions};
use smtp_proto_blocking::rustls;
use smtp_proto_blocking::rustls::pki_types::pem::PemObject;
use smtp_proto_blocking::rustls::pki_types::{CertificateDer, ServerName};
use smtp_proto_blocking::smtp_proto::client::{Client, ClientEvent};

impl ClientHandler for Sender {
    fn on_event(&mut self, client: &mut Client, event: ClientEvent<'_>) -> std::io::Result<()> {
        Sender::on_event(self, client, event)
    }

    fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> std::io::Result<bool> {
        Sender::next_body_piece(self, piece)
    }
}

/// A client TLS configuration (the *ring* provider) trusting the
/// certificates of a PEM file, or the Mozilla roots of `webpki-roots`.
fn tls_config(ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, Box<dyn std::error::Error>> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(ca) => {
            let certs = CertificateDer::pem_file_iter(ca)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("{}: {e}", ca.display()))?;
            if certs.is_empty() {
                return Err(format!("{}: no CERTIFICATE block", ca.display()).into());
            }
            for cert in certs {
                roots.add(cert)?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The driver's options: the TLS configuration when the command line
/// asks for TLS.
fn run_options(args: &Args) -> Result<RunOptions, Box<dyn std::error::Error>> {
    let mut options = RunOptions::default();
    if send_app::wants_tls(args) {
        let name = ServerName::try_from(send_app::server_host(&args.server))?;
        options.tls = Some((tls_config(args.tls_ca.as_deref())?, name));
    }
    Ok(options)
}

fn send(args: Args) -> Result<send_app::Exit, Box<dyn std::error::Error>> {
    let (config, mut handler) = send_app::prepare(&args)?;
    let options = run_options(&args)?;
    let stream =
        TcpStream::connect(&args.server).map_err(|e| send_app::cannot_connect(&args.server, &e))?;
    stream.set_nodelay(true)?;
    let mut client = Client::new(config);
    // The run's error does not decide alone: see `send_app::exit`.
    let end = run(stream, &mut client, &mut handler, &options);
    Ok(send_app::exit(handler.delivered, end))
}

/// `--message FILE ...`: every message over one session.
fn send_several(args: Args) -> Result<send_app::Exit, Box<dyn std::error::Error>> {
    let messages = send_app::read_messages(&args)?;
    let config = send_app::client_config(&args)?;
    let options = run_options(&args)?;
    let stream =
        TcpStream::connect(&args.server).map_err(|e| send_app::cannot_connect(&args.server, &e))?;
    stream.set_nodelay(true)?;
    let mut conn = match Connection::open(stream, Client::new(config), options) {
        Ok(conn) => conn,
        Err(ConnectionError::Refused(reason)) => {
            return Ok(Tally::refused(messages, &reason, Ok::<_, String>(())));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(credentials) = send_app::credentials(&args)? {
        match conn.authenticate(credentials) {
            Ok(()) => {}
            Err(ConnectionError::Refused(reason)) => {
                let quit = conn.quit();
                return Ok(Tally::refused(messages, &reason, quit));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut tally = Tally::default();
    for (i, m) in messages.into_iter().enumerate() {
        let report = match conn.send(m.envelope, &m.message) {
            Ok(report) => report,
            // The report still says who has the message.
            Err(e) => {
                eprintln!(
                    "send: message {}: {}",
                    i + 1,
                    send_app::printable(&e.to_string())
                );
                e.report
            }
        };
        tally.record(i + 1, &m.name, &report);
    }
    Ok(tally.finish(1, conn.quit()))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let end = if args.messages.is_empty() {
        send(args)
    } else {
        send_several(args)
    };
    match end {
        Ok(exit) => exit.finish(),
        Err(e) => {
            eprintln!("send: {}", send_app::printable(&e.to_string()));
            ExitCode::from(2)
        }
    }
}
