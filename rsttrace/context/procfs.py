"""Reading /proc and the container runtimes' state files, as root, safely.

Processes come and go while rsttrace reads: every reader returns None (or
nothing) when what it reads has gone, never raises. Reads are bounded.
A state file is read only when it is a regular file (not through a symlink
at its last component) owned by the user the process that named it runs
as, or by root: a user cannot point rsttrace at a file that user could not
read (tests/unit/test_context_runtimes.py tries).
"""

import os
import stat

PROC = "/proc"
SMALL = 1 << 16          # /proc files rsttrace reads are far smaller
STATE_LIMIT = 8 << 20    # a runtime's state file (config.json...)


def read_file(path, limit=SMALL, owners=None):
    """The bytes of a regular file (at most `limit`), or None. With
    `owners`, only a file owned by one of those uids."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC |
                     os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        if owners is not None and st.st_uid not in owners:
            return None
        chunks, left = [], limit
        while left > 0:
            chunk = os.read(fd, min(left, SMALL))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks) if left > 0 else None    # too big: refused
    except OSError:
        return None
    finally:
        os.close(fd)


def _link_inode(path, prefix):
    """N of a /proc link reading `prefix[N]` (ns/net, fd/K), or None."""
    try:
        target = os.readlink(path)
    except OSError:
        return None
    if target.startswith(prefix) and target.endswith("]"):
        num = target[len(prefix):-1]
        if num.isdigit():
            return int(num)
    return None


class Proc:
    """A /proc tree (tests give a directory laid out like one)."""

    def __init__(self, root=PROC):
        self.root = root

    def _path(self, pid, *parts):
        return os.path.join(self.root, str(pid), *parts)

    def pids(self):
        try:
            names = os.listdir(self.root)
        except OSError:
            return []
        return sorted(int(n) for n in names if n.isdigit())

    def text(self, pid, name):
        raw = read_file(self._path(pid, name))
        return None if raw is None else raw.decode("utf-8", "replace")

    def comm(self, pid):
        text = self.text(pid, "comm")
        return text.rstrip("\n") if text else None

    def ppid(self, pid):
        text = self.text(pid, "stat")
        try:
            # comm, in parentheses, may hold spaces and parentheses
            return int(text.rsplit(")", 1)[1].split()[1])
        except (AttributeError, IndexError, ValueError):
            return None

    def uid(self, pid):
        try:
            return os.stat(self._path(pid)).st_uid
        except OSError:
            return None

    def cmdline(self, pid):
        raw = read_file(self._path(pid, "cmdline"))
        if not raw:
            return []
        return raw.rstrip(b"\0").decode("utf-8", "replace").split("\0")

    def cgroup(self, pid):
        """The process's cgroup path: the unified (v2) one, else the v1
        one of the `pids`/`memory`/`name=systemd` hierarchy."""
        text = self.text(pid, "cgroup")
        if not text:
            return None
        paths = {}
        for line in text.splitlines():
            parts = line.split(":", 2)
            if len(parts) == 3:
                for ctl in parts[1].split(",") or [""]:
                    paths[ctl] = parts[2]
        for ctl in ("pids", "memory", "name=systemd", ""):
            if paths.get(ctl) not in (None, "/"):
                return paths[ctl]
        return paths.get("")

    def netns(self, pid):
        """The inode of the process's network namespace."""
        return _link_inode(self._path(pid, "ns", "net"), "net:[")

    def socket_inodes(self, pid):
        """The inodes of the sockets among the process's open files."""
        fd_dir = self._path(pid, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            return []
        out = []
        for fd in fds:
            ino = _link_inode(os.path.join(fd_dir, fd), "socket:[")
            if ino is not None:
                out.append(ino)
        return out
