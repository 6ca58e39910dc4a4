"""Bad input and missing pieces: one line saying what is wrong and how to
fix it, a non-zero exit, nothing half-written left behind."""

import os
import subprocess
import sys

import pytest

RSTTRACE = os.path.join(os.path.dirname(sys.executable), "rsttrace")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True,
                          timeout=120, **kw)


def reachable_by_others(path):
    """Whether every directory above `path` lets other users through."""
    path = os.path.dirname(os.path.realpath(path))
    while True:
        if not os.stat(path).st_mode & 0o001:
            return False
        if path == "/":
            return True
        path = os.path.dirname(path)


def as_nobody(*args):
    """Run as user nobody. A checkout in a private directory (mktemp -d
    makes it 0700) is out of nobody's reach: then nobody keeps
    CAP_DAC_READ_SEARCH, which lets it read the venv and nothing more (no
    BPF, and rsttrace still sees a non-root user)."""
    caps = [] if reachable_by_others(RSTTRACE) else [
        "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    return run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
               *caps, *args)


def one_error_line(res):
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("rsttrace: error: ")
    return lines[0]


@pytest.mark.parametrize("args,words", [
    (["--port", "70000"], "not a TCP port"),
    (["--port", "http"], "not a TCP port"),
    (["--host", "example"], "not an IP address"),
    (["--netns", "no-such-namespace-xyz"], "not a network namespace"),
    (["--comm", "a-name-longer-than-15"], "not a process name"),
    (["--pid", "999999999"], "no process with pid"),
    (["-4", "-6"], "exclude each other"),
])
def test_bad_filter_values(args, words):
    res = run(RSTTRACE, "trace", *args)
    assert res.returncode == 2
    assert words in one_error_line(res)
    assert res.stdout == ""


@pytest.mark.root
def test_not_root():
    """As an unprivileged user: says root is needed, exits 1."""
    res = as_nobody(RSTTRACE, "trace", "--duration", "1")
    assert res.returncode == 1
    assert "needs root" in one_error_line(res)
    assert "sudo" in res.stderr


@pytest.mark.root
def test_unwritable_output_leaves_nothing(tmp_path):
    # root ignores permission bits, so use a directory that is missing
    missing = tmp_path / "missing" / "out.jsonl"
    res = run(RSTTRACE, "trace", "--json", "-o", str(missing),
              "--duration", "1")
    assert res.returncode == 1
    assert "cannot write" in one_error_line(res)
    assert not missing.parent.exists()
    assert os.listdir(tmp_path) == []


@pytest.mark.root
def test_bcc_missing(tmp_path):
    """The same interpreter without its site packages (so without Debian's
    bcc), only the project and its own dependencies on the path (linked
    into a directory of their own): a real bcc-less Python."""
    import click
    import pyroute2
    import tabulate
    for mod in (click, pyroute2, tabulate):
        src = mod.__file__
        if os.path.basename(src) == "__init__.py":
            src = os.path.dirname(src)
        os.symlink(src, tmp_path / os.path.basename(src))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO,
                                                       str(tmp_path)]))
    res = run("/usr/bin/python3", "-S", "-c",
              "import sys; sys.argv[0] = 'rsttrace'; "
              "from rsttrace.cli import main; main()",
              "trace", "--duration", "1", env=env)
    assert res.returncode == 1, res.stderr
    line = one_error_line(res)
    assert "bcc" in line and "python3-bpfcc" in line


@pytest.mark.root
def test_doctor_runs_unprivileged():
    """doctor needs no root: it tells what it cannot ask the kernel
    unprivileged (libbpf's probes need root) and still names the mode."""
    res = as_nobody(RSTTRACE, "doctor")
    assert res.returncode == 0, res.stdout + res.stderr
    # unprivileged, fentry cannot be probed; kprobes are seen in sysfs
    kprobes = os.path.exists("/sys/bus/event_source/devices/kprobe/type")
    mode = "kprobe" if kprobes else "tracepoint"
    assert "trace will use %s mode" % mode in res.stdout, res.stdout
    assert "unknown (run as root)" in res.stdout
    # what it cannot read unprivileged (tracefs) it takes from the version
    from rsttrace.kernel import history
    old = not history.since(os.uname().release, history.RST_REASON)
    assert ("RSTs sent without a full socket" in res.stdout) == (
        old and not kprobes)
