//! The one place where the server writes its own replies, through the reply
//! codec ([`OwnedReply`]).

use crate::reply::OwnedReply;
use crate::status::{EnhancedStatusCode, ReplyCode};

/// A reply code the machine uses; its codes are all valid, the fallback
/// only keeps the function total.
pub(crate) fn rc(n: u16) -> ReplyCode {
    ReplyCode::new(n).unwrap_or(ReplyCode::TRANSACTION_FAILED)
}

/// Writes one single-line reply: `code [enhanced ]text CRLF`.
pub(crate) fn write_reply(
    out: &mut Vec<u8>,
    code: ReplyCode,
    enhanced: Option<EnhancedStatusCode>,
    text: &str,
) {
    match OwnedReply::with_enhanced(code, enhanced, text) {
        Ok(reply) => reply.write_to(out),
        // The machine's own texts are fixed and checked by the tests; should
        // one ever be refused, the bare code still keeps the session in step.
        Err(_) => {
            if let Ok(reply) = OwnedReply::new(code, "") {
                reply.write_to(out);
            }
        }
    }
}
