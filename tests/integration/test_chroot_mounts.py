"""scripts/chroot-mounts.sh takes an image build's work directory down
without touching what was bind-mounted into it. The image scripts bind the
host's /dev into their chroot; removing the work directory while that mount
stays (a process in the chroot keeps it busy, an unmount fails) would delete
the host's device nodes. Here a tmpfs with a sentinel file stands in for
/dev, kept busy by a process whose working directory is inside it."""

import os
import subprocess

import pytest

pytestmark = pytest.mark.root
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
LIB = os.path.join(REPO, "scripts", "chroot-mounts.sh")


def sh(script, **kw):
    return subprocess.run(["sh", "-c", ". %s; %s" % (LIB, script)],
                          capture_output=True, text=True, timeout=60, **kw)


@pytest.fixture
def shared(tmp_path):
    src = tmp_path / "host-dev"
    src.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(src)], check=True)
    (src / "sentinel").write_text("keep me")
    yield src
    subprocess.run(["umount", "-l", str(src)])


def test_busy_bind_mount_survives_removal(tmp_path, shared):
    work = tmp_path / "work"
    inner = work / "root" / "dev"
    inner.mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(shared), str(inner)], check=True)
    busy = subprocess.Popen(["sleep", "30"], cwd=str(inner))
    try:
        res = sh('remove_workdir "%s"' % work)
    finally:
        busy.kill()
        busy.wait()
    assert res.returncode == 0, res.stderr
    assert not work.exists()
    assert (shared / "sentinel").read_text() == "keep me"
    with open("/proc/self/mounts") as f:
        assert str(work) not in f.read()


def dev_nodes():
    """/dev's entries and their identities."""
    return {e.name: (os.lstat(e.path).st_ino, os.lstat(e.path).st_mode)
            for e in os.scandir("/dev")}


@pytest.fixture
def rootfs(tmp_path):
    """A chroot skeleton; whatever a failed test leaves mounted in it is
    unmounted (a /dev bind left under pytest's tmp directory would be
    walked into by pytest's own clean-up of old runs)."""
    root = tmp_path / "work" / "rootfs"
    for d in ("proc", "sys", "dev", "usr/sbin"):
        (root / d).mkdir(parents=True)
    yield root
    left = sh('mounts_under "%s"' % root.parent).stdout.split()
    for m in left:
        subprocess.run(["umount", "-l", m])


def test_chroot_mount_and_unmount(rootfs):
    root = rootfs
    before = dev_nodes()
    res = sh('chroot_mount "%s" && mounts_under "%s"' % (root, root.parent))
    assert res.returncode == 0, res.stderr
    assert sorted(res.stdout.split()) == sorted(
        str(root / d) for d in ("proc", "sys", "dev", "dev/pts"))
    # package scripts in the chroot start no services
    policy = root / "usr/sbin/policy-rc.d"
    assert subprocess.run([str(policy)]).returncode == 101
    # the caller's variables stay as they were (vm-image's $root did not)
    res = sh('root=/keep m=/keep; chroot_unmount "%s" && mounts_under "%s"; '
             'echo "$root $m"' % (root, root.parent))
    assert res.returncode == 0 and res.stdout == "/keep /keep\n", res.stderr
    assert not policy.exists()
    # the host's /dev, bound into the chroot, lost nothing
    after = dev_nodes()
    assert {n: v for n, v in before.items() if after.get(n) != v} == {}
