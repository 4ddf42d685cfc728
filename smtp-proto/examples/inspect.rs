//! A wire inspector: decodes raw SMTP bytes from standard input the way a
//! peer would and prints one line per item.
//!
//! ```text
//! cargo run -q -p smtp-proto --example inspect -- commands < FILE
//! ```
//!
//! `commands` frames and decodes the input as a server would and prints, per
//! input line, `OK <the command re-encoded, without CRLF>` or
//! `ERR <reply code> <enhanced code> <short reason>`.

use std::io::{Read, Write};
use std::process::ExitCode;

use smtp_proto::command::CommandDecoder;

fn commands(input: &[u8], out: &mut impl Write) -> std::io::Result<()> {
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

fn main() -> ExitCode {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("inspect: cannot read standard input: {e}");
        return ExitCode::FAILURE;
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = match mode.as_str() {
        "commands" => commands(&input, &mut out),
        other => {
            eprintln!("inspect: unknown mode {other:?}; use: commands");
            return ExitCode::from(2);
        }
    };
    match result.and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("inspect: {e}");
            ExitCode::FAILURE
        }
    }
}
