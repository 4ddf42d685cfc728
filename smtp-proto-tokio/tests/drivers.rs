//! The tokio server and client drivers against each other, and against
//! raw sockets, over loopback TCP.

mod support;

use support::{
    client_config, join, pair, read_until, spawn_recorder, tls_configs, OneMessage, Recorder, BOUND,
};

use std::time::Duration;

use smtp_proto_tokio::client::{self, RunOptions};
use smtp_proto_tokio::rustls::pki_types::ServerName;
use smtp_proto_tokio::server::{serve, ServeEnd, ServeError, ServeOptions};
use smtp_proto_tokio::smtp_proto::client::{AuthCredentials, Client, TlsPolicy};
use smtp_proto_tokio::smtp_proto::reply::OwnedReply;
use smtp_proto_tokio::smtp_proto::sasl::SaslMechanism;
use smtp_proto_tokio::smtp_proto::server::{RemoteError, ServerConfig, ServerSession};
use smtp_proto_tokio::smtp_proto::status::ReplyCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A [`OneMessage`] from `a@example.com` to `n` recipients.
fn to_recipients(n: usize, body: &[u8]) -> OneMessage {
    OneMessage::new(
        "a@example.com",
        (0..n).map(|i| format!("user{i}@example.org")),
        body,
    )
}

fn server_config() -> ServerConfig {
    let mut c = ServerConfig::new("mx.example.net");
    c.max_recipients = 5000;
    c
}

#[tokio::test]
async fn client_and_server_drivers_deliver_over_starttls_with_auth() {
    let (server_tls, client_tls) = tls_configs();
    let (c, s) = pair().await;
    let mut cfg = server_config();
    cfg.starttls = true;
    cfg.auth_mechanisms = vec![SaslMechanism::Plain, SaslMechanism::Login];
    let server = tokio::spawn(async move {
        let mut session = ServerSession::new(cfg).expect("session");
        session.greet().expect("greet");
        let mut rec = Recorder::default();
        let mut opts = ServeOptions::default();
        opts.tls = Some(TlsAcceptor::from(server_tls));
        let end = serve(s, &mut session, &mut rec, &opts).await;
        (end.map_err(|e| e.to_string()), rec, session.is_tls())
    });
    let body = b"Subject: over TLS\r\n\r\n.starts with a dot\r\nbare LF here\nend".to_vec();
    let mut app = to_recipients(2, &body);
    app.auth = Some(AuthCredentials::password("alice", "secret"));
    let mut client = Client::new(client_config(TlsPolicy::Required));
    let mut opts = RunOptions::default();
    opts.tls = Some((
        TlsConnector::from(client_tls),
        ServerName::try_from("localhost").expect("name"),
    ));
    tokio::time::timeout(BOUND, client::run(c, &mut client, &mut app, &opts))
        .await
        .expect("bounded")
        .expect("client run");
    assert_eq!(app.delivered, Some(true));
    assert!(client.is_tls() && client.is_authenticated());
    let (end, rec, server_tls_on) = join(server).await;
    assert_eq!(end, Ok(ServeEnd::Closed));
    assert!(server_tls_on);
    assert_eq!(rec.auth_user.as_deref(), Some("alice"));
    assert_eq!(
        rec.messages,
        vec![b"Subject: over TLS\r\n\r\n.starts with a dot\r\nbare LF here\r\nend\r\n".to_vec()]
    );
}

#[tokio::test]
async fn large_pipelined_group_does_not_deadlock() {
    // 3,000 recipients pipelined in one group: about 100 KB of commands and
    // of replies, more than socket buffers hold if neither side read while
    // writing.
    let (c, s) = pair().await;
    let server = spawn_recorder(s, server_config());
    let mut app = to_recipients(3000, b"Subject: many\r\n\r\nhello\r\n");
    let mut client = Client::new(client_config(TlsPolicy::Off));
    tokio::time::timeout(
        BOUND,
        client::run(c, &mut client, &mut app, &RunOptions::default()),
    )
    .await
    .expect("bounded: no deadlock")
    .expect("client run");
    assert_eq!(app.accepted, 3000);
    assert_eq!(app.delivered, Some(true));
    let (end, rec) = join(server).await;
    assert_eq!(end, Ok(ServeEnd::Closed));
    assert_eq!(rec.recipients, 3000);
    assert_eq!(rec.messages.len(), 1);
}

#[tokio::test]
async fn plaintext_after_starttls_is_refused_and_never_answered() {
    let (server_tls, _) = tls_configs();
    let (mut c, s) = pair().await;
    let mut cfg = server_config();
    cfg.starttls = true;
    let server = tokio::spawn(async move {
        let mut session = ServerSession::new(cfg).expect("session");
        session.greet().expect("greet");
        let mut rec = Recorder::default();
        let mut opts = ServeOptions::default();
        opts.tls = Some(TlsAcceptor::from(server_tls));
        let end = serve(s, &mut session, &mut rec, &opts).await;
        (end, rec)
    });
    let mut got = Vec::new();
    read_until(&mut c, &mut got, b"\r\n").await;
    c.write_all(b"EHLO x.example\r\n").await.expect("write");
    read_until(&mut c, &mut got, b"250 ").await;
    // Both lines in one write of 50 bytes: over loopback that is one TCP
    // segment, and the server reads with room for all of it, so the
    // session finds the MAIL line already buffered behind STARTTLS. It
    // refuses the upgrade before sending 220 (CVE-2011-0411): one 554, then
    // the close. No 220 and no TLS record may come back, and above all no
    // reply to the injected MAIL.
    c.write_all(b"STARTTLS\r\nMAIL FROM:<evil@example.com>\r\n")
        .await
        .expect("write");
    tokio::time::timeout(BOUND, async {
        let mut chunk = [0u8; 4096];
        for _ in 0..10_000 {
            match c.read(&mut chunk).await {
                Ok(0) => return,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read: {e}"),
            }
        }
        panic!("the server did not close");
    })
    .await
    .expect("server closes");
    // Everything after the end of the EHLO reply (its `250 ` line).
    let text = String::from_utf8_lossy(&got).into_owned();
    let ehlo_end = text
        .find("\r\n250 ")
        .and_then(|at| text[at + 2..].find("\r\n").map(|end| at + 2 + end + 2))
        .expect("the EHLO reply ends");
    assert!(text.starts_with("220 "), "{text}");
    assert!(text[..ehlo_end].contains("250-STARTTLS\r\n"), "{text}");
    assert_eq!(
        &text[ehlo_end..],
        "554 5.5.1 Data pipelined after STARTTLS, closing\r\n"
    );
    let (end, rec) = join(server).await;
    assert!(
        matches!(end, Err(ServeError::Remote(RemoteError::StartTlsInjection))),
        "{end:?}"
    );
    assert_eq!(rec.messages.len(), 0);
}

#[tokio::test]
async fn silent_client_gets_421_after_the_session_timeout() {
    let (mut c, s) = pair().await;
    let mut cfg = server_config();
    cfg.timeouts.server = Duration::from_millis(300);
    let server = tokio::spawn(async move {
        let mut session = ServerSession::new(cfg).expect("session");
        session.greet().expect("greet");
        let mut rec = Recorder::default();
        serve(s, &mut session, &mut rec, &ServeOptions::default())
            .await
            .map_err(|e| e.to_string())
    });
    let mut got = Vec::new();
    read_until(&mut c, &mut got, b"421 4.4.2").await;
    let end = join(server).await;
    assert_eq!(end, Ok(ServeEnd::TimedOut));
}

/// A greeting refused with 421 ("closing transmission channel", RFC 5321
/// §4.2.3, §3.8): the driver sends it and closes the connection without
/// waiting for a command.
#[tokio::test]
async fn greeting_refused_with_421_closes_the_connection() {
    let (mut c, s) = pair().await;
    let mut cfg = server_config();
    // A session left open would wait this long and then say 421 4.4.2.
    cfg.timeouts.server = Duration::from_secs(2);
    let server = tokio::spawn(async move {
        let mut session = ServerSession::new(cfg).expect("session");
        let busy =
            OwnedReply::new(ReplyCode::SERVICE_NOT_AVAILABLE, "4.3.2 Too busy").expect("reply");
        session.refuse(Some(busy)).expect("refuse");
        let mut rec = Recorder::default();
        serve(s, &mut session, &mut rec, &ServeOptions::default())
            .await
            .map_err(|e| e.to_string())
    });
    let mut got = Vec::new();
    tokio::time::timeout(BOUND, c.read_to_end(&mut got))
        .await
        .expect("bounded")
        .expect("read");
    assert_eq!(String::from_utf8_lossy(&got), "421 4.3.2 Too busy\r\n");
    let end = join(server).await;
    assert_eq!(end, Ok(ServeEnd::Closed));
}

#[tokio::test]
async fn disconnect_mid_data_delivers_nothing() {
    let (mut c, s) = pair().await;
    let server = spawn_recorder(s, server_config());
    let mut got = Vec::new();
    read_until(&mut c, &mut got, b"\r\n").await;
    c.write_all(
        b"EHLO x.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n",
    )
    .await
    .expect("write");
    read_until(&mut c, &mut got, b"354 ").await;
    c.write_all(b"Subject: cut\r\n\r\nhalf a mess")
        .await
        .expect("write");
    drop(c);
    let (end, rec) = join(server).await;
    assert_eq!(end, Ok(ServeEnd::PeerClosed));
    assert!(!rec.saw_end);
    assert!(rec.messages.is_empty());
}
