"""scripts/bench-caches runs end to end and judges every cache (the
figures live in bench/CACHES.md; this keeps the benchmark from rotting)."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.root
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "scripts"))


def test_bench_caches_quick(tmp_path):
    import bench_caches
    out = tmp_path / "caches.md"
    res = subprocess.run([os.path.join(REPO, "scripts", "bench-caches"),
                          "--events", "300", "--rounds", "1", "-o", str(out)],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [l for l in out.read_text().splitlines()
            if l.startswith("| ") and not l.startswith("| cache")]
    judged = [l for l in rows if l.endswith(tuple(
        "| %s |" % v for v in bench_caches.VERDICTS.values()))]
    assert len(judged) == len(bench_caches.CACHES), rows
    for line, (name, *_) in zip(judged, bench_caches.CACHES):
        assert line.startswith("| " + name), (line, name)
        # name, what it holds, five workloads' figures, the verdict
        assert len(line.split("|")[1:-1]) == 2 + 5 + 1, line
