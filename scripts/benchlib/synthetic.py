"""Made-up raw events for the growth benchmark (user space): a
flood's events (hping3 SYNs to a closed port, tcp:tcp_send_reset) whose
stacks are real kernel addresses, symbolised by bcc as rsttrace does."""

import ipaddress

FRAMES = ("tcp_v4_send_reset", "tcp_v4_rcv", "ip_protocol_deliver_rcu",
          "ip_local_deliver_finish", "__netif_receive_skb_one_core",
          "process_backlog", "__napi_poll", "net_rx_action",
          "handle_softirqs")


def kernel_addresses(names=FRAMES):
    """{name: address} from /proc/kallsyms (root sees the addresses)."""
    want, out = set(names), {}
    with open("/proc/kallsyms") as f:
        for line in f:
            addr, _, name = line.split()[:3]
            if name in want and name not in out:
                out[name] = int(addr, 16)
    missing = want - set(out)
    if missing:
        raise RuntimeError("not in /proc/kallsyms: %s" % sorted(missing))
    return out


class FakeKernel:
    """Stack keys to addresses as the BPF program's `stacks` table would
    give them: stack `key` is the flood's path with a first frame of its
    own (key bytes into tcp_v4_send_reset, and on into what follows it),
    the rest of the path shared."""

    def __init__(self):
        addrs = kernel_addresses()
        self.first = addrs[FRAMES[0]]
        self.rest = [addrs[n] + 0x10 for n in FRAMES[1:]]

    def stack(self, key):
        return [self.first + key, *self.rest]


def decoder():
    """A Decoder as a session makes one, on the FakeKernel's stacks."""
    from bcc import BPF
    from rsttrace.attribution import attribute
    from rsttrace.kernel.reasons import ReasonNames
    from rsttrace.trace.decode import Decoder
    kernel = FakeKernel()
    return Decoder(ReasonNames({1: "NO_SOCKET"}), 250, kernel.stack,
                   lambda addr: BPF.ksym(addr).decode("ascii", "replace"),
                   None, attribute)


def raw_events(n, stacks=1, peers=1, namespaces=1, variants=1):
    """n raw events (bytes) cycling through `stacks` stack keys, `peers`
    peer addresses, `namespaces` netns and `variants` packet flags (a
    shape each)."""
    from rsttrace import abi
    base = dict(ts_ns=10 ** 12, skaddr=0, lingertime=0, stack_key=1,
                pid=123, tid=123, netns=4026532255, reason=1, seq=0, ack=7,
                rcv_nxt=0, snd_nxt=0, rcv_unread=0, snd_unsent=0,
                snd_unacked=0, backlog=0, backlog_max=0, seg_len=0,
                linger2=0, sport=9, dport=1024,
                saddr=ipaddress.IPv6Address("::ffff:198.18.1.2").packed,
                daddr=ipaddress.IPv6Address("::ffff:198.18.1.1").packed,
                family=4, kind=1, hook=6, state=0,
                flags=abi.EV_PACKET | abi.EV_SEQ, seg_flags=2,
                facts=abi.FACT_PACKET | abi.FACT_SEQ_ZERO, pad=0,
                comm=b"hping3".ljust(16, b"\0"), owner_pid=0, sock_ino=0,
                owner_comm=b"\0" * 16)
    out = []
    for i in range(n):
        v = dict(base, ts_ns=10 ** 12 + i * 3000, dport=1024 + i % 50000,
                 stack_key=1 + i % stacks, netns=4026531840 + i % namespaces,
                 seg_flags=(2, 0x12, 0x10, 0x11)[i % variants])
        v["daddr"] = v["daddr"][:12] + (0x0a000000 + i % peers).to_bytes(
            4, "big")
        out.append(abi.RAW_STRUCT.pack(*[v[k] for k, _ in abi.RAW_FIELDS])
                   .ljust(abi.RAW_SIZE, b"\0"))
    return out


def stream_cost(dec, raws):
    """µs of CPU per event to unpack, decode and write raws as JSON lines
    (to /dev/null)."""
    import os
    import time
    from rsttrace import abi
    from rsttrace.output.writers import JsonWriter
    from rsttrace.trace.decode import WHO_FIELDS
    with open(os.devnull, "w") as sink:
        w = JsonWriter(sink)
        # the path of `trace --json` (Session._raw): lines from the
        # events' values, no record made
        event, write, unpack = dec.event, w.event_of, abi.unpack_from
        who = (None,) * len(WHO_FIELDS)
        t0 = time.process_time()
        for raw in raws:
            write(*event(unpack(raw, 0)), who)
        w.flush()
        took = time.process_time() - t0
    return took / len(raws) * 1e6
