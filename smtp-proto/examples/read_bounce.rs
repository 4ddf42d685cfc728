//! Reads a bounce (a delivery status notification) with
//! `smtp_proto::dsn::parse_report`: the whole message from standard input,
//! and on standard output one line per recipient, then a line for the
//! returned message and one per problem: of the per-message fields
//! (`block=-`), of a recipient block that could not be read, or of one
//! read all the same (a status that does not go with its action, a field
//! not read or read with U+FFFD; that recipient is listed):
//!
//! ```text
//! recipient <bob@example.net> action=failed status=5.1.1 diagnostic="smtp; 550 5.1.1 No such user"
//! returned type=message/rfc822 message-id=<m1@example.org>
//! problem block=1 error="the Status field does not parse"
//! ```
//!
//! The first line says what was read: `report type=<report-type>
//! global=<yes|no> complete=<yes|no> reporting-mta=<name>
//! envid=<Original-Envelope-Id>` (`-` for a value not there). With
//! `--status`, standard input is the delivery status fields alone
//! (`dsn::parse_delivery_status`), and only the recipient and problem
//! lines are written.
//!
//! ```text
//! cargo run -q -p smtp-proto --example read_bounce [-- --status] < bounce.eml
//! ```
//!
//! Every value taken from the input is printed escaped, so that nothing in
//! it reaches a terminal raw and nothing is lost: `\` as `\\`, `"` as
//! `\"`, an ASCII control character as `\xHH`, any other control or
//! bidirectional-override character as its code point in hex (`\u{85}`),
//! an octet that is not UTF-8 as `\xHH` (`dsn` hands most values over as
//! text already, such an octet replaced by U+FFFD).
//!
//! Exit status: 0 when read, 1 when the input is no bounce that reads or
//! standard input or output fails (the reason on standard error), 2 for a
//! usage error. `--help` prints the usage.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use smtp_proto::dsn::{parse_delivery_status, parse_report, DeliveryStatus};

#[path = "support/cli.rs"]
mod cli;
use cli::utf8_args;

const USAGE: &str = "usage: read_bounce [--status] < message";

/// `value` as it is printed, `"` escaped too (see the module
/// documentation).
fn esc(value: impl AsRef<[u8]>) -> String {
    cli::escape(value.as_ref(), true)
}

fn main() -> ExitCode {
    let args = match utf8_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("read_bounce: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let status_only = match args.as_slice() {
        [] => false,
        [flag] if flag == "--status" => true,
        [flag] if flag == "--help" || flag == "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut input = Vec::new();
    if let Err(e) = io::stdin().read_to_end(&mut input) {
        eprintln!("read_bounce: reading standard input: {e}");
        return ExitCode::from(1);
    }
    let mut out = String::new();
    let status = if status_only {
        match parse_delivery_status(&input) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("read_bounce: not read: {}", esc(e.to_string()));
                return ExitCode::from(1);
            }
        }
    } else {
        let report = match parse_report(&input) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("read_bounce: not read: {}", esc(e.to_string()));
                return ExitCode::from(1);
            }
        };
        let yes = |b: bool| if b { "yes" } else { "no" };
        let m = &report.status.message;
        out.push_str(&format!(
            "report type={} global={} complete={} reporting-mta={} envid={}\n",
            report.report_type.as_deref().map_or("-".into(), esc),
            yes(report.global),
            yes(report.complete),
            m.reporting_mta
                .as_ref()
                .map_or("-".into(), |v| esc(&v.value)),
            m.original_envelope_id.as_deref().map_or("-".into(), esc),
        ));
        recipients(&mut out, &report.status);
        if let Some(r) = &report.returned {
            out.push_str(&format!(
                "returned type={} message-id={}\n",
                esc(&r.content_type),
                r.message_id.as_deref().map_or("-".into(), esc)
            ));
        }
        problems(&mut out, &report.status);
        return write(&out);
    };
    recipients(&mut out, &status);
    problems(&mut out, &status);
    write(&out)
}

fn recipients(out: &mut String, status: &DeliveryStatus) {
    for r in &status.recipients {
        out.push_str(&format!(
            "recipient <{}> action={} status={}",
            esc(r.address()),
            esc(r.action.to_string()),
            esc(r.status.to_string())
        ));
        if let Some(o) = &r.original_recipient {
            out.push_str(&format!(" original=<{}>", esc(o.address())));
        }
        if let Some(d) = &r.diagnostic_code {
            out.push_str(&format!(
                " diagnostic=\"{}; {}\"",
                esc(&d.kind),
                esc(&d.value)
            ));
        }
        out.push('\n');
    }
}

fn problems(out: &mut String, status: &DeliveryStatus) {
    for e in &status.message.problems {
        out.push_str(&format!(
            "problem block=- error=\"{}\"\n",
            esc(e.to_string())
        ));
    }
    for p in &status.problems {
        out.push_str(&format!(
            "problem block={} error=\"{}\"\n",
            p.block,
            esc(p.error.to_string())
        ));
    }
}

fn write(out: &str) -> ExitCode {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("read_bounce: writing standard output: {e}");
            ExitCode::from(1)
        }
    }
}
