//! Reads SMTP protocol text on stdin and prints what the codecs make of it.
//!
//! ```text
//! cargo run -q -p smtp-proto --example inspect -- replies < FILE
//! cargo run -q -p smtp-proto --example inspect -- ehlo < FILE
//! ```
//!
//! `replies` prints one line per reply, `OK <code> <enhanced code or -> <lines>
//! <first line text>`, or `ERR <reason>` for a bad one, and then goes on at
//! the next line. `ehlo` reads one EHLO reply and prints `OK <domain>` and one
//! `CAP <KEYWORD> [params...]` line per capability, or `ERR <reason>`.

use std::io::{self, Read, Write};

use smtp_proto::reply::{Decoded, EhloReply, Reply, ReplyDecoder};

/// Runs one mode over `input`, writing the report to `out`. An unknown mode
/// is an `Err` with a message for the user.
pub fn run(mode: &str, input: &[u8], out: &mut dyn Write) -> Result<(), String> {
    let result = match mode {
        "replies" => replies(input, out),
        "ehlo" => ehlo(input, out),
        other => {
            return Err(format!(
                "unknown mode {other:?} (expected \"replies\" or \"ehlo\")"
            ))
        }
    };
    result.map_err(|e| format!("write error: {e}"))
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

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let mut input = Vec::new();
    if let Err(e) = io::stdin().read_to_end(&mut input) {
        eprintln!("inspect: cannot read stdin: {e}");
        std::process::exit(2);
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if let Err(msg) = run(&mode, &input, &mut out) {
        eprintln!("inspect: {msg}");
        std::process::exit(2);
    }
}
