//! Local parts from and to the mailbox names they stand for.

use proptest::prelude::*;
use smtp_proto::command::{Command, ForwardPath, LocalPart, ValueError};

/// Mailbox names: printable ASCII with the characters that need quoting
/// and escaping, and a little UTF-8.
fn raw_name() -> impl Strategy<Value = String> {
    "[a-z.\" \\\\@(),;:<>\\[\\]!#%~é中]{0,30}"
}

proptest! {
    #[test]
    fn a_name_comes_back_from_its_wire_form(raw in raw_name()) {
        match LocalPart::from_unquoted(&raw) {
            Ok(lp) => {
                prop_assert_eq!(lp.unquoted(), raw.as_str());
                // A name that is a Dot-string is not quoted.
                let dot_string = !raw.starts_with('"')
                    && LocalPart::new(raw.as_str()).is_ok_and(|l| !l.is_quoted());
                prop_assert_eq!(lp.is_quoted(), !dot_string);
                // The wire form reads back as the same local part in a command.
                let line = format!("RCPT TO:<{}@example.org>", lp.as_str());
                match Command::parse(line.as_bytes()) {
                    Ok(Command::Rcpt(rcpt)) => match rcpt.forward_path {
                        ForwardPath::Mailbox(m) => prop_assert_eq!(m.local_part().unquoted(), raw.as_str()),
                        other => prop_assert!(false, "not a mailbox: {other:?}"),
                    },
                    other => prop_assert!(false, "{line} did not parse back: {other:?}"),
                }
            }
            // Only a wire form over 64 octets is refused for these names.
            Err(e) => {
                prop_assert_eq!(e, ValueError::TooLong);
                let escapes = raw.chars().filter(|&c| c == '"' || c == '\\').count();
                prop_assert!(raw.len() + escapes + 2 > 64, "{raw:?} refused");
            }
        }
    }
}

#[test]
fn control_characters_cannot_be_quoted() {
    for raw in ["a\tb", "a\u{7f}", "\u{85}x", "line\r\nRCPT"] {
        assert!(LocalPart::from_unquoted(raw).is_err(), "{raw:?}");
    }
}

#[test]
fn quoted_and_plain_forms_name_the_same_mailbox() {
    let quoted = LocalPart::new("\"john.doe\"").expect("valid");
    let plain = LocalPart::new("john.doe").expect("valid");
    assert_ne!(quoted, plain, "kept exactly as sent");
    assert_eq!(quoted.unquoted(), plain.unquoted());
    assert_eq!(
        LocalPart::from_unquoted(&quoted.unquoted()).expect("valid"),
        plain
    );
    assert_eq!(
        LocalPart::new(r#""a\ b""#).expect("valid").unquoted(),
        "a b",
        "a quoted pair stands for its character"
    );
}
