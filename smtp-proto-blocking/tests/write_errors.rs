//! A server that answers and closes before the client's next command is
//! written: the write fails, and the replies the server sent before it
//! closed still reach the handler (a `421` as `ServiceClosing`, a refusal
//! of MAIL as the sender's verdict), and a server that keeps the
//! connection open cannot hold the run. Over an in-memory scripted server,
//! so the write fails at an exact point, and over a Unix socket pair for
//! TLS and for peers that keep the connection open. Every read is bounded.

#[allow(dead_code, reason = "this binary uses only some of the helpers")]
mod support;

use support::{event_name, tls_configs, BOUND};

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::time::Duration;

use smtp_proto_blocking::client::{run, ClientHandler, RunError, RunOptions};
use smtp_proto_blocking::smtp_proto::client::{
    Client, ClientConfig, ClientError, ClientEvent, Envelope, TlsPolicy,
};
use smtp_proto_blocking::smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto_blocking::Transport;

fn other<E: Into<Box<dyn std::error::Error + Send + Sync>>>(e: E) -> io::Error {
    io::Error::other(e)
}

/// A client application that sends one message to one recipient, then
/// quits, and records every event it is told of.
#[derive(Debug, Default)]
struct OneMessage {
    started: bool,
    /// Each event's name, and the reply it carries as the server wrote it.
    events: Vec<(String, Option<String>)>,
}

impl OneMessage {
    /// The reply of the first event named `name`.
    fn reply_of(&self, name: &str) -> Option<&str> {
        self.events
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, reply)| reply.as_deref())
    }

    fn names(&self) -> Vec<&str> {
        self.events.iter().map(|(n, _)| n.as_str()).collect()
    }
}

impl ClientHandler for OneMessage {
    fn on_event(&mut self, client: &mut Client, event: ClientEvent<'_>) -> io::Result<()> {
        let reply = event
            .reply()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned());
        self.events.push((event_name(&event), reply));
        match event {
            ClientEvent::Ready if !self.started => {
                self.started = true;
                let from = Mailbox::parse("alice@example.net").map_err(other)?;
                let to = Mailbox::parse("bob@example.com").map_err(other)?;
                let envelope =
                    Envelope::new(ReversePath::Mailbox(from)).recipient(ForwardPath::Mailbox(to));
                client.send_mail(&envelope).map_err(other)
            }
            ClientEvent::Ready | ClientEvent::TransactionEnd(_) => client.quit().map_err(other),
            _ => Ok(()),
        }
    }

    fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> io::Result<bool> {
        piece.extend_from_slice(b"Subject: t\r\n\r\nbody\r\n");
        Ok(false)
    }
}

fn client_config(tls: TlsPolicy) -> ClientConfig {
    ClientConfig::new(Domain::new("client.test").expect("domain")).with_tls(tls)
}

/// What the scripted server has sent and read.
#[derive(Debug, Default)]
struct Wire {
    /// What the server has sent and the client not yet read, as the pieces
    /// that reads give one at a time.
    to_client: VecDeque<Vec<u8>>,
    from_client: Vec<u8>,
    /// The replies to the client's next lines, in order.
    script: VecDeque<&'static [u8]>,
    /// What the server sends once the script is done and the first octet
    /// of the client's next write is read, before it closes (one piece per
    /// read); see [`Scripted::closing_on_next_write`].
    last_words: Option<Vec<&'static [u8]>>,
    closed: bool,
}

/// A scripted server as an in-memory transport. It starts with `sent`
/// written (one piece per read), takes the client's bytes up to one line
/// end per write, answers each line with the next reply of the script (an
/// empty one: no reply), and closes once the script is done (at once for
/// an empty script): reads then give what is left and the end of the
/// stream, and writes fail with a broken pipe. A read with nothing to
/// give while it is open is a read timeout.
#[derive(Debug, Clone)]
struct Scripted(Rc<RefCell<Wire>>);

impl Scripted {
    fn new(sent: &[&[u8]], script: &[&'static [u8]]) -> Self {
        Scripted(Rc::new(RefCell::new(Wire {
            to_client: sent.iter().map(|piece| piece.to_vec()).collect(),
            script: script.iter().copied().collect(),
            closed: script.is_empty(),
            ..Wire::default()
        })))
    }

    /// Once the script is done, the server reads the first octet of the
    /// client's next write, sends `pieces` (one per read) and closes: the
    /// rest of that write fails, after the command it carries was handed
    /// out and began to arrive.
    fn closing_on_next_write(self, pieces: &[&'static [u8]]) -> Self {
        {
            let wire = &mut *self.0.borrow_mut();
            wire.last_words = Some(pieces.to_vec());
            wire.closed = false;
        }
        self
    }

    /// The lines the server read.
    fn read_lines(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow().from_client).into_owned()
    }

    /// What the server sent and the client never read.
    fn unread(&self) -> String {
        let wire = self.0.borrow();
        let unread: Vec<u8> = wire.to_client.iter().flatten().copied().collect();
        String::from_utf8_lossy(&unread).into_owned()
    }
}

impl Read for Scripted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let wire = &mut *self.0.borrow_mut();
        let Some(piece) = wire.to_client.front_mut() else {
            if wire.closed {
                return Ok(0);
            }
            return Err(io::ErrorKind::WouldBlock.into());
        };
        let n = piece.len().min(buf.len());
        buf[..n].copy_from_slice(&piece[..n]);
        piece.drain(..n);
        if piece.is_empty() {
            wire.to_client.pop_front();
        }
        Ok(n)
    }
}

impl Write for Scripted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let wire = &mut *self.0.borrow_mut();
        if wire.closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if wire.script.is_empty() {
            if let (Some(pieces), Some(&first)) = (wire.last_words.take(), buf.first()) {
                wire.from_client.push(first);
                wire.to_client
                    .extend(pieces.into_iter().map(<[u8]>::to_vec));
                wire.closed = true;
                return Ok(1);
            }
        }
        let n = buf
            .iter()
            .position(|&b| b == b'\n')
            .map_or(buf.len(), |i| i + 1);
        wire.from_client.extend_from_slice(&buf[..n]);
        if buf[..n].ends_with(b"\n") {
            if let Some(reply) = wire.script.pop_front().filter(|r| !r.is_empty()) {
                wire.to_client.push_back(reply.to_vec());
            }
            wire.closed = wire.script.is_empty() && wire.last_words.is_none();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Scripted {
    fn set_read_timeout(&mut self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
}

/// A server offering PIPELINING that greets, answers EHLO, answers the
/// client's MAIL line with `reply` (none when empty) and closes before the
/// rest of the pipelined group (RCPT, DATA) is written, so that write
/// fails. Returns how the run ended, the application, the machine and the
/// lines the server read.
fn server_answers_mail_and_closes(
    reply: &'static [u8],
) -> (Result<(), RunError>, OneMessage, Client, String) {
    let server = Scripted::new(
        &[b"220 mx.test ESMTP\r\n"],
        &[b"250-mx.test\r\n250 PIPELINING\r\n", reply],
    );
    let (end, app, client) = run_scripted(&server, TlsPolicy::Off);
    let lines = server.read_lines();
    assert_eq!(
        lines, "EHLO client.test\r\nMAIL FROM:<alice@example.net>\r\n",
        "the server closed after MAIL"
    );
    (end, app, client, lines)
}

/// RFC 5321 §3.8: the `421` the server sent before it closed is the
/// client's only diagnosis. The handler sees it as `ServiceClosing`, and
/// the run ends as after any 421, not with the broken pipe of the write.
/// Runs a [`OneMessage`] client with `tls` against `server`; returns how
/// the run ended, the handler and the machine.
fn run_scripted(server: &Scripted, tls: TlsPolicy) -> (Result<(), RunError>, OneMessage, Client) {
    let mut app = OneMessage::default();
    let mut client = Client::new(client_config(tls));
    let end = run(
        server.clone(),
        &mut client,
        &mut app,
        &RunOptions::default(),
    );
    (end, app, client)
}

#[test]
fn the_421_to_pipelined_mail_of_a_server_that_closes_reaches_the_handler() {
    let (end, app, client, _) =
        server_answers_mail_and_closes(b"421 4.7.0 Too many connections, closing\r\n");
    assert!(end.is_ok(), "{end:?}");
    assert_eq!(
        app.reply_of("ServiceClosing"),
        Some("421 4.7.0 Too many connections, closing\r\n"),
        "{app:?}"
    );
    assert_eq!(app.names().last(), Some(&"ServiceClosing"));
    assert!(client.is_closed());
}

/// A refusal of MAIL before the close reaches the handler as the sender's
/// verdict; the replies to RCPT and DATA never come, so the run ends with
/// the close.
#[test]
fn the_554_to_pipelined_mail_of_a_server_that_closes_reaches_the_handler() {
    let (end, app, client, _) = server_answers_mail_and_closes(b"554 5.7.1 Sender blocked\r\n");
    assert!(matches!(end, Err(RunError::PeerClosed)), "{end:?}");
    assert_eq!(
        app.reply_of("Sender"),
        Some("554 5.7.1 Sender blocked\r\n"),
        "{app:?}"
    );
    assert_eq!(app.reply_of("ServiceClosing"), None);
    assert!(!client.is_closed());
}

/// A server that closes with no reply: the run ends with the write's
/// error, as it always did.
#[test]
fn a_server_that_closes_with_no_reply_ends_the_run_with_the_write_error() {
    let (end, app, _, _) = server_answers_mail_and_closes(b"");
    match end {
        Err(RunError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::BrokenPipe),
        other => panic!("{other:?}"),
    }
    assert_eq!(app.names(), ["Greeting", "Ready"]);
}

/// A server that greets, then sends `421` and closes before the client
/// has written EHLO (shedding load): the EHLO write fails, and the 421
/// read after it still reaches the handler.
#[test]
fn the_421_after_the_greeting_of_a_server_that_closes_reaches_the_handler() {
    // The greeting comes in one read, the 421 in the next.
    let server = Scripted::new(
        &[
            b"220 mx.test ESMTP\r\n",
            b"421 4.7.0 Too many connections, closing\r\n",
        ],
        &[],
    );
    let (end, app, client) = run_scripted(&server, TlsPolicy::Off);
    assert!(end.is_ok(), "{end:?}");
    assert_eq!(app.names(), ["Greeting", "ServiceClosing"]);
    assert!(client.is_closed());
    assert_eq!(server.read_lines(), "");
}

/// The look for replies after a failed write stops at the server's `220`
/// to STARTTLS, when the read that brings it ends with it: the event is
/// the driver's (there is no handshake to run on a failed connection), so
/// the handler does not see it and was told of no reply, and the run ends
/// with the write's error. What the server sends after the 220 (here a
/// forged `421`, in a later read) is never read, let alone taken as a
/// reply. The server answers STARTTLS once its first octet came, and
/// closes before the rest of it, so that write fails.
#[test]
fn the_220_to_starttls_ends_the_look_for_replies_after_a_failed_write() {
    let server = Scripted::new(
        &[b"220 mx.test ESMTP\r\n"],
        &[b"250-mx.test\r\n250 STARTTLS\r\n"],
    )
    .closing_on_next_write(&[b"220 2.0.0 go ahead\r\n", b"421 4.7.0 forged, closing\r\n"]);
    let (end, app, client) = run_scripted(&server, TlsPolicy::Required);
    match end {
        Err(RunError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::BrokenPipe),
        other => panic!("{other:?}"),
    }
    assert_eq!(app.names(), ["Greeting"]);
    assert!(!client.is_closed());
    assert_eq!(server.unread(), "421 4.7.0 forged, closing\r\n");
    // The STARTTLS write failed after its first octet.
    assert_eq!(server.read_lines(), "EHLO client.test\r\nS");
}

/// Bytes after the server's `220` to STARTTLS in the same read are
/// plaintext injected into the session (RFC 3207 §5): after a failed
/// write too, the machine refuses them as always, and they never reach
/// the handler as a reply (here a forged `421`).
#[test]
fn plaintext_in_the_read_of_the_220_to_starttls_is_refused_after_a_failed_write() {
    let server = Scripted::new(
        &[b"220 mx.test ESMTP\r\n"],
        &[b"250-mx.test\r\n250 STARTTLS\r\n"],
    )
    .closing_on_next_write(&[b"220 2.0.0 go ahead\r\n421 4.7.0 forged, closing\r\n"]);
    let mut app = OneMessage::default();
    let mut client = Client::new(client_config(TlsPolicy::Required));
    let end = run(server, &mut client, &mut app, &RunOptions::default());
    assert!(
        matches!(end, Err(RunError::Client(ClientError::ResponseInjection))),
        "{end:?}"
    );
    assert_eq!(app.names(), ["Greeting"]);
}

/// Over a Unix socket pair: TLS, and peers that keep the connection open.
#[cfg(unix)]
mod over_sockets {
    use super::*;

    use std::net::Shutdown;
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    use std::thread::{self, JoinHandle};

    use smtp_proto_blocking::rustls;
    use smtp_proto_blocking::rustls::pki_types::ServerName;
    use smtp_proto_blocking::smtp_proto::client::ChunkingPolicy;

    /// One end of a Unix socket pair as a transport. Once `fail_writes` is
    /// set, its writes fail with a broken pipe, as after the server reset
    /// the connection, while its reads go on from the socket: so a write
    /// fails at an exact point while the peer holds the connection open.
    struct Unix {
        sock: UnixStream,
        fail_writes: Arc<AtomicBool>,
    }

    impl Unix {
        /// The transport, and its switch for failing writes.
        fn new(sock: UnixStream) -> (Self, Arc<AtomicBool>) {
            let fail_writes = Arc::new(AtomicBool::new(false));
            let unix = Unix {
                sock,
                fail_writes: Arc::clone(&fail_writes),
            };
            (unix, fail_writes)
        }

        fn check_write(&self) -> io::Result<()> {
            if self.fail_writes.load(Ordering::SeqCst) {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            Ok(())
        }
    }

    impl Read for Unix {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.sock.read(buf)
        }
    }

    impl Write for Unix {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.check_write()?;
            self.sock.write(buf)
        }

        fn flush(&mut self) -> io::Result<()> {
            self.check_write()?;
            self.sock.flush()
        }
    }

    impl Transport for Unix {
        crate::support::socket_timeouts!(sock);

        fn set_nonblocking(&mut self, nonblocking: bool) -> io::Result<()> {
            self.sock.set_nonblocking(nonblocking)
        }
    }

    type ServerTls = rustls::StreamOwned<rustls::ServerConnection, UnixStream>;

    /// Reads one line, byte by byte (bounded); returns it.
    fn read_line(stream: &mut impl Read) -> String {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        for _ in 0..1000 {
            if line.ends_with(b"\n") {
                break;
            }
            let n = stream.read(&mut byte).expect("read");
            assert!(n > 0, "closed in a line");
            line.push(byte[0]);
        }
        String::from_utf8_lossy(&line).into_owned()
    }

    /// A socket pair whose ends both have a read timeout of [`BOUND`].
    fn socket_pair() -> (UnixStream, UnixStream) {
        let (ours, theirs) = UnixStream::pair().expect("socket pair");
        ours.set_read_timeout(Some(BOUND)).expect("timeout");
        theirs.set_read_timeout(Some(BOUND)).expect("timeout");
        (ours, theirs)
    }

    /// The scripted server's side up to the handshake after STARTTLS and
    /// the EHLO over TLS, which it answers with `ehlo_reply`; returns the
    /// connection over TLS.
    fn serve_past_starttls(
        mut theirs: UnixStream,
        server_tls: Arc<rustls::ServerConfig>,
        ehlo_reply: &[u8],
    ) -> ServerTls {
        theirs.write_all(b"220 mx.test ESMTP\r\n").expect("write");
        assert_eq!(read_line(&mut theirs), "EHLO client.test\r\n");
        theirs
            .write_all(b"250-mx.test\r\n250 STARTTLS\r\n")
            .expect("write");
        assert_eq!(read_line(&mut theirs), "STARTTLS\r\n");
        theirs.write_all(b"220 2.0.0 go ahead\r\n").expect("write");
        let conn = rustls::ServerConnection::new(server_tls).expect("server connection");
        let mut tls = rustls::StreamOwned::new(conn, theirs);
        assert_eq!(read_line(&mut tls), "EHLO client.test\r\n");
        tls.write_all(ehlo_reply).expect("write");
        tls.flush().expect("flush");
        tls
    }

    fn tls_options(client_tls: Arc<rustls::ClientConfig>) -> RunOptions {
        let mut options = RunOptions::default();
        options.tls = Some((client_tls, ServerName::try_from("localhost").expect("name")));
        options
    }

    /// A [`OneMessage`] application that runs `at_ready` once, at the
    /// first `Ready`, before it asks for the transaction: so what
    /// `at_ready` does to the connection comes before the client's MAIL is
    /// written.
    struct AtReady<F> {
        app: OneMessage,
        at_ready: Option<F>,
    }

    impl<F: FnOnce() -> io::Result<()>> AtReady<F> {
        fn new(at_ready: F) -> Self {
            AtReady {
                app: OneMessage::default(),
                at_ready: Some(at_ready),
            }
        }
    }

    impl<F: FnOnce() -> io::Result<()>> ClientHandler for AtReady<F> {
        fn on_event(&mut self, client: &mut Client, event: ClientEvent<'_>) -> io::Result<()> {
            if matches!(event, ClientEvent::Ready) {
                if let Some(at_ready) = self.at_ready.take() {
                    at_ready()?;
                }
            }
            self.app.on_event(client, event)
        }

        fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> io::Result<bool> {
            self.app.next_body_piece(piece)
        }
    }

    /// Runs the client over `transport` on a thread, so that a run that
    /// hangs fails the test: returns how the run ended and the handler, or
    /// panics when the run has not ended within [`BOUND`] (many times what
    /// it should take).
    fn run_on_a_thread<H: ClientHandler + Send + 'static>(
        transport: Unix,
        mut client: Client,
        mut handler: H,
        options: RunOptions,
    ) -> (Result<(), RunError>, H) {
        let (done, ended) = mpsc::channel();
        thread::spawn(move || {
            let end = run(transport, &mut client, &mut handler, &options);
            let _ = done.send((end, handler));
        });
        ended
            .recv_timeout(BOUND)
            .expect("the run ends within the bound of the look for replies")
    }

    /// After STARTTLS, a server that sends `421` and closes (with
    /// close_notify) before the client writes MAIL: the write fails, and
    /// the 421 is still read through TLS (what the failed write left in
    /// TLS's buffer is not sent again first) and reaches the handler.
    #[test]
    fn a_421_is_read_over_tls_after_a_failed_write() {
        let (server_tls, client_tls) = tls_configs();
        let (ours, theirs) = socket_pair();
        let server = thread::spawn(move || {
            serve_past_starttls(theirs, server_tls, b"250-mx.test\r\n250 PIPELINING\r\n")
        });
        let mut client = Client::new(client_config(TlsPolicy::Required));
        let mut handler = AtReady::new(move || {
            let mut tls = server.join().expect("server thread");
            tls.write_all(b"421 4.3.2 mx.test shutting down\r\n")?;
            tls.conn.send_close_notify();
            tls.flush()
        });
        let (transport, _) = Unix::new(ours);
        let end = run(
            transport,
            &mut client,
            &mut handler,
            &tls_options(client_tls),
        );
        assert!(end.is_ok(), "{end:?}");
        assert!(handler.at_ready.is_none(), "the server was ended at Ready");
        assert_eq!(
            handler.app.reply_of("ServiceClosing"),
            Some("421 4.3.2 mx.test shutting down\r\n"),
            "{:?}",
            handler.app
        );
        assert!(client.is_closed() && client.is_tls());
    }

    /// A server that keeps the connection open and sends nothing after the
    /// client's write failed (the pipelined MAIL group here, while the
    /// machine's timeout for the reply to MAIL is its default, minutes):
    /// the look for its last replies is bounded in all, short of the
    /// machine's timeout, and the run ends with the write's error.
    #[test]
    fn a_silent_server_holding_the_connection_open_does_not_hold_the_look_for_replies() {
        let (ours, mut theirs) = socket_pair();
        let (release, released) = mpsc::channel::<()>();
        let server = thread::spawn(move || {
            theirs.write_all(b"220 mx.test ESMTP\r\n").expect("write");
            assert_eq!(read_line(&mut theirs), "EHLO client.test\r\n");
            theirs
                .write_all(b"250-mx.test\r\n250 PIPELINING\r\n")
                .expect("write");
            // Holds the connection open, sending nothing, until the test
            // is done with it (bounded).
            let _ = released.recv_timeout(BOUND + BOUND);
        });
        let (transport, fail_writes) = Unix::new(ours);
        let handler = AtReady::new(move || {
            fail_writes.store(true, Ordering::SeqCst);
            Ok(())
        });
        let client = Client::new(client_config(TlsPolicy::Off));
        let (end, handler) = run_on_a_thread(transport, client, handler, RunOptions::default());
        let _ = release.send(());
        server.join().expect("server thread");
        match end {
            Err(RunError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::BrokenPipe),
            other => panic!("{other:?}"),
        }
        assert_eq!(handler.app.names(), ["Greeting", "Ready"]);
    }

    /// Over TLS, a server that keeps the connection open after the client's
    /// write failed and trickles the bytes of a TLS record that never
    /// completes, each well within the machine's timeout: rustls would go
    /// on reading for the record, but the one deadline of the look bounds
    /// its reads together, and the run ends with the write's error.
    #[test]
    fn a_server_trickling_a_tls_record_does_not_hold_the_look_for_replies() {
        let (server_tls, client_tls) = tls_configs();
        let (ours, theirs) = socket_pair();
        let server = thread::spawn(move || {
            serve_past_starttls(theirs, server_tls, b"250-mx.test\r\n250 PIPELINING\r\n")
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (hand_over, handed) = mpsc::channel::<ServerTls>();
        let trickler = thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                let Ok(mut tls) = handed.recv_timeout(BOUND) else {
                    return 0;
                };
                // The header of an application-data record of 16384 bytes,
                // then its bytes one at a time: 3000 of them at most, far
                // from the whole record, for a minute at most.
                let mut sent = 0;
                if tls.sock.write_all(&[0x17, 0x03, 0x03, 0x40, 0x00]).is_err() {
                    return sent;
                }
                for _ in 0..3000 {
                    if stop.load(Ordering::SeqCst) || tls.sock.write_all(&[0]).is_err() {
                        break;
                    }
                    sent += 1;
                    thread::sleep(Duration::from_millis(20));
                }
                sent
            }
        });
        let (transport, fail_writes) = Unix::new(ours);
        let handler = AtReady::new(move || {
            let tls = server.join().expect("server thread");
            fail_writes.store(true, Ordering::SeqCst);
            hand_over
                .send(tls)
                .map_err(|_| other("the trickler is gone"))
        });
        let client = Client::new(client_config(TlsPolicy::Required));
        let (end, handler) = run_on_a_thread(transport, client, handler, tls_options(client_tls));
        stop.store(true, Ordering::SeqCst);
        let sent = trickler.join().expect("trickler thread");
        match end {
            Err(RunError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::BrokenPipe),
            other => panic!("{other:?}"),
        }
        assert_eq!(handler.app.names(), ["Greeting", "Ready"]);
        assert!(sent < 3000, "the run outlasted the trickle");
    }

    /// A [`OneMessage`] application whose message comes in two pieces (two
    /// BDAT chunks); before it gives the second one, it tells the scripted
    /// server (the thread `server`) to go on (`go`), waits for it to be
    /// done and keeps its end of the connection.
    struct TwoPieces {
        app: OneMessage,
        pieces: usize,
        go: mpsc::Sender<()>,
        server: Option<JoinHandle<ServerTls>>,
        kept: Option<ServerTls>,
    }

    impl ClientHandler for TwoPieces {
        fn on_event(&mut self, client: &mut Client, event: ClientEvent<'_>) -> io::Result<()> {
            self.app.on_event(client, event)
        }

        fn next_body_piece(&mut self, piece: &mut Vec<u8>) -> io::Result<bool> {
            self.pieces += 1;
            match self.pieces {
                1 => piece.extend_from_slice(b"Subject: t\r\n\r\n"),
                2 => {
                    if let Some(server) = self.server.take() {
                        self.go.send(()).map_err(|_| other("the server is gone"))?;
                        self.kept = Some(server.join().expect("server thread"));
                    }
                    piece.extend_from_slice(b"body\r\n");
                }
                _ => return Ok(false),
            }
            Ok(true)
        }
    }

    /// Over TLS, a server that ends its side of the connection without
    /// close_notify between BDAT chunks (after the first one is sent, before
    /// the second), without a reply to either, and still takes the
    /// client's bytes: the read after the second chunk sees the
    /// close (rustls' `UnexpectedEof`), and the run ends with `PeerClosed`,
    /// as the server's close does anywhere else.
    #[test]
    fn a_tls_close_without_close_notify_between_bdat_chunks_ends_the_run_as_peer_closed() {
        let (server_tls, client_tls) = tls_configs();
        let (ours, theirs) = socket_pair();
        let (go, wait) = mpsc::channel();
        let server = thread::spawn(move || {
            let mut tls = serve_past_starttls(
                theirs,
                server_tls,
                b"250-mx.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n",
            );
            assert_eq!(read_line(&mut tls), "MAIL FROM:<alice@example.net>\r\n");
            assert_eq!(read_line(&mut tls), "RCPT TO:<bob@example.com>\r\n");
            tls.write_all(b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n")
                .expect("write");
            tls.flush().expect("flush");
            assert_eq!(read_line(&mut tls), "BDAT 14\r\n");
            wait.recv_timeout(BOUND).expect("told to go on");
            // No close_notify: the socket's write side just ends.
            tls.sock.shutdown(Shutdown::Write).expect("shutdown");
            tls
        });
        let config = client_config(TlsPolicy::Required).with_chunking(ChunkingPolicy::Prefer);
        let mut client = Client::new(config);
        let mut handler = TwoPieces {
            app: OneMessage::default(),
            pieces: 0,
            go,
            server: Some(server),
            kept: None,
        };
        let (transport, _) = Unix::new(ours);
        let end = run(
            transport,
            &mut client,
            &mut handler,
            &tls_options(client_tls),
        );
        assert!(matches!(end, Err(RunError::PeerClosed)), "{end:?}");
        assert!(handler.kept.is_some(), "the second piece was asked for");
        assert_eq!(handler.pieces, 2, "the body stopped at the close");
        assert_eq!(
            handler.app.names(),
            ["Greeting", "Ready", "Sender", "Recipient", "SendBody"]
        );
    }
}
