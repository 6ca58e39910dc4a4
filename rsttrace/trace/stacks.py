"""Kernel stacks: which frames are the tracer's own, where the RST's own
path ends, and what context the hook ran in.

A stack is a list of kernel function names, innermost first.
"""

# Frames that belong to the tracing machinery, not to the kernel path.
TRACING_FRAME_PREFIXES = ("bpf_prog_", "bpf_trace_run", "__bpf_trace_",
                          "__traceiter_", "trace_event_raw_event_",
                          "perf_trace_", "kprobe_", "bpf_trampoline_",
                          "__bpf_prog_enter", "ftrace_", "[unknown]")

# A frame from any of these means the hook ran in softirq context, where the
# current task is whoever happened to be on the CPU, not the socket owner.
SOFTIRQ_FRAMES = frozenset((
    "__do_softirq", "handle_softirqs", "do_softirq", "net_rx_action",
    "run_timer_softirq", "tasklet_action", "__irq_exit_rcu", "irq_exit_rcu",
    "run_ksoftirqd", "process_backlog", "__netif_receive_skb",
    "__napi_poll", "napi_poll",
))


def base_name(frame):
    """A kernel symbol without compiler suffixes: tcp_x.constprop.0 -> tcp_x."""
    return frame.split(".", 1)[0]


def kernel_path(names, hook=None):
    """The frames of a symbolised stack without the tracing machinery's.
    With `hook` (a function name), frames before it are dropped when it is
    among the first three: an fentry stack starts in the BPF trampoline,
    which is named after whatever symbol precedes it."""
    out = [n for n in names if not n.startswith(TRACING_FRAME_PREFIXES)]
    if hook and ":" not in hook:
        for i, name in enumerate(out[:3]):
            if base_name(name) == hook:
                return out[i:]
    return out


def own_frames(stack):
    """The RST's own path: the base names of the frames up to where softirq
    processing began. What lies beyond belongs to whatever the CPU was doing
    when softirqs ran (another socket's close, a send), not to this RST."""
    out = []
    for f in stack or ():
        name = base_name(f)
        if name in SOFTIRQ_FRAMES:
            break
        out.append(name)
    return tuple(out)


def context_of(frames):
    """"softirq" or "process": where the hook ran; None without a stack."""
    if not frames:
        return None
    names = {base_name(f) for f in frames}
    return "softirq" if names & SOFTIRQ_FRAMES else "process"


def path_of(stack, depth=4):
    """The first frames of a stack, the part that tells RST paths apart."""
    if not stack:
        return "-"
    return " < ".join(base_name(f) for f in stack[:depth])


# The functions that emit (or take in) an RST: the frame that names the path.
EMITTERS = ("tcp_v4_send_reset", "tcp_v6_send_reset", "tcp_send_active_reset",
            "tcp_reset", "tcp_send_challenge_ack", "nf_send_reset",
            "nf_send_reset6")


def emitter(stack, caller=False):
    """The RST function on a stack's own path (own_frames: not one the
    softirq interrupted, such as the peer's send on the same CPU), as
    "caller > function" with `caller`; None when none is on it."""
    frames = list(own_frames(stack))
    for i, f in enumerate(frames):
        if f in EMITTERS:
            if caller and i + 1 < len(frames):
                return "%s > %s" % (frames[i + 1], f)
            return f
    return None
