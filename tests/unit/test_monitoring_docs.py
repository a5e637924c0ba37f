"""The example alert rules and Grafana dashboard in docs/monitoring/ use only metrics a
node exposes (names as Prometheus sees them: counters end in ``_total``, histograms are
read through ``_bucket``/``_sum``/``_count``), and are well-formed for their tools."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from node.api.metrics import Metrics

DOCS = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
METRIC = re.compile(r"\b((?:cityledger|process)_[a-z0-9_]+)\b")
FROM_PROMETHEUS = {"up"}  # written by Prometheus itself for every scrape target
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
}


def exposed() -> set[str]:
    """Every series name a node's /metrics can carry, labelled or not."""
    names = set()
    for family in Metrics().registry.collect():
        names.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
    return names


def alert_rules() -> list[dict[str, object]]:
    doc = yaml.safe_load((DOCS / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    doc = json.loads((DOCS / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in doc["panels"] for target in panel["targets"]]


def test_every_alert_is_complete_and_uses_exposed_metrics() -> None:
    rules = alert_rules()
    assert len(rules) >= 6
    names = exposed()
    for rule in rules:
        assert {"alert", "expr", "for", "labels", "annotations"} <= rule.keys(), rule
        assert rule["labels"]["severity"] in {"page", "warn"}  # type: ignore[index]
        used = set(METRIC.findall(str(rule["expr"])))
        assert used <= names, (rule["alert"], used - names)
        assert used or "up{" in str(rule["expr"]), rule["alert"]


def test_every_dashboard_panel_uses_exposed_metrics() -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 10
    names = exposed()
    for expr in exprs:
        used = set(METRIC.findall(expr))
        assert used and used <= names, (expr, used - names)


def test_the_check_itself_notices_a_metric_that_does_not_exist() -> None:
    assert "cityledger_validator_missed_votes_total" in exposed()
    assert "cityledger_validator_missed_votes" not in exposed()  # a counter is read as _total
    assert "process_resident_memory_bytes" in exposed()
    assert set(METRIC.findall("rate(cityledger_no_such_thing_total[1m])")) - exposed()


def test_alerts_only_use_what_prometheus_or_a_node_writes() -> None:
    for rule in alert_rules():
        words = set(re.findall(r"\b([a-z_]+)\{", str(rule["expr"])))
        assert words <= exposed() | FROM_PROMETHEUS, words
