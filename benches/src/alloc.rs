//! A counting global allocator, to report allocations per parsed message.
//!
//! Install it in a binary or test with
//! `#[global_allocator] static ALLOC: CountingAlloc = CountingAlloc;` and wrap
//! the code to measure in [`count`]. Counts are kept per thread, so tests
//! running in parallel do not disturb each other.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting the allocations (and reallocations) made
/// by each thread.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAlloc;

fn record(bytes: usize) {
    // `try_with`: the counters are const-initialised and have no destructor,
    // but a failed access must never turn into a panic inside the allocator.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    let _ = BYTES.try_with(|n| n.set(n.get() + bytes as u64));
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counting touches only thread-local `Cell`s and
// never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations made by the current thread.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AllocStats {
    /// Calls to `alloc`, `alloc_zeroed` and `realloc`.
    pub allocations: u64,
    /// Bytes requested by those calls.
    pub bytes: u64,
}

/// Totals for the current thread since it started. Always zero unless
/// [`CountingAlloc`] is the global allocator.
pub fn snapshot() -> AllocStats {
    AllocStats {
        allocations: ALLOCATIONS.with(Cell::get),
        bytes: BYTES.with(Cell::get),
    }
}

/// Runs `f` and returns its result with the allocations it made on this thread.
pub fn count<R>(f: impl FnOnce() -> R) -> (R, AllocStats) {
    let before = snapshot();
    let result = f();
    let after = snapshot();
    (
        result,
        AllocStats {
            allocations: after.allocations - before.allocations,
            bytes: after.bytes - before.bytes,
        },
    )
}
