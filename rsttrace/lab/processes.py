"""Whether the process that left something behind is still running.

A pid alone does not say: a killed process's pid can be reused, and a
killed child stays in /proc as a zombie until its parent reaps it. So a
process is known by its pid and its start time (/proc/PID/stat field 22,
clock ticks after boot), and a zombie counts as gone.
"""

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def start_ticks(pid):
    """The start time of live process `pid` in clock ticks after boot;
    None when there is no such process or it is a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            # comm, in parentheses, may hold spaces and parentheses itself
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError, ValueError):
        return None
    if fields[0] in ("Z", "X"):          # state: zombie or dead
        return None
    return int(fields[19])


def boot_time():
    """When the system booted, in seconds since the epoch (/proc/stat)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return int(line.split()[1])
    raise RuntimeError("/proc/stat has no btime")


def started_at(pid):
    """When live process `pid` started, in seconds since the epoch (to a
    second: boot time has no finer grain); None when it is gone."""
    ticks = start_ticks(pid)
    return None if ticks is None else boot_time() + ticks / CLK_TCK


def alive(pid, ticks=None):
    """Whether process `pid` runs (and, given `ticks`, is the one that
    started then rather than a later process with its pid)."""
    now = start_ticks(pid)
    return now is not None and (ticks is None or now == ticks)
