"""scripts/bench's smoke runs (--quick) end to end: the full run, --filters
and --exporter. The figures themselves live in bench/RESULTS.md,
bench/FILTERS.md and bench/EXPORTER.md; this keeps the benchmarks from
rotting and checks that their tables add up."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.root
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "scripts"))


def run_bench(tmp_path, *args):
    """The results file of `scripts/bench --quick ARGS`."""
    out = tmp_path / "results.md"
    res = subprocess.run([os.path.join(REPO, "scripts", "bench"), "--quick",
                          *args, "-o", str(out)], capture_output=True,
                         text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    return out.read_text()


def section(text, title):
    return text.split("## " + title)[1].split("\n## ")[0]


def test_bench_quick(tmp_path):
    text = run_bench(tmp_path)
    for title in ("Goals (issue 15)", "RST storm", "Host RST capacity",
                  "The kernel stack", "Overhead on normal traffic",
                  "Growth", "Who is behind each RST: the cost",
                  "Time to attached"):
        assert "## " + title in text
    assert "## User-space caches" not in text   # scripts/bench-caches's
    assert "| rsttrace trace | warm |" in text
    rows = [line for line in section(text, "RST storm").splitlines()
            if line.startswith(("| u", "| flood"))]
    ours = [line for line in rows if "| rsttrace " in line]
    # every rsttrace row accounted exactly: delivered + lost = sent
    assert ours and all("| all |" in line for line in ours), rows
    # the peers on the same flood, each with the events it saw
    for peer in ("bpftrace count()", "bpftrace @[kstack] = count()",
                 "perf trace"):
        row = [line for line in rows if "| %s |" % peer in line]
        assert len(row) == 1 and " seen |" in row[0], (peer, rows)
    owner = section(text, "Who is behind each RST: the cost")
    owner_rows = [line for line in owner.splitlines()
                  if line.startswith(("| listener", "| --no-owner"))]
    assert len(owner_rows) == 3, owner_rows
    assert "ns per run (on_sock_set" in owner, owner


def test_bench_filters_quick(tmp_path):
    from benchlib import filters
    text = run_bench(tmp_path, "--filters")
    rows = [line.split(" | ") for line in
            section(text, "Filter cost in a storm").splitlines()
            if line.startswith("| ") and not line.startswith("| filter |")]
    assert [r[0][2:] for r in rows] == [n for n, _ in filters.CONFIGS], rows
    for name, rate, sent, delivered, cpu, ns in rows:
        assert int(sent) > 0 and ns.split()[0].isdigit(), (name, rows)
    assert int(rows[0][3]) > 0, rows        # no filter: RSTs delivered
    # none passes the others (a few RSTs of hping3's sweep of source
    # ports pass `port 1`)
    for r in rows[1:]:
        assert int(r[3]) <= (int(r[2]) // 1000 if "port 1" in r[0] else 0), r


def test_bench_exporter_quick(tmp_path):
    text = run_bench(tmp_path, "--exporter")
    rows = [line for line in
            section(text, "The exporter under RST storms").splitlines()
            if line.startswith(("| u", "| flood"))]
    # every storm counted exactly
    assert len(rows) == 2 and all("| yes |" in r for r in rows), rows
    assert "| local_port values kept | 100 (+ `other`: True) |" in text
    assert "| series | 101 |" in text
    assert "| 10000 |" in text
