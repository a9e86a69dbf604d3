#!/usr/bin/env python3
"""Lays out one pod of a rendered chart as a local directory tree.

Usage: chart-pod.py RENDERED.yaml POD_DIR POD_NAME [CONFIGMAP=KEY:FILE ...]

Reads the StatefulSet in RENDERED.yaml and, under POD_DIR/root, creates
every volume mount of every container as the kubelet would: files of the
chart's own ConfigMaps (taken from the rendered manifests), ConfigMaps the
chart only references (from CONFIGMAP=KEY:FILE arguments: the
ConfigMap's key KEY holds FILE's text), emptyDirs and persistent volumes as empty directories.
Writes one POD_DIR/<container>.cmd per init and main container: the
container's command under `env -i` with exactly its rendered environment.
Then prints "init NAME" for each init container, in order, and "main
NAME" for each container.

Used by scripts/test-chart-network, which mounts the host's system
directories and the binaries and runs each .cmd in the root (chroot), so
a pod runs with exactly what the chart renders and nothing else.
"""

import os
import shlex
import sys

import yaml


def main() -> None:
    rendered, pod_dir, pod_name = sys.argv[1:4]
    external: dict = {}
    for arg in sys.argv[4:]:
        name, rest = arg.split("=", 1)
        key, path = rest.split(":", 1)
        external.setdefault(name, {})[key] = open(path).read()
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    spec = sts["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    claims = {c["metadata"]["name"] for c in sts["spec"].get("volumeClaimTemplates", [])}
    root = os.path.join(pod_dir, "root")
    containers = spec.get("initContainers", []) + spec["containers"]
    for c in containers:
        for m in c.get("volumeMounts", []):
            target = root + m["mountPath"]
            os.makedirs(target, exist_ok=True)
            volume = volumes.get(m["name"])
            if volume is None:
                if m["name"] not in claims:
                    raise SystemExit(f"{c['name']}: mount {m['name']} has no volume or claim")
                continue  # a persistent volume: an empty directory
            if "configMap" in volume:
                name = volume["configMap"]["name"]
                if name in configmaps:
                    files = configmaps[name]
                elif name in external:
                    files = external[name]
                else:
                    raise SystemExit(f"ConfigMap {name} is neither rendered nor given")
                for key, text in files.items():
                    with open(os.path.join(target, key), "w") as f:
                        f.write(text)
            elif "emptyDir" in volume:
                pass
            else:
                raise SystemExit(f"volume {m['name']}: kind not handled here: {volume}")
        env = {"PATH": "/opt/bin:/usr/bin:/bin"}
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
            elif e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name":
                env[e["name"]] = pod_name
            else:
                raise SystemExit(f"unhandled env {e}")
        with open(os.path.join(pod_dir, f"{c['name']}.cmd"), "w") as f:
            f.write(" ".join(["env", "-i"] + [shlex.quote(f"{k}={v}") for k, v in env.items()]
                             + [shlex.quote(a) for a in c["command"]]))
    for c in spec.get("initContainers", []):
        print("init", c["name"])
    for c in spec["containers"]:
        print("main", c["name"])


if __name__ == "__main__":
    main()
