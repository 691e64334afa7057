"""The status window: state, addresses, DNS, routing, the kill switch, server, TLS, revocation, crypto
binding, traffic with a small live graph, and how long the connection has lasted. Refreshed once a
second while open.

What the system knows (the tunnel's traffic counters, routes and IPv6 addresses, whether a tunnel
can be had at all) is read by the platform layer on a worker thread once a second; the window shows the latest
reading and ignores one that comes back after the session's interface has changed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from functools import partial

from PySide6.QtCore import QPointF, Qt, QTimer, Slot
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from sstpvpn.client.core.i18n import _
from sstpvpn.client.core.types import KillSwitchMode, NetworkPlan, State, Status
from sstpvpn.client.profiles import Profile
from sstpvpn.platform import current
from sstpvpn.platform.traffic_counters import TrafficCounters

from .background import run_in_background
from .connection import ConnectionController
from .icons import app_icon
from .presentation import duration_text, in_gui_words, ipv6_link_local, state_text
from .traffic import TrafficMeter, human_bytes, human_rate

ERROR_STYLE = "color: #b3261e;"
ROUTES_EVERY = 10  # the routes and IPv6 addresses are read with every tenth traffic sample (and whenever the window opens or the interface changes)
RECEIVED_COLOR = QColor("#2e7dd7")
SENT_COLOR = QColor("#e8771c")


@dataclass(frozen=True)
class SystemReading:
    """One look at the system for the window, taken on a worker thread."""

    interface: str | None  # the session's tunnel interface; None when not connected
    at: float  # time.monotonic() when the counters were read
    counters: TrafficCounters | None  # None: not counted on this system, or no interface
    routes: list[str] | None  # None: not shown on this system, or no interface
    tunnel_problem: str | None  # why no tunnel can be had, if so
    routes_read: bool = True  # False: this look left the routes and addresses out (they cost more than the rest)
    ipv6: list[str] | None = None  # the interface's IPv6 addresses, read with the routes; None: not read


def read_system(interface: str | None, with_routes: bool = True) -> SystemReading:
    """Worker thread: asks the platform layer, which may read files and netlink."""
    return SystemReading(
        interface,
        time.monotonic(),
        current.read_traffic_counters(interface) if interface else None,
        current.routes_through(interface) if interface and with_routes else None,
        current.tunnel_problem(),
        routes_read=with_routes,
        ipv6=current.ipv6_addresses(interface) if interface and with_routes else None,
    )


class TrafficGraph(QWidget):
    """Rates of the last minute: received in blue, sent in orange, scaled to the largest."""

    def __init__(self, meter: TrafficMeter) -> None:
        super().__init__()
        self.setObjectName("traffic_graph")
        self.meter = meter
        self.setMinimumSize(320, 90)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        area = self.rect().adjusted(1, 1, -2, -2)
        painter.fillRect(area, self.palette().base())
        painter.setPen(QPen(self.palette().mid().color()))
        painter.drawRect(area)
        rates = list(self.meter.rates)
        if len(rates) < 2:
            painter.setPen(self.palette().placeholderText().color())
            # Translators: placeholder in the status window's traffic graph
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, _("traffic appears here once connected"))
            return
        peak = max(max(rate.received, rate.sent) for rate in rates) or 1.0
        slots = (self.meter.rates.maxlen or len(rates)) - 1

        def points(values: list[float]) -> list[QPointF]:
            return [
                QPointF(area.right() - (len(values) - 1 - index) * area.width() / slots, area.bottom() - 4 - value / peak * (area.height() - 8))
                for index, value in enumerate(values)
            ]

        received = points([rate.received for rate in rates])
        area_path = QPainterPath(QPointF(received[0].x(), area.bottom()))
        for point in received:
            area_path.lineTo(point)
        area_path.lineTo(QPointF(received[-1].x(), area.bottom()))
        fill = QColor(RECEIVED_COLOR)
        fill.setAlpha(90)
        painter.fillPath(area_path, fill)  # received: a filled area, so equal rates stay visible
        painter.setPen(QPen(RECEIVED_COLOR, 1.5))
        painter.drawPolyline(received)
        painter.setPen(QPen(SENT_COLOR, 2))  # sent: a line on top
        painter.drawPolyline(points([rate.sent for rate in rates]))
        painter.setPen(self.palette().text().color())
        # Translators: in the status window's traffic graph: the highest rate of the last minute, e.g. "peak 1.5 MiB/s"
        peak_text = _("peak {rate}").format(rate=human_rate(peak))
        painter.drawText(area.adjusted(6, 4, -6, -4), Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft, peak_text)


def status_fields() -> tuple[tuple[str, str], ...]:
    """The status window's rows: (the value label's object name, the row's label)."""
    return (
        # Translators: status window row label: the profile's name
        ("profile", _("Profile:")),
        # Translators: status window row label: the connection's state
        ("state", _("State:")),
        # Translators: status window row label: the VPN server
        ("server", _("Server:")),
        # Translators: status window row label
        ("address", _("IPv4 address:")),
        ("ipv6", "IPv6:"),  # not translated: a protocol name
        # Translators: status window row label
        ("dns", _("DNS servers:")),
        # Translators: status window row label: which traffic goes through the VPN
        ("routing", _("Routing:")),
        # Translators: status window row label: the networks routed through the VPN
        ("routes", _("Routes:")),
        # Translators: status window row label: whether everything but the tunnel is blocked
        ("kill_switch", _("Kill switch:")),
        # Translators: status window row label: the network interface of the tunnel
        ("interface", _("Interface:")),
        ("tls", "TLS:"),  # not translated: a protocol name
        # Translators: status window row label: whether the server's certificate was checked for revocation (OCSP, CRL)
        ("revocation", _("Revocation:")),
        # Translators: status window row label: how the SSTP layer is bound to the sign-in (SSTP crypto binding)
        ("binding", _("Crypto binding:")),
        # Translators: status window row label: bytes received
        ("received", _("Received:")),
        # Translators: status window row label: bytes sent
        ("sent", _("Sent:")),
        # Translators: status window row label: how long the connection has lasted
        ("duration", _("Connected for:")),
    )


class StatusWindow(QWidget):
    def __init__(self, controller: ConnectionController) -> None:
        super().__init__()
        self.controller = controller
        self.meter = TrafficMeter()
        self._metered_interface: str | None = None
        self._interface_reading: SystemReading | None = None  # the latest for `_metered_interface`
        self._tunnel_problem: str | None = None  # from the latest reading
        self._generation = 0  # bumped when the interface changes: readings of an older one are stale
        self._reading = False  # a look at the system is on its way
        self._looks_since_routes = 0  # looks at the system since the last one that read the routes
        # Translators: window title
        self.setWindowTitle(_("SSTP VPN status"))
        self.setWindowIcon(app_icon())
        self.values: dict[str, QLabel] = {}
        # Translators: status window group title (the connection's details)
        details = QGroupBox(_("Connection"))
        form = QFormLayout(details)
        for name, label in status_fields():
            value = QLabel()
            value.setObjectName(name)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setWordWrap(True)
            self.values[name] = value
            form.addRow(label, value)
        self.problem = QLabel(wordWrap=True)
        self.problem.setObjectName("problem")
        self.problem.setStyleSheet(ERROR_STYLE)
        self.graph = TrafficGraph(self.meter)
        # Translators: legend of the status window's traffic graph, after a blue square
        received = _("received")
        # Translators: legend of the status window's traffic graph, after an orange square
        sent = _("sent (last minute)")
        legend = QLabel(
            f'<span style="color:{RECEIVED_COLOR.name()}">■</span> {received} &nbsp; '  # not translated: HTML around the words
            f'<span style="color:{SENT_COLOR.name()}">■</span> {sent}'
        )
        # Translators: button in the status window; & marks the keyboard accelerator
        self.disconnect_button = QPushButton(_("&Disconnect"))
        self.disconnect_button.setObjectName("disconnect")
        self.disconnect_button.clicked.connect(controller.disconnect_session)
        # Translators: button in the status window; & marks the keyboard accelerator
        self.close_button = QPushButton(_("&Close"))
        self.close_button.setObjectName("close")
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch()
        buttons.addWidget(self.disconnect_button)
        buttons.addWidget(self.close_button)
        layout = self._layout = QVBoxLayout(self)
        layout.addWidget(details)
        layout.addWidget(self.problem)
        layout.addWidget(self.graph, 1)  # the graph takes the room a larger window gives
        layout.addWidget(legend)
        layout.addLayout(buttons)
        self.timer = QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self._tick)
        controller.changed.connect(self.refresh)
        self.resize(500, 540)
        self.refresh()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.timer.start()
        self.refresh()
        self._read_system(with_routes=True)
        super().showEvent(event)

    def hideEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.timer.stop()
        super().hideEvent(event)

    @Slot()
    def refresh(self) -> None:
        controller = self.controller
        status = controller.status
        profile = controller.profile
        plan = status.plan if status.state is State.CONNECTED else None
        connected = plan is not None
        self._follow_interface(status.interface if connected else None)
        reading = self._interface_reading  # None: not read yet
        latest, rate = self.meter.latest, self.meter.current
        none = "—"
        values = {
            "profile": profile.name if profile else none,
            "state": state_text(status, controller.reconnect_in),
            "server": status.server or (profile.server if profile else none),
            "address": str(plan.address) if plan else none,
            "ipv6": _ipv6_text(plan, profile, reading.ipv6 if reading else None) if plan else none,
            # Translators: status window, DNS servers row: the server offered none
            "dns": (", ".join(map(str, plan.dns)) or _("none offered")) if plan else none,
            "routing": _routing_text(profile.full_tunnel if profile else True) if connected else none,
            "routes": _routes_text(reading.routes) if connected and reading else none,
            "kill_switch": _kill_switch_text(status, profile, connecting=controller.active and not connected),
            "interface": status.interface if connected and status.interface else none,
            "tls": status.tls if status.tls and status.state is not State.DISCONNECTED else none,
            "revocation": status.revocation if status.revocation and status.state is not State.DISCONNECTED else none,
            "binding": status.security.binding if connected and status.security else none,
            "received": _traffic_text(latest.received if latest else None, rate.received if rate else None) if connected and reading else none,
            "sent": _traffic_text(latest.sent if latest else None, rate.sent if rate else None) if connected and reading else none,
            "duration": duration_text(time.monotonic() - status.connected_at) if connected and status.connected_at else none,
        }
        for name, text in values.items():
            if self.values[name].text() != text:
                self.values[name].setText(text)
        kill_switch_style = ERROR_STYLE if status.kill_switch and status.kill_switch.problem else ""
        if self.values["kill_switch"].styleSheet() != kill_switch_style:
            self.values["kill_switch"].setStyleSheet(kill_switch_style)
        self.disconnect_button.setEnabled(controller.active and not controller.shutting_down)
        problem = in_gui_words(status.failure.reason) if status.state is State.DISCONNECTED and status.failure else self._tunnel_problem
        if self.problem.text() != (problem or ""):
            self.problem.setText(problem or "")
        self.problem.setVisible(bool(problem))
        self._grow_to_fit()

    def _grow_to_fit(self) -> None:
        """Taller when rows wrap onto a second line (IPv6 addresses, many routes, a kill switch's
        sentence), so that none is cut; never shorter, so the window does not jump as values change."""
        layout = self._layout
        needed = layout.totalHeightForWidth(self.width()) if layout.hasHeightForWidth() else layout.totalMinimumSize().height()
        if needed > self.height():
            self.resize(self.width(), needed)

    @Slot()
    def _tick(self) -> None:
        """Once a second: one look at the system (a traffic sample, evenly spaced so the graph's
        time axis holds), and the duration moves on."""
        self._read_system()
        self.refresh()

    def _read_system(self, with_routes: bool = False) -> None:
        if self._reading:
            return  # the last look has not come back yet: no pile of threads behind a slow system
        self._reading = True
        with_routes = with_routes or self._interface_reading is None or self._looks_since_routes >= ROUTES_EVERY - 1
        self._looks_since_routes = 0 if with_routes else self._looks_since_routes + 1
        run_in_background(
            partial(read_system, self._metered_interface, with_routes), partial(self._system_read, self._generation), name="sstp-vpn-status"
        )

    def _system_read(self, generation: int, reading: SystemReading | None, error: BaseException | None) -> None:
        self._reading = False
        if reading is None:
            return  # it failed (error): nothing new to show; the next tick asks again
        self._tunnel_problem = reading.tunnel_problem
        if generation != self._generation:
            if self.isVisible():
                self._read_system()  # for the new interface, now rather than at the next tick
            return
        if reading.interface is not None:
            self.meter.sample(reading.at, reading.counters)
            if not reading.routes_read and self._interface_reading is not None:
                last = self._interface_reading
                reading = replace(reading, routes=last.routes, ipv6=last.ipv6, routes_read=True)  # the last ones read
            self._interface_reading = reading
            self.graph.update()
        self.refresh()

    def _follow_interface(self, interface: str | None) -> None:
        if interface != self._metered_interface:
            self.meter.reset()
            self.graph.update()
            self._metered_interface = interface
            self._interface_reading = None
            self._generation += 1
            if self.isVisible():
                self._read_system()


def _routing_text(full_tunnel: bool) -> str:
    if full_tunnel:
        # Translators: status window, Routing row
        return _("all traffic through the VPN (full tunnel)")
    # Translators: status window, Routing row
    return _("only the VPN's network (split tunnel)")


def _ipv6_text(plan: NetworkPlan, profile: Profile | None, addresses: list[str] | None) -> str:
    """Through the tunnel with the interface's addresses (the link-local one from IPV6CP until they
    are read), else blocked in a full tunnel (its routes take all IPv6 into the tunnel), else not used."""
    if plan.ipv6_identifier is not None:
        # Translators: status window, IPv6 row; {addresses} e.g. "2001:db8::5, fe80::211:2233:4455:6677"
        return _("through the tunnel: {addresses}").format(addresses=", ".join(addresses or [ipv6_link_local(plan.ipv6_identifier)]))
    if profile is None or profile.full_tunnel:
        if profile is not None and profile.ipv6:
            # Translators: status window, IPv6 row: full tunnel, but the server did not agree to IPv6 (IPV6CP)
            return _("blocked: the server offers no IPv6")
        # Translators: status window, IPv6 row: full tunnel, and the profile's "Use IPv6" box is off
        return _("blocked: the profile does not use IPv6")
    # Translators: status window, IPv6 row: split tunnel without IPv6 in the tunnel
    return _("not used")


def _kill_switch_text(status: Status, profile: Profile | None, connecting: bool) -> str:
    """Off, on (and what passes), or the sentence saying why it could not be put in place or removed."""
    state = status.kill_switch
    if state is None:
        # Translators: status window, Kill switch row
        return _("off")
    if state.problem:
        if status.state is State.DISCONNECTED and status.failure is not None and status.failure.reason == state.problem:
            # Translators: status window, Kill switch row, when the attempt ended with its sentence, shown below the rows
            return _("could not be put in place: see below")
        return in_gui_words(state.problem)
    if not state.active:
        if state.mode is KillSwitchMode.CONNECTED and connecting:
            # Translators: status window, Kill switch row: set to "while connected", not connected yet
            return _("off until connected")
        return _("off")
    if profile is not None and profile.kill_switch_allow_lan:
        # Translators: status window, Kill switch row, with "Let the local network through" checked
        return _("on: only the tunnel, the connection to the server and the local network pass")
    # Translators: status window, Kill switch row
    return _("on: only the tunnel and the connection to the server pass")


def _routes_text(routes: list[str] | None) -> str:
    if routes is None:
        # Translators: status window, Routes row
        return _("not shown on this system")
    # Translators: status window, Routes row: no route goes through the VPN
    return ", ".join(routes) or _("none")


def _traffic_text(total: int | None, rate: float | None) -> str:
    if total is None:
        # Translators: status window, Received and Sent rows
        return _("not counted on this system")
    return human_bytes(total) + (f"  ({human_rate(rate)})" if rate is not None else "")
