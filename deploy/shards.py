"""Write the per-shard manifests of deploy/k8s/ for N shards x R replicas.

    python deploy/shards.py --shards 4 --replicas 2        # what is committed

Writes ``k8s/shards/shard-I.yaml`` (a Deployment, its headless Service and its
PodDisruptionBudget per shard), ``k8s/shards/kustomization.yaml`` listing them,
``k8s/cluster.toml`` (the router's cluster config, one DNS target per shard), and sets the
build's ``--shards`` in ``k8s/build.yaml``. The shard count
must equal the ``--shards`` the index was built with (``tastebud build --shards N``).
tests/deploy checks that the committed files are exactly what this script writes.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

K8S = Path(__file__).resolve().parent / "k8s"
NAMESPACE = "tastebud"
SHARD_PORT = 50061

# Memory of one shard replica, sized from a measurement: 1M items x 384 dims split in 4 shards
# took about 1.6 GiB resident per shard process (the 1/N of the vectors, FAISS structures, the
# Python and gRPC runtime). It scales with items/N: patch it for another catalog size or N
# (deploy/k8s/README.md shows the overlay). The limit leaves room for the second index version a
# shard loads beside the first during a swap (2 x 1.6 GiB + ~10%).
MEMORY_REQUEST = "1640Mi"
MEMORY_LIMIT = "3584Mi"
CPU_REQUEST = "1"

SHARD = """\
---
# Shard {i}: `tastebud serve-shard --shard {i}` x {replicas} replicas; each loads only shard {i} of the
# published index. Written by deploy/shards.py (edit that, not this file).
apiVersion: apps/v1
kind: Deployment
metadata:
  name: tastebud-shard-{i}
  labels:
    app.kubernetes.io/name: tastebud
    app.kubernetes.io/component: shard
    tastebud/shard: "{i}"
spec:
  replicas: {replicas}
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      app.kubernetes.io/name: tastebud
      app.kubernetes.io/component: shard
      tastebud/shard: "{i}"
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0  # a new replica is ready before an old one goes
  template:
    metadata:
      labels:
        app.kubernetes.io/name: tastebud
        app.kubernetes.io/component: shard
        tastebud/shard: "{i}"
    spec:
      terminationGracePeriodSeconds: 30
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        fsGroup: 10001
        seccompProfile:
          type: RuntimeDefault
      # Replicas of one shard on different nodes where possible: losing a node loses one replica.
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              app.kubernetes.io/name: tastebud
              app.kubernetes.io/component: shard
              tastebud/shard: "{i}"
      containers:
        - name: shard
          image: tastebud:0.1.0
          imagePullPolicy: IfNotPresent
          args: [serve-shard, --index, /data/indexes, --shard, "{i}", --host, 0.0.0.0, --port, "{port}"]
          ports:
            - name: grpc
              containerPort: {port}
          env:
            # Anything that caches under $HOME writes to the emptyDir; the root filesystem is read-only.
            - name: HOME
              value: /tmp
          resources:
            # 1.6 GiB measured per shard replica at 1M items x 384 dims, 4 shards (deploy/shards.py
            # says more); the limit holds two index versions during a swap.
            requests:
              cpu: "{cpu}"
              memory: {mem_request}
            limits:
              memory: {mem_limit}
          # NOT_SERVING until the shard is loaded and verified: up to 10 minutes for that.
          startupProbe:
            grpc:
              port: {port}
              service: tastebud.v1.Shard
            periodSeconds: 5
            failureThreshold: 120
          readinessProbe:
            grpc:
              port: {port}
              service: tastebud.v1.Shard
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: 2
          # The server as a whole (service ""): restarted only when it stops answering.
          livenessProbe:
            grpc:
              port: {port}
              service: ""
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          lifecycle:
            # Keep serving while the endpoint is removed from DNS; then SIGTERM stops gracefully.
            preStop:
              exec:
                command: [sleep, "5"]
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: [ALL]
          volumeMounts:
            - name: indexes
              mountPath: /data/indexes
              readOnly: true
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: indexes
          persistentVolumeClaim:
            claimName: tastebud-indexes
            readOnly: true
        - name: tmp
          emptyDir:
            sizeLimit: 256Mi
---
# Headless: DNS answers one address per ready replica; the router's gRPC channel
# (dns:///tastebud-shard-{i}.{namespace}.svc.cluster.local:{port}) balances round_robin over them.
apiVersion: v1
kind: Service
metadata:
  name: tastebud-shard-{i}
  labels:
    app.kubernetes.io/name: tastebud
    app.kubernetes.io/component: shard
    tastebud/shard: "{i}"
spec:
  clusterIP: None
  selector:
    app.kubernetes.io/name: tastebud
    app.kubernetes.io/component: shard
    tastebud/shard: "{i}"
  ports:
    - name: grpc
      port: {port}
      targetPort: grpc
      appProtocol: kubernetes.io/h2c
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: tastebud-shard-{i}
  labels:
    app.kubernetes.io/name: tastebud
    app.kubernetes.io/component: shard
    tastebud/shard: "{i}"
spec:
  minAvailable: 1
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      app.kubernetes.io/name: tastebud
      app.kubernetes.io/component: shard
      tastebud/shard: "{i}"
"""

KUSTOMIZATION = """\
---
# The shard workloads, one file per shard. Written by deploy/shards.py (edit that, not this file).
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
{resources}
"""

CLUSTER_TOML = """\
# The router's cluster config (tastebud.cluster.config), mounted from a ConfigMap at
# /etc/tastebud/cluster.toml. Written by deploy/shards.py (edit that, not this file).
index = "/data/indexes"           # the index root (a volume): items, histories, models
watch_seconds = 2.0               # how often the published `current` pointer is checked

[router]
shard_timeout_ms = 250            # a shard answer later than this is dropped (degraded)
vector_cache_items = 200000       # history vectors fetched from shards, kept per version

[retry]                           # gRPC's own retry policy: UNAVAILABLE tried on another replica
max_attempts = 3
initial_backoff_ms = 5
max_backoff_ms = 50
{shards}"""

SHARD_TOML = """
# Headless Service tastebud-shard-{i}: one DNS address per ready replica.
[[shards]]
shard = {i}
target = "dns:///tastebud-shard-{i}.{namespace}.svc.cluster.local:{port}"
"""


def files(shards: int, replicas: int, namespace: str = NAMESPACE) -> dict[Path, str]:
    """Relative path (under deploy/k8s) -> content, for ``shards`` shards x ``replicas``."""
    if shards < 1 or replicas < 1:
        raise ValueError(f"shards and replicas must be >= 1, got {shards} and {replicas}")
    values = dict(replicas=replicas, port=SHARD_PORT, cpu=CPU_REQUEST, mem_request=MEMORY_REQUEST,
                  mem_limit=MEMORY_LIMIT, namespace=namespace)
    out = {Path("shards") / f"shard-{i}.yaml": SHARD.format(i=i, **values) for i in range(shards)}
    out[Path("shards") / "kustomization.yaml"] = KUSTOMIZATION.format(
        resources="\n".join(f"  - shard-{i}.yaml" for i in range(shards)))
    out[Path("cluster.toml")] = CLUSTER_TOML.format(
        shards="".join(SHARD_TOML.format(i=i, **values) for i in range(shards)))
    return out


BUILD_SHARDS = re.compile(r'(- --shards\n\s+- )"\d+"')


def write(shards: int, replicas: int, root: Path = K8S) -> list[Path]:
    """Write the files, removing shard-I.yaml files beyond the new count, and set build.yaml's
    ``--shards``; returns what was written."""
    wanted = files(shards, replicas)
    for old in sorted((root / "shards").glob("shard-*.yaml")):
        if old.relative_to(root) not in wanted:
            old.unlink()
    for rel, text in wanted.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    build = root / "build.yaml"
    text, found = BUILD_SHARDS.subn(rf'\g<1>"{shards}"', build.read_text())
    if found != 1:
        raise SystemExit(f"{build}: expected one `- --shards` argument followed by its number, found {found}")
    build.write_text(text)
    return [root / rel for rel in wanted] + [build]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=4, help="shards (= tastebud build --shards)")
    parser.add_argument("--replicas", type=int, default=2, help="replicas of every shard")
    args = parser.parse_args(argv)
    for path in write(args.shards, args.replicas):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
