//! Reports heap allocations per parsed command, per parsed EHLO reply and per
//! decoded message body, for each parser compared in the benchmarks.
//!
//! Run with `cargo run --release -p smtp-proto-benches --bin alloc-count`.

use std::hint::black_box;

use smtp_proto::command::CommandDecoder;
use smtp_proto_benches::alloc::{count, AllocStats, CountingAlloc};
use smtp_proto_benches::inputs::{Inputs, READ_LEN};
use smtp_proto_benches::{ours, stalwart};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// A parser of one complete command line; `true` when it parsed.
type ParseOne = fn(&[u8]) -> bool;

/// The command parsers compared, one column each.
const COMMAND_PARSERS: &[(&str, ParseOne)] = &[
    ("smtp-proto", |line| {
        let step = CommandDecoder::default().decode(line);
        matches!(black_box(step.item), Some(Ok(_)))
    }),
    ("stalwart", |line| {
        black_box(stalwart_smtp_proto::Request::parse(&mut line.iter())).is_ok()
    }),
];

/// The EHLO reply parsers compared, one column each.
const REPLY_PARSERS: &[(&str, ParseOne)] = &[
    ("smtp-proto", |reply| {
        black_box(ours::parse_ehlo_replies(reply)) == Ok(1)
    }),
    ("stalwart", |reply| {
        black_box(stalwart::parse_ehlo(reply)).is_ok()
    }),
];

/// The DATA decoders compared: wire in, body into the given Vec.
type Decode = fn(&[u8], &mut Vec<u8>) -> bool;
const DATA_DECODERS: &[(&str, Decode)] = &[
    ("smtp-proto-vec", |wire, out| {
        ours::unstuff_into(wire, READ_LEN, out).is_some()
    }),
    ("stalwart", |wire, out| {
        stalwart::unstuff(wire, READ_LEN, out).is_some()
    }),
];

fn cell(stats: AllocStats, ok: bool) -> String {
    let mark = if ok { "" } else { " (error)" };
    format!("{} ({} B){mark}", stats.allocations, stats.bytes)
}

fn header(first: &str, names: &[&str]) {
    print!("{first:<60}");
    for name in names {
        print!(" {name:>18}");
    }
    println!();
}

fn main() {
    let inputs = Inputs::new();

    println!("Allocations (and bytes requested) per parse, counted by a global allocator.\n");
    let names: Vec<&str> = COMMAND_PARSERS.iter().map(|p| p.0).collect();
    header("command", &names);
    let mut totals = vec![0u64; COMMAND_PARSERS.len()];
    for line in inputs.commands.split_inclusive(|&b| b == b'\n') {
        let text = String::from_utf8_lossy(line.strip_suffix(b"\r\n").unwrap_or(line));
        let shown: String = text.chars().take(58).collect();
        print!("{shown:<60}");
        for (i, (_, parse)) in COMMAND_PARSERS.iter().enumerate() {
            let (ok, stats) = count(|| parse(line));
            totals[i] += stats.allocations;
            print!(" {:>18}", cell(stats, ok));
        }
        println!();
    }
    print!("{:<60}", "mean per command");
    for total in &totals {
        let mean = *total as f64 / inputs.commands_per_unit as f64;
        print!(" {mean:>18.2}");
    }
    println!("\n");

    let names: Vec<&str> = REPLY_PARSERS.iter().map(|p| p.0).collect();
    header("EHLO reply", &names);
    print!("{:<60}", "the 11-line sample reply");
    for (_, parse) in REPLY_PARSERS {
        let (ok, stats) = count(|| parse(&inputs.ehlo_reply));
        print!(" {:>18}", cell(stats, ok));
    }
    println!("\n");

    let names: Vec<&str> = DATA_DECODERS.iter().map(|p| p.0).collect();
    let mb = inputs.data_wire.len() as f64 / 1e6;
    header(&format!("DATA body ({mb:.1} MB on the wire)"), &names);
    print!("{:<60}", "into an empty Vec");
    for (_, decode) in DATA_DECODERS {
        let mut out = Vec::new();
        let (ok, stats) = count(|| decode(&inputs.data_wire, &mut out));
        print!(" {:>18}", cell(stats, ok));
    }
    println!();
    print!("{:<60}", "into a Vec with room for the body");
    for (_, decode) in DATA_DECODERS {
        let mut out = Vec::with_capacity(inputs.data_wire.len());
        let (ok, stats) = count(|| decode(&inputs.data_wire, &mut out));
        print!(" {:>18}", cell(stats, ok));
    }
    println!();
}
