//! A SASL mechanism run by the client's application, through the blocking
//! client driver: the challenge event reaches the handler, the driver sends
//! its answer and goes on; a handler that does not answer stalls the run.
//! Every read has a timeout and every loop a bound.

mod support;

use support::{bounded_timeouts, connect, spawn_peer, spawn_server};

use std::io::{Read, Write};

use smtp_proto_blocking::client::{run, ClientHandler, RunError, RunOptions};
use smtp_proto_blocking::server::{ServeEnd, ServeOptions, ServerHandler};
use smtp_proto_blocking::smtp_proto::client::{
    AuthCredentials, Client, ClientConfig, ClientEvent, TlsPolicy,
};
use smtp_proto_blocking::smtp_proto::command::Domain;
use smtp_proto_blocking::smtp_proto::reply::OwnedReply;
use smtp_proto_blocking::smtp_proto::sasl::{CustomMechanism, SaslMechanism};
use smtp_proto_blocking::smtp_proto::server::{ServerConfig, ServerEvent, ServerSession};
use smtp_proto_blocking::smtp_proto::status::ReplyCode;

/// RFC 2195 §2's example challenge and answer.
const CHALLENGE: &[u8] = b"<1896.697170952@postoffice.reston.mci.net>";
const ANSWER: &[u8] = b"tim b913a602c7eda7a495b4e6e7334d3890";

/// The server application: one CRAM-MD5 challenge, then accepts the known
/// answer.
#[derive(Default)]
struct CramServer {
    responses: Vec<Vec<u8>>,
}

impl ServerHandler for CramServer {
    fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerEvent<'_>,
    ) -> std::io::Result<()> {
        let r = match event {
            ServerEvent::Hello { .. } => session.accept(),
            ServerEvent::AuthExchange {
                response: None,
                round: 0,
                ..
            } => session.auth_challenge(CHALLENGE).map(|_| ()),
            ServerEvent::AuthExchange {
                response: Some(r),
                round: 1,
                ..
            } if r.expose() == ANSWER => {
                self.responses.push(r.expose().to_vec());
                session.accept_auth("tim")
            }
            ServerEvent::AuthExchange { .. } => session.reject(
                OwnedReply::new(ReplyCode::AUTH_CREDENTIALS_INVALID, "Bad digest")
                    .map_err(std::io::Error::other)?,
            ),
            _ => Ok(()),
        };
        r.map_err(std::io::Error::other)
    }
}

/// The client application: authenticates with CRAM-MD5 and answers the
/// challenge when `answer` is on, then quits.
struct CramClient {
    answer: bool,
    events: Vec<String>,
}

impl ClientHandler for CramClient {
    fn on_event(&mut self, client: &mut Client, event: ClientEvent<'_>) -> std::io::Result<()> {
        self.events.push(format!("{event:?}"));
        let r = match event {
            ClientEvent::Ready => {
                let cram = CustomMechanism::new("CRAM-MD5").map_err(std::io::Error::other)?;
                client
                    .authenticate(AuthCredentials::custom(cram, None), None)
                    .map(|_| ())
            }
            ClientEvent::AuthChallenge {
                challenge, round, ..
            } if self.answer => {
                assert_eq!((&challenge[..], round), (CHALLENGE, 1));
                client.auth_response(ANSWER)
            }
            ClientEvent::Authenticated { .. } | ClientEvent::AuthFailed { .. } => client.quit(),
            _ => Ok(()),
        };
        r.map_err(std::io::Error::other)
    }

    fn next_body_piece(&mut self, _: &mut Vec<u8>) -> std::io::Result<bool> {
        Ok(false)
    }
}

fn client_config() -> ClientConfig {
    ClientConfig::new(Domain::new("client.example.net").unwrap())
        .with_tls(TlsPolicy::Off)
        .with_auth_without_tls(true)
        .with_timeouts(bounded_timeouts())
}

#[test]
fn custom_mechanism_challenge_reaches_the_handler_and_its_answer_the_server() {
    let mut config = ServerConfig::new("mx.example.org");
    config.auth_mechanisms = vec![SaslMechanism::custom("CRAM-MD5").unwrap()];
    config.auth_requires_tls = false;
    let (addr, server) = spawn_server(config, ServeOptions::default(), CramServer::default());
    let mut client = Client::new(client_config());
    let mut handler = CramClient {
        answer: true,
        events: Vec::new(),
    };
    run(
        connect(addr),
        &mut client,
        &mut handler,
        &RunOptions::default(),
    )
    .expect("client run");
    let (end, app) = server.join().expect("server thread");
    assert_eq!(end.expect("server result"), ServeEnd::Closed);
    assert_eq!(app.responses, [ANSWER.to_vec()]);
    assert_eq!(
        handler
            .events
            .iter()
            .filter(|e| e.starts_with("AuthChallenge"))
            .count(),
        1
    );
    assert!(handler
        .events
        .iter()
        .any(|e| e.starts_with("Authenticated")));
    assert!(client.is_closed());
}

#[test]
fn an_unanswered_challenge_stalls_the_run() {
    // A scripted server: greeting, EHLO reply, one challenge, then it reads
    // until the client goes away.
    let (addr, peer) = spawn_peer(|mut s| {
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        let mut wait_for = |s: &mut std::net::TcpStream, got: &mut Vec<u8>, what: &[u8]| {
            for _ in 0..100 {
                if got.windows(what.len()).any(|w| w == what) {
                    return true;
                }
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            false
        };
        s.write_all(b"220 mx.example.org ESMTP\r\n").unwrap();
        assert!(wait_for(&mut s, &mut got, b"EHLO client.example.net\r\n"));
        s.write_all(b"250-mx.example.org\r\n250 AUTH CRAM-MD5\r\n")
            .unwrap();
        assert!(wait_for(&mut s, &mut got, b"AUTH CRAM-MD5\r\n"));
        s.write_all(b"334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n")
            .unwrap();
        // Nothing more comes: the client neither answers nor cancels.
        wait_for(&mut s, &mut got, b"\xff");
        got
    });
    let mut client = Client::new(client_config());
    let mut handler = CramClient {
        answer: false,
        events: Vec::new(),
    };
    let r = run(
        connect(addr),
        &mut client,
        &mut handler,
        &RunOptions::default(),
    );
    // Stalled, not TimedOut: the driver did not wait on the server.
    assert!(matches!(r, Err(RunError::Stalled)), "{r:?}");
    assert!(handler
        .events
        .last()
        .is_some_and(|e| e.starts_with("AuthChallenge")));
    drop(client);
    let got = peer.join().expect("peer thread");
    assert!(got.ends_with(b"AUTH CRAM-MD5\r\n"), "{got:?}");
}
