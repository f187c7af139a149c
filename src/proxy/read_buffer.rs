//! One read buffer per worker thread for the protocol routes: a connection's bytes are taken
//! apart before its task yields, so an idle connection holds no buffer of its own.

use std::cell::RefCell;
use std::io;

use bytes::BytesMut;
use tokio::net::TcpStream;

/// Bytes read from a socket at once.
pub const READ_BUF: usize = 64 * 1024;

thread_local! {
    static READ_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUF].into_boxed_slice());
}

/// Reads what `socket` has now and appends it to `into`; `Ok(0)` at its end.
pub fn read_into(socket: &TcpStream, into: &mut BytesMut) -> io::Result<usize> {
    READ_BUFFER.with_borrow_mut(|buf| {
        let n = socket.try_read(buf)?;
        into.extend_from_slice(&buf[..n]);
        Ok(n)
    })
}
