"""The kernel stack: what attribution needs of it (from the recorded
events in tests/data), what a walk costs against its depth, and what
rsttrace's remembered paths (bpf/rsttrace.bpf.c, stack_key()) save."""

import glob
import json
import os

from benchlib.common import HERE, BpfStats, log, prog_stats, runs_between, \
    storm
from rsttrace.attribution import attribute_record
from rsttrace.trace.stacks import SOFTIRQ_FRAMES, base_name, context_of

DEPTHS = (1, 2, 4, 8, 16, 32, 64)

# bpf_get_stack() alone, DEPTH frames (none without DO_WALK), on the tracepoint rsttrace uses
# here (the hook's context is a raw tracepoint's, as rsttrace's).
WALK = r"""
struct frames { u64 ip[DEPTH]; };
BPF_PERCPU_ARRAY(scratch, struct frames, 1);
int walk(struct bpf_raw_tracepoint_args *ctx)
{
    int zero = 0;
    struct frames *f = scratch.lookup(&zero);
    if (f && DO_WALK)
        bpf_get_stack(ctx, f->ip, sizeof(f->ip), 0);
    return 0;
}
"""


def needs():
    """Over every recorded event: how many of its frames the cause needs
    (the fewest that give the cause the whole stack gives), and where
    the first softirq frame is (the end of its own path)."""
    need, boundary, events = {}, {}, 0
    for path in glob.glob(os.path.join(HERE, "tests", "data", "*.jsonl")):
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                if r.get("kind") not in ("sent", "received",
                                         "challenge_ack"):
                    continue
                events += 1
                stack = r.get("stack") or []
                cause = attribute_record(r)[0]
                n = next(d for d in range(len(stack) + 1)
                         if attribute_record(dict(r, stack=stack[:d]))[0]
                         == cause)
                need[n] = need.get(n, 0) + 1
                at = next((i for i, f in enumerate(stack)
                           if base_name(f) in SOFTIRQ_FRAMES), None)
                key = at if context_of(stack) == "softirq" else "process"
                boundary[key] = boundary.get(key, 0) + 1
    return events, need, boundary


def walk_cost(pair, depth, seconds):
    from bcc import BPF
    b = BPF(text=WALK, cflags=["-DDEPTH=%d" % max(depth, 1),
                               "-DDO_WALK=%d" % bool(depth)])
    b.attach_raw_tracepoint(tp=b"tcp_send_reset", fn_name=b"walk")
    try:
        before = prog_stats(os.getpid())
        storm(pair, ["--flood"], seconds)
        return runs_between(before, prog_stats(os.getpid()))[1]
    finally:
        b.cleanup()


def memo_cost(pair, seconds, defines=()):
    """rsttrace in summary mode, with or without remembered paths: (ns per
    run, walks, remembered) over a flood."""
    from rsttrace import abi
    from rsttrace.trace.filters import Filters
    from rsttrace.trace.tracer import Tracer
    t = Tracer(filters=Filters(netns=[pair.inode("b")]), summary_only=True,
               defines=defines)
    t.start(lambda ev: 0)
    try:
        before = prog_stats(os.getpid())
        storm(pair, ["--flood"], seconds)
        ns_run = runs_between(before, prog_stats(os.getpid()))[1]
        walks, hits = t.counter(abi.COUNT_STACK_WALKS, abi.COUNT_MEMO_HITS)
    finally:
        t.close()
    return ns_run, walks, hits


def bench_stack(pair, seconds, depths=DEPTHS):
    out = {"walk": {}, "memo": {}}
    with BpfStats():
        out["walk"][0] = walk_cost(pair, 0, seconds)
        for d in depths:
            out["walk"][d] = walk_cost(pair, d, seconds)
            log("  stack walk of %d frames: %.0f ns/run" % (
                d, out["walk"][d] or 0))
        for name, defines in (("remembered", ()),
                              ("walked every time", ("NO_STACK_MEMO",))):
            out["memo"][name] = memo_cost(pair, seconds, defines)
            log("  rsttrace, stacks %s: %.0f ns/run" % (
                name, out["memo"][name][0] or 0))
    out["needs"] = needs()
    return out
