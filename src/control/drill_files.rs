//! `GET /v1/drill-files`: the drills in the rules directory's `drills/`, which the page lists
//! and `POST /v1/drills {"file": …}` starts by name. Only plain names of files there are
//! taken, so a caller cannot point the server at any other file.

use std::path::{Path, PathBuf};

use hyper::{Response, StatusCode};
use serde::Serialize;

use super::ApiError;
use super::http::{self, Body};
use crate::Switchboard;
use crate::drill::{Scenario, load};

/// One drill file, as listed.
#[derive(Debug, Serialize)]
pub struct DrillFile {
    /// Its name in `drills/`, which `POST /v1/drills {"file": …}` takes.
    pub file: String,
    /// The drill's name, when the file reads as a drill.
    pub name: Option<String>,
    /// Its description.
    pub description: Option<String>,
    /// Why it does not read as a drill (`file:line:col: …`).
    pub error: Option<String>,
}

fn drills_dir(app: &Switchboard) -> Option<PathBuf> {
    app.rules_dir().map(|dir| dir.join("drills"))
}

/// `GET /v1/drill-files`. The directory is read and every file parsed on a blocking thread:
/// a slow disk or a large drills/ must not hold up the runtime that proxies traffic.
pub async fn list(app: &Switchboard) -> Result<Response<Body>, ApiError> {
    let dir = drills_dir(app);
    let files = tokio::task::spawn_blocking(move || dir.map(|d| read_all(&d)).unwrap_or_default())
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading drills/ failed: {e}"),
            )
        })?;
    Ok(http::json(StatusCode::OK, &files))
}

fn read_all(dir: &Path) -> Vec<DrillFile> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "ron"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let file = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            match read(&path) {
                Ok(s) => DrillFile {
                    file,
                    name: Some(s.name),
                    description: Some(s.description),
                    error: None,
                },
                Err(e) => DrillFile {
                    file,
                    name: None,
                    description: None,
                    error: Some(e),
                },
            }
        })
        .collect()
}

fn read(path: &Path) -> Result<Scenario, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    load::parse(path, &text).map_err(|e| e.to_string())
}

/// The drill in `drills/` named `file`, for `POST /v1/drills`.
pub async fn scenario(app: &Switchboard, file: &str) -> Result<Scenario, ApiError> {
    let plain = !file.is_empty()
        && !file.starts_with('.')
        && !file.contains(['/', '\\'])
        && file.ends_with(".ron");
    if !plain {
        return Err(ApiError::bad_field(
            "file",
            format!(
                "file {file:?} must be the name of a .ron file in the rules directory's drills/"
            ),
        ));
    }
    let Some(dir) = drills_dir(app) else {
        return Err(ApiError::bad_field(
            "file",
            "this Switchboard has no rules directory, so no drills/ to start a file from",
        ));
    };
    let path = dir.join(file);
    let file = file.to_string();
    tokio::task::spawn_blocking(move || {
        if !path.is_file() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no drill file {file:?} in {}", dir.display()),
            ));
        }
        read(&path).map_err(|e| ApiError::bad_field("file", e))
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the drill file failed: {e}"),
        )
    })?
}
