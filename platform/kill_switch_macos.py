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
- The rules and the reference outlive a crash (pf fails closed): both are journaled before they
  are made (PfAnchorLoaded, PfEnableReference with its token), and the next session or
  `sstp-vpn repair` undoes what a dead session left (repair_kill_switch).
- Known gap: pf's state table outlives a new ruleset, so a connection opened before the kill
  switch went on (not through the tunnel) keeps passing until it ends. Flushing the states would
  cut every connection, the VPN's own included (pass rules create state only on a SYN).

Values reach pf's parser only as addresses formatted by ipaddress, port numbers, and interface
names matched against utunN: nothing else from the network or a profile goes into the rules.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from sstpvpn.client.core.i18n import _
from sstpvpn.platform import commands, journal_replay, netconfig_macos
from sstpvpn.platform.commands import CommandResult, CommandRunner
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.journal import UndoJournal
from sstpvpn.platform.journal_steps import JournalStep, StepCatalog
from sstpvpn.platform.kill_switch import LAN_NETWORKS, LOCK_WAIT_SECONDS, KillSwitchRules, busy_sentence

log = logging.getLogger(__name__)

PFCTL = "/sbin/pfctl"
PF_CONF = "/etc/pf.conf"
ANCHOR = "com.apple/100.sstp-vpn"
_UTUN = re.compile(r"utun[0-9]{1,3}")
_TOKEN = re.compile(r"^Token\s*:\s*([0-9]+)\s*$", re.MULTILINE)
_APPLE_ANCHOR = re.compile(r'^anchor "com\.apple/\*"', re.MULTILINE)


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
        inet, inet6 = (", ".join(str(network) for network in LAN_NETWORKS if network.version == version) for version in (4, 6))
        lines += [
            f"pass out quick inet from any to {{ {inet} }}",
            f"pass in quick inet from {{ {inet} }} to any",
            f"pass out quick inet6 from any to {{ {inet6} }}",
            f"pass in quick inet6 from {{ {inet6} }} to any",
        ]
    lines += ["block drop out quick all", "block drop in quick all"]
    return "\n".join(lines) + "\n"


# -- the journal: what a crash leaves in place, and how it is undone ------------------------------


@dataclass(frozen=True)
class PfAnchorLoaded(JournalStep):
    """Our anchor holds rules (recorded before they are loaded)."""

    OP = "pf_anchor"
    anchor: str


@dataclass(frozen=True)
class PfEnableReference(JournalStep):
    """pf was enabled with a reference (`pfctl -E`); the token gives it back."""

    OP = "pf_enable_reference"
    token: str


CATALOG = StepCatalog(PfAnchorLoaded, PfEnableReference)


def kill_switch_journal_path(network_journal: Path | None = None) -> Path:
    """The kill switch's own journal, beside the network's (netconfig_macos.default_journal_path)."""
    network_journal = network_journal if network_journal is not None else netconfig_macos.default_journal_path()
    return network_journal.with_name(f"{network_journal.stem}-kill-switch.json")


def removed_sentence() -> str:
    return _("Removed the kill switch (the pf anchor com.apple/100.sstp-vpn) that an ended sstp-vpn left; the network is open again.")


class _Pf:
    """pfctl through a command runner, and the journal's replay (owners by pid and start time)."""

    def __init__(self, run: CommandRunner | None) -> None:
        self.run: CommandRunner = run if run is not None else commands.run_command

    def replay(self) -> journal_replay.Replay:
        return journal_replay.Replay(journal_replay.ProcessOwners("started", self._started), CATALOG, self.undo)

    def _started(self, pid: int) -> str | None:
        result = self.run([netconfig_macos.PS, "-o", "lstart=", "-p", str(pid)], None)
        text = result.stdout.strip()
        return text if result.ok and text else None

    def undo(self, step: JournalStep, _interfaces_are_ours: bool) -> str | None:
        match step:
            case PfAnchorLoaded(anchor=anchor):
                if anchor != ANCHOR:
                    raise ValueError(f"not our anchor: {anchor!r}")  # reported as a damaged step, left alone
                result = self.flush()
                if not result.ok:
                    raise PlatformError(
                        # Translators: pfctl is the macOS program that was run; {output} is what it said
                        _("The packet filter did not remove the kill switch (pfctl: {output}); run sstp-vpn repair.").format(output=result.output)
                    )
            case PfEnableReference(token=token):
                if not re.fullmatch(r"[0-9]{1,30}", token):
                    raise ValueError(f"not a pf token: {token!r}")
                released = self.run([PFCTL, "-X", token], None)
                if not released.ok:  # pf restarted, or the reference is gone already: nothing of ours to give back
                    log.info("pfctl -X %s: %s", token, released.output)  # not translated: the log
        return None

    def flush(self) -> CommandResult:
        return self.run([PFCTL, "-a", ANCHOR, "-F", "rules"], None)


class MacKillSwitch:
    """One session's kill switch as the pf anchor ANCHOR (kill_switch.KillSwitch). Journaled
    (journal_replay, in a journal of its own beside the network's) before each change, so that a
    crash leaves the rules in place (fail closed) and the next session or `sstp-vpn repair`
    removes them (repair_kill_switch). One kill switch per machine: the journal's lock says which
    session holds the anchor; another one is refused with a sentence."""

    def __init__(self, journal_path: Path | None = None, *, run_command: CommandRunner | None = None) -> None:
        self.journal = UndoJournal(journal_path if journal_path is not None else kill_switch_journal_path())
        self._pf = _Pf(run_command)
        self._replay = self._pf.replay()
        self.token: str | None = None  # pf's enable reference while we hold one

    def set(self, rules: KillSwitchRules) -> None:
        for name in rules.tunnels:
            if not _UTUN.fullmatch(name):
                raise PlatformError(_("The kill switch lets through only utun tunnel interfaces; {name!r} is not one.").format(name=name[:40]))
        text = ruleset(rules)
        run = self._pf.run
        first = not self.journal.held
        if first:
            self._check_anchor_point()
            self._hold()
            try:
                journal_replay.begin(self.journal, self._replay)  # undoes a dead owner's anchor first
                self.journal.record(CATALOG.to_json(PfAnchorLoaded(ANCHOR)))
            except BaseException:
                self.journal.release()
                raise
        try:
            result = run([PFCTL, "-a", ANCHOR, "-f", "-"], text)  # one transaction: in place of the rules before
            if not result.ok:
                raise _refused(result.output)
            if self.token is None:
                enabled = run([PFCTL, "-E"], None)
                match = _TOKEN.search(enabled.output) if enabled.ok else None
                if match is None:  # without pf enabled the rules do nothing
                    raise _refused(enabled.output)
                self.token = match.group(1)
                self.journal.record(CATALOG.to_json(PfEnableReference(self.token)))
        except BaseException:
            if first:  # nothing of ours may stay in place, and the journal must not keep the lock
                self._undo()
            raise
        log.info("kill switch: pf anchor %s loaded", ANCHOR)  # not translated: the log

    def remove(self) -> None:
        if not self.journal.held:
            return
        self._undo()

    def _undo(self) -> None:
        self.token = None
        for note in journal_replay.restore(self.journal, self._replay):
            log.warning("%s", note)  # not translated: the log

    def _hold(self) -> None:
        if not self.journal.hold_within(LOCK_WAIT_SECONDS):
            raise PlatformError(busy_sentence())

    def _check_anchor_point(self) -> None:
        """Our anchor is evaluated only from a main ruleset with `anchor "com.apple/*"`. An empty
        main ruleset (pf.conf never loaded since boot, unconfirmed) gets the stock /etc/pf.conf,
        as the system's own com.apple.pfctl job loads it; someone else's ruleset is left alone."""
        run = self._pf.run
        rules = run([PFCTL, "-s", "rules"], None)
        if rules.ok and not rules.stdout.strip():
            loaded = run([PFCTL, "-f", PF_CONF], None)
            if not loaded.ok:
                raise _refused(loaded.output)
            rules = run([PFCTL, "-s", "rules"], None)
        if not (rules.ok and _APPLE_ANCHOR.search(rules.stdout)):
            raise PlatformError(
                _(
                    "The packet filter's main rules do not include Apple's anchors (com.apple/*) as the stock /etc/pf.conf does, "
                    "so the kill switch cannot work; restore /etc/pf.conf."
                )
            )


def repair_kill_switch(journal_path: Path | None = None, *, run_command: CommandRunner | None = None) -> list[str]:
    """Remove the anchor's rules and give back pf's reference when no live session holds them:
    what the journal of a dead session names. The sentences of what was removed ([] when nothing
    was)."""
    journal = UndoJournal(journal_path if journal_path is not None else kill_switch_journal_path())
    if not journal.try_hold():
        return []  # a live session's kill switch
    try:
        return [removed_sentence()] if journal_replay.repair_held(journal, _Pf(run_command).replay()) else []
    finally:
        journal.release()


def _refused(output: str) -> PlatformError:
    return PlatformError(
        # Translators: pfctl is the macOS program that was run; {output} is what it said
        _("The packet filter refused the kill switch (pfctl: {output}); disconnect and connect again.").format(output=output)
    )
