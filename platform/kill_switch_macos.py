"""The kill switch on macOS: a pf (packet filter) anchor of our own, loaded and removed with pfctl.

UNTESTED ON macOS: the commands follow pfctl(8) and pf.conf(5) as summarised in the platform note
(§5) and are unit-tested on Linux with a recorded command runner (tests/recorded_macos.py).
Nothing here has run on a real Mac yet.

How (kill_switch.py says what passes):
- The rules go into the anchor ANCHOR under Apple's `com.apple` anchor point: the stock
  /etc/pf.conf evaluates `anchor "com.apple/*"`, so no one's pf.conf is edited. Before the
  first load the main ruleset is read (`pfctl -s rules`): an empty one gets the stock
  /etc/pf.conf (`pfctl -f /etc/pf.conf`); one without that anchor point is someone else's,
  which would never evaluate our rules, and the kill switch says so instead of pretending.
  Anchors under com.apple/* are evaluated in the order of their names (unconfirmed), and the
  number in ours puts it before Apple's own (200.AirDrop, 250.ApplicationFirewall).
- Every rule is `quick`: the first one that matches decides, for the whole ruleset. Passes
  first (lo0, the utun interfaces, TCP to each endpoint, DHCP, DHCPv6, router and neighbour
  discovery), then a block of DNS (port 53) so that a LAN pass cannot let DNS leak to the
  local network's servers, then the LAN with allow_lan, then `block drop quick` for everything
  else in and out, inet and inet6. pf keeps state: replies to what passed pass with it.
- `set` loads the whole anchor with `pfctl -a ANCHOR -f -` (rules on stdin): pfctl replaces an
  anchor's ruleset in one transaction, so a replace leaves no gap and a refused load leaves the
  rules that were in place. The first set then enables pf with a reference (`pfctl -E`, which
  prints a token); `remove` flushes our anchor only (`pfctl -a ANCHOR -F rules`) and gives the
  reference back (`pfctl -X token`): pf is disabled only if no one else holds it enabled.
- The rules and the reference outlive a crash (pf fails closed). `remove_leftovers` flushes the
  anchor (and gives back a reference whose token the journal kept), for the next start and
  `sstp-vpn repair`.

Values reach pf's parser only as addresses formatted by ipaddress, port numbers, and interface
names matched against utunN: nothing else from the network or a profile goes into the rules.
"""

from __future__ import annotations

import ipaddress
import logging
import re

from sstpvpn.client.core.i18n import _
from sstpvpn.platform import commands
from sstpvpn.platform.commands import CommandResult, CommandRunner
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.kill_switch import KillSwitchRules

log = logging.getLogger(__name__)

PFCTL = "/sbin/pfctl"
PF_CONF = "/etc/pf.conf"
ANCHOR = "com.apple/100.sstp-vpn"
_UTUN = re.compile(r"utun[0-9]{1,3}")
_TOKEN = re.compile(r"^Token\s*:\s*([0-9]+)\s*$", re.MULTILINE)
_APPLE_ANCHOR = re.compile(r'^anchor "com\.apple/\*"', re.MULTILINE)

# The local networks allow_lan lets through: private, link-local, multicast (and broadcast).
LAN_INET = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255")
LAN_INET6 = ("fe80::/10", "fc00::/7", "ff00::/8")


def ruleset(rules: KillSwitchRules) -> str:
    """The anchor's rules for pfctl -f, in pf.conf(5) syntax."""
    lines = [
        "# SSTP VPN kill switch: only what the VPN needs passes (removed on disconnect, or by sstp-vpn repair)",
        "pass quick on lo0 all",
    ]
    for name in rules.tunnels:
        if not _UTUN.fullmatch(name):
            raise ValueError(f"not a utun interface: {name!r}")
        lines.append(f"pass quick on {name} all")
    for endpoint in rules.endpoints:
        address = ipaddress.ip_address(endpoint.address)
        if not 0 < endpoint.port < 65536:
            raise ValueError(f"not a port: {endpoint.port!r}")
        family = "inet" if address.version == 4 else "inet6"
        lines.append(f"pass out quick {family} proto tcp from any to {address} port {endpoint.port}")
    lines += [
        "pass out quick inet proto udp from any port 68 to any port 67",
        "pass in quick inet proto udp from any port 67 to any port 68",
        "pass out quick inet6 proto udp from any port 546 to any port 547",
        "pass in quick inet6 proto udp from any port 547 to any port 546",
        # router solicitation, neighbour solicitation and advertisement out; the answers in
        "pass out quick inet6 proto icmp6 icmp6-type { 133, 135, 136 }",
        "pass in quick inet6 proto icmp6 icmp6-type { 134, 135, 136 }",
        "block drop out quick proto { tcp, udp } from any to any port 53",
    ]
    if rules.allow_lan:
        inet, inet6 = ", ".join(LAN_INET), ", ".join(LAN_INET6)
        lines += [
            f"pass out quick inet from any to {{ {inet} }}",
            f"pass in quick inet from {{ {inet} }} to any",
            f"pass out quick inet6 from any to {{ {inet6} }}",
            f"pass in quick inet6 from {{ {inet6} }} to any",
        ]
    lines += ["block drop out quick all", "block drop in quick all"]
    return "\n".join(lines) + "\n"


class MacKillSwitch:
    """kill_switch.KillSwitch with pf. `token` is pf's enable reference while we hold one: the
    caller journals it so that a repair after a crash can give it back."""

    def __init__(self, *, run_command: CommandRunner | None = None) -> None:
        self._run: CommandRunner = run_command if run_command is not None else commands.run_command
        self.token: str | None = None
        self._loaded = False

    def set(self, rules: KillSwitchRules) -> None:
        text = ruleset(rules)
        first = not self._loaded
        if first:
            self._check_anchor_point()
        result = self._run([PFCTL, "-a", ANCHOR, "-f", "-"], text)
        if not result.ok:
            raise _refused(result.output)
        self._loaded = True
        if self.token is None:
            enabled = self._run([PFCTL, "-E"], None)
            match = _TOKEN.search(enabled.output) if enabled.ok else None
            if match is None:
                self._flush()  # without pf enabled the rules do nothing: take them out again
                self._loaded = False
                raise _refused(enabled.output)
            self.token = match.group(1)
        log.info("kill switch: pf anchor %s loaded", ANCHOR)  # not translated: the log

    def remove(self) -> None:
        if self._loaded:
            result = self._flush()
            if not result.ok:
                raise PlatformError(
                    # Translators: pfctl is the macOS program that was run; {output} is what it said
                    _("The packet filter did not remove the kill switch (pfctl: {output}); run sstp-vpn repair.").format(output=result.output)
                )
            self._loaded = False
        if self.token is not None:
            _release(self._run, self.token)
            self.token = None

    def _flush(self) -> CommandResult:
        return self._run([PFCTL, "-a", ANCHOR, "-F", "rules"], None)

    def _check_anchor_point(self) -> None:
        """Our anchor is evaluated only from a main ruleset with `anchor "com.apple/*"`. An empty
        main ruleset (pf.conf never loaded since boot, unconfirmed) gets the stock /etc/pf.conf,
        as the system's own com.apple.pfctl job loads it; someone else's ruleset is left alone."""
        rules = self._run([PFCTL, "-s", "rules"], None)
        if rules.ok and not rules.stdout.strip():
            loaded = self._run([PFCTL, "-f", PF_CONF], None)
            if not loaded.ok:
                raise _refused(loaded.output)
            rules = self._run([PFCTL, "-s", "rules"], None)
        if not (rules.ok and _APPLE_ANCHOR.search(rules.stdout)):
            raise PlatformError(
                _(
                    "The packet filter's main rules do not include Apple's anchors (com.apple/*) as the stock /etc/pf.conf does, "
                    "so the kill switch cannot work; restore /etc/pf.conf."
                )
            )


def remove_leftovers(token: str | None = None, *, run_command: CommandRunner | None = None) -> None:
    """After a crash: flush our anchor and give back the enable reference the journal kept."""
    run = run_command if run_command is not None else commands.run_command
    result = run([PFCTL, "-a", ANCHOR, "-F", "rules"], None)
    if not result.ok:
        log.warning("pfctl could not flush the anchor %s: %s", ANCHOR, result.output)  # not translated: the log
    if token is not None:
        _release(run, token)


def _release(run: CommandRunner, token: str) -> None:
    if not re.fullmatch(r"[0-9]+", token):
        raise ValueError(f"not a pf token: {token!r}")
    result = run([PFCTL, "-X", token], None)
    if not result.ok:  # pf restarted, or the reference is gone already: nothing of ours to give back
        log.info("pfctl -X %s: %s", token, result.output)  # not translated: the log


def _refused(output: str) -> PlatformError:
    return PlatformError(
        # Translators: pfctl is the macOS program that was run; {output} is what it said
        _("The packet filter refused the kill switch (pfctl: {output}); disconnect and connect again.").format(output=output)
    )
