"""Python packaging kept honest: `python -m build` makes a wheel and an sdist
whose metadata ask PyPI for nothing named bcc (bcc is the system's
python3-bpfcc; PyPI's `bcc` is an unrelated project) and which carry the
BPF sources where the installed tracer looks (rsttrace/bpf); `pip install .`
into a venv made with --system-site-packages (as scripts/setup does) gives
an `rsttrace` that imports bcc from the system and, as root, compiles and
attaches its BPF program from the installed copy, not from this tree."""

import email
import os
import re
import subprocess
import sys
import tarfile
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BPF_FILES = sorted(f for f in os.listdir(os.path.join(ROOT, "bpf"))
                   if f.endswith((".c", ".h")))


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: the venv's own setuptools (the pip install below
    # builds in isolation, as users' does)
    res = subprocess.run([sys.executable, "-m", "build", "--no-isolation",
                          "--outdir", str(out), ROOT],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    wheels = list(out.glob("rsttrace-*.whl"))
    sdists = list(out.glob("rsttrace-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, os.listdir(out)
    return wheels[0], sdists[0]


def names(requirements):
    """The distribution names of requirement strings."""
    return {re.match(r"[A-Za-z0-9._-]+", r).group(0).lower()
            for r in requirements if r.strip() and not r.startswith("[")}


def check_metadata(text, requires_txt=""):
    """PKG-INFO or METADATA; an sdist's requirements may also be (older
    setuptools: only be) in its egg-info's requires.txt."""
    metadata = email.message_from_string(text)
    assert metadata["Name"] == "rsttrace"
    reqs = names(metadata.get_all("Requires-Dist", []) +
                 requires_txt.splitlines())
    assert {"click", "pyroute2", "tabulate"} <= reqs, reqs
    assert not {r for r in reqs if "bcc" in r}, reqs
    # ...and they say where bcc comes from instead
    body = metadata.get_payload()
    assert "python3-bpfcc" in body
    assert "never `pip install bcc`" in body


def test_wheel_metadata_and_bpf_sources(dist):
    wheel, _ = dist
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = [n for n in names if n.endswith(".dist-info/METADATA")]
        assert len(meta) == 1
        check_metadata(z.read(meta[0]).decode())
        for f in BPF_FILES:
            with open(os.path.join(ROOT, "bpf", f), "rb") as src:
                assert z.read("rsttrace/bpf/" + f) == src.read(), f
        assert "rsttrace/lab/expectations.json" in names
        assert not [n for n in names if "__pycache__" in n]


def test_sdist_metadata_and_bpf_sources(dist):
    _, sdist = dist
    with tarfile.open(sdist) as t:
        top = t.getnames()[0].split("/")[0]
        check_metadata(t.extractfile(top + "/PKG-INFO").read().decode(),
                       t.extractfile(top + "/rsttrace.egg-info/requires.txt")
                       .read().decode())
        for f in BPF_FILES:
            member = t.getmember("%s/rsttrace/bpf/%s" % (top, f))
            assert member.isfile(), f         # the file, not the tree's link


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    where = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run(["/usr/bin/python3", "-m", "venv",
                    "--system-site-packages", str(where)], check=True)
    res = subprocess.run([str(where / "bin" / "pip"), "install", "-q",
                          "--disable-pip-version-check", ROOT],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return where


def test_pip_install_into_a_system_site_venv(venv):
    code = ("import bcc, rsttrace\n"
            "from rsttrace.trace import tracer\n"
            "print(bcc.__file__)\nprint(rsttrace.__file__)\n"
            "print(tracer.BPF_SOURCE)\n")
    res = subprocess.run([str(venv / "bin" / "python"), "-c", code],
                         cwd="/", capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    bcc_file, pkg, source = res.stdout.split()
    assert bcc_file.startswith("/usr/lib/python3/dist-packages/bcc/")
    assert pkg.startswith(str(venv)) and source.startswith(str(venv))
    assert os.path.isfile(source)
    res = subprocess.run([str(venv / "bin" / "rsttrace"), "--version"],
                         cwd="/", capture_output=True, text=True)
    assert res.returncode == 0 and "0.1.0" in res.stdout, res.stderr


@pytest.mark.root
def test_the_pip_installed_tracer_compiles_its_own_bpf_copy(venv):
    """Compiled and attached from site-packages (cwd /, this tree nowhere
    on the path): --duration 1 ends it."""
    res = subprocess.run([str(venv / "bin" / "rsttrace"), "trace", "--json",
                          "--duration", "1"], cwd="/", capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "tracing in" in res.stderr
