"""The -D macros Python passes to bcc against what bpf/rsttrace.bpf.c and
bpf/rsttrace.h read: every macro the program tests (#ifdef, defined()) or
uses and does not define itself is one Python produces (or one of bcc's
and the kernel's, listed here); every macro Python produces is read by the
program; and every hook's entry point is where the tracer attaches it.

test_filters.py and test_hooks.py check the spelling of each flag; this
checks that the spelling is the program's."""

import os
import re

import pytest

from rsttrace.output import metric_labels
from rsttrace.trace import hooks, tracer
from rsttrace.trace.filters import Filters
from rsttrace.trace.hooks import Placement

BPF = os.path.join(os.path.dirname(__file__), "..", "..", "bpf")

# What the program takes from bcc's helpers.h and the kernel's headers.
EXTERNAL = {"BPF_ARRAY", "BPF_ARRAY_OF_MAPS", "BPF_HASH", "BPF_NOEXIST",
            "BPF_PERCPU_ARRAY", "BPF_PERF_OUTPUT",
            "BPF_RINGBUF_OUTPUT", "BPF_RB_FORCE_WAKEUP", "BPF_RB_NO_WAKEUP",
            "BPF_TABLE", "KFUNC_PROBE", "NULL",
            "PT_REGS_PARM1", "PT_REGS_PARM2", "PT_REGS_PARM3",
            "PT_REGS_PARM4", "PT_REGS_PARM5"}
ROLE_SUFFIXES = ("_SK", "_SKB", "_REASON")


def source():
    text = ""
    for name in ("rsttrace.bpf.c", "rsttrace.h"):
        with open(os.path.join(BPF, name)) as f:
            text += f.read() + "\n"
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


SRC = source()
DEFINED = set(re.findall(r"^\s*#\s*define\s+(\w+)", SRC, re.M))
TESTED = (set(re.findall(r"^\s*#\s*(?:ifdef|ifndef)\s+(\w+)", SRC, re.M)) |
          set(re.findall(r"defined\s*\(\s*(\w+)\s*\)", SRC)))
USED = set(re.findall(r"\b[A-Z_][A-Z0-9_]*\b", SRC))


def planned(mode, ringbuf, summary_only):
    """A Tracer as plan() leaves it, every hook placed (a caller range where
    the hook has a caller), every filter on (a filter expression too), and
    in summary mode every opt-in label of the exporter."""
    t = tracer.Tracer(mode=mode, summary_only=summary_only,
                      filters=Filters(ports={1}, hosts={1}, pid=1, comm="x",
                                      netns={1}, family=4, expression="tcp"),
                      agg_cflags=metric_labels.cflags(
                          tuple(metric_labels.OPT_IN), (32768, 60999)))
    t.mode, t.ringbuf, t.kbtf = mode, ringbuf, None
    t.placements = [Placement(h, symbol=h.target,
                              positions={"sk": 0, "skb": 1, "reason": 2},
                              caller_range=(1, 2) if h.caller else None)
                    for h in hooks.hooks_for(mode, packets=True)]
    return t


def produced():
    """{macro name} of every -D flag Tracer.cflags() can give."""
    names = set()
    for mode in hooks.MODES:
        for ringbuf in (True, False):
            for summary in (True, False):
                for flag in planned(mode, ringbuf, summary).cflags():
                    if flag.startswith("-D"):
                        names.add(flag[2:].split("=", 1)[0])
    return names


PRODUCED = produced() | set(tracer.EXTRA_DEFINES)


def test_every_macro_the_program_tests_is_produced():
    missing = TESTED - DEFINED - PRODUCED - EXTERNAL
    assert not missing, "the program tests macros nothing defines: %s" \
        % sorted(missing)


def test_every_macro_the_program_uses_is_produced_or_external():
    missing = USED - DEFINED - PRODUCED - EXTERNAL
    assert not missing, "the program uses macros nothing defines: %s" \
        % sorted(missing)
    # and the external ones are really used (the list stays honest)
    assert EXTERNAL <= USED


def test_every_produced_macro_is_read_by_the_program():
    unused = PRODUCED - USED
    # argument positions of roles a hook's entry point does not read are
    # passed anyway (-1 or a position), harmlessly
    assert all(name.endswith(ROLE_SUFFIXES) for name in unused), sorted(
        unused)
    for h in hooks.FUNCTION_HOOKS + hooks.TRACEPOINT_HOOKS:
        for role in h.roles:
            assert "%s_%s" % (h.key, role.upper()) in USED, (h, role)
    for h in hooks.ALL_HOOKS:
        assert "HOOK_" + h.key in TESTED, h


def test_packet_hook_reads_its_skb_where_python_places_it():
    """The packet hook (always a raw tracepoint) reads its skb as
    ctx->args[0] itself, not through TP_NET_DEV_QUEUE_SKB: its placement
    must say 0, or the two disagree."""
    assert "TP_NET_DEV_QUEUE_SKB" not in USED
    assert re.search(r"int on_tp_net_dev_queue\(.*?ctx->args\[0\]", SRC,
                     re.S)
    assert hooks.PACKET_HOOK.fallback((6, 18)) == {"skb": 0}
    assert hooks.positions_from_types(["struct sk_buff *"])["skb"] == 0


@pytest.mark.parametrize("hook", hooks.ALL_HOOKS, ids=lambda h: h.key)
def test_entry_point_is_where_the_tracer_attaches(hook):
    """Tracer._attach attaches program on_<key> (kprobe, raw tracepoint);
    in fentry mode bcc attaches kfunc__<name> to kernel function <name>,
    so a function hook's entry must be named after its target."""
    entries = [re.search(r"\bENTRY\((\w+)\)|\bint (on_\w+)\(", block)
               for block in re.findall(r"#ifdef HOOK_%s\b(.*?)#endif"
                                       % hook.key, SRC, re.S)]
    entries = [e for e in entries if e]
    assert len(entries) == 1, hook
    entry = entries[0]
    name = entry.group(1) or entry.group(2)[len("on_"):]
    assert "on_" + name == "on_" + hook.key.lower()
    if not hook.tracepoint:
        assert name == hook.target
    assert "HOOK_ID_" + hook.key in USED
