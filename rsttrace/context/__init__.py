"""Who is behind an RST: the process that owns the socket, the network
namespace's name, the container and the Kubernetes pod. Between the event
and the output (rsttrace.trace.session calls Enricher.enrich per record):

  procfs.py      reading /proc (and runtime state files) safely
  owner.py       the socket's owner: recorded in the kernel, or found by
                 the socket's inode in /proc/PID/fd
  netns.py       network namespace inode -> `ip netns` name, `host`
  cgroups.py     a process's cgroup path -> container runtime and id
  runtimes.py    a container's name, image and pod from its runtime's state
  containers.py  the index: processes by namespace, containers by process
  enrich.py      one record's who-fields from all of the above
  select.py      --container / --pod: the namespaces to trace, kept current
"""
