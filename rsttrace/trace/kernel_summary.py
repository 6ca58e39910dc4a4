"""Summary mode: RSTs counted in the kernel (bpf/rsttrace.bpf.c,
SUMMARY_ONLY) by their Facts and family, read out here into a Summary.

A storm then costs one map update per RST; user space touches each distinct
key once per harvest, however many RSTs it stands for. Each harvest takes
the kernel's counts away (Tracer.take_counts), so the kernel's maps hold the
keys of one interval; what was counted is kept here, as Summary rows.
"""

import copy

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


def key_record(key, decoder):
    """The record of the RSTs counted under one key: what Summary and the
    metrics count by (cause, kind, hook, state, reason, family, stack), and
    the key's netns and local_port (0 unless the tracer was built with
    them; rsttrace.output.metric_labels)."""
    s = key_shape(key, decoder)
    return {"cause": s.cause, "kind": s.kind, "hook": s.hook,
            "state": s.state, "reason": s.reason, "family": s.family,
            "stack": s.stack, "netns": key.netns or None,
            "local_port": key.local_port}


class KernelSummary:
    """Reads the counts of a summary-mode tracer."""

    def __init__(self, tracer, decoder):
        if decoder.attribute is None:
            raise ValueError("KernelSummary needs a Decoder that decides "
                             "causes (Decoder(attribute=...))")
        self.tracer = tracer
        self.decoder = decoder
        self.total = Summary()      # everything harvested so far

    def harvest(self):
        """[(record, count)] of the RSTs counted since the last harvest
        (key_record), also added to the running total."""
        out = []
        for key, count in self.tracer.take_counts():
            record = key_record(key, self.decoder)
            self.total.add(record, count)
            out.append((record, count))
        return out

    def summary(self):
        """A Summary of everything counted so far."""
        self.harvest()
        out = copy.copy(self.total)
        out.rows = self.total.rows.copy()
        out.kernel_events, out.lost = self.tracer.counts()
        return out
