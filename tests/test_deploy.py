"""deploy/: every file validated offline, and every process it describes run here against the real PostgreSQL.

There is no container engine or cluster on this machine, so what each file says is read out of it (the
Dockerfile's ENTRYPOINT, CMD and HEALTHCHECK; the compose services' commands, environment, env files,
health checks and replicas; the rendered Kubernetes containers' args, env, ConfigMap and probes; the
systemd units' ExecStart, Environment, EnvironmentFile, Type and WatchdogSec) and run as local processes:
the `schemalog` of the image is this virtual environment's, the store URL is the test's database (the
files name a `postgres` host), each port a file names is mapped to a free one here, and a Secret's values
are stand-ins (the server trusts local connections). Nothing the files say is restated here.

Validation: `kubectl kustomize` renders the base and the example overlay; kubernetes-validate checks every
built-in kind against the Kubernetes 1.32 API schemas (strict: unknown fields refused); the ServiceMonitor
is checked against the prometheus-operator CRD's own openAPIV3Schema (vendored in
tests/fixtures/prometheus-operator, Apache-2.0), made strict the same way; the compose file against the
compose specification's schema (check-jsonschema's vendored copy); the units with `systemd-analyze verify`
on temporary copies whose ExecStart and EnvironmentFile point at this machine's files.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from events.store import open_store
from events.store.base import STORE_SCHEMA
from tests.deploy_harness import ROOT, VENV_BIN, NotifySocket, Proc, free_port, get, wait_http
from tests.servers import IN_CI, postgres_database_url

DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.32.0"
"""The Kubernetes API validated against (kubectl here is 1.32)."""
SERVICEMONITOR_CRD = ROOT / "tests/fixtures/prometheus-operator/monitoring.coreos.com_servicemonitors.yaml"
STOPPED = (0, -signal.SIGTERM)
"""A clean stop: serve ends by the SIGTERM uvicorn re-raises once it has shut down, the daemon with 0."""


def tool(name: str) -> str:
    found = shutil.which(name) or (str(VENV_BIN / name) if (VENV_BIN / name).exists() else None)
    if found is None:
        if IN_CI:
            pytest.fail(f"{name} is not installed (CI=true: the deploy checks need it)")
        pytest.skip(f"{name} is not installed")
    return found


# --------------------------------------------------------------------------- reading the files


def dockerfile() -> dict[str, Any]:
    """The Dockerfile's instructions of its final stage: ENTRYPOINT, CMD, HEALTHCHECK (its command), USER,
    LABEL and ARG (name -> default)."""
    text = (DEPLOY / "image/Dockerfile").read_text()
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    final: dict[str, Any] = {"ARG": {}, "LABEL": {}}
    for line in logical:
        word, _, rest = line.strip().partition(" ")
        word = word.upper()
        if word == "FROM":
            final = {"ARG": {}, "LABEL": {}}  # a new stage: what counts is the last one's
        elif word in ("ENTRYPOINT", "CMD", "USER", "EXPOSE"):
            final[word] = json.loads(rest) if rest.lstrip().startswith("[") else rest.strip()
        elif word == "HEALTHCHECK":
            final[word] = json.loads(rest[rest.index("CMD ") + 4 :])
        elif word == "ARG":
            name, _, default = rest.strip().partition("=")
            final["ARG"][name] = default
        elif word == "LABEL":
            for key, value in re.findall(r'(\S+?)="([^"]*)"', rest):
                final["LABEL"][key] = value
    return final


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose/compose.yaml").read_text())
    return loaded


def env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def kustomize(folder: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [tool("kubectl"), "kustomize", str(folder)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file: section -> key -> every value given (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def seconds(value: str) -> float:
    """A systemd time span as the units here write it: ``30``, ``30s``, ``2min``."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|sec|min|ms)?", value)
    assert match, f"a time span this test reads: {value!r}"
    number, suffix = float(match[1]), match[2] or "s"
    return number * {"s": 1, "sec": 1, "min": 60, "ms": 0.001}[suffix]


# --------------------------------------------------------------------------- running what they say


class Ports:
    """Each port a file names, mapped to a free one here (the files' ports may be taken on this machine)."""

    def __init__(self) -> None:
        self.map: dict[int, int] = {}

    def argv(self, args: list[str]) -> list[str]:
        """``args`` with the value of each ``--...port`` option mapped (a fresh port each time it is met)."""
        out = list(args)
        for i, arg in enumerate(out[:-1]):
            if arg.startswith("--") and arg.endswith("port"):
                mapped = free_port()
                self.map[int(out[i + 1])] = mapped
                out[i + 1] = str(mapped)
        return out

    def url(self, url: str) -> str:
        parts = urlsplit(url)
        assert parts.port in self.map, f"{url}: no process here listens on the port it names ({self.map})"
        return parts._replace(netloc=f"{parts.hostname}:{self.map[parts.port]}").geturl()


def schemalog(argv: list[str]) -> list[str]:
    """The image's command with this environment's schemalog for the image's."""
    assert argv and Path(argv[0]).name == "schemalog", f"not the schemalog command: {argv}"
    return [str(VENV_BIN / "schemalog"), *argv[1:]]


def environment(given: dict[str, str], store: str, tmp_path: Path) -> dict[str, str]:
    """A process's environment: what the file gives it, with the store URL the test's database (the file's
    must name no password: it comes from PGPASSWORD, a secret)."""
    assert "SCHEMALOG_STORE" in given, f"the file gives no SCHEMALOG_STORE: {sorted(given)}"
    named = urlsplit(given["SCHEMALOG_STORE"])
    assert named.scheme == "postgresql" and named.password is None, given["SCHEMALOG_STORE"]
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        **given,
        "SCHEMALOG_STORE": store,
        "SCHEMALOG_LOG_FORMAT": "json",  # (the image's ENV; the units' Environment= says it too)
    }


def healthcheck(command: list[str], ports: Ports) -> tuple[list[str], str]:
    """A compose/Dockerfile health check (``CMD python -c SCRIPT URL``) to run here, and the URL it probes."""
    if command[0] == "CMD":
        command = command[1:]
    assert command[:2] == ["python", "-c"], command
    url = ports.url(command[-1])
    return [sys.executable, *command[1:-1], url], url


def run_check(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, (argv, done.stderr)


def store_made(url: str) -> int:
    async def go() -> int:
        store = await open_store(url, create=False)
        try:
            return store.schema_version
        finally:
            await store.close()

    return asyncio.run(go())


@pytest.fixture
def store_url() -> Iterator[str]:
    with postgres_database_url() as url:
        yield url


def stop_all(procs: list[Proc]) -> dict[str, int]:
    for p in procs:
        p.terminate()
    return {f"{p.name}#{i}": p.stop() for i, p in enumerate(procs)}


# --------------------------------------------------------------------------- validation


def strict(schema: Any) -> Any:
    """A CRD's structural schema with unknown fields refused (as kubectl's strict validation does)."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def servicemonitor_schema() -> dict[str, Any]:
    crd = yaml.safe_load(SERVICEMONITOR_CRD.read_text())
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema: dict[str, Any] = strict(v1["schema"]["openAPIV3Schema"])
    return schema


def validate_k8s(doc: dict[str, Any]) -> None:
    import kubernetes_validate

    if doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["kind"] == "ServiceMonitor":
        jsonschema.validate(doc, servicemonitor_schema())
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("folder", ["base", "overlays/example"])
def test_kubernetes_files_render_and_validate(folder: str) -> None:
    docs = kustomize(DEPLOY / "k8s" / folder)
    for doc in docs:
        validate_k8s(doc)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert {n: d["spec"]["replicas"] for n, d in deployments.items()} == {"schemalog-serve": 2, "schemalog-daemon": 3}
    assert any(k == "Job" for k, _ in kinds) and any(k == "PodDisruptionBudget" for k, _ in kinds)
    # every pod: non-root, read-only root, no privilege escalation, requests and limits, probes on its ports
    for doc in docs:
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, c["name"]
            assert c["resources"]["requests"] and c["resources"]["limits"], c["name"]
            if doc["kind"] == "Deployment":
                names = {p["name"] for p in c["ports"]}
                for probe in ("livenessProbe", "readinessProbe"):
                    assert c[probe]["httpGet"]["port"] in names, (c["name"], probe)
    # the ServiceMonitor finds a Service whose named port exists
    (monitor,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
    services = [
        s
        for s in docs
        if s["kind"] == "Service"
        and all(s["metadata"]["labels"].get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
    ]
    assert services, "the ServiceMonitor selects no Service"
    ports = {p["name"] for s in services for p in s["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports


def test_the_validators_refuse_what_is_wrong() -> None:
    """The checks above can fail: a typo, a wrong type, a field no schema has."""
    import kubernetes_validate

    docs = kustomize(DEPLOY / "k8s/base")
    deployment = copy.deepcopy(next(d for d in docs if d["kind"] == "Deployment"))
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_k8s(deployment)
    deployment = copy.deepcopy(next(d for d in docs if d["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_k8s(deployment)
    monitor = copy.deepcopy(next(d for d in docs if d["kind"] == "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(jsonschema.ValidationError):
        validate_k8s(monitor)
    monitor["spec"]["endpoints"] = "metrics"
    with pytest.raises(jsonschema.ValidationError):
        validate_k8s(monitor)


def test_compose_file_validates(tmp_path: Path) -> None:
    checker = tool("check-jsonschema")
    command = [checker, "--builtin-schema", "vendor.compose-spec"]
    done = subprocess.run([*command, str(DEPLOY / "compose/compose.yaml")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = compose()
    broken["services"]["serve"]["healthcheck"]["intervall"] = "10s"
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(broken))
    done = subprocess.run([*command, str(tmp_path / "compose.yaml")], capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "intervall" in done.stdout + done.stderr


def local_units(tmp_path: Path, env: Path) -> list[Path]:
    """Copies of the units whose ExecStart runs this environment's schemalog and whose EnvironmentFile is
    ``env`` (systemd-analyze checks that both exist); everything else as committed."""
    copies = []
    for path in sorted((DEPLOY / "systemd").glob("*.service")):
        sections = unit(path)
        (binary,) = {shlex.split(v)[0] for v in sections["Service"]["ExecStart"]}
        (given,) = sections["Service"]["EnvironmentFile"]
        text = path.read_text().replace(binary, str(VENV_BIN / "schemalog")).replace(given, str(env))
        copy_path = tmp_path / path.name
        copy_path.write_text(text)
        copies.append(copy_path)
    return copies


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    env = tmp_path / "schemalog.env"
    shutil.copy(DEPLOY / "systemd/schemalog.env.example", env)
    copies = local_units(tmp_path, env)
    assert {p.name for p in copies} == {"schemalog-serve.service", "schemalog-daemon.service"}
    done = subprocess.run([analyze, "verify", "--man=no", *map(str, copies)], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr.strip() and not done.stdout.strip(), done.stdout + done.stderr
    for path in copies:  # the committed units' own choices: notify with a watchdog, hardened, their own user
        service = unit(path)["Service"]
        assert service["Type"] == ["notify"] and seconds(service["WatchdogSec"][0]) > 0
        assert service["NoNewPrivileges"] == ["yes"] and service["ProtectSystem"] == ["strict"]
        assert service.get("DynamicUser") == ["yes"] or service.get("User")
    # and the check can fail: a misspelt value is reported
    broken = tmp_path / "broken.service"
    broken.write_text(copies[0].read_text().replace("Type=notify", "Type=notifyy"))
    done = subprocess.run([analyze, "verify", "--man=no", str(broken)], capture_output=True, text=True)
    assert "notifyy" in done.stderr


# --------------------------------------------------------------------------- running the processes


def test_the_image_labels_its_version_and_its_default_command_runs(store_url: str, tmp_path: Path) -> None:
    image = dockerfile()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert image["ARG"]["VERSION"] == version and image["LABEL"]["org.opencontainers.image.version"] == "${VERSION}"
    assert re.fullmatch(r"\d+(:\d+)?", image["USER"]), "a fixed numeric UID"
    ports = Ports()
    argv = schemalog(image["ENTRYPOINT"] + ports.argv(image["CMD"]))
    env = environment({"SCHEMALOG_STORE": "postgresql://schemalog@postgres:5432/schemalog"}, store_url, tmp_path)
    init = subprocess.run(schemalog([*image["ENTRYPOINT"], "init"]), env=env, capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    serve = Proc("image", argv, env, tmp_path)
    try:
        check, url = healthcheck(image["HEALTHCHECK"], ports)
        wait_http(url, serve)
        run_check(check)
    finally:
        assert serve.stop() in STOPPED


def test_compose_services_run(store_url: str, tmp_path: Path) -> None:
    spec = compose()
    image = dockerfile()
    services = spec["services"]
    ours = {name: s for name, s in services.items() if "build" in s}
    others = set(services) - set(ours)
    assert {services[n]["image"].split(":")[0] for n in others} == {"postgres"}  # the log's server: ours here
    # start in depends_on order: a one-shot (service_completed_successfully) runs to its end first
    order: list[str] = []
    while len(order) < len(ours):
        ready = [
            name
            for name, s in ours.items()
            if name not in order and all(dep in order or dep in others for dep in s.get("depends_on", {}))
        ]
        assert ready, f"a depends_on cycle among {set(ours) - set(order)}"
        order += ready
    replicas = {name: s.get("deploy", {}).get("replicas", 1) for name, s in ours.items()}
    procs: list[Proc] = []
    try:
        for name in order:
            s = ours[name]
            assert s["build"]["dockerfile"] == "deploy/image/Dockerfile"
            given = {}
            for entry in s.get("env_file", []):
                path = entry["path"] if isinstance(entry, dict) else entry
                given |= env_file(DEPLOY / "compose" / (path + ".example"))  # the real one is never committed
            given |= {k: str(v) for k, v in (s.get("environment") or {}).items()}
            env = environment(given, store_url, tmp_path)
            one_shot = any(
                t.get("depends_on", {}).get(name, {}).get("condition") == "service_completed_successfully"
                for t in ours.values()
            )
            if one_shot:
                replicas.pop(name)
            for replica in range(replicas.get(name, 1)):
                ports = Ports()
                argv = schemalog(s.get("entrypoint", image["ENTRYPOINT"]) + ports.argv(s["command"]))
                proc = Proc(f"{name}{replica}", argv, env, tmp_path)
                if one_shot:
                    assert proc.wait_exit(60) == 0, proc.tail()
                    assert store_made(store_url) == STORE_SCHEMA
                    continue
                procs.append(proc)
                check, url = healthcheck(s["healthcheck"]["test"], ports)
                wait_http(url, proc)
                run_check(check)
        assert len(procs) == sum(replicas.values()) and max(replicas.values()) >= 2, (replicas, procs)
    finally:
        codes = stop_all(procs)
    assert all(code in STOPPED for code in codes.values()), codes


def container_env(container: dict[str, Any], configmaps: dict[str, dict[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env |= configmaps[source["configMapRef"]["name"]]
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "configMapKeyRef" in item["valueFrom"]:
            ref = item["valueFrom"]["configMapKeyRef"]
            env[item["name"]] = configmaps[ref["name"]][ref["key"]]
        else:  # a Secret's key: a stand-in (the test server trusts local connections)
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = f"stand-in for {ref['name']}/{ref['key']}"
    return env


def test_kubernetes_containers_run(store_url: str, tmp_path: Path) -> None:
    docs = kustomize(DEPLOY / "k8s/overlays/example")
    image = dockerfile()
    configmaps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}

    def argv_of(container: dict[str, Any], ports: Ports) -> list[str]:
        assert container["image"].rsplit("/", 1)[-1].startswith("schemalog")
        return schemalog(container.get("command", image["ENTRYPOINT"]) + ports.argv(container.get("args", [])))

    # the init Job first: it makes the store
    (job,) = [d for d in docs if d["kind"] == "Job"]
    (init,) = job["spec"]["template"]["spec"]["containers"]
    proc = Proc(
        "init-job", argv_of(init, Ports()), environment(container_env(init, configmaps), store_url, tmp_path), tmp_path
    )
    assert proc.wait_exit(60) == 0, proc.tail()
    assert store_made(store_url) == STORE_SCHEMA
    # then one pod of each Deployment: every probe answers on the path and port the manifest names
    procs: list[Proc] = []
    try:
        for deployment in (d for d in docs if d["kind"] == "Deployment"):
            for container in deployment["spec"]["template"]["spec"]["containers"]:
                ports = Ports()
                argv = argv_of(container, ports)
                env = environment(container_env(container, configmaps), store_url, tmp_path)
                proc = Proc(deployment["metadata"]["name"], argv, env, tmp_path)
                procs.append(proc)
                named = {p["name"]: p["containerPort"] for p in container["ports"]}
                probes = [container[k]["httpGet"] for k in ("startupProbe", "livenessProbe", "readinessProbe")]
                assert len(probes) == 3
                for probe in probes:
                    port = named.get(probe["port"], probe["port"])
                    wait_http(ports.url(f"http://127.0.0.1:{port}{probe['path']}"), proc)
        if any(p.name == "schemalog-daemon" for p in procs):  # the daemon's /metrics, which the ServiceMonitor scrapes
            (monitor,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
            daemon = next(p for p in procs if p.name == "schemalog-daemon")
            metrics_port = int(daemon.argv[daemon.argv.index("--metrics-port") + 1])
            status, body = get(f"http://127.0.0.1:{metrics_port}{monitor['spec']['endpoints'][0]['path']}")
            assert status == 200 and "schemalog_daemon_live_replicas" in body
        deployments = [d for d in docs if d["kind"] == "Deployment"]
        assert len(procs) == sum(len(d["spec"]["template"]["spec"]["containers"]) for d in deployments) >= 2
    finally:
        codes = stop_all(procs)
    assert all(code in STOPPED for code in codes.values()), codes


@pytest.mark.parametrize("name", ["schemalog-serve.service", "schemalog-daemon.service"])
def test_systemd_units_run_and_feed_the_watchdog(name: str, store_url: str, tmp_path: Path) -> None:
    """ExecStart run as systemd would: the unit's environment, NOTIFY_SOCKET (a path for one unit, an
    abstract name for the other), WATCHDOG_USEC from WatchdogSec; READY=1 comes, then WATCHDOG=1."""
    env_path = tmp_path / "schemalog.env"
    shutil.copy(DEPLOY / "systemd/schemalog.env.example", env_path)
    (path,) = [p for p in local_units(tmp_path, env_path) if p.name == name]
    service = unit(path)["Service"]
    assert service["Type"] == ["notify"]
    given = env_file(env_path)
    for line in service.get("Environment", []):
        for assignment in shlex.split(line):
            key, _, value = assignment.partition("=")
            given[key] = value
    address = str(tmp_path / "notify") if "serve" in name else f"@schemalog-test-{os.getpid()}-{name}"
    notify = NotifySocket(address)
    env = environment(given, store_url, tmp_path)
    env |= {"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": str(int(seconds(service["WatchdogSec"][0]) * 1e6))}
    assert subprocess.run([str(VENV_BIN / "schemalog"), "init"], env=env, capture_output=True).returncode == 0
    (exec_start,) = service["ExecStart"]
    ports = Ports()
    argv = shlex.split(exec_start)
    proc = Proc(name, [argv[0], *ports.argv(argv[1:])], env, tmp_path)
    try:
        notify.wait_for("READY=1", 30)
        notify.wait_for("WATCHDOG=1", 30, after="READY=1")
        (port,) = ports.map
        wait_http(ports.url(f"http://127.0.0.1:{port}/readyz"), proc)
    finally:
        code = proc.stop()
        notify.close()
    assert code in STOPPED, proc.tail()


# --------------------------------------------------------------------------- service/sdnotify.py


def test_sd_notify_sends_to_a_path_or_an_abstract_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from service import sdnotify

    for address in (str(tmp_path / "n"), f"@schemalog-test-{os.getpid()}"):
        listener = NotifySocket(address)
        try:
            monkeypatch.setenv("NOTIFY_SOCKET", address)
            assert sdnotify.notify("READY=1", "STATUS=up")
            listener.wait_for("STATUS=up", 5, after="READY=1")
        finally:
            listener.close()
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert sdnotify.notify("READY=1") is False  # logged, never raised
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert sdnotify.notify("READY=1") is False


def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process() -> None:
    from service import sdnotify

    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None  # another's
    assert sdnotify.watchdog_interval({}) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "soon"}) is None


async def test_the_watchdog_pings_while_healthy_and_withholds_when_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service import sdnotify

    listener = NotifySocket(str(tmp_path / "n"))
    monkeypatch.setenv("NOTIFY_SOCKET", listener.address)
    health = {"ok": True}
    checked = asyncio.Event()

    async def healthy() -> bool:
        checked.set()
        if health["ok"] is None:
            raise OSError("the store is gone")
        return bool(health["ok"])

    task = asyncio.create_task(sdnotify.watchdog(healthy, 0.02))
    try:
        await asyncio.to_thread(listener.wait_for, "WATCHDOG=1", 5)
        while listener.messages.count("WATCHDOG=1") < 3:  # again and again, at the interval
            await asyncio.sleep(0.01)
        for state in (False, None):  # unhealthy, or the check itself failing: no ping
            health["ok"] = state
            checked.clear()
            await asyncio.wait_for(checked.wait(), 5)  # a round that began unhealthy...
            checked.clear()
            await asyncio.wait_for(checked.wait(), 5)  # ... has ended by the next check
            before = listener.messages.count("WATCHDOG=1")
            checked.clear()
            await asyncio.wait_for(checked.wait(), 5)
            assert listener.messages.count("WATCHDOG=1") == before
    finally:
        task.cancel()
        listener.close()


# --------------------------------------------------------------------------- docs/OPERATIONS.md: back up, restore


def test_a_pg_dump_backup_restores_and_verifies(tmp_path: Path) -> None:
    """The backup and restore of docs/OPERATIONS.md: pg_dump --format=custom, pg_restore --no-owner into an
    empty database, then verify and verify --checkpoints pass on the restored log, and its guards hold."""
    pg_dump, pg_restore = tool("pg_dump"), tool("pg_restore")
    env = {**os.environ, "SCHEMALOG_SNAPSHOT_KEY": "k", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    cli = str(VENV_BIN / "schemalog")

    def run(*args: str, store: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([cli, "--store", store, *args], env=env, capture_output=True, text=True, cwd=tmp_path)

    changeset = ROOT / "examples/first-changeset.json"
    with postgres_database_url() as source, postgres_database_url() as restored:
        assert run("init", store=source).returncode == 0
        assert run("append", "--actor", "ops", str(changeset), store=source).returncode == 0
        assert run("keygen", "--out", str(tmp_path / "ck"), store=source).returncode == 0
        done = run("checkpoint", "--key", str(tmp_path / "ck.key"), "--out", str(tmp_path / "cp"), store=source)
        assert done.returncode == 0, done.stderr
        dump = tmp_path / "schemalog.dump"
        subprocess.run([pg_dump, "--format=custom", f"--file={dump}", source], check=True, capture_output=True)
        subprocess.run([pg_restore, "--no-owner", f"--dbname={restored}", str(dump)], check=True, capture_output=True)
        done = run("verify", store=restored)
        assert done.returncode == 0, done.stdout + done.stderr
        done = run("verify", "--checkpoints", str(tmp_path / "cp"), "--key", str(tmp_path / "ck.pub"), store=restored)
        assert done.returncode == 0, done.stdout + done.stderr
        assert store_made(restored) == STORE_SCHEMA

        async def tamper() -> str:
            import asyncpg

            conn = await asyncpg.connect(restored)
            try:
                await conn.execute("UPDATE schemalog_events SET message = 'x'")
            except asyncpg.PostgresError as exc:
                return str(exc)
            finally:
                await conn.close()
            return "allowed"

        assert "refused" in asyncio.run(tamper())  # the guards came back with the data
