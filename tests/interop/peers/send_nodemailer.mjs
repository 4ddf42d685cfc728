#!/usr/bin/env node
// Sends one message file with nodemailer's SMTP transport to 127.0.0.1:PORT.
// Usage (from tests/interop/peers): node send_nodemailer.mjs --port P
//        --from F --to T --file MSG [--starttls [--cafile CERT]]
//        [--auth USER:PASS] [--no-tls]
// The file goes out as a raw message (nodemailer builds no headers);
// nodemailer dot-stuffs and ends it with CRLF.CRLF. It uses STARTTLS
// whenever the server offers it unless --no-tls is given; --starttls makes
// TLS required.
import fs from 'node:fs';
import nodemailer from 'nodemailer';

const opts = { to: [] };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
        case '--port': opts.port = Number(argv[++i]); break;
        case '--from': opts.from = argv[++i]; break;
        case '--to': opts.to.push(argv[++i]); break;
        case '--file': opts.file = argv[++i]; break;
        case '--starttls': opts.starttls = true; break;
        case '--no-tls': opts.noTls = true; break;
        case '--cafile': opts.cafile = argv[++i]; break;
        case '--auth': opts.auth = argv[++i]; break;
        default: throw new Error(`unknown argument ${argv[i]}`);
    }
}

const transportOptions = {
    host: '127.0.0.1',
    port: opts.port,
    secure: false,
    name: 'client.test',
    requireTLS: Boolean(opts.starttls),
    ignoreTLS: Boolean(opts.noTls),
    connectionTimeout: 30000,
    greetingTimeout: 30000,
    socketTimeout: 30000,
    tls: opts.cafile
        ? { ca: fs.readFileSync(opts.cafile), servername: 'localhost' }
        : { rejectUnauthorized: false },
};
if (opts.auth) {
    const [user, pass] = opts.auth.split(/:(.*)/s);
    transportOptions.auth = { user, pass };
}

const transporter = nodemailer.createTransport(transportOptions);
try {
    const info = await transporter.sendMail({
        envelope: { from: opts.from, to: opts.to },
        raw: fs.readFileSync(opts.file),
    });
    console.log(info.response);
    transporter.close();
    process.exitCode = info.rejected.length ? 1 : 0;
} catch (err) {
    console.error(`nodemailer: ${err.message}`);
    transporter.close();
    process.exitCode = 1;
}
