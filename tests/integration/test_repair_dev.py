"""scripts/repair-dev (run by scripts/setup) puts back device nodes that
an image build deleted from the host's /dev, from sysfs, and touches
nothing that is in place. Needs root (mknod)."""

import os
import stat
import subprocess

import pytest

pytestmark = pytest.mark.root
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "repair-dev")


def uevent(sysdev, kind, major, minor, name, mode=None):
    d = sysdev / kind / ("%d:%d" % (major, minor))
    d.mkdir(parents=True)
    text = "MAJOR=%d\nMINOR=%d\nDEVNAME=%s\n" % (major, minor, name)
    if mode:
        text += "DEVMODE=%s\n" % mode
    (d / "uevent").write_text(text)


def test_missing_and_replaced_nodes_are_made_again(tmp_path):
    dev, sysdev = tmp_path / "dev", tmp_path / "sys"
    dev.mkdir()
    uevent(sysdev, "char", 1, 3, "null", "0666")
    uevent(sysdev, "char", 10, 200, "net/tun", "0666")
    uevent(sysdev, "block", 7, 0, "loop0")
    uevent(sysdev, "char", 1, 5, "zero", "0666")
    uevent(sysdev, "char", 5, 2, "ptmx")
    uevent(sysdev, "char", 136, 0, "pts/0")
    (dev / "null").write_text("output that went to /dev/null\n")
    os.mknod(str(dev / "zero"), 0o600 | stat.S_IFCHR, os.makedev(1, 5))
    os.symlink("pts/ptmx", str(dev / "ptmx"))
    zero_before = os.lstat(str(dev / "zero"))

    res = subprocess.run([SCRIPT, str(dev), str(sysdev)],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr

    def node(name):
        st = os.lstat(str(dev / name))
        return stat.S_IFMT(st.st_mode), st.st_rdev, stat.S_IMODE(st.st_mode)
    assert node("null") == (stat.S_IFCHR, os.makedev(1, 3), 0o666)
    assert node("net/tun") == (stat.S_IFCHR, os.makedev(10, 200), 0o666)
    assert node("loop0") == (stat.S_IFBLK, os.makedev(7, 0), 0o600)
    # what was in place stays as it was
    assert os.lstat(str(dev / "zero")) == zero_before
    assert os.path.islink(str(dev / "ptmx"))
    assert not (dev / "pts").exists()
    assert sorted(res.stdout.splitlines()) == sorted([
        "repair-dev: %s/loop0 was missing: made it again (b 7:0, mode 0600)"
        % dev,
        "repair-dev: %s/net/tun was missing: made it again (c 10:200, mode "
        "0666)" % dev,
        "repair-dev: %s/null was a regular file: made it again (c 1:3, mode "
        "0666)" % dev])
    # a second run finds nothing to do
    again = subprocess.run([SCRIPT, str(dev), str(sysdev)],
                           capture_output=True, text=True, timeout=30)
    assert again.returncode == 0 and again.stdout == ""


def test_a_healthy_dev_is_left_alone():
    before = {e.name: os.lstat(e.path) for e in os.scandir("/dev")}
    assert stat.S_ISCHR(before["null"].st_mode), \
        "this host's /dev/null is not a device: run scripts/setup"
    res = subprocess.run([SCRIPT], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""
    after = {e.name: os.lstat(e.path) for e in os.scandir("/dev")}
    for name, st in before.items():
        assert name in after and after[name].st_ino == st.st_ino, name
