//! Sends one message read from standard input.
//!
//! ```text
//! cargo run --release -p smtp-proto-tokio --example send -- --server HOST:PORT \
//!     --from A --to B [--to C ...] [--starttls required|opportunistic|off] \
//!     [--implicit-tls] \
//!     [--auth USER:PASS] [--chunking auto|off] [--tls-ca FILE] [--helo NAME] \
//!     [--lmtp] < message.eml
//! ```
//!
//! Prints one line per recipient and the final reply. Exits 0 only if
//! every recipient was accepted and got the message, 1 if the server
//! refused something, 2 if the run failed before the server's verdict on
//! the message. A connection error after the verdict (a server that
//! closes without answering QUIT) is printed as a warning and does not
//! change the exit status: the server has taken the message.

#[path = "support/send_app.rs"]
mod send_app;
#[path = "support/send_tokio.rs"]
mod send_tokio;

use std::process::ExitCode;

use clap::Parser;
use send_app::Args;
use smtp_proto_tokio::client::{run, RunOptions};
use smtp_proto_tokio::smtp_proto::client::Client;
use smtp_proto_tokio::tls;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

async fn send(args: Args) -> Result<send_app::Exit, Box<dyn std::error::Error>> {
    let (config, mut handler) = send_app::prepare(&args)?;
    let mut options = RunOptions::default();
    if send_app::wants_tls(&args) {
        let tls_config = match &args.tls_ca {
            Some(ca) => tls::client_config_trusting(ca)?,
            None => tls::client_config_webpki_roots()?,
        };
        let name = ServerName::try_from(send_app::server_host(&args.server))?;
        options.tls = Some((TlsConnector::from(tls_config), name));
    }
    let stream = TcpStream::connect(&args.server).await?;
    stream.set_nodelay(true)?;
    let mut client = Client::new(config);
    // The run's error does not decide alone: see `send_app::exit`.
    let end = run(stream, &mut client, &mut handler, &options).await;
    Ok(send_app::exit(handler.delivered, end))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    match send(args).await {
        Ok(exit) => exit.finish(),
        Err(e) => {
            eprintln!("send: {e}");
            ExitCode::from(2)
        }
    }
}
