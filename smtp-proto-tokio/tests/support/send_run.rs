//! Runs of the `send` examples in the tests: their command line, and one
//! run of the client over a loopback stream. Included by `#[path]` beside
//! the examples' `send_app` module and the tests' `support` module.

use clap::Parser;
use smtp_proto_tokio::client::{run, RunError, RunOptions};
use smtp_proto_tokio::smtp_proto::client::Client;
use tokio::io::AsyncWriteExt;
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

/// A server without PIPELINING whose EHLO reply is `ehlo`: it accepts
/// every command and the message, answers QUIT, and returns the command
/// lines it read (the message lines left out). Bounded: at most 20
/// commands and 100 message lines, each read within the support module's
/// bound.
// Not every test file that includes this module uses it.
#[allow(dead_code)]
pub async fn ehlo_server(mut s: TcpStream, ehlo: &'static str) -> Vec<String> {
    let mut buf = Vec::new();
    let mut seen = Vec::new();
    s.write_all(b"220 mx.example.net ESMTP\r\n")
        .await
        .expect("greeting");
    for _ in 0..20 {
        let Some(cmd) = crate::support::read_line(&mut s, &mut buf).await else {
            break;
        };
        let reply = match cmd.split(' ').next().unwrap_or_default() {
            "EHLO" => ehlo,
            "DATA" => {
                s.write_all(b"354 Go ahead\r\n").await.expect("354");
                for _ in 0..100 {
                    if crate::support::read_line(&mut s, &mut buf)
                        .await
                        .is_none_or(|l| l == ".")
                    {
                        break;
                    }
                }
                "250 2.0.0 queued\r\n"
            }
            "QUIT" => "221 2.0.0 bye\r\n",
            _ => "250 2.0.0 Ok\r\n",
        };
        seen.push(cmd);
        if s.write_all(reply.as_bytes()).await.is_err() || reply.starts_with("221") {
            break;
        }
    }
    seen
}
