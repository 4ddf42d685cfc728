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
//!   `CAP <KEYWORD> [params...]` line per capability, or `ERR <reason>`;
//!   then `ERR capability line not UTF-8: <line>` for each capability line
//!   that was skipped because it is not UTF-8.
//!
//! What comes from the input is printed escaped, so that nothing reaches a
//! terminal raw and nothing is lost: `\` as `\\`, an ASCII control
//! character as `\xHH`, any other control or bidirectional-override
//! character as its code point in hex (`\u{85}`), an octet that is not
//! UTF-8 as `\xHH`.
//!
//! Exit status: 0 when inspected (bad input is reported on standard
//! output, it is no failure), 1 when standard input or output fails, 2 for
//! a usage error (a missing or unknown mode, an extra argument). `--help`
//! prints the usage.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use smtp_proto::command::CommandDecoder;
use smtp_proto::reply::{Decoded, EhloReply, Reply, ReplyDecoder};

#[path = "support/cli.rs"]
mod cli;
use cli::utf8_args;

const USAGE: &str = "usage: inspect commands|replies|ehlo < FILE";

/// The modes [`run`] knows.
pub const MODES: [&str; 3] = ["commands", "replies", "ehlo"];

/// `bytes` as they are printed (see the module documentation).
fn esc(bytes: impl AsRef<[u8]>) -> String {
    cli::escape(bytes.as_ref(), false)
}

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
    // Octets taken since the last line printed: the decoder takes the
    // start of an over-long line without saying so until its CRLF comes.
    let mut unreported = 0;
    loop {
        let step = decoder.decode(rest);
        unreported += step.consumed;
        if step.item.is_some() {
            unreported = 0;
        }
        match step.item {
            Some(Ok(cmd)) => {
                let wire = cmd.to_bytes();
                writeln!(out, "OK {}", esc(&wire[..wire.len() - 2]))?;
            }
            Some(Err(e)) => writeln!(
                out,
                "ERR {} {} {}",
                e.reply_code(),
                e.enhanced_code(),
                esc(e.to_string())
            )?,
            None if step.consumed == 0 => break,
            None => {}
        }
        rest = &rest[step.consumed..];
    }
    if !rest.is_empty() || unreported > 0 {
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
                    write!(out, " {}", esc(reply.text()))?;
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
                writeln!(out, "ERR {}", esc(e.to_string()))?;
                pos += e.consumed();
            }
        }
    }
    Ok(())
}

fn ehlo(input: &[u8], out: &mut dyn Write) -> io::Result<()> {
    let reply = match Reply::parse(input) {
        Ok(reply) => reply,
        Err(e) => return writeln!(out, "ERR {}", esc(e.to_string())),
    };
    let ehlo = match EhloReply::parse(&reply) {
        Ok(ehlo) => ehlo,
        Err(e) => return writeln!(out, "ERR {}", esc(e.to_string())),
    };
    writeln!(out, "OK {}", esc(ehlo.domain()))?;
    for cap in ehlo.capabilities() {
        writeln!(out, "CAP {}", esc(cap.to_string()))?;
    }
    // The lines the library skipped (not UTF-8): named, not lost.
    let mut named = 0;
    for line in reply.lines().skip(1) {
        if std::str::from_utf8(line.raw_text()).is_err() {
            writeln!(
                out,
                "ERR capability line not UTF-8: {}",
                esc(line.raw_text())
            )?;
            named += 1;
        }
    }
    if named != ehlo.invalid_lines() {
        writeln!(out, "ERR {} capability lines skipped", ehlo.invalid_lines())?;
    }
    Ok(())
}

fn main() -> ExitCode {
    // The arguments first: a usage error must not wait for standard input.
    let args = match utf8_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("inspect: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mode = match args.as_slice() {
        [flag] if flag == "--help" || flag == "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [mode] if MODES.contains(&mode.as_str()) => mode.as_str(),
        [other] => {
            eprintln!("inspect: unknown mode {:?}\n{USAGE}", esc(other));
            return ExitCode::from(2);
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut input = Vec::new();
    if let Err(e) = io::stdin().read_to_end(&mut input) {
        eprintln!("inspect: reading standard input: {e}");
        return ExitCode::FAILURE;
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    // The mode is known, so an error here is standard output's.
    let written = run(mode, &input, &mut out)
        .and_then(|()| out.flush().map_err(|e| format!("write error: {e}")));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("inspect: standard output: {e}");
            ExitCode::FAILURE
        }
    }
}
