"""bench/MUTATION.md, the mutation report of scripts/mutation: one row of
figures per module, the run they come from, and the survivors' sections
(each with its diff, read from mutmut's mutated copy); and the merge of a
run of some modules into an earlier report, whose other modules keep the
rows and survivors of the run that made them."""

import difflib
import os
import re

HEADER = ("| module | mutants run | killed | equivalent survivors | "
          "unexplained survivors | score | not run | run |")
# a row: module, six figures and (since --update) the run they come from
ROW = re.compile(r"^\| (\S+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| "
                 r"([\d.]+%) \| (\d+) \|(?: (.+?) \|)?$")
# the one run of a report from before --update: "Run of DATE, N s[; ...]."
RUN_OF = re.compile(r"^Run of (.+)\.$", re.M)


class Module:
    """One module's figures: `figures` (mutants run, killed, equivalent,
    unexplained, score, not run: as the table shows them), `run` (date and
    length of the run they come from) and `survivors` (the text of each
    survivor's section, in order)."""

    def __init__(self, path, figures, run, survivors=()):
        self.path = path
        self.figures = list(figures)
        self.run = run
        self.survivors = list(survivors)

    def row(self):
        return "| %s | %s | %s |" % (self.path, " | ".join(self.figures),
                                     self.run)


def dotted(path):
    """rsttrace/kernel/offsets.py -> rsttrace.kernel.offsets, the prefix of
    mutmut's names for that module's mutants."""
    return path[:-3].replace("/", ".")


def owner(mutant, paths):
    """The module (one of `paths`) a mutant's name belongs to: the longest
    whose dotted name prefixes it (rsttrace.output.x_... is not
    rsttrace/output/records.py's)."""
    best = None
    for path in paths:
        if mutant.startswith(dotted(path) + ".") and (
                best is None or len(path) > len(best)):
            best = path
    if best is None:
        raise ValueError("survivor %s belongs to no module of the table"
                         % mutant)
    return best


def section(name, code, why, diff):
    """One survivor's section: its name, whether it is explained, its
    diff."""
    return "\n".join([
        "### %s" % name, "",
        "Equivalent: %s" % why if why else
        "NOT EXPLAINED (exit code %s): kill it with a test or explain it"
        % code, "", "```diff", diff, "```"])


def mutant_diff(work, mutant):
    """The mutant's change: its function against the original's, both as
    mutmut wrote them into the mutated copy of the module."""
    module, _, fn = mutant.rpartition(".")
    path = os.path.join(work, "mutants", *module.split(".")) + ".py"
    with open(path) as f:
        lines = f.read().split("\n")

    def body(name):
        start = next(i for i, l in enumerate(lines)
                     if re.match(r"\s*def %s\(" % re.escape(name), l))
        indent = len(lines[start]) - len(lines[start].lstrip())
        out = []
        for l in lines[start + 1:]:
            if l.strip() and len(l) - len(l.lstrip()) <= indent and \
                    not l.lstrip().startswith(")"):
                break
            out.append(l)
        return out
    orig = re.sub(r"__mutmut_\d+$", "__mutmut_orig", fn)
    try:
        a, b = body(orig), body(fn)
    except StopIteration:
        return "(diff not found)"
    return "\n".join(l for l in difflib.unified_diff(a, b, lineterm="", n=0)
                     if not l.startswith(("+++", "---", "@@"))).strip()


def render(modules, quick=False, mutmut="mutmut", goal=85.0):
    """The report's text from {path: Module}."""
    lines = [
        "# Mutation testing",
        "",
        "`scripts/mutation%s` (%s, against `tests/unit`): every mutant "
        "mutmut makes of a module is run against the unit tests; a "
        "mutant the tests do not fail on survives (one that times out or "
        "crashes the test process counts as killed). Goal: at least %.0f%% "
        "killed in each module; every survivor is listed below, with why "
        "it is equivalent (it behaves as the original for every input the "
        "program can give it; from `bench/mutation-equivalent.json`)."
        % (" --quick" if quick else "", mutmut, goal),
        "",
        "Each row's figures and survivors come from the run its last column "
        "names: its date and length (one run mutates all the modules given "
        "to it, so the seconds are theirs together). `scripts/mutation "
        "--update MODULE...` runs some modules again and keeps the other "
        "modules' rows and survivors as they are here.",
        "",
        HEADER,
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [modules[p].row() for p in sorted(modules)]
    lines += ["", "## Survivors", ""]
    sections = [s for p in sorted(modules) for s in modules[p].survivors]
    if not sections:
        lines.append("None.")
    for s in sections:
        lines += [s, ""]
    return "\n".join(lines).rstrip() + "\n"


def parse(text):
    """{path: Module} from a report's text (as render() writes it, or from
    before --update: no run column, the report's one run in a line "Run of
    DATE, N s.")."""
    head, sep, tail = text.partition("\n## Survivors\n")
    if not sep:
        raise ValueError("not a mutation report: no Survivors section")
    one_run = RUN_OF.search(head)
    modules = {}
    for line in head.splitlines():
        m = ROW.match(line)
        if not m:
            continue
        run = m.group(8) or (one_run.group(1) if one_run else None)
        if run is None:
            raise ValueError("the row of %s names no run" % m.group(1))
        modules[m.group(1)] = Module(m.group(1), m.groups()[1:7], run)
    if not modules:
        raise ValueError("not a mutation report: no module rows")
    for chunk in re.split(r"^(?=### )", tail, flags=re.M):
        if not chunk.startswith("### "):
            continue
        name = chunk.split("\n", 1)[0][4:].strip()
        modules[owner(name, modules)].survivors.append(chunk.rstrip("\n"))
    return modules


def merge(old, new):
    """The report `old` ({path: Module}) with the modules of `new` in place
    of theirs: every other module keeps its row, run and survivors."""
    out = dict(old)
    out.update(new)
    return out
