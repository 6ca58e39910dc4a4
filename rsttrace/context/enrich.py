"""One event record's who-fields: owner_pid, owner_comm, owner_source
(owner.py), netns_name (netns.py), container and pod (containers.py).

The container is the owner's when the owner is a live process in one;
otherwise that of the event's network namespace (the kernel of that
namespace made or took the RST). The dicts put into records are made
once per container and pod and shared."""

from rsttrace.context.containers import ContainerIndex, Pod, pod_of
from rsttrace.context.netns import NetnsNames
from rsttrace.context.owner import Owners, fd_index
from rsttrace.context.procfs import Proc


class Enricher:
    def __init__(self, proc=None, index=None, names=None, owners=None):
        proc = proc or Proc()
        self.index = index or ContainerIndex(proc)
        self.names = names or NetnsNames(proc)
        self.owners = owners or Owners(fd_index(proc))
        self._dicts = {}

    def enrich(self, record, ev):
        pid, comm, source = self.owners.owner(record, ev)
        record["owner_pid"] = pid
        record["owner_comm"] = comm
        record["owner_source"] = source
        netns = record["netns"]
        record["netns_name"] = self.names.name(netns)
        ctr = self.index.of_pid(pid) if pid else None
        pod = pod_of(ctr)
        if ctr is None:
            ctr, pod = self.index.of_netns(netns)
        record["container"] = self._shared(ctr)
        record["pod"] = self._shared(pod)
        return record

    def _shared(self, value):
        """The record's dict for a Container or a Pod."""
        if value is None:
            return None
        hit = self._dicts.get(value)
        if hit is None:
            if len(self._dicts) > 4096:
                self._dicts.clear()
            hit = self._dicts[value] = (
                {"namespace": value[0], "name": value[1]}
                if isinstance(value, Pod) else
                {"runtime": value.runtime, "id": value.id,
                 "name": value.name, "image": value.image})
        return hit
