"""The kernel places rsttrace hooks, and where each one's arguments are.

A hook is a kernel function (kprobe and fentry modes) or a raw tracepoint
(tracepoint mode). Argument positions are read from the kernel's BTF
prototype when it has one (matched by type, so a reordered or extended
signature is noticed), otherwise taken from the kernel version.

A function in a module (netfilter's nf_send_reset in nf_reject_ipv4) is
hooked in kprobe mode whether or not the module is loaded now: the kprobe
names the module, and the kernel arms it whenever the module loads
(rsttrace.trace.module_probes); its arguments come from the module's BTF
(rsttrace.kernel.modules).
"""

from rsttrace import abi
from rsttrace.abi import KIND_CHALLENGE_ACK, KIND_RECEIVED, KIND_SENT
from rsttrace.errors import RsttraceError
from rsttrace.kernel import features, modules
from rsttrace.kernel.history import (KFREE_SKB_SK, RST_REASON,
                                     TCP_RESET_SKB, since)

MODES = ("kprobe", "fentry", "tracepoint")

SOCK_T = "struct sock *"
TW_SOCK_T = "struct inet_timewait_sock *"
SKB_T = "struct sk_buff *"
REASON_T = "enum sk_rst_reason"


class Hook:
    """One place rsttrace attaches to."""

    def __init__(self, key, name, kind, target, tracepoint, roles, fallback,
                 category="tcp", caller=None, without=None, module=None):
        self.key = key              # C identifier: HOOK_<key>, <key>_SK ...
        self.hook_id = getattr(abi, "HOOK_ID_" + key)
        self.name = name            # what events call it: `hook`
        self.kind = kind
        self.target = target        # function or tracepoint name
        self.tracepoint = tracepoint
        self.roles = roles          # roles it must have, e.g. ("sk", "skb")
        self.fallback = fallback    # fn(version) -> {role: position}, or
        #                             None: positions known only from BTF
        self.category = category    # tracepoint category
        self.module = module        # the module it is in when built as one
        #                             and not exported (modules.locate)
        # report only calls from this function (its address range goes to
        # the BPF program as <key>_CALLER_START/_END)
        self.caller = caller
        # why the hook is skipped when the kernel lacks one of its roles
        # (None: a prototype without them is one rsttrace does not know)
        self.without = without

    def __repr__(self):
        return "Hook(%s)" % self.name


def _send_reset(ver):
    """(sk, skb[, reason]): tcp_v4/v6_send_reset, tcp:tcp_send_reset."""
    return {"sk": 0, "skb": 1, "reason": 2 if since(ver, RST_REASON) else -1}


# Adding a hook: an entry here, HOOK_ID_<key> in bpf/rsttrace.h and
# rsttrace/abi.py, and its ENTRY() in bpf/rsttrace.bpf.c.
FUNCTION_HOOKS = [
    Hook("TCP_V4_SEND_RESET", "tcp_v4_send_reset", KIND_SENT,
         "tcp_v4_send_reset", False, ("sk", "skb"), _send_reset),
    Hook("TCP_V6_SEND_RESET", "tcp_v6_send_reset", KIND_SENT,
         "tcp_v6_send_reset", False, ("sk", "skb"), _send_reset),
    Hook("TCP_SEND_ACTIVE_RESET", "tcp_send_active_reset", KIND_SENT,
         "tcp_send_active_reset", False, ("sk",),
         lambda ver: {"sk": 0,
                      "reason": 2 if since(ver, RST_REASON) else -1}),
    Hook("TCP_RESET", "tcp_reset", KIND_RECEIVED, "tcp_reset", False,
         ("sk",),
         lambda ver: {"sk": 0, "skb": 1 if since(ver, TCP_RESET_SKB)
                      else -1}),
    Hook("TCP_SEND_CHALLENGE_ACK", "tcp_send_challenge_ack",
         KIND_CHALLENGE_ACK, "tcp_send_challenge_ack", False, ("sk",),
         # The skb argument was dropped at some point; without BTF to say
         # where it is, do not read it.
         lambda ver: {"sk": 0}),
    # An RST that kills a TIME_WAIT socket: no tcp_reset(), only this
    # (bpf/rsttrace.bpf.c says why the caller must be the one named).
    Hook("INET_TWSK_DESCHEDULE_PUT", "inet_twsk_deschedule_put",
         KIND_RECEIVED, "inet_twsk_deschedule_put", False, ("sk",),
         lambda ver: {"sk": 0}, caller="tcp_timewait_state_process"),
    # netfilter's REJECT --reject-with tcp-reset (module nf_reject_ipv4/6,
    # loaded with the first rule that needs it; the signature gained `sk`
    # around 5.10, so only with BTF).
    Hook("NF_SEND_RESET", "nf_send_reset", KIND_SENT, "nf_send_reset",
         False, ("skb",), None, module="nf_reject_ipv4"),
    Hook("NF_SEND_RESET6", "nf_send_reset6", KIND_SENT, "nf_send_reset6",
         False, ("skb",), None, module="nf_reject_ipv6"),
]

TRACEPOINT_HOOKS = [
    Hook("TP_TCP_SEND_RESET", "tcp:tcp_send_reset", KIND_SENT,
         "tcp_send_reset", True, ("sk", "skb"), _send_reset),
    Hook("TP_TCP_RECEIVE_RESET", "tcp:tcp_receive_reset", KIND_RECEIVED,
         "tcp_receive_reset", True, ("sk",), lambda ver: {"sk": 0}),
]

# The packet-level catch-all, opt-in (--packets): every packet queued to a
# device passes it. Reports TCP RSTs the TCP stack did not send (netfilter
# REJECT above all), in every mode.
PACKET_HOOK = Hook("TP_NET_DEV_QUEUE", "net:net_dev_queue", KIND_SENT,
                   "net_dev_queue", True, ("skb",), lambda ver: {"skb": 0},
                   category="net")

# Tracepoint mode's view of an RST that kills a TIME_WAIT socket, opt-in
# with the packet hook (--packets): every packet dropped passes it. Needs
# the socket the kernel names with the drop (rx_sk, 6.11+).
DROP_HOOK = Hook("TP_KFREE_SKB", "skb:kfree_skb", KIND_RECEIVED,
                 "kfree_skb", True, ("skb", "sk"),
                 lambda ver: {"skb": 0, "sk": 3 if since(ver, KFREE_SKB_SK)
                              else -1},
                 category="skb", without="skb:kfree_skb names no socket "
                 "before Linux 6.11")

ALL_HOOKS = FUNCTION_HOOKS + TRACEPOINT_HOOKS + [PACKET_HOOK, DROP_HOOK]
HOOK_NAMES = {h.hook_id: h.name for h in ALL_HOOKS}


def by_key(key):
    return next(h for h in ALL_HOOKS if h.key == key)


def hooks_for(mode, packets=False):
    """The hooks of an attach mode, with the packet-level ones (opt-in)."""
    found = TRACEPOINT_HOOKS if mode == "tracepoint" else FUNCTION_HOOKS
    if packets:
        found = found + [PACKET_HOOK]
        if mode == "tracepoint":
            found = found + [DROP_HOOK]
    return found


def positions_from_types(type_names):
    """{role: position} from a prototype's parameter types (spelled as
    BTF.describe does); roles absent from it are -1."""
    pos = {"sk": -1, "skb": -1, "reason": -1}
    wanted = {SOCK_T: "sk", TW_SOCK_T: "sk", SKB_T: "skb",
              REASON_T: "reason"}
    for i, t in enumerate(type_names):
        t = t.replace("const ", "")
        role = wanted.get(t)
        if role and pos[role] < 0:
            pos[role] = i
    return pos


class Placement:
    """A hook resolved on this kernel: what to attach to and the argument
    positions; or why it is skipped."""

    def __init__(self, hook, symbol=None, positions=None, source=None,
                 skipped=None, caller_range=None, module=None, loaded=True):
        self.hook = hook
        self.symbol = symbol        # kallsyms name or tracepoint name
        self.positions = positions or {}
        self.source = source        # "btf" or "version"
        self.skipped = skipped      # reason string when not attachable
        self.caller_range = caller_range    # (start, end) of hook.caller
        self.module = module        # the module its function is in
        self.loaded = loaded        # that module is loaded now

    def status(self):
        """Where it stands, in the words doctor and trace use."""
        if self.skipped:
            return self.skipped
        if self.module and not self.loaded:
            return modules.Place(self.hook.target, modules.NOT_LOADED,
                                 self.module).text()
        return "in module %s" % self.module if self.module else "present"

    def cflags(self):
        if self.skipped:
            return []
        key = self.hook.key
        flags = ["-DHOOK_%s=1" % key]
        for role in ("sk", "skb", "reason"):
            flags.append("-D%s_%s=%d" % (key, role.upper(),
                                         self.positions.get(role, -1)))
        if self.caller_range:
            flags += ["-D%s_CALLER_START=0x%xULL" % (key, self.caller_range[0]),
                      "-D%s_CALLER_END=0x%xULL" % (key, self.caller_range[1])]
        return flags


def _positions(hook, types, version):
    """({role: position}, "btf" or "version") of a hook from its prototype's
    types (None: unknown, go by the version); (None, None) when a role is
    missing that the hook may lack (hook.without)."""
    if types is not None:
        positions, source = positions_from_types(types), "btf"
    else:
        positions = {"sk": -1, "skb": -1, "reason": -1}
        positions.update(hook.fallback(version))
        source = "version"
    if any(positions[r] < 0 for r in hook.roles):
        if hook.without:
            return None, None
        if types is not None:
            raise RsttraceError(
                "%s has prototype (%s), rsttrace does not know it"
                % (hook.name, ", ".join(types)),
                "please report the kernel version (uname -r)")
    return positions, source


def place(hook, mode, kbtf=None, version=None):
    """Resolve `hook` for `mode` on the running kernel."""
    version = version or features.version()
    module, loaded = None, True
    if hook.tracepoint:
        if not features.tracepoint_exists(hook.category, hook.target):
            return Placement(hook, skipped="tracepoint %s:%s not in this "
                             "kernel" % (hook.category, hook.target))
        symbol = hook.target
        types = None
        if kbtf is not None:
            params = kbtf.tracepoint_params(hook.target)
            if params is not None:
                types = [kbtf.describe(t) for t in params]
    else:
        where = modules.locate(hook.target, hook.module)
        if where.state not in (modules.IN_KERNEL, modules.NOT_LOADED):
            return Placement(hook, skipped=where.text(),
                             module=where.module, loaded=False)
        symbol, module = where.symbol, where.module
        loaded = where.state == modules.IN_KERNEL
        skipped, types = _function_types(hook, mode, where, kbtf)
        if skipped:
            return Placement(hook, skipped=skipped, module=module,
                             loaded=loaded)
    positions, source = _positions(hook, types, version)
    if positions is None:
        return Placement(hook, skipped=hook.without)
    if not hook.tracepoint and symbol != hook.target:
        # A clone (.constprop/.isra) may have dropped or replaced
        # arguments: trust only the socket, and only for .constprop,
        # which keeps non-constant arguments in place.
        positions = {"sk": positions["sk"] if ".constprop" in symbol
                     and ".isra" not in symbol else -1,
                     "skb": -1, "reason": -1}
    caller_range = None
    if hook.caller:
        caller_range = features.function_range(hook.caller)
        if caller_range is None:
            return Placement(hook, skipped="its caller %s is not in kallsyms"
                             % hook.caller)
    return Placement(hook, symbol=symbol, positions=positions, source=source,
                     caller_range=caller_range, module=module,
                     loaded=loaded)


def _function_types(hook, mode, where, kbtf):
    """(why it cannot be hooked in `mode`, or None; its parameter types
    from BTF, or None) for a function hook found at `where`."""
    if where.module and mode == "fentry":
        # a program on a module function holds the module until it is
        # freed, so rmmod fails meanwhile (the trampoline's reference,
        # bpf_trampoline_module_get(), kernel/bpf/trampoline.c; the
        # program's, prog->aux->mod, since 6.4); and it loads onto a
        # function that is there: bcc loads them all at start
        return ("in module %s: fentry would keep the module from unloading "
                "and cannot hook it when it loads later (kprobe mode hooks "
                "it; --packets sees its RSTs)" % where.module), None
    if mode == "fentry" and where.symbol != hook.target:
        return ("only the compiler clone %s exists; fentry needs the "
                "function itself" % where.symbol), None
    types = None
    btf = (modules.module_btf(where.module, kbtf) if where.module and kbtf
           else kbtf)
    params = btf.func_params(hook.target) if btf is not None else None
    if params is not None:
        types = [btf.describe(t) for _, t in params]
    if types is None and mode == "fentry":
        return "not in the kernel's BTF; fentry needs it", None
    if types is None and hook.fallback is None:
        return ("its arguments are known only from BTF, which does not "
                "describe it%s" % (" (module %s has none)" % where.module
                                   if where.module else "")), None
    return None, types


def reachable(hook, mode, kbtf=None):
    """Whether `mode` hooks `hook` on this kernel, now or when its module
    loads (a fact of the kernel, not of what attached)."""
    try:
        return not place(hook, mode, kbtf).skipped
    except RsttraceError:
        return False


def check_mode(mode):
    """Raise RsttraceError if `mode` cannot work on this kernel."""
    if mode == "kprobe" and not features.kprobes_supported():
        raise RsttraceError(
            "this kernel has no kprobes (CONFIG_KPROBES is off)",
            "use --mode tracepoint or leave --mode out")
    if mode == "fentry" and not features.fentry_supported():
        raise RsttraceError(
            "this kernel cannot attach fentry programs (needs BTF and the "
            "BPF `tracing` program type)",
            "use --mode tracepoint or leave --mode out")
    if mode == "tracepoint":
        if not features.raw_tracepoints_supported():
            raise RsttraceError("this kernel has no raw tracepoints",
                                "rsttrace needs Linux 4.17 or newer")
        if not (features.tracepoint_exists("tcp", "tcp_send_reset") or
                features.tracepoint_exists("tcp", "tcp_receive_reset")):
            raise RsttraceError(
                "this kernel has neither tcp:tcp_send_reset nor "
                "tcp:tcp_receive_reset", "use --mode kprobe")


def auto_mode():
    """The attach mode trace uses when none is forced: kprobes where the
    kernel has them (they reach all five functions, compiler clones
    included), then fentry, then the tcp tracepoints."""
    if features.kprobes_supported():
        return "kprobe"
    if features.fentry_supported():
        return "fentry"
    if features.raw_tracepoints_supported():
        return "tracepoint"
    raise RsttraceError(
        "this kernel supports none of kprobes, fentry or raw tracepoints",
        "rsttrace needs a kernel with CONFIG_KPROBES or BPF raw tracepoints")
