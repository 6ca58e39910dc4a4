"""The situations of the source articles (../shared/seeds), each reproduced
in its own pair of network namespaces, with the causes rsttrace should
report for it.

A scenario makes the RST happen between side "a" and side "b" (see
rsttrace.lab.netns.NamespacePair) and declares what it expects: for each
side, the (kind, cause) of the events that side's kernel reports.
rsttrace.lab.run traces while they run and gives a verdict per scenario.

One module per theme (THEMES, in catalogue order); adding a scenario: a
function with @scenario in the module of its theme.
"""

from rsttrace.lab.catalogue import (  # noqa: F401  (they fill CATALOGUE)
    close, connect, firewall, listener, segments, timers)
from rsttrace.lab.catalogue.registry import (  # noqa: F401
    CATALOGUE, HOST_WIDE_ENV, SOURCES, Scenario, by_name,
    host_wide_allowed, scenario)

THEMES = ("connect", "close", "listener", "timers", "firewall", "segments")
CATALOGUE.sort(key=lambda s: THEMES.index(s.theme))
