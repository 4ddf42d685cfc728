//! One message from the blocking client driver to the blocking server
//! driver over 127.0.0.1, written from the README, the crate documentation
//! and the public API only.

use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use smtp_proto_blocking::client::{send, RunOptions};
use smtp_proto_blocking::server::{serve, ServeEnd, ServeOptions, ServerHandler};
use smtp_proto_blocking::smtp_proto::client::{
    Client, ClientConfig, Delivery, Envelope, TlsPolicy,
};
use smtp_proto_blocking::smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto_blocking::smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
use smtp_proto_blocking::smtp_proto::session::Timeouts;

/// The longest any wait of the exchange may take.
const BOUND: Duration = Duration::from_secs(20);

/// Keeps the message it is given.
#[derive(Default)]
struct Store {
    body: Vec<u8>,
    messages: Vec<Vec<u8>>,
}

impl ServerHandler for Store {
    fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerEvent<'_>,
    ) -> std::io::Result<()> {
        match event {
            ServerEvent::MessageChunk(bytes) => self.body.extend_from_slice(bytes),
            ServerEvent::MessageEnd { .. } => {
                self.messages.push(std::mem::take(&mut self.body));
                session.accept().map_err(std::io::Error::other)?;
            }
            ServerEvent::Hello { .. } | ServerEvent::Mail { .. } | ServerEvent::Rcpt { .. } => {
                session.accept().map_err(std::io::Error::other)?;
            }
            _ => {}
        }
        Ok(())
    }
}

#[test]
fn one_message_end_to_end_over_loopback() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        let mut config = ServerConfig::new("mx.example.com");
        config.timeouts = Timeouts::uniform(BOUND);
        let mut session = ServerSession::new(config).unwrap();
        session.greet().unwrap();
        let mut store = Store::default();
        let end = serve(socket, &mut session, &mut store, &ServeOptions::default());
        let _ = done.send((end.map_err(|e| e.to_string()), store.messages));
    });

    let message = b"Subject: blocking\r\n\r\n.dot\r\nbye\r\n";
    let envelope = Envelope::new(ReversePath::Mailbox(
        Mailbox::parse("alice@example.org").unwrap(),
    ))
    .recipient(ForwardPath::Mailbox(
        Mailbox::parse("bob@example.com").unwrap(),
    ));
    let config = ClientConfig::new(Domain::new("client.example").unwrap())
        .with_tls(TlsPolicy::Off)
        .with_timeouts(Timeouts::uniform(BOUND));
    let mut client = Client::new(config);
    let stream = TcpStream::connect_timeout(&addr, BOUND).unwrap();
    let report = send(
        stream,
        &mut client,
        Delivery::new(envelope),
        message,
        &RunOptions::default(),
    )
    .expect("the run failed");
    assert!(report.all_delivered());
    let delivered: Vec<String> = report
        .delivered()
        .map(|r| r.recipient.path.to_string())
        .collect();
    assert_eq!(delivered, ["<bob@example.com>"]);

    let (end, messages) = finished
        .recv_timeout(BOUND)
        .expect("the server took too long");
    assert_eq!(end, Ok(ServeEnd::Closed));
    assert_eq!(messages, [message.to_vec()]);
}
