//! One message from the client driver to the server driver over
//! 127.0.0.1, written from the README, the crate documentation and the
//! public API only.

use std::time::Duration;

use smtp_proto_tokio::client::{send, RunOptions};
use smtp_proto_tokio::server::{serve, ServeEnd, ServeOptions, ServerHandler};
use smtp_proto_tokio::smtp_proto::client::{
    Client, ClientConfig, Delivery, Envelope, RecipientOutcome, TlsPolicy,
};
use smtp_proto_tokio::smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto_tokio::smtp_proto::server::{OwnedReply, ServerConfig, ServerEvent, ServerSession};
use smtp_proto_tokio::smtp_proto::status::{EnhancedStatusCode, ReplyCode};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// The longest any step of the exchange may take.
const BOUND: Duration = Duration::from_secs(20);

/// Keeps the envelope and the message it is given; refuses `nobody@`.
#[derive(Default)]
struct Store {
    from: Option<String>,
    to: Vec<String>,
    body: Vec<u8>,
    messages: Vec<(String, Vec<String>, Vec<u8>)>,
}

impl ServerHandler for Store {
    async fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerEvent<'_>,
    ) -> std::io::Result<()> {
        match event {
            ServerEvent::Hello { .. } => session.accept().map_err(std::io::Error::other),
            ServerEvent::Mail { from, .. } => {
                self.from = Some(from.to_string());
                self.to.clear();
                self.body.clear();
                session.accept().map_err(std::io::Error::other)
            }
            ServerEvent::Rcpt { to, .. } => {
                let to = to.to_string();
                if to.starts_with("<nobody@") {
                    let reply = OwnedReply::with_enhanced(
                        ReplyCode::MAILBOX_UNAVAILABLE,
                        Some(EnhancedStatusCode::BAD_MAILBOX),
                        "No such user",
                    )
                    .map_err(std::io::Error::other)?;
                    session.reject(reply).map_err(std::io::Error::other)
                } else {
                    self.to.push(to);
                    session.accept().map_err(std::io::Error::other)
                }
            }
            ServerEvent::MessageChunk(bytes) => {
                self.body.extend_from_slice(bytes);
                Ok(())
            }
            ServerEvent::MessageEnd { .. } => {
                let from = self.from.take().unwrap_or_default();
                let to = std::mem::take(&mut self.to);
                let body = std::mem::take(&mut self.body);
                self.messages.push((from, to, body));
                session.accept().map_err(std::io::Error::other)
            }
            _ => Ok(()),
        }
    }
}

#[tokio::test]
async fn one_message_end_to_end_over_loopback() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();

    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut session = ServerSession::new(ServerConfig::new("mx.example.com")).unwrap();
        session.greet().unwrap();
        let mut store = Store::default();
        let end = serve(stream, &mut session, &mut store, &ServeOptions::default()).await;
        (end.unwrap(), store)
    });

    let message = b"Subject: over loopback\r\n\r\n.a line that starts with a dot\r\nbye\r\n";
    let envelope = Envelope::new(ReversePath::Mailbox(
        Mailbox::parse("alice@example.org").unwrap(),
    ))
    .recipient(ForwardPath::Mailbox(
        Mailbox::parse("bob@example.com").unwrap(),
    ))
    .recipient(ForwardPath::Mailbox(
        Mailbox::parse("nobody@example.com").unwrap(),
    ));
    let config = ClientConfig::new(Domain::new("client.example").unwrap()).with_tls(TlsPolicy::Off);
    let mut client = Client::new(config);
    let stream = timeout(BOUND, TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    let report = timeout(
        BOUND,
        send(
            stream,
            &mut client,
            Delivery::new(envelope),
            message,
            &RunOptions::default(),
        ),
    )
    .await
    .expect("the client took too long")
    .expect("the run failed");

    assert!(!report.all_delivered());
    let delivered: Vec<String> = report
        .delivered()
        .map(|r| r.recipient.path.to_string())
        .collect();
    assert_eq!(delivered, ["<bob@example.com>"]);
    let bounced: Vec<_> = report.permanent_failures().collect();
    assert_eq!(bounced.len(), 1);
    assert_eq!(
        bounced[0].recipient.path.to_string(),
        "<nobody@example.com>"
    );
    let reply = bounced[0].outcome.reply().unwrap();
    assert_eq!(reply.code(), ReplyCode::MAILBOX_UNAVAILABLE);
    assert!(matches!(
        report.delivered().next().unwrap().outcome,
        RecipientOutcome::Delivered { .. }
    ));
    assert_eq!(report.to_retry().count() + report.unknown().count(), 0);

    let (end, store) = timeout(BOUND, server)
        .await
        .expect("the server took too long")
        .unwrap();
    assert_eq!(end, ServeEnd::Closed);
    assert_eq!(
        store.messages,
        [(
            "<alice@example.org>".to_string(),
            vec!["<bob@example.com>".to_string()],
            b"Subject: over loopback\r\n\r\n.a line that starts with a dot\r\nbye\r\n".to_vec(),
        )]
    );
    assert!(client.is_closed());
}
