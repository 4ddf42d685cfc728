//! Writes a delivery status notification (bounce) with `smtp_proto::dsn`:
//! the original message from standard input, the bounce to standard
//! output, and `body=<BODY> returned=<what> boundary=<boundary>
//! global=<yes|no> smtputf8=<yes|no>` on standard error (`global`: an
//! internationalized report, RFC 6533; `smtputf8`: it must be sent with
//! SMTPUTF8).
//!
//! Addresses may be UTF-8 (`--sender ñoño@example.org`, `--rcpt
//! 用户@example.com`, `--orcpt 'utf-8;用户@example.com'`): the bounce is
//! then written with the global types.
//!
//! ```text
//! cargo run -q -p smtp-proto --example bounce -- \
//!     --reporting-mta mx.example.org --sender alice@example.org \
//!     --date 1795723722 --token 4F1A2B [--envid XTEXT] [--ret full|hdrs] \
//!     [--received-from HOST] [--arrival UNIX] [--max-returned OCTETS] \
//!     [--from ADDR] [--subject TEXT] [--message-id ID] \
//!     --rcpt bob@example.net --action failed --reply '550 5.1.1 No such user' \
//!     [--orcpt 'rfc822;bob+2Bx@example.net'] [--remote-mta HOST] \
//!     [--last-attempt UNIX] [--retry-until UNIX] \
//!     [--rcpt ... --action ... (--reply TEXT | --status X.Y.Z) ...] < message.eml
//! ```
//!
//! Options after a `--rcpt` belong to that recipient; an option given
//! twice (for one recipient) is a usage error. A reply of several
//! lines is given with a line feed between them (`$'550-a\n550 b'`); times
//! are seconds since the epoch, shown in UTC. The command line is checked
//! before standard input is read. Exit status: 0 when written, 1 when the
//! library refused a value or standard input or output failed (the reason
//! on standard error), 2 for a usage error (with the usage). `--help`
//! prints the usage.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use smtp_proto::command::{
    Atom, Domain, EnvId, ForwardPath, Mailbox, Orcpt, Ret, ReversePath, Unitext, XText,
};
use smtp_proto::dsn::{Action, Bounce, Recipient};
use smtp_proto::reply::Reply;
use smtp_proto::status::EnhancedStatusCode;
use smtp_proto::trace::Timestamp;

#[path = "support/cli.rs"]
mod cli;
use cli::utf8_args;

const USAGE: &str = "usage: bounce --reporting-mta HOST --sender ADDR --date UNIX --token ATOM
              [--envid XTEXT] [--ret full|hdrs] [--received-from HOST] [--arrival UNIX]
              [--max-returned OCTETS] [--from ADDR] [--subject TEXT] [--message-id ID]
              --rcpt ADDR --action failed|delayed|delivered|relayed|expanded
              (--reply TEXT | --status X.Y.Z) [--orcpt TYPE;ADDR] [--remote-mta HOST]
              [--last-attempt UNIX] [--retry-until UNIX] [--rcpt ...] < message";

/// One recipient's options, as given.
#[derive(Default)]
struct RcptArgs {
    address: String,
    action: Option<String>,
    reply: Option<String>,
    status: Option<String>,
    orcpt: Option<String>,
    remote_mta: Option<String>,
    last_attempt: Option<String>,
    retry_until: Option<String>,
}

#[derive(Default)]
struct Args {
    reporting_mta: Option<String>,
    sender: Option<String>,
    date: Option<String>,
    token: Option<String>,
    envid: Option<String>,
    ret: Option<String>,
    received_from: Option<String>,
    arrival: Option<String>,
    max_returned: Option<String>,
    from: Option<String>,
    subject: Option<String>,
    message_id: Option<String>,
    rcpts: Vec<RcptArgs>,
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let mut args = Args::default();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .clone();
        let rcpt = args.rcpts.last_mut();
        let slot = match (flag.as_str(), rcpt) {
            ("--rcpt", _) => {
                args.rcpts.push(RcptArgs {
                    address: value,
                    ..RcptArgs::default()
                });
                continue;
            }
            ("--action", Some(r)) => &mut r.action,
            ("--reply", Some(r)) => &mut r.reply,
            ("--status", Some(r)) => &mut r.status,
            ("--orcpt", Some(r)) => &mut r.orcpt,
            ("--remote-mta", Some(r)) => &mut r.remote_mta,
            ("--last-attempt", Some(r)) => &mut r.last_attempt,
            ("--retry-until", Some(r)) => &mut r.retry_until,
            ("--reporting-mta", _) => &mut args.reporting_mta,
            ("--sender", _) => &mut args.sender,
            ("--date", _) => &mut args.date,
            ("--token", _) => &mut args.token,
            ("--envid", _) => &mut args.envid,
            ("--ret", _) => &mut args.ret,
            ("--received-from", _) => &mut args.received_from,
            ("--arrival", _) => &mut args.arrival,
            ("--max-returned", _) => &mut args.max_returned,
            ("--from", _) => &mut args.from,
            ("--subject", _) => &mut args.subject,
            ("--message-id", _) => &mut args.message_id,
            (other, _) => return Err(format!("unknown or misplaced option {other}")),
        };
        // A second value would replace the first without a word.
        if slot.is_some() {
            return Err(format!("{flag} given twice"));
        }
        *slot = Some(value);
    }
    Ok(args)
}

fn need<'s>(v: &'s Option<String>, what: &str) -> Result<&'s str, String> {
    v.as_deref().ok_or_else(|| format!("{what} is required"))
}

fn time(v: &str) -> Result<Timestamp, String> {
    let secs: i64 = v.parse().map_err(|_| format!("bad time {v:?}"))?;
    Timestamp::new(secs, 0).map_err(|e| e.to_string())
}

fn action(v: &str) -> Result<Action, String> {
    Ok(match v {
        "failed" => Action::Failed,
        "delayed" => Action::Delayed,
        "delivered" => Action::Delivered,
        "relayed" => Action::Relayed,
        "expanded" => Action::Expanded,
        other => return Err(format!("unknown action {other:?}")),
    })
}

/// A reply given with LF between its lines, as wire bytes.
fn reply_bytes(text: &str) -> Vec<u8> {
    let mut wire = Vec::new();
    for line in text.trim_end_matches('\n').split('\n') {
        wire.extend_from_slice(line.trim_end_matches('\r').as_bytes());
        wire.extend_from_slice(b"\r\n");
    }
    wire
}

fn orcpt(v: &str) -> Result<Orcpt<'_>, String> {
    let (kind, addr) = v
        .split_once(';')
        .ok_or_else(|| format!("ORCPT {v:?} is not TYPE;ADDRESS"))?;
    let bad = |e| format!("ORCPT {v:?}: {e}");
    if kind.eq_ignore_ascii_case("utf-8") && !addr.is_ascii() {
        return Orcpt::utf8(Unitext::new(addr).map_err(bad)?).map_err(bad);
    }
    Orcpt::new(
        Atom::new(kind).map_err(bad)?,
        XText::new(addr).map_err(bad)?,
    )
    .map_err(bad)
}

/// What a recipient's `--reply` or `--status` gave.
enum Outcome<'a> {
    /// The server's reply (`--reply`).
    Reply(Reply<'a>),
    /// A status code alone (`--status`).
    Status(EnhancedStatusCode),
}

/// Writes the bounce the command line `argv` asks for, returning
/// `original`, to `out`. `Err` for a usage error (exit status 2), `Ok(Err)`
/// when the library refused a value or `out` failed (exit status 1).
pub fn run(
    argv: &[String],
    original: &[u8],
    out: &mut dyn Write,
) -> Result<Result<(), String>, String> {
    run_reading(argv, || Ok(original.to_vec()), out)
}

/// As [`run`], with the original message from `read`, called once the
/// command line is found good; its `Err` is a failure (exit status 1).
pub fn run_reading(
    argv: &[String],
    read: impl FnOnce() -> Result<Vec<u8>, String>,
    out: &mut dyn Write,
) -> Result<Result<(), String>, String> {
    let args = parse_args(argv)?;
    let host = Domain::new(need(&args.reporting_mta, "--reporting-mta")?)
        .map_err(|e| format!("--reporting-mta: {e}"))?;
    let sender = match need(&args.sender, "--sender")? {
        "" | "<>" => ReversePath::Null,
        s => ReversePath::Mailbox(Mailbox::parse(s).map_err(|e| format!("--sender: {e}"))?),
    };
    let date = time(need(&args.date, "--date")?)?;
    let token = Atom::new(need(&args.token, "--token")?).map_err(|e| format!("--token: {e}"))?;
    let envid = match &args.envid {
        Some(v) => Some(
            XText::new(v.as_str())
                .and_then(EnvId::new)
                .map_err(|e| format!("--envid: {e}"))?,
        ),
        None => None,
    };
    let received_from = match &args.received_from {
        Some(v) => Some(Domain::new(v.as_str()).map_err(|e| format!("--received-from: {e}"))?),
        None => None,
    };
    let from = match &args.from {
        Some(v) => Some(Mailbox::parse(v).map_err(|e| format!("--from: {e}"))?),
        None => None,
    };
    if args.rcpts.is_empty() {
        return Err("at least one --rcpt is required".into());
    }
    let ret = match args.ret.as_deref() {
        None => None,
        Some("full" | "FULL") => Some(Ret::Full),
        Some("hdrs" | "HDRS") => Some(Ret::Hdrs),
        Some(other) => return Err(format!("--ret {other:?}: full or hdrs")),
    };
    let max_returned = match &args.max_returned {
        Some(m) => Some(
            m.parse::<usize>()
                .map_err(|_| "--max-returned: a number".to_owned())?,
        ),
        None => None,
    };
    let arrival = args.arrival.as_deref().map(time).transpose()?;
    // Everything the recipients borrow, made first; every value of the
    // command line is checked here, so that a bad one is a usage error.
    let mut paths = Vec::new();
    let mut orcpts = Vec::new();
    let mut remotes = Vec::new();
    let mut replies = Vec::new();
    for r in &args.rcpts {
        paths.push(ForwardPath::Mailbox(
            Mailbox::parse(&r.address).map_err(|e| format!("--rcpt {}: {e}", r.address))?,
        ));
        orcpts.push(r.orcpt.as_deref().map(orcpt).transpose()?);
        remotes.push(
            r.remote_mta
                .as_deref()
                .map(Domain::new)
                .transpose()
                .map_err(|e| format!("--remote-mta: {e}"))?,
        );
        replies.push(r.reply.as_deref().map(reply_bytes));
    }
    let mut given = Vec::new();
    for (r, wire) in args.rcpts.iter().zip(&replies) {
        let act = action(need(&r.action, "--action")?)?;
        let outcome = match (wire, &r.status) {
            (Some(wire), _) => {
                Outcome::Reply(Reply::parse(wire).map_err(|e| format!("--reply: {e}"))?)
            }
            (None, Some(s)) => Outcome::Status(
                EnhancedStatusCode::parse(s.as_bytes()).ok_or_else(|| format!("--status {s:?}"))?,
            ),
            (None, None) => return Err("each --rcpt needs --reply or --status".into()),
        };
        let last_attempt = r.last_attempt.as_deref().map(time).transpose()?;
        let retry_until = r.retry_until.as_deref().map(time).transpose()?;
        given.push((act, outcome, last_attempt, retry_until));
    }

    // From here on, a refusal is the library's, or the input's or the
    // output's: exit status 1.
    let original = match read() {
        Ok(original) => original,
        Err(e) => return Ok(Err(e)),
    };
    let built = (|| -> Result<Bounce<'_>, String> {
        let mut bounce = Bounce::new(&host, &sender, date, &token).map_err(|e| e.to_string())?;
        if let Some(e) = &envid {
            bounce = bounce.envelope_id(e);
        }
        if let Some(h) = &received_from {
            bounce = bounce.received_from_mta(h).map_err(|e| e.to_string())?;
        }
        if let Some(f) = &from {
            bounce = bounce.from(f).map_err(|e| e.to_string())?;
        }
        if let Some(s) = &args.subject {
            bounce = bounce.subject(s).map_err(|e| e.to_string())?;
        }
        if let Some(m) = &args.message_id {
            bounce = bounce.message_id(m).map_err(|e| e.to_string())?;
        }
        if let Some(a) = arrival {
            bounce = bounce.arrival_date(a);
        }
        if ret.is_some() {
            bounce = bounce.ret(ret);
        }
        if let Some(m) = max_returned {
            bounce = bounce.max_returned_len(m);
        }
        for (i, (act, outcome, last_attempt, retry_until)) in given.iter().enumerate() {
            let mut rcpt = match outcome {
                Outcome::Reply(reply) => Recipient::from_reply(&paths[i], *act, reply),
                Outcome::Status(status) => Recipient::new(&paths[i], *act, *status),
            }
            .map_err(|e| e.to_string())?;
            if let Some(o) = &orcpts[i] {
                rcpt = rcpt.original_recipient(o);
            }
            if let Some(h) = &remotes[i] {
                rcpt = rcpt.remote_mta(h).map_err(|e| e.to_string())?;
            }
            if let Some(t) = last_attempt {
                rcpt = rcpt.last_attempt(*t);
            }
            if let Some(t) = retry_until {
                rcpt = rcpt.will_retry_until(*t).map_err(|e| e.to_string())?;
            }
            bounce = bounce.recipient(rcpt);
        }
        Ok(bounce)
    })();
    let report = match built.and_then(|b| b.write(&original).map_err(|e| e.to_string())) {
        Ok(report) => report,
        Err(e) => return Ok(Err(format!("refused: {e}"))),
    };
    if let Err(e) = out.write_all(report.as_bytes()).and_then(|()| out.flush()) {
        return Ok(Err(format!("writing standard output: {e}")));
    }
    let yes = |b: bool| if b { "yes" } else { "no" };
    eprintln!(
        "body={} returned={:?} boundary={} global={} smtputf8={}",
        report.body_type().as_str(),
        report.returned(),
        report.boundary(),
        yes(report.is_global()),
        yes(report.requires_smtputf8())
    );
    Ok(Ok(()))
}

fn main() -> ExitCode {
    let argv = match utf8_args() {
        Ok(argv) => argv,
        Err(e) => {
            eprintln!("bounce: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Every option takes a value, so options stand at even places; `--help`
    // as a value (`--subject --help`) is a value.
    if argv.iter().step_by(2).any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let read = || {
        let mut original = Vec::new();
        io::stdin()
            .read_to_end(&mut original)
            .map_err(|e| format!("reading standard input: {e}"))?;
        Ok(original)
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match run_reading(&argv, read, &mut out) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("bounce: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("bounce: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
