"""One client's session with a privileged network helper, the same on every system: its
requests (helper_protocol) checked by the session's rules and carried out with the system's own
tunnel device and network configurator, in order, until the client goes; then whatever the
session changed is undone and its interface removed.

What differs between systems stays outside, behind two small seams:
- the Channel: how a request arrives and a reply leaves (Linux and macOS: a Unix socket, with
  descriptors; Windows: a named pipe, helper_windows), and who the peer is (only logged here);
- `open_reply`: what the reply to "open" hands over (Linux and macOS: the tunnel's descriptor;
  Windows: the name of the session's packet relay, since Wintun's rings cannot change process).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sstpvpn.client.core.i18n import _, ngettext
from sstpvpn.platform import helper_protocol as protocol
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.helper_protocol import (
    AddIpv6Dns,
    AddIpv6Link,
    ApplyPlan,
    BrokenFraming,
    FollowRoute,
    OpenTun,
    PushSettings,
    Repair,
    Reply,
    RequestRefused,
    Restore,
    SetKillSwitch,
    SetMtu,
)
from sstpvpn.platform.interfaces import NetConfigurator
from sstpvpn.platform.kill_switch import KillSwitch

log = logging.getLogger("sstp-vpn-helper")

REFUSAL_READ_SECONDS = 10.0
IDLE_SECONDS = 10.0  # the client asks for its interface right after connecting


class Channel(Protocol):
    """One client's connection, as the session sees it."""

    def receive(self, max_handles: int, timeout: float | None) -> tuple[bytes, list[int]] | None:
        """The next request and the descriptors sent with it (at most `max_handles`; the session
        closes them), or None when the client has closed the connection. Raises TimeoutError
        after `timeout` seconds without a request, BrokenFraming when the stream lost its framing."""
        ...

    def send(self, data: bytes, handles: Sequence[int]) -> None:
        """One reply (with descriptors to hand over); nothing happens when the client is gone."""
        ...


class TunnelDevice(Protocol):
    """The part of interfaces.TunDevice a session uses (tests pass smaller stand-ins)."""

    name: str

    def set_mtu(self, mtu: int) -> None: ...
    def close(self) -> None: ...


# (ifname, server, full_tunnel=, extra_routes=, use_vpn_dns=, journal_path=) -> a configurator
ConfiguratorFactory = Callable[..., NetConfigurator]


def reply_with_descriptor(tun: TunnelDevice) -> tuple[Reply, int | None]:
    """Linux and macOS: the reply to "open" carries the tunnel's descriptor (SCM_RIGHTS)."""
    fileno: Callable[[], int] = getattr(tun, "fileno")  # noqa: B009 - every Unix tunnel device has one
    return Reply(True, ifname=tun.name), fileno()


@dataclass
class HelperSession:
    """Serves one client connection from the first request until the connection closes."""

    channel: Channel
    peer: object  # who the client is, for the log
    journal_path: Path
    create_tun: Callable[[str | None], TunnelDevice]
    make_configurator: ConfiguratorFactory
    # The descriptors a client sent with "open" -> a sentence refusing it, or None (Linux: its
    # network namespace must be the helper's). The session closes them afterwards.
    check_open: Callable[[list[int]], str | None] = lambda _handles: None
    open_reply: Callable[[TunnelDevice], tuple[Reply, int | None]] = reply_with_descriptor
    close_handles: Callable[[list[int]], None] = lambda _handles: None
    idle_seconds: float = IDLE_SECONDS
    # The system's kill switch, made at the session's first "kill_switch" (None: this helper has
    # none); and what "repair" does: the sentences of what it removed.
    kill_switch_factory: Callable[[], KillSwitch] | None = None
    repair: Callable[[], list[str]] | None = None
    rules: protocol.SessionRules = field(default_factory=protocol.SessionRules)
    tun: TunnelDevice | None = None
    configurator: NetConfigurator | None = None
    kill_switch: KillSwitch | None = None
    namespace_proven: bool = False  # check_open accepted the client's descriptors once

    def serve(self) -> None:
        try:
            while (received := self._receive()) is not None:
                data, handles = received
                try:
                    self._send(*self._handle(data, handles))
                finally:
                    self.close_handles(handles)
        finally:
            if threading.current_thread() is threading.main_thread():  # signals are the main thread's
                signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second stop must not cut the restore short
            self.end()

    def end(self) -> None:
        """Restore whatever this session changed, then remove its interface, whatever fails on the
        way (the interface must never outlive the session). Runs once."""
        try:
            if self.configurator is not None:
                try:
                    for note in self.configurator.restore():
                        log.warning("%s: %s", self.peer, note)
                    if self.rules.network_applied:
                        log.info("%s: restored the network of %s as the session ended", self.peer, self.configurator.ifname)
                except PlatformError as error:
                    log.error("%s: restoring the network failed (the journal keeps the rest): %s", self.peer, error.sentence)
                finally:
                    self.configurator = None
        finally:
            try:
                if self.tun is not None:
                    tun, self.tun = self.tun, None
                    tun.close()
                    log.info("%s: closed %s", self.peer, tun.name)
            finally:
                try:
                    self._remove_kill_switch("as the session ended")
                except PlatformError:
                    pass  # logged; its journal keeps it until the next session's repair

    def _remove_kill_switch(self, why: str) -> None:
        """Remove the session's kill switch (last: nothing passes while the rest is undone)."""
        if self.kill_switch is None:
            return
        try:
            self.kill_switch.remove()  # may be called again after a failure
        except PlatformError as error:
            log.error("%s: removing the kill switch failed (its journal keeps it for a repair): %s", self.peer, error.sentence)
            raise
        self.kill_switch = None
        self.rules.kill_switch_changed(False)
        log.info("%s: removed the kill switch %s", self.peer, why)

    def _handle(self, data: bytes, handles: list[int]) -> tuple[Reply, int | None]:
        try:
            request = protocol.parse_request(data)
            if not self.rules.admit(request):
                return Reply(True), None
            if isinstance(request, OpenTun | SetKillSwitch | Repair) and not self.namespace_proven:
                if (problem := self.check_open(handles)) is not None:
                    raise RequestRefused(problem)
                self.namespace_proven = not isinstance(request, Repair)
            return self._carry_out(request)
        except RequestRefused as refusal:
            log.warning("%s: refused a request: %s", self.peer, refusal.sentence)  # not translated: the helper's log
            return Reply(False, error=refusal.sentence), None
        except PlatformError as error:
            log.warning("%s: %s", self.peer, error.sentence)
            return Reply(False, error=error.sentence), None

    def _carry_out(self, request: protocol.Request) -> tuple[Reply, int | None]:
        if isinstance(request, SetKillSwitch):
            if self.kill_switch_factory is None:
                raise RequestRefused(_("This network helper has no kill switch for this system."))
            if self.kill_switch is None:
                self.kill_switch = self.kill_switch_factory()
            self.kill_switch.set(request.rules)  # in place of the rules before, in one step
            self.rules.kill_switch_changed(True)
            log.info(
                "%s: kill switch on (endpoints %s; tunnels %s; LAN %s)",
                self.peer,
                ", ".join(f"{endpoint.address}:{endpoint.port}" for endpoint in request.rules.endpoints) or "none",
                ", ".join(request.rules.tunnels) or "none",
                "allowed" if request.rules.allow_lan else "blocked",
            )
            return Reply(True), None
        if isinstance(request, Repair):
            if self.repair is None:
                raise RequestRefused(_("This network helper cannot repair on this system."))
            notes = self.repair()
            log.info("%s: repair: %s", self.peer, " ".join(notes) or "nothing to remove")
            return Reply(True, notes=tuple(notes)), None
        if isinstance(request, Restore) and self.tun is None:
            self._remove_kill_switch("on request")  # a session of its own for the kill switch
            return Reply(True), None
        if isinstance(request, OpenTun):
            tun = self.create_tun(request.ifname)
            try:
                reply = self.open_reply(tun)
            except BaseException:
                tun.close()
                raise
            self.tun = tun
            self.rules.opened(tun.name)
            log.info("%s: created %s", self.peer, tun.name)
            return reply
        assert self.tun is not None  # the rules admit nothing else before "open"
        if isinstance(request, SetMtu):
            self.tun.set_mtu(request.mtu)
            return Reply(True), None
        if isinstance(request, ApplyPlan):
            if self.configurator is None:
                self.configurator = self.make_configurator(
                    self.tun.name,
                    request.server,
                    full_tunnel=request.full_tunnel,
                    extra_routes=request.extra_routes,
                    use_vpn_dns=request.use_vpn_dns,
                    journal_path=self.journal_path,
                )
            self.configurator.apply(request.plan)  # undoes its own steps when it fails
            self.rules.network_changed(True)
            log.info(
                "%s: applied %s to %s (server %s, %s)",
                self.peer,
                request.plan.address,
                self.tun.name,
                request.server,
                "full tunnel" if request.full_tunnel else "split tunnel",
            )
            return Reply(True), None
        if isinstance(request, PushSettings):
            assert self.configurator is not None  # the rules admit "push" only after "apply"
            notes = self.configurator.add_pushed(request.settings)
            self.rules.pushed_added()
            log.info(
                "%s: added %d pushed routes and %s to %s",
                self.peer,
                len(request.settings.routes),
                request.settings.domain or "no domain",
                self.tun.name,
            )
            return Reply(True, notes=tuple(notes)), None
        if isinstance(request, FollowRoute):
            assert self.configurator is not None  # the rules admit "follow_route" only after "apply"
            sentence = self.configurator.follow_server_route()
            if sentence is not None:
                log.info("%s: %s", self.peer, sentence)
            return Reply(True, notes=() if sentence is None else (sentence,)), None
        if isinstance(request, AddIpv6Link):
            assert self.configurator is not None  # the rules admit "ipv6_link" only after "apply"
            self.configurator.add_ipv6_link(request.identifier)
            self.rules.ipv6_link_added(request.identifier)
            log.info("%s: added the IPv6 link %s to %s", self.peer, request.identifier.hex(), self.tun.name)
            return Reply(True), None
        if isinstance(request, AddIpv6Dns):
            assert self.configurator is not None  # the rules admit "ipv6_dns" only after "apply"
            notes = self.configurator.add_ipv6_dns(request.servers, request.search)
            self.rules.ipv6_dns_was_added()
            log.info("%s: added the IPv6 DNS servers %s to %s", self.peer, ", ".join(map(str, request.servers)) or "none", self.tun.name)
            return Reply(True, notes=tuple(notes)), None
        assert isinstance(request, Restore)
        notes = self.configurator.restore() if self.configurator is not None else []
        self.rules.network_changed(False)
        log.info("%s: restored the network of %s", self.peer, self.tun.name)
        self._remove_kill_switch("on request")
        return Reply(True, notes=tuple(notes)), None

    def _receive(self) -> tuple[bytes, list[int]] | None:
        """The next request, or None when the client has closed the connection or stayed idle."""
        # Room for one descriptor (Linux: the namespace proof) until the interface is open; after
        # that none is taken, so the helper never closes a descriptor of the user's choosing (one
        # on the user's FUSE mount could block close()). The idle limit holds until then too: a
        # session lasts as long as the VPN does.
        opened = self.tun is not None or self.kill_switch is not None
        try:
            return self.channel.receive(0 if opened else 1, None if opened else self.idle_seconds)
        except BrokenFraming as error:
            log.warning("%s: %s", self.peer, error.sentence)
            self._send(Reply(False, error=error.sentence), None)
            return None  # a stream that lost its framing cannot go on
        except TimeoutError:
            log.warning(
                "%s: closed the connection: it asked for no tunnel interface within %.0f s",  # not translated: the helper's log
                self.peer,
                self.idle_seconds,
            )
            return None

    def _send(self, reply: Reply, handle: int | None) -> None:
        try:
            data = protocol.encode_reply(reply)
        except RequestRefused:  # too long (many notes): the outcome, without the notes
            data = protocol.encode_reply(
                Reply(
                    reply.ok,
                    error=reply.error and reply.error[:300],
                    ifname=reply.ifname,
                    relay=reply.relay,
                    notes=(
                        ngettext("{count} note; the helper's log has it.", "{count} notes; the helper's log has them.", len(reply.notes)).format(
                            count=len(reply.notes)
                        ),
                    ),
                )
            )
            for note in reply.notes:
                log.info("%s: %s", self.peer, note)
        self.channel.send(data, () if handle is None else (handle,))


def refuse(channel: Channel, peer: object, sentence: str) -> None:
    """Answer the first request with `sentence`, then let the caller close (the client learns why)."""
    log.warning("%s: refused: %s", peer, sentence)  # not translated: the helper's log
    try:
        received = channel.receive(0, REFUSAL_READ_SECONDS)
        if received is not None:
            channel.send(protocol.encode_reply(Reply(False, error=sentence)), ())
    except (OSError, BrokenFraming):
        pass
