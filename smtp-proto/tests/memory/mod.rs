//! What the memory tests share (those of the bounce readers, the client's
//! deliveries and, by path, the adapters'): the process's peak resident
//! size (Linux only) and hostile inputs built by repetition.

/// The process's peak resident size in bytes (`VmHWM`). It only grows, so
/// each measure wants a process of its own (or a single test per file).
pub fn peak_resident() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .expect("a VmHWM line");
    let kib: usize = line
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("VmHWM in kB");
    kib * 1024
}

/// `head`, then `unit` repeated up to `size` octets, then `tail`.
pub fn repeat(size: usize, head: &[u8], unit: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(size + head.len() + tail.len() + unit.len());
    m.extend_from_slice(head);
    while m.len() < size + head.len() {
        m.extend_from_slice(unit);
    }
    m.extend_from_slice(tail);
    m
}
