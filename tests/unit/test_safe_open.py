"""rsttrace.output.safe_open on paths in a private temporary directory
(every entry trusted there): what the walk reaches, links followed,
errors, and the refusal line (the refusal itself, with another user's
links planted as root, is tests/integration/test_outfile_symlinks.py)."""

import errno
import os
import stat
from types import SimpleNamespace as St

import pytest

from rsttrace.output import safe_open
from rsttrace.output.safe_open import (MAX_LINKS, Refused, create_new,
                                       create_temporary, open_for_write,
                                       resolve)


def reached(path, follow_last=True):
    """(directory the walk ended in, name, lstat or None) of `path`."""
    t = resolve(str(path), follow_last)
    try:
        return (os.readlink("/proc/self/fd/%d" % t.dir_fd), t.name,
                t.st, t.shown)
    finally:
        os.close(t.dir_fd)


def test_plain_file_and_missing_file(tmp_path):
    (tmp_path / "f").write_text("x")
    d, name, st, shown = reached(tmp_path / "f")
    assert (d, name, shown) == (str(tmp_path), "f", str(tmp_path / "f"))
    assert st.st_ino == os.stat(tmp_path / "f").st_ino
    d, name, st, shown = reached(tmp_path / "new")
    assert (d, name, st) == (str(tmp_path), "new", None)


def test_relative_path_and_dots(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkdir("sub")
    d, name, st, shown = reached("./sub//x")
    assert (d, name, st, shown) == (str(tmp_path / "sub"), "x", None,
                                    "sub/x")
    # `.` alone: the directory itself
    d, name, st, shown = reached(".")
    assert (d, name, shown) == (str(tmp_path), ".", ".")
    assert stat.S_ISDIR(st.st_mode)


def test_links_followed_relative_and_absolute(tmp_path):
    os.mkdir(tmp_path / "real")
    os.symlink("real", tmp_path / "rel")                # relative link
    os.symlink(str(tmp_path / "real"), tmp_path / "abs")
    os.symlink("../real/f", tmp_path / "real" / "up")   # to a sibling
    for path in ("rel/f", "abs/f", "real/up"):
        d, name, st, shown = reached(tmp_path / path)
        assert (d, name, st) == (str(tmp_path / "real"), "f", None), path
    # an absolute link restarts at / and names what follows from there
    d, name, st, shown = reached(tmp_path / "abs" / "f")
    assert shown == str(tmp_path / "real" / "f")


def test_a_link_to_a_directory_alone(tmp_path):
    os.mkdir(tmp_path / "real")
    os.symlink(str(tmp_path / "real"), tmp_path / "abs")
    d, name, st, _ = reached(tmp_path / "abs")
    assert (d, name) == (str(tmp_path), "real")
    assert stat.S_ISDIR(st.st_mode)
    # a link to / itself: the walk ends at / (as `.` there)
    os.symlink("/", tmp_path / "root")
    d, name, st, shown = reached(tmp_path / "root")
    assert (d, name, shown) == ("/", ".", "/.")


def test_last_link_kept_when_asked(tmp_path):
    os.symlink("target", tmp_path / "link")
    d, name, st, _ = reached(tmp_path / "link", follow_last=False)
    assert name == "link" and stat.S_ISLNK(st.st_mode)
    d, name, st, _ = reached(tmp_path / "link")
    assert (name, st) == ("target", None)


def test_link_limit(tmp_path):
    """MAX_LINKS links are followed, one more is ELOOP."""
    names = ["l%d" % i for i in range(MAX_LINKS + 1)]
    for here, there in zip(names, names[1:] + ["end"]):
        os.symlink(there, tmp_path / here)
    d, name, st, _ = reached(tmp_path / names[1])       # MAX_LINKS links
    assert (name, st) == ("end", None)
    with pytest.raises(OSError) as e:
        reached(tmp_path / names[0])                    # one more
    assert e.value.errno == errno.ELOOP


def test_a_file_in_the_middle(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(OSError) as e:
        reached(tmp_path / "f" / "x")
    assert e.value.errno == errno.ENOTDIR


def test_a_missing_directory_in_the_middle(tmp_path):
    with pytest.raises(FileNotFoundError):
        reached(tmp_path / "nodir" / "x")


def test_no_fd_left_open(tmp_path):
    before = set(os.listdir("/proc/self/fd"))
    os.symlink("loop", tmp_path / "loop")
    for path in (tmp_path / "loop", tmp_path / "nodir" / "x"):
        with pytest.raises(OSError):
            resolve(str(path))
    fd, target = open_for_write(str(tmp_path / "out"))
    os.close(fd)
    os.close(target.dir_fd)
    assert set(os.listdir("/proc/self/fd")) == before


def test_open_for_write_creates_without_truncating(tmp_path):
    path = tmp_path / "out"
    fd, target = open_for_write(str(path))
    try:
        assert target.name == "out" and target.st is not None
        assert os.fstat(fd).st_ino == target.st.st_ino
        os.write(fd, b"new")
    finally:
        os.close(fd)
        os.close(target.dir_fd)
    path.write_text("0123456789")
    fd, target = open_for_write(str(path))
    os.close(fd)
    os.close(target.dir_fd)
    assert path.read_text() == "0123456789"     # not truncated


def test_open_for_write_through_own_link(tmp_path):
    os.symlink("real", tmp_path / "link")
    fd, target = open_for_write(str(tmp_path / "link"))
    os.close(fd)
    os.close(target.dir_fd)
    assert target.name == "real" and (tmp_path / "real").exists()


def test_open_for_write_gives_up_on_a_path_that_keeps_changing(
        tmp_path, monkeypatch):
    """A name that is another file each time it is opened: a few walks,
    then one clear error."""
    real_resolve = safe_open.resolve
    walks = []

    def resolve_then_swap(path, follow_last=True):
        target = real_resolve(path, follow_last)
        walks.append(path)
        os.replace(str(tmp_path / "other"), str(tmp_path / "out"))
        (tmp_path / "other").write_text("")
        return target
    (tmp_path / "out").write_text("")
    (tmp_path / "other").write_text("")
    monkeypatch.setattr(safe_open, "resolve", resolve_then_swap)
    with pytest.raises(OSError) as e:
        open_for_write(str(tmp_path / "out"))
    assert e.value.errno == errno.EAGAIN
    assert str(e.value) == "[Errno 11] it keeps changing while it is opened"
    assert len(walks) == safe_open.ATTEMPTS


def test_create_new_and_temporary(tmp_path):
    dfd = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.close(create_new(dfd, "n", 0o640))
        assert stat.S_IMODE(os.stat(tmp_path / "n").st_mode) == \
            0o640 & ~current_umask()
        with pytest.raises(FileExistsError):
            create_new(dfd, "n")
        os.symlink("n", tmp_path / "l")
        with pytest.raises(FileExistsError):
            create_new(dfd, "l")                # never through a link
        fd, name = create_temporary(dfd, "out.jsonl")
        os.close(fd)
        assert name.startswith(".out.jsonl.") and \
            name.endswith(".rsttrace-partial")
        assert len(name) == len(".out.jsonl.") + 8 + len(".rsttrace-partial")
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
        fd2, name2 = create_temporary(dfd, "out.jsonl")
        os.close(fd2)
        assert name2 != name
    finally:
        os.close(dfd)


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_create_temporary_retries_taken_names(tmp_path, monkeypatch):
    dfd = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    taken = iter([b"\0\0\0\1", b"\0\0\0\1", b"\0\0\0\2"])
    monkeypatch.setattr(os, "urandom", lambda n: next(taken))
    try:
        fd, first = create_temporary(dfd, "x")
        os.close(fd)
        fd, second = create_temporary(dfd, "x")
        os.close(fd)
    finally:
        os.close(dfd)
    assert (first, second) == (".x.00000001.rsttrace-partial",
                               ".x.00000002.rsttrace-partial")


def test_create_temporary_gives_up(tmp_path, monkeypatch):
    dfd = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    monkeypatch.setattr(os, "urandom", lambda n: b"\0\0\0\0")
    try:
        os.close(create_temporary(dfd, "x")[0])
        with pytest.raises(OSError) as e:
            create_temporary(dfd, "x")
    finally:
        os.close(dfd)
    assert e.value.errno == errno.EEXIST


@pytest.mark.parametrize("mode, kind, doing", [
    (stat.S_IFLNK | 0o777, "a symlink", "write through it"),
    (stat.S_IFIFO | 0o644, "a FIFO", "write into it"),
    (stat.S_IFREG | 0o644, "a file", "write into it")])
def test_refusal_line(mode, kind, doing):
    e = Refused("/tmp/x", St(st_mode=mode, st_uid=65534))
    assert str(e) == ("/tmp/x is %s owned by uid 65534 in a world-writable "
                      "directory: refusing to %s: remove it, or write into "
                      "a directory only you can write to" % (kind, doing))


def test_check_refuses_only_untrusted(tmp_path, monkeypatch):
    dfd = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        st = St(st_mode=stat.S_IFREG | 0o644, st_uid=65534)
        target = safe_open.Target(dfd, "x", st, "shown/x")
        monkeypatch.setattr(safe_open, "trusted", lambda d, s, uid: True)
        safe_open.check(target)
        safe_open.check(target._replace(st=None))
        monkeypatch.setattr(safe_open, "trusted", lambda d, s, uid: False)
        safe_open.check(target._replace(st=None))   # nothing there yet
        with pytest.raises(Refused) as e:
            safe_open.check(target)
        assert str(e.value).startswith("shown/x is a file owned by uid 65534")
    finally:
        os.close(dfd)


def test_a_link_planted_after_the_walk_is_walked_again(tmp_path,
                                                        monkeypatch):
    """Between the walk and the open a link appears under the name: the
    O_NOFOLLOW open fails (ELOOP), the path is walked again, and this time
    the (trusted, own) link is followed."""
    real_resolve = safe_open.resolve
    walks = []

    def resolve_then_plant(path, follow_last=True):
        target = real_resolve(path, follow_last)
        if not walks:
            os.symlink("real", str(tmp_path / "out"))
        walks.append(target.name)
        return target
    monkeypatch.setattr(safe_open, "resolve", resolve_then_plant)
    fd, target = open_for_write(str(tmp_path / "out"))
    os.close(fd)
    os.close(target.dir_fd)
    assert walks == ["out", "real"]
    assert target.name == "real" and (tmp_path / "real").is_file()
    assert os.path.islink(str(tmp_path / "out"))


def test_is_link(tmp_path):
    os.symlink("x", str(tmp_path / "l"))
    (tmp_path / "f").write_text("")
    dfd = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        t = safe_open.Target(dfd, "l", None, "l")
        assert safe_open._is_link(t)
        assert not safe_open._is_link(t._replace(name="f"))
        assert not safe_open._is_link(t._replace(name="missing"))
    finally:
        os.close(dfd)


def test_other_open_errors_are_raised(tmp_path):
    """An error other than a link appearing (here: a directory where the
    file should be) is raised at once, with no fd left behind."""
    before = set(os.listdir("/proc/self/fd"))
    os.mkdir(str(tmp_path / "d"))
    with pytest.raises(IsADirectoryError):
        open_for_write(str(tmp_path / "d"))
    assert set(os.listdir("/proc/self/fd")) == before


def test_created_file_mode_is_0666_less_umask(tmp_path):
    old = os.umask(0o022)
    try:
        fd, target = open_for_write(str(tmp_path / "new"))
        os.close(fd)
        os.close(target.dir_fd)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(str(tmp_path / "new")).st_mode) == 0o644


def test_fds_are_close_on_exec(tmp_path):
    """Neither the output file nor a temporary file leaks into programs
    rsttrace starts (O_CLOEXEC)."""
    import fcntl
    fd, target = open_for_write(str(tmp_path / "o"))
    try:
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        new = create_new(target.dir_fd, "n")
        assert fcntl.fcntl(new, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        os.close(new)
    finally:
        os.close(fd)
        os.close(target.dir_fd)


def test_exact_give_up_errors(tmp_path, monkeypatch):
    dfd = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    calls = []

    def same(n):
        calls.append(n)
        return b"\0\0\0\0"
    monkeypatch.setattr(os, "urandom", same)
    try:
        os.close(create_temporary(dfd, "x")[0])
        calls.clear()
        with pytest.raises(OSError) as e:
            create_temporary(dfd, "x")
    finally:
        os.close(dfd)
    assert str(e.value) == "[Errno 17] no free temporary name"
    assert calls == [4] * 100


def test_check_in_a_sticky_world_writable_directory(tmp_path):
    """The caller's own file there is trusted (the rule is applied to the
    file's lstat, not skipped)."""
    d = tmp_path / "tmp"
    d.mkdir()
    os.chmod(str(d), 0o1777)
    (d / "mine").write_text("")
    t = resolve(str(d / "mine"))
    try:
        safe_open.check(t)
        assert t.st.st_uid == os.geteuid()
    finally:
        os.close(t.dir_fd)
