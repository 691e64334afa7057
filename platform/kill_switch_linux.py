"""The Linux kill switch: an nftables table of our own, `inet sstpvpn`, whose output, input and
forward chains drop everything but what kill_switch.KillSwitchRules lets through (family inet:
IPv4 and IPv6 alike). The forward chain holds what this machine routes for containers and virtual
machines: only what goes into or comes out of a tunnel passes (and, with allow_lan, what goes to
the local networks).

`ruleset(rules)` is pure: the rules as one nftables JSON document for `nft -j -f -`. The document
adds the table and its three chains (policy drop) where they are missing, flushes the table's rules
and adds the new ones, so loading it is one transaction (one netlink batch) that puts the rules in
place or replaces the ones in place. The chains themselves stay: deleting and adding the table in
one transaction was measured to let a few packets through (the new chain's hook is live before its
policy is), flushing the rules never did (tests/platform/test_kill_switch_linux.py). `removal()` is the document that deletes the table
(adding it first, so that deleting a table that is gone is no error).

NftKillSwitch (a kill_switch.KillSwitch) journals the table before it adds it (journal_replay,
the same life as the network's journal, in a journal of its own beside it), so that a crash leaves
the table in place (fail closed) and the next start or `sstp-vpn repair` removes it
(repair_kill_switch). One kill switch per network namespace: the journal's lock says which
session holds the table; another one is refused with a sentence.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sstpvpn.client.core.i18n import _
from sstpvpn.platform import journal_replay
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.journal import UndoJournal, kill_switch_journal_path
from sstpvpn.platform.journal_steps import JournalStep, StepCatalog
from sstpvpn.platform.kill_switch import LAN_NETWORKS, LOCK_WAIT_SECONDS, KillSwitchRules, busy_sentence
from sstpvpn.platform.owners_linux import LinuxOwners

log = logging.getLogger(__name__)

FAMILY = "inet"
TABLE = "sstpvpn"
PRIORITY = 0  # "filter": a drop in any base chain is final, whatever other tables accept
NFT_TIMEOUT_SECONDS = 20.0

CHAINS = ("output", "input", "forward")
DNS_PORT = 53  # never to the local networks, allow_lan or not: names stay with the VPN
ND_TYPES = (133, 134, 135, 136)  # router solicitation/advertisement, neighbour solicitation/advertisement
DHCPV4 = (68, 67)  # client port, server port
DHCPV6 = (546, 547)


# -- the ruleset (pure) -------------------------------------------------------------------------


def ruleset(rules: KillSwitchRules) -> dict[str, Any]:
    """The nftables JSON document that puts `rules` in place in one transaction, replacing the
    table's whole content if it exists."""
    table = {"family": FAMILY, "name": TABLE}
    commands: list[dict[str, Any]] = [{"metainfo": {"json_schema_version": 1}}, {"add": {"table": table}}]
    for chain in CHAINS:  # or, where they exist, their policy set to drop again
        commands.append(
            {"add": {"chain": {"family": FAMILY, "table": TABLE, "name": chain, "type": "filter", "hook": chain, "prio": PRIORITY, "policy": "drop"}}}
        )
    commands.append({"flush": {"table": table}})  # the rules before, gone in the same transaction
    for chain, expressions, verdict in _rules(rules):
        commands.append({"add": {"rule": {"family": FAMILY, "table": TABLE, "chain": chain, "expr": [*expressions, {verdict: None}]}}})
    return {"nftables": commands}


def removal() -> dict[str, Any]:
    """The document that deletes the table, whether it exists or not (one transaction)."""
    table = {"family": FAMILY, "name": TABLE}
    return {"nftables": [{"metainfo": {"json_schema_version": 1}}, {"add": {"table": table}}, {"delete": {"table": table}}]}


def _rules(rules: KillSwitchRules) -> list[tuple[str, list[dict[str, Any]], str]]:
    """(chain, the matches of one rule, its verdict), in order: accepts, and the one drop of DNS
    that comes before the local networks' accept."""
    return [(chain, matches, "accept") for chain, matches in _accepted(rules)] + _local_networks(rules)


def _accepted(rules: KillSwitchRules) -> list[tuple[str, list[dict[str, Any]]]]:
    """(chain, the matches of one accepting rule), in order."""
    accepted: list[tuple[str, list[dict[str, Any]]]] = []
    interfaces = ["lo", *rules.tunnels]
    for chain, key in (("output", "oifname"), ("input", "iifname")):
        accepted.append((chain, [_match({"meta": {"key": key}}, _one_or_set(interfaces))]))
    if rules.tunnels:  # routed for others: only into or out of a tunnel
        for key in ("iifname", "oifname"):
            accepted.append(("forward", [_match({"meta": {"key": key}}, _one_or_set(list(rules.tunnels)))]))
    for endpoint in rules.endpoints:
        ip = "ip" if endpoint.address.version == 4 else "ip6"
        address = str(endpoint.address)
        accepted.append(
            ("output", [_match(_field(ip, "daddr"), address), _match(_field("tcp", "dport"), endpoint.port)]),
        )
        accepted.append(
            (
                "input",
                [
                    _match(_field(ip, "saddr"), address),
                    _match(_field("tcp", "sport"), endpoint.port),
                    _match({"ct": {"key": "state"}}, ["established", "related"], "in"),
                ],
            )
        )
    # What keeps the machine on its physical network: DHCPv4, DHCPv6, router and neighbour discovery.
    for client, server in (DHCPV4, DHCPV6):
        accepted.append(("output", [_match(_field("udp", "sport"), client), _match(_field("udp", "dport"), server)]))
        accepted.append(("input", [_match(_field("udp", "sport"), server), _match(_field("udp", "dport"), client)]))
    for chain in ("output", "input"):
        accepted.append((chain, [_match(_field("icmpv6", "type"), {"set": list(ND_TYPES)})]))
    # ICMP errors about the allowed connections (path MTU): conntrack knows them as related.
    accepted.append(
        ("input", [_match({"meta": {"key": "l4proto"}}, {"set": ["icmp", "ipv6-icmp"]}), _match({"ct": {"key": "state"}}, "related", "in")])
    )
    return accepted


def _local_networks(rules: KillSwitchRules) -> list[tuple[str, list[dict[str, Any]], str]]:
    """With allow_lan: DNS dropped first (a LAN resolver would see every name), then the local
    networks accepted, going there or coming from there; routed traffic only going there (a
    container's own private address must not carry it past the tunnel)."""
    if not rules.allow_lan:
        return []
    dns = [_match({"meta": {"key": "l4proto"}}, {"set": ["tcp", "udp"]}), _match(_field("th", "dport"), DNS_PORT)]
    made: list[tuple[str, list[dict[str, Any]], str]] = [("output", dns, "drop"), ("forward", dns, "drop")]
    for version, ip in ((4, "ip"), (6, "ip6")):
        networks = {"set": [_prefix(network) for network in LAN_NETWORKS if network.version == version]}
        made += [
            ("output", [_match(_field(ip, "daddr"), networks)], "accept"),
            ("input", [_match(_field(ip, "saddr"), networks)], "accept"),
            ("forward", [_match(_field(ip, "daddr"), networks)], "accept"),
        ]
    return made


def _match(left: dict[str, Any], right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def _field(protocol: str, name: str) -> dict[str, Any]:
    return {"payload": {"protocol": protocol, "field": name}}


def _one_or_set(names: list[str]) -> Any:
    unique = list(dict.fromkeys(names))
    return unique[0] if len(unique) == 1 else {"set": unique}


def _prefix(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Any:
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return {"prefix": {"addr": str(network.network_address), "len": network.prefixlen}}


# -- running nft ----------------------------------------------------------------------------------


def nft_missing_sentence() -> str:
    return _("The kill switch needs the nft program, which is not installed; install the package nftables (apt-get install nftables).")


def nft_program() -> str:
    """The nft program's path; PlatformError (what to install) when there is none."""
    found = shutil.which("nft") or next((path for path in ("/usr/sbin/nft", "/sbin/nft") if os.access(path, os.X_OK)), None)
    if found is None:
        raise PlatformError(nft_missing_sentence())
    return found


def run_nft(document: dict[str, Any], nft: str | None = None) -> None:
    """Load `document` with `nft -j -f -` (one transaction); PlatformError with nft's reason."""
    program = nft or nft_program()
    try:
        result = subprocess.run(
            [program, "-j", "-f", "-"], input=json.dumps(document), capture_output=True, text=True, timeout=NFT_TIMEOUT_SECONDS, check=False
        )
    except FileNotFoundError as error:
        raise PlatformError(nft_missing_sentence()) from error
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PlatformError(_("The kill switch's firewall rules could not be loaded ({reason}).").format(reason=error)) from error
    if result.returncode != 0:
        reason = " ".join(result.stderr.split())[:300] or f"nft exit status {result.returncode}"
        if "Operation not permitted" in reason:
            raise PlatformError(
                _("Turning the kill switch on or off needs administrator rights (CAP_NET_ADMIN); run sstp-vpn as root or through its network helper.")
            )
        raise PlatformError(_("The kill switch's firewall rules could not be loaded ({reason}).").format(reason=reason))


def table_present(nft: str | None = None) -> bool:
    """Whether this network namespace has the table `inet sstpvpn`."""
    program = nft or nft_program()
    try:
        result = subprocess.run([program, "-j", "list", "tables", FAMILY], capture_output=True, text=True, timeout=NFT_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PlatformError(_("The firewall tables could not be listed ({reason}).").format(reason=error)) from error
    if result.returncode != 0:
        raise PlatformError(_("The firewall tables could not be listed ({reason}).").format(reason=" ".join(result.stderr.split())[:300]))
    try:
        items = json.loads(result.stdout or "{}").get("nftables", [])
    except ValueError:
        return False
    return any(isinstance(item, dict) and item.get("table", {}).get("name") == TABLE for item in items)


# -- the journal ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NftTableAdded(JournalStep):
    """Our nftables table was added (its rules may have been replaced since)."""

    OP = "nft_table"
    family: str
    name: str


def _undo_step(step: JournalStep, same_boot_and_namespace: bool) -> str | None:
    assert isinstance(step, NftTableAdded)
    if not same_boot_and_namespace:
        return None  # an earlier boot's table is gone; another namespace's is not ours to touch
    if step.family != FAMILY or step.name != TABLE:
        raise PlatformError(
            _("The kill switch's journal names a firewall table that is not ours ({family} {name}); it was left alone.").format(
                family=step.family, name=step.name
            )
        )
    run_nft(removal())
    return None


REPLAY = journal_replay.Replay(LinuxOwners(), StepCatalog(NftTableAdded), _undo_step)


def removed_sentence() -> str:
    return _("Removed the kill switch (the firewall table inet sstpvpn) that an ended sstp-vpn left; the network is open again.")


class NftKillSwitch:
    """One session's kill switch as the table `inet sstpvpn` (kill_switch.KillSwitch)."""

    def __init__(self, journal_path: Path | None = None, nft: str | None = None) -> None:
        self.journal = UndoJournal(journal_path if journal_path is not None else kill_switch_journal_path())
        self._nft = nft
        self.rules: KillSwitchRules | None = None  # what is in place now

    def set(self, rules: KillSwitchRules) -> None:
        nft = self._nft or nft_program()
        document = ruleset(rules)
        if not self.journal.held:
            self._hold()
            try:
                journal_replay.begin(self.journal, REPLAY)  # undoes a dead owner's table first
                self.journal.record(REPLAY.catalog.to_json(NftTableAdded(FAMILY, TABLE)))
            except BaseException:
                self.journal.release()
                raise
            # Held by no live session (the lock says so): what is there is a leftover, replaced now.
        try:
            run_nft(document, nft)
        except PlatformError:
            if self.rules is None:  # nothing of ours in place: the journal must not keep the lock
                self._undo()
            raise
        self.rules = rules

    def remove(self) -> None:
        if not self.journal.held:
            return
        self._undo()
        self.rules = None

    def _undo(self) -> None:
        for note in journal_replay.restore(self.journal, REPLAY):
            log.warning("%s", note)

    def _hold(self) -> None:
        if not self.journal.hold_within(LOCK_WAIT_SECONDS):
            raise PlatformError(busy_sentence())


def repair_kill_switch(journal_path: Path | None = None, nft: str | None = None) -> list[str]:
    """Remove the table when no live session holds it: the journal a dead owner left, and a table
    no journal speaks of. The sentences of what was removed ([] when nothing was)."""
    journal = UndoJournal(journal_path if journal_path is not None else kill_switch_journal_path())
    try:
        program: str | None = nft or nft_program()
    except PlatformError:
        program = None  # no nft: no table either, unless a journal says otherwise (its undo then says what to install)
    if not journal.exists() and (program is None or not table_present(program)):
        return []  # nothing to look at (and no lock file left behind for it)
    if not journal.try_hold():
        return []  # a live session's kill switch
    try:
        removed = journal_replay.repair_held(journal, REPLAY)
        if program is not None and table_present(program):
            run_nft(removal(), program)
            removed = True
        return [removed_sentence()] if removed else []
    finally:
        journal.release()
