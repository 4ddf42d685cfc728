//! Command encoding: canonical bytes, CRLF included.

use super::params::{AuthParam, ByMode, Hold, MailParameters, RcptParameters, Ret, RrvsMode};
use super::Command;

fn put(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
}

fn put_num(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

pub(crate) fn write_command(cmd: &Command<'_>, out: &mut Vec<u8>) {
    match cmd {
        Command::Ehlo(d) | Command::Helo(d) | Command::Lhlo(d) => {
            put(out, cmd.verb());
            out.push(b' ');
            put(out, d.as_str());
        }
        Command::Mail(m) => {
            put(out, "MAIL FROM:");
            match &m.reverse_path {
                super::ReversePath::Null => put(out, "<>"),
                super::ReversePath::Mailbox(mb) => write_mailbox(out, mb),
            }
            write_mail_params(out, &m.params);
        }
        Command::Rcpt(r) => {
            put(out, "RCPT TO:");
            match &r.forward_path {
                super::ForwardPath::Postmaster => put(out, "<Postmaster>"),
                super::ForwardPath::Mailbox(mb) => write_mailbox(out, mb),
            }
            write_rcpt_params(out, &r.params);
        }
        Command::Bdat { size, last } => {
            put(out, "BDAT ");
            put_num(out, *size);
            if *last {
                put(out, " LAST");
            }
        }
        Command::Data | Command::Rset | Command::Quit | Command::StartTls => put(out, cmd.verb()),
        Command::Noop(t) | Command::Help(t) => {
            put(out, cmd.verb());
            if let Some(t) = t {
                out.push(b' ');
                put(out, t.as_str());
            }
        }
        Command::Vrfy(t) | Command::Expn(t) => {
            put(out, cmd.verb());
            out.push(b' ');
            put(out, t.as_str());
        }
        Command::Etrn(node) => {
            put(out, "ETRN ");
            put(out, node.as_str());
        }
        Command::Auth {
            mechanism,
            initial_response,
        } => {
            put(out, "AUTH ");
            put(out, mechanism.as_str());
            if let Some(ir) = initial_response {
                out.push(b' ');
                put(
                    out,
                    if ir.as_str().is_empty() {
                        "="
                    } else {
                        ir.as_str()
                    },
                );
            }
        }
        Command::Unknown { verb, args } => {
            put(out, verb.as_str());
            if let Some(a) = args {
                out.push(b' ');
                put(out, a.as_str());
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

fn write_mailbox(out: &mut Vec<u8>, mb: &super::Mailbox<'_>) {
    out.push(b'<');
    put(out, mb.local_part().as_str());
    out.push(b'@');
    put(out, mb.domain().as_str());
    out.push(b'>');
}

fn write_mail_params(out: &mut Vec<u8>, p: &MailParameters<'_>) {
    if let Some(size) = p.size {
        put(out, " SIZE=");
        put_num(out, size);
    }
    if let Some(body) = p.body {
        put(out, " BODY=");
        put(out, body.as_str());
    }
    if p.smtputf8 {
        put(out, " SMTPUTF8");
    }
    if let Some(ret) = p.ret {
        put(
            out,
            match ret {
                Ret::Full => " RET=FULL",
                Ret::Hdrs => " RET=HDRS",
            },
        );
    }
    if let Some(envid) = &p.envid {
        put(out, " ENVID=");
        put(out, envid.as_str());
    }
    if let Some(auth) = &p.auth {
        put(out, " AUTH=");
        match auth {
            AuthParam::Null => put(out, "<>"),
            // An empty identity has no wire form of its own: it is
            // written as the null identity.
            AuthParam::Identity(x) if x.as_str().is_empty() => put(out, "<>"),
            AuthParam::Identity(x) => put(out, x.as_str()),
        }
    }
    if p.requiretls {
        put(out, " REQUIRETLS");
    }
    if let Some(prio) = p.mt_priority.map(super::params::MtPriority::get) {
        put(out, " MT-PRIORITY=");
        if prio < 0 {
            out.push(b'-');
        }
        put_num(out, u64::from(prio.unsigned_abs()));
    }
    match &p.hold {
        Some(Hold::For(secs)) => {
            put(out, " HOLDFOR=");
            put_num(out, u64::from(secs.seconds()));
        }
        Some(Hold::Until(t)) => {
            put(out, " HOLDUNTIL=");
            put(out, t.as_str());
        }
        None => {}
    }
    if let Some(by) = &p.by {
        put(out, " BY=");
        if by.time() < 0 {
            out.push(b'-');
        }
        put_num(out, by.time().unsigned_abs());
        put(
            out,
            match by.mode() {
                ByMode::Notify => ";N",
                ByMode::Return => ";R",
            },
        );
        if by.trace() {
            out.push(b'T');
        }
    }
    write_other(out, &p.other);
}

fn write_rcpt_params(out: &mut Vec<u8>, p: &RcptParameters<'_>) {
    if let Some(n) = p.notify {
        put(out, " NOTIFY=");
        if n.is_never() {
            put(out, "NEVER");
        } else {
            let mut first = true;
            for (on, name) in [
                (n.success, "SUCCESS"),
                (n.failure, "FAILURE"),
                (n.delay, "DELAY"),
            ] {
                if on {
                    if !first {
                        out.push(b',');
                    }
                    put(out, name);
                    first = false;
                }
            }
        }
    }
    if let Some(o) = &p.orcpt {
        put(out, " ORCPT=");
        put(out, o.addr_type().as_str());
        out.push(b';');
        put(out, o.addr().as_str());
    }
    if let Some(r) = &p.rrvs {
        put(out, " RRVS=");
        put(out, r.time.as_str());
        match r.mode {
            Some(RrvsMode::Continue) => put(out, ";C"),
            Some(RrvsMode::Reject) => put(out, ";R"),
            None => {}
        }
    }
    write_other(out, &p.other);
}

fn write_other(out: &mut Vec<u8>, other: &[super::Parameter<'_>]) {
    for p in other {
        out.push(b' ');
        put(out, p.keyword());
        if let Some(v) = p.value() {
            out.push(b'=');
            put(out, v);
        }
    }
}
