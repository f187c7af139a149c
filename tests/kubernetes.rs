//! The Kubernetes manifests, validated offline: tests/python/kubernetes.py renders the example
//! overlay with `kubectl kustomize` (Debian's kubernetes-client), validates every object
//! against the Kubernetes schemas (kubernetes-validate, from PyPI) and checks what a sidecar
//! relies on: the probes, the locked-down securityContext, the rules ConfigMap mounted as a
//! directory, the token Secret, the Services and the NetworkPolicy. The rendered rules pass
//! `switchboard check`, and every flag the manifest passes is one `switchboard run` takes.

use crate::support;

use std::path::Path;
use std::time::Duration;

use support::process::BIN;

#[tokio::test]
async fn the_example_overlay_renders_valid_objects_with_a_locked_down_sidecar() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = support::scratch_dir("kubernetes");
    let mut command = tokio::process::Command::new(support::clients_python());
    command
        .arg(root.join("tests/python/kubernetes.py"))
        .env("OVERLAY", root.join("deploy/kubernetes/overlays/example"))
        .env("SWITCHBOARD_BIN", BIN)
        .env("SCRATCH", scratch.as_os_str())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("kubernetes.py ran past 60 s")
        .expect("run kubernetes.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.lines().any(|l| l == "ok"),
        "kubernetes.py failed:\n{stdout}\n{stderr}"
    );
}
