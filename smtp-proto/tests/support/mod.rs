//! Transcript runner for the server machine: `C:` lines are what the client
//! sends, `S:` lines what the server must answer. Every transcript is run
//! fed whole, cut at every byte offset, and one byte at a time, and every
//! run must give the same replies, events and message bodies.
#![allow(dead_code)]

use smtp_proto::sasl::Credentials;
use smtp_proto::server::{
    Error, OwnedReply, RemoteError, ServerConfig, ServerEvent, ServerSession,
};
use smtp_proto::session::Outcome;
use smtp_proto::status::{EnhancedStatusCode, ReplyCode};

/// A reply with an enhanced code, from its parts.
pub fn reply(code: u16, enhanced: &str, text: &str) -> OwnedReply {
    let enhanced: EnhancedStatusCode = enhanced.parse().unwrap();
    OwnedReply::with_enhanced(ReplyCode::new(code).unwrap(), Some(enhanced), text).unwrap()
}

/// A parsed transcript.
#[derive(Debug, Clone)]
pub struct Transcript {
    /// Client bytes, split where TLS starts (`-- TLS --`).
    pub segments: Vec<Vec<u8>>,
    /// Everything the server must send, in order.
    pub expected: Vec<u8>,
}

/// Unescapes `\r`, `\n`, `\\`, `\0` and `\xNN`.
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b'0' => out.push(0),
                b'\\' => out.push(b'\\'),
                b'x' => {
                    let hex = &s[i + 2..i + 4];
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                other => panic!("bad escape \\{}", other as char),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Parses `C: line` (sent with CRLF), `C~ raw` (escaped bytes, no CRLF
/// added), `S: line` (expected, with CRLF) and `-- TLS --`. Other lines
/// (blank, `#` comments) are ignored; leading spaces are trimmed.
pub fn parse(text: &str) -> Transcript {
    let mut segments = vec![Vec::new()];
    let mut expected = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if let Some(rest) = line.strip_prefix("C: ") {
            let seg = segments.last_mut().unwrap();
            seg.extend_from_slice(rest.as_bytes());
            seg.extend_from_slice(b"\r\n");
        } else if line == "C:" {
            segments.last_mut().unwrap().extend_from_slice(b"\r\n");
        } else if let Some(rest) = line.strip_prefix("C~ ") {
            segments.last_mut().unwrap().extend(unescape(rest));
        } else if let Some(rest) = line.strip_prefix("S: ") {
            expected.extend_from_slice(rest.as_bytes());
            expected.extend_from_slice(b"\r\n");
        } else if line == "-- TLS --" {
            segments.push(Vec::new());
        }
    }
    Transcript { segments, expected }
}

/// What the application answers.
pub enum Action {
    Accept,
    Reply(OwnedReply),
    PerRecipient(Vec<OwnedReply>),
    /// An OAuth error challenge, then the final reply.
    Challenge(Vec<u8>, OwnedReply),
    /// A custom SASL mechanism's next challenge.
    AuthChallenge(Vec<u8>),
    /// Accepts a pending AUTH as this identity.
    AcceptAs(String),
}

/// Application state a policy may keep (per run).
#[derive(Debug, Default)]
pub struct AppState {
    pub rcpts: Vec<String>,
    pub lmtp: bool,
}

pub type Policy = fn(&ServerEvent<'_>, &mut AppState) -> Action;

/// Accepts everything except: senders or recipients whose local part
/// starts with `reject` (550), credentials whose secret is not `secret`
/// (535 by default), and in LMTP recipients starting with `lmtpfail` get
/// 452 at message end.
pub fn default_policy(event: &ServerEvent<'_>, app: &mut AppState) -> Action {
    match event {
        ServerEvent::Hello { domain, .. } if domain.as_str().starts_with("reject") => {
            Action::Reply(reply(550, "5.7.1", "Go away"))
        }
        ServerEvent::Vrfy(who) if who.as_str() == "known" => {
            Action::Reply(reply(250, "2.1.5", "Known User <known@mx.example.com>"))
        }
        ServerEvent::Expn(list) if list.as_str() == "list" => {
            let mut r = reply(250, "2.1.5", "One <one@mx.example.com>");
            r.push_line(Some("2.1.5".parse().unwrap()), "Two <two@mx.example.com>")
                .unwrap();
            Action::Reply(r)
        }
        ServerEvent::Mail { .. } if !app.rcpts.is_empty() => {
            app.rcpts.clear();
            default_policy(event, app)
        }
        ServerEvent::Mail { from, .. } if from.to_string().starts_with("<reject") => {
            Action::Reply(reply(550, "5.7.1", "Sender refused"))
        }
        ServerEvent::Rcpt { to, .. } => {
            let to = to.to_string();
            if to.starts_with("<reject") {
                Action::Reply(reply(550, "5.1.1", "No such user"))
            } else {
                app.rcpts.push(to);
                Action::Accept
            }
        }
        ServerEvent::Auth(creds) => {
            let secret = match creds {
                Credentials::Plain { password, .. } | Credentials::Login { password, .. } => {
                    password.expose().to_owned()
                }
                Credentials::XOAuth2 { token, .. } | Credentials::OAuthBearer { token, .. } => {
                    token.expose().to_owned()
                }
                _ => String::new(),
            };
            if secret == "secret" {
                Action::Accept
            } else if matches!(
                creds,
                Credentials::XOAuth2 { .. } | Credentials::OAuthBearer { .. }
            ) {
                Action::Challenge(
                    br#"{"status":"401","schemes":"bearer"}"#.to_vec(),
                    reply(535, "5.7.8", "Authentication credentials invalid"),
                )
            } else {
                Action::Reply(reply(535, "5.7.8", "Authentication credentials invalid"))
            }
        }
        ServerEvent::MessageEnd { .. }
            if app.lmtp && app.rcpts.iter().any(|r| r.starts_with("<lmtpfail")) =>
        {
            let replies = app
                .rcpts
                .drain(..)
                .map(|r| {
                    if r.starts_with("<lmtpfail") {
                        reply(452, "4.2.2", "Mailbox full")
                    } else {
                        reply(250, "2.0.0", "Delivered")
                    }
                })
                .collect();
            Action::PerRecipient(replies)
        }
        ServerEvent::MessageEnd { .. } => {
            app.rcpts.clear();
            Action::Accept
        }
        ServerEvent::Reset | ServerEvent::Hello { .. } => {
            app.rcpts.clear();
            Action::Accept
        }
        _ => Action::Accept,
    }
}

/// Everything one run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    pub output: Vec<u8>,
    /// Events (except body chunks) as Debug strings.
    pub events: Vec<String>,
    /// The body of each message, chunks joined.
    pub bodies: Vec<Vec<u8>>,
    pub remote_error: Option<RemoteError>,
    pub closed: bool,
    /// Bytes never consumed when the run stopped.
    pub leftover: usize,
    /// The session's authenticated identity at the end.
    pub identity: Option<String>,
}

impl RunResult {
    pub fn output_str(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }

    /// How many events (as Debug strings) contain `needle`.
    pub fn count_events(&self, needle: &str) -> usize {
        self.events.iter().filter(|e| e.contains(needle)).count()
    }
}

/// Options of one transcript run.
pub struct Setup {
    pub config: ServerConfig,
    pub refuse: bool,
    /// What `set_starttls_available` is given before the greeting.
    pub starttls_available: bool,
    pub policy: Policy,
}

impl Setup {
    pub fn new(config: ServerConfig) -> Self {
        Self {
            config,
            refuse: false,
            starttls_available: true,
            policy: default_policy,
        }
    }
}

/// Runs the client bytes, each segment delivered in pieces cut at `cuts`
/// (offsets within the segment; `step == Some(n)` means n-byte pieces).
pub fn run_pieces(
    setup: &Setup,
    segments: &[Vec<u8>],
    piece: &dyn Fn(&[u8]) -> Vec<Vec<u8>>,
) -> RunResult {
    let mut server = ServerSession::new(setup.config.clone()).unwrap();
    server.set_starttls_available(setup.starttls_available);
    if setup.refuse {
        server.refuse(None).unwrap();
    } else {
        server.greet().unwrap();
    }
    let mut app = AppState {
        lmtp: setup.config.lmtp,
        ..AppState::default()
    };
    let mut result = RunResult {
        output: Vec::new(),
        events: Vec::new(),
        bodies: Vec::new(),
        remote_error: None,
        closed: false,
        leftover: 0,
        identity: None,
    };
    let mut body: Option<Vec<u8>> = None;
    let mut buf: Vec<u8> = Vec::new();
    let mut start = 0;
    let mut arrivals = Vec::new().into_iter();
    'segments: for (si, segment) in segments.iter().enumerate() {
        arrivals = piece(segment).into_iter();
        loop {
            let step = match server.handle_input(&buf[start..]) {
                Ok(step) => step,
                Err(Error::Remote(e)) => {
                    result.remote_error = Some(e);
                    break 'segments;
                }
                Err(Error::Usage(e)) => panic!("usage error in the runner: {e}"),
                Err(e) => panic!("{e}"),
            };
            assert!(
                server.pending_decision().is_none() || matches!(step.outcome, Outcome::Event(_))
            );
            let consumed = step.consumed;
            match step.outcome {
                Outcome::Event(event) => {
                    match &event {
                        ServerEvent::MessageChunk(c) => {
                            body.get_or_insert_with(Vec::new).extend_from_slice(c)
                        }
                        ServerEvent::MessageStart { .. } => {
                            body = Some(Vec::new());
                            result.events.push(format!("{event:?}"));
                        }
                        _ => result.events.push(format!("{event:?}")),
                    }
                    if matches!(event, ServerEvent::MessageEnd { .. }) {
                        result.bodies.push(body.take().unwrap_or_default());
                    }
                    if server.pending_decision().is_some() {
                        match (setup.policy)(&event, &mut app) {
                            Action::Accept => server.accept().unwrap(),
                            Action::Reply(r) => server.reply(r).unwrap(),
                            Action::PerRecipient(rs) => server.reply_per_recipient(&rs).unwrap(),
                            Action::Challenge(error, r) => {
                                server.reject_auth_with_challenge(&error, r).unwrap()
                            }
                            Action::AuthChallenge(c) => {
                                let _ = server.auth_challenge(&c).unwrap();
                            }
                            Action::AcceptAs(who) => server.accept_auth(who).unwrap(),
                        }
                    }
                    if matches!(event, ServerEvent::StartTls) {
                        start += consumed;
                        assert_eq!(start, buf.len(), "StartTls with bytes left");
                        server.poll_transmit(&mut result.output);
                        server.tls_established().unwrap();
                        buf.clear();
                        start = 0;
                        assert!(si + 1 < segments.len(), "STARTTLS without a TLS segment");
                        continue 'segments;
                    }
                }
                Outcome::NeedInput => {
                    server.poll_transmit(&mut result.output);
                    match arrivals.next() {
                        Some(bytes) => {
                            buf.drain(..start + consumed);
                            start = 0;
                            buf.extend_from_slice(&bytes);
                            continue;
                        }
                        None => {
                            start += consumed;
                            break;
                        }
                    }
                }
                Outcome::Transmit => {
                    server.poll_transmit(&mut result.output);
                }
                Outcome::Closed => {
                    start += consumed;
                    break 'segments;
                }
                Outcome::Paused => panic!("paused without STARTTLS"),
                _ => panic!("unknown outcome"),
            }
            start += consumed;
        }
    }
    server.poll_transmit(&mut result.output);
    // Whatever else the client sent arrives too, however it was split.
    for rest in arrivals {
        buf.extend_from_slice(&rest);
    }
    result.closed = server.is_closed();
    result.identity = server.auth_identity().map(str::to_owned);
    // After a remote error the rest of the input no longer matters (and
    // the bytes consumed by the failing call are not reported).
    result.leftover = if result.remote_error.is_some() {
        0
    } else {
        buf.len() - start
    };
    result
}

fn cut_at(k: usize) -> impl Fn(&[u8]) -> Vec<Vec<u8>> {
    move |seg: &[u8]| {
        let k = k.min(seg.len());
        vec![seg[..k].to_vec(), seg[k..].to_vec()]
    }
}

fn pieces_of(n: usize) -> impl Fn(&[u8]) -> Vec<Vec<u8>> {
    move |seg: &[u8]| seg.chunks(n).map(<[u8]>::to_vec).collect()
}

/// Runs the transcript whole, cut at every offset, and byte by byte;
/// asserts every run is identical and returns the result.
pub fn run_all(setup: &Setup, t: &Transcript) -> RunResult {
    let whole = run_pieces(setup, &t.segments, &|s: &[u8]| vec![s.to_vec()]);
    let longest = t.segments.iter().map(Vec::len).max().unwrap_or(0);
    for k in 0..=longest {
        let cut = run_pieces(setup, &t.segments, &cut_at(k));
        assert_eq!(cut, whole, "split at offset {k} differs");
    }
    let bytewise = run_pieces(setup, &t.segments, &pieces_of(1));
    assert_eq!(bytewise, whole, "byte-by-byte run differs");
    whole
}

/// Runs a transcript and checks the server's output against its `S:` lines.
pub fn check(setup: &Setup, text: &str) -> RunResult {
    let t = parse(text);
    let result = run_all(setup, &t);
    let got = result.output_str();
    let want = String::from_utf8_lossy(&t.expected);
    assert_eq!(
        got, want,
        "server output differs\nevents: {:#?}",
        result.events
    );
    result
}

/// A configuration for the transcripts: host `mx.example.com`.
pub fn config() -> ServerConfig {
    ServerConfig::new("mx.example.com")
}

/// A session of `c`, greeted, its `EHLO bar.com` accepted; what it wrote
/// is still to be taken with `poll_transmit`.
pub fn after_ehlo(c: ServerConfig) -> ServerSession {
    let mut s = ServerSession::new(c).unwrap();
    s.greet().unwrap();
    let step = s.handle_input(b"EHLO bar.com\r\n").unwrap();
    assert!(matches!(
        step.outcome,
        Outcome::Event(ServerEvent::Hello { .. })
    ));
    s.accept().unwrap();
    s
}

/// The greeting and the EHLO exchange (client `bar.com`) of [`config`]
/// with `auth_mechanisms` set to PLAIN alone.
pub const EHLO_AUTH_PLAIN: &str = "
    S: 220 mx.example.com ESMTP
    C: EHLO bar.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-8BITMIME
    S: 250-AUTH PLAIN
    S: 250-CHUNKING
    S: 250 ENHANCEDSTATUSCODES
";
