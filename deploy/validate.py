"""Render deploy/k8s/ like `kubectl kustomize` and check every object, without a cluster.

    python deploy/validate.py                  # render deploy/k8s, check, exit 1 on any problem
    python deploy/validate.py --print          # ... and print the rendered YAML

Three checks, all from the project's own files:

1. **Schemas**: every rendered object against the Kubernetes API's OpenAPI schemas shipped by
   the ``kubernetes-validate`` package, in strict mode (a misspelled or unknown field fails),
   for Kubernetes 1.31 and 1.37 (``KUBERNETES_VERSIONS``).
2. **Lint**: every YAML file under deploy/ with ``yamllint`` (deploy/.yamllint; warnings fail).
3. **References**: what the schemas cannot see. Services and PodDisruptionBudgets select the
   pods of some workload; workload selectors match their own pod labels; every volume names a
   ConfigMap or PersistentVolumeClaim that is rendered, every mount a declared volume, every
   named target port a container port; probes use gRPC on a container port; and the router's
   cluster.toml (in its ConfigMap, at the path the router is started with) parses with
   ``tastebud.cluster.config.parse_cluster_config`` and names, for each shard workload and no
   other, ``dns:///<its headless Service>.<namespace>.svc.cluster.local:<port>``. Every
   container's args parse with tastebud's own command line, and the gRPC probes ask the health
   service names the shard and the router register.

kubectl and kustomize are not installed where this runs, so ``render`` is a small Python
implementation of exactly the kustomize features the base uses: ``resources`` (files and
directories holding a kustomization), ``namespace``, ``labels`` (``pairs`` with
``includeTemplates``; no selectors) and ``configMapGenerator`` (``files`` and ``literals``, with
kustomize's content-hash name suffix and the rewriting of references to the generated name in
pod volumes and env). Anything else in a kustomization, and any kind whose transformation it
does not know, is refused rather than rendered wrong. Where a kubectl is at hand,
tests/deploy compares this rendering with ``kubectl kustomize``.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml

DEPLOY = Path(__file__).resolve().parent
K8S = DEPLOY / "k8s"
YAMLLINT_CONFIG = DEPLOY / ".yamllint"
# The schemas every object must pass: the newest Kubernetes kubernetes-validate carries, and the
# oldest this base is for (1.31: PodDisruptionBudget unhealthyPodEvictionPolicy is GA there;
# native gRPC probes since 1.27).
KUBERNETES_VERSIONS = ("1.31.0", "1.37.0")
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

Obj = dict[str, Any]


class RenderError(Exception):
    """The kustomization uses something this renderer does not implement, or is malformed."""


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

# The kinds this renderer knows how kustomize's namespace and labels transformers treat.
# Anything else is refused: kustomize changes fields inside some kinds (RoleBinding subjects,
# webhook service references, ...) that a generic transform would leave stale.
CLUSTER_SCOPED = {"Namespace"}
NAMESPACED = {"ConfigMap", "Service", "PersistentVolumeClaim", "Deployment", "StatefulSet", "Job", "CronJob",
              "PodDisruptionBudget"}
# Where `labels: [{includeTemplates: true}]` puts the labels besides metadata.labels
# (kustomize's templateLabels field specs for these kinds).
TEMPLATE_LABEL_PATHS = {
    "Deployment": [("spec", "template", "metadata", "labels")],
    "StatefulSet": [("spec", "template", "metadata", "labels"), ("spec", "volumeClaimTemplates", "*", "metadata",
                                                                  "labels")],
    "Job": [("spec", "template", "metadata", "labels")],
    "CronJob": [("spec", "jobTemplate", "metadata", "labels"),
                ("spec", "jobTemplate", "spec", "template", "metadata", "labels")],
}
KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "namespace", "labels", "configMapGenerator"}
LABELS_KEYS = {"pairs", "includeTemplates", "includeSelectors"}
GENERATOR_KEYS = {"name", "files", "literals"}


def _find_kustomization(folder: Path) -> Path:
    found = [folder / name for name in KUSTOMIZATION_FILES if (folder / name).is_file()]
    if len(found) != 1:
        raise RenderError(f"{folder}: expected exactly one of {KUSTOMIZATION_FILES}, found {len(found)}")
    return found[0]


def _inside(root: Path, path: Path, what: str) -> Path:
    """kustomize's default load restrictor: nothing outside the kustomization's folder."""
    resolved = path.resolve()
    if resolved != root.resolve() and root.resolve() not in resolved.parents:
        raise RenderError(f"{what}: {path} is outside {root} (kustomize's load restrictor refuses it)")
    return resolved


def _load_documents(path: Path) -> list[Obj]:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as exc:
        raise RenderError(f"{path}: not valid YAML: {exc}") from exc
    for d in docs:
        if not isinstance(d, dict) or not {"apiVersion", "kind", "metadata"} <= d.keys():
            raise RenderError(f"{path}: every document must be an object with apiVersion, kind and metadata")
        if d["kind"] == "List" or d["kind"].endswith("List"):
            raise RenderError(f"{path}: List objects are not implemented")
    return docs


def _go_json(value: Any) -> str:
    """json.Marshal of Go (sorted keys, no spaces, <>& and U+2028/9 escaped), as kustomize's hasher uses."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                          ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def configmap_hash(data: dict[str, str]) -> str:
    """kustomize's name suffix of a generated ConfigMap (api/hasher): sha256 of the JSON of
    {kind, name, data}, its first 10 hex digits with 0 1 3 a e replaced by g h k m t. The name
    is hashed as "": kustomize looks it up as one key literally called "metadata/name", which
    no object has (checked against kubectl 1.35's kustomize 5.7.1: same suffixes)."""
    digest = hashlib.sha256(_go_json({"kind": "ConfigMap", "name": "", "data": data}).encode()).hexdigest()
    return digest[:10].translate(str.maketrans("013ae", "ghkmt"))


def _generate_configmap(root: Path, spec: Any, where: str) -> tuple[str, Obj]:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise RenderError(f"{where}: each entry needs a name")
    unknown = set(spec) - GENERATOR_KEYS
    if unknown:
        raise RenderError(f"{where}: {sorted(unknown)} not implemented by this renderer "
                          f"(only {sorted(GENERATOR_KEYS)})")
    data: dict[str, str] = {}
    for entry in spec.get("files", []):
        key, _, rel = entry.rpartition("=") if "=" in entry else (None, "", entry)
        path = _inside(root, root / rel, where)
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RenderError(f"{where}: {rel} is not UTF-8 (binaryData is not implemented)") from exc
        data[key or path.name] = text
    for entry in spec.get("literals", []):
        key, sep, value = entry.partition("=")
        if not sep or not key:
            raise RenderError(f"{where}: literal {entry!r} is not KEY=VALUE")
        data[key] = value
    if not data:
        raise RenderError(f"{where}: {spec['name']} has no files or literals")
    name = spec["name"]
    return name, {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": f"{name}-{configmap_hash(data)}"}, "data": data}


def _pod_specs(obj: Obj) -> Iterator[Obj]:
    spec = obj.get("spec", {})
    if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
        yield spec.get("template", {}).get("spec", {})
    elif obj["kind"] == "CronJob":
        yield spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})


def _containers(pod: Obj) -> Iterator[Obj]:
    yield from pod.get("initContainers", []) or []
    yield from pod.get("containers", []) or []


def _rename_configmap_refs(objs: list[Obj], renamed: dict[str, str]) -> None:
    """kustomize's name-reference fix for ConfigMaps, for the places pods refer to them."""
    for obj in objs:
        for pod in _pod_specs(obj):
            for volume in pod.get("volumes", []) or []:
                refs = [volume.get("configMap")]
                refs += [s.get("configMap") for s in (volume.get("projected") or {}).get("sources", []) or []]
                for ref in refs:
                    if ref and ref.get("name") in renamed:
                        ref["name"] = renamed[ref["name"]]
            for c in _containers(pod):
                for env in c.get("env", []) or []:
                    ref = (env.get("valueFrom") or {}).get("configMapKeyRef")
                    if ref and ref.get("name") in renamed:
                        ref["name"] = renamed[ref["name"]]
                for env in c.get("envFrom", []) or []:
                    ref = env.get("configMapRef")
                    if ref and ref.get("name") in renamed:
                        ref["name"] = renamed[ref["name"]]


def _set_labels(obj: Obj, pairs: dict[str, str], templates: bool) -> None:
    obj.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
    if not templates:
        return
    for path in TEMPLATE_LABEL_PATHS.get(obj["kind"], []):
        _set_at(obj, path, pairs)


def _set_at(node: Any, path: tuple[str, ...], pairs: dict[str, str]) -> None:
    if not path:
        node.update(pairs)
        return
    head, rest = path[0], path[1:]
    if head == "*":
        for item in node if isinstance(node, list) else []:
            _set_at(item, rest, pairs)
        return
    if not isinstance(node, dict):
        return
    if head not in node:
        if head == "spec" or rest and rest[0] == "*":
            return  # kustomize creates the labels map, not the structure that should hold it
        node[head] = {}
    if node[head] is None:
        node[head] = {}
    _set_at(node[head], rest, pairs)


def render(folder: Path = K8S, nested: bool = False) -> list[Obj]:
    """The objects `kubectl kustomize folder` would print (in file order, not kustomize's)."""
    folder = Path(folder)
    path = _find_kustomization(folder)
    k = yaml.safe_load(path.read_text()) or {}
    if not isinstance(k, dict):
        raise RenderError(f"{path}: must be a mapping")
    unknown = set(k) - KUSTOMIZATION_KEYS
    if unknown:
        raise RenderError(f"{path}: {sorted(unknown)} not implemented by this renderer "
                          f"(it implements {sorted(KUSTOMIZATION_KEYS)}); use kubectl kustomize")
    if k.get("kind", "Kustomization") != "Kustomization":
        raise RenderError(f"{path}: kind must be Kustomization, got {k.get('kind')!r}")

    objs: list[Obj] = []
    for entry in k.get("resources", []) or []:
        if not isinstance(entry, str) or "://" in entry or entry.startswith(("github.com/", "git@")):
            raise RenderError(f"{path}: resources: {entry!r}: remote resources are not implemented")
        target = _inside(folder, folder / entry, f"{path}: resources")
        if target.is_dir():
            objs += render(target, nested=True)
        elif target.is_file():
            objs += _load_documents(target)
        else:
            raise RenderError(f"{path}: resources: {entry!r} does not exist")

    if nested and k.get("configMapGenerator"):
        # kustomize also renames references to it in the resources of the kustomizations above.
        raise RenderError(f"{path}: configMapGenerator in a nested kustomization is not implemented")
    renamed: dict[str, str] = {}
    for i, spec in enumerate(k.get("configMapGenerator", []) or []):
        name, cm = _generate_configmap(folder, spec, f"{path}: configMapGenerator[{i}]")
        renamed[name] = cm["metadata"]["name"]
        objs.append(cm)

    for obj in objs:
        if obj["kind"] not in CLUSTER_SCOPED | NAMESPACED:
            raise RenderError(f"{obj['kind']}/{obj['metadata'].get('name')}: kind not implemented by this renderer "
                              f"(known: {sorted(CLUSTER_SCOPED | NAMESPACED)})")

    namespace = k.get("namespace")
    if namespace is not None:
        if not isinstance(namespace, str) or not namespace:
            raise RenderError(f"{path}: namespace must be a non-empty string")
        for obj in objs:
            if obj["kind"] == "Namespace":
                if obj["metadata"].get("name") != namespace:
                    raise RenderError(f"{path}: Namespace/{obj['metadata'].get('name')} differs from namespace "
                                      f"{namespace!r}; how kustomize renames it is not implemented")
            else:
                obj["metadata"]["namespace"] = namespace

    for i, spec in enumerate(k.get("labels", []) or []):
        where = f"{path}: labels[{i}]"
        if not isinstance(spec, dict) or set(spec) - LABELS_KEYS:
            raise RenderError(f"{where}: only {sorted(LABELS_KEYS)} are implemented")
        if spec.get("includeSelectors", False):
            raise RenderError(f"{where}: includeSelectors: true is not implemented")
        pairs = spec.get("pairs") or {}
        if not all(isinstance(v, str) for v in pairs.values()):
            raise RenderError(f"{where}: label values must be strings")
        for obj in objs:
            _set_labels(obj, pairs, bool(spec.get("includeTemplates", False)))

    _rename_configmap_refs(objs, renamed)
    return objs


def to_yaml(objs: Iterable[Obj]) -> str:
    return "---\n".join(yaml.safe_dump(o, sort_keys=True, default_flow_style=False) for o in objs)


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------

@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.problems.append(message)

    @property
    def ok(self) -> bool:
        return not self.problems


def ref(obj: Obj) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def check_schemas(objs: Iterable[Obj], report: Report, versions: Iterable[str] = KUBERNETES_VERSIONS) -> None:
    """Strict validation against the Kubernetes OpenAPI schemas of each of ``versions``
    (kubernetes-validate; a version it does not carry exactly is a problem, not a fallback)."""
    import kubernetes_validate
    from kubernetes_validate.utils import all_versions

    carried = all_versions()
    for version in versions:
        if version not in carried:
            report.fail(f"kubernetes-validate {kubernetes_validate.__version__} has no schemas for Kubernetes "
                        f"{version} (it has {carried[0]}..{carried[-1]})")
    versions = [v for v in versions if v in carried]
    objs = list(objs)
    for version in versions:
        for obj in objs:
            try:
                kubernetes_validate.validate(copy.deepcopy(obj), version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = "/".join(str(p) for p in exc.absolute_path) or "(top)"
                report.fail(f"{ref(obj)}: schema (Kubernetes {exc.version}, strict): at {where}: {exc.message}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                report.fail(f"{ref(obj)}: {exc.message}")


def check_lint(paths: Iterable[Path], report: Report, config: Path = YAMLLINT_CONFIG) -> None:
    """yamllint with deploy/.yamllint; a warning is a problem too."""
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    conf = YamlLintConfig(file=str(config))
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for problem in linter.run(f, conf, str(path)):
                report.fail(f"{path}:{problem.line}:{problem.column}: yamllint {problem.level}: {problem.message}")


def yaml_files(root: Path = DEPLOY) -> list[Path]:
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and (p.suffix in (".yaml", ".yml") or p.name == ".yamllint"))


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _match_labels(selector: Obj | None, where: str, report: Report) -> dict[str, str]:
    selector = selector or {}
    if selector.get("matchExpressions"):
        report.fail(f"{where}: matchExpressions are not checked by validate.py; use matchLabels")
    return dict(selector.get("matchLabels") or {})


@dataclass
class Workload:
    obj: Obj
    pod: Obj
    labels: dict[str, str]

    @property
    def namespace(self) -> str | None:
        return self.obj["metadata"].get("namespace")


def _workloads(objs: list[Obj], report: Report) -> list[Workload]:
    out = []
    for obj in objs:
        spec = obj.get("spec", {}) or {}
        if obj["kind"] in ("Deployment", "StatefulSet"):
            template = spec.get("template", {}) or {}
        elif obj["kind"] == "Job":
            template = spec.get("template", {}) or {}
        elif obj["kind"] == "CronJob":
            template = ((spec.get("jobTemplate", {}) or {}).get("spec", {}) or {}).get("template", {}) or {}
        else:
            continue
        labels = dict((template.get("metadata", {}) or {}).get("labels") or {})
        if obj["kind"] in ("Deployment", "StatefulSet"):
            selector = _match_labels(spec.get("selector"), ref(obj), report)
            if not _selects(selector, labels):
                report.fail(f"{ref(obj)}: spec.selector {selector} does not match its pod labels {labels}")
        out.append(Workload(obj, template.get("spec", {}) or {}, labels))
    return out


def _arg(args: list[str], flag: str) -> str | None:
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def check_references(objs: list[Obj], report: Report) -> None:
    by_kind: dict[str, list[Obj]] = {}
    for obj in objs:
        by_kind.setdefault(obj["kind"], []).append(obj)
    names = {(o["kind"], o["metadata"].get("namespace"), o["metadata"].get("name")) for o in objs}
    if len(names) != len(objs):
        report.fail("two rendered objects share kind, namespace and name")
    namespaces = {o["metadata"]["name"] for o in by_kind.get("Namespace", [])}
    for obj in objs:
        ns = obj["metadata"].get("namespace")
        if obj["kind"] not in CLUSTER_SCOPED and ns not in namespaces:
            report.fail(f"{ref(obj)}: namespace {ns!r} is not among the rendered Namespaces {sorted(namespaces)}")

    workloads = _workloads(objs, report)
    served = [w for w in workloads if w.obj["kind"] in ("Deployment", "StatefulSet")]

    # Workload pods: volumes exist, mounts name volumes, probes are gRPC on a container port.
    for w in workloads:
        volumes = {v.get("name"): v for v in w.pod.get("volumes", []) or []}
        for name, v in volumes.items():
            if "configMap" in v and ("ConfigMap", w.namespace, v["configMap"].get("name")) not in names:
                report.fail(f"{ref(w.obj)}: volume {name}: ConfigMap {v['configMap'].get('name')} is not rendered")
            if "persistentVolumeClaim" in v:
                claim = v["persistentVolumeClaim"].get("claimName")
                if ("PersistentVolumeClaim", w.namespace, claim) not in names:
                    report.fail(f"{ref(w.obj)}: volume {name}: PersistentVolumeClaim {claim} is not rendered")
        for c in _containers(w.pod):
            ports = {p.get("containerPort") for p in c.get("ports", []) or []}
            listen = _arg(c.get("args") or [], "--port")
            if listen is not None and (not listen.isdigit() or int(listen) not in ports):
                report.fail(f"{ref(w.obj)}: container {c.get('name')}: --port {listen} is not a declared "
                            f"containerPort {sorted(ports)}")
            resources = c.get("resources") or {}
            if not (resources.get("requests") or {}).get("memory") or not (resources.get("limits") or {}).get("memory"):
                report.fail(f"{ref(w.obj)}: container {c.get('name')}: needs a memory request and a memory limit")
            for m in c.get("volumeMounts", []) or []:
                if m.get("name") not in volumes:
                    report.fail(f"{ref(w.obj)}: container {c.get('name')}: mount {m.get('name')} names no volume")
            if w.obj["kind"] in ("Deployment", "StatefulSet"):
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    grpc = (c.get(probe) or {}).get("grpc")
                    if not grpc:
                        report.fail(f"{ref(w.obj)}: container {c.get('name')}: {probe} must be a gRPC probe")
                    elif grpc.get("port") not in ports:
                        report.fail(f"{ref(w.obj)}: container {c.get('name')}: {probe} port {grpc.get('port')} "
                                    f"is not a container port {sorted(ports)}")

    def selected(selector: dict[str, str], ns: str | None) -> list[Workload]:
        return [w for w in served if w.namespace == ns and _selects(selector, w.labels)]

    services: dict[tuple[str | None, str], tuple[Obj, list[Workload]]] = {}
    for svc in by_kind.get("Service", []):
        spec = svc.get("spec", {}) or {}
        selector = dict(spec.get("selector") or {})
        pods = selected(selector, svc["metadata"].get("namespace"))
        services[(svc["metadata"].get("namespace"), svc["metadata"]["name"])] = (svc, pods)
        if not pods:
            report.fail(f"{ref(svc)}: selector {selector} selects the pods of no workload")
        for port in spec.get("ports", []) or []:
            target = port.get("targetPort", port.get("port"))
            for w in pods:
                c_ports = [p for c in _containers(w.pod) for p in c.get("ports", []) or []]
                key = "name" if isinstance(target, str) else "containerPort"
                if not any(p.get(key) == target for p in c_ports):
                    report.fail(f"{ref(svc)}: targetPort {target!r} is not a container port of {ref(w.obj)}")
    budgeted: set[str] = set()
    for pdb in by_kind.get("PodDisruptionBudget", []):
        selector = _match_labels((pdb.get("spec") or {}).get("selector"), ref(pdb), report)
        pods = selected(selector, pdb["metadata"].get("namespace"))
        if not pods:
            report.fail(f"{ref(pdb)}: selector {selector} selects the pods of no workload")
        budgeted |= {ref(w.obj) for w in pods}
    for w in served:
        if ref(w.obj) not in budgeted:
            report.fail(f"{ref(w.obj)}: no PodDisruptionBudget selects its pods")

    _check_cluster(objs, workloads, services, report)


def check_commands(objs: list[Obj], report: Report) -> None:
    """Every container's args parse with tastebud's own command line, and the probes ask the
    health service names the servers register (the shard's and the Recommender's)."""
    import contextlib
    import io

    from tastebud.cli.main import parser
    from tastebud.cluster.config import SHARD_SERVICE
    from tastebud.v1 import recommender_pb2

    recommender = recommender_pb2.DESCRIPTOR.services_by_name["Recommender"].full_name
    expected = {"serve-shard": SHARD_SERVICE, "serve": recommender}
    for obj in objs:
        for pod in _pod_specs(obj):
            for c in _containers(pod):
                args = [str(a) for a in c.get("args") or []]
                where = f"{ref(obj)}: container {c.get('name')}"
                if c.get("command"):
                    report.fail(f"{where}: sets command; the image's entrypoint is `tastebud`, give args only")
                errors = io.StringIO()
                try:
                    with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
                        parser().parse_args(args)
                except SystemExit:
                    message = errors.getvalue().strip().splitlines()
                    report.fail(f"{where}: `tastebud {' '.join(args)}` does not parse: "
                                f"{message[-1] if message else 'exit'}")
                service = expected.get(args[0]) if args else None
                if service is None:
                    continue
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    asked = ((c.get(probe) or {}).get("grpc") or {}).get("service", "")
                    allowed = {service, ""} if probe == "livenessProbe" else {service}
                    if asked not in allowed:
                        report.fail(f"{where}: {probe} asks health of {asked!r}; `tastebud {args[0]}` serves "
                                    f"{sorted(allowed)}")


def _container(w: Workload) -> Obj:
    return (w.pod.get("containers") or [{}])[0]


def _check_cluster(objs: list[Obj], workloads: list[Workload], services: dict, report: Report) -> None:
    """The router's cluster.toml against the shard workloads, their headless Services and the build."""
    from tastebud.cluster.config import parse_cluster_config
    from tastebud.errors import InvalidInputError

    served = [w for w in workloads if w.obj["kind"] in ("Deployment", "StatefulSet")]
    shards: dict[int, Workload] = {}
    for w in served:
        args = _container(w).get("args") or []
        if args[:1] == ["serve-shard"]:
            number = _arg(args, "--shard")
            if number is None or not number.isdigit():
                report.fail(f"{ref(w.obj)}: serve-shard without a --shard number")
                continue
            if int(number) in shards:
                report.fail(f"{ref(w.obj)}: shard {number} has a second workload, {ref(shards[int(number)].obj)}")
            shards[int(number)] = w
            if (w.obj.get("spec") or {}).get("replicas", 1) < 2:
                report.notes.append(f"{ref(w.obj)}: one replica: a PodDisruptionBudget of minAvailable 1 blocks "
                                    "drains of its node")
    routers = [w for w in served if (_container(w).get("args") or [])[:1] == ["serve"]
               and _arg(_container(w).get("args") or [], "--cluster")]
    if not shards:
        report.fail("no shard workload (a container started with `serve-shard --shard I`)")
    if len(routers) != 1:
        report.fail(f"expected one router workload (`serve --cluster PATH`), found {len(routers)}")
        return
    router = routers[0]
    container = _container(router)
    path = _arg(container["args"], "--cluster")
    mounts = [m for m in container.get("volumeMounts", []) or [] if path.startswith(m["mountPath"].rstrip("/") + "/")]
    if not mounts:
        report.fail(f"{ref(router.obj)}: --cluster {path} is on no volume mount")
        return
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    volume = next((v for v in router.pod.get("volumes", []) or [] if v.get("name") == mount["name"]), {})
    cm_name = (volume.get("configMap") or {}).get("name")
    key = path[len(mount["mountPath"].rstrip("/")) + 1:]
    cm = next((o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == cm_name
               and o["metadata"].get("namespace") == router.namespace), None)
    if cm is None or key not in (cm.get("data") or {}):
        report.fail(f"{ref(router.obj)}: --cluster {path}: no key {key!r} in a rendered ConfigMap {cm_name!r}")
        return
    try:
        config = parse_cluster_config(tomllib.loads(cm["data"][key]), f"ConfigMap/{cm_name}:{key}")
    except (tomllib.TOMLDecodeError, InvalidInputError) as exc:
        report.fail(f"ConfigMap/{cm_name}:{key}: {exc}")
        return

    index_mounts = {m["mountPath"] for m in container.get("volumeMounts", []) or []}
    if str(config.index) not in index_mounts:
        report.fail(f"ConfigMap/{cm_name}:{key}: index {config.index} is not a volume mount of the router")
    for w in workloads:
        args = _container(w).get("args") or []
        if args[:1] == ["build"]:
            if _arg(args, "--shards") != str(len(shards)):
                report.fail(f"{ref(w.obj)}: build --shards {_arg(args, '--shards')}, but there are {len(shards)} "
                            "shard workloads")
            if _arg(args, "--out") != str(config.index):
                report.fail(f"{ref(w.obj)}: build --out {_arg(args, '--out')} is not the cluster's index "
                            f"{config.index}")
    listed = {s.shard: s.target for s in config.shards}
    if set(listed) != set(shards):
        report.fail(f"ConfigMap/{cm_name}:{key}: lists shards {sorted(listed)}, the workloads are {sorted(shards)}")
    pattern = re.compile(r"^dns:///([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:(\d+)$")
    for number, w in sorted(shards.items()):
        args = _container(w)["args"]
        if _arg(args, "--index") != str(config.index):
            report.fail(f"{ref(w.obj)}: --index {_arg(args, '--index')} is not the cluster's index {config.index}")
        if number not in listed:
            continue
        match = pattern.match(listed[number])
        if not match:
            report.fail(f"ConfigMap/{cm_name}:{key}: shard {number}: target {listed[number]!r} is not "
                        "dns:///<service>.<namespace>.svc.cluster.local:<port>")
            continue
        svc_name, ns, port = match.group(1), match.group(2), int(match.group(3))
        found = services.get((ns, svc_name))
        if found is None:
            report.fail(f"ConfigMap/{cm_name}:{key}: shard {number}: no Service {svc_name} in namespace {ns}")
            continue
        svc, pods = found
        if (svc.get("spec") or {}).get("clusterIP") != "None":
            report.fail(f"{ref(svc)}: must be headless (clusterIP: None) so DNS returns one address per replica")
        if [p.obj["metadata"]["name"] for p in pods] != [w.obj["metadata"]["name"]]:
            report.fail(f"{ref(svc)}: shard {number}'s target must select exactly {ref(w.obj)}'s pods, "
                        f"selects {[ref(p.obj) for p in pods]}")
        if port not in {p.get("port") for p in (svc.get("spec") or {}).get("ports", []) or []}:
            report.fail(f"{ref(svc)}: shard {number}'s target port {port} is not a port of the Service")
        if _arg(args, "--port") is None or int(_arg(args, "--port")) != _target_port(svc, port, w):
            report.fail(f"{ref(w.obj)}: serves on --port {_arg(args, '--port')}, the Service sends to another port")


def _target_port(svc: Obj, port: int, w: Workload) -> int | None:
    for p in (svc.get("spec") or {}).get("ports", []) or []:
        if p.get("port") == port:
            target = p.get("targetPort", port)
            if isinstance(target, int):
                return target
            return next((cp.get("containerPort") for cp in _container(w).get("ports", []) or []
                         if cp.get("name") == target), None)
    return None


def validate(folder: Path = K8S, versions: Iterable[str] = KUBERNETES_VERSIONS,
             lint_root: Path | None = DEPLOY) -> tuple[list[Obj], Report]:
    """Render ``folder`` and run every check; ``lint_root`` None skips yamllint."""
    report = Report()
    try:
        objs = render(folder)
    except RenderError as exc:
        report.fail(f"render: {exc}")
        return [], report
    check_schemas(objs, report, versions)
    check_references(objs, report)
    check_commands(objs, report)
    if lint_root is not None:
        check_lint(yaml_files(lint_root), report)
    return objs, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", type=Path, default=K8S, help="kustomization folder")
    parser.add_argument("--kubernetes-version", action="append", dest="versions", metavar="X.Y.Z",
                        help=f"API schemas to validate against, repeatable (default: {', '.join(KUBERNETES_VERSIONS)})")
    parser.add_argument("--print", action="store_true", help="print the rendered YAML")
    args = parser.parse_args(argv)
    versions = tuple(args.versions or KUBERNETES_VERSIONS)
    objs, report = validate(args.folder, versions)
    if args.print:
        print(to_yaml(objs))
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    for problem in report.problems:
        print(f"FAIL {problem}", file=sys.stderr)
    kinds: dict[str, int] = {}
    for o in objs:
        kinds[o["kind"]] = kinds.get(o["kind"], 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    print(f"{args.folder}: {len(objs)} objects ({summary}); Kubernetes {'/'.join(versions)} schemas (strict), "
          f"yamllint, references: {'ok' if report.ok else f'{len(report.problems)} problem(s)'}", file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
