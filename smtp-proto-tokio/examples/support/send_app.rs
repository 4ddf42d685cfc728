//! What the two `send` examples (tokio and blocking) share: the command
//! line, the message as read from standard input, the application that
//! prints the client machine's events (the calls are made by the
//! library's `Delivery`), and the exit status. Each example adds only its
//! IO.

use std::fmt::Display;
use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use smtp_proto::client::{
    AuthCredentials, ChunkingPolicy, Client, ClientConfig, ClientError, ClientEvent, Delivery,
    DeliveryReport, Envelope, NotAttempted, Protocol, RecipientOutcome, RecipientReport, Refusal,
    Stage, TlsPolicy,
};
use smtp_proto::command::{BodyType, Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto::reply::{OwnedReply, Reply};

#[path = "line_ends.rs"]
mod line_ends;
#[path = "printable.rs"]
mod printable;
pub use printable::printable;

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
    /// Send the message in FILE instead of the one on standard input;
    /// repeat it to send several messages, one after the other, over one
    /// connection (one SMTP session), each to every `--to`.
    #[arg(long = "message", value_name = "FILE")]
    pub messages: Vec<std::path::PathBuf>,
}

/// The application: one message to its recipients, printing each result.
///
/// The decisions are the library's [`Delivery`]: the recipients go in one
/// transaction, or in as many as the server's `LIMITS RCPTMAX` and
/// `RCPTDOMAINMAX` (RFC 9422) ask for, each with the whole message; the
/// recipients the server refuses as too many for one transaction (`452`,
/// RFC 5321 §4.5.3.1.10) are printed as `REJECTED` and sent again in the
/// next one.
/// Recipients the session ends before (the server's `MAILMAX` reached, a
/// 421, a session refused, AUTH refused, STARTTLS required and not to be
/// had), those after a sender the server refused for good (5yz), and
/// those of a message the server cannot take (over its `SIZE`, or needing
/// an extension it does not offer) are printed as `NOT SENT`.
pub struct Sender {
    from: String,
    pub to: Vec<String>,
    message: Vec<u8>,
    delivery: Delivery,
    /// Once a transaction ended (the server gave its verdict on the
    /// message, or refused every recipient): whether every recipient so
    /// far was accepted and the message delivered to each, and none is
    /// left to send to. `None` while no transaction ended and no
    /// recipient was printed as `NOT SENT`, and while every recipient so
    /// far has the message and the next transactions (`LIMITS`) are still
    /// to come: the server has given no verdict for their recipients yet.
    pub delivered: Option<bool>,
}

fn mailbox(s: &str) -> std::io::Result<Mailbox<'static>> {
    Mailbox::parse(s)
        .map(Mailbox::into_owned)
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
    printable(&format!("{} {}", reply.code(), s.trim()))
}

impl Sender {
    /// The recipient the transaction under way numbers `index`.
    fn recipient(&self, index: usize) -> Option<&str> {
        let i = self.delivery.envelope_index(index)?;
        self.to.get(i).map(String::as_str)
    }

    /// Prints what `event` says, before the delivery acts on it (the
    /// transaction under way still names its recipients).
    fn print(&self, event: &ClientEvent<'_>) {
        match event {
            ClientEvent::AuthFailed { reply, .. } => println!("auth: FAILED {}", show(reply)),
            ClientEvent::GreetingRejected { reply } | ClientEvent::HelloRejected { reply } => {
                println!("session: REFUSED {}", show(reply));
            }
            ClientEvent::TlsUnavailable { reply } => match reply {
                Some(reply) => println!("starttls: UNAVAILABLE {}", show(reply)),
                None => println!("starttls: UNAVAILABLE (not offered)"),
            },
            ClientEvent::Sender { reply, verdict } if !verdict.is_success() => {
                println!("sender <{}>: REJECTED {}", self.from, show(reply));
            }
            ClientEvent::Recipient {
                index,
                reply,
                verdict,
            } => {
                let to = self.recipient(*index).unwrap_or("?");
                let word = if verdict.is_success() {
                    "ACCEPTED"
                } else {
                    "REJECTED"
                };
                println!("recipient <{to}>: {word} {}", show(reply));
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
                    Some(to) => println!("delivery <{to}>: {word} {}", show(reply)),
                    None => println!("message: {word} {}", show(reply)),
                }
            }
            // Without PIPELINING the RCPTs after a refused MAIL are not
            // sent: name their recipients all the same.
            ClientEvent::TransactionEnd(summary)
                if summary.sender.is_some_and(|v| !v.is_success()) =>
            {
                for (i, r) in summary.recipients.iter().enumerate() {
                    if let (None, Some(to)) = (r.rcpt, self.recipient(i)) {
                        println!("recipient <{to}>: NOT SENT (the server refused the sender)");
                    }
                }
            }
            ClientEvent::ServiceClosing { reply, .. } => {
                println!("session: CLOSING {}", show(reply));
            }
            _ => {}
        }
    }

    /// Handles one event of the client machine: prints it, lets the
    /// delivery make its call, then prints the recipients the delivery
    /// gave up on.
    pub fn on_event(&mut self, client: &mut Client, event: ClientEvent<'_>) -> std::io::Result<()> {
        self.print(&event);
        let undecided: Vec<usize> = (0..self.to.len())
            .filter(|&i| self.delivery.outcome(i).is_none())
            .collect();
        self.delivery
            .on_event(client, &event)
            .map_err(std::io::Error::other)?;
        if matches!(
            event,
            ClientEvent::TransactionEnd(_)
                | ClientEvent::ServiceClosing {
                    transaction: Some(_),
                    ..
                }
        ) {
            // The transaction is over: delivered to every recipient
            // decided so far, and every recipient is. Delivered to all so
            // far with recipients left (the next transactions of LIMITS,
            // or the ones the server refused as too many, sent again),
            // nothing is decided yet: a run that fails before their
            // transaction failed before the server's verdict on the
            // message for them (exit 2), not after it.
            let outcome = |i| self.delivery.outcome(i);
            let all = (0..self.to.len())
                .filter_map(outcome)
                .all(RecipientOutcome::is_delivered);
            let last = (0..self.to.len()).all(|i| outcome(i).is_some());
            self.delivered = (last || !all).then_some(all && last);
        }
        for i in undecided {
            let Some(RecipientOutcome::NotAttempted { reason }) = self.delivery.outcome(i) else {
                continue;
            };
            let why = match reason {
                NotAttempted::TransactionLimit { limit } => {
                    Refusal::TransactionLimit { limit: *limit }.to_string()
                }
                NotAttempted::SenderRefused { .. } => "the server refused the sender".to_owned(),
                // The session line before (`session: CLOSING`, `session:
                // REFUSED`, `auth: FAILED`, `starttls: UNAVAILABLE`)
                // quotes the server; each recipient is named all the same.
                NotAttempted::ServiceClosing { .. } => "the server closed the session".to_owned(),
                NotAttempted::SessionRefused { .. } => "the server refused the session".to_owned(),
                NotAttempted::AuthFailed { .. } => "authentication failed".to_owned(),
                NotAttempted::TlsUnavailable { .. } => "TLS is required but unavailable".to_owned(),
                // The message cannot go to this server at all (over its
                // SIZE, 8-bit or UTF-8 content it does not take, ...): a
                // refusal as final as a 5yz, not a failed run.
                NotAttempted::Refused(r) => r.to_string(),
                NotAttempted::AuthUnavailable(e) => {
                    return Err(std::io::Error::other(ClientError::Usage(*e)));
                }
                _ => continue,
            };
            println!("recipient <{}>: NOT SENT ({})", self.to[i], printable(&why));
            self.delivered = Some(false);
        }
        Ok(())
    }

    /// The next piece of the message, or `false` at its end.
    pub fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> std::io::Result<bool> {
        const PIECE: usize = 64 * 1024;
        Ok(match self.delivery.next_piece(&self.message, PIECE) {
            Some(p) => {
                piece.extend_from_slice(p);
                true
            }
            None => false,
        })
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

/// The error of a connection to `--server` that could not be made
/// (refused, unreachable, a name that does not resolve, no port): it names
/// the server, since the bare system error does not.
pub fn cannot_connect(server: &str, error: &std::io::Error) -> String {
    format!("cannot connect to {server}: {error}")
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
    let config = client_config(args)?;
    let (message, envelope) = outgoing(args, input)?;
    let mut delivery = Delivery::new(envelope);
    if let Some(creds) = credentials(args)? {
        delivery = delivery.with_auth(creds);
    }
    let sender = Sender {
        from: args.from.clone(),
        to: args.to.clone(),
        message,
        delivery,
        delivered: None,
    };
    Ok((config, sender))
}

/// The client configuration the command line asks for.
pub fn client_config(args: &Args) -> Result<ClientConfig, Box<dyn std::error::Error>> {
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
    Ok(config)
}

/// The credentials of `--auth`, if given.
pub fn credentials(args: &Args) -> Result<Option<AuthCredentials>, Box<dyn std::error::Error>> {
    match &args.auth {
        Some(s) => {
            let (u, p) = s.split_once(':').ok_or("--auth takes USER:PASS")?;
            Ok(Some(AuthCredentials::password(u, p)))
        }
        None => Ok(None),
    }
}

/// The message `input` as it goes out, and its envelope: from `--from` to
/// every `--to`.
pub fn outgoing(
    args: &Args,
    input: &[u8],
) -> Result<(Vec<u8>, Envelope<'static>), Box<dyn std::error::Error>> {
    // BDAT sends the bytes as they are, and a message that is not
    // BODY=BINARYMIME must be in canonical CRLF form (RFC 3030 §3), so line
    // ends are made CRLF here, as DATA's encoder does: the same input then
    // arrives the same over DATA and over BDAT.
    let message = line_ends::crlf_line_ends(input);
    let from = if args.from.is_empty() {
        ReversePath::Null
    } else {
        ReversePath::Mailbox(mailbox(&args.from)?)
    };
    let mut envelope = Envelope::new(from).with_size(message.len() as u64);
    if message.iter().any(|&b| b >= 0x80) {
        envelope = envelope.with_body(BodyType::EightBitMime);
    }
    // UTF-8 header fields (RFC 6532) need SMTPUTF8 as UTF-8 addresses do
    // (RFC 6531 §3.4: the client "MUST supply the SMTPUTF8 parameter" when
    // the message requires it); a server without it is not sent the
    // message.
    if has_8bit_header(&message) {
        envelope = envelope.with_smtputf8(true);
    }
    for to in &args.to {
        envelope = envelope.recipient(ForwardPath::Mailbox(mailbox(to)?));
    }
    Ok((message, envelope))
}

/// Whether the header section of `message` (CRLF line ends), up to its
/// first empty line or the whole message without one, holds an octet
/// above 0x7F: UTF-8 header fields (RFC 6532), which travel only with
/// SMTPUTF8. 8-bit octets in the body alone need only 8BITMIME.
pub fn has_8bit_header(message: &[u8]) -> bool {
    let header = if message.starts_with(b"\r\n") {
        &[][..]
    } else {
        message
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .and_then(|end| message.get(..end))
            .unwrap_or(message)
    };
    header.iter().any(|&b| b >= 0x80)
}

/// One message of a `--message` run: the file it came from, its bytes as
/// they go out and its envelope.
pub struct Outgoing {
    /// The file, as given.
    pub name: String,
    /// The message (CRLF line ends).
    pub message: Vec<u8>,
    /// From `--from` to every `--to`.
    pub envelope: Envelope<'static>,
}

/// Reads every `--message` file, in order.
pub fn read_messages(args: &Args) -> Result<Vec<Outgoing>, Box<dyn std::error::Error>> {
    args.messages
        .iter()
        .map(|path| {
            let input = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let (message, envelope) = outgoing(args, &input)?;
            Ok(Outgoing {
                name: path.display().to_string(),
                message,
                envelope,
            })
        })
        .collect()
}

/// A reply on one line: the code, then each line's text (with its
/// enhanced status code), joined by ` / `.
fn show_owned(reply: &OwnedReply) -> String {
    let lines: Vec<String> = reply
        .lines()
        .map(|(esc, text)| {
            let text = String::from_utf8_lossy(text);
            match esc {
                Some(esc) => format!("{esc} {text}"),
                None => text.into_owned(),
            }
        })
        .collect();
    printable(&format!("{} {}", reply.code(), lines.join(" / ").trim()))
}

/// The line a `--message` run prints for one recipient of a message,
/// from the delivery's report: `recipient <A>: REJECTED ...` for a refusal
/// of RCPT (or of MAIL), `delivery <A>: ACCEPTED|REJECTED ...` with the
/// reply to the message, `recipient <A>: NOT SENT (why)` when no
/// transaction carried it, `delivery <A>: UNKNOWN ...` when the
/// connection ended before the reply to the whole message.
pub fn report_line(report: &RecipientReport) -> String {
    // The path's own brackets: `<a@example.org>`.
    let to = &report.recipient.path;
    match &report.outcome {
        RecipientOutcome::Delivered { reply } => {
            format!("delivery {to}: ACCEPTED {}", show_owned(reply))
        }
        RecipientOutcome::PermanentFailure { stage, reply }
        | RecipientOutcome::TemporaryFailure { stage, reply } => match stage {
            Stage::Rcpt => format!("recipient {to}: REJECTED {}", show_owned(reply)),
            Stage::Mail => format!("recipient {to}: REJECTED {} (MAIL)", show_owned(reply)),
            _ => format!("delivery {to}: REJECTED {}", show_owned(reply)),
        },
        RecipientOutcome::NotAttempted { reason } => {
            format!(
                "recipient {to}: NOT SENT ({})",
                printable(&reason.to_string())
            )
        }
        _ => {
            format!("delivery {to}: UNKNOWN (the connection ended before the reply to the message)")
        }
    }
}

/// What a `--message` run prints and how it ends: one block per message,
/// then a line with the number of connections.
#[derive(Debug, Default)]
pub struct Tally {
    /// Messages reported.
    pub messages: usize,
    /// Messages that reached every recipient.
    pub delivered: usize,
}

impl Tally {
    /// Prints the block of message `index` (from 1), named `name`: a line
    /// naming it, then [`report_line`] for each recipient.
    pub fn record(&mut self, index: usize, name: &str, report: &DeliveryReport) {
        println!("message {index} ({name}):");
        for r in &report.recipients {
            println!("{}", report_line(r));
        }
        self.messages += 1;
        if report.all_delivered() {
            self.delivered += 1;
        }
    }

    /// When the session cannot carry mail (the server refused it, TLS is
    /// required and unavailable, AUTH failed): prints every message's
    /// recipients as `NOT SENT` for `reason`, then the closing line.
    pub fn refused<E: Display>(
        messages: Vec<Outgoing>,
        reason: &NotAttempted,
        quit: Result<(), E>,
    ) -> Exit {
        let mut tally = Tally::default();
        for (i, m) in messages.into_iter().enumerate() {
            let report = Delivery::new(m.envelope).abandon(reason.clone());
            tally.record(i + 1, &m.name, &report);
        }
        tally.finish(1, quit)
    }

    /// Prints the closing line and gives the exit: 0 when every message
    /// reached every recipient, 1 otherwise. An error ending the session
    /// (`quit`) is only a warning: the reports decide.
    pub fn finish<E: Display>(self, connections: usize, quit: Result<(), E>) -> Exit {
        println!(
            "connections: {connections} ({} messages, {} delivered to every recipient)",
            self.messages, self.delivered
        );
        Exit {
            status: if self.delivered == self.messages {
                0
            } else {
                1
            },
            message: quit
                .err()
                .map(|e| format!("warning: {e} (after the messages were sent)")),
        }
    }
}

/// How a `send` run ends: the exit status, and a line for standard error.
#[derive(Debug, PartialEq, Eq)]
pub struct Exit {
    /// 0 when every recipient got the message; 1 when the server refused
    /// it (the message or a recipient, or before the transaction: the
    /// session, the authentication, a required STARTTLS), or cannot take
    /// it (larger than its `SIZE`, 8-bit or UTF-8 without 8BITMIME or
    /// SMTPUTF8: the recipients are printed as `NOT SENT`), or its
    /// `MAILMAX` or a 421 left recipients without a transaction; 2 when
    /// the run failed before the server's verdict on the message.
    pub status: u8,
    /// The error the run ended with (a warning after the verdict).
    pub message: Option<String>,
}

impl Exit {
    /// Prints the message, if any, to standard error and gives the exit
    /// code.
    pub fn finish(self) -> ExitCode {
        if let Some(message) = &self.message {
            eprintln!("send: {}", printable(message));
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
