"""What ships beside the code for running rsttrace everywhere, checked by
the tools that will read it: the alerting rules by promtool (syntax, and
each alert firing on its cases and only there, deploy/prometheus/), the
systemd unit by systemd-analyze, the Kubernetes manifests against the
Kubernetes and prometheus-operator schemas. scripts/setup installs the
tools."""

import os
import re
import subprocess
import sys

import yaml

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
    here = os.path.join(os.path.dirname(sys.executable), "rsttrace")
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


K8S = os.path.join(ROOT, "deploy", "kubernetes")
VALIDATE = os.path.join(os.path.dirname(sys.executable),
                        "kubernetes-validate")


def k8s_validate(path):
    return subprocess.run([VALIDATE, "--strict", path], capture_output=True,
                          text=True, timeout=120)


def test_kubernetes_manifests_validate():
    for name, kind in (("daemonset.yaml", "daemonset"),
                       ("service.yaml", "service")):
        res = k8s_validate(os.path.join(K8S, name))
        out = res.stdout + res.stderr
        assert res.returncode == 0, out
        assert "passed for resource %s/rsttrace-exporter" % kind in out, out


def test_a_misspelled_manifest_key_fails(tmp_path):
    with open(os.path.join(K8S, "daemonset.yaml")) as f:
        text = f.read()
    path = tmp_path / "daemonset.yaml"
    path.write_text(text.replace("hostPID: true", "hostPid: true"))
    res = k8s_validate(str(path))
    assert res.returncode != 0 and "hostPid" in res.stdout + res.stderr


def podmonitor_problem(doc):
    """Why `doc` is not a PodMonitor prometheus-operator accepts, or None:
    checked with the models generated from the operator's CRD schema
    (cloudcoil-models-prometheus-operator, PyPI; kubernetes-validate has
    only Kubernetes' own kinds). A key the schema does not have is
    dropped by the model, so the round trip must give the document back."""
    from cloudcoil.models.prometheus_operator.v1 import PodMonitor
    from pydantic import ValidationError
    try:
        model = PodMonitor.model_validate(doc)
    except ValidationError as e:
        return str(e)
    back = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
    return None if back == doc else "not in the schema: %r" % back


def load(name):
    with open(os.path.join(K8S, name)) as f:
        return yaml.safe_load(f)


def test_podmonitor_matches_the_operators_schema():
    doc = load("podmonitor.yaml")
    assert doc["kind"] == "PodMonitor"
    assert podmonitor_problem(doc) is None


def test_a_wrong_podmonitor_fails():
    doc = load("podmonitor.yaml")
    typo = dict(doc, spec=dict(doc["spec"], podMetricEndpoints=[]))
    assert "not in the schema" in podmonitor_problem(typo)
    wrong = dict(doc, spec=dict(doc["spec"], podMetricsEndpoints="metrics"))
    assert "validation error" in podmonitor_problem(wrong)


def test_manifests_agree_with_the_unit_and_the_exporter():
    from rsttrace.cli.exporter import DEFAULT_PORT
    ds = load("daemonset.yaml")["spec"]["template"]
    container = ds["spec"]["containers"][0]
    with open(UNIT) as f:
        unit_caps = re.search(r"^CapabilityBoundingSet=(.*)$", f.read(),
                              re.M).group(1).split()
    assert ["CAP_" + c for c in container["securityContext"]["capabilities"]
            ["add"]] == unit_caps
    assert container["ports"][0]["containerPort"] == DEFAULT_PORT
    assert ds["metadata"]["labels"] == load("service.yaml")["spec"][
        "selector"] == load("podmonitor.yaml")["spec"]["selector"][
        "matchLabels"]
