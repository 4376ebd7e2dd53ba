"""docker/compose.yaml, checked without a compose engine: its structure, and the Compose spec."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from service.settings import Settings
from tests.deploy.tools import COMPOSE, DOCKER, NGINX_DIR, ROOT, interpolate, unavailable


def _compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The file as `docker compose` sees it: variables interpolated (defaults when env is empty)."""
    data = yaml.safe_load(interpolate(COMPOSE.read_text(), env))
    assert isinstance(data, dict)
    return data


def test_services_and_profiles() -> None:
    services = _compose()["services"]
    assert set(services) == {"api", "nginx", "redis"}
    assert "profiles" not in services["api"] and "profiles" not in services["nginx"], "started by a plain `up`"
    assert services["redis"]["profiles"] == ["redis"], "Redis is optional: `--profile redis`"


def test_api_is_built_from_the_dockerfile_and_replicated() -> None:
    api = _compose()["services"]["api"]
    assert (DOCKER / api["build"]["context"]).resolve() == ROOT
    assert (ROOT / api["build"]["dockerfile"]).resolve() == DOCKER / "Dockerfile"
    assert "container_name" not in api, "a fixed container name forbids replicas"
    assert "ports" not in api, "the replicas are reached through nginx only"
    assert [str(p) for p in api["expose"]] == ["8000"]
    assert int(api["deploy"]["replicas"]) == 2
    assert int(_compose({"GRADIENT_REPLICAS": "5"})["services"]["api"]["deploy"]["replicas"]) == 5
    assert str(api["stop_signal"]) == "SIGTERM"


def test_api_environment_covers_every_setting() -> None:
    env = _compose()["services"]["api"]["environment"]
    settings = {f"GRADIENT_SERVICE_{name.upper()}" for name in Settings.model_fields}
    missing = sorted(settings - set(env))
    assert not missing, f"add {missing} to docker/compose.yaml's api.environment (and to docs/DEPLOY.md's table)"
    assert {"WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR"} <= set(env)
    # fixed by the deployment: the address and port nginx and the health check use, the metrics dir
    assert env["GRADIENT_SERVICE_HOST"] == "0.0.0.0" and str(env["GRADIENT_SERVICE_PORT"]) == "8000"
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/"), "under the writable tmpfs"
    assert "/tmp" in _compose()["services"]["api"]["tmpfs"]
    # every other one is passed on from the environment of `docker compose` when set there
    # (a key without a value); otherwise the service's own default applies
    # and the trusted proxy: only nginx reaches the replicas, and it sets X-Forwarded-For itself
    assert env["GRADIENT_SERVICE_TRUSTED_PROXIES"] == '["*"]'
    fixed = {
        "GRADIENT_SERVICE_HOST",
        "GRADIENT_SERVICE_PORT",
        "GRADIENT_SERVICE_TRUSTED_PROXIES",
        "GRADIENT_SERVICE_DATA_DIR",
    }
    passed = set(env) - fixed - {"PROMETHEUS_MULTIPROC_DIR"}
    assert passed == settings - fixed | {"WEB_CONCURRENCY"}
    assert all(env[name] is None for name in passed), "no second copy of the service's defaults"


def test_the_data_dir_is_a_named_volume_shared_by_the_replicas() -> None:
    compose = _compose()
    api = compose["services"]["api"]
    data_dir = api["environment"]["GRADIENT_SERVICE_DATA_DIR"]
    assert f"GRADIENT_SERVICE_DATA_DIR={data_dir}" in DOCKER.joinpath("Dockerfile").read_text()
    (mount,) = [v for v in api["volumes"] if v["target"] == data_dir]
    assert mount["type"] == "volume" and not mount.get("read_only", False)
    assert mount["source"] in compose["volumes"], "a named volume: it outlives the containers"


def test_healthchecks_and_start_order() -> None:
    services = _compose()["services"]
    for name in ("api", "nginx", "redis"):
        check = services[name]["healthcheck"]
        assert check["test"][0] == "CMD" and check["interval"] and check["timeout"] and check["retries"] >= 1, name
    api_check = " ".join(services["api"]["healthcheck"]["test"])
    assert "curl" not in api_check and "/readyz" in api_check, "nginx waits for ready replicas"
    assert services["nginx"]["depends_on"]["api"]["condition"] == "service_healthy"


def test_nginx_mounts_the_config_read_only_and_is_published_as_documented() -> None:
    nginx = _compose()["services"]["nginx"]
    (mount,) = nginx["volumes"]
    assert mount["type"] == "bind" and mount["read_only"] is True
    assert (DOCKER / mount["source"]).resolve() == NGINX_DIR
    command = nginx["command"]
    conf = command[command.index("-c") + 1]
    assert conf == mount["target"] + "/nginx.conf"
    assert (NGINX_DIR / "nginx.conf").is_file() and (NGINX_DIR / "upstream-servers.conf").is_file()
    assert nginx["read_only"] is True and "/tmp" in nginx["tmpfs"]
    assert command[command.index("-p") + 1] == "/tmp/", "nginx writes its temporary files under the tmpfs"
    # published on loopback by default (DEPLOY.md), to the port nginx.conf listens on
    (port,) = nginx["ports"]
    assert port == "127.0.0.1:8000:8080"
    assert re.search(r"^\s*listen 8080;", (NGINX_DIR / "nginx.conf").read_text(), re.M)
    env = {"GRADIENT_PROXY_BIND": "0.0.0.0", "GRADIENT_PROXY_PORT": "80"}
    assert _compose(env)["services"]["nginx"]["ports"] == ["0.0.0.0:80:8080"]
    # nginx's upstream is the api service on the port the replicas listen on
    servers = (NGINX_DIR / "upstream-servers.conf").read_text()
    assert re.search(r"^server api:8000 resolve\b", servers, re.M)


def test_compose_file_follows_the_compose_spec() -> None:
    """The Compose specification's own rules (types, unknown keys), through the compose-spec package."""
    try:
        from compose_spec import PyCompose
    except ImportError:
        unavailable("the compose-spec package is not installed (pip install compose-spec; the test extra pins it)")
    parsed = PyCompose.from_yaml(interpolate(COMPOSE.read_text()))
    assert sorted(parsed.service_names()) == ["api", "nginx", "redis"]
    # the validator does refuse a mistake (so that the check above means something)
    with pytest.raises(ValueError, match="replicas"):
        PyCompose.from_yaml("services:\n  a:\n    image: x\n    deploy:\n      replicas: two\n")
    with pytest.raises(ValueError, match="helthcheck"):
        PyCompose.from_yaml("services:\n  a:\n    image: x\n    helthcheck:\n      test: [CMD, 'true']\n")
