//! A SASL mechanism run by both applications (RFC 2195's CRAM-MD5 bytes,
//! no crypto), through the tokio drivers over loopback TCP: the server's
//! challenge reaches the client's handler, its answer the server's, and
//! the message follows the AUTH.

mod support;

use support::{client_config, join, pair, OneMessage, Recorder, BOUND};

use smtp_proto_tokio::client::{self, RunOptions};
use smtp_proto_tokio::server::{serve, ServeEnd, ServeOptions};
use smtp_proto_tokio::smtp_proto::client::{AuthCredentials, Client, TlsPolicy};
use smtp_proto_tokio::smtp_proto::sasl::{CustomMechanism, SaslMechanism};
use smtp_proto_tokio::smtp_proto::server::{ServerConfig, ServerSession};

const CHALLENGE: &[u8] = b"<1896.697170952@postoffice.reston.mci.net>";
const ANSWER: &[u8] = b"tim b913a602c7eda7a495b4e6e7334d3890";

/// Runs our client against our server, both with CRAM-MD5 run by the
/// applications; the client answers with `answer`.
async fn exchange(answer: &[u8]) -> (OneMessage, Recorder, ServeEnd) {
    let (client_stream, server_stream) = pair().await;
    let server = tokio::spawn(async move {
        let mut config = ServerConfig::new("mx.example.org");
        config.auth_mechanisms = vec![SaslMechanism::custom("CRAM-MD5").expect("name")];
        config.auth_requires_tls = false;
        let mut session = ServerSession::new(config).expect("session");
        session.greet().expect("greet");
        let mut rec = Recorder {
            exchange: Some((CHALLENGE.to_vec(), ANSWER.to_vec())),
            ..Recorder::default()
        };
        let end = serve(
            server_stream,
            &mut session,
            &mut rec,
            &ServeOptions::default(),
        )
        .await;
        (end.expect("serve"), rec)
    });
    let mut app = OneMessage::new("a@example.net", ["b@example.org".to_owned()], b"Hi\r\n");
    let cram = CustomMechanism::new("CRAM-MD5").expect("name");
    app.auth = Some(AuthCredentials::custom(cram, None));
    app.answers = vec![answer.to_vec()];
    let mut client = Client::new(client_config(TlsPolicy::Off).with_auth_without_tls(true));
    let options = RunOptions::default();
    let run = client::run(client_stream, &mut client, &mut app, &options);
    tokio::time::timeout(BOUND, run)
        .await
        .expect("bounded")
        .expect("client run");
    let (end, rec) = join(server).await;
    (app, rec, end)
}

#[tokio::test]
async fn custom_mechanism_runs_between_the_applications() {
    let (app, rec, end) = exchange(ANSWER).await;
    assert_eq!(end, ServeEnd::Closed);
    assert_eq!(app.challenges, [(CHALLENGE.to_vec(), 1)]);
    assert_eq!(rec.auth_user.as_deref(), Some("tim"));
    assert_eq!(app.delivered, Some(true));
    assert_eq!(rec.messages, [b"Hi\r\n".to_vec()]);
}

#[tokio::test]
async fn a_wrong_answer_is_refused_and_nothing_is_sent() {
    let (app, rec, end) = exchange(b"tim 00000000000000000000000000000000").await;
    assert_eq!(end, ServeEnd::Closed);
    assert_eq!(app.challenges.len(), 1);
    assert_eq!(rec.auth_user, None);
    // The client application quits after a failed AUTH.
    assert_eq!(app.delivered, None);
    assert!(rec.messages.is_empty());
}
