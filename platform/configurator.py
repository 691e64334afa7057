"""What every NetConfigurator does the same way: take the routing policy's steps for a plan, apply
them in order, journal each change before it is made (and drop it again when the system made
no change), and undo the journal newest first, exactly, also after a crash (journal_replay).

A subclass (netconfig_linux, netconfig_macos, netconfig_windows) says only how one policy step is
applied with its system's tools (`_apply_step`) and how one of its journal steps is undone
(`_undo_step`), plus the journal's owner identity and step types (`_replay`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import pathlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

from sstpvpn.client.core.i18n import _
from sstpvpn.platform import journal_replay
from sstpvpn.platform import routing_policy as policy
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.journal import UndoJournal
from sstpvpn.platform.journal_steps import JournalStep

if TYPE_CHECKING:
    from sstpvpn.client.core.types import NetworkPlan, PushedSettings

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
T = TypeVar("T")


class NothingChanged(Exception):
    """The system made no change for a step (raised by a subclass's action; its journal step is
    dropped again). The caller decides whether that is fine."""


class AlreadyThere(NothingChanged):
    """The change exists already, made by someone else: not ours to undo."""


class StepConfigurator:
    """Applies a NetworkPlan to one tunnel interface and undoes it again."""

    _system_name = ""  # for sentences: "Windows", "macOS"
    _replay: journal_replay.Replay

    def __init__(
        self,
        ifname: str,
        server_address: IPAddress | str,
        full_tunnel: bool,
        journal_path: pathlib.Path,
        *,
        extra_routes: Sequence[IPNetwork],
        use_vpn_dns: bool,
    ) -> None:
        self.ifname = ifname
        self.server_address = ipaddress.ip_address(server_address)
        self.full_tunnel = full_tunnel
        self.extra_routes = tuple(extra_routes)
        self.use_vpn_dns = use_vpn_dns
        self.options = policy.Options(self.server_address, full_tunnel, self.extra_routes, use_vpn_dns)
        self.journal = UndoJournal(journal_path)
        self.notes: list[str] = []  # sentences about things left alone or not possible

    # -- public --------------------------------------------------------------------------

    def apply(self, plan: NetworkPlan) -> None:
        """Configure the interface, routes and DNS. On failure everything done so far is undone
        and a PlatformError says why."""
        self._refuse_before_journal()
        journal_replay.begin(self.journal, self._replay)
        try:
            steps = policy.steps(plan, self.options)
            with self._applying(steps):
                for step in steps:
                    self._apply_policy_step(step)
        except BaseException:
            try:
                self.restore()
            except PlatformError as undo_error:
                log.warning("%s", undo_error.sentence)
            raise

    def add_ipv6_link(self, identifier: bytes) -> None:
        """IPV6CP opened after apply() (SoftEther's own request comes seconds after IPCP): the
        link-local address from our interface identifier `identifier`, and the router
        advertisements that bring the global one. Journaled like apply(); restore() undoes it
        (also what was done before a failure, which a PlatformError reports; IPv4 stays up)."""
        if not self.journal.held:
            raise PlatformError(_("The network is not configured for this connection; nothing to add to."))
        steps = policy.ipv6_link_steps(identifier)
        with self._applying(steps):
            for step in steps:
                self._apply_policy_step(step)

    def add_ipv6_dns(self, servers: Sequence[ipaddress.IPv6Address], search: Sequence[str]) -> list[str]:
        """What the VPN's DHCPv6 server named (IPv6 DNS servers, domains): not added on this
        system yet, said in a note."""
        if not (servers or search):
            return []
        return [_("This version cannot add the IPv6 DNS servers the VPN's DHCPv6 server named on {system} yet.").format(system=self._system_name)]

    def follow_server_route(self) -> str | None:
        """After a network change, move the host route to the server to the new route to it (a
        sentence saying where, None when unchanged); not written for this system yet."""
        raise PlatformError(
            _("Moving the route to the VPN server after a network change is not possible on {system} yet.").format(system=self._system_name)
        )

    def add_pushed(self, pushed: PushedSettings) -> list[str]:
        """What the VPN's DHCP server sent (routes, DNS domains): not added on this system yet,
        said in a note; the connection works as set up by apply()."""
        if not pushed:
            return []
        return [
            _(
                "This version cannot add the routes and DNS domains the VPN's DHCP server sent on "
                "{system} yet; ask for them as extra routes in the profile if you need them."
            ).format(system=self._system_name)
        ]

    def restore(self) -> list[str]:
        """Undo exactly what apply() did, in reverse order. Safe to call again, and when apply()
        was never called. Returns sentences about anything deliberately left alone."""
        notes = journal_replay.restore(self.journal, self._replay)
        self.notes.extend(notes)
        return notes

    # -- for the subclasses --------------------------------------------------------------

    def _refuse_before_journal(self) -> None:
        """Raise PlatformError for what must be refused before the journal is touched."""

    @contextlib.contextmanager
    def _applying(self, steps: list[policy.Step]) -> Iterator[None]:
        """Around applying `steps`, with the journal's lock held: checks and system handles."""
        yield

    def _apply_step(self, step: policy.Step) -> None:
        raise NotImplementedError

    def _apply_policy_step(self, step: policy.Step) -> None:
        """One step; what "already there" means is the policy's, the same on every system."""
        try:
            self._apply_step(step)
        except AlreadyThere as error:
            if isinstance(step, policy.AddRoute):
                raise PlatformError(policy.route_exists_sentence(step.network, self.full_tunnel)) from error
            if isinstance(step, policy.AddAddress):
                raise PlatformError(policy.address_in_use_sentence(step.local)) from error
            # A host route to the server exists already (and the system chose it): keep it, it is
            # not ours to undo. Anything else that exists already is as good as made.

    def _record(self, step: JournalStep) -> None:
        """Journal `step` before a change that may be partly made even when it fails."""
        self.journal.record(self._replay.catalog.to_json(step))

    def _change(self, step: JournalStep, action: Callable[[], T]) -> T:
        """Journal `step`, then make the change. When the system refuses (PlatformError) or makes
        no change (NothingChanged), the step leaves the journal again."""
        self._record(step)
        try:
            return action()
        except (PlatformError, NothingChanged):
            self.journal.forget(self._replay.catalog.to_json(step))
            raise
