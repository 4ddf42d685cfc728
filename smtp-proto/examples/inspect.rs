//! A wire inspector: decodes raw SMTP bytes from standard input the way a
//! peer would and prints one line per item.
//!
//! ```text
//! cargo run -q -p smtp-proto --example inspect -- commands < FILE
//! cargo run -q -p smtp-proto --example inspect -- replies < FILE
//! cargo run -q -p smtp-proto --example inspect -- ehlo < FILE
//! ```
//!
//! * `commands` frames and decodes the input as a server would and prints,
//!   per input line, `OK <the command re-encoded, without CRLF>` or
//!   `ERR <reply code> <enhanced code> <short reason>`.
//! * `replies` decodes the input as a client would and prints one line per
//!   reply, `OK <code> <enhanced code or -> <lines> <first line text>`, or
//!   `ERR <reason>` for a bad one, and then goes on at the next line.
//! * `ehlo` reads one EHLO reply and prints `OK <domain>` and one
//!   `CAP <KEYWORD> [params...]` line per capability, or `ERR <reason>`.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use smtp_proto::command::CommandDecoder;
use smtp_proto::reply::{Decoded, EhloReply, Reply, ReplyDecoder};

/// Runs one mode over `input`, writing the report to `out`. An unknown mode
/// is an `Err` with a message for the user.
pub fn run(mode: &str, input: &[u8], out: &mut dyn Write) -> Result<(), String> {
    let result = match mode {
        "commands" => commands(input, out),
        "replies" => replies(input, out),
        "ehlo" => ehlo(input, out),
        other => {
            return Err(format!(
                "unknown mode {other:?}; use: commands, replies, ehlo"
            ))
        }
    };
    result.map_err(|e| format!("write error: {e}"))
}

fn commands(input: &[u8], out: &mut dyn Write) -> io::Result<()> {
    let mut decoder = CommandDecoder::default();
    let mut rest = input;
    loop {
        let step = decoder.decode(rest);
        match step.item {
            Some(Ok(cmd)) => {
                let wire = cmd.to_bytes();
                out.write_all(b"OK ")?;
                out.write_all(&wire[..wire.len() - 2])?;
                out.write_all(b"\n")?;
            }
            Some(Err(e)) => writeln!(out, "ERR {} {} {e}", e.reply_code(), e.enhanced_code())?,
            None if step.consumed == 0 => break,
            None => {}
        }
        rest = &rest[step.consumed..];
    }
    if !rest.is_empty() {
        writeln!(out, "ERR 500 5.5.2 incomplete line at end of input")?;
    }
    Ok(())
}

fn replies(input: &[u8], out: &mut dyn Write) -> io::Result<()> {
    let mut decoder = ReplyDecoder::new();
    let mut pos = 0;
    while pos < input.len() {
        let rest = &input[pos..];
        match decoder.decode(rest) {
            Ok(Decoded::Reply { reply, consumed }) => {
                let enhanced = reply
                    .enhanced_code()
                    .map_or_else(|| "-".to_owned(), |c| c.to_string());
                write!(
                    out,
                    "OK {} {} {}",
                    reply.code(),
                    enhanced,
                    reply.line_count()
                )?;
                if !reply.text().is_empty() {
                    write!(out, " {}", String::from_utf8_lossy(reply.text()))?;
                }
                writeln!(out)?;
                pos += consumed;
            }
            Ok(Decoded::Skipped { consumed }) => pos += consumed,
            Ok(Decoded::Incomplete) => {
                writeln!(out, "ERR incomplete reply")?;
                break;
            }
            Err(e) => {
                writeln!(out, "ERR {e}")?;
                pos += e.consumed();
            }
        }
    }
    Ok(())
}

fn ehlo(input: &[u8], out: &mut dyn Write) -> io::Result<()> {
    let reply = match Reply::parse(input) {
        Ok(reply) => reply,
        Err(e) => return writeln!(out, "ERR {e}"),
    };
    let ehlo = match EhloReply::parse(&reply) {
        Ok(ehlo) => ehlo,
        Err(e) => return writeln!(out, "ERR {e}"),
    };
    writeln!(out, "OK {}", ehlo.domain())?;
    for cap in ehlo.capabilities() {
        writeln!(out, "CAP {cap}")?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let mut input = Vec::new();
    if let Err(e) = io::stdin().read_to_end(&mut input) {
        eprintln!("inspect: cannot read standard input: {e}");
        return ExitCode::FAILURE;
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if let Err(msg) = run(&mode, &input, &mut out) {
        eprintln!("inspect: {msg}");
        return ExitCode::from(2);
    }
    match out.flush() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("inspect: {e}");
            ExitCode::FAILURE
        }
    }
}
