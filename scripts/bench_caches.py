"""Which of rsttrace's user-space caches pay: the CPU per event of the
session's own data path (Session._raw: decode, attribute, write) with
every cache on, then with each one off, on the workloads that decide it.
Run through scripts/bench-caches; writes bench/CACHES.md.

Each cache is kept only where turning it off costs more than NOISE on a
workload a user meets (README, "Caches"); the table says which.

Events are made up but decoded as the tracer decodes real ones: raw
events (rsttrace.abi.RAW_STRUCT, unpacked as a ring buffer record is),
their stacks read through bcc's table API from a BPF hash map of the
kernel stack table's layout (one bpf() syscall per lookup, as
Tracer.stack makes) holding real kernel addresses, named by bcc's ksym
as Tracer.ksym does. The stacks, states and causes are those of the
recorded scenarios (tests/data/*.jsonl), so the facts and explanations
vary as much as the catalogue's.
"""

import argparse
import contextlib
import functools
import glob
import io
import ipaddress
import json
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)

from rsttrace import abi, attribution, facts  # noqa: E402
from rsttrace.context.enrich import Enricher  # noqa: E402
from rsttrace.output import pcapng, wire_header, writers  # noqa: E402
from rsttrace.output.outfile import OutputFile  # noqa: E402
from rsttrace.trace import decode, hooks, session  # noqa: E402
from rsttrace.trace.tracer import Tracer  # noqa: E402

NOISE = 0.05          # a cache must save more than this on some workload
RECORDINGS = os.path.join(HERE, "tests", "data", "events-*.jsonl")
OUT = os.path.join(HERE, "bench", "CACHES.md")
STACKS_TABLE = """
struct stack_t { u64 ip[%d]; };
BPF_HASH(stacks, u64, struct stack_t, 65536);
""" % abi.STACK_DEPTH


def log(msg):
    print("bench-caches: " + msg, file=sys.stderr, flush=True)


# -- the made-up kernel --------------------------------------------------

def kallsyms():
    """{name: address} of the kernel's text symbols (root sees them)."""
    out = {}
    with open("/proc/kallsyms") as f:
        for line in f:
            addr, kind, name = line.split()[:3]
            if kind in "tTwW" and name not in out:
                out[name] = int(addr, 16)
    return out


def recorded():
    """The event records of the recorded scenarios (every kernel's)."""
    out = []
    for path in sorted(glob.glob(RECORDINGS)):
        with open(path) as f:
            out += [r for r in map(json.loads, f)
                    if r.get("kind") in ("sent", "received", "challenge_ack",
                                         "abort")]
    return out


class Kernel:
    """The stacks of the recordings in a BPF hash map (bcc), keyed as the
    kernel's stack table is: each recorded stack under a key of its own,
    and `extra` variants of the first under new keys (new stacks)."""

    def __init__(self, records, extra):
        from bcc import BPF
        self.bpf = BPF(text=STACKS_TABLE)
        self.table = self.bpf[b"stacks"]
        syms = kallsyms()
        fallback = syms["tcp_v4_rcv"]
        self.keys = {}                  # tuple of frames -> stack key
        for r in records:
            frames = tuple(decode_name(f) for f in r["stack"])
            if frames and frames not in self.keys:
                self.keys[frames] = self._put(
                    len(self.keys) + 1,
                    [syms.get(f, fallback) + 4 for f in frames])
        # a new stack: the first recorded path entered from a new place
        # (its innermost frame at another offset), the rest shared
        first = [syms.get(f, fallback) + 4 for f in next(iter(self.keys))]
        self.extra = [self._put(10 ** 6 + i, [first[0] + i] + first[1:])
                      for i in range(extra)]

    def _put(self, key, addrs):
        leaf = self.table.Leaf()
        for i, a in enumerate(addrs[:abi.STACK_DEPTH]):
            leaf.ip[i] = a
        self.table[self.table.Key(key)] = leaf
        return key

    # the tracer's own reads of its stack table and of kernel symbols
    stack = Tracer.stack
    ksym = Tracer.ksym


def decode_name(frame):
    """A recorded frame without its "+0x.." offset or module suffix."""
    return frame.split("+", 1)[0].split(" ", 1)[0]


class Reasons:
    """ReasonNames' interface over the names the recordings carry."""

    def __init__(self, records):
        names = sorted({r["reason"] for r in records if r.get("reason")})
        self.ids = {n: i + 1 for i, n in enumerate(names)}
        self.names = {i: n for n, i in self.ids.items()}

    def name(self, reason):
        return self.names.get(reason)


def raw_event(rec, key, i, peers, namespaces, reasons):
    """The raw event behind record `rec`, as the i-th of a stream."""
    kinds = {v: k for k, v in abi.KIND_NAMES.items()}
    # an abort is a received event the decoder names by its stack
    kinds["abort"] = abi.KIND_RECEIVED
    hook_ids = {v: k for k, v in hooks.HOOK_NAMES.items()}
    states = {v: k for k, v in abi.TCP_STATES.items()}
    family = rec.get("family") or 4
    peer = ipaddress.ip_address("198.18.0.1") + i % peers
    saddr = ipaddress.IPv6Address("::ffff:198.18.255.1").packed
    daddr = ipaddress.IPv6Address("::ffff:%s" % peer).packed
    if family == 6:
        saddr = ipaddress.IPv6Address("2001:db8::1").packed
        daddr = ipaddress.IPv6Address(int(ipaddress.IPv6Address(
            "2001:db8:1::")) + i % peers).packed
    flags = abi.EV_SEQ | (abi.EV_SOCK if rec.get("state") else 0) | (
        abi.EV_PACKET if rec.get("seg_flags") is not None else 0) | (
        abi.EV_TCP_SOCK if rec.get("snd_nxt") is not None else 0)
    seg = 0
    for bit, name in abi.TCP_FLAG_NAMES:
        if name in (rec.get("seg_flags") or "").split("|"):
            seg |= bit
    v = dict(ts_ns=10 ** 12 + i * 3000, skaddr=0, lingertime=0,
             stack_key=key, pid=1000 + i % 7, tid=1000 + i % 7,
             netns=4026531840 + i % namespaces,
             reason=reasons.ids.get(rec.get("reason"), 0),
             seq=rec.get("seq") or 0, ack=rec.get("ack") or 0, rcv_nxt=0,
             snd_nxt=rec.get("snd_nxt") or 0,
             rcv_unread=rec.get("rcv_unread") or 0,
             snd_unsent=rec.get("snd_unsent") or 0,
             snd_unacked=rec.get("snd_unacked") or 0, backlog=0,
             backlog_max=0, seg_len=rec.get("seg_len") or 0,
             linger2=0, sport=rec.get("sport") or 80,
             dport=1024 + i % 60000, saddr=saddr, daddr=daddr,
             family=family, kind=kinds[rec["kind"]],
             hook=hook_ids.get(rec["hook"], 1),
             state=states.get(rec.get("state"), 0), flags=flags,
             seg_flags=seg, facts=facts.bits_of_record(rec),
             comm=(rec.get("comm") or "app").encode()[:15].ljust(16, b"\0"),
             owner_pid=0, sock_ino=0, owner_comm=b"\0" * 16)
    return abi.RawEvent(**{k: v.get(k, 0) for k, _ in abi.RAW_FIELDS})


def workloads(records, kernel, reasons, events):
    """{name: [raw event]}: what each workload streams."""
    flood_rec = next(r for r in records if r["hook"] in (
        "tcp:tcp_send_reset", "tcp_v4_send_reset") and r.get("seg_flags")
        == "SYN")
    flood_key = kernel.keys[tuple(decode_name(f)
                                  for f in flood_rec["stack"])]
    varied = [(r, kernel.keys[tuple(decode_name(f) for f in r["stack"])])
              for r in records if r["stack"]]
    return {
        # hping3 SYNs to a closed port: one stack, one peer
        "flood": [raw_event(flood_rec, flood_key, i, 1, 1, reasons)
                  for i in range(events)],
        # the catalogue's RSTs from 2000 peers in 50 namespaces
        "varied": [raw_event(*varied[i % len(varied)], i, 2000, 50, reasons)
                   for i in range(events)],
        # every event on a stack not seen before (a stack table churning)
        "new stacks": [raw_event(flood_rec, k, i, 1, 1, reasons)
                       for i, k in enumerate(kernel.extra)],
    }


# -- the data path, as a session runs it ---------------------------------

def stream_cost(kernel, reasons, events, out):
    """µs of CPU per event through Session._raw with a fresh decoder
    and writer (`out`: "json" or "pcapng")."""
    cold()
    # who is behind each event looked up as `trace` does by default
    s = session.Session(tracer=None, enricher=Enricher())
    s.decoder = decode.Decoder(reasons, 250, kernel.stack, kernel.ksym,
                               attribute=attribution.attribute)
    sink = io.StringIO() if out == "json" else io.BytesIO()
    s.writer = (writers.JsonWriter(sink) if out == "json" else
                pcapng.PcapngWriter(sink))
    t0 = time.process_time()
    for ev in events:
        s._raw(ev)
    s._raise_failure()      # what _raw kept, as a session would
    return (time.process_time() - t0) / len(events) * 1e6


def report_cost(records):
    """µs of CPU per saved record attributed (`rsttrace report` on a
    capture without causes)."""
    recs = records * max(1, 20000 // len(records))
    cold()
    t0 = time.process_time()
    for r in recs:
        attribution.attribute_record(r)
    return (time.process_time() - t0) / len(recs) * 1e6


# -- the caches, each turned off ----------------------------------------

LRU = [(decode, "address"), (decode, "_comm"), (abi, "tcp_flags"),
       (abi, "tcp_flag_set"), (facts, "_bit_facts"),
       (attribution, "attribute"), (wire_header, "_flag_bits"),
       (wire_header, "_packed_text")]


def cold():
    """Every module-level cache empty, as in a new process."""
    for module, name in LRU:
        clear = getattr(getattr(module, name), "cache_clear", None)
        if clear is not None:
            clear()


def unwrapped(module, name):
    """An lru_cache'd function of `module` replaced by the bare one,
    wherever it was imported by name."""
    bare = getattr(module, name).__wrapped__
    return [(m, name, bare) for m in (module, session, decode, attribution,
                                      facts, wire_header, pcapng, writers)
            if getattr(m, name, None) is getattr(module, name)]


def emptied(cls, method, attr, value):
    """cls.method with self.attr set to `value` first (a cache emptied
    before each use)."""
    orig = getattr(cls, method)

    @functools.wraps(orig)
    def without(self, *a, **kw):
        setattr(self, attr, value() if callable(value) else value)
        return orig(self, *a, **kw)
    return [(cls, method, without)]


def cleared(cls, method, attr):
    """cls.method with the dict self.attr emptied first (a cache the
    generated code holds itself, emptied before each use)."""
    orig = getattr(cls, method)

    @functools.wraps(orig)
    def without(self, *a, **kw):
        getattr(self, attr).clear()
        return orig(self, *a, **kw)
    return [(cls, method, without)]


def put_back(module, name, size):
    """A function of `module` rsttrace calls bare, wrapped in the
    lru_cache it used to have, wherever it was imported by name."""
    bare = getattr(module, name)
    cached = functools.lru_cache(size)(bare)
    return [(m, name, cached) for m in (module, session, decode, attribution,
                                        facts, wire_header, pcapng, writers)
            if getattr(m, name, None) is bare]


# (name, what it holds, whether rsttrace has it, patches that turn it
# off if it has, on if it has not)
CACHES = [
    ("Decoder shapes", "names, flags, stack, facts and cause per shape",
     True, lambda: emptied(decode.Decoder, "event", "_shapes", dict) +
     emptied(decode.Decoder, "shape", "_by_values", dict)),
    ("Decoder._syms", "kernel symbol per address", True,
     lambda: emptied(decode.Decoder, "stack", "_syms", dict)),
    ("Decoder.time", "the time text up to the second", True,
     lambda: emptied(decode.Decoder, "time", "_sec_us", -1 << 64)),
    ("decode.address", "address text per 16 bytes", True,
     lambda: unwrapped(decode, "address")),
    ("Decoder._comms", "task name text per 16 bytes", True,
     lambda: cleared(decode.Decoder, "event", "_comms")),
    ("abi.tcp_flags", "flag text per flag byte", False,
     lambda: put_back(abi, "tcp_flags", 256)),
    ("abi.tcp_flag_set", "flag set per flag byte", False,
     lambda: put_back(abi, "tcp_flag_set", 256)),
    ("facts._bit_facts", "Facts fields per FACT_* bits", False,
     lambda: put_back(facts, "_bit_facts", 256)),
    ("attribution.attribute", "cause and explanation per Facts", True,
     lambda: unwrapped(attribution, "attribute")),
    ("JsonWriter._templates", "a line template per shape", True,
     lambda: emptied(writers.JsonWriter, "event", "_templates", dict) +
     emptied(writers.JsonWriter, "event_of", "_templates", dict)),
    ("JsonWriter._who_texts", "a who-answer's JSON text", True,
     lambda: cleared(writers.JsonWriter, "event_of", "_who_texts") +
     cleared(writers.JsonWriter, "event", "_who_texts")),
    ("wire_header._flag_bits", "flag byte per flag text (pcapng)", False,
     lambda: put_back(wire_header, "_flag_bits", 256)),
    ("wire_header._packed_text", "address bytes per text (pcapng)", False,
     lambda: put_back(wire_header, "_packed_text", 65536)),
]


@contextlib.contextmanager
def patched(patches):
    old = [(o, a, getattr(o, a)) for o, a, _ in patches]
    for o, a, v in patches:
        setattr(o, a, v)
    try:
        yield
    finally:
        for o, a, v in old:
            setattr(o, a, v)


def series(cols, rounds, patches_a, patches_b):
    """Each column measured `rounds` times with patches_a and with
    patches_b, one right after the other: per column, (the median of a's
    figures, the median of the ratios b/a of each round's pair). Pairs
    taken together see the same load on a shared machine."""
    a, b = [[] for _ in cols], [[] for _ in cols]
    for _ in range(rounds):
        for patches, into in ((patches_a, a), (patches_b, b)):
            with patched(patches):
                for i, (_, fn) in enumerate(cols):
                    into[i].append(fn())
    return ([statistics.median(v) for v in a],
            [statistics.median(y / x for x, y in zip(va, vb))
             for va, vb in zip(a, b)])


def measure(records, events, rounds):
    reasons = Reasons(records)
    kernel = Kernel(records, extra=events // 10)
    loads = workloads(records, kernel, reasons, events)
    cols = [("flood json", lambda: stream_cost(kernel, reasons,
                                               loads["flood"], "json")),
            ("varied json", lambda: stream_cost(kernel, reasons,
                                                loads["varied"], "json")),
            ("new stacks json", lambda: stream_cost(
                kernel, reasons, loads["new stacks"], "json")),
            ("varied pcapng", lambda: stream_cost(kernel, reasons,
                                                  loads["varied"], "pcapng")),
            ("report", lambda: report_cost(records))]
    # the noise: every cache on, against itself
    base, again = series(cols, rounds, [], [])
    log("all on: " + ", ".join("%s %.2f (%+.0f%%)" % (c, v, (r - 1) * 100)
                                for (c, _), v, r in zip(cols, base, again)))
    rows = []
    for name, holds, present, patches in CACHES:
        on, ratios = series(cols, rounds, *(([], patches()) if present else
                                            (patches(), [])))
        if not present:
            # measured with it (put back) first: the ratio the other way
            ratios = [1 / r for r in ratios]
        log("%s off: %s" % (name, ", ".join("%+.0f%%" % ((r - 1) * 100)
                                            for r in ratios)))
        rows.append((name, present, holds, on, ratios))
    return [c for c, _ in cols], base, again, rows


VERDICTS = {(True, True): "yes", (True, False): "**no**: remove it",
            (False, True): "**yes**: put it back", (False, False): "no"}


def verdict(present, pays):
    """The last column: whether the cache pays, and what to do if rsttrace
    has it where it does not, or lacks it where it does."""
    return VERDICTS[present, pays]


def render(cols, base, again, rows, events, rounds, seconds):
    noise = max(abs(r - 1) for r in again)
    bar = max(NOISE, 2 * noise)
    lines = [
        "# Which user-space caches pay",
        "",
        "Written by `scripts/bench-caches` (%s, Python %s, kernel %s, "
        "load average %.1f, %d events per stream, %d rounds, %.0f s)."
        % (time.strftime("%Y-%m-%d"), platform.python_version(),
           platform.release(), os.getloadavg()[0], events, rounds, seconds),
        "",
        "CPU µs per event through the session's data path "
        "(`Session._raw`: decode, attribute, who is behind it, write; "
        "the first look at each owner and namespace reads /proc); "
        "`report`: µs per "
        "saved record attributed. Each cache is measured %d times on and "
        "off, one right after the other; a figure is the median with every "
        "cache on, and a cache's cost the median of the rounds' ratios "
        "off/on. The workloads: `flood`, hping3's SYNs to a closed port "
        "(one stack, one peer); `varied`, the recorded scenarios' RSTs from "
        "2000 peers in 50 namespaces; `new stacks`, every event on a stack "
        "not seen before. Two series with every cache on differ by up to "
        "%.0f%% (the noise); a cache pays when turning it off costs more "
        "than %.0f%% (twice the noise, at least %.0f%%) on some workload; "
        "one that does not is gone from rsttrace, and its row shows it put "
        "back." % (rounds, noise * 100, bar * 100, NOISE * 100),
        "",
        "| cache | holds | " + " | ".join(cols) + " | pays |",
        "|---|---|" + "---|" * len(cols) + "---|",
        "| (all on) | | " + " | ".join("%.2f" % v for v in base) + " | |",
        "| (all on, again) | | " + " | ".join(
            "%+.0f%%" % ((r - 1) * 100) for r in again) + " | |"]
    for name, present, holds, on, ratios in rows:
        lines.append("| %s | %s | %s | %s |" % (
            name if present else name + " (gone, put back)", holds,
            " | ".join("%+.0f%%" % ((r - 1) * 100) for r in ratios),
            verdict(present, max(ratios) > 1 + bar)))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("-o", "--output", default=OUT)
    args = ap.parse_args()
    start = time.monotonic()
    records = recorded()
    cols, base, again, rows = measure(records, args.events, args.rounds)
    text = render(cols, base, again, rows, args.events, args.rounds,
                  time.monotonic() - start)
    # written as root: refuses a link another user planted (OutputFile)
    out = OutputFile(args.output)
    out.open().write(text)
    out.commit()
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
