//! Fuzz target bodies for `smtp-proto`.
//!
//! Each target is a plain function `fn(&[u8])` that feeds the bytes to one
//! part of the core and asserts properties that must hold for any input; a
//! failed assertion or any other panic is a finding. The same functions run
//! in two places:
//!
//! - the libFuzzer binaries in `smtp-proto-fuzz/fuzz_targets/` (one line each,
//!   run with `cargo fuzz`), and
//! - the replay test of this crate (`tests/replay.rs`), which feeds every file
//!   of `smtp-proto-fuzz/corpus/<target>/` and `smtp-proto-fuzz/regressions/<target>/`
//!   to the target under an ordinary `cargo test` on stable Rust.
//!
//! [`TARGETS`] lists every target; the replay test walks it, and checks that
//! it matches the binaries declared in `smtp-proto-fuzz/Cargo.toml`.
//!
//! [`split`] and [`stream`] hold what stream-shaped targets share: cutting an
//! input into the pieces a reader may receive, and driving a bytes-in
//! machine over a caller-owned buffer with the progress and memory checks
//! every such machine must pass.
//!
//! ```
//! for target in smtp_proto_fuzz_harness::TARGETS {
//!     (target.run)(b"EHLO client.example\r\n.\r\n");
//! }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod body;
pub mod client;
pub mod command;
pub mod command_build;
pub mod data;
pub mod delivery;
pub mod delivery_reuse;
pub mod dsn;
pub mod dsn_read;
pub mod ehlo;
pub mod framer;
pub mod gen;
pub mod pair;
pub mod proxy;
pub mod reply;
pub mod reply_build;
pub mod sasl;
pub mod server;
pub mod split;
pub mod stream;

/// One fuzz target: its name (the libFuzzer binary, the corpus directory)
/// and the function that checks one input.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Name of the binary in `fuzz_targets/` and of its corpus directories.
    pub name: &'static str,
    /// Checks one input; panics when a property does not hold.
    pub run: fn(&[u8]),
}

/// Every fuzz target, in the order the replay test runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "framer",
        run: framer::run,
    },
    Target {
        name: "command",
        run: command::run,
    },
    Target {
        name: "command_build",
        run: command_build::run,
    },
    Target {
        name: "reply",
        run: reply::run,
    },
    Target {
        name: "reply_build",
        run: reply_build::run,
    },
    Target {
        name: "ehlo",
        run: ehlo::run,
    },
    Target {
        name: "sasl",
        run: sasl::run,
    },
    Target {
        name: "server",
        run: server::run,
    },
    Target {
        name: "client",
        run: client::run,
    },
    Target {
        name: "pair",
        run: pair::run,
    },
    Target {
        name: "delivery",
        run: delivery::run,
    },
    Target {
        name: "delivery_reuse",
        run: delivery_reuse::run,
    },
    Target {
        name: "data",
        run: data::run,
    },
    Target {
        name: "body",
        run: body::run,
    },
    Target {
        name: "proxy",
        run: proxy::run,
    },
    Target {
        name: "dsn",
        run: dsn::run,
    },
    Target {
        name: "dsn_read",
        run: dsn_read::run,
    },
];

/// Looks a target up by name.
#[must_use]
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}
