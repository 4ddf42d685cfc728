#!/usr/bin/env node
// The npm smtp-server package as an SMTP server peer that stores every
// message it accepts. For message N (from 0) it writes, each atomically:
//   OUTDIR/msg-N.eml   the message bytes as smtp-server hands them over
//                      (after dot-unstuffing, line endings as sent)
//   OUTDIR/msg-N.json  the envelope: mail_from, rcpt_tos, tls, auth
//
// Usage (from tests/interop/peers, after install.sh ran npm ci):
//   node smtp_server.mjs --port 2527 --outdir DIR
//        [--tls-cert cert.pem --tls-key key.pem [--implicit-tls]] [--auth user:pass]
//        [--seconds 120] [--max-messages N] [--reject-rcpt ADDR ...]
// With --tls-cert, STARTTLS is offered (--implicit-tls: TLS from the first
// byte instead, as on port 465); with --auth, AUTH PLAIN LOGIN is
// offered after STARTTLS (or on plain text when no certificate is given)
// and required before MAIL.
// Listens on 127.0.0.1 only. Prints "READY <port>" once listening.
// Bounded: exits after --seconds or --max-messages messages.
import fs from 'node:fs';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';

function parseArgs(argv) {
    const opts = { seconds: 120, maxMessages: 0, rejectRcpt: [] };
    for (let i = 0; i < argv.length; i++) {
        const key = argv[i];
        const value = argv[i + 1];
        switch (key) {
            case '--port': opts.port = Number(value); i++; break;
            case '--outdir': opts.outdir = value; i++; break;
            case '--tls-cert': opts.cert = value; i++; break;
            case '--tls-key': opts.key = value; i++; break;
            case '--implicit-tls': opts.implicitTls = true; break;
            case '--auth': opts.auth = value; i++; break;
            case '--seconds': opts.seconds = Number(value); i++; break;
            case '--max-messages': opts.maxMessages = Number(value); i++; break;
            case '--reject-rcpt': opts.rejectRcpt.push(value); i++; break;
            default: throw new Error(`unknown argument ${key}`);
        }
    }
    if (!opts.port || !opts.outdir) {
        throw new Error('--port and --outdir are required');
    }
    return opts;
}

function writeAtomic(dir, name, data) {
    const tmp = path.join(dir, `.${name}.tmp`);
    const fd = fs.openSync(tmp, 'w');
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, path.join(dir, name));
}

const opts = parseArgs(process.argv.slice(2));
fs.mkdirSync(opts.outdir, { recursive: true });
let count = 0;
let server;

const [user, password] = opts.auth ? opts.auth.split(/:(.*)/s) : [];
const serverOptions = {
    name: 'smtp-server.test',
    banner: 'node smtp-server peer',
    secure: Boolean(opts.implicitTls),
    socketTimeout: 30000,
    closeTimeout: 2000,
    authOptional: !opts.auth,
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: !opts.cert,
    logger: false,
    onAuth(auth, session, callback) {
        if (auth.username === user && auth.password === password) {
            return callback(null, { user: auth.username });
        }
        return callback(new Error('Invalid username or password'));
    },
    onRcptTo(address, session, callback) {
        if (opts.rejectRcpt.includes(address.address)) {
            const err = new Error(`<${address.address}>: recipient rejected`);
            err.responseCode = 550;
            return callback(err);
        }
        return callback();
    },
    onData(stream, session, callback) {
        const chunks = [];
        stream.on('data', (chunk) => chunks.push(chunk));
        stream.on('end', () => {
            if (stream.sizeExceeded) {
                return callback(new Error('Message too big'));
            }
            const n = count++;
            const meta = {
                mail_from: session.envelope.mailFrom ? session.envelope.mailFrom.address : null,
                mail_args: session.envelope.mailFrom ? session.envelope.mailFrom.args : null,
                rcpt_tos: session.envelope.rcptTo.map((r) => r.address),
                tls: Boolean(session.secure),
                auth: session.user || null,
            };
            writeAtomic(opts.outdir, `msg-${n}.eml`, Buffer.concat(chunks));
            writeAtomic(opts.outdir, `msg-${n}.json`, JSON.stringify(meta, null, 1));
            callback(null, 'OK stored');
            if (opts.maxMessages && count >= opts.maxMessages) {
                // Let the client read its replies, then stop.
                setTimeout(() => server.close(() => process.exit(0)), 200);
            }
        });
    },
};
if (opts.cert) {
    serverOptions.key = fs.readFileSync(opts.key);
    serverOptions.cert = fs.readFileSync(opts.cert);
} else {
    serverOptions.disabledCommands = ['STARTTLS'];
}
if (!opts.auth) {
    serverOptions.disabledCommands = [...(serverOptions.disabledCommands || []), 'AUTH'];
}

server = new SMTPServer(serverOptions);
server.on('error', (err) => console.error('smtp-server error:', err.message));
server.listen(opts.port, '127.0.0.1', () => {
    console.log(`READY ${opts.port}`);
});
setTimeout(() => server.close(() => process.exit(0)), opts.seconds * 1000).unref();
setTimeout(() => process.exit(0), (opts.seconds + 5) * 1000).unref();
