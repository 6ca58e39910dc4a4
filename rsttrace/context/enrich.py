"""One event record's who-fields: owner_pid, owner_comm, owner_source
(owner.py), netns_name (netns.py), container and pod (containers.py).

The container is the owner's when the owner is a live process in one;
otherwise that of the event's network namespace (the kernel of that
namespace made or took the RST). The dicts put into records are made
once per container and pod and shared."""

import time

from rsttrace import abi
from rsttrace.context.containers import ContainerIndex, Pod, pod_of
from rsttrace.context.netns import NetnsNames
from rsttrace.context.owner import Owners, fd_index
from rsttrace.context.procfs import Proc
from rsttrace.trace.decode import WHO_FIELDS


_NETNS = abi.AT["netns"]     # in a raw event (abi.unpack_from)
MEMO_S = 1.0             # how long a (owner, namespace) answer is reused


class Shared(dict):
    """A container's or pod's dict, made once, never changed, and put into
    every record of it: hashed by identity, so that who() answers holding
    one can key a cache (rsttrace.output.writers.JsonWriter keeps their
    JSON text). Two equal ones may hash apart: a cache then holds both,
    each right."""

    __hash__ = object.__hash__


class Enricher:
    def __init__(self, proc=None, index=None, names=None, owners=None,
                 clock=time.monotonic):
        proc = proc or Proc()
        self.index = index or ContainerIndex(proc)
        self.names = names or NetnsNames(proc)
        self.owners = owners or Owners(fd_index(proc))
        self.clock = clock
        self._dicts = {}
        # (owner pid, netns) -> (netns_name, container, pod): a storm
        # repeats a few of them; forgotten every MEMO_S
        self._memo = {}
        self._memo_until = 0

    def who(self, shape, ev):
        """Who is behind a raw event of `shape` (rsttrace.trace.decode):
        its WHO_FIELDS values, in that order."""
        pid, comm, source = self.owners.owner(shape, ev)
        netns = ev[_NETNS] or None      # as the record has it
        hit = self._memo.get((pid, netns))
        if hit is None or self.clock() >= self._memo_until:
            hit = self._where(pid, netns)
        return hit + (pid, comm, source)

    def _where(self, pid, netns):
        now = self.clock()
        if now >= self._memo_until:
            self._memo = {}
            self._memo_until = now + MEMO_S
        ctr = self.index.of_pid(pid) if pid else None
        pod = pod_of(ctr)
        if ctr is None:
            ctr, pod = self.index.of_netns(netns)
        hit = self._memo[(pid, netns)] = (self.names.name(netns),
                                          self._shared(ctr),
                                          self._shared(pod))
        return hit

    def _shared(self, value):
        """The record's dict for a Container or a Pod (a Shared one)."""
        if value is None:
            return None
        hit = self._dicts.get(value)
        if hit is None:
            if len(self._dicts) > 4096:
                self._dicts.clear()
            hit = self._dicts[value] = Shared(
                {"namespace": value[0], "name": value[1]}
                if isinstance(value, Pod) else
                {"runtime": value.runtime, "id": value.id,
                 "name": value.name, "image": value.image})
        return hit
