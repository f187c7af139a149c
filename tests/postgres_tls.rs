//! A PostgreSQL route with `tls:` terminates TLS for clients that ask for it (SSLRequest),
//! with its own certificate, and faults act on the decrypted statements; clients that do not
//! ask go on in plaintext.

use crate::pg;
use crate::support;

use std::sync::Arc;

use bytes::BytesMut;
use pg::{PgServer, READ_ONLY};
use postgres_protocol::message::frontend;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use support::{scratch_dir, spawn_switchboard};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Reads messages up to a ReadyForQuery: each tag, and the SQLSTATE of any error.
async fn until_ready<S: AsyncRead + Unpin>(stream: &mut S) -> Vec<(char, String)> {
    let mut seen = Vec::new();
    loop {
        let mut head = [0u8; 5];
        stream.read_exact(&mut head).await.expect("message header");
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len - 4];
        stream.read_exact(&mut body).await.expect("message body");
        let code = match head[0] {
            b'E' => body
                .split(|&b| b == 0)
                .find_map(|f| f.strip_prefix(b"C"))
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .unwrap_or_default(),
            _ => String::new(),
        };
        seen.push((char::from(head[0]), code));
        if head[0] == b'Z' {
            return seen;
        }
    }
}

async fn start_and_query<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    sql: &str,
) -> Vec<(char, String)> {
    let mut out = BytesMut::new();
    frontend::startup_message([("user", "raw"), ("database", "shop")], &mut out).expect("startup");
    stream.write_all(&out).await.expect("startup");
    stream.flush().await.expect("flush");
    let startup = until_ready(stream).await;
    assert_eq!(startup.last().map(|s| s.0), Some('Z'), "{startup:?}");
    let mut out = BytesMut::new();
    frontend::query(sql, &mut out).expect("query");
    stream.write_all(&out).await.expect("query");
    stream.flush().await.expect("flush");
    until_ready(stream).await
}

#[tokio::test]
async fn tls_is_terminated_and_faults_act_inside_it() {
    let server = PgServer::start("tls").await;
    let dir = scratch_dir("postgres-route-certs");
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf");
    std::fs::write(dir.join("cert.pem"), leaf.pem()).expect("cert");
    std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).expect("key");
    let rules = format!(
        r#"(
  routes: [(name: "orders-db", protocol: Postgres, listen: "127.0.0.1:0", upstream: "{}",
            tls: (cert: "{}", key: "{}"))],
  faults: [{READ_ONLY}],
)"#,
        server.addr,
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    );
    let sb = spawn_switchboard(&rules).await;
    let proxy = sb.addr("orders-db").await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_cert.der().clone()).expect("CA");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut socket = tokio::net::TcpStream::connect(proxy)
        .await
        .expect("connect");
    socket
        .write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .await
        .expect("SSLRequest");
    let mut answer = [0u8; 1];
    socket.read_exact(&mut answer).await.expect("answer");
    assert_eq!(answer[0], b'S', "the route takes up TLS");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, socket)
        .await
        .expect("TLS handshake with the route's certificate");
    let seen = start_and_query(&mut tls, "INSERT INTO orders (item) VALUES ('x')").await;
    assert_eq!(seen, [('E', "25006".to_string()), ('Z', String::new())]);

    // A client that does not ask for TLS goes on in plaintext on the same route.
    let mut plain = tokio::net::TcpStream::connect(proxy)
        .await
        .expect("connect");
    let seen = start_and_query(&mut plain, "SELECT 1").await;
    assert_eq!(seen.iter().map(|s| s.0).collect::<String>(), "TDCZ");
}
