//! The result of feeding input to a session machine, and the RFC 5321
//! timeouts as values.
//!
//! The shape is shared with the server machine: [`Step`] says how many
//! bytes were consumed and what came out ([`Outcome`]).

use core::time::Duration;

/// The result of feeding input to a session machine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Step<E> {
    /// Bytes of the input consumed: the caller drops them from the front of
    /// its buffer before the next call.
    pub consumed: usize,
    /// What happened.
    pub outcome: Outcome<E>,
}

impl<E> Step<E> {
    /// A step with an event.
    pub fn event(consumed: usize, event: E) -> Self {
        Self {
            consumed,
            outcome: Outcome::Event(event),
        }
    }

    /// A step that needs more input.
    pub fn need_input(consumed: usize) -> Self {
        Self {
            consumed,
            outcome: Outcome::NeedInput,
        }
    }

    /// A step that waits for the application.
    pub fn paused(consumed: usize) -> Self {
        Self {
            consumed,
            outcome: Outcome::Paused,
        }
    }

    /// A step after which the session is over.
    pub fn closed(consumed: usize) -> Self {
        Self {
            consumed,
            outcome: Outcome::Closed,
        }
    }

    /// The event, if one came out.
    #[must_use]
    pub fn into_event(self) -> Option<E> {
        match self.outcome {
            Outcome::Event(e) => Some(e),
            _ => None,
        }
    }
}

/// What a [`Step`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome<E> {
    /// Something happened; call again with the unconsumed bytes, there may
    /// be more.
    Event(E),
    /// Every byte given was consumed or is held for later: read more and
    /// call again with the unconsumed bytes plus the new ones.
    NeedInput,
    /// The machine waits for the application (a decision, the message
    /// body, or the TLS handshake).
    Paused,
    /// Output has piled up: send what `poll_transmit` gives, then call
    /// again with the same unconsumed input. (The server machine uses this
    /// to keep its output bounded; the client machine does not produce it,
    /// since its output grows only with the caller's own calls.)
    Transmit,
    /// The session is over: send what `poll_transmit` still has, then close
    /// the connection.
    Closed,
}

/// Timeouts of RFC 5321 §4.5.3.2, as values: the adapter runs the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Client waiting for the 220 greeting (§4.5.3.2.1): 5 minutes.
    pub initial: Duration,
    /// Client waiting for the reply to MAIL (§4.5.3.2.2): 5 minutes.
    pub mail: Duration,
    /// Client waiting for the reply to RCPT (§4.5.3.2.3): 5 minutes.
    pub rcpt: Duration,
    /// Client waiting for the 354 after DATA (§4.5.3.2.4): 2 minutes.
    pub data_init: Duration,
    /// Client sending one block of the body (§4.5.3.2.5): 3 minutes.
    pub data_block: Duration,
    /// Client waiting for the reply after `.` (§4.5.3.2.6): 10 minutes.
    pub data_termination: Duration,
    /// Server waiting for the next command or body bytes (§4.5.3.2.7): 5
    /// minutes.
    pub server: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        const MIN: u64 = 60;
        Self {
            initial: Duration::from_secs(5 * MIN),
            mail: Duration::from_secs(5 * MIN),
            rcpt: Duration::from_secs(5 * MIN),
            data_init: Duration::from_secs(2 * MIN),
            data_block: Duration::from_secs(3 * MIN),
            data_termination: Duration::from_secs(10 * MIN),
            server: Duration::from_secs(5 * MIN),
        }
    }
}
