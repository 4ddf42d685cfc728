//! The drivers where the peer misbehaves or the setup is unusual: BDAT
//! without PIPELINING, peers that stop reading, a server that answers and
//! closes in the middle of a body, before its end or before the client's
//! next command is written, handler errors and configuration errors. Over
//! loopback TCP (and an in-memory stream where a write must fail at an
//! exact point), every wait bounded.

mod support;

use support::{client_config, envelope, join, pair, read_until, spawn_recorder, Recorder, BOUND};

use std::time::Duration;

use smtp_proto_tokio::client::{self, ClientHandler, RunOptions};
use smtp_proto_tokio::rustls::pki_types::ServerName;
use smtp_proto_tokio::server::{serve, ServeEnd, ServeError, ServeOptions, ServerHandler};
use smtp_proto_tokio::smtp_proto::client::{
    ChunkingPolicy, Client, ClientError, ClientEvent, TlsPolicy, TransactionSummary, Verdict,
};
use smtp_proto_tokio::smtp_proto::server::{ServerConfig, ServerEvent, ServerSession, UsageError};
use smtp_proto_tokio::tls;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// A client application that sends one message, in the given pieces, to
/// one recipient, and records what it saw.
struct Pieces {
    pieces: Vec<Vec<u8>>,
    next: usize,
    started: bool,
    send_body_events: usize,
    /// Whether the handler was given `StartTls` (the driver's own event).
    starttls: bool,
    delivered: Option<bool>,
    closing: Option<String>,
    /// The server's reply to MAIL, as it wrote it.
    sender: Option<String>,
    /// The server's verdict on the message, as it wrote it.
    message: Option<String>,
    summary: Option<TransactionSummary>,
}

impl Pieces {
    fn new(pieces: Vec<Vec<u8>>) -> Self {
        Self {
            pieces,
            next: 0,
            started: false,
            send_body_events: 0,
            starttls: false,
            delivered: None,
            closing: None,
            sender: None,
            message: None,
            summary: None,
        }
    }

    fn whole(&self) -> Vec<u8> {
        self.pieces.concat()
    }
}

impl ClientHandler for Pieces {
    async fn on_event(
        &mut self,
        client: &mut Client,
        event: ClientEvent<'_>,
    ) -> std::io::Result<()> {
        let r = match event {
            ClientEvent::Ready if !self.started => {
                self.started = true;
                client.send_mail(&envelope("a@example.com", ["b@example.org"]))
            }
            ClientEvent::Ready => client.quit(),
            ClientEvent::SendBody => {
                self.send_body_events += 1;
                Ok(())
            }
            ClientEvent::StartTls => {
                self.starttls = true;
                Ok(())
            }
            ClientEvent::Sender { reply, .. } => {
                self.sender = Some(String::from_utf8_lossy(reply.as_bytes()).into_owned());
                Ok(())
            }
            ClientEvent::Message { reply, .. } => {
                self.message = Some(String::from_utf8_lossy(reply.as_bytes()).into_owned());
                Ok(())
            }
            ClientEvent::TransactionEnd(summary) => {
                self.delivered = Some(summary.all_delivered());
                self.summary = Some(summary);
                client.quit()
            }
            ClientEvent::ServiceClosing { reply, .. } => {
                self.closing = Some(String::from_utf8_lossy(reply.as_bytes()).into_owned());
                Ok(())
            }
            _ => Ok(()),
        };
        r.map_err(std::io::Error::other)
    }

    async fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> std::io::Result<bool> {
        let Some(p) = self.pieces.get(self.next) else {
            return Ok(false);
        };
        piece.extend_from_slice(p);
        self.next += 1;
        Ok(true)
    }
}

/// Runs the client driver over `stream` with default options, bounded.
async fn run_bounded<S>(
    stream: S,
    client: &mut Client,
    app: &mut Pieces,
) -> Result<(), client::RunError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    tokio::time::timeout(
        BOUND,
        client::run(stream, client, app, &RunOptions::default()),
    )
    .await
    .expect("bounded")
}

/// [`run_bounded`] of a client with `tls` that sends one short body;
/// returns how the run ended, the handler and the machine.
async fn run_one_body<S>(
    stream: S,
    tls: TlsPolicy,
) -> (Result<(), client::RunError>, Pieces, Client)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let mut client = Client::new(client_config(tls));
    let mut app = Pieces::new(vec![b"body\r\n".to_vec()]);
    let end = run_bounded(stream, &mut client, &mut app).await;
    (end, app, client)
}

/// A scripted server's replies, all at once, to a client without
/// PIPELINING that sends one message to one recipient: the greeting, EHLO,
/// MAIL, RCPT and the 354 for DATA. The client sends one command at a time
/// and finds each reply already waiting.
async fn answer_up_to_data<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) {
    answer_each(
        s,
        &[
            b"250 mx.example.net\r\n",
            b"250 ok\r\n",
            b"250 ok\r\n",
            b"354 go\r\n",
        ],
    )
    .await;
}

/// Writes the greeting, answers EHLO with STARTTLS, and once the first
/// octet of the client's STARTTLS is read (it was handed out to be
/// written), writes `last` and closes with the rest of STARTTLS unread:
/// over an 8-octet in-memory stream, the client's write of it fails.
async fn answer_starttls_and_close(s: &mut tokio::io::DuplexStream, last: &[u8]) {
    answer_each(s, &[b"250-mx.example.net\r\n250 STARTTLS\r\n"]).await;
    let mut first = [0u8; 1];
    tokio::time::timeout(BOUND, s.read_exact(&mut first))
        .await
        .expect("bounded")
        .expect("read");
    assert_eq!(&first, b"S");
    s.write_all(last).await.expect("write");
}

/// Writes the greeting, then each of `replies` once the command it
/// answers was read: a server answers a command only once it got it. The
/// client sends one command at a time (no PIPELINING), so each read ends
/// with the command's line.
async fn answer_each<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, replies: &[&[u8]]) {
    s.write_all(b"220 mx.example.net ready\r\n")
        .await
        .expect("write");
    for reply in replies {
        let mut line = Vec::new();
        read_until(s, &mut line, b"\r\n").await;
        s.write_all(reply).await.expect("write");
    }
}

/// Reads until the peer closes (or resets), bounded; returns what came.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(BOUND, async {
        let mut chunk = [0u8; 4096];
        for _ in 0..100_000 {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
        panic!("the server did not close");
    })
    .await
    .expect("the server closes");
    got
}

/// Sends `pieces` as one message over BDAT (CHUNKING on, PIPELINING as
/// given) to the crate's server over `(c, s)`, and checks that the server
/// stored them whole. Returns the client application, to check more.
async fn deliver_over_bdat(
    (c, s): (TcpStream, TcpStream),
    pipelining: bool,
    pieces: Vec<Vec<u8>>,
) -> Pieces {
    let mut cfg = ServerConfig::new("mx.example.net");
    cfg.chunking = true;
    cfg.pipelining = pipelining;
    let server = spawn_recorder(s, cfg);
    let mut app = Pieces::new(pieces);
    let mut client =
        Client::new(client_config(TlsPolicy::Off).with_chunking(ChunkingPolicy::Prefer));
    run_bounded(c, &mut client, &mut app)
        .await
        .expect("client run");
    assert_eq!(app.delivered, Some(true));
    let (end, rec) = join(server).await;
    assert_eq!(end, Ok(ServeEnd::Closed));
    assert_eq!(rec.messages, vec![app.whole()]);
    app
}

#[tokio::test]
async fn bdat_without_pipelining_delivers_a_message_of_many_pieces() {
    let pieces: Vec<Vec<u8>> = (0..5)
        .map(|i| format!("Piece-{i}: {}\r\n", "x".repeat(100 * i)).into_bytes())
        .collect();
    let app = deliver_over_bdat(pair().await, false, pieces).await;
    // One SendBody per chunk: each chunk waited for its reply.
    assert_eq!(app.send_body_events, 6);
}

/// A loopback pair whose sockets have 32 KiB send and receive buffers, so
/// that unread bytes stall a writer soon.
async fn small_buffer_pair() -> (TcpStream, TcpStream) {
    const SIZE: u32 = 32 * 1024;
    let listener = tokio::net::TcpSocket::new_v4().expect("socket");
    listener.set_recv_buffer_size(SIZE).expect("rcvbuf");
    listener.set_send_buffer_size(SIZE).expect("sndbuf");
    listener
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let listener = listener.listen(1).expect("listen");
    let addr = listener.local_addr().expect("addr");
    let client = tokio::net::TcpSocket::new_v4().expect("socket");
    client.set_recv_buffer_size(SIZE).expect("rcvbuf");
    client.set_send_buffer_size(SIZE).expect("sndbuf");
    let (c, s) = tokio::join!(client.connect(addr), listener.accept());
    (c.expect("connect"), s.expect("accept").0)
}

#[tokio::test]
async fn many_small_pipelined_bdat_chunks_do_not_stall() {
    // 2 MB in 100-octet pieces: 20,000 chunks, and as many replies, which
    // are far more than the buffers hold if nobody reads them.
    let line = format!("{}\r\n", "y".repeat(98)).into_bytes();
    let app = deliver_over_bdat(small_buffer_pair().await, true, vec![line; 20_000]).await;
    // Pipelined: one SendBody for the whole message.
    assert_eq!(app.send_body_events, 1);
}

/// A scripted server offering PIPELINING and CHUNKING that refuses the
/// first BDAT chunk (552) and answers every later one with 503 (RFC 3030
/// §2), each once it has read the chunk whole; everything else gets 250,
/// QUIT 221. Returns the command lines it read.
async fn refuse_the_first_chunk(mut s: TcpStream) -> Vec<String> {
    let mut seen = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    s.write_all(b"220 mx.example.net ESMTP\r\n")
        .await
        .expect("write");
    let mut chunks = 0;
    tokio::time::timeout(BOUND, async {
        for _ in 0..100 {
            let mut line = None;
            for _ in 0..100_000 {
                if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                    line = Some(String::from_utf8_lossy(&buf[..i]).into_owned());
                    buf.drain(..i + 2);
                    break;
                }
                let n = s.read(&mut chunk).await.expect("read");
                assert!(n > 0, "the client closed before QUIT");
                buf.extend_from_slice(&chunk[..n]);
            }
            let line = line.expect("a command line");
            let reply: &[u8] = if line.starts_with("EHLO ") {
                b"250-mx.example.net\r\n250-PIPELINING\r\n250 CHUNKING\r\n"
            } else if let Some(args) = line.strip_prefix("BDAT ") {
                let size: usize = args
                    .split(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("size");
                let mut left = size - size.min(buf.len());
                buf.drain(..size.min(buf.len()));
                for _ in 0..100_000 {
                    if left == 0 {
                        break;
                    }
                    let want = left.min(chunk.len());
                    let n = s.read(&mut chunk[..want]).await.expect("read");
                    assert!(n > 0, "the client closed in a chunk");
                    left -= n;
                }
                assert_eq!(left, 0, "chunk read whole");
                chunks += 1;
                if chunks == 1 {
                    b"552 5.3.4 message too big\r\n"
                } else {
                    b"503 5.5.1 no transaction\r\n"
                }
            } else if line == "QUIT" {
                b"221 2.0.0 bye\r\n"
            } else {
                b"250 2.0.0 ok\r\n"
            };
            s.write_all(reply).await.expect("write");
            seen.push(line);
            if seen.last().is_some_and(|l| l == "QUIT") {
                return;
            }
        }
        panic!("no QUIT after 100 commands");
    })
    .await
    .expect("bounded");
    seen
}

/// The server refuses the first of several pipelined BDAT chunks while the
/// client still writes the body. The client sends no more chunks, reads
/// the reply still due for the chunk already sent, and ends the
/// transaction with the refusal reported (not `RunError::Stalled`), then
/// quits.
#[tokio::test]
async fn a_refused_pipelined_chunk_ends_the_transaction_with_the_refusal() {
    let (c, s) = small_buffer_pair().await;
    let server = tokio::spawn(refuse_the_first_chunk(s));
    let line = format!("{}\r\n", "y".repeat(98)).into_bytes();
    // A small first chunk, then chunks far larger than the socket buffers:
    // the server refuses the first while the second is still being
    // written, and the client reads the refusal meanwhile.
    let mut app = Pieces::new(vec![
        line.repeat(100),
        line.repeat(10_000),
        line.repeat(10_000),
    ]);
    let mut client =
        Client::new(client_config(TlsPolicy::Off).with_chunking(ChunkingPolicy::Prefer));
    let end = run_bounded(c, &mut client, &mut app).await;
    assert!(end.is_ok(), "{end:?}");
    assert_eq!(
        app.message.as_deref(),
        Some("552 5.3.4 message too big\r\n")
    );
    let summary = app.summary.expect("the transaction ended");
    assert_eq!(summary.message, Some(Verdict::Permanent));
    assert_eq!(summary.recipients[0].verdict(), Verdict::Permanent);
    assert!(client.is_closed());
    let seen = join(server).await;
    assert_eq!(
        seen,
        [
            "EHLO client.example.com",
            "MAIL FROM:<a@example.com>",
            "RCPT TO:<b@example.org>",
            "BDAT 10000",
            "BDAT 1000000",
            "QUIT",
        ]
    );
    // The third piece was never asked for.
    assert_eq!(app.next, 2);
}

#[tokio::test]
async fn server_ends_when_the_client_pipelines_and_never_reads() {
    let (mut c, s) = pair().await;
    let mut cfg = ServerConfig::new("mx.example.net");
    cfg.timeouts.server = Duration::from_millis(300);
    let server = tokio::spawn(async move {
        let mut session = ServerSession::new(cfg).expect("session");
        session.greet().expect("greet");
        let mut rec = Recorder::default();
        serve(s, &mut session, &mut rec, &ServeOptions::default()).await
    });
    // 4 MB of NOOP, and not one byte read: the replies fill the socket
    // buffers, then the server's writes stall.
    let noops = b"NOOP\r\n".repeat(4 * 1024 * 1024 / 6);
    let writer = tokio::spawn(async move {
        // This write stalls too once the server stops reading; it is
        // dropped at the end of the test.
        let _ = c.write_all(&noops).await;
        c
    });
    let end = tokio::time::timeout(BOUND, server)
        .await
        .expect("the server task ends although the client never reads")
        .expect("join");
    assert!(matches!(end, Err(ServeError::WriteTimedOut)), "{end:?}");
    writer.abort();
}

#[tokio::test]
async fn client_times_out_when_the_server_never_reads_the_body() {
    let (c, mut s) = pair().await;
    // The server answers everything up to DATA at once (no PIPELINING, so
    // the client still sends one command at a time and finds each reply
    // waiting), then reads nothing more and keeps the connection open.
    let server = tokio::spawn(async move {
        answer_up_to_data(&mut s).await;
        tokio::time::sleep(BOUND).await;
        drop(s);
    });
    let mut timeouts = client_config(TlsPolicy::Off).timeouts;
    timeouts.data_block = Duration::from_millis(300);
    let mut client = Client::new(client_config(TlsPolicy::Off).with_timeouts(timeouts));
    // 16 MB of body in 64 KiB pieces: far more than the socket buffers.
    let mut app = Pieces::new(vec![b"x".repeat(64 * 1024); 256]);
    let end = tokio::time::timeout(
        BOUND,
        client::run(c, &mut client, &mut app, &RunOptions::default()),
    )
    .await
    .expect("the client ends although the server never reads");
    assert!(matches!(end, Err(client::RunError::TimedOut)), "{end:?}");
    assert!(app.send_body_events == 1 && app.next < 256);
    server.abort();
}

#[tokio::test]
async fn many_pipelined_commands_are_each_answered_once_in_order() {
    let (mut c, s) = pair().await;
    let server = spawn_recorder(s, ServerConfig::new("mx.example.net"));
    // About 200 KB in one go, with one transaction in the middle, so the
    // read buffer is refilled many times with commands already waiting.
    const N: usize = 15_000;
    let mut input = b"EHLO client.example.com\r\n".to_vec();
    input.extend_from_slice(&b"NOOP\r\n".repeat(N));
    input.extend_from_slice(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
    let mut got = Vec::new();
    read_until(&mut c, &mut got, b"\r\n").await;
    let (mut rd, mut wr) = c.into_split();
    let writer = tokio::spawn(async move {
        wr.write_all(&input).await.expect("write");
        wr
    });
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(BOUND, async {
        while !got.windows(4).any(|w| w == b"354 ") {
            let n = rd.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed early");
            got.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("bounded");
    let mut wr = writer.await.expect("join");
    wr.write_all(b"Subject: t\r\n\r\nbody\r\n.\r\n")
        .await
        .expect("write");
    wr.write_all(&b"NOOP\r\n".repeat(N)).await.expect("write");
    wr.write_all(b"QUIT\r\n").await.expect("write");
    let mut c = rd.reunite(wr).expect("reunite");
    got.extend_from_slice(&read_to_close(&mut c).await);
    let text = String::from_utf8_lossy(&got).into_owned();
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    // Greeting, EHLO (its last line), N NOOPs, MAIL, RCPT, 354, the
    // message, N NOOPs, 221: every reply once, in order.
    let finals: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.as_bytes().get(3) == Some(&b' '))
        .collect();
    assert_eq!(finals.len(), 1 + 1 + N + 3 + 1 + N + 1, "{}", &text[..200]);
    assert!(finals[0].starts_with("220 "));
    assert!(finals[2..2 + N].iter().all(|l| l.starts_with("250 ")));
    assert!(finals[2 + N + 2].starts_with("354 "));
    assert!(finals[2 + N + 3].starts_with("250 "));
    assert!(finals[2 + N + 4..2 + 2 * N + 4]
        .iter()
        .all(|l| l.starts_with("250 ")));
    assert!(finals[finals.len() - 1].starts_with("221 "));
    let (end, rec) = join(server).await;
    assert_eq!(end, Ok(ServeEnd::Closed));
    assert_eq!(rec.messages, vec![b"Subject: t\r\n\r\nbody\r\n".to_vec()]);
}

/// A server that takes about a megabyte of a 16 MB body, then writes
/// `reply` and closes with more of the body unread (so the client's next
/// writes fail). Returns how the client's run ended, its application and
/// its machine.
async fn server_answers_mid_body_and_closes(
    reply: &'static [u8],
) -> (Result<(), client::RunError>, Pieces, Client) {
    let (c, mut s) = pair().await;
    let server = tokio::spawn(async move {
        answer_up_to_data(&mut s).await;
        let mut seen = 0usize;
        let mut chunk = vec![0u8; 64 * 1024];
        tokio::time::timeout(BOUND, async {
            while seen < 1024 * 1024 {
                let n = s.read(&mut chunk).await.expect("read");
                assert!(n > 0, "the client closed");
                seen += n;
            }
        })
        .await
        .expect("bounded");
        s.write_all(reply).await.expect("write");
        drop(s);
    });
    let mut client = Client::new(client_config(TlsPolicy::Off));
    // 16 MB of body: the server closes long before it is all written.
    let mut app = Pieces::new(vec![b"x".repeat(64 * 1024); 256]);
    let end = run_bounded(c, &mut client, &mut app).await;
    join(server).await;
    assert!(app.next < 256, "the whole body went through");
    (end, app, client)
}

/// Checks a run whose server wrote `421 4.3.0 ... closing` and closed
/// while the body was written: the handler saw the 421, the session is
/// closed and the run ends as after any 421.
fn assert_closed_by_421(end: Result<(), client::RunError>, app: &Pieces, client: &Client) {
    assert!(end.is_ok(), "{end:?}");
    assert_eq!(
        app.closing.as_deref(),
        Some("421 4.3.0 mx.example.net out of space, closing\r\n")
    );
    assert!(client.is_closed());
}

/// Checks a run whose server refused the message with `552 5.3.4` and
/// closed while the body was written (RFC 5321 §4.2.5: the reply answers
/// the message): the refusal is the message's verdict, so the application
/// bounces the message instead of retrying it, and the run ends with the
/// close.
fn assert_refused_with_552(end: Result<(), client::RunError>, app: &Pieces) {
    assert!(matches!(end, Err(client::RunError::PeerClosed)), "{end:?}");
    assert_eq!(
        app.message.as_deref(),
        Some("552 5.3.4 Message too big\r\n")
    );
    let summary = app.summary.as_ref().expect("the transaction ended");
    assert_eq!(summary.message, Some(Verdict::Permanent));
    assert_eq!(app.delivered, Some(false));
    assert_eq!(app.closing, None);
}

#[tokio::test]
async fn client_reports_the_421_of_a_server_that_closes_mid_body() {
    let (end, app, client) =
        server_answers_mid_body_and_closes(b"421 4.3.0 mx.example.net out of space, closing\r\n")
            .await;
    assert_closed_by_421(end, &app, &client);
}

#[tokio::test]
async fn client_takes_the_552_of_a_server_that_closes_mid_body_as_the_verdict() {
    let (end, app, _) = server_answers_mid_body_and_closes(b"552 5.3.4 Message too big\r\n").await;
    assert_refused_with_552(end, &app);
}

/// A [`Pieces`] application that, once it has no piece left, waits for
/// the scripted server's task to end (it has answered and closed) before
/// it lets the client write the end of the message. Keeps what the server
/// read.
struct EndsAfterServer {
    app: Pieces,
    server: Option<JoinHandle<Vec<u8>>>,
    server_read: Option<Vec<u8>>,
}

impl ClientHandler for EndsAfterServer {
    async fn on_event(
        &mut self,
        client: &mut Client,
        event: ClientEvent<'_>,
    ) -> std::io::Result<()> {
        self.app.on_event(client, event).await
    }

    async fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> std::io::Result<bool> {
        let more = self.app.next_body_piece(piece).await?;
        if !more {
            if let Some(server) = self.server.take() {
                self.server_read = Some(join(server).await);
            }
        }
        Ok(more)
    }
}

/// A scripted server, over an in-memory stream, that reads the whole body
/// of a small message (DATA, or one BDAT chunk answered with `250` when
/// `bdat`), then writes `reply` and closes before the client writes the
/// end of the message (the final `.`, or `BDAT 0 LAST`): so the write that
/// fails is that of the end, not of a piece. Returns how the client's run
/// ended, its application and its machine.
async fn server_answers_before_the_end_of_the_body_and_closes(
    reply: &'static [u8],
    bdat: bool,
) -> (Result<(), client::RunError>, Pieces, Client) {
    const BODY: &[u8] = b"Subject: t\r\n\r\nbody\r\n";
    // Far more room than the session needs: no write waits for a read.
    let (c, mut s) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(async move {
        if bdat {
            answer_each(
                &mut s,
                &[
                    b"250-mx.example.net\r\n250 CHUNKING\r\n",
                    b"250 ok\r\n",
                    b"250 ok\r\n",
                ],
            )
            .await;
        } else {
            answer_up_to_data(&mut s).await;
        }
        let mut got = Vec::new();
        read_until(&mut s, &mut got, BODY).await;
        if bdat {
            s.write_all(b"250 2.0.0 chunk ok\r\n").await.expect("write");
        }
        s.write_all(reply).await.expect("write");
        // Dropping the stream closes it: the client's next write fails
        // (broken pipe), and what was written stays to be read.
        got
    });
    let config = client_config(TlsPolicy::Off);
    let mut client = Client::new(if bdat {
        config.with_chunking(ChunkingPolicy::Prefer)
    } else {
        config
    });
    let mut handler = EndsAfterServer {
        app: Pieces::new(vec![BODY.to_vec()]),
        server: Some(server),
        server_read: None,
    };
    let end = tokio::time::timeout(
        BOUND,
        client::run(c, &mut client, &mut handler, &RunOptions::default()),
    )
    .await
    .expect("bounded");
    let got = handler.server_read.expect("the body was ended");
    // The server read the body and nothing after it.
    assert!(got.ends_with(BODY), "{:?}", String::from_utf8_lossy(&got));
    let chunk = format!("BDAT {}\r\n", BODY.len());
    assert_eq!(
        got.windows(chunk.len()).any(|w| w == chunk.as_bytes()),
        bdat
    );
    (end, handler.app, client)
}

#[tokio::test]
async fn client_reports_the_421_of_a_server_that_closes_before_the_end_of_the_body() {
    let (end, app, client) = server_answers_before_the_end_of_the_body_and_closes(
        b"421 4.3.0 mx.example.net out of space, closing\r\n",
        false,
    )
    .await;
    assert_closed_by_421(end, &app, &client);
}

#[tokio::test]
async fn client_takes_the_552_of_a_server_that_closes_before_the_final_dot_as_the_verdict() {
    let (end, app, _) = server_answers_before_the_end_of_the_body_and_closes(
        b"552 5.3.4 Message too big\r\n",
        false,
    )
    .await;
    assert_refused_with_552(end, &app);
}

#[tokio::test]
async fn client_takes_the_552_of_a_server_that_closes_before_bdat_last_as_the_verdict() {
    let (end, app, _) = server_answers_before_the_end_of_the_body_and_closes(
        b"552 5.3.4 Message too big\r\n",
        true,
    )
    .await;
    assert_refused_with_552(end, &app);
    // The chunk was answered before the server closed.
    assert_eq!(app.send_body_events, 2);
}

/// A scripted server offering PIPELINING, over an in-memory stream of 8
/// octets: it greets, answers EHLO, reads the client's MAIL line, writes
/// `reply` (if any) and closes. The stream holds so little that the rest
/// of the pipelined group (RCPT, DATA) is still being written when the
/// server closes, so that write fails (broken pipe) whatever the timing.
/// Returns how the client's run ended, its application and its machine.
async fn server_answers_mail_and_closes(
    reply: Option<&'static [u8]>,
) -> (Result<(), client::RunError>, Pieces, Client) {
    let (c, mut s) = tokio::io::duplex(8);
    let server = tokio::spawn(async move {
        s.write_all(b"220 mx.example.net ready\r\n")
            .await
            .expect("write");
        let mut got = Vec::new();
        read_until(&mut s, &mut got, b"\r\n").await;
        s.write_all(b"250-mx.example.net\r\n250 PIPELINING\r\n")
            .await
            .expect("write");
        read_until(&mut s, &mut got, b"MAIL FROM:<a@example.com>\r\n").await;
        if let Some(reply) = reply {
            s.write_all(reply).await.expect("write");
        }
        got
    });
    let (end, app, client) = run_one_body(c, TlsPolicy::Off).await;
    let got = join(server).await;
    // The server closed before it had the whole group.
    assert!(
        !got.ends_with(b"DATA\r\n"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    (end, app, client)
}

/// A server that answers the pipelined MAIL with `421` and closes before
/// the client has written the rest of the group (RFC 5321 §3.8): the
/// handler sees the 421 and the run ends as after any 421, not with the
/// broken pipe of the failed write.
#[tokio::test]
async fn client_reports_the_421_to_mail_of_a_server_that_closes_before_rcpt_is_written() {
    let (end, app, client) =
        server_answers_mail_and_closes(Some(b"421 4.7.0 Too many connections, closing\r\n")).await;
    assert!(end.is_ok(), "{end:?}");
    assert_eq!(
        app.closing.as_deref(),
        Some("421 4.7.0 Too many connections, closing\r\n")
    );
    assert_eq!(app.sender, None);
    assert!(client.is_closed());
    // The body was never asked for.
    assert_eq!((app.send_body_events, app.next), (0, 0));
}

/// A server that refuses MAIL with `554` and closes before the client
/// has written the rest of the group: the handler sees the refusal, and
/// the run ends with the close (the replies to RCPT and DATA never come).
#[tokio::test]
async fn client_reports_the_554_to_mail_of_a_server_that_closes_before_rcpt_is_written() {
    let (end, app, client) =
        server_answers_mail_and_closes(Some(b"554 5.7.1 Sender blocked\r\n")).await;
    assert!(matches!(end, Err(client::RunError::PeerClosed)), "{end:?}");
    assert_eq!(app.sender.as_deref(), Some("554 5.7.1 Sender blocked\r\n"));
    assert_eq!(app.closing, None);
    assert!(!client.is_closed());
}

/// A server that closes after MAIL without a reply: the run ends with the
/// failed write's error, as before.
#[tokio::test]
async fn a_server_that_closes_with_no_reply_ends_the_run_with_the_write_error() {
    let (end, app, _) = server_answers_mail_and_closes(None).await;
    match end {
        Err(client::RunError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe),
        other => panic!("{other:?}"),
    }
    assert_eq!((app.sender, app.closing), (None, None));
}

/// The look for replies after a failed write stops at the server's `220`
/// to STARTTLS, when it is the last of what the server sent: the event is
/// the driver's (there is no handshake to run on a failed connection), so
/// the handler does not see it and was told of no reply, and the run ends
/// with the write's error. The scripted server, over an in-memory stream
/// of 8 octets, sends the greeting and its answer to EHLO, and once the
/// client's STARTTLS starts to come, the 220; it closes without reading
/// the rest of STARTTLS, so that write fails. (The driver reads what has
/// arrived before it hands any of it to the machine, so plaintext after
/// the 220 is always in the same input as the 220; see the next test.)
#[tokio::test]
async fn the_220_to_starttls_ends_the_look_for_replies_after_a_failed_write() {
    let (c, mut s) = tokio::io::duplex(8);
    let server = tokio::spawn(async move {
        answer_starttls_and_close(&mut s, b"220 2.0.0 go ahead\r\n").await;
    });
    let (end, app, client) = run_one_body(c, TlsPolicy::Required).await;
    join(server).await;
    match end {
        Err(client::RunError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe),
        other => panic!("{other:?}"),
    }
    assert!(!app.starttls, "the handler was given StartTls");
    assert_eq!(app.closing, None);
    assert!(!app.started);
    assert!(!client.is_closed());
}

/// Bytes after the server's `220` to STARTTLS in the input that holds it
/// are plaintext injected into the session (RFC 3207 §5): after a failed
/// write too, the machine refuses them as always, and they never reach
/// the handler as a reply (here a forged `421`). The scripted server,
/// over an in-memory stream of 8 octets, answers as in the test before
/// and closes without reading all of STARTTLS, so that write fails.
#[tokio::test]
async fn plaintext_after_the_220_to_starttls_is_refused_after_a_failed_write() {
    let (c, mut s) = tokio::io::duplex(8);
    let server = tokio::spawn(async move {
        answer_starttls_and_close(
            &mut s,
            b"220 2.0.0 go ahead\r\n421 4.7.0 forged, closing\r\n",
        )
        .await;
    });
    let (end, app, _) = run_one_body(c, TlsPolicy::Required).await;
    join(server).await;
    assert!(
        matches!(
            end,
            Err(client::RunError::Client(ClientError::ResponseInjection))
        ),
        "{end:?}"
    );
    assert_eq!(app.closing, None);
    assert!(!app.started && !app.starttls);
}

/// A [`Pieces`] application that, at `Ready`, has the scripted server
/// (the task `server`, which returns its end of the connection over TLS)
/// write `last` and close, before it asks for the transaction: so the
/// client's MAIL is written after the close.
struct ServerEndsAtReady {
    app: Pieces,
    server: Option<JoinHandle<tokio_rustls::server::TlsStream<tokio::io::DuplexStream>>>,
    last: &'static [u8],
}

impl ClientHandler for ServerEndsAtReady {
    async fn on_event(
        &mut self,
        client: &mut Client,
        event: ClientEvent<'_>,
    ) -> std::io::Result<()> {
        if matches!(event, ClientEvent::Ready) {
            if let Some(server) = self.server.take() {
                let mut tls = join(server).await;
                tls.write_all(self.last).await?;
                tls.shutdown().await?;
            }
        }
        self.app.on_event(client, event).await
    }

    async fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> std::io::Result<bool> {
        self.app.next_body_piece(piece).await
    }
}

/// Over TLS after STARTTLS, a server that sends `421` and closes (with
/// close_notify) before the client writes MAIL: the write fails, and the
/// 421 is still read through TLS and reaches the handler.
#[tokio::test]
async fn client_reports_a_421_read_over_tls_after_a_failed_write() {
    let (server_tls, client_tls) = support::tls_configs();
    let (c, mut s) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(async move {
        s.write_all(b"220 mx.example.net ready\r\n")
            .await
            .expect("write");
        let mut got = Vec::new();
        read_until(&mut s, &mut got, b"\r\n").await;
        s.write_all(b"250-mx.example.net\r\n250 STARTTLS\r\n")
            .await
            .expect("write");
        read_until(&mut s, &mut got, b"STARTTLS\r\n").await;
        s.write_all(b"220 2.0.0 go ahead\r\n").await.expect("write");
        let acceptor = tokio_rustls::TlsAcceptor::from(server_tls);
        let mut tls = tls::accept_starttls(&acceptor, s, &[])
            .await
            .expect("handshake");
        let mut got = Vec::new();
        read_until(&mut tls, &mut got, b"\r\n").await;
        assert_eq!(got, b"EHLO client.example.com\r\n");
        tls.write_all(b"250-mx.example.net\r\n250 PIPELINING\r\n")
            .await
            .expect("write");
        tls.flush().await.expect("flush");
        tls
    });
    let mut options = RunOptions::default();
    options.tls = Some((
        tokio_rustls::TlsConnector::from(client_tls),
        ServerName::try_from("localhost").expect("name"),
    ));
    let mut client = Client::new(client_config(TlsPolicy::Required));
    let mut handler = ServerEndsAtReady {
        app: Pieces::new(vec![b"body\r\n".to_vec()]),
        server: Some(server),
        last: b"421 4.3.2 mx.example.net shutting down\r\n",
    };
    let end = tokio::time::timeout(BOUND, client::run(c, &mut client, &mut handler, &options))
        .await
        .expect("bounded");
    assert!(end.is_ok(), "{end:?}");
    assert!(handler.server.is_none(), "the server was ended at Ready");
    assert_eq!(
        handler.app.closing.as_deref(),
        Some("421 4.3.2 mx.example.net shutting down\r\n")
    );
    assert!(client.is_closed() && client.is_tls());
}

#[tokio::test]
async fn starttls_advertised_without_an_acceptor_is_refused_before_anything_is_sent() {
    let (mut c, s) = pair().await;
    let mut cfg = ServerConfig::new("mx.example.net");
    cfg.starttls = true;
    let mut session = ServerSession::new(cfg).expect("session");
    session.greet().expect("greet");
    let mut rec = Recorder::default();
    let end = tokio::time::timeout(
        BOUND,
        serve(s, &mut session, &mut rec, &ServeOptions::default()),
    )
    .await
    .expect("bounded");
    assert!(
        matches!(end, Err(ServeError::StartTlsNotConfigured)),
        "{end:?}"
    );
    // Not even the greeting went out.
    assert_eq!(read_to_close(&mut c).await, b"");
}

/// A server application that sets whether STARTTLS is available when
/// the client greets, then accepts whatever waits for a decision.
struct StartTlsOnHello(bool);

impl ServerHandler for StartTlsOnHello {
    async fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerEvent<'_>,
    ) -> std::io::Result<()> {
        if matches!(event, ServerEvent::Hello { .. }) {
            session.set_starttls_available(self.0);
        }
        if session.pending_decision().is_some() {
            session.accept().map_err(std::io::Error::other)?;
        }
        Ok(())
    }
}

/// Serves one connection with STARTTLS configured, `available` given to
/// the session before the greeting, the handler `handler` and the
/// acceptor `tls`; the client pipelines EHLO, STARTTLS, NOOP and QUIT.
/// Returns how `serve` ended and everything the client read.
async fn pipelined_starttls(
    available: bool,
    mut handler: StartTlsOnHello,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> (Result<ServeEnd, ServeError>, String) {
    let (mut c, s) = pair().await;
    let server = tokio::spawn(async move {
        let mut cfg = ServerConfig::new("mx.example.net");
        cfg.starttls = true;
        let mut session = ServerSession::new(cfg).expect("session");
        session.set_starttls_available(available);
        session.greet().expect("greet");
        let mut options = ServeOptions::default();
        options.tls = tls;
        tokio::time::timeout(BOUND, serve(s, &mut session, &mut handler, &options))
            .await
            .expect("bounded")
    });
    c.write_all(b"EHLO client.example.com\r\nSTARTTLS\r\nNOOP\r\nQUIT\r\n")
        .await
        .expect("write");
    let got = String::from_utf8_lossy(&read_to_close(&mut c).await).into_owned();
    (join(server).await, got)
}

const DECLINED_THEN_NOOP_AND_QUIT: &str =
    "\r\n454 4.7.0 TLS not available due to temporary reason\r\n\
    250 2.0.0 OK\r\n221 2.0.0 Bye\r\n";

/// A server whose certificate could not be loaded declines STARTTLS and
/// runs without an acceptor: EHLO does not offer it, STARTTLS gets 454
/// (RFC 3207 §4), and the commands pipelined after it are answered in
/// plaintext.
#[tokio::test]
async fn declined_starttls_runs_without_an_acceptor() {
    let (end, got) = pipelined_starttls(false, StartTlsOnHello(false), None).await;
    assert!(matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
    assert!(!got.contains("STARTTLS"), "{got}");
    assert!(got.ends_with(DECLINED_THEN_NOOP_AND_QUIT), "{got}");
}

/// Without an acceptor `serve` keeps STARTTLS declined, whatever the
/// handler does: a handler that makes it available again gets it listed
/// in the EHLO reply it accepts, but the STARTTLS still gets 454, not a
/// 220 with no handshake to follow.
#[tokio::test]
async fn without_an_acceptor_starttls_stays_declined() {
    let (end, got) = pipelined_starttls(false, StartTlsOnHello(true), None).await;
    assert!(matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
    assert!(got.contains("\r\n250-STARTTLS\r\n"), "{got}");
    assert!(got.ends_with(DECLINED_THEN_NOOP_AND_QUIT), "{got}");
}

/// With an acceptor, the handler declines STARTTLS for now when the
/// client greets (a server shedding TLS handshakes under load): no
/// handshake is started and the session goes on in plaintext.
#[tokio::test]
async fn the_handler_declines_starttls_at_the_greeting() {
    let (server_tls, _) = support::tls_configs();
    let acceptor = tokio_rustls::TlsAcceptor::from(server_tls);
    let (end, got) = pipelined_starttls(true, StartTlsOnHello(false), Some(acceptor)).await;
    assert!(matches!(end, Ok(ServeEnd::Closed)), "{end:?}");
    assert!(!got.contains("STARTTLS"), "{got}");
    assert!(got.ends_with(DECLINED_THEN_NOOP_AND_QUIT), "{got}");
}

/// A server application that fails on MAIL.
struct FailsOnMail;

impl ServerHandler for FailsOnMail {
    async fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerEvent<'_>,
    ) -> std::io::Result<()> {
        match event {
            ServerEvent::Hello { .. } => session.accept().map_err(std::io::Error::other),
            ServerEvent::Mail { .. } => Err(std::io::Error::other("spool unavailable")),
            _ => Ok(()),
        }
    }
}

/// What the client reads after the EHLO reply when the application gives
/// up: the `421` of a local error, alone, then the close.
const LOCAL_ERROR_421: &str = "421 4.3.0 mx.example.net Local error, closing connection\r\n";

/// Serves one connection with `handler`; the client sends EHLO and MAIL
/// and reads until the server closes. Returns how `serve` ended and what
/// the client read after the EHLO reply.
async fn ehlo_and_mail<H: ServerHandler + 'static>(
    mut handler: H,
) -> (Result<ServeEnd, ServeError>, String) {
    let (mut c, s) = pair().await;
    let server = tokio::spawn(async move {
        let mut session = ServerSession::new(ServerConfig::new("mx.example.net")).expect("session");
        session.greet().expect("greet");
        serve(s, &mut session, &mut handler, &ServeOptions::default()).await
    });
    let mut got = Vec::new();
    read_until(&mut c, &mut got, b"\r\n").await;
    c.write_all(b"EHLO client.example.com\r\nMAIL FROM:<a@example.com>\r\n")
        .await
        .expect("write");
    got.extend_from_slice(&read_to_close(&mut c).await);
    let text = String::from_utf8_lossy(&got).into_owned();
    // The EHLO reply, decided before the failure, still goes out first.
    let ehlo = text.find("\r\n250 ").expect("EHLO answered");
    let after = text[ehlo + 2..]
        .find("\r\n")
        .map(|end| ehlo + 2 + end + 2)
        .expect("the EHLO reply ends");
    (join(server).await, text[after..].to_owned())
}

#[tokio::test]
async fn a_handler_error_sends_421_then_closes() {
    let (end, after_ehlo) = ehlo_and_mail(FailsOnMail).await;
    assert_eq!(after_ehlo, LOCAL_ERROR_421);
    match end {
        Err(ServeError::Io(e)) => assert_eq!(e.to_string(), "spool unavailable"),
        other => panic!("{other:?}"),
    }
}

/// A server application that leaves MAIL undecided.
struct LeavesMailOpen;

impl ServerHandler for LeavesMailOpen {
    async fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerEvent<'_>,
    ) -> std::io::Result<()> {
        match event {
            ServerEvent::Hello { .. } => session.accept().map_err(std::io::Error::other),
            _ => Ok(()),
        }
    }
}

/// A decision left open is the application's failure too: the client
/// gets the same 421 as for a handler error, and the connection closes.
#[tokio::test]
async fn a_decision_left_open_sends_421_then_closes() {
    let (end, after_ehlo) = ehlo_and_mail(LeavesMailOpen).await;
    assert_eq!(after_ehlo, LOCAL_ERROR_421);
    assert!(
        matches!(end, Err(ServeError::Usage(UsageError::DecisionPending))),
        "{end:?}"
    );
}
