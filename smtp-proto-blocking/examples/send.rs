//! Sends one message read from standard input.
//!
//! ```text
//! cargo run --release -p smtp-proto-blocking --example send-blocking -- --server HOST:PORT \
//!     --from A --to B [--to C ...] [--starttls required|opportunistic|off] \
//!     [--auth USER:PASS] [--chunking auto|off] [--tls-ca FILE] [--helo NAME] \
//!     [--lmtp] < message.eml
//! ```
//!
//! Prints one line per recipient and the final reply, and exits 0 only if
//! every recipient was accepted.

#[path = "../../smtp-proto-tokio/examples/support/line_ends.rs"]
mod line_ends;

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use smtp_proto_blocking::client::{run, ClientHandler, RunOptions};
use smtp_proto_blocking::rustls;
use smtp_proto_blocking::rustls::pki_types::pem::PemObject;
use smtp_proto_blocking::rustls::pki_types::{CertificateDer, ServerName};
use smtp_proto_blocking::smtp_proto::client::{
    AuthCredentials, ChunkingPolicy, Client, ClientConfig, ClientEvent, Envelope, Protocol,
    TlsPolicy,
};
use smtp_proto_blocking::smtp_proto::command::{
    BodyType, Domain, ForwardPath, Mailbox, ReversePath,
};
use smtp_proto_blocking::smtp_proto::reply::Reply;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StartTls {
    Required,
    Opportunistic,
    Off,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Chunking {
    Auto,
    Off,
}

/// Command line of the example client.
#[derive(Debug, Parser)]
#[command(about = "Send one message (read from standard input) over SMTP")]
struct Args {
    /// The server, as HOST:PORT.
    #[arg(long)]
    server: String,
    /// The envelope sender (empty for the null sender).
    #[arg(long)]
    from: String,
    /// An envelope recipient (repeat for more).
    #[arg(long, required = true)]
    to: Vec<String>,
    /// STARTTLS policy.
    #[arg(long, value_enum, default_value = "opportunistic")]
    starttls: StartTls,
    /// Authenticate with this user name and password.
    #[arg(long, value_name = "USER:PASS")]
    auth: Option<String>,
    /// Use BDAT when the server offers CHUNKING (auto) or never (off).
    #[arg(long, value_enum, default_value = "auto")]
    chunking: Chunking,
    /// Trust this certificate (PEM) instead of the public roots.
    #[arg(long)]
    tls_ca: Option<std::path::PathBuf>,
    /// The name to greet with.
    #[arg(long, default_value = "localhost")]
    helo: String,
    /// Speak LMTP.
    #[arg(long)]
    lmtp: bool,
}

struct Sender {
    from: String,
    to: Vec<String>,
    auth: Option<AuthCredentials>,
    message: Vec<u8>,
    sent: usize,
    eight_bit: bool,
    done: bool,
    all_delivered: bool,
}

fn mailbox(s: &str) -> std::io::Result<Mailbox<'_>> {
    Mailbox::parse(s)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{s}: {e}")))
}

fn show(reply: &Reply<'_>) -> String {
    let mut s = String::new();
    for (i, line) in reply.lines().enumerate() {
        if i > 0 {
            s.push_str(" / ");
        }
        s.push_str(&String::from_utf8_lossy(line.raw_text()));
    }
    format!("{} {}", reply.code(), s.trim())
}

impl Sender {
    fn start(&mut self, client: &mut Client) -> std::io::Result<()> {
        if self.done {
            return client.quit().map_err(std::io::Error::other);
        }
        if let Some(creds) = self.auth.take() {
            client
                .authenticate(creds, None)
                .map_err(std::io::Error::other)?;
            return Ok(());
        }
        let from = if self.from.is_empty() {
            ReversePath::Null
        } else {
            ReversePath::Mailbox(mailbox(&self.from)?)
        };
        let mut envelope = Envelope::new(from).with_size(self.message.len() as u64);
        if self.eight_bit {
            envelope = envelope.with_body(BodyType::EightBitMime);
        }
        for to in &self.to {
            envelope = envelope.recipient(ForwardPath::Mailbox(mailbox(to)?));
        }
        self.sent = 0;
        self.done = true;
        client.send_mail(&envelope).map_err(std::io::Error::other)
    }
}

impl ClientHandler for Sender {
    fn on_event(&mut self, client: &mut Client, event: ClientEvent<'_>) -> std::io::Result<()> {
        match event {
            ClientEvent::Ready | ClientEvent::Authenticated { .. } => self.start(client)?,
            ClientEvent::AuthFailed { reply, .. } => {
                println!("auth: FAILED {}", show(&reply));
                self.done = true;
                client.quit().map_err(std::io::Error::other)?;
            }
            ClientEvent::GreetingRejected { reply } | ClientEvent::HelloRejected { reply } => {
                println!("session: REFUSED {}", show(&reply));
            }
            ClientEvent::TlsUnavailable { reply } => {
                println!(
                    "starttls: UNAVAILABLE {}",
                    reply.map(|r| show(&r)).unwrap_or_default()
                );
            }
            ClientEvent::Sender { reply, verdict } if !verdict.is_success() => {
                println!("sender <{}>: REJECTED {}", self.from, show(&reply));
            }
            ClientEvent::Recipient {
                index,
                reply,
                verdict,
            } => {
                let to = self.to.get(index).map_or("?", String::as_str);
                let word = if verdict.is_success() {
                    "ACCEPTED"
                } else {
                    "REJECTED"
                };
                println!("recipient <{to}>: {word} {}", show(&reply));
            }
            ClientEvent::Message {
                recipient,
                reply,
                verdict,
            } => {
                let word = if verdict.is_success() {
                    "ACCEPTED"
                } else {
                    "REJECTED"
                };
                match recipient.and_then(|i| self.to.get(i)) {
                    Some(to) => println!("delivery <{to}>: {word} {}", show(&reply)),
                    None => println!("message: {word} {}", show(&reply)),
                }
            }
            ClientEvent::TransactionEnd(summary) => {
                self.all_delivered =
                    summary.all_delivered() && summary.recipients.len() == self.to.len();
                self.start(client)?;
            }
            ClientEvent::ServiceClosing { reply } => println!("session: CLOSING {}", show(&reply)),
            _ => {}
        }
        Ok(())
    }

    fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> std::io::Result<bool> {
        const PIECE: usize = 64 * 1024;
        let rest = &self.message[self.sent..];
        if rest.is_empty() {
            return Ok(false);
        }
        let n = rest.len().min(PIECE);
        piece.extend_from_slice(&rest[..n]);
        self.sent += n;
        Ok(true)
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

fn send(args: Args) -> Result<bool, Box<dyn std::error::Error>> {
    let mut input = Vec::new();
    std::io::stdin().read_to_end(&mut input)?;
    // Canonical CRLF line ends, as DATA's encoder makes them: BDAT carries
    // the bytes unchanged (RFC 3030 §3 wants CRLF without BINARYMIME).
    let message = line_ends::crlf_line_ends(&input);
    let host = args
        .server
        .rsplit_once(':')
        .map_or(args.server.as_str(), |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let tls_policy = match args.starttls {
        StartTls::Required => TlsPolicy::Required,
        StartTls::Opportunistic => TlsPolicy::Opportunistic,
        StartTls::Off => TlsPolicy::Off,
    };
    let mut config = ClientConfig::new(Domain::new(args.helo.clone())?.into_owned())
        .with_tls(tls_policy)
        .with_chunking(match args.chunking {
            Chunking::Auto => ChunkingPolicy::Prefer,
            Chunking::Off => ChunkingPolicy::Never,
        });
    if args.lmtp {
        config = config.with_protocol(Protocol::Lmtp);
    }
    let mut options = RunOptions::default();
    if !matches!(args.starttls, StartTls::Off) {
        options.tls = Some((
            tls_config(args.tls_ca.as_deref())?,
            ServerName::try_from(host.clone())?,
        ));
    }
    let auth = match &args.auth {
        Some(s) => {
            let (u, p) = s.split_once(':').ok_or("--auth takes USER:PASS")?;
            Some(AuthCredentials::password(u, p))
        }
        None => None,
    };
    let mut handler = Sender {
        from: args.from,
        to: args.to,
        auth,
        eight_bit: message.iter().any(|&b| b >= 0x80),
        message,
        sent: 0,
        done: false,
        all_delivered: false,
    };
    let stream = TcpStream::connect(&args.server)?;
    stream.set_nodelay(true)?;
    let mut client = Client::new(config);
    run(stream, &mut client, &mut handler, &options)?;
    Ok(handler.all_delivered)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match send(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("send: {e}");
            ExitCode::from(2)
        }
    }
}
