"""Growth: rsttrace's cost per event and memory against the number of
distinct kernel stacks, flows and network namespaces in a stream of
events. User space is measured on made-up events (the decoder and the
JSON writer, as a flood drives them; each point in a process of its own,
for its memory); the kernel's netns filter on a real flood."""

import ipaddress
import json
import os
import subprocess
import sys
import time

from benchlib.common import (HERE, RSTTRACE, BpfStats, Traced, log,
                             prog_stats, runs_between, storm)

POINTS = {"stacks": (1, 1000, 16384, 65536, 200000),
          "flows": (1, 1000, 65536, 200000),
          "namespaces": (1, 1000, 200000)}
FRAMES = ["tcp_v4_rcv", "ip_protocol_deliver_rcu", "ip_local_deliver_finish",
          "__netif_receive_skb_one_core", "process_backlog", "__napi_poll",
          "net_rx_action", "handle_softirqs"]


def point(kind, n, events):
    """µs per event and the process's peak memory for `events` events that
    cycle through `n` distinct stacks, flows or namespaces."""
    from rsttrace import abi
    from rsttrace.attribution import attribute
    from rsttrace.kernel.reasons import ReasonNames
    from rsttrace.output.writers import JsonWriter
    from rsttrace.trace.decode import Decoder

    def ksym(addr):
        return ("tcp_v4_send_reset_%x" % addr if addr >= 1 << 20 else
                FRAMES[addr - 1])
    stacks = lambda key: [key] + list(range(1, len(FRAMES) + 1))  # noqa
    dec = Decoder(ReasonNames({1: "NO_SOCKET"}), 250, stacks, ksym, None,
                  attribute)
    base = dict(ts_ns=10 ** 12, skaddr=0, lingertime=0, stack_key=1 << 20,
                pid=123, tid=123, netns=4026532255, reason=1, seq=0, ack=7,
                rcv_nxt=0, snd_nxt=0, rcv_unread=0, snd_unsent=0,
                snd_unacked=0, backlog=0, backlog_max=0, seg_len=0,
                linger2=0, sport=9, dport=1024,
                saddr=ipaddress.IPv6Address("::ffff:198.18.1.2").packed,
                daddr=ipaddress.IPv6Address("::ffff:198.18.1.1").packed,
                family=4, kind=1, hook=6, state=0,
                flags=abi.EV_PACKET | abi.EV_SEQ, seg_flags=2,
                facts=abi.FACT_PACKET | abi.FACT_SEQ_ZERO, pad=0,
                comm=b"hping3".ljust(16, b"\0"))
    raws = []
    for i in range(n):
        v = dict(base)
        if kind == "stacks":
            v["stack_key"] = (1 << 20) + i
        elif kind == "flows":
            v["daddr"] = ipaddress.IPv6Address(
                "::ffff:10.0.0.0").packed[:12] + (0x0a000000 + i).to_bytes(
                    4, "big")
            v["dport"] = 1024 + i % 60000
        else:
            v["netns"] = 4026531840 + i
        raws.append(abi.RAW_STRUCT.pack(*[v[k] for k, _ in abi.RAW_FIELDS])
                    .ljust(abi.RAW_SIZE, b"\0"))
    with open(os.devnull, "w") as sink:
        w = JsonWriter(sink)
        unpack, record, write = abi.unpack_from, dec.record, w.event
        t0 = time.process_time()
        for i in range(events):
            write(record(unpack(raws[i % n], 0)))
        w.flush()
        took = time.process_time() - t0
    # VmHWM: this process's own peak (ru_maxrss would carry the bench's
    # across exec)
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) * 1024 for line in f
                    if line.startswith("VmHWM:"))
    print(json.dumps({"us": took / events * 1e6, "peak": peak}))


def bench_user(points=POINTS, events=200000):
    out = {}
    for kind, ns in points.items():
        for n in ns:
            res = subprocess.run(
                [sys.executable, "-c", "import sys; sys.path[:0] = %r; "
                 "from benchlib.growth import point; point(%r, %d, %d)" % (
                     [os.path.dirname(os.path.dirname(__file__)), HERE],
                     kind, n, max(events, 2 * n))],
                capture_output=True, text=True)
            if res.returncode:
                raise RuntimeError(res.stderr[-500:])
            out[kind, n] = json.loads(res.stdout)
            log("  growth %s %d: %.2f us/event, %.0f MB" % (
                kind, n, out[kind, n]["us"], out[kind, n]["peak"] / 1e6))
    return out


def bench_netns_filter(pair, seconds, sizes=(1, 200)):
    """Kernel ns per run with a --netns filter of 1 and of many namespaces
    (a hash lookup: flat)."""
    out = {}
    extra = ["rsttrace-bench-%d-%d" % (os.getpid(), i)
             for i in range(max(sizes) - 1)]
    try:
        for name in extra:
            subprocess.run(["ip", "netns", "add", name], check=True)
        with BpfStats():
            for size in sizes:
                args = ["--netns", pair.names["b"]]
                for name in extra[:size - 1]:
                    args += ["--netns", name]
                t = Traced([RSTTRACE, "trace", "--summary-only", *args])
                before = prog_stats(t.pid)
                storm(pair, ["--flood"], seconds)
                out[size] = runs_between(before, prog_stats(t.pid))[1]
                t.stop()
                log("  netns filter of %d: %.0f ns/run" % (size, out[size]
                                                            or 0))
    finally:
        for name in extra:
            subprocess.run(["ip", "netns", "delete", name],
                           stderr=subprocess.DEVNULL)
    return out
