//! Sends one message read from standard input with one call,
//! `smtp_proto_blocking::client::send`, and prints what became of it for
//! each recipient. No TLS, no AUTH: the shortest useful client (the `send`
//! example does the rest).
//!
//! ```text
//! cargo run -p smtp-proto-blocking --example deliver -- [--bounce FILE] HOST:PORT FROM TO [TO ...] < message.eml
//! ```
//!
//! Exits 0 when every recipient has the message, 1 when one must be
//! bounced, 75 (`EX_TEMPFAIL`) when the others are to be tried again
//! (also when the server cannot be reached at all), 2 on a usage error
//! (a bad address on the command line).
//!
//! With `--bounce FILE`, it also writes to FILE the bounce a relay would
//! send back to FROM (with `MAIL FROM:<>`) for the recipients that failed
//! or are delayed: `smtp_proto::dsn`, one entry per recipient from
//! `dsn::Recipient::from_report`, the whole message returned. No file is
//! written when every recipient has the message (or its fate is unknown),
//! nor when the server could not be reached (nothing was attempted; exit
//! status 75). The server is named as each recipient's `Remote-MTA` only
//! when it is given by a domain name and answered in the session (RFC 3464
//! §2.3.5: not when the connection closed before its greeting).
//!
//! What the server said (its reply texts, and errors that quote them) is
//! printed with control characters escaped: a server cannot drive the
//! terminal through this program's output.

#[path = "../../smtp-proto-tokio/examples/support/printable.rs"]
mod printable;
use printable::printable;

use std::io::Read;
use std::process::ExitCode;

// README: sending a message (start)
use std::net::TcpStream;

use smtp_proto_blocking::client::{send, RunOptions};
use smtp_proto_blocking::smtp_proto::client::{
    Client, ClientConfig, Delivery, DeliveryReport, Envelope, TlsPolicy,
};
use smtp_proto_blocking::smtp_proto::command::{
    BodyType, Domain, ForwardPath, Mailbox, ReversePath,
};

/// Sends `message` from `from` to `to` through the server at `server`.
pub fn deliver(
    server: &str,
    from: &str,
    to: &[String],
    message: &[u8],
) -> Result<DeliveryReport, Box<dyn std::error::Error>> {
    let sender = ReversePath::Mailbox(Mailbox::parse(from)?.into_owned());
    let mut envelope = Envelope::new(sender).with_size(message.len() as u64);
    // 8-bit content only goes to a server that offers 8BITMIME, and says
    // so (RFC 6152 §3); the delivery refuses it for any other.
    if message.iter().any(|&b| b >= 0x80) {
        envelope = envelope.with_body(BodyType::EightBitMime);
    }
    // UTF-8 header fields (RFC 6532), before the first empty line, need
    // SMTPUTF8 as UTF-8 addresses do (RFC 6531 §3.4).
    let mut header = message
        .split(|&b| b == b'\n')
        .take_while(|line| !matches!(line, [] | [b'\r']));
    if header.any(|line| line.iter().any(|&b| b >= 0x80)) {
        envelope = envelope.with_smtputf8(true);
    }
    for rcpt in to {
        envelope = envelope.recipient(ForwardPath::Mailbox(Mailbox::parse(rcpt)?.into_owned()));
    }
    let config = ClientConfig::new(Domain::new("client.example")?).with_tls(TlsPolicy::Off);
    let mut client = Client::new(config);
    let stream = TcpStream::connect(server)?;
    // AUTH (`Delivery::with_auth`), the transactions the server's LIMITS
    // ask for, QUIT: all decided by the delivery.
    let (delivery, options) = (Delivery::new(envelope), RunOptions::default());
    let report = match send(stream, &mut client, delivery, message, &options) {
        Ok(report) => report,
        // The run failed: the report still says who has the message, and
        // `report.error` why the run failed.
        Err(e) => e.report,
    };
    Ok(report)
}
// README: sending a message (end)

use smtp_proto_blocking::smtp_proto::client::{NotAttempted, RecipientOutcome};
use smtp_proto_blocking::smtp_proto::command::Atom;
use smtp_proto_blocking::smtp_proto::dsn::{Bounce, Recipient};
use smtp_proto_blocking::smtp_proto::trace::Timestamp;

/// Writes the bounce for `report`'s failed and delayed recipients to
/// `path`; `Ok(false)` when no recipient calls for one.
pub fn write_bounce(
    path: &str,
    server: &str,
    from: &str,
    report: &DeliveryReport,
    message: &[u8],
) -> Result<bool, Box<dyn std::error::Error>> {
    let entries: Vec<Recipient<'_>> = report
        .recipients
        .iter()
        .filter_map(Recipient::from_report)
        .collect();
    if entries.is_empty() {
        return Ok(false);
    }
    let host = Domain::new("client.example")?;
    let sender = ReversePath::Mailbox(Mailbox::parse(from)?);
    // The server, as `Remote-MTA`, when it is named by a domain and took
    // part in the attempt.
    let remote = server
        .rsplit_once(':')
        .and_then(|(h, _)| Domain::new(h).ok())
        .filter(|d| !d.as_str().bytes().all(|b| b.is_ascii_digit() || b == b'.'))
        .filter(|_| remote_answered(report));
    let now = Timestamp::from_system_time(std::time::SystemTime::now())?;
    let token = Atom::new(format!("{}-{}", now.unix_seconds(), std::process::id()))?;
    let mut bounce = Bounce::new(&host, &sender, now, &token)?;
    for entry in entries {
        let entry = match &remote {
            Some(d) => entry.remote_mta(d)?,
            None => entry,
        }
        .last_attempt(now);
        bounce.push_recipient(entry);
    }
    std::fs::write(path, bounce.write(message)?.as_bytes())?;
    Ok(true)
}

/// Whether the server answered in the session, and so took part in the
/// attempt (RFC 3464 §2.3.5: `Remote-MTA` "MUST NOT be included if no
/// remote MTA was involved"): a transaction was started (MAIL after its
/// greeting and hello), a recipient's outcome quotes one of its replies,
/// or the client refused the message for what its EHLO reply announced.
/// A connection that closed, or timed out, before the greeting gives none
/// of these.
pub fn remote_answered(report: &DeliveryReport) -> bool {
    report.transactions > 0
        || report.recipients.iter().any(|r| {
            r.outcome.reply().is_some()
                || matches!(
                    &r.outcome,
                    RecipientOutcome::NotAttempted {
                        reason: NotAttempted::Refused(_) | NotAttempted::TransactionLimit { .. }
                    }
                )
        })
}

/// One line per recipient. The server's reply texts are its own words,
/// which may hold control characters (an escape sequence a terminal would
/// obey, a CR that hides the start of the line): they are printed with
/// [`printable`].
fn print(report: &DeliveryReport) {
    for r in &report.recipients {
        let to = &r.recipient.path;
        let line = match &r.outcome {
            RecipientOutcome::Delivered { reply } => {
                format!("{to}: delivered: {}", String::from_utf8_lossy(reply.text()))
            }
            RecipientOutcome::Unknown => {
                format!("{to}: unknown: the connection broke before the server's reply")
            }
            RecipientOutcome::NotAttempted { reason } => format!("{to}: not attempted: {reason}"),
            o => {
                let what = if o.is_permanent_failure() {
                    "bounce"
                } else {
                    "retry"
                };
                let reply = o.reply().map(|r| {
                    let code = u16::from(r.code());
                    format!("{code} {}", String::from_utf8_lossy(r.text()))
                });
                format!("{to}: {what}: {}", reply.unwrap_or_default())
            }
        };
        println!("{}", printable(&line));
    }
}

/// The exit status when [`deliver`] fails before it has a report: 75
/// (`EX_TEMPFAIL`) when the server could not be reached (its name did not
/// resolve, the connection was refused or timed out), for nothing was
/// sent and every recipient is to be tried again; 2 for a bad argument
/// (an address, or a server not given as `HOST:PORT`), which no retry
/// mends.
pub fn failure_status(error: &(dyn std::error::Error + 'static)) -> u8 {
    match error.downcast_ref::<std::io::Error>() {
        Some(e) if e.kind() != std::io::ErrorKind::InvalidInput => 75,
        _ => 2,
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let bounce = match args.first().map(String::as_str) {
        Some("--bounce") if args.len() > 1 => {
            let path = args.remove(1);
            args.remove(0);
            Some(path)
        }
        _ => None,
    };
    let usage = "usage: deliver [--bounce FILE] HOST:PORT FROM TO [TO ...] < message";
    let [server, from, to @ ..] = &args[..] else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    if to.is_empty() {
        eprintln!("{usage}");
        return ExitCode::from(2);
    }
    let mut message = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut message) {
        eprintln!("deliver: {e}");
        return ExitCode::from(2);
    }
    match deliver(server, from, to, &message) {
        Ok(report) => {
            if let Some(error) = &report.error {
                eprintln!("deliver: {}", printable(error));
            }
            print(&report);
            if let Some(path) = &bounce {
                match write_bounce(path, server, from, &report, &message) {
                    Ok(true) => println!("bounce written to {path}"),
                    Ok(false) => {}
                    Err(e) => {
                        eprintln!("deliver: bounce: {}", printable(&e.to_string()));
                        return ExitCode::from(2);
                    }
                }
            }
            if report.all_delivered() {
                ExitCode::SUCCESS
            } else if report.permanent_failures().next().is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::from(75)
            }
        }
        Err(e) => {
            eprintln!("deliver: {}", printable(&e.to_string()));
            ExitCode::from(failure_status(e.as_ref()))
        }
    }
}
