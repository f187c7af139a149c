//! The UDP side of a Dns route: each query is answered by a task of its own, which forwards
//! it from a fresh socket (a fresh source port, as resolvers use) connected to the upstream.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::decide::{Outcome, Transport};
use super::{InFlight, Shared, reply, resolve};
use crate::proxy::accept::AcceptErrors;
use crate::proxy::timer;
use crate::telemetry::AnswerSource;

/// The largest UDP message.
const MAX_MESSAGE: usize = 65_535;

pub(super) async fn serve(socket: Arc<UdpSocket>, shared: Arc<Shared>, stop: CancellationToken) {
    let mut errors = AcceptErrors::new(format!("route {} (udp)", shared.route));
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, client)) => {
                    errors.succeeded();
                    let arrived = Instant::now();
                    let Some(place) = shared.admit() else { continue };
                    let query = buf[..n].to_vec();
                    let task = answer(query, client, arrived, Arc::clone(&socket), Arc::clone(&shared), place, stop.clone());
                    shared.ctx.tracker.spawn(task);
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(e) => {
                    let pause = errors.failed(&e);
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
    }
}

async fn answer(
    query: Vec<u8>,
    client: SocketAddr,
    arrived: Instant,
    socket: Arc<UdpSocket>,
    shared: Arc<Shared>,
    _place: InFlight,
    stop: CancellationToken,
) {
    let decision = shared.decide(&query, client.ip(), Transport::Udp);
    if !decision.delay.is_zero() {
        tokio::select! {
            () = stop.cancelled() => return,
            () = timer::sleep_until(arrived + decision.delay) => {}
        }
    }
    let (answer, source) = match decision.outcome {
        Outcome::Drop => return,
        Outcome::Reply(bytes) => (bytes, AnswerSource::Fault),
        Outcome::Forward => {
            let forwarded = tokio::select! {
                () = stop.cancelled() => return,
                got = forward(&query, &shared) => got,
            };
            match forwarded {
                Some(bytes) => (bytes, AnswerSource::Upstream),
                None => return,
            }
        }
    };
    if socket.send_to(&answer, client).await.is_ok() {
        shared.answered(&answer, source, arrived);
    }
}

/// The upstream's answer to `query`, or `None` (counted) when it gave none in time.
async fn forward(query: &[u8], shared: &Shared) -> Option<Vec<u8>> {
    let upstream = shared.upstream()?;
    let id = reply::id_of(query);
    let deadline = tokio::time::Instant::now() + shared.response_timeout();
    let exchange = async {
        let addr = resolve(&upstream).await?;
        let local: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local).await?;
        socket.connect(addr).await?;
        socket.send(query).await?;
        let mut buf = vec![0u8; MAX_MESSAGE];
        loop {
            let n = socket.recv(&mut buf).await?;
            // Only the answer to this query: a stray datagram is not it.
            if reply::id_of(&buf[..n]) == id {
                buf.truncate(n);
                return Ok::<_, std::io::Error>(buf);
            }
        }
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Ok(Ok(answer)) => Some(answer),
        Ok(Err(e)) => {
            tracing::debug!(route = %shared.route, error = %e, "upstream resolver failed");
            shared.stats.upstream_timeout();
            None
        }
        Err(_) => {
            shared.stats.upstream_timeout();
            None
        }
    }
}
