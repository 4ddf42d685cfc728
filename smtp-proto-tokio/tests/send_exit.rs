//! The `send` examples' exit status: the server's verdict on the message
//! decides it, and an error after the verdict is only a warning (RFC 5321
//! §6.1: once the server accepted the message, it is responsible for it;
//! exiting as if it were unsent would make a script send it twice).

// The examples use the rest of it.
#[allow(dead_code)]
#[path = "../examples/support/send_app.rs"]
mod send_app;
#[path = "../examples/support/send_tokio.rs"]
mod send_tokio;

#[path = "support/send_run.rs"]
mod send_run;
mod support;

use send_run::{ehlo_server, run_send, send_args};
use support::{join, pair, read_line};

use send_app::{exit, Exit};
use smtp_proto_tokio::client::RunError;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[test]
fn the_verdict_on_the_message_decides_the_exit_status() {
    let closed = || Err::<(), _>(RunError::PeerClosed);
    let warning = Some(
        "warning: the server closed the connection (after the server's verdict on the message)"
            .to_owned(),
    );
    // Accepted, then the server closed without answering QUIT: success.
    assert_eq!(
        exit(Some(true), closed()),
        Exit {
            status: 0,
            message: warning.clone()
        }
    );
    // Refused (or refused for a recipient), then the close: still refused.
    assert_eq!(
        exit(Some(false), closed()),
        Exit {
            status: 1,
            message: warning
        }
    );
    // No verdict: the connection failed while the message was unsent.
    assert_eq!(
        exit(None, closed()),
        Exit {
            status: 2,
            message: Some("the server closed the connection".to_owned())
        }
    );
    // Clean ends.
    let clean = || Ok::<(), RunError>(());
    assert_eq!(
        exit(Some(true), clean()),
        Exit {
            status: 0,
            message: None
        }
    );
    assert_eq!(
        exit(Some(false), clean()),
        Exit {
            status: 1,
            message: None
        }
    );
    // Refused before any transaction (the session or AUTH).
    assert_eq!(
        exit(None, clean()),
        Exit {
            status: 1,
            message: None
        }
    );
}

/// Reads one command line (bounded); returns it without its CRLF.
async fn line(s: &mut TcpStream, buf: &mut Vec<u8>) -> String {
    read_line(s, buf).await.expect("the client closed")
}

/// The example's application against a server that accepts the message
/// and closes without answering QUIT: the run ends with the close, and
/// the example exits 0 with a warning.
#[tokio::test]
async fn a_server_that_accepts_and_closes_before_quit_gives_success() {
    let (c, mut s) = pair().await;
    let server = tokio::spawn(async move {
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        s.write_all(b"220 mx.example.net ESMTP\r\n")
            .await
            .expect("greeting");
        for reply in [
            &b"250 mx.example.net\r\n"[..],
            b"250 2.1.0 Ok\r\n",
            b"250 2.1.5 Ok\r\n",
            b"354 Go ahead\r\n",
        ] {
            seen.push(line(&mut s, &mut buf).await);
            s.write_all(reply).await.expect("reply");
        }
        while line(&mut s, &mut buf).await != "." {}
        s.write_all(b"250 2.0.0 queued as 1234\r\n")
            .await
            .expect("reply");
        // QUIT, unanswered: the server goes away.
        seen.push(line(&mut s, &mut buf).await);
        seen
    });
    let args = send_args(
        &["bob@example.org"],
        &["--starttls", "off", "--chunking", "off"],
    );
    let (end, sender) = run_send(c, &args, b"Subject: once\r\n\r\nhello\r\n").await;
    let seen = join(server).await;
    assert_eq!(seen.last().map(String::as_str), Some("QUIT"), "{seen:?}");
    assert!(matches!(end, Err(RunError::PeerClosed)), "{end:?}");
    assert_eq!(sender.delivered, Some(true));
    let exit = exit(sender.delivered, end);
    assert_eq!(exit.status, 0, "{exit:?}");
    assert!(
        exit.message
            .as_deref()
            .is_some_and(|m| m.starts_with("warning: ")),
        "{exit:?}"
    );
}

/// A message the server's extensions rule out (larger than its `SIZE`,
/// 8-bit to a server without 8BITMIME) cannot go to it at all, whenever
/// it is tried: the client refuses it before MAIL, as final a refusal as
/// a 5yz. The session ends with QUIT and the exit status is 1; exit 2
/// would tell a script to send the message again, and it would fail the
/// same way every time.
#[tokio::test]
async fn a_message_the_servers_extensions_rule_out_exits_1_after_quit() {
    let cases: [(&str, &[u8]); 2] = [
        (
            "250-mx.example.net\r\n250 SIZE 10\r\n",
            b"Subject: big\r\n\r\nmore than ten octets\r\n",
        ),
        (
            "250-mx.example.net\r\n250 SIZE 1000\r\n",
            "Subject: 8-bit\r\n\r\nGr\u{fc}\u{df}e\r\n".as_bytes(),
        ),
    ];
    for (ehlo, message) in cases {
        let (c, s) = pair().await;
        let server = tokio::spawn(ehlo_server(s, ehlo));
        let args = send_args(
            &["bob@example.org", "carol@example.org"],
            &["--starttls", "off", "--chunking", "off"],
        );
        let (end, sender) = run_send(c, &args, message).await;
        let seen = join(server).await;
        assert_eq!(seen, ["EHLO localhost", "QUIT"], "{ehlo:?}");
        assert!(end.is_ok(), "{ehlo:?}: {end:?}");
        assert_eq!(sender.delivered, Some(false), "{ehlo:?}");
        let exit = exit(sender.delivered, end);
        assert_eq!(
            exit,
            Exit {
                status: 1,
                message: None
            },
            "{ehlo:?}"
        );
    }
}
