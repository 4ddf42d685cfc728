//! Runs one benchmark's work a fixed number of times, for profilers.
//!
//! Wall-clock figures on a shared machine swing too much to judge small
//! changes; an instruction count does not. Run under callgrind:
//!
//! ```sh
//! cargo build --profile bench -p smtp-proto-benches --bin profile
//! valgrind --tool=callgrind target/release/profile command_parse smtp-proto 1
//! ```
//!
//! and divide the instructions spent in the `work` function by the item
//! count printed on stderr (commands, replies or bytes). Without a profiler
//! it prints the fastest iteration's time, a rough figure on a busy machine.
//!
//! Arguments: `<group> <function> [iterations]`, with the group and
//! function names of `benches/smtp.rs`; `command_line <n>` parses line `n`
//! (from 0) of the command sample, repeated, to see what each command costs;
//! `command_line_stalwart <n>` does the same with the published parser.
//! `command_grouped <function>` (`smtp-proto` or `stalwart`) parses the
//! command stream's lines sorted by sample line (every copy of line 0, then
//! of line 1, ...): the same commands and bytes as `command_parse`, so
//! the difference between the two is what the mix of commands costs.

use std::hint::black_box;
use std::process::ExitCode;

use smtp_proto_benches::inputs::{Inputs, READ_LEN};
use smtp_proto_benches::{memcpy, ours, stalwart};

/// Does the work of one benchmark iteration; returns the number of items.
#[inline(never)]
fn work(inputs: &Inputs, group: &str, function: &str, out: &mut Vec<u8>) -> Option<usize> {
    let n = match (group, function) {
        ("command_parse", "smtp-proto") => ours::parse_commands(&inputs.command_stream).ok()?,
        ("command_parse", "stalwart") => stalwart::parse_commands(&inputs.command_stream).ok()?,
        ("reply_parse_ehlo", "smtp-proto") => ours::parse_ehlo_replies(&inputs.ehlo_stream).ok()?,
        ("reply_parse_ehlo", "smtp-proto-two-pass") => {
            ours::parse_ehlo_replies_two_pass(&inputs.ehlo_stream).ok()?
        }
        ("reply_parse_ehlo", "stalwart") => {
            stalwart::parse_ehlo_replies(&inputs.ehlo_stream).ok()?
        }
        ("data_decode", "smtp-proto") => ours::unstuff_borrowed(&inputs.data_wire, READ_LEN)?.0,
        ("data_decode", "smtp-proto-vec") => ours::unstuff_into(&inputs.data_wire, READ_LEN, out)?,
        ("data_decode", "stalwart") => stalwart::unstuff(&inputs.data_wire, READ_LEN, out)?,
        ("data_decode", "memcpy") => memcpy(&inputs.data_wire, out),
        ("dot_stuff", "smtp-proto") => ours::dot_stuff(&inputs.body.plain, out),
        // One sample command (by its line number, from 0) repeated: `out`
        // holds the stream, built in `main`.
        ("command_line", _) => ours::parse_commands(out).ok()?,
        ("command_line_stalwart", _) => stalwart::parse_commands(out).ok()?,
        // The command stream sorted by sample line, built in `main`.
        ("command_grouped", "smtp-proto") => ours::parse_commands(out).ok()?,
        ("command_grouped", "stalwart") => stalwart::parse_commands(out).ok()?,
        _ => return None,
    };
    Some(n)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(group), Some(function)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: profile <group> <function> [iterations]");
        return ExitCode::FAILURE;
    };
    let iterations: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let inputs = Inputs::new();
    let mut out = Vec::with_capacity(inputs.data_wire.len() + 1024);
    if group == "command_line" || group == "command_line_stalwart" {
        let Some(line) = function
            .parse::<usize>()
            .ok()
            .and_then(|n| inputs.commands.split_inclusive(|&c| c == b'\n').nth(n))
        else {
            eprintln!("command_line: the function is a line number of the sample");
            return ExitCode::FAILURE;
        };
        out = line.repeat(inputs.command_count / inputs.commands_per_unit);
    }
    if group == "command_grouped" {
        let copies = inputs.command_count / inputs.commands_per_unit;
        out = inputs
            .commands
            .split_inclusive(|&c| c == b'\n')
            .flat_map(|line| line.repeat(copies))
            .collect();
        assert_eq!(out.len(), inputs.command_stream.len());
    }
    let mut items = 0;
    let mut fastest = std::time::Duration::MAX;
    for _ in 0..iterations {
        let start = std::time::Instant::now();
        match work(black_box(&inputs), group, function, &mut out) {
            Some(n) => items = n,
            None => {
                eprintln!("{group}/{function}: unknown, or the work failed");
                return ExitCode::FAILURE;
            }
        }
        fastest = fastest.min(start.elapsed());
    }
    eprintln!(
        "{group}/{function}: {items} items per iteration, {iterations} iterations, \
         fastest {:.3} ms",
        fastest.as_secs_f64() * 1e3
    );
    ExitCode::SUCCESS
}
