//! Sends one message read from standard input, or several over one
//! connection.
//!
//! ```text
//! cargo run --release -p smtp-proto-tokio --example send -- --server HOST:PORT \
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
//! (`client::Connection`: one greeting, EHLO, STARTTLS and AUTH for all).
//! For each message it prints a line `message N (FILE):` and one line per
//! recipient from the message's `DeliveryReport` (`delivery <A>: ACCEPTED
//! 250 ...`, `recipient <A>: REJECTED 550 ...`, `recipient <A>: NOT SENT
//! (why)`), then `connections: 1 (N messages, M delivered to every
//! recipient)`. Exits 0 when every message reached every recipient, 1
//! when one did not (the lines say which: a message after the server
//! closed the session is `NOT SENT`), 2 when the session could not be
//! opened (a connection or TLS error).

#[path = "support/send_app.rs"]
mod send_app;
#[path = "support/send_tokio.rs"]
mod send_tokio;

use std::process::ExitCode;

use clap::Parser;
use send_app::{Args, Tally};
use smtp_proto_tokio::client::{run, Connection, ConnectionError, RunOptions};
use smtp_proto_tokio::smtp_proto::client::Client;
use smtp_proto_tokio::tls;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

/// The driver's options: the TLS configuration when the command line
/// asks for TLS.
fn run_options(args: &Args) -> Result<RunOptions, Box<dyn std::error::Error>> {
    let mut options = RunOptions::default();
    if send_app::wants_tls(args) {
        let tls_config = match &args.tls_ca {
            Some(ca) => tls::client_config_trusting(ca)?,
            None => tls::client_config_webpki_roots()?,
        };
        let name = ServerName::try_from(send_app::server_host(&args.server))?;
        options.tls = Some((TlsConnector::from(tls_config), name));
    }
    Ok(options)
}

async fn send(args: Args) -> Result<send_app::Exit, Box<dyn std::error::Error>> {
    let (config, mut handler) = send_app::prepare(&args)?;
    let options = run_options(&args)?;
    let stream = TcpStream::connect(&args.server)
        .await
        .map_err(|e| send_app::cannot_connect(&args.server, &e))?;
    stream.set_nodelay(true)?;
    let mut client = Client::new(config);
    // The run's error does not decide alone: see `send_app::exit`.
    let end = run(stream, &mut client, &mut handler, &options).await;
    Ok(send_app::exit(handler.delivered, end))
}

/// `--message FILE ...`: every message over one session.
async fn send_several(args: Args) -> Result<send_app::Exit, Box<dyn std::error::Error>> {
    let messages = send_app::read_messages(&args)?;
    let config = send_app::client_config(&args)?;
    let options = run_options(&args)?;
    let stream = TcpStream::connect(&args.server)
        .await
        .map_err(|e| send_app::cannot_connect(&args.server, &e))?;
    stream.set_nodelay(true)?;
    let mut conn = match Connection::open(stream, Client::new(config), options).await {
        Ok(conn) => conn,
        Err(ConnectionError::Refused(reason)) => {
            return Ok(Tally::refused(messages, &reason, Ok::<_, String>(())));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(credentials) = send_app::credentials(&args)? {
        match conn.authenticate(credentials).await {
            Ok(()) => {}
            Err(ConnectionError::Refused(reason)) => {
                let quit = conn.quit().await;
                return Ok(Tally::refused(messages, &reason, quit));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut tally = Tally::default();
    for (i, m) in messages.into_iter().enumerate() {
        let report = match conn.send(m.envelope, &m.message).await {
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
    Ok(tally.finish(1, conn.quit().await))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let end = if args.messages.is_empty() {
        send(args).await
    } else {
        send_several(args).await
    };
    match end {
        Ok(exit) => exit.finish(),
        Err(e) => {
            eprintln!("send: {}", send_app::printable(&e.to_string()));
            ExitCode::from(2)
        }
    }
}
