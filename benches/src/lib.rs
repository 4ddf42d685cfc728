//! Inputs, adapters and tools shared by the `smtp-proto` benchmarks.
//!
//! - [`inputs`]: the sample commands and EHLO reply, repeated to a few
//!   megabytes, and a generated message body in its DATA and BDAT forms.
//! - [`ours`]: the work of each benchmark done with `smtp-proto`.
//! - [`stalwart`]: the same work done with the published `smtp-proto` 0.2.5.
//! - [`alloc`]: a counting global allocator for allocations per message.
//!
//! The criterion benchmarks live in `benches/smtp.rs`; the allocation report
//! is the `alloc-count` binary. See `README.md` in this directory.

pub mod alloc;
pub mod inputs;
pub mod ours;
pub mod session;
pub mod stalwart;

/// The floor every bulk benchmark is compared with: a plain copy of the same
/// bytes into `out` (cleared first, its capacity kept).
pub fn memcpy(src: &[u8], out: &mut Vec<u8>) -> usize {
    out.clear();
    out.extend_from_slice(src);
    out.len()
}
