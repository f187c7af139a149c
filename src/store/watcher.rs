//! Watches the rules directory. Any change to its entries is reported, whatever its shape: an
//! edit in place, an editor's write-then-rename, a file added or removed, or a Kubernetes
//! ConfigMap's atomic swap of its `..data` symlink. The reader debounces and reloads the whole
//! directory, so which file an event names does not matter.

use std::path::Path;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Keeps the watch alive; dropping it stops watching.
#[derive(Debug)]
pub struct DirWatcher {
    _watcher: RecommendedWatcher,
}

/// Sends `()` on `changes` for every change in `dir`.
pub fn watch_dir(dir: &Path, changes: mpsc::UnboundedSender<()>) -> notify::Result<DirWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = match event {
            // Opening and reading files (our own reload does) changes nothing.
            Ok(e) => match e.kind {
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
                EventKind::Access(_) => false,
                _ => true,
            },
            // A lost event could hide a change: reload to be safe.
            Err(_) => true,
        };
        if relevant {
            let _ = changes.send(());
        }
    })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(DirWatcher { _watcher: watcher })
}
