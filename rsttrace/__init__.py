"""rsttrace: which kernel path sent or received a TCP RST, and why."""

try:
    from importlib.metadata import version as _version
    __version__ = _version("rsttrace")
except Exception:              # run from a source tree (the VM guests)
    __version__ = "source"
