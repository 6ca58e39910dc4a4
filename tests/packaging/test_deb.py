"""The Debian package as scripts/build-deb makes it (debhelper + pybuild,
dpkg-buildpackage -us -uc -b from a clean copy of the tree): lintian finds
no error and no warning, its fields say what rsttrace needs, it carries what
an operator uses (command, BPF sources, man page, completion, docs, the
units of packaging/systemd) and nothing touches the host's /lib/modules.
Installed, used and removed for real in the VM guests
(tests/vm/test_vm_suite.py, scripts/vm-deb-check)."""

import configparser
import os
import re
import subprocess
import tarfile

import pytest

pytestmark = pytest.mark.root

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SITE = "usr/lib/python3/dist-packages/rsttrace"
# lintian warnings accepted, each with the reason (none today)
ACCEPTED_WARNINGS = {}
UNITS = sorted(f for f in os.listdir(os.path.join(ROOT, "packaging",
                                                  "systemd"))
               if f.endswith((".service", ".socket", ".timer", ".path"))) \
    if os.path.isdir(os.path.join(ROOT, "packaging", "systemd")) else []


def setup_cfg():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    return cfg


def field(deb, name):
    res = subprocess.run(["dpkg-deb", "--field", deb, name],
                         capture_output=True, text=True, check=True)
    return res.stdout.strip()


def alternatives(relation):
    """Each clause of a Depends-like field as a set of package names."""
    return [{re.match(r"\s*([^\s(]+)", alt).group(1)
             for alt in clause.split("|")}
            for clause in relation.split(",") if clause.strip()]


@pytest.fixture(scope="module")
def tree(deb_package, tmp_path_factory):
    """The package's files, unpacked."""
    deb, _ = deb_package
    where = tmp_path_factory.mktemp("unpacked")
    subprocess.run(["dpkg-deb", "-x", deb, str(where)], check=True)
    subprocess.run(["dpkg-deb", "-e", deb, str(where / "DEBIAN")],
                   check=True)
    return where


def test_lintian_finds_no_error_and_no_unexplained_warning(deb_package):
    _, lintian = deb_package
    tags = re.findall(r"^([EW]): rsttrace[^:]*: (\S+)", lintian, re.M)
    assert not [t for t in tags if t[0] == "E"], lintian
    assert not [t for t in tags if t[1] not in ACCEPTED_WARNINGS], lintian


def test_fields(deb_package):
    deb, _ = deb_package
    assert field(deb, "Package") == "rsttrace"
    assert field(deb, "Architecture") == "all"
    assert field(deb, "Version") == setup_cfg()["metadata"]["version"]
    depends = alternatives(field(deb, "Depends"))
    single = {next(iter(c)) for c in depends if len(c) == 1}
    assert {"python3-bpfcc", "python3-pyroute2", "python3-click",
            "python3-tabulate", "iproute2"} <= single, depends
    # every run-time requirement of setup.cfg, by Debian's name for it
    # (dh_python3 reads them from the metadata: one list, not two)
    reqs = setup_cfg()["options"]["install_requires"].split()
    for req in reqs:
        name = re.match(r"[A-Za-z0-9_.-]+", req).group(0)
        assert "python3-" + name.lower().replace("_", "-") in single, req
    assert not [c for c in depends if any("bcc" in p and p != "python3-bpfcc"
                                          for p in c)]
    recommends = alternatives(field(deb, "Recommends"))
    assert {"linux-headers-amd64", "linux-headers-arm64"} <= recommends[0]
    description = field(deb, "Description")
    assert "generic" in description and "headers" in description


def test_contents(tree):
    def there(path):
        return os.path.isfile(os.path.join(tree, path))
    assert os.access(os.path.join(tree, "usr/bin/rsttrace"), os.X_OK)
    with open(os.path.join(tree, "usr/bin/rsttrace")) as f:
        assert f.readline().strip() == "#!/usr/bin/python3"
    for name in os.listdir(os.path.join(ROOT, "bpf")):
        with open(os.path.join(ROOT, "bpf", name), "rb") as a, \
                open(os.path.join(tree, SITE, "bpf", name), "rb") as b:
            assert a.read() == b.read(), name
    assert there(SITE + "/lab/expectations.json")
    assert there("usr/share/man/man1/rsttrace.1.gz")
    for path in ("usr/share/bash-completion/completions/rsttrace",
                 "usr/share/zsh/vendor-completions/_rsttrace",
                 "usr/share/fish/vendor_completions.d/rsttrace.fish"):
        with open(os.path.join(tree, path)) as f:
            assert "_RSTTRACE_COMPLETE" in f.read(), path
    for doc in ("README.md.gz", "README.Debian", "causes.md.gz",
                "json-schema.md.gz", "record.schema.json", "pcap.md.gz",
                "copyright"):
        assert there("usr/share/doc/rsttrace/" + doc), doc
    for unit in UNITS:
        with open(os.path.join(tree, "lib/systemd/system", unit)) as f:
            text = f.read()
        assert "/usr/local/bin" not in text, unit
        assert re.search(r"^ExecStart=/usr/bin/rsttrace ", text, re.M), unit
    allowed = ("usr/bin/rsttrace", "usr/lib/python3/dist-packages/",
               "usr/share/", "lib/systemd/system/", "DEBIAN/")
    files = [os.path.relpath(os.path.join(d, f), tree)
             for d, _, fs in os.walk(tree) for f in fs]
    assert not [f for f in files if not f.startswith(allowed)]
    assert len([f for f in files
                if f.startswith("lib/systemd/system/")]) == len(UNITS)


def test_maintainer_scripts_leave_the_kernel_trees_alone(tree):
    """The headers are found at run time (rsttrace/kernel/headers.py): no
    script links anything into /lib/modules; units are not enabled."""
    scripts = [f for f in os.listdir(tree / "DEBIAN")
               if f in ("preinst", "postinst", "prerm", "postrm")]
    for name in scripts:
        text = (tree / "DEBIAN" / name).read_text()
        assert "/lib/modules" not in text and "ln -s" not in text, name
        # a unit is enabled again on upgrade only if it was enabled
        assert text.count("deb-systemd-helper enable") == \
            text.count("deb-systemd-helper --quiet was-enabled"), name


def test_man_page_is_the_generated_one(tree):
    import gzip
    with gzip.open(tree / "usr/share/man/man1/rsttrace.1.gz", "rt") as f:
        page = f.read()
    sections = re.findall(r'^\.SS "rsttrace ([a-z ]+?) [\[A-Z]', page, re.M)
    assert sections == ["causes", "convert", "demo", "doctor", "exporter",
                        "matrix", "report", "scenarios", "scenarios list",
                        "scenarios run", "trace"]
    assert ".SH KERNEL HEADERS" in page
