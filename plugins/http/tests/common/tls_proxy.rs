//! A TLS terminator in front of a loopback server (rustls, ring): osmem-server speaks plain
//! HTTP, so the TLS tests reach it through this, with a certificate of the test's own CA.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// Listens on a free port with `dir`'s `server.pem`/`server.key` and forwards each
/// connection to `127.0.0.1:upstream`; returns the port. Runs until the test ends. With
/// `mutual`, clients must present a certificate signed by `dir`'s `ca.pem`.
pub fn start(dir: &Path, upstream: u16, mutual: bool) -> u16 {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .expect("server.pem")
        .collect::<Result<_, _>>()
        .expect("certs");
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).expect("server.key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions");
    let builder = if mutual {
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(dir.join("ca.pem")).expect("ca.pem") {
            roots.add(ca.expect("ca")).expect("root");
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("client verifier");
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder.with_single_cert(certs, key).expect("server config");
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().map_while(Result::ok) {
            let config = config.clone();
            std::thread::spawn(move || serve(tcp, config, upstream));
        }
    });
    port
}

fn serve(tcp: TcpStream, config: Arc<ServerConfig>, upstream: u16) {
    let Ok(conn) = ServerConnection::new(config) else {
        return;
    };
    let mut tls = StreamOwned::new(conn, tcp);
    let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let mut up_read = up.try_clone().expect("clone");
    // The TLS stream cannot be split: poll it with a short read timeout and pump both ways.
    let _ = tls
        .sock
        .set_read_timeout(Some(std::time::Duration::from_millis(5)));
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n) = up_read.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut up = up;
    let mut buf = vec![0; 64 * 1024];
    loop {
        while let Ok(chunk) = rx.try_recv() {
            if tls.write_all(&chunk).and_then(|()| tls.flush()).is_err() {
                return;
            }
        }
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if up.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = up.shutdown(Shutdown::Both);
}
