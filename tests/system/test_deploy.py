"""The recipes in deploy/docker and deploy/kubernetes: the Dockerfiles are minimal and
correct, the compose file and the manifests agree with them and with the CLI, and every
manifest validates against the Kubernetes API schemas and the dask-kubernetes CRDs.

The schema checks need the ``deploy`` extra (``pip install dasksom[deploy]``) and skip
without it."""

import copy
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest
import yaml

from dasksom.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
KUBE = ROOT / "deploy" / "kubernetes"
DOCKERFILES = ["Dockerfile", "Dockerfile.gpu"]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"dasksom:{VERSION}"
OPERATOR_API = "kubernetes.dask.org/v1"
DEPLOY_EXTRA = "needs the deploy extra: pip install 'dasksom[deploy]'"

pytestmark = pytest.mark.deploy


def instructions(name: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of a Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DOCKER / name).read_text())
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1] if len(pair) > 1 else "") for pair in pairs]


def arguments(name: str, instruction: str) -> list[str]:
    return [args for instr, args in instructions(name) if instr == instruction]


def manifests() -> list[tuple[str, dict]]:
    """Every Kubernetes object in deploy/kubernetes, with its file name."""
    return [
        (path.name, doc)
        for path in sorted(KUBE.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def objects(kind: str) -> list[dict]:
    return [doc for _, doc in manifests() if doc["kind"] == kind]


def pod_specs() -> list[dict]:
    """Every pod spec of the manifests: the CronJob's and the operator resources'."""
    specs = [job["spec"]["jobTemplate"]["spec"]["template"]["spec"] for job in objects("CronJob")]
    for cluster in objects("DaskCluster") + [job["spec"]["cluster"] for job in objects("DaskJob")]:
        specs += [cluster["spec"]["worker"]["spec"], cluster["spec"]["scheduler"]["spec"]]
    return specs + [job["spec"]["job"]["spec"] for job in objects("DaskJob")]


def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def with_defaults(text: str) -> str:
    """Compose's ``${NAME:-default}`` replaced by its default."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)


def check_train_command(argv: list[str]) -> None:
    """``argv`` (after ``dasksom``) is a valid ``dasksom train`` command line."""
    assert argv[0] == "train"
    args = build_parser().parse_args(argv)
    assert args.command == "train"


# --- Dockerfiles --------------------------------------------------------------------------


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_base_is_pinned_to_a_version(name):
    (base,) = arguments(name, "FROM")
    image, _, tag = base.split()[0].partition(":")
    assert tag and tag != "latest" and re.match(r"\d+\.\d+\.\d+", tag), base
    assert image in ("python", "nvidia/cuda")


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_installs_dasksom_from_the_source(name):
    copied = " ".join(arguments(name, "COPY"))
    for needed in ("pyproject.toml", "README.md", "dasksom"):
        assert needed in copied
    extra = "[gpu]" if name.endswith(".gpu") else ""
    assert any(f"pip install --no-cache-dir .{extra}" in run for run in arguments(name, "RUN"))


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_runs_as_a_non_root_user(name):
    user = arguments(name, "USER")[-1].split(":")[0]
    assert user not in ("root", "0")
    assert any(f"useradd --uid {user}" in run for run in arguments(name, "RUN"))


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_entrypoint_is_the_cli(name):
    assert json.loads(arguments(name, "ENTRYPOINT")[-1]) == ["dasksom"]
    assert "8786" in arguments(name, "EXPOSE")[-1].split()


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerignore_lets_the_copied_files_in(name):
    ignore = (DOCKER / f"{name}.dockerignore").read_text().splitlines()
    assert "*" in ignore
    for source in ("pyproject.toml", "README.md", "dasksom/"):
        assert f"!{source}" in ignore


def test_dockerfiles_pass_hadolint():
    hadolint = shutil.which("hadolint") or shutil.which(
        "hadolint", path=Path(sys.executable).parent
    )
    if hadolint is None:
        pytest.skip(f"hadolint is not installed; {DEPLOY_EXTRA}")
    paths = [str(DOCKER / name) for name in DOCKERFILES]
    done = subprocess.run([hadolint, *paths], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


# --- compose ------------------------------------------------------------------------------


def test_compose_runs_one_image_for_every_service():
    services = compose()["services"]
    assert set(services) == {"scheduler", "worker", "trainer"}
    for service in services.values():
        assert service["image"] == IMAGE
        build = service["build"]
        assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"


def test_compose_has_two_workers_of_its_scheduler():
    services = compose()["services"]
    assert services["scheduler"]["entrypoint"] == ["dask", "scheduler"]
    assert "8786" in services["scheduler"]["command"]
    worker = services["worker"]
    assert worker["entrypoint"] == ["dask", "worker"]
    assert worker["command"][0] == "tcp://scheduler:8786"
    assert worker["deploy"]["replicas"] == 2


def test_compose_trainer_trains_against_the_scheduler_on_the_shared_volume():
    services = compose()["services"]
    trainer = services["trainer"]
    argv = [with_defaults(arg) for arg in trainer["command"]]
    check_train_command(argv)
    assert argv[argv.index("--scheduler-address") + 1] == "tcp://scheduler:8786"
    data_volume = with_defaults(trainer["volumes"][0])
    source, target = data_volume.split(":")[:2]
    assert with_defaults(services["worker"]["volumes"][0]) == f"{source}:{target}:ro"
    assert argv[1].startswith(f"{target}/") and argv[argv.index("--output") + 1].startswith(target)
    assert trainer["depends_on"]["worker"]["condition"] == "service_healthy"


# --- Kubernetes: consistency --------------------------------------------------------------


def test_the_single_job_manifest_is_replaced():
    assert not (ROOT / "deploy" / "kubernetes-job.yaml").exists()
    kinds = sorted(doc["kind"] for _, doc in manifests())
    assert kinds == [
        "CronJob",
        "DaskCluster",
        "DaskJob",
        "PersistentVolumeClaim",
        "PersistentVolumeClaim",
    ]


def test_every_container_runs_the_image_as_non_root():
    for spec in pod_specs():
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 10001
        for container in spec["containers"]:
            assert container["image"] == IMAGE
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_every_claim_used_is_defined():
    claims = {pvc["metadata"]["name"] for pvc in objects("PersistentVolumeClaim")}
    for spec in pod_specs():
        for volume in spec.get("volumes", []):
            assert volume["persistentVolumeClaim"]["claimName"] in claims


def test_operator_services_select_their_own_scheduler():
    clusters = [(c["metadata"]["name"], c["spec"]) for c in objects("DaskCluster")]
    clusters += [(j["metadata"]["name"], j["spec"]["cluster"]["spec"]) for j in objects("DaskJob")]
    for name, spec in clusters:
        selector = spec["scheduler"]["service"]["selector"]
        assert selector == {"dask.org/cluster-name": name, "dask.org/component": "scheduler"}


def test_daskjob_trains_against_the_operator_scheduler():
    (job,) = objects("DaskJob")
    (container,) = job["spec"]["job"]["spec"]["containers"]
    assert container["command"][0] == "dasksom"
    check_train_command(container["command"][1:])
    assert "--scheduler-address=$(DASK_SCHEDULER_ADDRESS)" in container["command"]


def test_cronjob_retrains_nightly_one_at_a_time_against_the_cluster():
    (cron,) = objects("CronJob")
    (cluster,) = objects("DaskCluster")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    script = container["args"][0]
    assert f"tcp://{cluster['metadata']['name']}-scheduler:8786" in script
    argv = shlex.split(script.split("exec dasksom ", 1)[1])
    check_train_command(argv)


def test_cronjob_names_the_output_after_the_scheduled_night(tmp_path):
    """Run the CronJob's shell line with a stand-in ``dasksom`` that prints its arguments."""
    (cron,) = objects("CronJob")
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    fake = tmp_path / "dasksom"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    # The CronJob controller names each Job after its scheduled time, in minutes since 1970.
    night = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
    job_name = f"{cron['metadata']['name']}-{int(night.timestamp()) // 60}"
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "JOB_NAME": job_name}
    done = subprocess.run(
        [*container["command"], *container["args"]], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "--output=/results/nightly/2026-03-04" in done.stdout.splitlines()
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/results" in mounts


# --- Kubernetes: schemas ------------------------------------------------------------------


def test_builtin_kinds_validate_against_the_kubernetes_schemas():
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason=DEPLOY_EXTRA)
    version = kubernetes_validate.utils.latest_version()
    checked = 0
    for _, doc in manifests():
        if doc["apiVersion"] != OPERATOR_API:
            kubernetes_validate.validate(doc, version, strict=True)
            checked += 1
    assert checked == 3


def test_operator_pod_specs_validate_against_the_kubernetes_schemas():
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason=DEPLOY_EXTRA)
    version = kubernetes_validate.utils.latest_version()
    for spec in pod_specs():
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": spec}
        kubernetes_validate.validate(pod, version, strict=True)


def strict(schema: dict) -> dict:
    """The CRD schema, refusing fields it does not name (the API server would drop them)."""
    schema = copy.deepcopy(schema)
    stack = [schema]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            stack.extend(node if isinstance(node, list) else [])
            continue
        if "properties" in node and "additionalProperties" not in node:
            if not node.get("x-kubernetes-preserve-unknown-fields"):
                node["additionalProperties"] = False
        stack.extend(node.values())
    return schema


def crd_schema(kind: str) -> dict:
    pytest.importorskip("dask_kubernetes", reason=DEPLOY_EXTRA)
    crds = resources.files("dask_kubernetes").joinpath(
        "operator", "deployment", "helm", "dask-kubernetes-operator", "crds"
    )
    path = crds.joinpath(f"{kind.lower()}.yaml")
    if not path.is_file():
        pytest.skip(f"this dask-kubernetes ships no CRD for {kind} at {path}")
    crd = yaml.safe_load(path.read_text())
    assert crd["spec"]["names"]["kind"] == kind
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == OPERATOR_API.split("/")[1]]
    return strict(version["schema"]["openAPIV3Schema"])


@pytest.mark.parametrize("kind", ["DaskCluster", "DaskJob"])
def test_operator_resources_validate_against_the_crds(kind):
    jsonschema = pytest.importorskip("jsonschema", reason=DEPLOY_EXTRA)
    schema = crd_schema(kind)
    for doc in objects(kind):
        assert doc["apiVersion"] == OPERATOR_API
        body = {key: value for key, value in doc.items() if key == "spec"}
        jsonschema.validate(body, schema)


def test_crd_check_catches_a_misspelt_field():
    jsonschema = pytest.importorskip("jsonschema", reason=DEPLOY_EXTRA)
    (cluster,) = objects("DaskCluster")
    cluster["spec"]["worker"]["replica"] = cluster["spec"]["worker"].pop("replicas")
    with pytest.raises(jsonschema.ValidationError, match="replica"):
        jsonschema.validate({"spec": cluster["spec"]}, crd_schema("DaskCluster"))


def test_cron_example_refers_to_existing_recipes():
    text = (ROOT / "deploy" / "cron.example").read_text()
    for path in re.findall(r"deploy/[\w./-]+", text):
        assert (ROOT / path).exists(), path
    assert "kubernetes-job.yaml" not in text
