"""scripts/mutation --quick runs end to end: mutmut installed by the
script, one small module mutated, every mutant run against tests/unit,
the report written (the full run's scores live in bench/MUTATION.md; this
only keeps the script from rotting)."""

import os
import re
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def test_mutation_quick(tmp_path):
    out = tmp_path / "mutation.md"
    res = subprocess.run([os.path.join(REPO, "scripts", "mutation"),
                          "--quick", "-o", str(out)], capture_output=True,
                         text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    text = out.read_text()
    row = re.search(r"^\| rsttrace/kernel/reasons\.py \| (\d+) \| (\d+) \| "
                    r"(\d+) \| (\d+) \| ([\d.]+)% \| (\d+) \|$", text,
                    re.M)
    assert row, text
    mutants, killed, equivalent, unexplained, score, not_run = row.groups()
    assert not_run == "0"
    assert int(mutants) >= 20                   # it did mutate the module
    assert int(unexplained) == 0
    assert int(killed) + int(equivalent) == int(mutants)
    assert float(score) >= 85.0
    assert text.startswith("# Mutation testing\n")
