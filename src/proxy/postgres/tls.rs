//! TLS for a PostgreSQL route that has `tls:`: a client that asks for it (an SSLRequest) is
//! answered `S` and the route terminates TLS with its own certificate, as an HTTP route does.
//! The session then reads plaintext from one end of a loopback pair whose other end is
//! pumped through the TLS stream, so it runs exactly as on a plaintext connection.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// How long a client has to ask and finish the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
const GSSENC_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];

/// The client's stream as the session is to read it, and bytes already read from it.
pub struct Negotiated {
    pub client: TcpStream,
    pub initial: Bytes,
}

/// Reads the client's first packets: GSSAPI encryption is declined, TLS is taken up, and
/// anything else (a startup or cancel packet) is handed on unread by the session.
pub async fn negotiate(client: TcpStream, acceptor: &TlsAcceptor) -> io::Result<Negotiated> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, negotiate_now(client, acceptor))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS negotiation timed out"))?
}

async fn negotiate_now(mut client: TcpStream, acceptor: &TlsAcceptor) -> io::Result<Negotiated> {
    loop {
        let mut head = [0u8; 8];
        let mut got = 0;
        while got < head.len() {
            match client.read(&mut head[got..]).await? {
                0 => {
                    // The client left before a whole packet: the session sees its end.
                    return Ok(Negotiated {
                        client,
                        initial: Bytes::copy_from_slice(&head[..got]),
                    });
                }
                n => got += n,
            }
        }
        match head {
            GSSENC_REQUEST => client.write_all(b"N").await?,
            SSL_REQUEST => {
                client.write_all(b"S").await?;
                let tls = acceptor.accept(client).await?;
                return Ok(Negotiated {
                    client: plaintext_end(tls).await?,
                    initial: Bytes::new(),
                });
            }
            _ => {
                return Ok(Negotiated {
                    client,
                    initial: Bytes::copy_from_slice(&head),
                });
            }
        }
    }
}

/// A loopback pair: one end pumped to and from `tls`, the other returned.
async fn plaintext_end(
    mut tls: tokio_rustls::server::TlsStream<TcpStream>,
) -> io::Result<TcpStream> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (outer, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let mut outer = outer?;
    let (inner, _) = accepted?;
    let _ = outer.set_nodelay(true);
    let _ = inner.set_nodelay(true);
    tokio::spawn(async move {
        match tokio::io::copy_bidirectional(&mut tls, &mut outer).await {
            Ok((from_client, to_client)) => {
                tracing::debug!(from_client, to_client, "TLS connection ended");
            }
            Err(e) => tracing::debug!(error = %e, "TLS connection broke"),
        }
        let _ = tls.shutdown().await;
    });
    Ok(inner)
}
