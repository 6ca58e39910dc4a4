"""The network namespaces a killed run of the lab left behind, removed by
the next run.

A run's namespaces are named rsttrace-<pid>-<n>-a and -b
(netns.NamespacePair) and removed when it ends, even on SIGTERM or Ctrl-C;
a run killed with SIGKILL cannot, so the next `scenarios run` or `demo`
removes those whose process is gone. The veth pair, nft tables and
sysctls of a scenario live inside its namespaces and go with them.

A namespace whose pid is running is left alone (it may be a concurrent
run's), unless that process started after the namespace was made: then
the pid was reused, and the namespace's maker is gone.
"""

import os
import re

from pyroute2 import netns

from rsttrace.lab import processes

NAME = re.compile(r"rsttrace-(\d+)-\d+-[ab]")
# boot time is known to a second, the namespace's making to a nanosecond
CLOCK_SLACK_S = 2


def owner_gone(pid, made_at):
    """Whether the process that made a namespace at `made_at` (seconds
    since the epoch) is no longer running."""
    started = processes.started_at(pid)
    return started is None or started > made_at + CLOCK_SLACK_S


def stale_namespaces(directory=netns.NETNS_RUN_DIR):
    """{pid: [namespace name]} of the rsttrace namespaces whose maker is
    gone."""
    stale = {}
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return stale
    for name in names:
        m = NAME.fullmatch(name)
        if not m:
            continue
        try:
            made_at = os.stat(os.path.join(directory, name)).st_mtime
        except FileNotFoundError:        # its run removed it meanwhile
            continue
        pid = int(m.group(1))
        if owner_gone(pid, made_at):
            stale.setdefault(pid, []).append(name)
    return stale


def remove_stale_namespaces(say):
    """Remove the namespaces of runs that are gone, saying so with
    say(line); returns the names removed."""
    removed = []
    for pid, names in sorted(stale_namespaces().items()):
        gone = []
        for name in names:
            try:
                netns.remove(name)
            except FileNotFoundError:    # another run removed it first
                continue
            gone.append(name)
        if gone:
            say("rsttrace: removed network namespaces %s, left by process "
                "%d, which is gone (killed before it could remove them)"
                % (", ".join(gone), pid))
            removed += gone
    return removed
