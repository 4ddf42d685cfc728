//! One whole SMTP transaction between our client and server machines, in
//! memory: greeting, EHLO, MAIL, three RCPT, DATA, QUIT. The bytes each side
//! sends are handed to the other through Vecs; no sockets.

use smtp_proto::client::{Client, ClientConfig, ClientEvent, Envelope, TlsPolicy};
use smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
use smtp_proto::session::Outcome;

/// What one transaction moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    /// Bytes written by both sides.
    pub wire_bytes: usize,
    /// Body bytes the server application received.
    pub body_bytes: usize,
}

/// The client and server configurations, built once.
pub struct Setup {
    client: ClientConfig,
    server: ServerConfig,
    sender: Mailbox<'static>,
    recipients: [Mailbox<'static>; 3],
}

impl Default for Setup {
    fn default() -> Self {
        Self::new()
    }
}

impl Setup {
    /// Plain SMTP with PIPELINING, no TLS.
    pub fn new() -> Self {
        let mailbox = |s: &str| Mailbox::parse(s).expect("mailbox").into_owned();
        Self {
            client: ClientConfig::new(
                Domain::new("client.example.com")
                    .expect("domain")
                    .into_owned(),
            )
            .with_tls(TlsPolicy::Off),
            server: ServerConfig::new("mx.example.org"),
            sender: mailbox("alice@example.com"),
            recipients: [
                mailbox("bob@example.org"),
                mailbox("carol@example.org"),
                mailbox("dave@example.org"),
            ],
        }
    }
}

/// Runs one transaction carrying `body`; `None` if it did not complete.
/// The server application accepts every step and, like a real one, looks
/// at every body chunk (it sums their lengths).
pub fn transaction(setup: &Setup, body: &[u8]) -> Option<Moved> {
    let mut server = ServerSession::new(setup.server.clone()).ok()?;
    server.greet().ok()?;
    let mut client = Client::new(setup.client.clone());
    let mut envelope = Envelope::new(ReversePath::Mailbox(setup.sender.clone()));
    for r in &setup.recipients {
        envelope = envelope.recipient(ForwardPath::Mailbox(r.clone()));
    }
    let (mut to_client, mut to_server) = (Vec::new(), Vec::new());
    let mut moved = Moved {
        wire_bytes: 0,
        body_bytes: 0,
    };
    let mut sent = false;
    let mut delivered = false;
    // Each round: the server answers what it has, the client reacts.
    for _ in 0..64 {
        server.poll_transmit(&mut to_client);
        let mut pos = 0;
        loop {
            let step = client.handle_input(&to_client[pos..]).ok()?;
            pos += step.consumed;
            match step.outcome {
                Outcome::Event(ClientEvent::Ready) if !sent => {
                    sent = true;
                    client.send_mail(&envelope).ok()?;
                }
                Outcome::Event(ClientEvent::SendBody) => {
                    client.send_body(body).ok()?;
                    client.end_body().ok()?;
                }
                Outcome::Event(ClientEvent::TransactionEnd(summary)) => {
                    delivered = summary.all_delivered();
                    client.quit().ok()?;
                }
                Outcome::Event(_) => {}
                _ => break,
            }
        }
        moved.wire_bytes += to_client.len();
        to_client.clear();
        client.poll_transmit(&mut to_server);
        moved.wire_bytes += to_server.len();
        let mut pos = 0;
        loop {
            let step = server.handle_input(&to_server[pos..]).ok()?;
            pos += step.consumed;
            match step.outcome {
                Outcome::Event(ServerEvent::MessageChunk(chunk)) => moved.body_bytes += chunk.len(),
                Outcome::Event(
                    ServerEvent::Hello { .. }
                    | ServerEvent::Mail { .. }
                    | ServerEvent::Rcpt { .. }
                    | ServerEvent::MessageEnd { .. },
                ) => server.accept().ok()?,
                Outcome::Event(_) => {}
                Outcome::Closed => {
                    server.poll_transmit(&mut to_client);
                    moved.wire_bytes += to_client.len();
                    return (delivered && client_closes(&mut client, &to_client)).then_some(moved);
                }
                _ => break,
            }
        }
        to_server.drain(..pos);
    }
    None
}

/// Feeds the server's last reply (221) to the client.
fn client_closes(client: &mut Client, input: &[u8]) -> bool {
    let mut pos = 0;
    for _ in 0..8 {
        match client.handle_input(&input[pos..]) {
            Ok(step) => {
                pos += step.consumed;
                if matches!(step.outcome, Outcome::Closed) || client.is_closed() {
                    return true;
                }
                if matches!(step.outcome, Outcome::NeedInput) {
                    return client.is_closed();
                }
            }
            Err(_) => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_delivers_the_body_unchanged_in_length() {
        let body: Vec<u8> = b"Subject: bench\r\n\r\n"
            .iter()
            .chain(b".a line with a leading dot\r\n".repeat(300).iter())
            .copied()
            .collect();
        let moved = transaction(&Setup::new(), &body).expect("transaction completes");
        assert_eq!(moved.body_bytes, body.len());
        assert!(moved.wire_bytes > body.len());
    }
}
