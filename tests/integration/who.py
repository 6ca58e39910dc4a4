"""What the who-field tests share: the records of one provocation, and
the one record that matches."""

from rsttrace.lab import traffic


def since(session, records, start, port, settle=0.1):
    """The records since `start` of the connections to or from `port`,
    once softirq processing has settled and the buffers are drained."""
    traffic.settle(settle)
    session.drain()
    return [r for r in records[start:] if port in (r["sport"], r["dport"])]


def one(recs, **want):
    """The one record with these values."""
    hits = [r for r in recs if all(r[k] == v for k, v in want.items())]
    assert len(hits) == 1, (want, recs)
    return hits[0]
