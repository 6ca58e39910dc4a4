"""--container NAME|ID and --pod [NAMESPACE/]NAME: the network namespaces
of the containers and pods asked for, traced through the tracer's
kernel-side netns filter (Filters(netns_dynamic=True), Tracer.watch_netns)
and looked up again every tick, so that containers that start, stop or
restart are followed. A container in the host's network namespace has no
namespace of its own to filter on, and is not found."""

ID_PREFIX_MIN = 4        # an ID prefix shorter than this is not an ID


def container_matches(ctr, spec):
    return spec == ctr.name or (
        len(spec) >= ID_PREFIX_MIN and ctr.id is not None and
        ctr.id.startswith(spec.lower()))


def pod_matches(ctr, spec):
    namespace, _, name = spec.rpartition("/")
    return ctr.pod_name == name and (not namespace or
                                     ctr.pod_namespace == namespace)


class Selection:
    def __init__(self, index, containers=(), pods=(), fixed=()):
        self.index = index           # containers.ContainerIndex
        self.containers = list(containers)
        self.pods = list(pods)
        self.fixed = set(fixed)      # --netns inodes: always traced
        self.current = set(fixed)
        self.missing = []

    def __bool__(self):
        return bool(self.containers or self.pods)

    def resolve(self):
        """(netns inodes to trace, specs that matched nothing)."""
        listing = self.index.containers()
        found, missing = set(self.fixed), []
        for specs, matches in ((self.containers, container_matches),
                               (self.pods, pod_matches)):
            for spec in specs:
                hits = {ns for ctr, ns in listing if matches(ctr, spec)}
                if not hits:
                    missing.append(spec)
                found |= hits
        return found, missing

    def apply(self, tracer):
        """Bring the tracer's netns filter to what the containers and pods
        are now. Returns the specs newly found missing (for a warning)."""
        found, missing = self.resolve()
        for inode in found - self.current:
            tracer.watch_netns(inode)
        for inode in self.current - found:
            tracer.watch_netns(inode, on=False)
        self.current = found
        new = [m for m in missing if m not in self.missing]
        self.missing = missing
        return new

    def describe(self):
        parts = ["container " + c for c in self.containers]
        parts += ["pod " + p for p in self.pods]
        return ", ".join(parts)
