//! Upstreams to put behind a route, each on port 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Echoes every byte back; on the client's half-close, finishes echoing and closes.
pub async fn echo() -> SocketAddr {
    serve(|mut s| async move {
        let (mut r, mut w) = s.split();
        let _ = tokio::io::copy(&mut r, &mut w).await;
        let _ = w.shutdown().await;
    })
    .await
}

/// Counts accepted connections, for faults that must keep the upstream untouched.
pub async fn counting_echo() -> (SocketAddr, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let addr = serve(move |mut s| {
        seen.fetch_add(1, Ordering::SeqCst);
        async move {
            let (mut r, mut w) = s.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
            let _ = w.shutdown().await;
        }
    })
    .await;
    (addr, count)
}

/// Sends `payload` to each client, then closes its side; reads and discards what comes in.
pub async fn sender(payload: Vec<u8>) -> SocketAddr {
    let payload = Arc::new(payload);
    serve(move |mut s| {
        let payload = Arc::clone(&payload);
        async move {
            let (mut r, mut w) = s.split();
            let write = async {
                let _ = w.write_all(&payload).await;
                let _ = w.shutdown().await;
            };
            let drain = async {
                let mut sink = vec![0; 64 * 1024];
                while matches!(r.read(&mut sink).await, Ok(n) if n > 0) {}
            };
            tokio::join!(write, drain);
        }
    })
    .await
}

/// Reads everything each client sends and reports the total on `tx`.
pub async fn sink(tx: tokio::sync::mpsc::UnboundedSender<usize>) -> SocketAddr {
    serve(move |mut s| {
        let tx = tx.clone();
        async move {
            let mut buf = vec![0; 64 * 1024];
            let mut total = 0;
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                total += n;
            }
            let _ = tx.send(total);
        }
    })
    .await
}

/// Accepts forever, handing each connection to `handle` in its own task.
pub async fn serve<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("upstream address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(handle(stream));
        }
    });
    addr
}
