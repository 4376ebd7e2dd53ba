"""docker/k8s: validated offline against the Kubernetes schemas (kubernetes-validate), and consistent."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import yaml

from tests.deploy.tools import DOCKERFILE, K8S, unavailable

# The oldest Kubernetes these manifests claim (docs/DEPLOY.md), and the newest the validator knows.
OLDEST = "1.29.0"


def _validator() -> Any:
    try:
        return importlib.import_module("kubernetes_validate")
    except ImportError:
        unavailable("kubernetes-validate is not installed (pip install kubernetes-validate; the test extra pins it)")


def _manifests() -> dict[str, list[dict[str, Any]]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = {}
    for name in kustomization["resources"]:
        docs[name] = [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    return docs


def _one(kind: str) -> dict[str, Any]:
    (found,) = [d for docs in _manifests().values() for d in docs if d["kind"] == kind]
    return found


def test_kustomization_lists_every_manifest() -> None:
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(_manifests()) == files
    kinds = sorted(d["kind"] for docs in _manifests().values() for d in docs)
    assert kinds == ["Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]


@pytest.mark.parametrize("version", [OLDEST, "latest"])
def test_manifests_validate_against_the_kubernetes_schemas(version: str) -> None:
    kv = _validator()
    version = kv.utils.latest_version() if version == "latest" else version
    for name, docs in _manifests().items():
        for doc in docs:
            kv.validate(doc, version, strict=True)  # raises on any error; strict: no unknown fields
            assert doc["metadata"]["name"] == "gradient-service", name


def test_the_validator_refuses_a_misspelled_field() -> None:
    kv = _validator()
    deployment = _one("Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["livenesProbe"] = container.pop("livenessProbe")
    with pytest.raises(kv.ValidationError):
        kv.validate(deployment, OLDEST, strict=True)


def _container() -> dict[str, Any]:
    (container,) = _one("Deployment")["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def test_probes_resources_and_security() -> None:
    pod = _one("Deployment")["spec"]["template"]["spec"]
    container = _container()
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}, kind
    assert pod["securityContext"]["runAsNonRoot"] is True
    # the image's numeric USER is the one Kubernetes runs
    user = next(line.split()[1] for line in DOCKERFILE.read_text().splitlines() if line.startswith("USER "))
    assert str(pod["securityContext"]["runAsUser"]) == user.split(":")[0]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]


def test_writable_emptydirs_for_tmp_and_the_metrics_dir() -> None:
    pod = _one("Deployment")["spec"]["template"]["spec"]
    container = _container()
    env = {e["name"]: e["value"] for e in container["env"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    metrics_dir = env["PROMETHEUS_MULTIPROC_DIR"]
    assert "emptyDir" in volumes[mounts[metrics_dir]]
    assert env["WEB_CONCURRENCY"].isdigit()
    assert env["GRADIENT_SERVICE_HOST"] == "0.0.0.0" and env["GRADIENT_SERVICE_PORT"] == "8000"


def test_the_data_dir_is_a_writable_emptydir_at_the_images_data_dir() -> None:
    """The attempts database of a pod (one per pod: several replicas need GRADIENT_SERVICE_REDIS_URL)."""
    pod = _one("Deployment")["spec"]["template"]["spec"]
    container = _container()
    env = {e["name"]: e["value"] for e in container["env"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    data_dir = env["GRADIENT_SERVICE_DATA_DIR"]
    assert f"GRADIENT_SERVICE_DATA_DIR={data_dir}" in DOCKERFILE.read_text()
    assert not mounts[data_dir].get("readOnly", False)
    assert "emptyDir" in volumes[mounts[data_dir]["name"]]
    assert pod["securityContext"]["fsGroup"] == 10001, "the volume is writable by the service's user"


def test_service_and_autoscaler_point_at_the_deployment() -> None:
    deployment, service, hpa, pdb = (
        _one(k) for k in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget")
    )
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gradient-service"}
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
    assert 1 <= pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
