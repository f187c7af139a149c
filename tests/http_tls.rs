//! TLS on HTTP routes: a listener that terminates HTTPS (HTTP/1.1 and h2 through ALPN) so
//! faults apply to it, and `https://` upstreams verified against a given CA. Certificates are
//! made by rcgen for each run; none are committed.

use crate::support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use support::{http_upstream, scratch_dir, spawn_switchboard};

/// A CA and a leaf certificate for localhost, written as PEM files.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    ca_der: rustls_pki_types::CertificateDer<'static>,
}

fn pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf");
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write PEM");
        path
    };
    Pki {
        ca: write("ca.pem", ca_cert.pem()),
        cert: write("cert.pem", leaf.pem()),
        key: write("key.pem", leaf_key.serialize_pem()),
        ca_der: ca_cert.der().clone(),
    }
}

fn client_config(pki: &Pki) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).expect("CA");
    // ALPN is offered by the connector: h2 or http/1.1, as the client is built.
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// An HTTPS client trusting the test CA, speaking h2 or HTTP/1.1 (offered through ALPN).
fn https_client(
    pki: &Pki,
    h2: bool,
) -> Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(client_config(pki))
        .https_only();
    let connector = if h2 {
        builder.enable_http2().build()
    } else {
        builder.enable_http1().build()
    };
    let mut client = Client::builder(TokioExecutor::new());
    if h2 {
        client.http2_only(true);
    }
    client.build(connector)
}

/// One HTTP route named "web" terminating TLS with the test PKI, in front of `upstream`.
fn tls_route(upstream: &http_upstream::HttpUpstream, pki: &Pki, faults: &str) -> String {
    format!(
        r#"(routes: [(name: "web", protocol: Http, listen: "127.0.0.1:0", upstream: "{}",
                      tls: (cert: "{}", key: "{}"))], faults: [{faults}])"#,
        upstream.url(),
        pki.cert.display(),
        pki.key.display()
    )
}

async fn https_get(pki: &Pki, h2: bool, url: &str) -> (StatusCode, hyper::Version, HeaderMap) {
    let response = https_client(pki, h2)
        .request(
            Request::get(url)
                .body(Full::new(Bytes::new()))
                .expect("request"),
        )
        .await
        .expect("HTTPS answer");
    let (parts, body) = response.into_parts();
    body.collect().await.expect("body");
    (parts.status, parts.version, parts.headers)
}

type HeaderMap = hyper::HeaderMap;

#[tokio::test]
async fn a_tls_listener_terminates_https_and_faults_apply() {
    let dir = scratch_dir("tls-listener");
    let pki = pki(&dir);
    let upstream = http_upstream::start().await;
    let faults = r#"(name: "fail", route: "web", when: (path: "/fail"), kind: Abort(status: 503))"#;
    let sb = spawn_switchboard(&tls_route(&upstream, &pki, faults)).await;
    let port = sb.addr("web").await.port();
    for h2 in [false, true] {
        let (status, version, _) =
            https_get(&pki, h2, &format!("https://localhost:{port}/ok")).await;
        assert_eq!(status, 200, "h2={h2}");
        assert_eq!(
            version == hyper::Version::HTTP_2,
            h2,
            "ALPN picked the protocol"
        );
        let (status, _, _) = https_get(&pki, h2, &format!("https://localhost:{port}/fail")).await;
        assert_eq!(status, 503, "faults apply to HTTPS traffic (h2={h2})");
    }
}

/// An HTTPS upstream with the test PKI's certificate, answering "secure hello".
async fn https_upstream(pki: &Pki) -> std::net::SocketAddr {
    let config =
        switchboard::tls::server_config(&pki.cert.to_string_lossy(), &pki.key.to_string_lossy())
            .expect("server TLS");
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(|_request| async {
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(
                        b"secure hello",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn https_upstreams_are_verified_against_the_given_ca() {
    let dir = scratch_dir("tls-upstream");
    let pki = pki(&dir);
    let upstream = https_upstream(&pki).await;
    let route = |extra: &str| {
        format!(
            r#"(routes: [(name: "web", protocol: Http, listen: "127.0.0.1:0",
                          upstream: "https://localhost:{}"{extra})])"#,
            upstream.port()
        )
    };
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let get = |addr: std::net::SocketAddr| {
        let client = client.clone();
        async move {
            let response = client
                .request(
                    Request::get(format!("http://{addr}/"))
                        .body(Full::new(Bytes::new()))
                        .expect("request"),
                )
                .await
                .expect("answer");
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            (status, body)
        }
    };

    let trusted =
        spawn_switchboard(&route(&format!(r#", upstream_ca: "{}""#, pki.ca.display()))).await;
    let (status, body) = get(trusted.addr("web").await).await;
    assert_eq!((status.as_u16(), &body[..]), (200, &b"secure hello"[..]));

    // The built-in roots do not know the test CA: the upstream is refused, and said so.
    let untrusted = spawn_switchboard(&route("")).await;
    let (status, body) = get(untrusted.addr("web").await).await;
    assert_eq!(status, 502);
    assert!(
        String::from_utf8_lossy(&body).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&body)
    );

    let skipping = spawn_switchboard(&route(", insecure_skip_verify: true")).await;
    assert_eq!(get(skipping.addr("web").await).await.0, 200);
}

#[tokio::test]
async fn a_missing_tls_file_is_a_load_error_at_the_rule() {
    let text = r#"(
  routes: [
    (name: "web", protocol: Http, listen: "127.0.0.1:8443", upstream: "http://127.0.0.1:8080",
     tls: (cert: "/nonexistent/cert.pem", key: "/nonexistent/key.pem")),
  ],
)"#;
    let err =
        switchboard::rules::load_texts(&[("tls.ron".into(), text.to_string())], Default::default())
            .expect_err("rejected");
    let message = err.to_string();
    assert!(
        message.starts_with("tls.ron:4:6: TLS: /nonexistent/cert.pem"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_endpoint_serves_tls_and_ctl_verifies_it() {
    let dir = scratch_dir("tls-control");
    let pki = pki(&dir);
    let app = switchboard::Switchboard::start(support::rules("()"), switchboard::Config::default())
        .await
        .expect("start");
    let tls =
        switchboard::tls::server_config(&pki.cert.to_string_lossy(), &pki.key.to_string_lossy())
            .expect("TLS");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let control = switchboard::control::serve_with_tls(
        listener,
        app,
        switchboard::control::Auth::open(),
        Some(tls),
    )
    .expect("control");
    let url = format!("https://localhost:{}", control.local_addr().port());
    let ca = pki.ca.to_string_lossy().into_owned();
    let ctl = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(support::process::BIN)
                .args(args)
                .output()
                .expect("ctl")
        })
    };
    let trusted = ctl(vec![
        "ctl".into(),
        "--url".into(),
        url.clone(),
        "--ca".into(),
        ca,
        "health".into(),
    ])
    .await
    .expect("task");
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    let untrusted = ctl(vec!["ctl".into(), "--url".into(), url, "health".into()])
        .await
        .expect("task");
    assert!(
        !untrusted.status.success(),
        "a certificate from an unknown CA is refused"
    );
}

#[tokio::test]
async fn every_request_kind_works_through_a_tls_listener() {
    let dir = scratch_dir("tls-kinds");
    let pki = pki(&dir);
    let upstream = http_upstream::start().await;
    let faults = r#"
        (name: "held", route: "web", when: (path: "/delay"), kind: Delay(ms: 100)),
        (name: "late", route: "web", when: (path: "/late"), kind: ResponseDelay(ms: 100)),
        (name: "gone", route: "web", when: (path: "/drop"), kind: Drop()),
        (name: "cut", route: "web", when: (query: {"cut": "1"}), kind: Truncate(after_bytes: 100)),
        (name: "swap", route: "web", when: (path: "/swap"), kind: ReplaceBody(body: "swapped")),
        (name: "tag", route: "web", when: (path: "/swap"), kind: SetHeaders(response: {"x-tag": "1"})),
        (name: "nth", route: "web", when: (path: "/nth"), kind: FailNth(n: 2, status: 502)),
        (name: "limit", route: "web", when: (path: "/limit"), kind: RateLimit(per_sec: 1)),
        (name: "drip", route: "web", when: (query: {"drip": "1"}), kind: SlowBody(bytes_per_sec: 100000)),
        (name: "grpc", route: "web", when: (path: "/grpc"), kind: GrpcAbort(code: 4)),
    "#;
    let sb = spawn_switchboard(&tls_route(&upstream, &pki, faults)).await;
    let port = sb.addr("web").await.port();
    for h2 in [false, true] {
        let client = https_client(&pki, h2);
        let call = |path: &str, content_type: Option<&str>| {
            let mut request = Request::get(format!("https://localhost:{port}{path}"));
            if let Some(t) = content_type {
                request = request.header("content-type", t);
            }
            let request = request.body(Full::new(Bytes::new())).expect("request");
            let client = client.clone();
            async move {
                let started = std::time::Instant::now();
                let response = client.request(request).await.map_err(|e| e.to_string())?;
                let (parts, body) = response.into_parts();
                let body = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .map_err(|e| e.to_string());
                Ok::<_, String>((
                    parts.status.as_u16(),
                    parts.headers,
                    body,
                    started.elapsed(),
                ))
            }
        };
        let ms = std::time::Duration::from_millis;
        let (status, _, _, took) = call("/delay", None).await.expect("delay");
        assert!(status == 200 && took >= ms(100), "h2={h2}: Delay {took:?}");
        let (status, _, _, took) = call("/late", None).await.expect("late");
        assert!(
            status == 200 && took >= ms(100),
            "h2={h2}: ResponseDelay {took:?}"
        );
        assert!(call("/drop", None).await.is_err(), "h2={h2}: Drop");
        let (_, _, body, _) = call("/bytes/50000?cut=1", None)
            .await
            .expect("truncate head");
        assert!(body.is_err(), "h2={h2}: Truncate");
        let (_, headers, body, _) = call("/swap", None).await.expect("swap");
        assert_eq!(body.expect("body"), "swapped", "h2={h2}: ReplaceBody");
        assert_eq!(headers["x-tag"], "1", "h2={h2}: SetHeaders");
        let first = call("/nth", None).await.expect("nth").0;
        let second = call("/nth", None).await.expect("nth").0;
        assert_eq!((first, second), (200, 502), "h2={h2}: FailNth");
        let statuses = [
            call("/limit", None).await.expect("limit").0,
            call("/limit", None).await.expect("limit").0,
        ];
        assert!(statuses.contains(&429), "h2={h2}: RateLimit {statuses:?}");
        let (_, _, body, took) = call("/bytes/20000?drip=1", None).await.expect("drip");
        assert!(
            body.is_ok() && took >= ms(150),
            "h2={h2}: SlowBody {took:?}"
        );
        let (_, headers, _, _) = call("/grpc", Some("application/grpc")).await.expect("grpc");
        assert_eq!(headers["grpc-status"], "4", "h2={h2}: GrpcAbort");
    }
}
