"""-o FILE: a regular file appears whole or not at all; a device, FIFO or
symlink is never replaced by a regular file (bench's `-o /dev/null` once
turned this host's /dev/null into one)."""

import os
import stat
import threading

import pytest

from rsttrace.errors import RsttraceError
from rsttrace.output.outfile import OutputFile


def test_regular_file_appears_only_on_commit(tmp_path):
    path = tmp_path / "out.jsonl"
    out = OutputFile(str(path))
    out.open().write("one\n")
    assert not path.exists()
    out.commit()
    assert path.read_text() == "one\n"
    assert os.listdir(str(tmp_path)) == ["out.jsonl"]


def test_discard_leaves_an_existing_file_as_it_was(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("before\n")
    out = OutputFile(str(path))
    out.open().write("half")
    out.discard()
    assert path.read_text() == "before\n"
    assert os.listdir(str(tmp_path)) == ["out.jsonl"]


def test_replacing_keeps_the_file_mode(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("old\n")
    os.chmod(str(path), 0o640)
    out = OutputFile(str(path))
    out.open().write("new\n")
    out.commit()
    assert path.read_text() == "new\n"
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o640


def test_a_symlink_stays_and_its_target_is_written(tmp_path):
    target = tmp_path / "real.jsonl"
    target.write_text("old\n")
    link = tmp_path / "link.jsonl"
    os.symlink(str(target), str(link))
    out = OutputFile(str(link))
    out.open().write("new\n")
    out.commit()
    assert os.path.islink(str(link))
    assert target.read_text() == "new\n"


def test_dev_null_stays_a_device():
    before = os.stat("/dev/null")
    assert stat.S_ISCHR(before.st_mode), "/dev/null is not a device here"
    out = OutputFile("/dev/null")
    out.open().write("x" * 100)
    out.commit()
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino
    assert not os.path.exists("/dev/.null.rsttrace-partial")


def test_a_fifo_is_written_through(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(str(fifo))
    got = []
    reader = threading.Thread(target=lambda: got.append(
        open(str(fifo)).read()))
    reader.start()
    out = OutputFile(str(fifo))
    out.open().write("line\n")
    out.commit()
    reader.join(10)
    assert got == ["line\n"]
    assert stat.S_ISFIFO(os.stat(str(fifo)).st_mode)
    assert os.listdir(str(tmp_path)) == ["pipe"]


def test_unwritable_directory_is_one_clear_error(tmp_path):
    with pytest.raises(RsttraceError) as e:
        OutputFile(str(tmp_path / "missing" / "out.jsonl")).open()
    assert "cannot write" in str(e.value)


def test_relative_paths_dotdot_and_a_dangling_link(tmp_path, monkeypatch):
    """What open() did, the safe walk does: relative paths, `..`, a link
    to a file not made yet (created), a relative link."""
    monkeypatch.chdir(tmp_path)
    os.mkdir("sub")
    os.symlink("../made.jsonl", "sub/dangling")
    out = OutputFile("sub/../sub/dangling")
    out.open().write("x\n")
    out.commit()
    assert (tmp_path / "made.jsonl").read_text() == "x\n"
    assert os.path.islink("sub/dangling")


def test_a_link_loop_or_a_directory_is_one_clear_error(tmp_path):
    os.symlink("loop", str(tmp_path / "loop"))
    for path, why in ((tmp_path / "loop", "Too many levels"),
                      (tmp_path, "Is a directory")):
        with pytest.raises(RsttraceError) as e:
            OutputFile(str(path)).open()
        assert why in str(e.value) and "cannot write" in str(e.value)
    assert os.listdir(str(tmp_path)) == ["loop"]


def test_the_trust_rule():
    """fs.protected_symlinks' rule: in a sticky world-writable directory
    only the caller's and the directory owner's entries are trusted."""
    from types import SimpleNamespace as St

    from rsttrace.output.safe_open import trusted
    tmp = St(st_mode=stat.S_IFDIR | 0o1777, st_uid=0)
    own = St(st_mode=stat.S_IFDIR | 0o1777, st_uid=1000)
    assert not trusted(tmp, St(st_uid=65534), uid=0)
    assert trusted(tmp, St(st_uid=0), uid=0)
    assert trusted(tmp, St(st_uid=1000), uid=1000)
    assert trusted(own, St(st_uid=1000), uid=0)      # the directory's owner
    for mode in (0o777, 0o1755, 0o755):             # not sticky and w+o
        assert trusted(St(st_mode=stat.S_IFDIR | mode, st_uid=0),
                       St(st_uid=65534), uid=0)


def test_cannot_write_line(tmp_path):
    """The whole line: what, why (the OS's words, or the error itself when
    it has none), how to fix it."""
    from rsttrace.output.outfile import cannot_write
    e = cannot_write("/x/out", OSError(13, "Permission denied"))
    assert str(e) == ("cannot write /x/out (Permission denied): choose a "
                      "writable path with -o")
    assert e.exit_code == 1
    assert str(cannot_write("o", OSError("odd"))).startswith(
        "cannot write o (odd): ")
    with pytest.raises(RsttraceError) as err:
        OutputFile(str(tmp_path / "nodir" / "out")).open()
    assert str(err.value) == (
        "cannot write %s (No such file or directory): choose a writable "
        "path with -o" % (tmp_path / "nodir" / "out"))


def test_stdout_for_none_and_dash(tmp_path, monkeypatch):
    import sys
    monkeypatch.chdir(tmp_path)
    for path in (None, "", "-"):
        out = OutputFile(path)
        assert out.open() is sys.stdout
        out.commit()
        out.discard()
        assert out.stream is sys.stdout
    assert os.listdir(str(tmp_path)) == []


def test_open_failure_leaves_nothing(tmp_path, monkeypatch):
    """A failure after the temporary file was made (here: wrapping the fd
    fails) removes the file and closes what was opened."""
    import builtins
    from rsttrace.output import outfile as mod
    before = set(os.listdir("/proc/self/fd"))
    real_open = builtins.open

    def failing_open(fd, mode="r", *a, **kw):
        if isinstance(fd, int):
            raise OSError(28, "No space left on device")
        return real_open(fd, mode, *a, **kw)
    monkeypatch.setattr(mod, "open", failing_open, raising=False)
    out = OutputFile(str(tmp_path / "out.jsonl"))
    with pytest.raises(RsttraceError) as e:
        out.open()
    assert str(e.value) == ("cannot write %s (No space left on device): "
                            "choose a writable path with -o"
                            % (tmp_path / "out.jsonl"))
    assert os.listdir(str(tmp_path)) == []
    assert set(os.listdir("/proc/self/fd")) == before
    assert (out.stream, out.tmp, out.target) == (None, None, None)


def test_commit_then_state_is_clean(tmp_path):
    out = OutputFile(str(tmp_path / "o"))
    out.open().write("x\n")
    out.commit()
    assert (out.stream, out.tmp, out.target) == (None, None, None)
    out.commit()                        # a second commit does nothing
    out.discard()
    assert (tmp_path / "o").read_text() == "x\n"
