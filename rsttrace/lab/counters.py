"""The kernel's TCP counters (/proc/net/netstat and /proc/net/snmp), per
network namespace: the second witness of a scenario. An RST the kernel
sends for a full accept queue also counts TcpExt:ListenOverflows and
TcpExt:EmbryonicRsts; a SO_LINGER {1, 0} close counts TcpExt:TCPAbortOnData.

Both files hold pairs of lines, a header and its values:
    TcpExt: SyncookiesSent SyncookiesRecv ...
    TcpExt: 0 0 ...
Names here are "Group:Name", e.g. "TcpExt:ListenOverflows".
"""

FILES = ("netstat", "snmp")


def parse(text):
    """{"Group:Name": int} from the text of /proc/net/netstat or snmp."""
    counters = {}
    lines = text.splitlines()
    for head, values in zip(lines[::2], lines[1::2]):
        group, _, names = head.partition(":")
        vgroup, _, nums = values.partition(":")
        if group != vgroup:
            raise ValueError("unpaired counter lines: %r / %r"
                             % (head, values))
        for name, num in zip(names.split(), nums.split()):
            counters["%s:%s" % (group, name)] = int(num)
    return counters


def read(proc_net="/proc/thread-self/net"):
    """This thread's namespace's counters (thread-self: a thread that
    entered another namespace with setns reads that namespace's)."""
    counters = {}
    for name in FILES:
        with open("%s/%s" % (proc_net, name)) as f:
            counters.update(parse(f.read()))
    return counters


def delta(before, after):
    """What changed, {"Group:Name": increase}, without the zeros."""
    return {k: v - before.get(k, 0) for k, v in after.items()
            if v != before.get(k, 0)}


def check(expected, changed):
    """Problems with the changes against expectations {"Group:Name": rule},
    a rule being an int (exactly that many) or ">=N"/"0"."""
    problems = []
    for name, rule in sorted(expected.items()):
        got = changed.get(name, 0)
        if isinstance(rule, str) and rule.startswith(">="):
            if got < int(rule[2:]):
                problems.append("%s +%d, expected %s" % (name, got, rule))
        elif got != int(rule):
            problems.append("%s +%d, expected +%d" % (name, got, int(rule)))
    return problems
