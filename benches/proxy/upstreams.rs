//! The upstreams, in this process on a runtime of their own (one thread, so the forwarders
//! and the load generators get the rest): an echo server, a byte sink, and an HTTP server
//! answering a 612-byte body. iperf3's server replaces the sink when installed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::procs::{Proc, free_port, installed, local, wait_listening};

const BODY: [u8; 612] = [b'x'; 612];

pub struct Servers {
    pub echo: SocketAddr,
    pub sink: SocketAddr,
    pub http: SocketAddr,
}

pub fn start() -> Servers {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let echo = listen(|mut s| async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            })
            .await;
            let sink = listen(|mut s| async move {
                let mut buf = vec![0u8; 256 * 1024];
                while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                let _ = s.shutdown().await;
            })
            .await;
            let http = listen(|s| async move {
                let service = service_fn(|_request| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(&BODY))))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(s), service)
                    .await;
            })
            .await;
            tx.send(Servers { echo, sink, http }).expect("hand over");
            std::future::pending::<()>().await;
        });
    });
    rx.recv().expect("upstreams started")
}

async fn listen<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(handle(stream));
        }
    });
    addr
}

/// iperf3's server, when installed.
pub fn iperf3_server() -> Option<(Proc, SocketAddr)> {
    if !installed("iperf3") {
        return None;
    }
    let port = free_port();
    let child = Command::new("iperf3")
        .args(["-s", "-B", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    wait_listening(local(port));
    Some((Proc(child), local(port)))
}
