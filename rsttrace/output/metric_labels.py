"""The labels of rsttrace_resets_total: which ones, what their values are,
and how many of them there can be.

Every series Prometheus stores costs memory and index space there for as
long as it is kept, so a label is only worth having if its values are few.

Bounded, always on (values come from fixed kernel and rsttrace tables):
    direction (sent, received, challenge_ack), cause, hook, state, reason,
    family.
Opt-in (`rsttrace exporter --label NAME`), bounded by --max-label-values:
    netns       the network namespace inode (containers and pods come and
                go, so namespaces do too)
    local_port  this host's port of the connection, when it is outside the
                ephemeral range (net.ipv4.ip_local_port_range): the service
                port; a port in that range is "ephemeral"
    container   the container whose processes live in the event's netns
                (rsttrace.context.containers: its name, else its id)
    pod         the pod of that netns: "NAMESPACE/NAME" for Kubernetes,
                "NAME" for a podman pod
Never: pid, comm, peer address, ephemeral port. Each of them takes a new
value with (nearly) every connection, so each would make a series per RST.
Ask `rsttrace trace --json` for those.

An opt-in label keeps at most `max_values` values; further values are
counted under "other". A value that has not counted anything for
`forget_after` seconds is forgotten with its series, making room for new
ones (Prometheus sees that series end; should the value come back, its
counter starts again from zero, which rate() reads as a counter reset).
"""

import collections
import threading
import time

from rsttrace.errors import UsageError

BOUNDED = ("direction", "cause", "hook", "state", "reason", "family")
NONE = "none"
OTHER = "other"
EPHEMERAL = "ephemeral"
FAMILIES = {4: "ipv4", 6: "ipv6"}
RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"

# Labels named from the netns inode by the container index
# (rsttrace.context.containers.ContainerIndex).
NETNS_DERIVED = ("container", "pod")


def ephemeral_range(path=RANGE_FILE):
    """(lo, hi) of this host's ephemeral ports."""
    with open(path) as f:
        lo, hi = (int(v) for v in f.read().split())
    return lo, hi


def _netns(record, _containers):
    return str(record["netns"]) if record.get("netns") else NONE


def _local_port(record, _containers):
    if not record.get("family"):
        return NONE
    return str(record["local_port"]) if record.get("local_port") \
        else EPHEMERAL


def _container(record, containers):
    ctr = containers.of_netns(record.get("netns"))[0]
    return (ctr.name or ctr.id) if ctr is not None else NONE


def _pod(record, containers):
    pod = containers.of_netns(record.get("netns"))[1]
    if pod is None:
        return NONE
    return "%s/%s" % pod if pod.namespace else pod.name


# name -> (how its value is read from a kernel_summary.key_record and the
# container index, what the BPF program must add to its key for it)
OPT_IN = {
    "netns": (_netns, ("-DAGG_NETNS",)),
    "local_port": (_local_port, ("-DAGG_LOCAL_PORT",)),
    "container": (_container, ("-DAGG_NETNS",)),
    "pod": (_pod, ("-DAGG_NETNS",)),
}


def check(names):
    """The opt-in labels asked for, in a fixed order; UsageError for one
    that does not exist."""
    for name in names:
        if name not in OPT_IN:
            raise UsageError(
                "no label %r" % name,
                "choose from %s (pid, addresses and ephemeral ports are "
                "never labels: one series per connection)"
                % ", ".join(OPT_IN))
    return tuple(n for n in OPT_IN if n in names)


def cflags(names, port_range=None):
    """What the BPF program needs to count by these opt-in labels."""
    flags = []
    for name in names:
        flags += [f for f in OPT_IN[name][1] if f not in flags]
    if "local_port" in names:
        lo, hi = port_range or ephemeral_range()
        flags += ["-DEPHEMERAL_LO=%d" % lo, "-DEPHEMERAL_HI=%d" % hi]
    return flags


def bounded_values(record):
    """The values of the BOUNDED labels for one record."""
    return (record["kind"], record.get("cause") or "unknown",
            record.get("hook") or NONE, record.get("state") or NONE,
            record.get("reason") or NONE,
            FAMILIES.get(record.get("family"), NONE))


class ResetCounters:
    """rsttrace_resets_total's series: {label values: count}, fed with
    (record, count) pairs from KernelSummary.harvest(), read by the
    metrics collector from another thread. `containers`: a ContainerIndex,
    needed for the container and pod labels (one is made when not given)."""

    def __init__(self, opt_in=(), max_values=100, forget_after=3600.0,
                 clock=time.monotonic, containers=None):
        self.opt_in = tuple(opt_in)
        if containers is None and set(self.opt_in) & set(NETNS_DERIVED):
            from rsttrace.context.containers import ContainerIndex
            from rsttrace.context.procfs import Proc
            containers = ContainerIndex(Proc())
        self.containers = containers
        self.names = BOUNDED + self.opt_in
        self.max_values = max_values
        self.forget_after = forget_after
        self.clock = clock
        self.series = {}            # label values -> count
        # per opt-in label: value -> when it last counted anything
        self.seen = {n: collections.OrderedDict() for n in self.opt_in}
        self.forgotten = 0          # series dropped by forget()
        self.lock = threading.Lock()

    def _admit(self, name, value, now):
        seen = self.seen[name]
        if value in seen:
            seen[value] = now
            seen.move_to_end(value)
        elif len(seen) < self.max_values:
            seen[value] = now
        else:
            return OTHER
        return value

    def add(self, record, count):
        now = self.clock()
        values = bounded_values(record) + tuple(
            self._admit(n, OPT_IN[n][0](record, self.containers), now)
            for n in self.opt_in)
        with self.lock:
            self.series[values] = self.series.get(values, 0) + count

    def forget(self):
        """Drop the opt-in values idle for forget_after seconds, and their
        series."""
        limit = self.clock() - self.forget_after
        for i, name in enumerate(self.opt_in, len(BOUNDED)):
            seen = self.seen[name]
            idle = set()
            while seen and next(iter(seen.values())) < limit:
                idle.add(seen.popitem(last=False)[0])
            if idle:
                with self.lock:
                    for key in [k for k in self.series if k[i] in idle]:
                        del self.series[key]
                        self.forgotten += 1

    def snapshot(self):
        """[(label values, count)], for one scrape."""
        with self.lock:
            return list(self.series.items())
