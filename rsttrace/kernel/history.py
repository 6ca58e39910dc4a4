"""The kernel versions rsttrace's decisions depend on, each written once,
and the one parser of kernel release strings."""

import re

# enum sk_rst_reason: tcp_v4/v6_send_reset() and tcp_send_active_reset()
# gained a `reason` argument, tcp:tcp_send_reset a `reason` field, and that
# tracepoint fires for RSTs sent without a full socket too (commits of the
# 6.10 merge window; net/ipv4/tcp_ipv4.c, include/trace/events/tcp.h).
RST_REASON = (6, 10)
# tcp_reset(sk) became tcp_reset(sk, skb) (net/ipv4/tcp_input.c, 5.11).
TCP_RESET_SKB = (5, 11)
# skb:kfree_skb names the socket that dropped the packet (its rx_sk
# argument, include/trace/events/skb.h, 6.11).
KFREE_SKB_SK = (6, 11)
# BPF ring buffers (BPF_MAP_TYPE_RINGBUF), where libbpf cannot be asked.
RINGBUF = (5, 8)


def version(release):
    """(major, minor, patch) of a kernel release string such as
    '6.18.44-fc-v657' or '7.2.13+deb14-amd64'; (0, 0, 0) if it has none."""
    nums = [int(n) for n in re.findall(r"\d+", re.split(r"[-+~]", release,
                                                        1)[0])[:3]]
    return tuple(nums + [0] * (3 - len(nums)))


def since(ver, change):
    """Whether a kernel of version `ver` ((major, minor[, patch]) or a
    release string) has `change` (one of the versions above)."""
    if isinstance(ver, str):
        ver = version(ver)
    return tuple(ver[:2]) >= change
