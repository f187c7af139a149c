"""The Kubernetes manifests, offline: `kubectl kustomize` renders the example overlay, every
object is validated against the Kubernetes schemas (kubernetes-validate, strict), and the
properties a sidecar relies on are checked on the rendered objects. tests/kubernetes.rs runs
it with OVERLAY (the overlay's directory), SWITCHBOARD_BIN (the binary, to check the rules
and flags the manifests give it) and SCRATCH (a directory to write into). Prints "ok".
"""

import copy
import os
import subprocess
import sys

import kubernetes_validate
import yaml

VERSION = "1.32.0"
CONTROL_PORT = 8474


def render(overlay):
    out = subprocess.run(["kubectl", "kustomize", overlay], check=True, capture_output=True, text=True)
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def validate(obj):
    """None if `obj` is valid, else the validator's complaint."""
    try:
        kubernetes_validate.validate(obj, VERSION, strict=True)
        return None
    except kubernetes_validate.ValidationError as e:
        return str(e)


def one(objects, kind, name=None):
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} in the render"
    return found[0]


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check(objects, binary, scratch):
    failures = []

    def expect(condition, what):
        if not condition:
            failures.append(what)

    deployment = one(objects, "Deployment")
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    spec = pod["spec"]
    containers = {c["name"]: c for c in spec["containers"]}
    sidecar = containers.get("switchboard")
    assert sidecar, f"no switchboard container among {list(containers)}"
    expect(len(containers) >= 2, "the Deployment has an app container beside the sidecar")
    ports = {p["name"]: p["containerPort"] for p in sidecar.get("ports", [])}
    expect(ports.get("control") == CONTROL_PORT, f"the sidecar names its control port: {ports}")

    args = sidecar["args"]
    flag = lambda name: args[args.index(name) + 1] if name in args else None
    expect(args[0] == "run", f"the sidecar runs `switchboard run`: {args}")
    expect(flag("--control") == f"0.0.0.0:{CONTROL_PORT}", f"control listens on the pod's address: {args}")

    # Probes on /healthz at the control port, which answers without a token.
    for probe in ("readinessProbe", "livenessProbe"):
        get = sidecar.get(probe, {}).get("httpGet", {})
        expect(get.get("path") == "/healthz" and get.get("port") in ("control", CONTROL_PORT),
               f"{probe} is an httpGet of /healthz on the control port: {sidecar.get(probe)}")

    # Locked down: non-root, read-only root, no capabilities, no privilege escalation.
    pod_security = spec.get("securityContext", {})
    for name, container in containers.items():
        security = container.get("securityContext", {})
        non_root = security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
        user = security.get("runAsUser", pod_security.get("runAsUser"))
        expect(non_root is True and user not in (None, 0), f"{name} runs as a non-root user")
        expect(security.get("readOnlyRootFilesystem") is True, f"{name} has a read-only root filesystem")
        expect(security.get("allowPrivilegeEscalation") is False, f"{name} cannot escalate privilege")
        expect(security.get("capabilities", {}).get("drop") == ["ALL"], f"{name} drops every capability")
    resources = sidecar.get("resources", {})
    for part in ("requests", "limits"):
        expect({"cpu", "memory"} <= set(resources.get(part, {})), f"the sidecar has cpu and memory {part}")

    # Rules from a ConfigMap at /rules; the token from a Secret at --token-file's directory.
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in sidecar.get("volumeMounts", [])}
    rules_mount = mounts.get(flag("--rules") or "")
    expect(flag("--rules") == "/rules" and rules_mount is not None, "the rules are mounted at /rules")
    rules_files = {}
    if rules_mount:
        source = volumes[rules_mount["name"]].get("configMap", {})
        config_map = one(objects, "ConfigMap", source.get("name"))
        rules_files = config_map.get("data", {})
        expect(any(f.endswith(".ron") for f in rules_files), "the ConfigMap holds .ron rules")
        expect("subPath" not in rules_mount, "the rules are a directory mount (a subPath mount is never updated)")
    token_file = flag("--token-file") or ""
    token_mount = mounts.get(os.path.dirname(token_file))
    expect(token_mount is not None, f"--token-file {token_file!r} is inside a mount")
    if token_mount:
        secret_name = volumes[token_mount["name"]].get("secret", {}).get("secretName")
        secret = one(objects, "Secret", secret_name)
        expect(os.path.basename(token_file) in secret.get("data", {}), "the Secret holds the token file")
        expect(pod_security.get("fsGroup") is not None or spec.get("securityContext", {}).get("runAsUser") == 0,
               "an fsGroup lets the non-root sidecar read the Secret's files")

    # The control port: a Service for this app's sidecar, and the fleet's headless one.
    services = [o for o in objects if o["kind"] == "Service"]
    own = [s for s in services if s["spec"].get("clusterIP") != "None" and selects(s["spec"].get("selector"), labels)]
    expect(any(p["port"] == CONTROL_PORT for s in own for p in s["spec"]["ports"]), "a Service exposes this sidecar's control port")
    fleet = [s for s in services if s["metadata"]["name"] == "switchboard-control"]
    expect(len(fleet) == 1 and fleet[0]["spec"].get("clusterIP") == "None", "the fleet's headless Service is switchboard-control")
    if fleet:
        expect(selects(fleet[0]["spec"]["selector"], labels), "the fleet's Service selects this pod")

    # Who may reach the control port.
    policies = [o for o in objects if o["kind"] == "NetworkPolicy" and selects(o["spec"]["podSelector"].get("matchLabels"), labels)]
    expect(len(policies) == 1, "one NetworkPolicy selects the pod")
    for policy in policies:
        expect("Ingress" in policy["spec"].get("policyTypes", []), "the policy restricts ingress")
        control_rules = [r for r in policy["spec"].get("ingress", [])
                         if any(p.get("port") in (CONTROL_PORT, "control") for p in r.get("ports", []))]
        expect(control_rules and all(r.get("from") for r in control_rules),
               "the control port is open only to named peers")

    # The binary takes the rules and every flag the manifest gives it.
    if rules_files:
        rules_dir = os.path.join(scratch, "rules")
        os.makedirs(rules_dir, exist_ok=True)
        for name, text in rules_files.items():
            with open(os.path.join(rules_dir, name), "w") as f:
                f.write(text)
        checked = subprocess.run([binary, "check", rules_dir], capture_output=True, text=True)
        expect(checked.returncode == 0, f"switchboard check on the ConfigMap's rules: {checked.stdout}{checked.stderr}")
    run_help = subprocess.run([binary, "run", "--help"], capture_output=True, text=True, check=True).stdout
    for arg in args[1:]:
        if arg.startswith("--"):
            expect(arg in run_help, f"switchboard run takes {arg}")
    return failures


def main():
    overlay, binary, scratch = os.environ["OVERLAY"], os.environ["SWITCHBOARD_BIN"], os.environ["SCRATCH"]
    objects = render(overlay)
    invalid = [(o["kind"], o["metadata"]["name"], why) for o in objects if (why := validate(o))]
    assert not invalid, f"objects the schemas refuse: {invalid}"
    # The validator sees a broken object: otherwise the check above proves nothing.
    broken = copy.deepcopy(one(objects, "Deployment"))
    broken["spec"]["replicas"] = "one"
    assert validate(broken), "kubernetes-validate passed a Deployment with replicas: \"one\""
    failures = check(objects, binary, scratch)
    assert not failures, "\n".join(failures)
    kinds = sorted(o["kind"] for o in objects)
    print(f"rendered and valid: {', '.join(kinds)}")
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
