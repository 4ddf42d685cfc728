//! Driving a bytes-in machine over a caller-owned read buffer.
//!
//! Every stream-shaped part of the core (the line framer, the command and
//! reply decoders, the server and client sessions) is called the same way:
//! the caller holds a buffer of received bytes, the machine looks at it,
//! reports how many bytes it consumed and perhaps something it found, or
//! asks for more input. [`feed`] plays the caller: it appends each piece of
//! input, calls the machine until it asks for more, drops the consumed bytes,
//! and asserts on the way what any such machine owes its caller:
//!
//! - it never claims to consume more than the buffer holds;
//! - it makes progress: only a bounded number of steps in a row may consume
//!   nothing (a machine that loops is a bug);
//! - it keeps memory bounded: when it asks for more input, the unconsumed
//!   bytes it leaves in the buffer are within a limit.

/// What one call of the machine did with the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<E> {
    /// The machine consumed `consumed` bytes from the front of the buffer
    /// (possibly none) and reported `event`.
    Advance {
        /// Bytes the caller drops from the front of its buffer.
        consumed: usize,
        /// What the machine reported, in a form the target can compare
        /// (own the data: the buffer moves on).
        event: E,
    },
    /// Nothing more can be done until more bytes arrive.
    NeedMore,
}

/// Bounds a machine must stay within while it is fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most unconsumed bytes the machine may leave in the buffer when it
    /// asks for more input.
    pub max_retained: usize,
    /// Most steps in a row that may consume nothing.
    pub max_stalls: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_retained: 4096,
            max_stalls: 64,
        }
    }
}

/// The outcome of feeding all pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fed<E> {
    /// Every event, in order.
    pub events: Vec<E>,
    /// Total bytes consumed.
    pub consumed: usize,
    /// Bytes still unconsumed at the end (the input's tail).
    pub retained: Vec<u8>,
}

/// Feeds `pieces` one after the other through a caller-owned buffer,
/// calling `step` until it needs more input after each piece, and checks
/// the contract described in the [module documentation](self).
///
/// `step` is called with the unconsumed bytes; it is also called with an
/// empty buffer, which a machine must answer without panicking.
///
/// ```
/// use smtp_proto_fuzz_harness::stream::{feed, Limits, Step};
///
/// // A toy machine: every complete pair of bytes is one event.
/// let fed = feed([&b"abc"[..], b"de"], Limits::default(), |buf| {
///     if buf.len() >= 2 {
///         Step::Advance { consumed: 2, event: buf[..2].to_vec() }
///     } else {
///         Step::NeedMore
///     }
/// });
/// assert_eq!(fed.events, vec![b"ab".to_vec(), b"cd".to_vec()]);
/// assert_eq!(fed.retained, b"e");
/// ```
pub fn feed<'a, E>(
    pieces: impl IntoIterator<Item = &'a [u8]>,
    limits: Limits,
    mut step: impl FnMut(&[u8]) -> Step<E>,
) -> Fed<E> {
    let mut buf = Vec::new();
    let mut events = Vec::new();
    let mut consumed_total = 0usize;
    let mut progress = Progress::new(usize::MAX, limits.max_stalls);
    for piece in pieces {
        buf.extend_from_slice(piece);
        progress.next_piece();
        while let Step::Advance { consumed, event } = step(&buf) {
            progress.consumed(consumed, buf.len());
            buf.drain(..consumed);
            consumed_total += consumed;
            events.push(event);
        }
        assert!(
            buf.len() <= limits.max_retained,
            "asked for more input while holding {} unconsumed bytes (limit {})",
            buf.len(),
            limits.max_retained
        );
    }
    Fed {
        events,
        consumed: consumed_total,
        retained: buf,
    }
}

/// Most calls in a row within one piece that may consume nothing, in the
/// session targets.
pub const MAX_STALLS: usize = 16;

/// Where the `n`th complete reply in `buf` ends (a line ends at LF, a
/// reply at a line whose fourth octet is not `-`), or `buf.len()` when
/// there are fewer.
///
/// The client targets give the client machine replies up to there: a
/// server answers a command only once it was sent, so the replies read
/// in one step may answer only what the client had handed out before
/// it. Giving each complete reply in a step of its own, what the client
/// queues on it is handed out before the next is read, however the input
/// is cut, as with a server that keeps to the protocol. The machine ends
/// the session when a reply comes before its command was handed out,
/// which a cut between two replies would otherwise decide.
#[must_use]
pub fn replies_end(buf: &[u8], n: usize) -> usize {
    let mut at = 0;
    let mut found = 0;
    while let Some(lf) = buf
        .get(at..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
    {
        let line = buf.get(at..=at + lf).unwrap_or_default();
        at += lf + 1;
        if line.get(3) != Some(&b'-') {
            found += 1;
            if found == n {
                return at;
            }
        }
    }
    buf.len()
}

/// The progress checks of [`feed`], for a target that calls its machine
/// itself because it acts between the calls on what the machine reported
/// (the client, server and delivery targets).
///
/// Per piece of input: [`next_piece`](Self::next_piece) when it is
/// appended, then for each call of the machine [`call`](Self::call)
/// before it and [`consumed`](Self::consumed) once it has said how many
/// bytes it consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    calls: usize,
    max_calls: usize,
    stalls: usize,
    max_stalls: usize,
}

impl Progress {
    /// At most `max_calls` calls in all, and at most `max_stalls` calls in
    /// a row within one piece that consume nothing.
    pub fn new(max_calls: usize, max_stalls: usize) -> Self {
        Self {
            calls: 0,
            max_calls,
            stalls: 0,
            max_stalls,
        }
    }

    /// The bounds of the session targets, fed `total` bytes in all: at
    /// most `8 * total + 64` calls, and [`MAX_STALLS`] in a row that
    /// consume nothing.
    pub fn for_input(total: usize) -> Self {
        Self::new(8 * total + 64, MAX_STALLS)
    }

    /// A new piece of input was appended: the stalls count again from 0.
    pub fn next_piece(&mut self) {
        self.stalls = 0;
    }

    /// Counts one call of the machine, about to be made; panics past the
    /// most calls (a machine that loops).
    pub fn call(&mut self) {
        self.calls += 1;
        assert!(
            self.calls <= self.max_calls,
            "{} calls, more than the {} allowed",
            self.calls,
            self.max_calls
        );
    }

    /// Checks one call that consumed `consumed` of the `buffered` bytes
    /// it was given: no more than those, and not nothing too many times
    /// in a row.
    pub fn consumed(&mut self, consumed: usize, buffered: usize) {
        assert!(
            consumed <= buffered,
            "consumed {consumed} bytes of a {buffered}-byte buffer"
        );
        if consumed == 0 {
            self.stalls += 1;
            assert!(
                self.stalls <= self.max_stalls,
                "{} steps in a row consumed nothing",
                self.stalls
            );
        } else {
            self.stalls = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "consumed 5 bytes of a 3-byte buffer")]
    fn over_consumption_is_caught() {
        let _ = feed([&b"abc"[..]], Limits::default(), |buf| {
            if buf.is_empty() {
                Step::NeedMore
            } else {
                Step::Advance {
                    consumed: 5,
                    event: (),
                }
            }
        });
    }

    #[test]
    #[should_panic(expected = "consumed nothing")]
    fn a_looping_machine_is_caught() {
        let _ = feed([&b"x"[..]], Limits::default(), |_| Step::Advance {
            consumed: 0,
            event: (),
        });
    }

    #[test]
    #[should_panic(expected = "unconsumed bytes")]
    fn unbounded_buffering_is_caught() {
        let limits = Limits {
            max_retained: 8,
            ..Limits::default()
        };
        let _ = feed([&[0u8; 9][..]], limits, |_| Step::<()>::NeedMore);
    }

    #[test]
    fn stalls_within_the_limit_are_allowed() {
        let mut paused = 3;
        let fed = feed([&b"ab"[..]], Limits::default(), |buf| {
            if paused > 0 {
                paused -= 1;
                Step::Advance {
                    consumed: 0,
                    event: 'p',
                }
            } else if buf.is_empty() {
                Step::NeedMore
            } else {
                Step::Advance {
                    consumed: 1,
                    event: 'c',
                }
            }
        });
        assert_eq!(fed.events, vec!['p', 'p', 'p', 'c', 'c']);
        assert_eq!(fed.consumed, 2);
        assert!(fed.retained.is_empty());
    }

    #[test]
    #[should_panic(expected = "3 calls, more than the 2 allowed")]
    fn too_many_calls_are_caught() {
        let mut progress = Progress::new(2, 16);
        for _ in 0..3 {
            progress.call();
            progress.consumed(1, 1);
        }
    }

    #[test]
    fn stalls_count_again_from_each_piece() {
        let mut progress = Progress::new(usize::MAX, 2);
        for _ in 0..3 {
            progress.next_piece();
            progress.consumed(0, 0);
            progress.consumed(0, 0);
        }
    }
}
