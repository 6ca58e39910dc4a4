"""What a tracer can see on a kernel in an attach mode, decided here for
everyone: `doctor`, the lines `trace` prints at start, the scenario
verdicts and the kernel matrix.

The answer comes from facts about the kernel (its version or the
tcp_send_reset tracepoint's format, and the mode), never from which hooks
happened to attach: a hook that should attach and does not is a failure to
report, not something the kernel cannot show.
"""

from rsttrace.kernel import features, history
from rsttrace.trace import hooks

# What a tracer may be unable to see, and why.
BLIND_SPOTS = {
    "challenge_ack": "challenge ACKs: tcp_send_challenge_ack has no "
                     "tracepoint (kprobe or fentry mode sees them)",
    "socketless": "RSTs sent without a full socket (closed port, unknown "
                  "connection, TIME_WAIT): before 6.10 tcp:tcp_send_reset "
                  "does not fire for them (kprobe or fentry mode sees them)",
    "packets": "RSTs from netfilter REJECT rules: they pass no TCP hook "
               "(--packets, or kprobe/fentry on nf_send_reset, sees them)",
    "time_wait": "RSTs that kill TIME_WAIT sockets: no tcp tracepoint fires "
                 "for them (kprobe or fentry mode sees them, tracepoint mode "
                 "with --packets on Linux 6.11+)",
}

# The kinds of RST each blind spot hides: the causes of RSTs sent with no
# full socket (tcp_v4/v6_send_reset from tcp_v4_rcv with no socket or a
# TIME_WAIT one), and of netfilter's.
SOCKETLESS_CAUSES = frozenset(("no-listener", "no-connection",
                               "data-after-close"))


class Visibility:
    """What one attach mode sees on one kernel."""

    def __init__(self, mode, socketless_tracepoint, packets, nf_reject,
                 drop_socket=False):
        self.mode = mode
        # tcp:tcp_send_reset fires for RSTs without a full socket
        self.socketless_tracepoint = socketless_tracepoint
        self.packets = packets          # --packets: the packet hook is on
        self.nf_reject = nf_reject      # the mode hooks nf_send_reset,
        #                                 now or when its module loads
        # skb:kfree_skb names the socket of a dropped packet (rx_sk)
        self.drop_socket = drop_socket

    @classmethod
    def here(cls, mode, packets):
        """On the running kernel: the tracepoint's format tells whether it
        has the 6.10 behaviour, whatever the version string says (the
        version where the format cannot be read, e.g. unprivileged);
        hooks.reachable whether the mode hooks netfilter's reject function
        (in the kernel, or in an installed module, hooked as it loads)."""
        fmt = features.tracepoint_format("tcp", "tcp_send_reset")
        socketless = ("reason" in fmt if fmt is not None else
                      history.since(features.version(), history.RST_REASON))
        nf_reject = mode in ("kprobe", "fentry") and hooks.reachable(
            hooks.by_key("NF_SEND_RESET"), mode, features.load_btf())
        drop = features.tracepoint_format("skb", "kfree_skb")
        drop_socket = ("rx_sk" in drop if drop is not None else
                       history.since(features.version(),
                                     history.KFREE_SKB_SK))
        return cls(mode, socketless, packets, nf_reject, drop_socket)

    @classmethod
    def of_release(cls, release, mode, packets=True):
        """On a kernel known by its release string (a saved result)."""
        return cls(mode, history.since(release, history.RST_REASON),
                   packets, packets,
                   history.since(release, history.KFREE_SKB_SK))

    def sees(self, spot):
        """Whether this tracer sees what BLIND_SPOTS[spot] describes."""
        functions = self.mode in ("kprobe", "fentry")
        if spot == "challenge_ack":
            return functions
        if spot == "socketless":
            return functions or self.socketless_tracepoint
        if spot == "packets":
            return self.packets or (functions and self.nf_reject)
        if spot == "time_wait":
            return functions or (self.packets and self.drop_socket)
        raise KeyError(spot)

    def blind_spots(self):
        """{spot: why} of what this tracer cannot see."""
        return {k: why for k, why in BLIND_SPOTS.items() if not self.sees(k)}

    def hides(self, kind, cause):
        """The blind spot that hides an event of this kind and cause, or
        None when this tracer sees it."""
        spot = spot_of(kind, cause)
        return spot if spot and not self.sees(spot) else None


def spot_of(kind, cause):
    """The blind spot an event of this kind and cause falls in, if any."""
    if kind == "challenge_ack":
        return "challenge_ack"
    if cause == "firewall-reject":
        return "packets"
    if cause == "time-wait-assassination":
        return "time_wait"
    if kind == "sent" and cause in SOCKETLESS_CAUSES:
        return "socketless"
    return None
