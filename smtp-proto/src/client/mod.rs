//! The sans-IO SMTP / LMTP client session.
//!
//! [`Client`] sequences a session for a mail submission client or an MTA's
//! outbound delivery: greeting, EHLO (HELO fallback) or LHLO, STARTTLS,
//! AUTH, any number of transactions with PIPELINING, DATA or BDAT, and
//! QUIT. It owns no socket and no clock:
//!
//! * [`Client::handle_input`] takes the server's bytes (the caller owns the
//!   buffer) and returns a [`Step`] (the contract shared with the server
//!   machine, from [`crate::session`]): how many bytes were consumed and an
//!   [`Outcome`] — an [`ClientEvent`], `NeedInput` (read more), `Paused`
//!   (the client waits for a call: [`Client::send_mail`],
//!   [`Client::send_body`], [`Client::quit`], ...) or `Closed`.
//! * [`Client::poll_transmit`] hands out the bytes to write.
//! * [`Client::timeout`] says how long to wait for the server now
//!   (RFC 5321 §4.5.3.2); the adapter runs the clock.
//!
//! Errors come in three kinds: the server broke the protocol (the session
//! is closed), the call did not fit the state ([`UsageError`], nothing
//! changes), or the message needs something the server lacks or goes
//! past a limit it advertised (SIZE, LIMITS) ([`Refusal`], refused before
//! anything is sent). A configuration the
//! client cannot use ([`ConfigError`]: a hello domain that is not ASCII)
//! fails the first [`Client::handle_input`] before anything is sent.
//!
//! # Which call fits when
//!
//! | After the event                          | Call                                                        |
//! |------------------------------------------|-------------------------------------------------------------|
//! | [`ClientEvent::Ready`], [`ClientEvent::Authenticated`], [`ClientEvent::AuthFailed`], [`ClientEvent::TransactionEnd`], [`ClientEvent::Noop`] | [`Client::authenticate`], [`Client::send_mail`], [`Client::noop`], [`Client::quit`] |
//! | [`ClientEvent::StartTls`]                | run the TLS handshake, then [`Client::tls_established`]      |
//! | [`ClientEvent::SendBody`]                | [`Client::send_body`] while [`Client::wants_body`], then [`Client::end_body`] or [`Client::send_last`] |
//! | during an AUTH exchange                  | [`Client::cancel_auth`]                                      |
//! | [`ClientEvent::AuthChallenge`]           | [`Client::auth_response`] or [`Client::cancel_auth`]         |
//!
//! [`Client::send_body`] may be called any number of times, except for a
//! BDAT body to a server without PIPELINING: each chunk must be answered
//! before the next, so after one piece [`Client::wants_body`] turns false
//! and the next piece (or the end) waits for the next
//! [`ClientEvent::SendBody`].
//!
//! Any other call returns [`ClientError::Usage`] and changes nothing. The
//! client drives everything else by itself: EHLO (HELO fallback), STARTTLS
//! per [`TlsPolicy`], the AUTH 334 exchange, RCPT and DATA after MAIL, RSET
//! when a failed transaction left state behind, and QUIT after a refused
//! greeting, a refused EHLO or a required TLS that is not available.
//!
//! For the common case, one message to the recipients of one envelope,
//! [`Delivery`] makes these calls from the events (AUTH, with the
//! challenges of a custom mechanism answered by a [`SaslResponder`], as
//! many transactions as the server's `LIMITS` ask for, QUIT) and ends with a
//! [`DeliveryReport`]: for each recipient, whether the message was
//! delivered, refused for good or for now (with the reply), not attempted
//! (and why), or of unknown fate (the connection broke after the message,
//! before its reply).
//!
//! [`ClientEvent::Sender`], [`ClientEvent::Recipient`] and
//! [`ClientEvent::Message`] carry the server's reply and its [`Verdict`]
//! (success, retry later, permanent); [`ClientEvent::TransactionEnd`]
//! sums them up per recipient.
//!
//! # A complete run loop
//!
//! ```
//! use smtp_proto::client::{Client, ClientConfig, ClientEvent, Envelope, Outcome, TlsPolicy};
//! use smtp_proto::command::{Domain, ForwardPath, Mailbox, ReversePath};
//!
//! // What the server will say, as it arrives on the socket.
//! let mut server: std::collections::VecDeque<&[u8]> = [
//!     &b"220 mx.example.org ESMTP\r\n"[..],
//!     b"250-mx.example.org\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 1000000\r\n",
//!     b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n",
//!     b"250 2.0.0 Ok: queued as 4BXq3\r\n",
//!     b"221 2.0.0 Bye\r\n",
//! ]
//! .into();
//!
//! let config = ClientConfig::new(Domain::new("client.example.net").unwrap())
//!     .with_tls(TlsPolicy::Off);
//! let mut client = Client::new(config);
//! let envelope = Envelope::new(ReversePath::Mailbox(Mailbox::parse("alice@example.net").unwrap()))
//!     .recipient(ForwardPath::Mailbox(Mailbox::parse("bob@example.org").unwrap()))
//!     .recipient(ForwardPath::Mailbox(Mailbox::parse("nobody@example.org").unwrap()));
//! let body: &[&[u8]] = &[b"Subject: hi\r\n\r\n", b".leading dot\n", b"bye"];
//!
//! let mut inbuf: Vec<u8> = Vec::new(); // bytes read, not yet consumed
//! let mut wire: Vec<u8> = Vec::new(); // what we would write to the socket
//! let mut queue_id = String::new();
//! let mut sent = false;
//! for _ in 0..100 {
//!     let step = client.handle_input(&inbuf).expect("protocol error");
//!     let consumed = step.consumed;
//!     let mut done = false;
//!     match step.outcome {
//!         Outcome::Event(ClientEvent::Ready) => client.send_mail(&envelope).unwrap(),
//!         Outcome::Event(ClientEvent::SendBody) => {
//!             for piece in body {
//!                 client.send_body(piece).unwrap();
//!             }
//!             client.end_body().unwrap();
//!         }
//!         Outcome::Event(ClientEvent::Message { reply, .. }) => {
//!             queue_id = String::from_utf8_lossy(reply.text()).into_owned();
//!         }
//!         Outcome::Event(ClientEvent::TransactionEnd(summary)) => {
//!             assert_eq!(summary.delivered().collect::<Vec<_>>(), [0]);
//!             sent = true;
//!             client.quit().unwrap();
//!         }
//!         Outcome::Event(_) => {}
//!         Outcome::NeedInput => match server.pop_front() {
//!             Some(bytes) => inbuf.extend_from_slice(bytes),
//!             None => done = true, // end of stream
//!         },
//!         Outcome::Paused => {} // nothing to decide in this example
//!         Outcome::Closed => done = true,
//!         _ => {}
//!     }
//!     inbuf.drain(..consumed);
//!     client.poll_transmit(&mut wire); // write these bytes to the socket
//!     if done {
//!         break;
//!     }
//! }
//! assert!(sent && client.is_closed());
//! assert_eq!(queue_id, "Ok: queued as 4BXq3");
//! let wire = String::from_utf8(wire).unwrap();
//! assert!(wire.starts_with("EHLO client.example.net\r\n"));
//! // MAIL, both RCPTs and DATA went out in one pipelined group.
//! assert!(wire.contains(
//!     "MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\n\
//!      RCPT TO:<nobody@example.org>\r\nDATA\r\n"
//! ));
//! // The body was dot-stuffed, its bare LF made CRLF, and CRLF.CRLF ended it.
//! assert!(wire.contains("Subject: hi\r\n\r\n..leading dot\r\nbye\r\n.\r\nQUIT\r\n"));
//! ```

mod auth;
mod body;
mod config;
mod delivery;
mod envelope;
mod event;
mod machine;
mod responder;

pub use crate::session::{Outcome, Phase, Step, Timeouts};
pub use auth::{AuthCredentials, AuthFailure, CustomCredentials};
pub use config::{ChunkingPolicy, ClientConfig, ConfigError, Protocol, TlsPolicy};
pub use delivery::{
    Delivery, DeliveryReport, NotAttempted, RecipientOutcome, RecipientReport, SendFailure, Stage,
};
pub use envelope::{Envelope, Recipient};
pub use event::{
    ClientError, ClientEvent, FailedAuth, OwnedClientEvent, RecipientStatus, Refusal,
    TransactionSummary, UsageError, Verdict,
};
pub use machine::{Client, AUTH_LINE_MAX};
pub use responder::{SaslAnswer, SaslResponder};
