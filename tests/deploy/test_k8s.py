"""deploy/k8s/ is checked from the project's own files: rendered by deploy/validate.py, validated
against the Kubernetes API schemas (kubernetes-validate, strict), linted by yamllint, and
cross-checked (selectors, volumes, the router's cluster.toml). Each check is also shown to fail
on a deliberately broken copy, so a green run means something."""

from __future__ import annotations

import copy
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

for _module in ("kubernetes_validate", "yamllint"):
    if importlib.util.find_spec(_module) is None:  # a missing checker must fail, never skip
        pytest.fail(f"{_module} is not installed: it is a dev dependency (pip install -e '.[dev]')",
                    pytrace=False)


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"tastebud_deploy_{name}", DEPLOY / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


validate = _load("validate")
shards = _load("shards")


def _by_name(objs, kind, name):
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


def _problems(objs) -> list[str]:
    report = validate.Report()
    validate.check_schemas(objs, report)
    validate.check_references(objs, report)
    validate.check_commands(objs, report)
    return report.problems


@pytest.fixture(scope="module")
def rendered():
    return validate.render(DEPLOY / "k8s")


@pytest.fixture
def objs(rendered):
    return copy.deepcopy(rendered)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of deploy/ to break."""
    shutil.copytree(DEPLOY, tmp_path / "deploy", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "deploy"


# --- the base as committed ---------------------------------------------------------------

def test_the_base_passes_every_check():
    objs, report = validate.validate(DEPLOY / "k8s")
    assert report.ok, "\n".join(report.problems)
    kinds = sorted(o["kind"] for o in objs)
    assert kinds.count("Deployment") == 5 and kinds.count("PodDisruptionBudget") == 5
    assert all(o["metadata"].get("namespace") == "tastebud" for o in objs if o["kind"] != "Namespace")


def test_the_command_line_exits_zero_on_the_base():
    run = subprocess.run([sys.executable, str(DEPLOY / "validate.py")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "references: ok" in run.stderr


def test_the_base_is_four_shards_of_two_headless_replicas(rendered):
    shard_deployments = [o for o in rendered if o["kind"] == "Deployment"
                         and o["metadata"]["labels"].get("app.kubernetes.io/component") == "shard"]
    assert sorted(o["metadata"]["name"] for o in shard_deployments) == [f"tastebud-shard-{i}" for i in range(4)]
    assert all(o["spec"]["replicas"] == 2 for o in shard_deployments)
    for i in range(4):
        svc = _by_name(rendered, "Service", f"tastebud-shard-{i}")
        assert svc["spec"]["clusterIP"] == "None"
        assert _by_name(rendered, "PodDisruptionBudget", f"tastebud-shard-{i}")["spec"]["minAvailable"] == 1
        probes = _by_name(rendered, "Deployment", f"tastebud-shard-{i}")["spec"]["template"]["spec"]["containers"][0]
        assert probes["readinessProbe"]["grpc"] == {"port": 50061, "service": "tastebud.v1.Shard"}
    router = _by_name(rendered, "Deployment", "tastebud-router")
    assert router["spec"]["replicas"] == 1 and router["spec"]["strategy"]["type"] == "Recreate"


def test_committed_shard_files_are_what_shards_py_writes(rendered):
    count = len(list((DEPLOY / "k8s" / "shards").glob("shard-*.yaml")))
    replicas = _by_name(rendered, "Deployment", "tastebud-shard-0")["spec"]["replicas"]
    for rel, text in shards.files(count, replicas).items():
        assert (DEPLOY / "k8s" / rel).read_text() == text, f"{rel}: run python deploy/shards.py"


def test_shards_py_scales_the_topology(tree):
    module = _load_from(tree / "shards.py")
    module.write(6, 3, tree / "k8s")
    objs, report = validate.validate(tree / "k8s", lint_root=tree)
    assert report.ok, "\n".join(report.problems)
    assert sum(o["kind"] == "Deployment" and o["metadata"]["name"].startswith("tastebud-shard-") for o in objs) == 6
    module.write(2, 2, tree / "k8s")  # shrinking removes the files of shards 2..5
    assert sorted(p.name for p in (tree / "k8s" / "shards").glob("shard-*.yaml")) == ["shard-0.yaml", "shard-1.yaml"]
    assert '- --shards\n                - "2"' in (tree / "k8s" / "build.yaml").read_text()
    assert validate.validate(tree / "k8s", lint_root=tree)[1].ok


def _load_from(path: Path):
    spec = importlib.util.spec_from_file_location("tastebud_deploy_copy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configmap_suffix_is_kustomizes():
    # Suffixes printed by kubectl 1.35.2 (kustomize 5.7.1) for literals a=b and a=c.
    assert validate.configmap_hash({"a": "b"}) == "4h2mbtbbt6"
    assert validate.configmap_hash({"a": "c"}) == "8f2d5hh62d"


def test_the_router_mounts_the_generated_configmap(rendered):
    cm = next(o for o in rendered if o["kind"] == "ConfigMap")
    assert cm["metadata"]["name"] == f"tastebud-cluster-{validate.configmap_hash(cm['data'])}"
    volumes = _by_name(rendered, "Deployment", "tastebud-router")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "cluster-config", "configMap": {"name": cm["metadata"]["name"]}} in volumes


KUBECTL = os.environ.get("TASTEBUD_KUBECTL") or shutil.which("kubectl")


@pytest.mark.skipif(not KUBECTL, reason="no kubectl (set TASTEBUD_KUBECTL to compare with kubectl kustomize)")
def test_rendering_equals_kubectl_kustomize(rendered):
    out = subprocess.run([KUBECTL, "kustomize", str(DEPLOY / "k8s")], capture_output=True, text=True, check=True,
                         timeout=120).stdout
    theirs = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in yaml.safe_load_all(out)}
    ours = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in rendered}
    assert ours.keys() == theirs.keys()
    assert [k for k in ours if ours[k] != theirs[k]] == []


# --- broken copies are rejected ----------------------------------------------------------

def test_a_misspelled_field_fails_the_schema(tree):
    path = tree / "k8s" / "shards" / "shard-1.yaml"
    path.write_text(path.read_text().replace("  revisionHistoryLimit: 3", "  revisionHistoryLimt: 3", 1))
    _, report = validate.validate(tree / "k8s", lint_root=tree)
    assert any("Deployment/tastebud-shard-1: schema" in p and "revisionHistoryLimt" in p for p in report.problems), \
        report.problems


def test_schemas_of_every_version_are_checked_and_missing_ones_fail(objs):
    import kubernetes_validate.utils

    assert set(validate.KUBERNETES_VERSIONS) <= set(kubernetes_validate.utils.all_versions())
    # A misspelled key is refused by both versions' schemas, each reported.
    container = _by_name(objs, "Deployment", "tastebud-shard-0")["spec"]["template"]["spec"]["containers"][0]
    container["startupProbe"]["grpc"]["serviceName"] = "tastebud.v1.Shard"
    report = validate.Report()
    validate.check_schemas(objs, report, ("1.31.0", "1.37.0", "1.2.0"))
    assert sum("Deployment/tastebud-shard-0: schema" in p and "serviceName" in p for p in report.problems) == 2
    assert any("has no schemas for Kubernetes 1.2.0" in p for p in report.problems)


def test_a_wrong_type_fails_the_schema(objs):
    _by_name(objs, "Deployment", "tastebud-router")["spec"]["replicas"] = "one"
    assert any("Deployment/tastebud-router: schema" in p for p in _problems(objs))


def test_a_service_selecting_no_pods_fails(objs):
    _by_name(objs, "Service", "tastebud")["spec"]["selector"]["app.kubernetes.io/component"] = "routr"
    assert any("Service/tastebud: selector" in p and "selects the pods of no workload" in p for p in _problems(objs))


def test_a_pdb_selecting_no_pods_fails(objs):
    _by_name(objs, "PodDisruptionBudget", "tastebud-shard-2")["spec"]["selector"]["matchLabels"]["tastebud/shard"] = "7"
    assert any("PodDisruptionBudget/tastebud-shard-2" in p for p in _problems(objs))


def test_a_deployment_whose_selector_misses_its_pods_fails(objs):
    _by_name(objs, "Deployment", "tastebud-shard-0")["spec"]["selector"]["matchLabels"]["tastebud/shard"] = "1"
    assert any("Deployment/tastebud-shard-0: spec.selector" in p for p in _problems(objs))


def test_missing_configmap_and_claim_fail(objs):
    pod = _by_name(objs, "Deployment", "tastebud-router")["spec"]["template"]["spec"]
    for v in pod["volumes"]:
        if "configMap" in v:
            v["configMap"]["name"] = "tastebud-cluster"  # the name before kustomize's suffix
        if v["name"] == "store":
            v["persistentVolumeClaim"]["claimName"] = "tastebud-store"
    problems = _problems(objs)
    assert any("ConfigMap tastebud-cluster is not rendered" in p for p in problems), problems
    assert any("PersistentVolumeClaim tastebud-store is not rendered" in p for p in problems), problems


def test_a_mount_without_volume_and_a_wrong_target_port_fail(objs):
    container = _by_name(objs, "Deployment", "tastebud-shard-3")["spec"]["template"]["spec"]["containers"][0]
    container["volumeMounts"].append({"name": "nothing", "mountPath": "/x"})
    _by_name(objs, "Service", "tastebud-shard-3")["spec"]["ports"][0]["targetPort"] = "http"
    problems = _problems(objs)
    assert any("mount nothing names no volume" in p for p in problems)
    assert any("Service/tastebud-shard-3: targetPort 'http'" in p for p in problems)


def test_a_server_port_that_is_not_declared_fails(objs):
    args = _by_name(objs, "Deployment", "tastebud-router")["spec"]["template"]["spec"]["containers"][0]["args"]
    args[args.index("--port") + 1] = "50052"
    assert any("Deployment/tastebud-router: container router: --port 50052 is not a declared containerPort" in p
               for p in _problems(objs))


def test_a_misspelled_flag_and_a_wrong_health_service_fail(objs):
    container = _by_name(objs, "Deployment", "tastebud-shard-2")["spec"]["template"]["spec"]["containers"][0]
    container["args"][container["args"].index("--index")] = "--indexes"
    router = _by_name(objs, "Deployment", "tastebud-router")["spec"]["template"]["spec"]["containers"][0]
    router["readinessProbe"]["grpc"]["service"] = "tastebud.v1.Shard"
    problems = _problems(objs)
    assert any("Deployment/tastebud-shard-2: container shard: `tastebud serve-shard --indexes" in p
               and "does not parse" in p for p in problems), problems
    assert any("Deployment/tastebud-router: container router: readinessProbe asks health of 'tastebud.v1.Shard'" in p
               for p in problems), problems


def test_a_probe_that_is_not_grpc_fails(objs):
    container = _by_name(objs, "Deployment", "tastebud-shard-0")["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"] = {"tcpSocket": {"port": 50061}}
    assert any("readinessProbe must be a gRPC probe" in p for p in _problems(objs))


def _set_cluster_toml(objs, edit) -> None:
    cm = next(o for o in objs if o["kind"] == "ConfigMap")
    cm["data"]["cluster.toml"] = edit(cm["data"]["cluster.toml"])


def test_a_cluster_config_missing_a_shard_fails(objs):
    _set_cluster_toml(objs, lambda t: t[:t.index("# Headless Service tastebud-shard-3")])
    assert any("lists shards [0, 1, 2], the workloads are [0, 1, 2, 3]" in p for p in _problems(objs))


def test_a_cluster_target_in_another_namespace_fails(objs):
    _set_cluster_toml(objs, lambda t: t.replace("tastebud-shard-1.tastebud.svc", "tastebud-shard-1.other.svc"))
    assert any("shard 1: no Service tastebud-shard-1 in namespace other" in p for p in _problems(objs))


def test_a_cluster_target_naming_another_shards_service_fails(objs):
    _set_cluster_toml(objs, lambda t: t.replace('"dns:///tastebud-shard-2.', '"dns:///tastebud-shard-0.'))
    assert any("shard 2's target must select exactly Deployment/tastebud-shard-2" in p for p in _problems(objs))


def test_a_cluster_config_with_an_unknown_key_fails(objs):
    _set_cluster_toml(objs, lambda t: t.replace("[router]\n", "[router]\nshard_timeout = 3\n"))
    assert any("router.shard_timeout: unknown key" in p for p in _problems(objs))


def test_a_shard_service_that_is_not_headless_fails(objs):
    del _by_name(objs, "Service", "tastebud-shard-1")["spec"]["clusterIP"]
    assert any("Service/tastebud-shard-1: must be headless" in p for p in _problems(objs))


def test_a_build_for_another_shard_count_fails(objs):
    args = _by_name(objs, "CronJob", "tastebud-build")["spec"]["jobTemplate"]["spec"]["template"]["spec"][
        "containers"][0]["args"]
    args[args.index("--shards") + 1] = "3"
    assert any("CronJob/tastebud-build: build --shards 3, but there are 4 shard workloads" in p
               for p in _problems(objs))


def test_a_shard_without_budget_or_memory_limit_fails(objs):
    objs.remove(_by_name(objs, "PodDisruptionBudget", "tastebud-shard-1"))
    container = _by_name(objs, "Deployment", "tastebud-shard-1")["spec"]["template"]["spec"]["containers"][0]
    del container["resources"]["limits"]
    problems = _problems(objs)
    assert any("Deployment/tastebud-shard-1: no PodDisruptionBudget" in p for p in problems)
    assert any("Deployment/tastebud-shard-1: container shard: needs a memory request and a memory limit" in p
               for p in problems)


def test_yamllint_problems_fail(tree):
    path = tree / "k8s" / "router.yaml"
    path.write_text(path.read_text().replace("  replicas: 1\n", "  replicas: 1   \n", 1) + "\n\n")
    _, report = validate.validate(tree / "k8s", lint_root=tree)
    assert any("router.yaml" in p and "trailing-spaces" in p for p in report.problems), report.problems
    assert any("router.yaml" in p and "empty-lines" in p for p in report.problems), report.problems


@pytest.mark.parametrize("extra", ["patches:\n  - path: p.yaml\n", "commonLabels:\n  a: b\n",
                                   "images:\n  - name: tastebud\n    newTag: x\n", "namePrefix: x-\n"])
def test_kustomize_features_the_renderer_lacks_are_refused(tree, extra):
    path = tree / "k8s" / "kustomization.yaml"
    path.write_text(path.read_text() + extra)
    with pytest.raises(validate.RenderError, match="not implemented"):
        validate.render(tree / "k8s")
    assert not validate.validate(tree / "k8s", lint_root=None)[1].ok


def test_unknown_kinds_and_remote_resources_are_refused(tree):
    (tree / "k8s" / "role.yaml").write_text("---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
                                            "metadata:\n  name: x\nroleRef: {}\n")
    path = tree / "k8s" / "kustomization.yaml"
    text = path.read_text()
    path.write_text(text.replace("  - build.yaml\n", "  - build.yaml\n  - role.yaml\n"))
    with pytest.raises(validate.RenderError, match="RoleBinding/x: kind not implemented"):
        validate.render(tree / "k8s")
    path.write_text(text.replace("  - build.yaml\n", "  - build.yaml\n  - https://example.org/x.yaml\n"))
    with pytest.raises(validate.RenderError, match="remote resources"):
        validate.render(tree / "k8s")


# --- the image ----------------------------------------------------------------------------

def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined, comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def test_the_image_installs_cpu_torch_first_then_the_package():
    import tomllib

    steps = _dockerfile_instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = [args for word, args in steps if word == "RUN" and "pip install" in args]
    torch = re.search(r"torch==(\S+)", (ROOT / "Makefile").read_text()).group(1)
    assert runs[0] == f"pip install torch=={torch} --index-url https://download.pytorch.org/whl/cpu"
    assert runs[1].startswith("pip install . ")
    env = " ".join(args for word, args in steps if word == "ENV")
    assert "HF_HUB_OFFLINE=1" in env

    # Every folder the package is made of is copied in, and the ignore file keeps none of them out.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {Path(d).parts[0] for d in pyproject["tool"]["setuptools"]["package-dir"].values()}
    needed |= {"pyproject.toml", pyproject["project"]["readme"]}
    copied = {src.rstrip("/") for word, args in steps if word == "COPY" for src in args.split()[:-1]}
    assert needed <= copied, f"not copied into the image: {sorted(needed - copied)}"
    ignored = {line.strip() for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert not copied & ignored
    assert all((ROOT / src).exists() for src in copied)


def test_every_manifest_uses_the_image_the_dockerfile_names(rendered):
    named = re.search(r"-t (\S+) \.", (DEPLOY / "Dockerfile").read_text()).group(1)
    images = {c["image"] for o in rendered for pod in validate._pod_specs(o) for c in validate._containers(pod)}
    assert images == {named}


# Shared libraries the slim base image has (Debian's essential packages: libc6, libgcc-s1,
# libstdc++6, zlib1g), by soname; the Dockerfile must apt-get install the package of any other.
SLIM_HAS = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1",
            "libresolv.so.2", "libgcc_s.so.1", "libstdc++.so.6", "libz.so.1"}
DEBIAN_PACKAGE = {"libgomp.so.1": "libgomp1"}


@pytest.mark.skipif(not shutil.which("ldd"), reason="needs ldd")
def test_the_image_installs_every_system_library_the_compiled_dependencies_load():
    import site

    site_packages = Path(next(p for p in site.getsitepackages() if p.endswith("site-packages")))
    libraries = [str(p) for p in site_packages.rglob("*.so*") if p.is_file()]
    system: dict[str, str] = {}
    for start in range(0, len(libraries), 200):
        out = subprocess.run(["ldd", *libraries[start:start + 200]], capture_output=True, text=True).stdout
        owner = ""
        for line in out.splitlines():
            if not line.startswith("\t"):
                owner = line.rstrip(":")
            elif "=>" in line:
                name, _, target = line.strip().partition(" => ")
                if target.startswith("not found"):
                    continue  # optional plugins (CUDA providers and the like) that nothing loads here
                if str(site_packages) not in target:
                    system.setdefault(name, owner)
    installed = " ".join(args for word, args in _dockerfile_instructions() if word == "RUN" and "apt-get" in args)
    missing = {name: owner for name, owner in system.items() if name not in SLIM_HAS
               and not (name in DEBIAN_PACKAGE and f" {DEBIAN_PACKAGE[name]}" in installed)}
    assert not missing, f"system libraries loaded by installed packages but not in the image: {missing}"
