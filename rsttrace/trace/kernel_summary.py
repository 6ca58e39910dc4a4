"""Summary mode: RSTs counted in the kernel (bpf/rsttrace.bpf.c,
SUMMARY_ONLY) by their Facts and family, read out here into a Summary.

A storm then costs one map update per RST; user space touches each distinct
key once per refresh, however many RSTs it stands for.
"""

from rsttrace import abi
from rsttrace.output.summary import Summary


def key_shape(key, decoder):
    """The decoder's Shape (rsttrace.trace.decode) of the events one `agg`
    map key (struct agg_key) counts."""
    return decoder.shape(key.kind, key.hook, key.state, key.reason,
                         key.family, key.seg_flags if key.facts &
                         abi.FACT_PACKET else None, key.facts,
                         key.stack_key)[0]


def key_facts(key, decoder):
    """(Facts, frames, family) of one `agg` map key."""
    shape = key_shape(key, decoder)
    return shape.facts, shape.stack, shape.family


class KernelSummary:
    """Reads the `agg` map of a summary-mode tracer."""

    def __init__(self, tracer, decoder):
        self.tracer = tracer
        self.decoder = decoder

    def summary(self):
        """A Summary of everything counted so far."""
        out = Summary()
        for key, value in self.tracer.bpf[b"agg"].items():
            s = key_shape(key, self.decoder)
            out.add({"cause": s.cause, "kind": s.kind, "hook": s.hook,
                     "state": s.state, "reason": s.reason,
                     "family": s.family, "stack": s.stack}, value.value)
        out.kernel_events, out.lost = self.tracer.counts()
        return out
