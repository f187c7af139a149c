//! The TCP side of a Dns route: each client connection gets one connection to the upstream,
//! opened at its first forwarded query. Queries may be pipelined; answers go back as they
//! come (RFC 7766), the upstream's and those faults make alike, each message exactly as it was.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::decide::{Outcome, Transport};
use super::{Shared, reply, resolve};
use crate::proxy::accept::AcceptErrors;
use crate::proxy::timer;
use crate::telemetry::AnswerSource;

/// Messages waiting to be written to one side of a connection.
const QUEUE: usize = 64;

pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    let mut errors = AcceptErrors::new(format!("route {} (tcp)", shared.route));
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    errors.succeeded();
                    let _ = client.set_nodelay(true);
                    let task = connection(client, peer, Arc::clone(&shared), stop.clone());
                    shared.ctx.tracker.spawn(task);
                }
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

/// Reads one length-prefixed message; `None` at a clean end between messages.
async fn read_message(reader: &mut OwnedReadHalf) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    reader.read_exact(&mut message).await?;
    Ok(Some(message))
}

/// Writes every message handed to it, length-prefixed, until the senders are gone.
async fn write_messages(mut writer: OwnedWriteHalf, mut messages: mpsc::Receiver<Vec<u8>>) {
    while let Some(message) = messages.recv().await {
        let Ok(len) = u16::try_from(message.len()) else {
            continue;
        };
        let mut framed = Vec::with_capacity(message.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&message);
        if writer.write_all(&framed).await.is_err() {
            return;
        }
    }
    let _ = writer.shutdown().await;
}

/// When each query of a connection arrived, by id, to time its answer.
type Arrivals = Arc<Mutex<HashMap<u16, Instant>>>;

async fn connection(
    client: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let (mut reader, writer) = client.into_split();
    let (to_client, queued) = mpsc::channel(QUEUE);
    let writing = tokio::spawn(write_messages(writer, queued));
    let arrivals: Arrivals = Arc::default();
    let mut upstream: Option<mpsc::Sender<Vec<u8>>> = None;
    loop {
        let read = tokio::select! {
            () = stop.cancelled() => break,
            read = tokio::time::timeout(shared.idle(), read_message(&mut reader)) => read,
        };
        let query = match read {
            Ok(Ok(Some(query))) => query,
            // An idle client, a clean end, or a broken one: no more queries.
            _ => break,
        };
        let arrived = Instant::now();
        let decision = shared.decide(&query, peer.ip(), Transport::Tcp);
        let send_to = match &decision.outcome {
            Outcome::Drop => continue,
            Outcome::Reply(_) => to_client.clone(),
            Outcome::Forward => {
                if upstream.as_ref().is_none_or(mpsc::Sender::is_closed) {
                    upstream =
                        open_upstream(&shared, to_client.clone(), Arc::clone(&arrivals)).await;
                }
                let Some(up) = &upstream else {
                    // No upstream: the query goes unanswered, as a dead resolver leaves it.
                    shared.stats.upstream_timeout();
                    continue;
                };
                if let Some(id) = reply::id_of(&query) {
                    arrivals
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(id, arrived);
                }
                up.clone()
            }
        };
        let (message, source) = match decision.outcome {
            Outcome::Reply(bytes) => (bytes, Some(AnswerSource::Fault)),
            _ => (query, None),
        };
        let counts = Arc::clone(&shared);
        let deliver = async move {
            if !decision.delay.is_zero() {
                timer::sleep_until(arrived + decision.delay).await;
            }
            if let Some(source) = source {
                counts.answered(&message, source, arrived);
            }
            let _ = send_to.send(message).await;
        };
        if decision.delay.is_zero() {
            deliver.await;
        } else {
            shared.ctx.tracker.spawn(deliver);
        }
    }
    drop(upstream);
    drop(to_client);
    let _ = writing.await;
}

/// Connects to the upstream for one client connection: queries go out through the sender
/// returned, answers come back to `to_client`.
async fn open_upstream(
    shared: &Arc<Shared>,
    to_client: mpsc::Sender<Vec<u8>>,
    arrivals: Arrivals,
) -> Option<mpsc::Sender<Vec<u8>>> {
    let upstream = shared.upstream()?;
    let dial = async {
        let addr = resolve(&upstream).await?;
        TcpStream::connect(addr).await
    };
    let stream = match tokio::time::timeout(shared.response_timeout(), dial).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(route = %shared.route, error = %e, "upstream resolver unreachable over TCP");
            return None;
        }
        Err(_) => return None,
    };
    let _ = stream.set_nodelay(true);
    let (mut reader, writer) = stream.into_split();
    let (queries, queued) = mpsc::channel(QUEUE);
    tokio::spawn(write_messages(writer, queued));
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        while let Ok(Some(answer)) = read_message(&mut reader).await {
            let arrived = reply::id_of(&answer).and_then(|id| {
                arrivals
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&id)
            });
            shared.answered(
                &answer,
                AnswerSource::Upstream,
                arrived.unwrap_or_else(Instant::now),
            );
            if to_client.send(answer).await.is_err() {
                break;
            }
        }
    });
    Some(queries)
}
