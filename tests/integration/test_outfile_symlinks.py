"""`-o FILE` as root in a directory other users can write to (/tmp): user
nobody's symlink (or file) planted under the name is refused and what it
points to stays byte-identical, whatever fs.protected_symlinks says; a
link of root's own, or any link in a directory that is not sticky
world-writable, is followed as before. The links are planted by nobody for
real (setpriv), in directories each test makes itself."""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from rsttrace.output import safe_open
from rsttrace.output.outfile import OutputFile

pytestmark = pytest.mark.root

RSTTRACE = os.path.join(os.path.dirname(sys.executable), "rsttrace")
NOBODY = 65534
VICTIM_TEXT = b"root:x:0:0:root:/root:/bin/bash\n"


def as_nobody(*args):
    subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                    "--clear-groups", *args], check=True, timeout=30)


@pytest.fixture()
def dirs():
    """(sticky world-writable dir like /tmp, root-only dir with the
    victim file in it); both removed after."""
    shared = tempfile.mkdtemp(prefix="rsttrace-shared-")
    os.chmod(shared, 0o1777)
    private = tempfile.mkdtemp(prefix="rsttrace-private-")
    victim = os.path.join(private, "victim")
    with open(victim, "wb") as f:
        f.write(VICTIM_TEXT)
    yield shared, victim
    shutil.rmtree(shared)
    shutil.rmtree(private)


def unchanged(victim):
    with open(victim, "rb") as f:
        return f.read() == VICTIM_TEXT


def written(path, text="new\n"):
    out = OutputFile(path)
    out.open().write(text)
    out.commit()


def test_nobodys_link_in_a_sticky_dir_is_refused(dirs):
    shared, victim = dirs
    link = os.path.join(shared, "x.jsonl")
    as_nobody("ln", "-s", victim, link)
    with pytest.raises(safe_open.Refused) as e:
        written(link)
    assert str(e.value).startswith(
        "%s is a symlink owned by uid 65534 in a world-writable directory: "
        "refusing to write through it: " % link)
    assert "\n" not in str(e.value)
    assert unchanged(victim)
    assert os.listdir(shared) == ["x.jsonl"]    # no temporary file left


def test_nobodys_link_to_a_directory_on_the_way_is_refused(dirs):
    shared, victim = dirs
    as_nobody("ln", "-s", os.path.dirname(victim),
              os.path.join(shared, "logs"))
    with pytest.raises(safe_open.Refused) as e:
        written(os.path.join(shared, "logs", "victim"))
    assert "%s/logs is a symlink owned by uid 65534" % shared in str(e.value)
    assert unchanged(victim)


def test_nobodys_file_in_a_sticky_dir_is_refused(dirs):
    """Writing into it would let its owner read the capture."""
    shared, _ = dirs
    path = os.path.join(shared, "x.jsonl")
    as_nobody("touch", path)
    with pytest.raises(safe_open.Refused) as e:
        written(path)
    assert "is a file owned by uid 65534" in str(e.value)
    assert os.path.getsize(path) == 0


def test_roots_own_link_in_a_sticky_dir_is_followed(dirs):
    shared, victim = dirs
    link = os.path.join(shared, "x.jsonl")
    os.symlink(victim, link)
    written(link)
    assert os.path.islink(link)
    with open(victim) as f:
        assert f.read() == "new\n"


@pytest.mark.parametrize("mode", [0o755, 0o777])
def test_any_link_in_a_dir_that_is_not_sticky_is_followed(dirs, mode):
    """nobody's own directory (or a world-writable one without the sticky
    bit): the kernel follows links there, so does rsttrace."""
    shared, victim = dirs
    theirs = os.path.join(shared, "theirs")
    as_nobody("mkdir", theirs)
    os.chmod(theirs, mode)
    link = os.path.join(theirs, "x.jsonl")
    as_nobody("ln", "-s", victim, link)
    written(link)
    with open(victim) as f:
        assert f.read() == "new\n"


def test_a_link_of_the_sticky_dirs_owner_is_followed(dirs):
    """fs.protected_symlinks trusts the directory's owner, who could
    replace anything in it anyway."""
    shared, victim = dirs
    theirs = os.path.join(shared, "theirs")
    as_nobody("mkdir", "-m", "1777", theirs)
    link = os.path.join(theirs, "x.jsonl")
    as_nobody("ln", "-s", victim, link)
    written(link)
    with open(victim) as f:
        assert f.read() == "new\n"


def test_a_link_planted_after_the_walk_is_refused(dirs, monkeypatch):
    """Time of check to time of use: the name was free when the path was
    walked, nobody's link is there when the file is opened. The open
    (O_NOFOLLOW) fails, the path is walked again, the link refused."""
    shared, victim = dirs
    path = os.path.join(shared, "x.jsonl")
    real_resolve = safe_open.resolve
    planted = []

    def resolve_then_plant(p, follow_last=True):
        target = real_resolve(p, follow_last)
        if not planted:
            as_nobody("ln", "-s", victim, path)
            planted.append(path)
        return target
    monkeypatch.setattr(safe_open, "resolve", resolve_then_plant)
    with pytest.raises(safe_open.Refused):
        safe_open.open_for_write(path)
    assert planted and unchanged(victim)


def test_a_link_planted_before_the_rename_is_replaced_not_followed(dirs):
    """The whole-or-nothing rename replaces a link that appeared at the
    name during the run; its target is left alone."""
    shared, victim = dirs
    path = os.path.join(shared, "x.jsonl")
    out = OutputFile(path)
    out.open().write("new\n")
    as_nobody("ln", "-s", victim, path)
    out.commit()
    assert not os.path.islink(path) and unchanged(victim)
    with open(path) as f:
        assert f.read() == "new\n"


def test_trace_refuses_nobodys_link_in_one_line(dirs):
    shared, victim = dirs
    link = os.path.join(shared, "x.jsonl")
    as_nobody("ln", "-s", victim, link)
    res = subprocess.run([RSTTRACE, "trace", "--json", "--duration", "1",
                          "-o", link], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode != 0
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(
        "rsttrace: error: %s is a symlink owned by uid 65534 in a "
        "world-writable directory: refusing to write through it: " % link)
    assert unchanged(victim)
    assert os.path.islink(link)


# -- the numbered files of a rotated capture (trace -o FILE -C SIZE) --------

def rotating(path, **kw):
    from rsttrace.output.capture import Capture
    warned = []
    out = Capture(path, rotate_bytes=100, warn=warned.append, **kw)
    out.warned = warned
    return out


def fill(out, lines=10):
    for n in range(lines):
        out.write('{"kind":"sent","n":%d,"pad":"%s"}\n' % (n, "x" * 60))
        out.flush()


def test_nobodys_link_at_a_numbered_name_is_refused_before_the_run(dirs):
    shared, victim = dirs
    path = os.path.join(shared, "x.jsonl")
    as_nobody("ln", "-s", victim, path + ".1")
    out = rotating(path)
    with pytest.raises(safe_open.Refused) as e:
        out.open()
    assert str(e.value).startswith(
        "%s.1 is a symlink owned by uid 65534 in a world-writable directory: "
        "refusing to write through it: " % path)
    assert unchanged(victim)
    assert os.listdir(shared) == ["x.jsonl.1"]      # FILE it made: removed


def test_nobodys_file_at_a_numbered_name_is_refused_before_the_run(dirs):
    shared, _ = dirs
    path = os.path.join(shared, "x.jsonl")
    as_nobody("touch", path + ".2.gz")
    with pytest.raises(safe_open.Refused) as e:
        rotating(path, compress=True).open()
    assert "x.jsonl.2.gz is a file owned by uid 65534" in str(e.value)
    assert sorted(os.listdir(shared)) == ["x.jsonl.2.gz"]


def test_nobodys_link_planted_at_the_next_name_mid_run_is_refused(dirs):
    """The name was free when the run began; nobody's link is there when
    the file is rotated: it is neither followed nor replaced, the run
    ends with the one line, and FILE holds whole lines."""
    shared, victim = dirs
    path = os.path.join(shared, "x.jsonl")
    out = rotating(path)
    out.open()
    out.begin()
    as_nobody("ln", "-s", victim, path + ".1")
    with pytest.raises(safe_open.Refused) as e:
        fill(out)
    assert "x.jsonl.1 is a symlink owned by uid 65534" in str(e.value)
    out.discard()
    assert unchanged(victim) and os.path.islink(path + ".1")
    with open(path) as f:
        text = f.read()
    assert text.endswith("\n") and len(text) >= 100


def test_nobodys_link_at_the_compressed_name_is_left_alone(dirs):
    """--compress meets nobody's link at FILE.gz: the file stays
    uncompressed (a warning says why), the link is not followed."""
    shared, victim = dirs
    path = os.path.join(shared, "x.jsonl")
    out = rotating(path, compress=True)
    out.open()
    out.begin()
    as_nobody("ln", "-s", victim, path + ".gz")
    fill(out)
    out.close()
    assert unchanged(victim)
    assert os.path.exists(path) and os.path.islink(path + ".gz")
    assert os.path.exists(path + ".1.gz")       # the others are compressed
    assert len(out.warned) == 1
    assert out.warned[0].startswith(
        "could not compress %s, left as it is: %s.gz is a symlink owned by "
        "uid 65534 in a world-writable directory" % (path, path))
    assert not [e for e in os.listdir(shared) if "partial" in e]


def test_trace_refuses_nobodys_link_at_a_numbered_name_in_one_line(dirs):
    shared, victim = dirs
    path = os.path.join(shared, "x.jsonl")
    as_nobody("ln", "-s", victim, path + ".3")
    res = subprocess.run([RSTTRACE, "trace", "--json", "--duration", "1",
                          "-o", path, "-C", "1k"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 1
    assert res.stderr.splitlines() == [
        "rsttrace: error: %s.3 is a symlink owned by uid 65534 in a "
        "world-writable directory: refusing to write through it: remove it, "
        "or write into a directory only you can write to" % path]
    assert unchanged(victim)
