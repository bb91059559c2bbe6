"""Reading the deploy files as the tests see them: the compose file, Prometheus's config and
alert rules, Grafana's provisioning and dashboard, and the metric names their PromQL uses."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from core.settings import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
COMPOSE = REPO_ROOT / "docker-compose.yml"
PROMETHEUS = DEPLOY / "prometheus.yml"
ALERTS = DEPLOY / "alerts.yml"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
PROVISIONING = DEPLOY / "grafana" / "provisioning"
ENGINE_IMAGE = "loyalty-engine:dev"

# The engine's own metrics and the client library's process figures; `up` and the like are
# Prometheus's, not something a process exports.
_METRIC = re.compile(r"\b((?:loyalty|process)_[a-z0-9_]+)\b")


def load_yaml(path: Path) -> Any:
    """A YAML file (merge keys resolved, as compose resolves them)."""
    return yaml.safe_load(path.read_text())


def compose_services() -> dict[str, dict[str, Any]]:
    """The services of docker-compose.yml."""
    services: dict[str, dict[str, Any]] = load_yaml(COMPOSE)["services"]
    return services


def engine_services() -> dict[str, dict[str, Any]]:
    """The long-running engine services: the engine's image with a `loyalty` command (the
    one-shot `migrate` has an entrypoint of its own instead)."""
    return {
        name: service
        for name, service in compose_services().items()
        if service.get("image") == ENGINE_IMAGE and "command" in service
    }


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard JSON Grafana is provisioned with, by file name."""
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    found: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def exprs(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard's panels."""
    return [
        target["expr"]
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def metric_names(expressions: list[str]) -> set[str]:
    """The ``loyalty_*`` and ``process_*`` series names the expressions read, as scraped
    (``_total`` of counters, ``_bucket``/``_sum``/``_count`` of histograms)."""
    return {name for expr in expressions for name in _METRIC.findall(expr)}


def dashboard_metric_names() -> set[str]:
    """The series names every provisioned dashboard reads."""
    return metric_names([e for d in dashboards().values() for e in exprs(d)])


def alert_exprs() -> list[str]:
    """The expressions of every alert rule."""
    return [rule["expr"] for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]
