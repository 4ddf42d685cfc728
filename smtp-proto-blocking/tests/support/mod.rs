//! Helpers shared by the loopback tests: bounded timeouts, loopback
//! servers and peers on threads, raw clients, and TLS configurations.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use smtp_proto_blocking::rustls;
use smtp_proto_blocking::server::{serve, ServeEnd, ServeError, ServeOptions, ServerHandler};
use smtp_proto_blocking::smtp_proto::server::{ServerConfig, ServerSession};
use smtp_proto_blocking::smtp_proto::session::Timeouts;

/// Bounds every wait in the tests, so a broken driver fails instead of
/// hanging.
pub const BOUND: Duration = Duration::from_secs(20);

/// Session timeouts that are all [`BOUND`].
pub fn bounded_timeouts() -> Timeouts {
    let mut t = Timeouts::default();
    t.initial = BOUND;
    t.mail = BOUND;
    t.rcpt = BOUND;
    t.data_init = BOUND;
    t.data_block = BOUND;
    t.data_termination = BOUND;
    t.server = BOUND;
    t
}

/// The server thread of [`spawn_server`]: the driver's result and the
/// handler.
pub type ServerThread<H> = JoinHandle<(Result<ServeEnd, ServeError>, H)>;

/// Binds a loopback listener and runs `peer` on a thread with the one
/// connection it accepts, which has a read timeout of [`BOUND`] (a driver
/// that gets it sets its own before each read).
pub fn spawn_peer<T, F>(peer: F) -> (SocketAddr, JoinHandle<T>)
where
    T: Send + 'static,
    F: FnOnce(TcpStream) -> T + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let join = thread::spawn(move || {
        let (socket, _) = listener.accept().expect("accept");
        socket.set_read_timeout(Some(BOUND)).expect("timeout");
        peer(socket)
    });
    (addr, join)
}

/// Serves one loopback connection on a thread with `handler`; the thread
/// returns the driver's result and the handler.
pub fn spawn_server<H: ServerHandler + Send + 'static>(
    config: ServerConfig,
    options: ServeOptions,
    handler: H,
) -> (SocketAddr, ServerThread<H>) {
    spawn_server_with_buffers(config, options, handler, None)
}

/// [`spawn_server`], with the server socket's send and receive buffers
/// set to `buffers` bytes each (the kernel may round them).
pub fn spawn_server_with_buffers<H: ServerHandler + Send + 'static>(
    config: ServerConfig,
    options: ServeOptions,
    mut handler: H,
    buffers: Option<usize>,
) -> (SocketAddr, ServerThread<H>) {
    spawn_peer(move |socket| {
        if let Some(size) = buffers {
            let s = socket2::SockRef::from(&socket);
            s.set_send_buffer_size(size).expect("send buffer");
            s.set_recv_buffer_size(size).expect("receive buffer");
        }
        let mut session = ServerSession::new(config).expect("session");
        session.greet().expect("greet");
        let end = serve(socket, &mut session, &mut handler, &options);
        (end, handler)
    })
}

/// A raw loopback client with a read timeout of [`BOUND`].
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(BOUND)).expect("timeout");
    s
}

/// A self-signed certificate for `localhost`, as a server config and a
/// client config that trusts exactly it.
#[allow(dead_code, reason = "not every test binary runs TLS")]
pub fn tls_configs() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("rcgen");
    let cert_der: CertificateDer<'static> = cert.der().clone();
    let key_der = PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
    let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key_der)
        .expect("server config");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).expect("root");
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}
