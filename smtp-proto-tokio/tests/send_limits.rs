//! The `send` examples against a server's `LIMITS` (RFC 9422): the
//! recipients split into transactions by `RCPTMAX` and `RCPTDOMAINMAX`,
//! and a `MAILMAX` reached before the last of them.

// The examples use the rest of it.
#[allow(dead_code)]
#[path = "../examples/support/send_app.rs"]
mod send_app;
#[path = "../examples/support/send_tokio.rs"]
mod send_tokio;

#[path = "support/send_run.rs"]
mod send_run;
mod support;

use send_run::{run_send, send_args};
use support::{join, pair, read_line};

use send_app::{exit, Exit};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A server without PIPELINING that advertises `limits`, answers MAIL
/// with `mail`, accepts every other command and message, answers QUIT,
/// and returns the command lines it read (the message lines left out)
/// once the client is gone.
async fn scripted_server(
    mut s: TcpStream,
    limits: &'static str,
    mail: &'static str,
) -> Vec<String> {
    let mut buf = Vec::new();
    let mut seen = Vec::new();
    s.write_all(b"220 mx.example.net ESMTP\r\n")
        .await
        .expect("greeting");
    while let Some(cmd) = read_line(&mut s, &mut buf).await {
        seen.push(cmd.clone());
        let verb = cmd
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" => format!("250-mx.example.net\r\n250 {limits}\r\n"),
            "DATA" => {
                s.write_all(b"354 Go ahead\r\n").await.expect("354");
                loop {
                    match read_line(&mut s, &mut buf).await {
                        Some(l) if l == "." => break,
                        Some(_) => {}
                        None => return seen,
                    }
                }
                "250 2.0.0 queued\r\n".to_owned()
            }
            "MAIL" => mail.to_owned(),
            "QUIT" => "221 2.0.0 bye\r\n".to_owned(),
            _ => "250 2.0.0 Ok\r\n".to_owned(),
        };
        if s.write_all(reply.as_bytes()).await.is_err() || verb == "QUIT" {
            break;
        }
    }
    seen
}

const OK: &str = "250 2.0.0 Ok\r\n";

/// The message every run here sends.
const LIMITS_MESSAGE: &[u8] = b"Subject: limits\r\n\r\nhello\r\n";

async fn send_with(
    limits: &'static str,
    mail: &'static str,
    to: &[&str],
) -> (Vec<String>, Option<bool>, Exit) {
    let (c, s) = pair().await;
    let server = tokio::spawn(scripted_server(s, limits, mail));
    let args = send_args(to, &["--starttls", "off", "--chunking", "off"]);
    let (end, sender) = run_send(c, &args, LIMITS_MESSAGE).await;
    let seen = join(server).await;
    (seen, sender.delivered, exit(sender.delivered, end))
}

/// `MAILMAX=1` with recipients for two transactions (`RCPTMAX=1`): the
/// first is delivered, the second cannot go on this connection. The
/// session ends with QUIT (not a dropped connection), the run with no
/// error, and the exit status is 1: not every recipient got the message.
#[tokio::test]
async fn mailmax_reached_before_the_last_batch_quits_and_exits_1() {
    let (seen, delivered, exit) = send_with(
        "LIMITS RCPTMAX=1 MAILMAX=1",
        OK,
        &["bob@example.org", "carol@example.org"],
    )
    .await;
    assert_eq!(
        seen,
        [
            "EHLO localhost",
            "MAIL FROM:<alice@example.com>",
            "RCPT TO:<bob@example.org>",
            "DATA",
            "QUIT",
        ],
        "{seen:?}"
    );
    assert_eq!(delivered, Some(false));
    assert_clean_exit(&exit, 1);
}

/// `RCPTDOMAINMAX=1`: recipients in two domains go in two transactions,
/// each with the message, rather than an envelope the client refuses.
#[tokio::test]
async fn recipients_are_split_by_rcptdomainmax() {
    let (seen, delivered, exit) = send_with(
        "LIMITS RCPTMAX=10 RCPTDOMAINMAX=1",
        OK,
        &["bob@example.org", "carol@EXAMPLE.org", "dave@example.net"],
    )
    .await;
    let rcpts: Vec<&str> = seen
        .iter()
        .map(String::as_str)
        .filter(|l| l.starts_with("MAIL ") || l.starts_with("RCPT ") || *l == "DATA")
        .collect();
    assert_eq!(
        rcpts,
        [
            "MAIL FROM:<alice@example.com>",
            "RCPT TO:<bob@example.org>",
            "RCPT TO:<carol@EXAMPLE.org>",
            "DATA",
            "MAIL FROM:<alice@example.com>",
            "RCPT TO:<dave@example.net>",
            "DATA",
        ],
        "{seen:?}"
    );
    assert_eq!(seen.last().map(String::as_str), Some("QUIT"));
    assert_eq!(delivered, Some(true));
    assert_clean_exit(&exit, 0);
}

/// A sender refused with 5yz: RFC 5321 §4.2.1, the client "SHOULD NOT
/// repeat the exact request", so the batches after the first are not
/// tried (the same MAIL again); the session ends with QUIT, exit 1.
#[tokio::test]
async fn a_sender_refused_for_good_is_not_sent_again_for_the_next_batch() {
    let (seen, delivered, exit) = send_with(
        "LIMITS RCPTMAX=1",
        "550 5.7.1 sender refused\r\n",
        &["bob@example.org", "carol@example.org", "dave@example.org"],
    )
    .await;
    assert_eq!(
        seen,
        ["EHLO localhost", "MAIL FROM:<alice@example.com>", "QUIT"],
        "{seen:?}"
    );
    assert_eq!(delivered, Some(false));
    assert_clean_exit(&exit, 1);
}

/// A sender refused for now (4yz) may be accepted for the next batch: it
/// is tried again, once per batch.
#[tokio::test]
async fn a_sender_refused_for_now_is_tried_for_the_next_batch() {
    let (seen, delivered, exit) = send_with(
        "LIMITS RCPTMAX=1",
        "451 4.3.0 try later\r\n",
        &["bob@example.org", "carol@example.org"],
    )
    .await;
    assert_eq!(
        seen,
        [
            "EHLO localhost",
            "MAIL FROM:<alice@example.com>",
            "MAIL FROM:<alice@example.com>",
            "QUIT"
        ],
        "{seen:?}"
    );
    assert_eq!(delivered, Some(false));
    assert_eq!(exit.status, 1, "{exit:?}");
}

/// `RCPTMAX=1` and a server that breaks the connection at the second
/// MAIL: the first recipient has the message, the second had no
/// transaction. The run failed before the server's verdict on the message
/// for the second: exit 2 (send again), not 1 (the server refused
/// something), which would leave the second recipient without the message.
#[tokio::test]
async fn a_connection_lost_before_the_last_batch_exits_2() {
    let (c, mut s) = pair().await;
    let server = tokio::spawn(async move {
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        let mut mails = 0;
        s.write_all(b"220 mx.example.net ESMTP\r\n")
            .await
            .expect("greeting");
        // Bounded: at most 100 commands and 1000 message lines, each
        // read within BOUND.
        for _ in 0..100 {
            let Some(cmd) = read_line(&mut s, &mut buf).await else {
                break;
            };
            seen.push(cmd.clone());
            let reply: &[u8] = match cmd.split(' ').next().unwrap_or_default() {
                "EHLO" => b"250-mx.example.net\r\n250 LIMITS RCPTMAX=1\r\n",
                "MAIL" if mails == 1 => break,
                "MAIL" => {
                    mails += 1;
                    OK.as_bytes()
                }
                "DATA" => {
                    s.write_all(b"354 Go ahead\r\n").await.expect("354");
                    for _ in 0..1000 {
                        if read_line(&mut s, &mut buf).await.is_none_or(|l| l == ".") {
                            break;
                        }
                    }
                    b"250 2.0.0 queued\r\n"
                }
                _ => OK.as_bytes(),
            };
            s.write_all(reply).await.expect("reply");
        }
        seen
    });
    let args = send_args(
        &["bob@example.org", "carol@example.org"],
        &["--starttls", "off"],
    );
    let (end, sender) = run_send(c, &args, LIMITS_MESSAGE).await;
    let seen = join(server).await;
    assert_eq!(
        seen.iter().filter(|c| c.starts_with("MAIL ")).count(),
        2,
        "{seen:?}"
    );
    assert!(end.is_err(), "{end:?}");
    assert_eq!(sender.delivered, None);
    let exit = exit(sender.delivered, end);
    assert_eq!(exit.status, 2, "{exit:?}");
    assert!(
        !exit
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("verdict"),
        "{exit:?}"
    );
}

/// The run ended with `status` and no error to report.
fn assert_clean_exit(exit: &Exit, status: u8) {
    assert_eq!(
        exit,
        &Exit {
            status,
            message: None
        }
    );
}
