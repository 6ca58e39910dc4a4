"""Summary mode: RSTs counted in the kernel (bpf/rsttrace.bpf.c,
SUMMARY_ONLY) by their Facts and family, read out here into a Summary.

A storm then costs one map update per RST; user space touches each distinct
key once per refresh, however many RSTs it stands for.
"""

from rsttrace import abi
from rsttrace.attribution import attribute
from rsttrace.facts import Facts
from rsttrace.output.summary import Summary


def key_facts(key, decoder):
    """(Facts, hook name, family) of one `agg` map key (struct agg_key)."""
    kind, hook, state, reason = decoder.names(key.kind, key.hook, key.state,
                                              key.reason)
    frames, own, _ = decoder.stack(key.stack_key, hook)
    facts = Facts.of_bits(kind, hook, state, reason,
                          abi.tcp_flag_set(key.seg_flags), key.facts, own)
    return facts, frames, key.family or None


class KernelSummary:
    """Reads the `agg` map of a summary-mode tracer."""

    def __init__(self, tracer, decoder):
        self.tracer = tracer
        self.decoder = decoder

    def summary(self):
        """A Summary of everything counted so far."""
        out = Summary()
        for key, value in self.tracer.bpf[b"agg"].items():
            facts, frames, family = key_facts(key, self.decoder)
            out.add({"cause": attribute(facts)[0], "kind": facts.kind,
                     "hook": facts.hook, "state": facts.state,
                     "reason": facts.reason, "family": family,
                     "stack": frames}, value.value)
        out.kernel_events, out.lost = self.tracer.counts()
        return out
