//! The counting allocator counts what the current thread allocates, and sees
//! allocations made inside a dependency's parser.

use std::hint::black_box;

use smtp_proto_benches::alloc::{count, CountingAlloc};
use smtp_proto_benches::inputs::Inputs;
use smtp_proto_benches::stalwart;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

#[test]
fn counts_each_allocation_and_its_size() {
    let (boxed, stats) = count(|| black_box(Box::new(7u64)));
    assert_eq!(*boxed, 7);
    assert_eq!(stats.allocations, 1);
    assert_eq!(stats.bytes, 8);
}

#[test]
fn counts_nothing_when_nothing_allocates() {
    let (sum, stats) = count(|| black_box(2u64) + black_box(3u64));
    assert_eq!(sum, 5);
    assert_eq!(stats.allocations, 0);
    assert_eq!(stats.bytes, 0);
}

#[test]
fn counts_reallocation() {
    let (v, stats) = count(|| {
        let mut v: Vec<u8> = Vec::with_capacity(4);
        v.extend_from_slice(black_box(b"0123456789"));
        v
    });
    assert_eq!(v.len(), 10);
    assert_eq!(stats.allocations, 2);
}

#[test]
fn other_threads_do_not_count() {
    use std::sync::Barrier;
    // The other thread allocates while this thread's count is open: the
    // two barriers put its allocation between them.
    let (start, done) = (Barrier::new(2), Barrier::new(2));
    let (other, mine) = std::thread::scope(|s| {
        let handle = s.spawn(|| {
            start.wait();
            let stats = count(|| black_box(vec![0u8; 1000])).1;
            done.wait();
            stats
        });
        let mine = count(|| {
            start.wait();
            done.wait();
        })
        .1;
        (handle.join().expect("thread"), mine)
    });
    assert_eq!(other.allocations, 1);
    assert_eq!(other.bytes, 1000);
    assert_eq!(mine.allocations, 0, "another thread's allocation counted");
    assert_eq!(mine.bytes, 0);
}

#[test]
fn sees_allocations_inside_the_compared_parser() {
    let inputs = Inputs::new();
    let (reply, stats) = count(|| stalwart::parse_ehlo(&inputs.ehlo_reply));
    let reply = reply.expect("sample reply parses");
    // The host name is an owned String, so at least one allocation.
    assert_eq!(reply.hostname, "mail.example.com");
    assert!(stats.allocations >= 1);
    assert!(stats.bytes >= reply.hostname.len() as u64);

    let (parsed, stats) = count(|| stalwart::parse_commands(black_box(b"RSET\r\nQUIT\r\n")));
    assert_eq!(parsed, Ok(2));
    assert_eq!(stats.allocations, 0, "bare commands borrow nothing");
}

#[test]
fn smtp_proto_parses_the_samples_without_allocating() {
    use smtp_proto_benches::ours;
    let inputs = Inputs::new();
    for line in inputs.commands.split_inclusive(|&b| b == b'\n') {
        let (parsed, stats) = count(|| ours::parse_commands(black_box(line)));
        assert_eq!(parsed, Ok(1), "{}", String::from_utf8_lossy(line));
        assert_eq!(
            stats.allocations,
            0,
            "{} allocates",
            String::from_utf8_lossy(line)
        );
    }
    let (parsed, stats) = count(|| ours::parse_ehlo_replies(black_box(&inputs.ehlo_reply)));
    assert_eq!(parsed, Ok(1));
    assert_eq!(stats.allocations, 0, "the EHLO reply allocates");
}
