"""What a tracer can see: from the mode and facts about the kernel (the
tcp_send_reset tracepoint's format, kallsyms, a release string), never
from which hooks attached."""

import pytest

from btfgen import nf_reject_module_btf
from rsttrace.kernel import features, modules
from rsttrace.trace.visibility import BLIND_SPOTS, Visibility, spot_of

OLD_FMT = "field:const void * skbaddr;\nfield:__u16 sport;\n"
NEW_FMT = OLD_FMT + "field:enum sk_rst_reason reason;\n"
# skb:kfree_skb before and after it named the dropping socket (6.11)
OLD_DROP = "field:void * skbaddr;\nfield:void * location;\n"
NEW_DROP = OLD_DROP + "field:void * rx_sk;\n"


@pytest.fixture()
def kernel_with(monkeypatch):
    """nf_reject: True (nf_send_reset in the kernel), False (its module
    not in this kernel) or a modules state (where it is); drop: the format
    of skb:kfree_skb."""
    def make(fmt, nf_reject, drop=OLD_DROP):
        state = {True: modules.IN_KERNEL, False: modules.ABSENT}.get(
            nf_reject, nf_reject)
        module = None if state == modules.IN_KERNEL else "nf_reject_ipv4"
        monkeypatch.setattr(features, "tracepoint_format",
                            lambda c, n: drop if n == "kfree_skb" else fmt)
        monkeypatch.setattr(modules, "locate", lambda f, hint=None:
                            modules.Place(f, state, module, f, why="test"))
    return make


def test_function_modes_see_everything_with_netfilter_loaded(kernel_with):
    kernel_with(OLD_FMT, True)
    for mode in ("kprobe", "fentry"):
        assert Visibility.here(mode, False).blind_spots() == {}


def test_function_modes_without_the_reject_module(kernel_with):
    kernel_with(OLD_FMT, False)
    assert set(Visibility.here("kprobe", False).blind_spots()) == {"packets"}
    assert Visibility.here("kprobe", True).blind_spots() == {}


def test_a_reject_module_loaded_later_is_seen_in_kprobe_mode(kernel_with,
                                                             monkeypatch):
    kernel_with(OLD_FMT, modules.NOT_LOADED)
    btf = nf_reject_module_btf()    # the module file's, with the function
    monkeypatch.setattr(features, "load_btf", lambda: btf)
    monkeypatch.setattr(modules, "module_btf", lambda name, base: btf)
    assert Visibility.here("kprobe", False).blind_spots() == {}
    # fentry attaches at load time, to what is there then
    assert set(Visibility.here("fentry", False).blind_spots()) == {"packets"}


def test_tracepoint_mode_by_format(kernel_with):
    kernel_with(OLD_FMT, True)
    assert set(Visibility.here("tracepoint", False).blind_spots()) == {
        "challenge_ack", "socketless", "packets", "time_wait"}
    assert set(Visibility.here("tracepoint", True).blind_spots()) == {
        "challenge_ack", "socketless", "time_wait"}
    kernel_with(NEW_FMT, True)
    assert set(Visibility.here("tracepoint", False).blind_spots()) == {
        "challenge_ack", "packets", "time_wait"}
    # TIME_WAIT kills: with --packets where skb:kfree_skb names the socket
    kernel_with(NEW_FMT, True, NEW_DROP)
    assert set(Visibility.here("tracepoint", True).blind_spots()) == {
        "challenge_ack"}
    assert "time_wait" in Visibility.here("tracepoint", False).blind_spots()


def test_tracepoint_mode_without_its_format_goes_by_version(kernel_with,
                                                           monkeypatch):
    kernel_with(None, True)             # tracefs unreadable (unprivileged)
    monkeypatch.setattr(features, "version", lambda: (6, 1, 0))
    assert "socketless" in Visibility.here("tracepoint", True).blind_spots()
    monkeypatch.setattr(features, "version", lambda: (6, 18, 4))
    assert "socketless" not in Visibility.here("tracepoint",
                                               True).blind_spots()


@pytest.mark.parametrize("release,mode,blind", [
    ("5.10.0-32-amd64", "tracepoint", {"challenge_ack", "socketless",
                                       "time_wait"}),
    ("6.1.0-50-amd64", "kprobe", set()),
    ("6.12.117+deb13-amd64", "tracepoint", {"challenge_ack"}),
    ("6.9.12", "tracepoint", {"challenge_ack", "socketless", "time_wait"}),
    ("6.10.1", "tracepoint", {"challenge_ack", "time_wait"}),
    ("7.2.13+deb14-amd64", "fentry", set()),
])
def test_of_release(release, mode, blind):
    assert set(Visibility.of_release(release, mode).blind_spots()) == blind


def test_texts_and_spots():
    assert set(BLIND_SPOTS) == {"challenge_ack", "socketless", "packets",
                                "time_wait"}
    assert spot_of("received", "time-wait-assassination") == "time_wait"
    assert spot_of("abort", "data-after-close") is None
    assert spot_of("challenge_ack", "challenge-ack") == "challenge_ack"
    assert spot_of("sent", "firewall-reject") == "packets"
    assert spot_of("sent", "no-listener") == "socketless"
    assert spot_of("received", "reset-received") is None
    assert spot_of("sent", "linger-zero-close") is None
    old = Visibility("tracepoint", False, True, False)
    assert old.hides("sent", "no-connection") == "socketless"
    assert old.hides("received", "no-connection") is None
    with pytest.raises(KeyError):
        old.sees("nothing")
