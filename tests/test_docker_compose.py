"""`docker-compose.temporal.yml`: the production-shaped Temporal is wired consistently.

There is no Docker engine where these tests run, so the compose file is parsed
and checked, not run: every service a team needs is there, images are pinned,
and the worker, the admin tools, the server and the Web UI agree on addresses,
namespace, credentials and Stepped's search attributes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from stepped_temporal.search_attributes import SEARCH_ATTRIBUTES

COMPOSE_FILE = Path(__file__).resolve().parents[1] / "docker-compose.temporal.yml"
SERVICES = ("postgresql", "temporal", "temporal-admin-tools", "temporal-ui", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open(encoding="utf-8") as stream:
        loaded = yaml.safe_load(stream)
    assert isinstance(loaded, dict), f"{COMPOSE_FILE.name} is not a mapping"
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]  # type: ignore[no-any-return]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, from either the mapping or the `KEY=value` list form."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


def _text(value: str | list[str] | None) -> str:
    """A command, entrypoint or healthcheck test as one string, whatever its form."""
    if value is None:
        return ""
    return value if isinstance(value, str) else " ".join(str(part) for part in value)


def _published_ports(service: dict[str, Any]) -> dict[int, int]:
    """Host port -> container port, from the short (`[IP:]HOST:CONTAINER`) or long form."""
    published: dict[int, int] = {}
    for port in service.get("ports", []):
        if isinstance(port, dict):
            published[int(port["published"])] = int(port["target"])
            continue
        *_, host, container = str(port).split(":")
        if host.isdigit():
            published[int(host)] = int(container.split("/")[0])
    return published


def _host_and_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def _depends_on(service: dict[str, Any]) -> dict[str, str | None]:
    """Dependency -> condition (None for the plain list form)."""
    depends_on = service.get("depends_on") or {}
    if isinstance(depends_on, list):
        return dict.fromkeys(depends_on)
    return {name: (spec or {}).get("condition") for name, spec in depends_on.items()}


def _admin_tools_namespaces(services: dict[str, dict[str, Any]]) -> set[str]:
    command = _text(services["temporal-admin-tools"]["command"])
    return set(re.findall(r"--namespace[ =](\S+)", command))


def test_the_five_services_exist(services):
    """PostgreSQL, the server, the one-shot admin tools, the Web UI and a worker."""
    missing = [name for name in SERVICES if name not in services]
    assert missing == [], f"services missing from {COMPOSE_FILE.name}: {missing}"


def test_every_image_is_pinned_to_a_version(services):
    """No `latest`, no bare image name, no tag left to a variable: upgrades are deliberate."""
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name} has no image"
        repository_end = image.rsplit("/", 1)[-1]
        assert ":" in repository_end, f"{name}: image {image!r} has no tag"
        tag = repository_end.split(":", 1)[1]
        assert tag != "latest", f"{name}: image {image!r} is `latest`"
        assert "$" not in tag, f"{name}: image {image!r} takes its tag from a variable"
        assert re.search(r"\d", tag), f"{name}: tag {tag!r} names no version"


def test_postgresql_and_temporal_have_healthchecks(services):
    """Dependents wait for health, so both must say how it is measured."""
    for name in ("postgresql", "temporal"):
        healthcheck = services[name].get("healthcheck") or {}
        test = _text(healthcheck.get("test"))
        assert test, f"{name} has no healthcheck test"
        assert not healthcheck.get("disable"), f"{name}'s healthcheck is disabled"
        assert test.split()[0] != "NONE", f"{name}'s healthcheck is NONE"
    assert "pg_isready" in _text(services["postgresql"]["healthcheck"]["test"])
    assert "temporal:7233" in _text(services["temporal"]["healthcheck"]["test"])


def test_temporal_waits_for_postgresql_to_be_healthy(services):
    """auto-setup creates its schema on start, so PostgreSQL must accept connections first."""
    assert _depends_on(services["temporal"]).get("postgresql") == "service_healthy"


def test_temporal_uses_postgresql_with_its_credentials(services):
    """The server's POSTGRES_USER/POSTGRES_PWD are PostgreSQL's POSTGRES_USER/PASSWORD."""
    temporal = _environment(services["temporal"])
    postgresql = _environment(services["postgresql"])
    assert temporal["DB"] == "postgres12"
    assert temporal["POSTGRES_SEEDS"] == "postgresql"
    assert temporal["DB_PORT"] == "5432"
    assert temporal["POSTGRES_USER"] == postgresql["POSTGRES_USER"]
    assert temporal["POSTGRES_PWD"] == postgresql["POSTGRES_PASSWORD"]


def test_worker_runs_the_stepped_worker_command(services):
    """The worker installs the package with its postgresql extra and execs the worker.

    `exec` matters: it makes the worker the process that receives `docker stop`'s
    SIGTERM, so it shuts down gracefully within the grace period.
    """
    worker = services["worker"]
    command = _text(worker.get("entrypoint")) + " " + _text(worker["command"])
    assert "stepped-temporal worker --app" in command
    assert "exec stepped-temporal worker" in command
    assert re.search(r"pip install\b[^&;]*\[postgresql\]", command), command
    assert worker.get("stop_grace_period"), "the worker needs time to finish on SIGTERM"
    assert _depends_on(worker) == {
        "temporal": "service_healthy",
        "temporal-admin-tools": "service_completed_successfully",
    }


def test_worker_temporal_address_is_the_temporal_service(services):
    """TEMPORAL_ADDRESS names the temporal service and the port it publishes (7233)."""
    host, port = _host_and_port(_environment(services["worker"])["TEMPORAL_ADDRESS"])
    assert host == "temporal"
    assert host in services
    assert port == 7233
    assert port in _published_ports(services["temporal"]).values()


def test_worker_namespace_is_the_one_set_up(services):
    """The worker's namespace is the server's default one and the admin tools' one."""
    namespace = _environment(services["worker"])["TEMPORAL_NAMESPACE"]
    assert namespace == _environment(services["temporal"])["DEFAULT_NAMESPACE"]
    assert _admin_tools_namespaces(services) == {namespace}


def test_worker_database_url_is_the_postgresql_service(services):
    """STEPPED_DATABASE_URL: psycopg, the postgresql service, its user, password, database."""
    url = make_url(_environment(services["worker"])["STEPPED_DATABASE_URL"])
    postgresql = _environment(services["postgresql"])
    assert url.drivername == "postgresql+psycopg"
    assert url.host == "postgresql"
    assert url.port in (None, 5432)
    assert url.username == postgresql["POSTGRES_USER"]
    assert url.password == postgresql["POSTGRES_PASSWORD"]
    assert url.database == postgresql["POSTGRES_DB"]


def test_admin_tools_register_exactly_steppeds_search_attributes(services):
    """Every `--name X --type Y` pair, once each, equals SEARCH_ATTRIBUTES."""
    admin_tools = services["temporal-admin-tools"]
    command = _text(admin_tools["command"])
    pairs = re.findall(r"--name[ =](\S+)\s+--type[ =](\S+)", command)
    names = [name for name, _ in pairs]
    assert len(names) == len(set(names)), f"an attribute is registered twice: {names}"
    assert dict(pairs) == SEARCH_ATTRIBUTES
    assert command.count("search-attribute create") == len(SEARCH_ATTRIBUTES)
    host, port = _host_and_port(_environment(admin_tools)["TEMPORAL_ADDRESS"])
    assert (host, port) == ("temporal", 7233)
    assert _depends_on(admin_tools).get("temporal") == "service_healthy"
    assert admin_tools.get("restart") in ("no", "on-failure"), "a one-shot job must not loop"


def test_ui_talks_to_the_temporal_service(services):
    """The Web UI's TEMPORAL_ADDRESS is the worker's, the temporal service on 7233."""
    ui = services["temporal-ui"]
    address = _environment(ui)["TEMPORAL_ADDRESS"]
    assert address == _environment(services["worker"])["TEMPORAL_ADDRESS"]
    assert _host_and_port(address) == ("temporal", 7233)
    assert "temporal" in _depends_on(ui)


def test_named_volumes_are_declared(compose, services):
    """A named volume a service mounts must be declared under the top-level `volumes`."""
    declared = set(compose.get("volumes") or {})
    used: set[str] = set()
    for service in services.values():
        for volume in service.get("volumes", []):
            if isinstance(volume, dict):
                if volume.get("type", "volume") == "volume" and volume.get("source"):
                    used.add(volume["source"])
                continue
            source = str(volume).split(":", 1)[0]
            if ":" in str(volume) and not source.startswith((".", "/", "~", "$")):
                used.add(source)
    assert used, "PostgreSQL's data should live in a named volume"
    assert used <= declared, f"undeclared volumes: {sorted(used - declared)}"
    postgresql_volumes = [str(v) for v in services["postgresql"].get("volumes", [])]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgresql_volumes)


def test_grpc_and_web_ui_ports_are_published(services):
    """gRPC on localhost:7233 and the Web UI on http://localhost:8080."""
    assert _published_ports(services["temporal"]).get(7233) == 7233
    assert _published_ports(services["temporal-ui"]).get(8080) == 8080


def test_dollar_signs_are_compose_variables_or_escaped():
    """Compose interpolates `$`: shell variables must be written `$$`, compose ones `${...}`."""
    lines = COMPOSE_FILE.read_text(encoding="utf-8").splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    bare = [match.group(0) for match in re.finditer(r"\$(?!\{)\S*", text.replace("$$", ""))]
    assert bare == [], f"unescaped `$` that compose would interpolate: {bare}"
