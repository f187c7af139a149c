//! Zero-copy forwarding for bulk transfers: splice(2) moves bytes from one socket into a pipe
//! and from the pipe into the other socket without them entering user space.
//!
//! Only worth it for bulk: a small message costs two splices where a read and a write do,
//! so a direction switches to splicing when a read fills the whole read buffer and back
//! when the flow slows. Pipes are kept per worker thread once drained, so a burst does not
//! pay for creating one, and an idle connection holds none.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::Interest;
use tokio::net::TcpStream;

/// Bytes one splice moves at most; also the pipe's capacity.
pub const PIPE_SIZE: usize = 256 * 1024;
/// Drained pipes a worker thread keeps for the next burst.
const KEEP_PIPES: usize = 8;

/// A pipe's two ends.
#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

thread_local! {
    static SPARE: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

/// A drained pipe from this thread's spares, or a new one.
pub fn take() -> io::Result<Pipe> {
    if let Some(pipe) = SPARE.with_borrow_mut(Vec::pop) {
        return Ok(pipe);
    }
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    let pipe = unsafe {
        Pipe {
            read: OwnedFd::from_raw_fd(fds[0]),
            write: OwnedFd::from_raw_fd(fds[1]),
        }
    };
    // A larger pipe moves more per call; the default 64 KiB is kept if the system refuses.
    // SAFETY: F_SETPIPE_SZ on a descriptor we own.
    unsafe {
        libc::fcntl(
            pipe.write.as_raw_fd(),
            libc::F_SETPIPE_SZ,
            PIPE_SIZE as libc::c_int,
        )
    };
    Ok(pipe)
}

/// Returns a drained pipe for reuse on this thread.
pub fn give_back(pipe: Pipe) {
    SPARE.with_borrow_mut(|spare| {
        if spare.len() < KEEP_PIPES {
            spare.push(pipe);
        }
    });
}

fn splice(from: i32, to: i32, len: usize) -> io::Result<usize> {
    // SAFETY: both descriptors are open for the call's duration; null offsets are what
    // sockets and pipes require.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Moves what `from` has (up to the pipe's room) into the pipe; 0 at end of stream. A
/// `WouldBlock` clears the socket's readiness, as a read would.
pub fn fill(from: &TcpStream, pipe: &Pipe, room: usize) -> io::Result<usize> {
    from.try_io(Interest::READABLE, || {
        splice(from.as_raw_fd(), pipe.write.as_raw_fd(), room)
    })
}

/// Moves up to `len` bytes from the pipe into `to`.
pub fn drain(pipe: &Pipe, to: &TcpStream, len: usize) -> io::Result<usize> {
    to.try_io(Interest::WRITABLE, || {
        splice(pipe.read.as_raw_fd(), to.as_raw_fd(), len)
    })
}
