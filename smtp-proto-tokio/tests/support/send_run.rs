//! Runs of the `send` examples in the tests: their command line, and one
//! run of the client over a loopback stream. Included by `#[path]` beside
//! the examples' `send_app` module and the tests' `support` module.

use clap::Parser;
use smtp_proto_tokio::client::{run, RunError, RunOptions};
use smtp_proto_tokio::smtp_proto::client::Client;
use tokio::net::TcpStream;

use crate::send_app::{self, Args, Sender};
use crate::support::BOUND;

/// The `send` arguments from `alice@example.com` to each of `to`, with
/// the server at `127.0.0.1:25`, then `extra`.
pub fn send_args(to: &[&str], extra: &[&str]) -> Args {
    let mut argv = vec![
        "send",
        "--server",
        "127.0.0.1:25",
        "--from",
        "alice@example.com",
    ];
    for rcpt in to {
        argv.extend(["--to", rcpt]);
    }
    argv.extend(extra);
    Args::try_parse_from(argv).expect("arguments")
}

/// Configures the `send` example for `args` and `message` and runs it
/// over `stream`, waiting at most [`BOUND`]: how the run ended, and the
/// sender with what it recorded.
pub async fn run_send(
    stream: TcpStream,
    args: &Args,
    message: &[u8],
) -> (Result<(), RunError>, Sender) {
    let (config, mut sender) = send_app::configure(args, message).expect("configure");
    let mut client = Client::new(config);
    let end = tokio::time::timeout(
        BOUND,
        run(stream, &mut client, &mut sender, &RunOptions::default()),
    )
    .await
    .expect("bounded");
    (end, sender)
}
