"""The mutation report (scripts/mutation_report.py) and its merge: a run of
some modules (scripts/mutation --update) replaces their rows and survivors,
and every other module keeps the figures, run and survivors it had."""

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "scripts"))
import mutation_report as mr  # noqa: E402

# a report as scripts/mutation wrote them before --update: one run for the
# whole file, in a line of its own, and no run column
BEFORE_UPDATE = """# Mutation testing

`scripts/mutation` (mutmut==3.8.1, against `tests/unit`): words.

Run of 2026-12-02, 5555 s.

| module | mutants run | killed | equivalent survivors | unexplained survivors | score | not run |
|---|---|---|---|---|---|---|
| rsttrace/attribution.py | 338 | 336 | 1 | 1 | 99.4% | 0 |
| rsttrace/kernel/btf.py | 10 | 10 | 0 | 0 | 100.0% | 0 |
| rsttrace/kernel/offsets.py | 104 | 86 | 1 | 1 | 82.7% | 0 |
| rsttrace/output/records.py | 75 | 74 | 0 | 1 | 98.7% | 0 |

## Survivors

### rsttrace.attribution.x__active__mutmut_51

NOT EXPLAINED (exit code 0): kill it with a test or explain it

```diff
-        if f.linger_zero and fset & CLOSE_FRAMES:
+        if f.linger_zero and fset | CLOSE_FRAMES:
```

### rsttrace.attribution.x_classify__mutmut_9

Equivalent: because

```diff
-            a
+            b
```

### rsttrace.kernel.offsets.x_from_btf__mutmut_12

NOT EXPLAINED (exit code 0): kill it with a test or explain it

```diff
-                    "version")
+                    None)
```

### rsttrace.kernel.offsets.x_from_btf__mutmut_47

Equivalent: bit_off is a multiple of 8 here

```diff
-            x // 8
+            x / 8
```

### rsttrace.output.records.x_read__mutmut_28

NOT EXPLAINED (exit code 0): kill it with a test or explain it

```diff
-                "please report the kernel version")
+                "PLEASE REPORT THE KERNEL VERSION")
-
```
"""


def sections(text):
    """The survivors' section names of a report, in order."""
    return [l[4:] for l in text.splitlines() if l.startswith("### ")]


def rows(text):
    return [l for l in text.splitlines() if l.startswith("| rsttrace/")]


def offsets_run():
    """A run of offsets.py alone: 104 mutants, one equivalent survivor."""
    survivor = mr.section("rsttrace.kernel.offsets.x_from_btf__mutmut_47",
                          0, "still a multiple of 8", "-    a\n+    b")
    return {"rsttrace/kernel/offsets.py": mr.Module(
        "rsttrace/kernel/offsets.py",
        ["104", "103", "1", "0", "99.0%", "0"],
        "2026-12-02 17:40 UTC, 212 s", [survivor])}


def test_update_replaces_one_module_and_keeps_the_others():
    merged = mr.render(mr.merge(mr.parse(BEFORE_UPDATE), offsets_run()))
    assert rows(merged) == [
        "| rsttrace/attribution.py | 338 | 336 | 1 | 1 | 99.4% | 0 | "
        "2026-12-02, 5555 s |",
        "| rsttrace/kernel/btf.py | 10 | 10 | 0 | 0 | 100.0% | 0 | "
        "2026-12-02, 5555 s |",
        "| rsttrace/kernel/offsets.py | 104 | 103 | 1 | 0 | 99.0% | 0 | "
        "2026-12-02 17:40 UTC, 212 s |",
        "| rsttrace/output/records.py | 75 | 74 | 0 | 1 | 98.7% | 0 | "
        "2026-12-02, 5555 s |",
    ]
    assert sections(merged) == [
        "rsttrace.attribution.x__active__mutmut_51",
        "rsttrace.attribution.x_classify__mutmut_9",
        "rsttrace.kernel.offsets.x_from_btf__mutmut_47",
        "rsttrace.output.records.x_read__mutmut_28",
    ]
    # the offsets survivor is the new run's, not the old one
    assert "still a multiple of 8" in merged
    assert "bit_off is a multiple of 8 here" not in merged
    assert "x_from_btf__mutmut_12" not in merged
    # the others' sections are kept whole, diff and all (the last one's
    # diff ends in a removed blank line)
    for kept in BEFORE_UPDATE.split("\n### ")[1:3] + \
            BEFORE_UPDATE.split("\n### ")[5:]:
        assert "### " + kept.rstrip("\n") + "\n" in merged
    assert merged.endswith('+                "PLEASE REPORT THE KERNEL '
                           'VERSION")\n-\n```\n')
    # no run line of the old kind is left to contradict the rows
    assert "Run of" not in merged


def test_merged_report_reads_back_the_same():
    merged = mr.merge(mr.parse(BEFORE_UPDATE), offsets_run())
    text = mr.render(merged)
    again = mr.parse(text)
    assert sorted(again) == sorted(merged) == [
        "rsttrace/attribution.py", "rsttrace/kernel/btf.py",
        "rsttrace/kernel/offsets.py", "rsttrace/output/records.py"]
    for path, module in merged.items():
        assert again[path].figures == module.figures
        assert again[path].run == module.run
        assert again[path].survivors == module.survivors
    assert mr.render(again) == text
    # a second update of the same module replaces it again
    later = dict(offsets_run())
    later["rsttrace/kernel/offsets.py"].run = "2026-12-03 09:00 UTC, 300 s"
    later["rsttrace/kernel/offsets.py"].survivors = []
    text2 = mr.render(mr.merge(again, later))
    assert "| rsttrace/kernel/offsets.py | 104 | 103 | 1 | 0 | 99.0% | 0 | " \
        "2026-12-03 09:00 UTC, 300 s |" in text2
    assert "mutmut_47" not in text2
    assert len(sections(text2)) == 3


def test_a_run_of_a_module_the_report_lacked_is_added():
    new = {"rsttrace/facts.py": mr.Module(
        "rsttrace/facts.py", ["5", "5", "0", "0", "100.0%", "0"],
        "2026-12-02 18:00 UTC, 20 s")}
    text = mr.render(mr.merge(mr.parse(BEFORE_UPDATE), new))
    assert [r.split(" | ")[0][2:] for r in rows(text)] == [
        "rsttrace/attribution.py", "rsttrace/facts.py",
        "rsttrace/kernel/btf.py", "rsttrace/kernel/offsets.py",
        "rsttrace/output/records.py"]
    assert len(sections(text)) == 5


def test_no_survivors_at_all():
    text = mr.render({"rsttrace/kernel/reasons.py": mr.Module(
        "rsttrace/kernel/reasons.py", ["38", "38", "0", "0", "100.0%", "0"],
        "2026-12-02 18:00 UTC, 20 s")})
    assert text.endswith("## Survivors\n\nNone.\n")
    assert mr.parse(text)["rsttrace/kernel/reasons.py"].survivors == []


def test_owner_is_the_longest_module_prefix():
    paths = ["rsttrace/output/__init__.py", "rsttrace/output/records.py",
             "rsttrace/trace/filters.py"]
    assert mr.owner("rsttrace.output.records.x_read__mutmut_1", paths) == \
        "rsttrace/output/records.py"
    assert mr.owner("rsttrace.trace.filters.xǁFǁm__mutmut_2", paths) == \
        "rsttrace/trace/filters.py"
    with pytest.raises(ValueError, match="rsttrace.trace.decode.x_f"):
        mr.owner("rsttrace.trace.decode.x_f__mutmut_1", paths)


@pytest.mark.parametrize("text, what", [
    ("# Mutation testing\n\n| rsttrace/a.py | 1 | 1 | 0 | 0 | 100.0% | 0 "
     "|\n", "no Survivors section"),
    ("# Mutation testing\n\n## Survivors\n\nNone.\n", "no module rows"),
    ("# Mutation testing\n\n| rsttrace/a.py | 1 | 1 | 0 | 0 | 100.0% | 0 "
     "|\n\n## Survivors\n\nNone.\n", "the row of rsttrace/a.py names no run"),
    (BEFORE_UPDATE.replace("### rsttrace.output.records",
                           "### rsttrace.output.tables"),
     "rsttrace.output.tables.x_read__mutmut_28 belongs to no module"),
])
def test_what_is_not_a_report(text, what):
    with pytest.raises(ValueError, match=what):
        mr.parse(text)


def test_the_committed_report_is_consistent():
    """bench/MUTATION.md reads as a report: every row names its run, and
    each module has as many survivor sections as its row counts, all its
    own."""
    with open(os.path.join(REPO, "bench", "MUTATION.md")) as f:
        modules = mr.parse(f.read())
    assert len(modules) >= 8
    for path, m in modules.items():
        assert m.run, path
        mutants, killed, equivalent, unexplained = map(int, m.figures[:4])
        assert mutants - killed == equivalent + unexplained, path
        assert len(m.survivors) == equivalent + unexplained, path
        assert sum(s.count("\nEquivalent: ") for s in m.survivors) == \
            equivalent, path


# how mutmut writes a mutated module: the original and each mutant as
# functions of their own (a trampoline picks one per MUTANT_UNDER_TEST)
MUTATED = """import os

def x_f__mutmut_orig(a, b):
    if a:
        raise E(
            "what",
            "fix")
    return a // b

def x_f__mutmut_3(a, b):
    if a:
        raise E(
            "what",
            None)
    return a // b

def x_f__mutmut_4(a, b):
    if a:
        raise E(
            "what",
            "fix")
    return a / b
"""


def test_a_survivors_diff_is_its_change_alone(tmp_path):
    pkg = tmp_path / "mutants" / "rsttrace" / "kernel"
    pkg.mkdir(parents=True)
    (pkg / "m.py").write_text(MUTATED)
    assert mr.mutant_diff(str(tmp_path), "rsttrace.kernel.m.x_f__mutmut_3") \
        == '-            "fix")\n+            None)'
    assert mr.mutant_diff(str(tmp_path), "rsttrace.kernel.m.x_f__mutmut_4") \
        == "-    return a // b\n+    return a / b"
    assert mr.mutant_diff(str(tmp_path), "rsttrace.kernel.m.x_f__mutmut_9") \
        == "(diff not found)"
