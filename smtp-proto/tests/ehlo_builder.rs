//! The EHLO reply builder writes only lines that read back as what it was
//! given.

use smtp_proto::reply::{Capability, EhloReply, EhloReplyBuilder, Reply};

fn built(cap: &Capability<'_>) -> Option<String> {
    let builder = EhloReplyBuilder::new("mx.example.org", "").unwrap();
    let reply = builder.capability(cap).ok()?.build().to_bytes();
    let parsed = Reply::parse(&reply).unwrap();
    let ehlo = EhloReply::parse(&parsed).unwrap();
    let caps: Vec<String> = ehlo.capabilities().map(|c| c.to_string()).collect();
    assert_eq!(caps.len(), 1);
    Some(caps[0].clone())
}

#[test]
fn typed_parameters_with_spaces_or_empty_are_refused() {
    assert_eq!(built(&Capability::MtPriority(Some("a b"))), None);
    assert_eq!(built(&Capability::MtPriority(Some(""))), None);
    assert_eq!(built(&Capability::NoSoliciting(Some("x y"))), None);
    assert_eq!(
        built(&Capability::FutureRelease(
            smtp_proto::reply::FutureRelease {
                max_interval: 5,
                max_datetime: "",
            }
        )),
        None
    );
}

#[test]
fn valid_capabilities_still_build() {
    assert_eq!(
        built(&Capability::MtPriority(Some("MIXER"))).as_deref(),
        Some("MT-PRIORITY MIXER")
    );
    assert_eq!(
        built(&Capability::Size(Some(10))).as_deref(),
        Some("SIZE 10")
    );
    assert_eq!(
        built(&Capability::Other {
            keyword: "X-CUSTOM",
            params: "a  b"
        })
        .as_deref(),
        Some("X-CUSTOM a b")
    );
}

#[test]
fn auth_lines_name_at_least_one_valid_mechanism() {
    use smtp_proto::reply::AuthMechanism;
    let builder = || EhloReplyBuilder::new("mx.example.org", "").unwrap();
    for bad in [
        &[][..],
        &[AuthMechanism::Other("X-OAUTH BEARER")],
        &[AuthMechanism::Plain, AuthMechanism::Other("")],
        &[AuthMechanism::Other("A-NAME-LONGER-THAN-20")],
    ] {
        assert!(builder().auth(bad).is_err(), "{bad:?}");
    }
    let reply = builder()
        .auth(&[AuthMechanism::Plain, AuthMechanism::Other("X-TOKEN")])
        .unwrap()
        .build()
        .to_bytes();
    let parsed = Reply::parse(&reply).unwrap();
    let ehlo = EhloReply::parse(&parsed).unwrap();
    let mechs: Vec<_> = ehlo.auth_mechanisms().collect();
    assert_eq!(
        mechs,
        [AuthMechanism::Plain, AuthMechanism::Other("X-TOKEN")]
    );
}
