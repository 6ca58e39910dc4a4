"""A directory laid out like /proc, for the context tests: processes with
comm, stat (ppid), cgroup, cmdline, a network namespace link and socket
fds, owned by the uid given."""

import os


def add(root, pid, comm="sleep", ppid=1, cgroup="/", cmdline=None,
        netns=4026531840, sockets=(), uid=None):
    d = os.path.join(str(root), str(pid))
    os.makedirs(os.path.join(d, "ns"))
    os.makedirs(os.path.join(d, "fd"))
    with open(os.path.join(d, "comm"), "w") as f:
        f.write(comm + "\n")
    with open(os.path.join(d, "stat"), "w") as f:
        f.write("%d (%s) S %d 1 1 0 -1 0 0 0\n" % (pid, comm, ppid))
    with open(os.path.join(d, "cgroup"), "w") as f:
        f.write("0::%s\n" % cgroup)
    with open(os.path.join(d, "cmdline"), "wb") as f:
        f.write(b"".join(a.encode() + b"\0" for a in cmdline or [comm]))
    os.symlink("net:[%d]" % netns, os.path.join(d, "ns", "net"))
    for n, ino in enumerate(sockets, 3):
        os.symlink("socket:[%d]" % ino, os.path.join(d, "fd", str(n)))
    if uid is not None:
        os.chown(d, uid, -1)
    return pid
