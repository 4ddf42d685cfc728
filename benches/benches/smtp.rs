//! Criterion benchmarks: `smtp-proto` side by side with the published
//! `smtp-proto` 0.2.5 ("stalwart") and a plain copy ("memcpy").
//!
//! Group and function names are fixed so that results compare from run to
//! run; `benches/README.md` lists them and what each function must do.
//! Every group sets `Throughput::Bytes`; the item counts (commands, replies)
//! are written next to criterion's results for `ratios.py`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use smtp_proto_benches::inputs::{Inputs, READ_LEN};
use smtp_proto_benches::{memcpy, ours, stalwart};

/// Opens a group measured in bytes of `bytes` per iteration. Flat sampling:
/// one iteration takes milliseconds, criterion's linear ramp would take minutes.
fn group<'c>(c: &'c mut Criterion, name: &str, bytes: usize) -> BenchmarkGroup<'c, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Bytes(bytes as u64));
    g
}

/// Adds one function to a group: `work` is what one iteration does.
fn run<R>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, mut work: impl FnMut() -> R) {
    g.bench_function(name, |b| b.iter(&mut work));
}

/// Every command of the repeated sample stream, framed and parsed.
fn command_parse(c: &mut Criterion, inputs: &Inputs, items: &mut Items) {
    let stream = &inputs.command_stream[..];
    items.add("command_parse", inputs.command_count, "commands");
    assert_eq!(
        stalwart::parse_commands(stream),
        Ok(inputs.command_count),
        "stalwart must parse every sample command"
    );
    assert_eq!(ours::parse_commands(stream), Ok(inputs.command_count));
    let mut g = group(c, "command_parse", stream.len());
    run(&mut g, "smtp-proto", || {
        ours::parse_commands(black_box(stream))
    });
    run(&mut g, "stalwart", || {
        stalwart::parse_commands(black_box(stream))
    });
    g.finish();
}

/// Every EHLO reply of the repeated stream, parsed down to its capabilities.
fn reply_parse_ehlo(c: &mut Criterion, inputs: &Inputs, items: &mut Items) {
    let stream = &inputs.ehlo_stream[..];
    items.add("reply_parse_ehlo", inputs.ehlo_count, "replies");
    assert_eq!(
        stalwart::parse_ehlo_replies(stream),
        Ok(inputs.ehlo_count),
        "stalwart must parse every EHLO reply"
    );
    assert_eq!(ours::parse_ehlo_replies(stream), Ok(inputs.ehlo_count));
    assert_eq!(
        ours::parse_ehlo_replies_two_pass(stream),
        Ok(inputs.ehlo_count)
    );
    let mut g = group(c, "reply_parse_ehlo", stream.len());
    run(&mut g, "smtp-proto", || {
        ours::parse_ehlo_replies(black_box(stream))
    });
    run(&mut g, "stalwart", || {
        stalwart::parse_ehlo_replies(black_box(stream))
    });
    g.finish();
}

/// The DATA wire form un-stuffed to the end marker, fed in `READ_LEN` reads.
fn data_decode(c: &mut Criterion, inputs: &Inputs) {
    let wire = &inputs.data_wire[..];
    let mut out = Vec::with_capacity(wire.len());
    assert_eq!(
        stalwart::unstuff(wire, READ_LEN, &mut out),
        Some(wire.len())
    );
    assert!(out == inputs.body.plain, "stalwart must restore the body");
    let body_len = inputs.body.plain.len();
    assert_eq!(
        ours::unstuff_borrowed(wire, READ_LEN),
        Some((body_len, wire.len()))
    );
    let mut ours_out = Vec::with_capacity(wire.len());
    assert_eq!(
        ours::unstuff_into(wire, READ_LEN, &mut ours_out),
        Some(wire.len())
    );
    assert!(
        ours_out == inputs.body.plain,
        "smtp-proto must restore the body"
    );
    let mut g = group(c, "data_decode", wire.len());
    run(&mut g, "smtp-proto", || {
        ours::unstuff_borrowed(black_box(wire), READ_LEN)
    });
    run(&mut g, "smtp-proto-vec", || {
        ours::unstuff_into(black_box(wire), READ_LEN, &mut ours_out)
    });
    run(&mut g, "stalwart", || {
        stalwart::unstuff(black_box(wire), READ_LEN, &mut out)
    });
    let mut copy = Vec::with_capacity(wire.len());
    run(&mut g, "memcpy", || memcpy(black_box(wire), &mut copy));
    g.finish();
}

/// The body as BDAT chunks: command lines parsed, payloads taken whole.
fn bdat_decode(c: &mut Criterion, inputs: &Inputs) {
    let wire = &inputs.bdat_wire[..];
    let mut out = Vec::with_capacity(wire.len());
    assert_eq!(
        stalwart::bdat_decode(wire, READ_LEN, &mut out),
        Ok(inputs.bdat_count)
    );
    assert!(out == inputs.body.plain, "stalwart must restore the body");
    assert_eq!(
        ours::bdat_decode(wire, READ_LEN),
        Ok((inputs.bdat_count, inputs.body.plain.len()))
    );
    let mut ours_out = Vec::with_capacity(wire.len());
    assert_eq!(
        ours::bdat_decode_into(wire, READ_LEN, &mut ours_out),
        Ok((inputs.bdat_count, inputs.body.plain.len()))
    );
    assert!(
        ours_out == inputs.body.plain,
        "smtp-proto must restore the body"
    );
    let mut g = group(c, "bdat_decode", wire.len());
    run(&mut g, "smtp-proto", || {
        ours::bdat_decode(black_box(wire), READ_LEN)
    });
    run(&mut g, "smtp-proto-vec", || {
        ours::bdat_decode_into(black_box(wire), READ_LEN, &mut ours_out)
    });
    run(&mut g, "stalwart", || {
        stalwart::bdat_decode(black_box(wire), READ_LEN, &mut out)
    });
    let mut copy = Vec::with_capacity(wire.len());
    run(&mut g, "memcpy", || memcpy(black_box(wire), &mut copy));
    g.finish();
}

/// The client side of DATA: the plain body dot-stuffed for the wire.
fn dot_stuff(c: &mut Criterion, inputs: &Inputs) {
    let body = &inputs.body.plain[..];
    let mut stuffed = Vec::with_capacity(inputs.data_wire.len());
    ours::dot_stuff(body, &mut stuffed);
    assert!(
        stuffed == inputs.data_wire,
        "smtp-proto must stuff the body"
    );
    let mut g = group(c, "dot_stuff", body.len());
    run(&mut g, "smtp-proto", || {
        ours::dot_stuff(black_box(body), &mut stuffed)
    });
    let mut copy = Vec::with_capacity(inputs.data_wire.len());
    run(&mut g, "memcpy", || memcpy(black_box(body), &mut copy));
    g.finish();
}

/// The 20 sample commands written canonically, as many times as the command
/// stream repeats them.
fn command_encode(c: &mut Criterion, inputs: &Inputs, items: &mut Items) {
    let times = inputs.command_count / inputs.commands_per_unit;
    items.add("command_encode", inputs.command_count, "commands");
    let commands = ours::commands_to_encode(&inputs.commands).expect("sample commands");
    let mut out = Vec::new();
    let written = ours::encode_commands(&commands, times, &mut out);
    assert_eq!(ours::parse_commands(&out), Ok(inputs.command_count));
    let mut g = group(c, "command_encode", written);
    run(&mut g, "smtp-proto", || {
        ours::encode_commands(black_box(&commands), times, &mut out)
    });
    g.finish();
}

/// The sample EHLO reply written as many times as `reply_parse_ehlo` parses it.
fn reply_encode(c: &mut Criterion, inputs: &Inputs, items: &mut Items) {
    let times = inputs.ehlo_count;
    items.add("reply_encode", times, "replies");
    let reply = stalwart::parse_ehlo(&inputs.ehlo_reply).expect("sample EHLO reply");
    let mut out = Vec::new();
    let written = stalwart::encode_ehlo(&reply, times, &mut out);
    let ours_reply = ours::ehlo_reply_value(&inputs.ehlo_reply).expect("sample EHLO reply");
    let mut ours_out = Vec::new();
    let ours_written = ours::encode_reply(&ours_reply, times, &mut ours_out);
    assert_eq!(ours::parse_ehlo_replies(&ours_out), Ok(times));
    let mut g = group(c, "reply_encode", ours_written);
    run(&mut g, "smtp-proto", || {
        ours::encode_reply(black_box(&ours_reply), times, &mut ours_out)
    });
    g.throughput(Throughput::Bytes(written as u64));
    run(&mut g, "stalwart", || {
        stalwart::encode_ehlo(black_box(&reply), times, &mut out)
    });
    g.finish();
}

/// One whole transaction between our client and server machines (EHLO,
/// MAIL, 3 RCPT, a 10 KB DATA, QUIT) in memory; throughput counts the bytes
/// both sides wrote, items count transactions.
fn session(c: &mut Criterion, items: &mut Items) {
    let setup = smtp_proto_benches::session::Setup::new();
    let mut body = b"Subject: session bench\r\n\r\n".to_vec();
    while body.len() < 10 * 1024 {
        body.extend_from_slice(b".a line that starts with a dot, then text to fill it out\r\n");
        body.extend_from_slice(
            b"an ordinary line of the message body, seventy-odd octets long.\r\n",
        );
    }
    let moved =
        smtp_proto_benches::session::transaction(&setup, &body).expect("a whole transaction");
    assert_eq!(
        moved.body_bytes,
        body.len(),
        "the server got the whole body"
    );
    items.add("session", 1, "transactions");
    let mut g = group(c, "session", moved.wire_bytes);
    run(&mut g, "smtp-proto", || {
        smtp_proto_benches::session::transaction(black_box(&setup), black_box(&body))
    });
    g.finish();
}

/// Items per iteration of each group, saved for `ratios.py`.
#[derive(Default)]
struct Items(BTreeMap<&'static str, (usize, &'static str)>);

impl Items {
    fn add(&mut self, group: &'static str, count: usize, unit: &'static str) {
        self.0.insert(group, (count, unit));
    }

    /// Criterion's output directory, found the way criterion finds it.
    fn criterion_home() -> Option<PathBuf> {
        if let Some(home) = std::env::var_os("CRITERION_HOME") {
            return Some(home.into());
        }
        if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
            return Some(PathBuf::from(target).join("criterion"));
        }
        // The bench binary runs from <target>/<profile>/deps/.
        let exe = std::env::current_exe().ok()?;
        Some(exe.parent()?.parent()?.parent()?.join("criterion"))
    }

    fn save(&self) {
        let Some(home) = Self::criterion_home() else {
            return;
        };
        let entries: Vec<String> = self
            .0
            .iter()
            .map(|(group, (count, unit))| {
                format!("  \"{group}\": {{\"items\": {count}, \"unit\": \"{unit}\"}}")
            })
            .collect();
        let json = format!("{{\n{}\n}}\n", entries.join(",\n"));
        let saved = std::fs::create_dir_all(&home)
            .and_then(|()| std::fs::write(home.join("smtp-proto-benches-items.json"), json));
        if let Err(e) = saved {
            eprintln!("could not save item counts in {}: {e}", home.display());
        }
    }
}

fn main() {
    let inputs = Inputs::new();
    let mut items = Items::default();
    let mut c = Criterion::default().without_plots().configure_from_args();
    command_parse(&mut c, &inputs, &mut items);
    reply_parse_ehlo(&mut c, &inputs, &mut items);
    data_decode(&mut c, &inputs);
    bdat_decode(&mut c, &inputs);
    dot_stuff(&mut c, &inputs);
    command_encode(&mut c, &inputs, &mut items);
    reply_encode(&mut c, &inputs, &mut items);
    session(&mut c, &mut items);
    items.save();
    c.final_summary();
}
