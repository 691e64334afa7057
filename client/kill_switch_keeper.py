"""The kill switch (platform/kill_switch.py) of the session the user asked for: its rules, the
addresses they pin and its state. The session driver (client/session_driver.py) keeps one, so both
front ends keep it alike; it asks the keeper at each attempt's start, at each "connected" status
and at the session's end, and carries out what the keeper answers (the command to run, or the
failure that ends the attempt).
- CONNECTED: its rules go in place at the session's first "connected" status (the connection's
  address and port, the tunnel), follow each later one (a reconnect's tunnel is added) and stay
  while reconnecting;
- ALWAYS: the server's name (or the proxy's) is looked up first, on a thread, and the rules go in
  place with those addresses before the runner gets the command;
- while they are in place every attempt connects to the addresses they allow
  (TransportSettings.resolved): the table blocks DNS, so no name is looked up again;
- they are removed when the session is over for good (Finished: Disconnect, a final failure, the
  program's end) and in the driver's `close()`;
- fail closed: rules that cannot be put in place end the attempt with their sentence.
Its state (a KillSwitchState, or None while it is off) goes to the driver through `tell_state`
each time it may have changed; every Status the front ends get carries it (Status.kill_switch).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from ipaddress import ip_address

from sstpvpn.platform import current
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.kill_switch import AllowedEndpoint, KillSwitch, KillSwitchRules

from .core.events import LogRecord
from .core.i18n import _
from .core.types import Failure, FailureKind, KillSwitchMode, KillSwitchState, Layer, Status
from .runner import Connect
from .transport import Endpoint, TransportError, resolve


@dataclass(frozen=True)
class LookedUp:
    """Posted by the look-up before an ALWAYS kill switch: the addresses of the server (or the
    proxy), or why there are none."""

    attempt: int
    addresses: tuple[str, ...]
    failure: Failure | None = None


def open_kill_switch() -> KillSwitch:
    return current.open_kill_switch()


def on_a_thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="sstp-kill-switch-look-up", daemon=True).start()


class KillSwitchKeeper:
    """Runs on the driver's (the front end's) thread, but for the look-up's work."""

    def __init__(
        self,
        post: Callable[[object], None],
        on_log: Callable[[LogRecord], None],
        tell_state: Callable[[KillSwitchState | None], None],
        factory: Callable[[], KillSwitch] = open_kill_switch,
        look_up: Callable[[Endpoint], list[tuple[int, tuple]]] = resolve,
        background: Callable[[Callable[[], None]], None] = on_a_thread,
    ) -> None:
        """`post`: the look-up's LookedUp, from its thread, back to the driver's (`looked_up`);
        `tell_state`: the kill switch's state, each time it may have changed."""
        self._post = post
        self._on_log = on_log
        self._tell_state = tell_state
        self._factory = factory
        self._look_up = look_up
        self._background = background
        self._kill_switch: KillSwitch | None = None  # opened at the first set, dropped once removed
        self._mode = KillSwitchMode.OFF
        self._allow_lan = False
        self._rules: KillSwitchRules | None = None  # in place now
        self._pinned: tuple[str, ...] = ()  # the addresses the rules in place let the connection go to
        self._port = 443  # the port of those: the server's, or the proxy's
        self._looking_up: tuple[int, Connect] | None = None  # ALWAYS: the attempt whose look-up runs
        self.leftover: str | None = None  # the sentence of a kill switch that could not be removed

    def start(self, attempt: int, command: Connect) -> Connect | Failure | None:
        """An attempt starts: the command to run now (while the rules are in place, connecting to
        the addresses they pin), the failure that ends the attempt, or None while its name is
        looked up (ALWAYS; the LookedUp is posted, for `looked_up`)."""
        mode = command.network.kill_switch
        if mode is not self._mode:
            self.remove()  # the profile changed between attempts
            self._mode = mode
            self._tell_state(None if mode is KillSwitchMode.OFF else KillSwitchState(mode, active=False))
        self._allow_lan = command.network.kill_switch_allow_lan
        if mode is KillSwitchMode.OFF:
            return command
        transport = command.transport
        if transport.pac is not None:
            # Translators: a failure sentence; the kill switch blocks all traffic outside the VPN
            sentence = _(
                "The kill switch cannot be used with a proxy auto-config (PAC) file: choose a proxy or a direct connection, "
                "or turn the kill switch off."
            )
            return Failure(Layer.PROFILE, sentence, FailureKind.OTHER)
        self._port = transport.proxy.port if transport.proxy is not None else transport.port
        if self._rules is not None:
            return replace(command, transport=replace(transport, resolved=self._pinned))
        if mode is KillSwitchMode.ALWAYS:
            # The name first (DNS is blocked once the rules are in place), off this thread.
            proxy = transport.proxy
            endpoint = Endpoint("server", transport.host, transport.port) if proxy is None else Endpoint("proxy", proxy.host, proxy.port)
            self._looking_up = (attempt, command)
            self._background(lambda: self._post(self._look_up_addresses(attempt, endpoint)))
            return None
        return command

    def _look_up_addresses(self, attempt: int, endpoint: Endpoint) -> LookedUp:
        """On the look-up's thread."""
        try:
            found = self._look_up(endpoint)
        except TransportError as error:
            return LookedUp(attempt, (), error.failure)
        return LookedUp(attempt, tuple(sockaddr[0] for _family, sockaddr in found))

    @property
    def looking_up(self) -> bool:
        return self._looking_up is not None

    def drop_look_up(self) -> Connect:
        """The attempt whose name is being looked up is stopped: its command, which the runner never had."""
        assert self._looking_up is not None
        command = self._looking_up[1]
        self._looking_up = None
        return command

    def looked_up(self, item: LookedUp) -> tuple[Connect, Connect | Failure] | None:
        """ALWAYS: the rules with the addresses found. The attempt's command and then either the
        command to run, which connects to those only, or the failure that ends it; None when the
        attempt was stopped meanwhile."""
        if self._looking_up is None or self._looking_up[0] != item.attempt:
            return None
        command = self._looking_up[1]
        self._looking_up = None
        if item.failure is not None:
            return command, item.failure
        endpoints = tuple(AllowedEndpoint(ip_address(address), self._port) for address in item.addresses)
        failure = self._set_rules(endpoints, ())
        if failure is not None:
            return command, failure
        self._pinned = item.addresses
        return command, replace(command, transport=replace(command.transport, resolved=item.addresses))

    def follow(self, status: Status) -> Failure | None:
        """A "connected" status of the running session: the rules take in this connection and its
        tunnel. The failure when they could not be put in place (the session then ends with its
        sentence); None when they are, or when the kill switch is off."""
        if self._mode is KillSwitchMode.OFF:
            return None
        endpoints = self._rules.endpoints if self._rules is not None else ()
        if status.route_target is not None:
            endpoints = _added(endpoints, AllowedEndpoint(ip_address(status.route_target), self._port))
        tunnels = self._rules.tunnels if self._rules is not None else ()
        if status.interface:
            tunnels = _added(tunnels, status.interface)
        failure = self._set_rules(endpoints, tunnels)
        if failure is not None:
            return failure
        if not self._pinned:
            self._pinned = tuple(str(endpoint.address) for endpoint in endpoints)
        return None

    def _set_rules(self, endpoints: tuple[AllowedEndpoint, ...], tunnels: tuple[str, ...]) -> Failure | None:
        """Put the rules in place (or change those in place); the failure when they cannot be."""
        rules = KillSwitchRules(endpoints, tunnels, self._allow_lan)
        if rules == self._rules:
            return None
        first = self._rules is None
        try:
            if self._kill_switch is None:
                self._kill_switch = self._factory()
            self._kill_switch.set(rules)
        except PlatformError as error:
            self._tell_state(KillSwitchState(self._mode, active=self._rules is not None, problem=error.sentence))
            self._on_log(LogRecord(logging.ERROR, error.sentence))
            return error.to_failure()
        self._rules = rules
        self._tell_state(KillSwitchState(self._mode, active=True))
        if first:
            allowed = ", ".join(_endpoint_text(endpoint) for endpoint in endpoints)
            # Translators: a progress line; {endpoints} is e.g. "203.0.113.5:443"
            self._on_log(
                LogRecord(logging.INFO, _("Kill switch on: only the VPN and the connection to {endpoints} may pass.").format(endpoints=allowed))
            )
        else:
            self._on_log(LogRecord(logging.DEBUG, f"Kill switch rules now: {rules}."))
        return None

    def remove(self) -> None:
        """The session is over: the rules go (once), and the next attempt looks its name up again."""
        self._looking_up = None
        self._pinned = ()
        kill_switch, self._kill_switch = self._kill_switch, None
        was_on, self._rules = self._rules is not None, None
        if kill_switch is None:
            return
        try:
            kill_switch.remove()
        except PlatformError as error:
            self.leftover = error.sentence
            self._tell_state(KillSwitchState(self._mode, active=True, problem=error.sentence))
            self._on_log(LogRecord(logging.ERROR, error.sentence))
            return
        if was_on:  # else its state keeps the sentence of the set that failed
            self._tell_state(KillSwitchState(self._mode, active=False))
            # Translators: a progress line
            self._on_log(LogRecord(logging.INFO, _("Kill switch off: traffic may leave outside the VPN again.")))


def _added(items: tuple, item: object) -> tuple:
    return items if item in items else (*items, item)


def _endpoint_text(endpoint: AllowedEndpoint) -> str:
    address = endpoint.address
    return f"[{address}]:{endpoint.port}" if address.version == 6 else f"{address}:{endpoint.port}"
