//! What the two `send` examples (tokio and blocking) share: the command
//! line, the message as read from standard input, the application logic
//! that answers the client machine's events, and the exit status. Each
//! example adds only its IO.

use std::fmt::Display;
use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use smtp_proto::client::{
    AuthCredentials, ChunkingPolicy, Client, ClientConfig, ClientError, ClientEvent, Envelope,
    Protocol, Refusal, TlsPolicy, TransactionSummary, Verdict,
};
use smtp_proto::command::{BodyType, Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto::reply::Reply;

#[path = "line_ends.rs"]
mod line_ends;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StartTls {
    Required,
    Opportunistic,
    Off,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Chunking {
    Auto,
    Off,
}

/// Command line of the example client.
#[derive(Debug, Parser)]
#[command(about = "Send one message (read from standard input) over SMTP")]
pub struct Args {
    /// The server, as HOST:PORT.
    #[arg(long)]
    pub server: String,
    /// The envelope sender (empty for the null sender).
    #[arg(long)]
    pub from: String,
    /// An envelope recipient (repeat for more).
    #[arg(long, required = true)]
    pub to: Vec<String>,
    /// STARTTLS policy.
    #[arg(long, value_enum, default_value = "opportunistic")]
    pub starttls: StartTls,
    /// Speak TLS from the first byte (implicit TLS, RFC 8314, as on the
    /// submissions port 465); STARTTLS is then never used.
    #[arg(long)]
    pub implicit_tls: bool,
    /// Authenticate with this user name and password.
    #[arg(long, value_name = "USER:PASS")]
    pub auth: Option<String>,
    /// Use BDAT when the server offers CHUNKING (auto) or never (off).
    #[arg(long, value_enum, default_value = "auto")]
    pub chunking: Chunking,
    /// Trust this certificate (PEM) instead of the public roots.
    #[arg(long)]
    pub tls_ca: Option<std::path::PathBuf>,
    /// The name to greet with.
    #[arg(long, default_value = "localhost")]
    pub helo: String,
    /// Speak LMTP.
    #[arg(long)]
    pub lmtp: bool,
}

/// The application: one message to its recipients, printing each result.
///
/// The recipients go in one transaction, or in as many as the server's
/// `LIMITS RCPTMAX` and `RCPTDOMAINMAX` (RFC 9422) ask for, each with the
/// whole message. Recipients the session ends before (the server's
/// `MAILMAX` reached, or a 421), and those after a sender the server
/// refused for good (5yz), are printed as `NOT SENT`.
pub struct Sender {
    from: String,
    pub to: Vec<String>,
    auth: Option<AuthCredentials>,
    message: Vec<u8>,
    sent: usize,
    eight_bit: bool,
    done: bool,
    /// The recipients of the transaction under way: `to[batch]`.
    batch: std::ops::Range<usize>,
    /// Every transaction so far delivered the message to all its
    /// recipients.
    all_so_far: bool,
    /// Once a transaction ended (the server gave its verdict on the
    /// message, or refused every recipient): whether every recipient so
    /// far was accepted and the message delivered to each, and none is
    /// left to send to. `None` while no transaction ended and no
    /// recipient was printed as `NOT SENT`.
    pub delivered: Option<bool>,
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
        // As many recipients as the server takes in one transaction: at
        // most RCPTMAX of them, in at most RCPTDOMAINMAX domains, in the
        // order given.
        let start = self.batch.end;
        for to in &self.to[start..] {
            envelope = envelope.recipient(ForwardPath::Mailbox(mailbox(to)?));
        }
        // The rest is built again from `self.to` for the next transaction.
        let _rest = envelope.split_to_fit(&client.limits());
        let end = start + envelope.recipients.len();
        self.batch = start..end;
        self.sent = 0;
        self.done = self.batch.end == self.to.len();
        match client.send_mail(&envelope) {
            // The server's MAILMAX is reached: the rest cannot go on this
            // connection. Say so for each of them and end the session
            // properly; the run then exits 1, not every recipient having
            // the message.
            Err(ClientError::Refused(e @ Refusal::TransactionLimit { .. })) => {
                self.batch = start..start;
                self.not_sent(&e.to_string());
                client.quit().map_err(std::io::Error::other)
            }
            other => other.map_err(std::io::Error::other),
        }
    }

    /// Prints the recipients after `batch`, for which no transaction will
    /// be started, as `NOT SENT`, and counts the run as not delivered to
    /// every recipient.
    fn not_sent(&mut self, why: &str) {
        if self.batch.end == self.to.len() {
            return;
        }
        for to in &self.to[self.batch.end..] {
            println!("recipient <{to}>: NOT SENT ({why})");
        }
        self.all_so_far = false;
        self.delivered = Some(false);
        self.done = true;
    }

    /// The recipient at `index` in the transaction under way.
    fn recipient(&self, index: usize) -> Option<&str> {
        let i = self.batch.start.checked_add(index)?;
        self.batch.contains(&i).then(|| self.to[i].as_str())
    }

    /// Handles one event of the client machine.
    pub fn on_event(&mut self, client: &mut Client, event: ClientEvent<'_>) -> std::io::Result<()> {
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
                let to = self.recipient(index).unwrap_or("?");
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
                match recipient.and_then(|i| self.recipient(i)) {
                    Some(to) => println!("delivery <{to}>: {word} {}", show(&reply)),
                    None => println!("message: {word} {}", show(&reply)),
                }
            }
            ClientEvent::TransactionEnd(summary) => {
                let refused_sender = summary.sender.is_some_and(|v| !v.is_success());
                if refused_sender {
                    // Without PIPELINING the RCPTs after a refused MAIL
                    // are not sent: name their recipients all the same.
                    for (i, r) in summary.recipients.iter().enumerate() {
                        if let (None, Some(to)) = (r.rcpt, self.recipient(i)) {
                            println!("recipient <{to}>: NOT SENT (the server refused the sender)");
                        }
                    }
                }
                self.record(&summary);
                if summary.sender == Some(Verdict::Permanent) {
                    // RFC 5321 §4.2.1: after a 5yz the client "SHOULD NOT
                    // repeat the exact request": the MAIL of the next
                    // batch would be the same one.
                    self.not_sent("the server refused the sender");
                }
                self.start(client)?;
            }
            ClientEvent::ServiceClosing { reply, transaction } => {
                println!("session: CLOSING {}", show(&reply));
                // A message cut short by the 421: delivered only if every
                // recipient already had it (LMTP).
                if let Some(summary) = transaction {
                    self.record(&summary);
                }
                // Recipients left for later transactions, once the first
                // one started (before it, the line above says it all).
                if self.batch.end > 0 {
                    self.not_sent("the server closed the session");
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Records a transaction's result in `delivered`.
    fn record(&mut self, summary: &TransactionSummary) {
        self.all_so_far &= summary.all_delivered() && summary.recipients.len() == self.batch.len();
        self.delivered = Some(self.all_so_far && self.batch.end == self.to.len());
    }

    /// The next piece of the message, or `false` at its end.
    pub fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> std::io::Result<bool> {
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

/// The host part of `--server`, for the certificate check.
pub fn server_host(server: &str) -> String {
    server
        .rsplit_once(':')
        .map_or(server, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string()
}

/// True when the command line asks for TLS at some point (implicit TLS,
/// or a STARTTLS policy other than off), so a TLS configuration is needed.
pub fn wants_tls(args: &Args) -> bool {
    args.implicit_tls || !matches!(args.starttls, StartTls::Off)
}

/// Reads the message from standard input and builds the client
/// configuration and the application from the command line.
pub fn prepare(args: &Args) -> Result<(ClientConfig, Sender), Box<dyn std::error::Error>> {
    let mut input = Vec::new();
    std::io::stdin().read_to_end(&mut input)?;
    configure(args, &input)
}

/// Builds the client configuration and the application from the command
/// line, to send the message `input`.
pub fn configure(
    args: &Args,
    input: &[u8],
) -> Result<(ClientConfig, Sender), Box<dyn std::error::Error>> {
    // BDAT sends the bytes as they are, and a message that is not
    // BODY=BINARYMIME must be in canonical CRLF form (RFC 3030 §3), so line
    // ends are made CRLF here, as DATA's encoder does: the same input then
    // arrives the same over DATA and over BDAT.
    let message = line_ends::crlf_line_ends(input);
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
    if args.implicit_tls {
        config = config.with_implicit_tls(true);
    }
    if args.lmtp {
        config = config.with_protocol(Protocol::Lmtp);
    }
    let auth = match &args.auth {
        Some(s) => {
            let (u, p) = s.split_once(':').ok_or("--auth takes USER:PASS")?;
            Some(AuthCredentials::password(u, p))
        }
        None => None,
    };
    let sender = Sender {
        from: args.from.clone(),
        to: args.to.clone(),
        auth,
        eight_bit: message.iter().any(|&b| b >= 0x80),
        message,
        sent: 0,
        done: false,
        batch: 0..0,
        all_so_far: true,
        delivered: None,
    };
    Ok((config, sender))
}

/// How a `send` run ends: the exit status, and a line for standard error.
#[derive(Debug, PartialEq, Eq)]
pub struct Exit {
    /// 0 when every recipient got the message; 1 when the server refused
    /// it (the message or a recipient, or before the transaction: the
    /// session, the authentication, a required STARTTLS), or its `MAILMAX`
    /// or a 421 left recipients without a transaction; 2 when the run
    /// failed before the server's verdict on the message.
    pub status: u8,
    /// The error the run ended with (a warning after the verdict).
    pub message: Option<String>,
}

impl Exit {
    /// Prints the message, if any, to standard error and gives the exit
    /// code.
    pub fn finish(self) -> ExitCode {
        if let Some(message) = &self.message {
            eprintln!("send: {message}");
        }
        ExitCode::from(self.status)
    }
}

/// The exit of a `send` run, from the transaction's result (`delivered`,
/// as in [`Sender::delivered`]) and how the run ended.
///
/// The server's verdict on the message wins over an error that came after
/// it: once the server accepted the message it is responsible for it (RFC
/// 5321 §6.1), so a server that then closes without answering QUIT (or a
/// QUIT that cannot be written) must not make the message look unsent,
/// or a script that retries on failure sends it twice. The error is still
/// reported, as a warning.
pub fn exit<E: Display>(delivered: Option<bool>, run: Result<(), E>) -> Exit {
    let verdict = |all: bool| if all { 0 } else { 1 };
    match (delivered, run) {
        (Some(all), Ok(())) => Exit {
            status: verdict(all),
            message: None,
        },
        (Some(all), Err(e)) => Exit {
            status: verdict(all),
            message: Some(format!(
                "warning: {e} (after the server's verdict on the message)"
            )),
        },
        (None, Ok(())) => Exit {
            status: 1,
            message: None,
        },
        (None, Err(e)) => Exit {
            status: 2,
            message: Some(e.to_string()),
        },
    }
}
