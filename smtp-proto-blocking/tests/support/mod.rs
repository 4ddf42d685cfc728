//! Helpers shared by the loopback tests.

use std::time::Duration;

use smtp_proto_blocking::smtp_proto::session::Timeouts;

/// Bounds every wait in the tests, so a broken driver fails instead of
/// hanging.
pub const BOUND: Duration = Duration::from_secs(20);

/// Session timeouts that are all [`BOUND`].
pub fn bounded_timeouts() -> Timeouts {
    let mut t = Timeouts::default();
    t.initial = BOUND;
    t.mail = BOUND;
    t.rcpt = BOUND;
    t.data_init = BOUND;
    t.data_block = BOUND;
    t.data_termination = BOUND;
    t.server = BOUND;
    t
}
