"""rsttrace(1) (scripts/manpage, built into the Debian package) against
what `--help` says, command by command: every command and subcommand has
its section with its usage line, every option --help lists is there by the
same names, with the help text. (groff renders it cleanly: lintian's man
page checks in tests/packaging/test_deb.py.)"""

import os
import re
import subprocess
import sys

from click.testing import CliRunner

from rsttrace.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def roff(text):
    return text.replace("\\", "\\e").replace("-", "\\-")


def page(env=None):
    res = subprocess.run([sys.executable, os.path.join(ROOT, "scripts",
                                                       "manpage")],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    return res.stdout


def help_of(path):
    res = CliRunner().invoke(main, path + ["--help"], prog_name="rsttrace",
                             terminal_width=2000)
    assert res.exit_code == 0, res.output
    return res.output


def listed(text, heading):
    """The entries of a --help block ("Options:", "Commands:"): for each,
    (names, help) as --help prints them."""
    block = text.split("\n%s\n" % heading, 1)
    if len(block) == 1:
        return []
    rows = []
    for line in block[1].splitlines():
        entry = re.match(r"  (\S.*?)(?:\s{2,}(\S.*))?$", line)
        if entry:
            rows.append([entry.group(1), entry.group(2) or ""])
        elif re.match(r"\s{3,}\S", line) and rows:
            rows[-1][1] += " " + line.strip()     # help on the next lines
        else:
            break
    return [(names, " ".join(h.split())) for names, h in rows]


def every_command(path=()):
    yield list(path)
    for name, _ in listed(help_of(list(path)), "Commands:"):
        yield from every_command(path + (name,))


def test_every_command_and_option_of_help_is_in_the_page():
    text = page()
    sections = re.findall(r'^\.SS "(.*)"$', text, re.M)
    paths = list(every_command())
    assert len(paths) == 12, paths       # the group and 11 commands
    assert len(sections) == len(paths) - 1
    for path in paths:
        out = help_of(path)
        usage = out.splitlines()[0][len("Usage: "):]
        if path:
            assert roff(usage) in sections, (usage, sections)
        summary = out.split("\n\n")[1]
        assert roff(" ".join(summary.split())) in text.replace("\n", " ")
        options = listed(out, "Options:")
        assert options, path
        for names, helptext in options:
            if "--help" in names:
                continue
            assert "\\fB%s\\fR" % roff(names) in text, (path, names)
            assert roff(helptext).replace("\\-", "") in \
                text.replace("\n", " ").replace("\\-", ""), (path, names)


def test_page_structure_and_reproducible_date():
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    text = page(env)
    assert text.startswith('.TH RSTTRACE 1 "2023-11-14" "rsttrace 0.1.0"')
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS",
                    "COMMANDS", "KERNEL HEADERS", "FILES", "ENVIRONMENT",
                    "EXIT STATUS", "SEE ALSO"):
        assert "\n.SH %s\n" % heading in text, heading
    assert page(env) == text
    # no text line that roff would take for a request
    assert not [line for line in text.splitlines()
                if line[:1] in ".'" and not re.match(r"\.(TH|SH|SS|PP|TP|B)\b",
                                                     line)]
