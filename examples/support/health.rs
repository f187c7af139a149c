//! `--health URL`: a health check for images with no shell and no curl.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// With `--health URL` on the command line, fetches URL and returns the exit code: 0 for a
/// 200 within two seconds, 1 otherwise. Without it, `None`.
pub async fn check_from_args() -> Option<i32> {
    let args: Vec<String> = std::env::args().collect();
    let url = match args.as_slice() {
        [_, flag, url] if flag == "--health" => url.clone(),
        _ => return None,
    };
    let Ok(uri) = url.parse::<hyper::Uri>() else {
        eprintln!("--health: {url:?} is not a URL");
        return Some(2);
    };
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let ok = matches!(
        tokio::time::timeout(Duration::from_secs(2), client.get(uri)).await,
        Ok(Ok(response)) if response.status() == hyper::StatusCode::OK
    );
    Some(if ok { 0 } else { 1 })
}
