//! Sends one message read from standard input with one call,
//! `smtp_proto_blocking::client::send`, and prints what became of it for
//! each recipient. No TLS, no AUTH: the shortest useful client (the `send`
//! example does the rest).
//!
//! ```text
//! cargo run -p smtp-proto-blocking --example deliver -- HOST:PORT FROM TO [TO ...] < message.eml
//! ```
//!
//! Exits 0 when every recipient has the message, 1 when one must be
//! bounced, 75 (`EX_TEMPFAIL`) when the others are to be tried again.

use std::io::Read;
use std::process::ExitCode;

// README: sending a message (start)
use std::net::TcpStream;

use smtp_proto_blocking::client::{send, RunOptions};
use smtp_proto_blocking::smtp_proto::client::{
    Client, ClientConfig, Delivery, DeliveryReport, Envelope, TlsPolicy,
};
use smtp_proto_blocking::smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};

/// Sends `message` from `from` to `to` through the server at `server`.
fn deliver(
    server: &str,
    from: &str,
    to: &[String],
    message: &[u8],
) -> Result<DeliveryReport, Box<dyn std::error::Error>> {
    let sender = ReversePath::Mailbox(Mailbox::parse(from)?.into_owned());
    let mut envelope = Envelope::new(sender).with_size(message.len() as u64);
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
        // The run failed: the report still says who has the message.
        Err(e) => {
            eprintln!("deliver: {e}");
            e.report
        }
    };
    Ok(report)
}
// README: sending a message (end)

use smtp_proto_blocking::smtp_proto::client::RecipientOutcome;

/// One line per recipient.
fn print(report: &DeliveryReport) {
    for r in &report.recipients {
        let to = &r.recipient.path;
        match &r.outcome {
            RecipientOutcome::Delivered { reply } => {
                println!("{to}: delivered: {}", String::from_utf8_lossy(reply.text()));
            }
            RecipientOutcome::Unknown => {
                println!("{to}: unknown: the connection broke before the server's reply");
            }
            RecipientOutcome::NotAttempted { reason } => println!("{to}: not attempted: {reason}"),
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
                println!("{to}: {what}: {}", reply.unwrap_or_default());
            }
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, from, to @ ..] = &args[..] else {
        eprintln!("usage: deliver HOST:PORT FROM TO [TO ...] < message");
        return ExitCode::from(2);
    };
    if to.is_empty() {
        eprintln!("usage: deliver HOST:PORT FROM TO [TO ...] < message");
        return ExitCode::from(2);
    }
    let mut message = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut message) {
        eprintln!("deliver: {e}");
        return ExitCode::from(2);
    }
    match deliver(server, from, to, &message) {
        Ok(report) => {
            print(&report);
            if report.all_delivered() {
                ExitCode::SUCCESS
            } else if report.permanent_failures().next().is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::from(75)
            }
        }
        Err(e) => {
            eprintln!("deliver: {e}");
            ExitCode::from(2)
        }
    }
}
