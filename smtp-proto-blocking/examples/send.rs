//! Sends one message read from standard input, over blocking IO.
//!
//! ```text
//! cargo run --release -p smtp-proto-blocking --example send-blocking -- --server HOST:PORT \
//!     --from A --to B [--to C ...] [--starttls required|opportunistic|off] \
//!     [--implicit-tls] \
//!     [--auth USER:PASS] [--chunking auto|off] [--tls-ca FILE] [--helo NAME] \
//!     [--lmtp] < message.eml
//! ```
//!
//! Prints one line per recipient and the final reply. Exits 0 only if
//! every recipient was accepted and got the message, 1 if the server
//! refused something, 2 if the run failed before the server's verdict on
//! the message. A connection error after the verdict (a server that
//! closes without answering QUIT) is printed as a warning and does not
//! change the exit status: the server has taken the message.

#[path = "../../smtp-proto-tokio/examples/support/send_app.rs"]
mod send_app;

use std::net::TcpStream;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use send_app::{Args, Sender};
use smtp_proto_blocking::client::{run, ClientHandler, RunOptions};
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

fn send(args: Args) -> Result<send_app::Exit, Box<dyn std::error::Error>> {
    let (config, mut handler) = send_app::prepare(&args)?;
    let mut options = RunOptions::default();
    if send_app::wants_tls(&args) {
        let name = ServerName::try_from(send_app::server_host(&args.server))?;
        options.tls = Some((tls_config(args.tls_ca.as_deref())?, name));
    }
    let stream = TcpStream::connect(&args.server)?;
    stream.set_nodelay(true)?;
    let mut client = Client::new(config);
    // The run's error does not decide alone: see `send_app::exit`.
    let end = run(stream, &mut client, &mut handler, &options);
    Ok(send_app::exit(handler.delivered, end))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match send(args) {
        Ok(exit) => exit.finish(),
        Err(e) => {
            eprintln!("send: {e}");
            ExitCode::from(2)
        }
    }
}
