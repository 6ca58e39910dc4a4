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


UNIT = os.path.join(ROOT, "packaging", "systemd", "rsttrace-exporter.service")


def unit_here(tmp_path):
    """The unit with ExecStart pointing at this checkout's rsttrace (verify
    checks that the command exists)."""
    with open(UNIT) as f:
        text = f.read()
    here = os.path.join(ROOT, ".venv", "bin", "rsttrace")
    assert "ExecStart=/usr/local/bin/rsttrace exporter" in text
    path = tmp_path / "rsttrace-exporter.service"
    path.write_text(text.replace("/usr/local/bin/rsttrace", here))
    return str(path)


def test_systemd_unit_verifies(tmp_path):
    out = run("systemd-analyze", "verify", unit_here(tmp_path))
    assert "rsttrace-exporter" not in out, out      # no complaint about it


def test_systemd_unit_is_confined(tmp_path):
    out = run("systemd-analyze", "security", "--offline=yes",
              unit_here(tmp_path))
    level = float(out.rsplit("Overall exposure level", 1)[1].split(":")[1]
                  .split()[0])
    assert level <= 4.0, out        # "OK" in systemd's scale
