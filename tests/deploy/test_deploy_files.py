"""The deploy files agree with each other and with the engine: the dashboard and Prometheus's
files parse, every engine service of docker-compose.yml is scraped and has a readiness
healthcheck, every scrape target is a compose service, and every metric the dashboard or the
alerts name is one the engine defines (whether a live process exports it is
``test_live_metrics``'s question)."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

import core.metrics  # noqa: F401 - registers every engine metric with the default registry
from core.settings import METRICS_ROLE_OFFSETS
from tests.deploy.files import (
    ALERTS,
    DASHBOARDS,
    PROMETHEUS,
    PROVISIONING,
    alert_exprs,
    compose_services,
    dashboard_metric_names,
    dashboards,
    engine_services,
    exprs,
    load_yaml,
    metric_names,
    panels,
)

# What the dashboard must show at least (issue 16): each names one series of the engine.
COVERED = {
    "loyalty_events_total",
    "loyalty_batch_duration_seconds_bucket",
    "loyalty_batch_size_bucket",
    "loyalty_consumer_lag",
    "loyalty_outbox_backlog_messages",
    "loyalty_outbox_oldest_unsent_age_seconds",
    "loyalty_relay_publish_seconds_bucket",
    "loyalty_dead_letters_total",
    "loyalty_wallet_pushes_total",
    "loyalty_lockouts_total",
    "loyalty_webhook_attempts_total",
    "loyalty_webhook_pending",
    "loyalty_webhook_parked",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
}


def _defined_series() -> set[str]:
    """Every series name the engine's registry can expose, labelled children or not yet."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "gauge": ("",),
        "summary": ("_sum", "_count", ""),
    }
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def _engine_env() -> dict[str, Any]:
    (env,) = {
        tuple(sorted(s["environment"].items()))
        for name, s in engine_services().items()
        if name != "admin"  # the admin's adds its own port and secret to the shared one
    }
    return dict(env)


def test_the_dashboard_parses_and_covers_what_an_operator_watches() -> None:
    found = dashboards()
    assert list(found) == ["loyalty.json"], f"dashboards in {DASHBOARDS}: {list(found)}"
    dashboard = found["loyalty.json"]
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "two panels share an id"
    for panel in panels(dashboard):
        assert panel.get("title"), panel
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, (panel["title"], grid)
        for target in panel.get("targets", []):
            assert target["expr"].strip(), panel["title"]
            # Balanced brackets: a cheap guard against a PromQL typo (promtool checks more).
            for opening, closing in ("()", "[]", "{}"):
                assert target["expr"].count(opening) == target["expr"].count(closing), target
    missing = COVERED - metric_names(exprs(dashboard))
    assert not missing, f"the dashboard shows nothing of {sorted(missing)}"


def test_every_metric_the_dashboard_and_alerts_name_is_defined_by_the_engine() -> None:
    defined = _defined_series()
    named = dashboard_metric_names() | metric_names(alert_exprs())
    assert named, "no metric name found in the dashboard"
    unknown = sorted(named - defined)
    assert not unknown, f"named but defined nowhere in core.metrics: {unknown}"


def test_prometheus_scrapes_every_engine_service_of_compose_and_nothing_else() -> None:
    config = load_yaml(PROMETHEUS)
    services = compose_services()
    engine = engine_services()
    env = _engine_env()
    port = int(env["LOYALTY_METRICS_PORT"])
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "loyalty"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets: dict[str, int] = {}
    for sd in job.get("dns_sd_configs", []):
        assert sd["type"] == "A"
        for name in sd["names"]:
            targets[name] = int(sd["port"])
    for static in job.get("static_configs", []):
        for target in static["targets"]:
            host, _, target_port = target.rpartition(":")
            targets[host] = int(target_port)
    assert set(targets) <= set(services), f"not compose services: {set(targets) - set(services)}"
    assert set(targets) == set(engine), f"engine services not scraped: {set(engine) - set(targets)}"
    assert set(targets.values()) == {port}, targets
    # The roles a process can have are the compose services, one for one.
    assert set(engine) == set(METRICS_ROLE_OFFSETS)
    # Prometheus's other job scrapes itself, the compose file's `prometheus` service.
    others = [j for j in config["scrape_configs"] if j["job_name"] != "loyalty"]
    for other in others:
        for static in other.get("static_configs", []):
            for target in static["targets"]:
                assert target.split(":")[0] in {"localhost", *services}, target


def test_every_engine_service_has_a_readiness_healthcheck_and_the_ops_environment() -> None:
    engine = engine_services()
    assert {"worker", "relay", "wallet-sync", "webhooks", "admin"} <= set(engine)
    for name, service in engine.items():
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no healthcheck"
        test = check["test"]
        text = " ".join(test) if isinstance(test, list) else test
        assert "/readyz" in text, (name, text)
        # The image has no curl or wget (Dockerfile): python's urllib asks.
        assert test[:2] == ["CMD", "python"] and "urllib.request" in text, (name, test)
        assert "LOYALTY_METRICS_PORT" in text, (name, text)
        assert service["environment"]["LOYALTY_METRICS_PORT"] == "9400", name
        # Every interface of the container: Prometheus reaches it over the compose network.
        assert service["environment"]["LOYALTY_METRICS_HOST"] == "0.0.0.0", name  # noqa: S104
        assert service["environment"]["LOYALTY_LOG_JSON"] == "true", name
        assert service["command"] == [name], (name, service["command"])
    # The one-shot migration has no ops port: no healthcheck to fail.
    assert compose_services()["migrate"]["healthcheck"] == {"disable": True}
    # The admin panel listens beyond loopback in its container: never the public default
    # session secret (the panel refuses to start with it).
    secret = engine["admin"]["environment"]["LOYALTY_SESSION_SECRET"]
    assert secret.startswith("${LOYALTY_SESSION_SECRET:?"), secret


def test_prometheus_and_grafana_are_compose_services_on_loopback_with_their_files() -> None:
    services = compose_services()
    prometheus, grafana = services["prometheus"], services["grafana"]
    assert prometheus["image"].startswith("prom/prometheus:")
    assert grafana["image"].startswith("grafana/grafana:")
    assert prometheus["ports"] == ["127.0.0.1:9090:9090"]
    assert grafana["ports"] == ["127.0.0.1:3000:3000"]
    mounts = {m.split(":")[0]: m.split(":")[1] for m in prometheus["volumes"] if m.startswith(".")}
    assert mounts["./deploy/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    # The rule file prometheus.yml loads is the one compose mounts.
    (rules,) = load_yaml(PROMETHEUS)["rule_files"]
    assert mounts[f"./deploy/{ALERTS.name}"] == rules
    assert load_yaml(ALERTS)["groups"]
    g_mounts = {m.split(":")[0]: m.split(":")[1] for m in grafana["volumes"] if m.startswith(".")}
    assert g_mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    (provider,) = load_yaml(PROVISIONING / "dashboards" / "loyalty.yml")["providers"]
    assert g_mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    (source,) = load_yaml(PROVISIONING / "datasources" / "prometheus.yml")["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
