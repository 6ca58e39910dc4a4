"""scripts/bench --quick runs end to end (the figures themselves live in
bench/RESULTS.md; this only keeps the benchmark from rotting)."""

import os
import subprocess

import pytest

pytestmark = pytest.mark.root
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def test_bench_quick(tmp_path):
    out = tmp_path / "results.md"
    res = subprocess.run([os.path.join(REPO, "scripts", "bench"), "--quick",
                          "-o", str(out)], capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    text = out.read_text()
    for section in ("Overhead on normal traffic", "RST storm",
                    "The same flood through peers", "Time to attached",
                    "Who is behind each RST: the cost"):
        assert "## " + section in text
    assert "| rsttrace trace | warm |" in text
    # every storm row accounted exactly: delivered + lost = sent
    storm = text.split("## RST storm")[1].split("## ")[0]
    rows = [l for l in storm.splitlines() if (l.startswith("| u") or
            l.startswith("| flood")) and "no tracer" not in l]
    assert rows and all("| all |" in l for l in rows), rows
