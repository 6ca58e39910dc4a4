"""scripts/soak --minutes 0.15 runs end to end (about 20 s; the figures of
a real 30-minute run live in bench/SOAK.md): it keeps the soak from
rotting, and checks its accounting."""

import os
import re
import subprocess

import pytest

pytestmark = pytest.mark.root
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def row(text, name):
    m = re.search(r"^\| %s \| (.*) \|$" % re.escape(name), text, re.M)
    assert m, name
    return m.group(1)


def test_soak_short_run(tmp_path):
    out = tmp_path / "soak.md"
    res = subprocess.run([os.path.join(REPO, "scripts", "soak"), "--minutes",
                          "0.15", "--every", "2", "-o", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    text = out.read_text()
    events = int(row(text, "events delivered (rsttrace's summary)"))
    lost = int(row(text, "lost (buffer full)"))
    assert events + lost == int(row(text, "matched in the kernel"))
    spread, runs = map(int, row(
        text, "provocations: spread / scenario runs").split(" / "))
    assert spread > 100 and runs > 0
    assert events + lost >= 2 * spread    # two RSTs each, and the scenarios'
    causes, paths = map(int, row(
        text, "distinct causes / kernel paths (first 3 frames)").split(" / "))
    assert causes >= 4 and paths >= 4
    samples = re.findall(r"^\| \d+ \| [\d.]+ \| [\d.]+ \| \d+ \|$", text,
                         re.M)
    assert len(samples) >= 4
    assert "MiB per hour" in row(text, "RSS growth after warm-up (least "
                                 "squares)")


def test_soak_exporter_short_run(tmp_path):
    """--exporter: the exporter counts every RST the stream provokes (two
    per spread provocation at least), loses none, and its opt-in label
    values stay within --max-label-values."""
    out = tmp_path / "soak-exporter.md"
    res = subprocess.run([os.path.join(REPO, "scripts", "soak"), "--exporter",
                          "--minutes", "0.15", "--every", "2", "-o",
                          str(out)], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    text = out.read_text()
    counted = int(row(text, "RSTs counted (rsttrace_resets_total, summed)"))
    spread, runs = map(int, row(
        text, "provocations: spread / scenario runs").split(" / "))
    assert spread > 100 and runs > 0
    assert counted >= 2 * spread
    assert int(row(text, "lost (rsttrace_events_lost_total)")) == 0
    assert int(row(text, "errors (rsttrace_errors_total)")) == 0
    end, most = map(int, row(text, "series of rsttrace_resets_total: at the "
                             "end / most").split(" / "))
    assert 0 < end <= most
    samples = re.findall(r"^\| \d+ \| [\d.]+ \| [\d.]+ \| \d+ \| [\d.]+ \| "
                         r"\d+ \|$", text, re.M)
    assert len(samples) >= 4, text
