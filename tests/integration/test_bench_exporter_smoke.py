"""scripts/bench --exporter --quick runs end to end (the figures live in
bench/EXPORTER.md): every storm counted exactly, the port label bounded."""

import os
import subprocess

import pytest

pytestmark = pytest.mark.root
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def test_bench_exporter_quick(tmp_path):
    out = tmp_path / "exporter.md"
    res = subprocess.run([os.path.join(REPO, "scripts", "bench"),
                          "--exporter", "--quick", "-o", str(out)],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    text = out.read_text()
    storms = text.split("## The exporter under RST storms")[1].split("## ")[0]
    rows = [line for line in storms.splitlines()
            if line.startswith(("| u", "| flood"))]
    assert len(rows) == 2 and all("| yes |" in r for r in rows), rows
    assert "| local_port values kept | 100 (+ `other`: True) |" in text
    assert "| series | 101 |" in text
    assert "| 10000 |" in text
