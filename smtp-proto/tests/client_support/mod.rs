//! A scripted in-memory server for the client machine tests.
//!
//! The server's bytes are given up front as segments (a new segment starts
//! after each TLS handshake). The driver feeds them to the client in pieces
//! cut as asked, runs the client's events through an [`Actor`], and records
//! every event and every byte the client writes.
#![allow(dead_code)]

use smtp_proto::client::{
    AuthCredentials, Client, ClientConfig, ClientError, ClientEvent, Envelope, Outcome,
    TransactionSummary,
};
use smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
use smtp_proto::sasl::SaslMechanism;

/// One message to send.
#[derive(Clone)]
pub struct Job {
    pub envelope: Envelope<'static>,
    pub body: Vec<Vec<u8>>,
}

impl Job {
    pub fn new(from: &'static str, to: &[&'static str], body: &[&[u8]]) -> Self {
        let mut env = Envelope::new(if from.is_empty() {
            ReversePath::Null
        } else {
            ReversePath::Mailbox(Mailbox::parse(from).unwrap())
        });
        for t in to {
            env = env.recipient(ForwardPath::Mailbox(Mailbox::parse(t).unwrap()));
        }
        Job {
            envelope: env,
            body: body.iter().map(|b| b.to_vec()).collect(),
        }
    }

    pub fn with_envelope(mut self, f: impl FnOnce(Envelope<'static>) -> Envelope<'static>) -> Self {
        self.envelope = f(self.envelope);
        self
    }
}

/// The application side of a custom SASL mechanism: the response to a
/// challenge (decoded bytes, round), or `None` to cancel.
pub type SaslApp = fn(&[u8], usize) -> Option<Vec<u8>>;

/// What the test client does when the machine asks.
#[derive(Clone, Default)]
pub struct Actor {
    pub auth: Option<(AuthCredentials, Option<SaslMechanism>)>,
    /// Cancel AUTH right after starting it.
    pub cancel_auth: bool,
    /// The application side of a custom SASL mechanism: the response to a
    /// challenge (decoded bytes, round), or `None` to cancel.
    pub sasl: Option<SaslApp>,
    pub jobs: Vec<Job>,
    /// Send QUIT when there is nothing left to do.
    pub quit: bool,
    /// Accept usage errors from calls (for runs against arbitrary servers);
    /// otherwise every call must succeed.
    pub lenient: bool,
    /// Errors from `send_mail` (local refusals), in order.
    pub refusals: Vec<ClientError>,
    current: Option<Vec<Vec<u8>>>,
    next_job: usize,
}

impl Actor {
    pub fn new(jobs: Vec<Job>) -> Self {
        Actor {
            jobs,
            quit: true,
            ..Actor::default()
        }
    }

    fn next(&mut self, client: &mut Client) {
        while let Some(job) = self.jobs.get(self.next_job).cloned() {
            self.next_job += 1;
            match client.send_mail(&job.envelope) {
                Ok(()) => {
                    self.current = Some(job.body.clone());
                    return;
                }
                Err(e) => self.refusals.push(e),
            }
        }
        if self.quit {
            let r = client.quit();
            self.check(r);
        }
    }

    fn check<T>(&self, r: Result<T, ClientError>) -> bool {
        match r {
            Ok(_) => true,
            Err(e) if self.lenient => {
                assert!(!e.is_remote(), "{e:?}");
                false
            }
            Err(e) => panic!("call failed: {e:?}"),
        }
    }

    pub fn act(&mut self, client: &mut Client, event: &ClientEvent<'_>) {
        match event {
            ClientEvent::Ready => {
                if let Some((creds, mech)) = self.auth.take() {
                    let r = client.authenticate(creds, mech);
                    if !self.check(r) {
                        self.next(client);
                    } else if self.cancel_auth {
                        let r = client.cancel_auth();
                        self.check(r);
                    }
                } else {
                    self.next(client);
                }
            }
            ClientEvent::AuthChallenge {
                challenge, round, ..
            } => {
                if let Some(app) = self.sasl {
                    let r = match app(challenge, *round) {
                        Some(response) => client.auth_response(&response),
                        None => client.cancel_auth(),
                    };
                    self.check(r);
                }
            }
            ClientEvent::Authenticated { .. } => self.next(client),
            ClientEvent::AuthFailed { .. } if self.quit => {
                let r = client.quit();
                self.check(r);
            }
            ClientEvent::SendBody => {
                let lenient = self.lenient;
                let Some(pieces) = self.current.as_mut() else {
                    assert!(lenient, "body without a job");
                    return;
                };
                if pieces.is_empty() {
                    let r = client.end_body();
                    self.check(r);
                    return;
                }
                while client.wants_body() && !pieces.is_empty() {
                    let piece = pieces.remove(0);
                    let r = if pieces.is_empty() {
                        client.send_last(&piece)
                    } else {
                        client.send_body(&piece)
                    };
                    if !lenient {
                        r.unwrap();
                    }
                }
            }
            ClientEvent::TransactionEnd(_) => {
                self.current = None;
                self.next(client);
            }
            _ => {}
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Every event, as its Debug text.
    pub events: Vec<String>,
    /// Every byte the client wrote, TLS boundaries included as `<TLS>`.
    pub wire: Vec<u8>,
    pub summaries: Vec<TransactionSummary>,
    pub error: Option<ClientError>,
    pub refusals: Vec<ClientError>,
    pub closed: bool,
    /// Bytes left unconsumed at the end.
    pub leftover: usize,
}

impl Run {
    pub fn wire_str(&self) -> String {
        String::from_utf8_lossy(&self.wire).into_owned()
    }

    pub fn has_event(&self, prefix: &str) -> bool {
        self.events.iter().any(|e| e.starts_with(prefix))
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.events.iter().filter(|e| e.starts_with(prefix)).count()
    }
}

pub fn config() -> ClientConfig {
    ClientConfig::new(Domain::new("client.example.net").unwrap())
}

/// Runs `client` against the server `segments`, each cut at the offsets
/// `cut(segment_len)` gives.
pub fn run_with(
    config: ClientConfig,
    actor: &Actor,
    segments: &[&[u8]],
    cut: &dyn Fn(usize) -> Vec<usize>,
) -> Run {
    let mut client = Client::new(config);
    let mut actor = actor.clone();
    let mut pieces: std::collections::VecDeque<Vec<u8>> = Default::default();
    let mut seg = 0;
    let load = |pieces: &mut std::collections::VecDeque<Vec<u8>>, seg: &mut usize| {
        if let Some(s) = segments.get(*seg) {
            let mut last = 0;
            for c in cut(s.len()).into_iter().chain([s.len()]) {
                if c > last && c <= s.len() {
                    pieces.push_back(s[last..c].to_vec());
                    last = c;
                }
            }
            *seg += 1;
        }
    };
    load(&mut pieces, &mut seg);
    let mut run = Run {
        events: Vec::new(),
        wire: Vec::new(),
        summaries: Vec::new(),
        error: None,
        refusals: Vec::new(),
        closed: false,
        leftover: 0,
    };
    let mut inbuf: Vec<u8> = Vec::new();
    // Replies past the first complete one in `inbuf` that the client is
    // given too (see `replies_end`).
    let mut more = 0;
    for _ in 0..100_000 {
        let limit = replies_end(&inbuf, 1 + more);
        let step = match client.handle_input(&inbuf[..limit]) {
            Ok(s) => s,
            Err(e) => {
                run.error = Some(e);
                break;
            }
        };
        let consumed = step.consumed;
        let mut stop = false;
        match step.outcome {
            Outcome::Event(ev) => {
                run.events.push(format!("{ev:?}"));
                match &ev {
                    ClientEvent::TransactionEnd(s)
                    | ClientEvent::ServiceClosing {
                        transaction: Some(s),
                        ..
                    } => run.summaries.push(s.clone()),
                    _ => {}
                }
                let tls = matches!(ev, ClientEvent::StartTls);
                actor.act(&mut client, &ev);
                if tls && consumed < inbuf.len() {
                    // Bytes after the 220, before the handshake: the
                    // client refuses them.
                    let rest = inbuf[consumed..].to_vec();
                    run.error = client.handle_input(&rest).err();
                    assert!(run.error.is_some(), "bytes after the STARTTLS 220");
                    break;
                }
                if tls {
                    assert!(pieces.is_empty(), "segment continues after STARTTLS 220");
                    client.poll_transmit(&mut run.wire);
                    run.wire.extend_from_slice(b"<TLS>");
                    client.tls_established().unwrap();
                    load(&mut pieces, &mut seg);
                }
            }
            Outcome::NeedInput | Outcome::Paused
                if consumed < inbuf.len() && (consumed > 0 || limit < inbuf.len()) =>
            {
                // Replies are left to give; when none was taken, the
                // reply goes on past what `replies_end` took for its end:
                // give the client the next one too.
                if consumed == 0 {
                    more += 1;
                }
            }
            Outcome::NeedInput | Outcome::Paused => match pieces.pop_front() {
                Some(p) => inbuf.extend_from_slice(&p),
                None => stop = true,
            },
            Outcome::Closed => {
                run.closed = true;
                stop = true;
            }
            _ => unreachable!(),
        }
        if consumed > 0 {
            more = 0;
        }
        inbuf.drain(..consumed);
        client.poll_transmit(&mut run.wire);
        if stop {
            break;
        }
    }
    client.poll_transmit(&mut run.wire);
    run.refusals = actor.refusals.clone();
    run.leftover = inbuf.len() + pieces.iter().map(Vec::len).sum::<usize>();
    run
}

/// Where the `n`th complete reply in `buf` ends (a line ends at LF; a
/// reply at a line whose fourth octet is not `-`), or `buf.len()` when
/// there are fewer.
///
/// A server answers a command only once it was sent: the driver gives the
/// client one reply at a time, and writes what the client queued on it
/// before it gives the next, so a flat script of replies reads as a
/// server that answers each command in turn. Several replies in one read
/// (a pipelined group) are the business of tests that cut the reads
/// themselves.
fn replies_end(buf: &[u8], n: usize) -> usize {
    let mut at = 0;
    let mut found = 0;
    while let Some(lf) = buf[at..].iter().position(|&b| b == b'\n') {
        let line = &buf[at..at + lf + 1];
        at += lf + 1;
        if line.get(3) != Some(&b'-') {
            found += 1;
            if found == n {
                return at;
            }
        }
    }
    buf.len()
}

/// Runs the script whole, then checks that every cut gives the same run:
/// one cut at every offset of every segment, and one byte at a time.
pub fn run_split_invariant(config: ClientConfig, actor: &Actor, segments: &[&[u8]]) -> Run {
    let whole = run_with(config.clone(), actor, segments, &|_| Vec::new());
    let bytewise = run_with(config.clone(), actor, segments, &|n| (1..n).collect());
    assert_eq!(whole, bytewise, "byte-at-a-time run differs");
    let longest = segments.iter().map(|s| s.len()).max().unwrap_or(0);
    for k in 1..longest {
        let cut = run_with(config.clone(), actor, segments, &move |_| vec![k]);
        assert_eq!(whole, cut, "run cut at offset {k} differs");
    }
    whole
}
