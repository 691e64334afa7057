"""ScriptedRunner: stands in for EngineRunner where a test needs session states that only a real
server and a TUN device could produce (connected, dropped). Same interface: built with the two
callbacks, `start()`, `submit()`, `is_alive()`; the test plays the engine's part with `publish`,
which calls back from another thread, as the real runner does."""

from __future__ import annotations

import threading
from ipaddress import IPv4Address

from sstpvpn.client.core.events import LogRecord
from sstpvpn.client.core.types import Failure, KillSwitchState, NetworkPlan, SessionSecurity, State, Status
from sstpvpn.client.runner import Connect, Disconnect, Shutdown


class ScriptedRunner:
    instances: list[ScriptedRunner] = []

    def __init__(self, on_status, on_log, on_password_retry=None) -> None:
        self.on_status = on_status
        self.on_log = on_log
        self.on_password_retry = on_password_retry
        self.commands: list[object] = []
        self.started = False
        self.stopped = False
        ScriptedRunner.instances.append(self)

    def start(self) -> None:
        self.started = True

    def is_alive(self) -> bool:
        return self.started and not self.stopped

    def submit(self, command) -> None:
        self.commands.append(command)
        if isinstance(command, Disconnect):
            self.dropped(None)  # a polite end, as requested
        elif isinstance(command, Shutdown):
            self.stopped = True

    @property
    def server(self) -> str:
        connects = [c for c in self.commands if isinstance(c, Connect)]
        return connects[-1].transport.server if connects else ""

    @property
    def connects(self) -> list[Connect]:
        return [c for c in self.commands if isinstance(c, Connect)]

    # -- the engine's part -----------------------------------------------------------------------

    def publish(self, status: Status) -> None:
        thread = threading.Thread(target=self.on_status, args=(status,))
        thread.start()
        thread.join()

    def log(self, message: str, level: int = 20) -> None:
        thread = threading.Thread(target=self.on_log, args=(LogRecord(level, message),))
        thread.start()
        thread.join()

    def connected(
        self,
        address: str = "198.18.30.10",
        connected_at: float = 0.0,
        interface: str = "sstp0",
        ipv6_identifier: bytes | None = None,
        tls: str = "TLSv1.2, ECDHE-RSA-AES256-GCM-SHA384",
        security: SessionSecurity = SessionSecurity("MS-CHAPv2", "SHA-256", keyed=True),
        revocation: str = "",
        kill_switch: KillSwitchState | None = None,
    ) -> Status:
        plan = NetworkPlan(IPv4Address(address), IPv4Address("198.18.30.1"), (IPv4Address("198.18.30.1"),), 1400, ipv6_identifier)
        status = Status(
            State.CONNECTED,
            server=self.server,
            plan=plan,
            interface=interface,
            connected_at=connected_at,
            tls=tls,
            security=security,
            revocation=revocation,
            kill_switch=kill_switch,
        )
        self.publish(status)
        return status

    def dropped(self, failure: Failure | None) -> None:
        """The end of a session that got past TLS, published as EngineRunner does: once, when the
        network is restored, with the failure (None for a clean end)."""
        self.publish(Status(State.DISCONNECTED, server=self.server, failure=failure))

    def unreachable(self, failure: Failure) -> None:
        """A session that ended before TLS: one snapshot, with the failure."""
        self.publish(Status(State.DISCONNECTED, server=self.server, failure=failure))
