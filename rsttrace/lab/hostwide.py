"""Host-wide settings a scenario changes for a moment, put back even when
the run is killed.

A scenario that changes a sysctl outside its namespaces (memory-pressure:
net.ipv4.tcp_max_orphans, with --host-wide) restores it in a `finally`,
which SIGKILL skips. So the run first records the old value in a state
file, /run/rsttrace/sysctl.<name>, and removes the file once the value is
back; the next run finds the file of a run that is gone and restores the
value from it (restore_stale). The file also keeps two runs from changing
the same setting at once: the second would record the first one's
temporary value as the one to restore.

/run/rsttrace is made root-only (0700) and must stay so: what is in it is
written to /proc/sys. Its files are made with O_EXCL and opened with
O_NOFOLLOW, so a planted file or symlink is refused, not followed.
"""

import contextlib
import json
import os
import re
import stat

from rsttrace.errors import RsttraceError
from rsttrace.lab import processes

STATE_DIR = "/run/rsttrace"
PROC_SYS = "/proc/sys"
PREFIX = "sysctl."
NAME = re.compile(r"net(\.[a-z0-9_]+)+")
VALUE = re.compile(r"-?\d+([ \t]+-?\d+)*")
STATE_MAX = 4096        # bytes: a state file is one small JSON object


def state_dir(directory=STATE_DIR):
    """The state directory, made if missing; refused unless it is a real
    directory of ours (root's: the lab runs as root) that nobody else may
    enter."""
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(directory)
    if (not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or
            st.st_mode & 0o077):
        raise RsttraceError(
            "%s is not a directory private to rsttrace's user (mode %o, "
            "owner %d)"
            % (directory, stat.S_IMODE(st.st_mode), st.st_uid),
            "remove it (rm -r %s): rsttrace makes it again" % directory)
    return directory


def sysctl_path(name):
    if not NAME.fullmatch(name):
        raise ValueError("not a net.* sysctl name: %r" % name)
    return os.path.join(PROC_SYS, *name.split("."))


def read_sysctl(name):
    with open(sysctl_path(name)) as f:
        return f.read().strip()


def write_sysctl(name, value):
    if not VALUE.fullmatch(value):
        raise ValueError("not a sysctl value: %r" % value)
    with open(sysctl_path(name), "w") as f:
        f.write(value)


def _state_path(directory, name):
    return os.path.join(directory, PREFIX + name)


def _create_state(path, record):
    """Write the state file; False if one is there already."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                     os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(record))
        f.flush()
        os.fsync(f.fileno())
    return True


def _read_state(path):
    """The record of a state file; None if it is not one of ours (then it
    is left alone)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd) as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > STATE_MAX:
            return None
        try:
            rec = json.loads(f.read())
        except ValueError:
            return None
    ok = (isinstance(rec, dict) and isinstance(rec.get("sysctl"), str) and
          NAME.fullmatch(rec["sysctl"]) and
          isinstance(rec.get("value"), str) and
          VALUE.fullmatch(rec["value"]) and
          isinstance(rec.get("pid"), int) and
          isinstance(rec.get("start"), int))
    return rec if ok else None


def _restore(path, rec, say):
    """Put back the value a gone run recorded, and drop its file."""
    name, old = rec["sysctl"], rec["value"]
    if read_sysctl(name) != old:
        write_sysctl(name, old)
        say("rsttrace: restored %s to %s: run %d changed it and was "
            "killed before it could put it back" % (name, old, rec["pid"]))
    os.unlink(path)


def restore_stale(say, directory=STATE_DIR):
    """Restore the settings of runs that are gone (see the module)."""
    if not os.path.isdir(directory):
        return
    directory = state_dir(directory)
    for entry in sorted(os.listdir(directory)):
        if not entry.startswith(PREFIX):
            continue
        path = os.path.join(directory, entry)
        rec = _read_state(path)
        if rec is None or entry != PREFIX + rec["sysctl"]:
            say("rsttrace: warning: %s is not a state file of rsttrace's, "
                "left alone" % path)
            continue
        if not processes.alive(rec["pid"], rec["start"]):
            _restore(path, rec, say)


@contextlib.contextmanager
def kept(name, say, directory=STATE_DIR):
    """Run the block, which may change sysctl `name`, with its value
    recorded first and put back after (when the block has not done it)."""
    if name is None:
        yield
        return
    path = _state_path(state_dir(directory), name)
    me = os.getpid()
    old = read_sysctl(name)
    record = {"sysctl": name, "value": old, "pid": me,
              "start": processes.start_ticks(me)}
    while not _create_state(path, record):
        rec = _read_state(path)
        if rec is not None and processes.alive(rec["pid"], rec["start"]):
            raise RsttraceError(
                "another rsttrace run (pid %d) is changing %s right now"
                % (rec["pid"], name), "run this scenario after it ends")
        if rec is None:
            raise RsttraceError("%s is not a state file of rsttrace's" % path,
                                "remove it")
        _restore(path, rec, say)      # a killed run's: put back, go on
        old = record["value"] = read_sysctl(name)
    try:
        yield
    finally:
        if read_sysctl(name) != old:
            write_sysctl(name, old)
            say("rsttrace: put %s back to %s" % (name, old))
        os.unlink(path)
