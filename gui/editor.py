"""The profile editor: every field checked as it is typed (one sentence under the field), passwords
to the keyring, and a Test button that runs the same checks as `sstp-vpn diagnose` (signing in and
out again when the credentials are filled in, as `diagnose --user` does) and offers to pin a
self-signed certificate on first contact."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QFocusEvent, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from sstpvpn.client.core.i18n import _
from sstpvpn.client.core.types import FailureKind, KillSwitchMode
from sstpvpn.client.diagnose import DiagnoseReport, diagnose, print_report, system_proxy_origin
from sstpvpn.client.eap_options import AUTH_CHOICES, method_names
from sstpvpn.client.endpoint import EndpointError, parse_endpoint
from sstpvpn.client.first_contact import (
    ChangedCertificate,
    Choice,
    PresentedCertificate,
    certificate_change,
    fetch_presented_certificate,
    pin_timestamp,
    trust_offered,
)
from sstpvpn.client.profile_settings import ProfileSettingsError, build_connect, needs_proxy_password, transport_settings
from sstpvpn.client.profiles import (
    MAX_MTU,
    MIN_MTU,
    Profile,
    ProfileFileError,
    ProfileStore,
    ProxyChoice,
    ProxyMode,
    Revocation,
    new_profile_id,
    profile_problems,
)
from sstpvpn.client.secret_store import KeyringUnavailable, SecretKind, SecretStore, item_label
from sstpvpn.client.transport import TransportError

from .background import run_in_background
from .password_field import PasswordChoice, PasswordField
from .pin_dialog import PinDialog
from .presentation import in_gui_words

ERROR_STYLE = "color: #b3261e;"


def proxy_modes() -> tuple[tuple[ProxyMode, str], ...]:
    """The HTTP proxy choices, in the order of the editor's combo box, with their words."""
    return (
        # Translators: profile editor, HTTP proxy choice: connect directly
        (ProxyMode.NONE, _("No proxy")),
        # Translators: profile editor, HTTP proxy choice: whatever the desktop's (or Windows', macOS') proxy settings say
        (ProxyMode.SYSTEM, _("The system's proxy settings")),
        # Translators: profile editor, HTTP proxy choice: a proxy auto-config (PAC) file, at the URL typed below or found by WPAD
        (ProxyMode.PAC, _("Automatic configuration (PAC)")),
        # Translators: profile editor, HTTP proxy choice: the proxy whose URL is typed below
        (ProxyMode.MANUAL, _("This proxy:")),
    )


def revocation_choices() -> tuple[tuple[Revocation, str], ...]:
    """What to do when the server certificate's revocation cannot be checked, in the combo box's order."""
    return (
        # Translators: profile editor, after "If revocation cannot be checked:": connect anyway, with a warning
        (Revocation.SOFT, _("Connect and warn")),
        # Translators: profile editor, after "If revocation cannot be checked:": do not connect
        (Revocation.HARD, _("Refuse to connect")),
    )


def kill_switch_choices() -> tuple[tuple[KillSwitchMode, str], ...]:
    """When the kill switch blocks everything but the tunnel, in the combo box's order."""
    return (
        # Translators: profile editor, Kill switch choice
        (KillSwitchMode.OFF, _("Off")),
        # Translators: profile editor, Kill switch choice
        (KillSwitchMode.CONNECTED, _("While connected and reconnecting")),
        # Translators: profile editor, Kill switch choice
        (KillSwitchMode.ALWAYS, _("Always, from Connect until Disconnect")),
    )


def kill_switch_with_pac_sentence() -> str:
    """The connection refuses a kill switch with a PAC file (client/session_driver.py): said here as it is chosen."""
    # Translators: a failure sentence; the kill switch blocks all traffic outside the VPN
    return _(
        "The kill switch cannot be used with a proxy auto-config (PAC) file: choose a proxy or a direct connection, or turn the kill switch off."
    )


def pac_url_sentence() -> str:
    """What profile_problems says about a PAC URL it cannot use (it has one sentence for them all)."""
    unusable = Profile(id="", name="", host="", proxy=ProxyChoice(ProxyMode.PAC, pac_url="proxy.pac"))
    return profile_problems(unusable)["pac_url"]


@dataclass(frozen=True)
class TestOutcome:
    report: DiagnoseReport
    certificate: PresentedCertificate | None  # read after a trust failure, for the pin offer
    not_signed_in: str = ""  # why Test did not sign in (no credentials), shown after the result


SIGN_IN_FIELDS = ("username", "auth_method", "client_certificate", "eap_server_name", "eap_ca_file")


def not_signed_in_sentence() -> str:
    """After Test's result when it could not sign in (no credentials)."""
    return _("Did not sign in: fill in the user name and password to check them too.")


@dataclass(frozen=True)
class _KeyringState:
    problem: str | None
    has_password: bool = False
    has_proxy_password: bool = False


class _ErrorLine(QLabel):
    """An inline error under a field. It keeps its room while empty: one line from the start, so
    errors coming and going as the user types move nothing; a sentence that needs more lines makes
    its room the first time it shows, and keeps it (no jump back when it goes, none when it returns)."""

    def __init__(self, only_sentence: str = "") -> None:
        super().__init__(wordWrap=True)
        # A field with one possible sentence keeps its room from the start: nothing moves even the first time.
        self._only_sentence = only_sentence
        self.setStyleSheet(ERROR_STYLE)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setText("One line.")  # not translated: never shown, only measures one line's height
        self.setMinimumHeight(self.sizeHint().height())  # as tall as a one-line sentence, to the pixel
        self.setText("")

    def show_problem(self, sentence: str) -> None:
        self.setText(sentence)
        self._make_room()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._make_room()  # narrower: the sentence may need another line

    def _make_room(self) -> None:
        width = self.width()
        if width <= 0:
            return
        needed = self.heightForWidth(width) if self.text() else 0
        if self._only_sentence:
            flags = Qt.TextFlag.TextWordWrap | self.alignment()
            needed = max(needed, self.fontMetrics().boundingRect(0, 0, width, 1 << 20, int(flags), self._only_sentence).height())
        if needed > self.minimumHeight():
            self.setMinimumHeight(needed)


@dataclass(frozen=True)
class ServerField:
    """The Server field read as the command line reads a server: HOST, HOST:PORT, [IPV6] or
    [IPV6]:PORT (client/endpoint.py)."""

    host: str  # for the profile: without a port or brackets
    port: int | None  # the port written in the field, if one is
    problem: str | None = None  # the field cannot be read as a server address


def read_server_field(text: str) -> ServerField:
    """The sentences are short, so that they fit the line kept under the field while typing."""
    text = text.strip()
    if ":" not in text and "[" not in text:
        return ServerField(text, None)  # a host name (or nothing yet): profile_problems judges it
    try:
        if text.startswith("[") and "]" not in text:
            raise EndpointError(text)  # parse_endpoint would take "[2001:db8::1" for an address
        host, port = parse_endpoint(text)
    except EndpointError:
        if text.startswith("["):
            return ServerField(text, None, _("Write an IPv6 address as [2001:db8::1]:8443."))
        if text.startswith(":"):
            return ServerField(text, None, _("Enter the host name before the “:”."))
        return ServerField(text, None, _("After “:” comes the port, from 1 to 65535."))
    written = text not in (host, f"[{host}]")  # without a port, parse_endpoint gives the text back
    return ServerField(host, port if written else None)


def ports_disagree(server: ServerField, port: int) -> str | None:
    """The sentence for a port in the Server field that is not the one in the Port field."""
    if server.port is None or server.port == port:
        return None
    return _("The Server field says {port}: make them agree.").format(port=server.port)


def _labelled_as(profile: Profile) -> tuple[str, str]:
    """What the keyring items' labels are made of (secret_store.item_label)."""
    return item_label(profile, SecretKind.VPN), item_label(profile, SecretKind.PROXY)


def _saved_in_keyring() -> str:
    # Translators: profile editor, shown in an empty password field whose password the keyring has
    return _("saved in the keyring (type to replace)")


def _not_saved() -> str:
    # Translators: profile editor, shown in an empty password field whose password the keyring does not have
    return _("not saved: type it to save it")


def _asked_when_connecting() -> str:
    # Translators: profile editor, shown in the disabled password field when there is no keyring
    return _("asked for when connecting")


class ProfileEditor(QDialog):
    saved = Signal(object)  # Profile, after it is in the file (and its passwords in the keyring)

    def __init__(self, store: ProfileStore, secrets: SecretStore, profile: Profile | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.secrets = secrets
        self.original = profile
        self.profile_id = profile.id if profile else new_profile_id()
        self.keyring: _KeyringState | None = None  # unknown until the worker has asked
        self._written_certificate: Path | None = None  # pinned here; removed again on Cancel
        self._test_running = False
        self.touched: set[str] = set()  # set again once the profile is in the fields
        if profile:
            # Translators: title of the profile editor; {name} is the profile's name
            self.setWindowTitle(_("Profile: {name}").format(name=profile.name))
        else:
            # Translators: title of the profile editor for a profile not saved yet
            self.setWindowTitle(_("New profile"))
        self._build()
        self._load(profile or Profile(id=self.profile_id, name="", host=""))
        self.resize(self.sizeHint())  # else Qt opens a window at most 2/3 of the screen, and the form scrolls for nothing
        # Fields whose problems are shown: a saved profile's fields hold what the user typed before; a
        # new profile's only once the user has typed in a field or left it (no errors on an empty form).
        self.touched = set(self.errors) if profile else set()
        self._focus_before_test: QWidget | None = None  # where the focus was when Test was pressed
        self._focus_while_testing: QWidget | None = None  # where Qt put it when Test was disabled
        self._validate()
        run_in_background(self._read_keyring_state, self._keyring_state_read, name="sstp-vpn-keyring")

    # -- layout ------------------------------------------------------------------------------

    def _build(self) -> None:
        self.errors: dict[str, _ErrorLine] = {}
        self._fields_of: dict[QObject, str] = {}  # input widget -> its field in `errors`
        # Translators: profile editor, example of a profile name shown in the empty Name field
        self.name = QLineEdit(placeholderText=_("Office"))
        self.name.setObjectName("name")
        self.host = QLineEdit(placeholderText="vpn.example.com")  # not translated: an example host name
        self.host.setObjectName("host")
        self.port = QSpinBox(minimum=1, maximum=65535, value=443)
        self.port.setObjectName("port")
        self.username = QLineEdit()
        self.username.setObjectName("username")
        # Translators: accessible name of the profile editor's password field
        self.password = PasswordField(_("Password"))
        self.password.setObjectName("password")
        self.password_choice = PasswordChoice()  # remember it, or ask every time (one-time passwords)
        self.password_choice.setObjectName("password_choice")
        self.password_choice.changed.connect(self._update_password_row)
        self.saved.connect(self._forget_password_if_asked)
        # Translators: profile editor, shown in the empty "TLS server name" field: the server's host name is used
        self.sni = QLineEdit(placeholderText=_("the host name"))
        self.sni.setObjectName("sni")
        # Translators: profile editor, shown in the empty "Extra CA file" field
        self.ca_file = QLineEdit(placeholderText=_("only the system's trusted authorities"))
        self.ca_file.setObjectName("ca_file")
        # Translators: button next to the "Extra CA file" field: choose a file
        browse = QPushButton(_("Browse…"))
        browse.clicked.connect(self._browse_ca_file)
        # Translators: profile editor, shown in the empty "Pinned SHA-256" field: no certificate is pinned
        self.pin = QLineEdit(placeholderText=_("none"))
        self.pin.setObjectName("pin_sha256")
        self.pin.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.allow_pap = QCheckBox(_("Allow PAP (sends the password in clear inside TLS)"))
        self.allow_pap.setObjectName("allow_pap")
        self.allow_chap_md5 = QCheckBox(_("Allow CHAP-MD5 and EAP-MD5 (weak)"))
        self.allow_chap_md5.setObjectName("allow_chap_md5")
        self._build_eap_fields()
        self.routing = QComboBox()
        self.routing.setObjectName("routing")
        self.routing.addItem(_("All traffic through the VPN (full tunnel)"), True)
        self.routing.addItem(_("Only the VPN's network (split tunnel)"), False)
        # Translators: profile editor, shown in the empty "Also route" field; keep the networks as they are
        self.extra_routes = QLineEdit(placeholderText=_("none, or e.g. 10.20.0.0/16 192.168.5.0/24"))
        self.extra_routes.setObjectName("extra_routes")
        self.use_vpn_dns = QCheckBox(_("Use the VPN's DNS servers"))
        self.use_vpn_dns.setObjectName("use_vpn_dns")
        self.ipv6 = QCheckBox(_("Use IPv6 when the server offers it"))
        self.ipv6.setObjectName("ipv6")
        self.mtu = QSpinBox(minimum=MIN_MTU, maximum=MAX_MTU, value=MAX_MTU)
        self.mtu.setObjectName("mtu")
        self.auto_reconnect = QCheckBox(_("Reconnect when the connection drops"))
        self.auto_reconnect.setObjectName("auto_reconnect")
        self.kill_switch = QComboBox()
        self.kill_switch.setObjectName("kill_switch")
        for when, label in kill_switch_choices():
            self.kill_switch.addItem(label, when)
        self.kill_switch_note = QLabel(
            _("Blocks all traffic except the tunnel and the connection to the server, so nothing leaves outside the VPN."), wordWrap=True
        )
        self.kill_switch_note.setObjectName("kill_switch_note")
        self.kill_switch.setAccessibleDescription(self.kill_switch_note.text())
        # Translators: profile editor, check box under the kill switch choice
        self.kill_switch_allow_lan = QCheckBox(_("Let the local network through (printers, file shares)"))
        self.kill_switch_allow_lan.setObjectName("kill_switch_allow_lan")
        self.proxy_mode = QComboBox()
        self.proxy_mode.setObjectName("proxy_mode")
        for mode, label in proxy_modes():
            self.proxy_mode.addItem(label, mode)
        self.proxy_url = QLineEdit(placeholderText="http://user@proxy.example.com:3128")  # not translated: an example URL
        self.proxy_url.setObjectName("proxy")
        # Translators: profile editor, shown in the empty "PAC URL" field: without a URL the PAC file is looked for on the network
        self.pac_url = QLineEdit(placeholderText=_("empty: found by WPAD (automatic discovery)"))
        self.pac_url.setObjectName("pac_url")
        self.pac_url.setToolTip(_("The address of the proxy auto-config file, like http://wpad.example.com/proxy.pac"))
        # Translators: profile editor, check box; the sentence under it says why it matters
        # Translators: profile editor, shown in the empty "Proxy user" field (PAC): Kerberos uses the computer's sign-in, no user name
        self.proxy_user = QLineEdit(placeholderText=_("empty: Kerberos (your sign-in ticket) only"))
        self.proxy_user.setObjectName("proxy_user")
        self.proxy_user.setToolTip(_("The user name (DOMAIN\\user or user) for the proxies the PAC file names, for NTLM or Basic"))
        # Translators: profile editor, check box; the sentence under it says why it matters
        self.allow_basic = QCheckBox(_("Allow Basic authentication"))
        self.allow_basic.setObjectName("allow_basic")
        # Under the check box, wrapped: the whole sentence in the check box's own line would make the window wider than many screens
        self.allow_basic_note = QLabel(
            _(
                "Basic sends the proxy password readable by the proxy's network. Without it, the password goes only by NTLM "
                "or Negotiate (Kerberos), and a proxy that offers only Basic is refused."
            ),
            wordWrap=True,
        )
        self.allow_basic_note.setObjectName("allow_basic_note")
        self.allow_basic_note.setIndent(self.allow_basic.style().pixelMetric(QStyle.PixelMetric.PM_IndicatorWidth) + 4)  # under the text, not the box
        self.allow_basic.setAccessibleDescription(self.allow_basic_note.text())
        self.revocation = QComboBox()
        self.revocation.setObjectName("revocation")
        for choice, label in revocation_choices():
            self.revocation.addItem(label, choice)
        self.revocation.setToolTip(
            _(
                "The server's certificates are checked against their authorities' revocation lists (CRL) and OCSP. "
                "A certificate found revoked is always refused; this is for when no answer comes."
            )
        )
        # Translators: accessible name of the profile editor's proxy password field
        self.proxy_password = PasswordField(_("Proxy password"))
        self.proxy_password.setObjectName("proxy_password")
        self.keyring_note = QLabel(_("Checking the system keyring…"), wordWrap=True)
        self.keyring_note.setObjectName("keyring_note")

        # Translators: profile editor, title of the group with the server, user name and password
        server = QGroupBox(_("Server"))
        form = QFormLayout(server)
        # Translators: profile editor, form-row label: the profile's name
        form.addRow(_("Name:"), self._with_error("name", self.name))
        # Translators: profile editor, form-row label: the VPN server's host name
        form.addRow(_("Server:"), self._with_error("host", self.host))
        # Translators: profile editor, form-row label: the server's TCP port
        form.addRow(_("Port:"), self._with_error("port", self.port))
        # Translators: profile editor, form-row label
        form.addRow(_("User name:"), self._with_error("username", self.username))
        # Translators: profile editor, form-row label
        form.addRow(_("Password:"), self.password)
        form.addRow("", self.password_choice)
        form.addRow("", self.keyring_note)

        # Translators: profile editor, title of the group with the server's certificate and the sign-in method
        security = QGroupBox(_("Certificate and sign-in"))
        form = QFormLayout(security)
        ca_row = QWidget()
        row = QHBoxLayout(ca_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.ca_file)
        row.addWidget(browse)
        # Translators: profile editor, form-row label: the name sent in TLS (SNI) and expected in the certificate
        form.addRow(_("TLS server name:"), self._with_error("sni", self.sni))
        # Translators: profile editor, form-row label: a file of CA certificates trusted for this profile
        form.addRow(_("Extra CA file:"), self._with_error("ca_file", ca_row))
        # Translators: profile editor, form-row label: the SHA-256 thumbprint of the pinned certificate
        form.addRow(_("Pinned SHA-256:"), self._with_error("pin_sha256", self.pin))
        # One row across the form: the question and its answers read as one sentence, and its long
        # question in the label column would widen the whole column.
        revocation_row = QWidget()
        row = QHBoxLayout(revocation_row)
        row.setContentsMargins(0, 0, 0, 0)
        # Translators: profile editor, before the choice "Connect and warn" / "Refuse to connect"
        revocation_label = QLabel(_("If revocation cannot be checked:"))
        revocation_label.setBuddy(self.revocation)
        row.addWidget(revocation_label)
        row.addWidget(self.revocation, 1)
        form.addRow(revocation_row)
        form.addRow("", self.allow_pap)
        form.addRow("", self.allow_chap_md5)
        self._add_eap_rows(form)

        # Translators: profile editor, title of the group with routing, DNS, MTU and proxy settings
        network = QGroupBox(_("Network"))
        form = QFormLayout(network)
        # Translators: profile editor, form-row label: what traffic goes through the VPN
        form.addRow(_("Routing:"), self.routing)
        # Translators: profile editor, form-row label: more networks to route through the VPN
        form.addRow(_("Also route:"), self._with_error("extra_routes", self.extra_routes))
        form.addRow("", self.use_vpn_dns)
        form.addRow("MTU:", self._with_error("mtu", self.mtu))  # not translated: the protocol term alone
        form.addRow("", self.ipv6)
        form.addRow("", self.auto_reconnect)
        # Translators: profile editor, form-row label: when everything but the VPN is blocked
        kill_switch = QWidget()  # the choice, what it blocks and the LAN box, with any problem under all three
        column = QVBoxLayout(kill_switch)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.kill_switch)
        column.addWidget(self.kill_switch_note)
        column.addWidget(self.kill_switch_allow_lan)
        form.addRow(_("Kill switch:"), self._with_error("kill_switch", kill_switch))
        # Translators: profile editor, form-row label: which HTTP proxy to connect through
        form.addRow(_("HTTP proxy:"), self.proxy_mode)
        # Translators: profile editor, form-row label: the address of the proxy auto-config (PAC) file
        form.addRow(_("PAC URL:"), self._with_error("pac_url", self.pac_url, pac_url_sentence()))
        # Translators: profile editor, form-row label: the user name for the proxies a PAC file names
        form.addRow(_("Proxy user:"), self.proxy_user)
        # Translators: profile editor, form-row label
        form.addRow(_("Proxy URL:"), self._with_error("proxy", self.proxy_url))
        # Translators: profile editor, form-row label
        form.addRow(_("Proxy password:"), self.proxy_password)
        basic = QWidget()
        column = QVBoxLayout(basic)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.allow_basic)
        column.addWidget(self.allow_basic_note)
        form.addRow("", basic)

        # Translators: profile editor button: check the connection to the server without connecting
        self.test_button = QPushButton(_("Test"))
        self.test_button.setObjectName("test")
        self.test_button.setToolTip(
            _(
                "Check every step to the server; with a user name and password, also sign in and disconnect"
                " before any network change, as sstp-vpn diagnose does"
            )
        )
        self.test_button.setFocusPolicy(Qt.FocusPolicy.TabFocus)  # a click on Test leaves the focus in the field
        self.test_button.clicked.connect(self._test)
        self.test_output = QPlainTextEdit(readOnly=True)
        self.test_output.setObjectName("test_output")
        self.test_output.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.test_output.setPlaceholderText(_("Test shows each step to the server here, with the server's certificate."))
        self.test_output.setMinimumHeight(120)
        self.general_error = QLabel(wordWrap=True)
        self.general_error.setObjectName("general_error")
        self.general_error.setStyleSheet(ERROR_STYLE)
        self.general_error.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._save)
        self.buttons.rejected.connect(self.reject)
        self.buttons.addButton(self.test_button, QDialogButtonBox.ButtonRole.ActionRole)

        columns = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(server)
        left.addWidget(security)
        left.addStretch()
        right = QVBoxLayout()
        right.addWidget(network)
        right.addWidget(self.test_output)
        columns.addLayout(left)
        columns.addLayout(right)
        # The form scrolls and the buttons stay below it: on a laptop's 768 lines the whole form
        # (about 830 px tall) would push Save off the screen.
        self.form = QWidget()
        self.form.setLayout(columns)
        self.form_area = QScrollArea()
        self.form_area.setWidget(self.form)
        self.form_area.setWidgetResizable(True)
        self.form_area.setFrameShape(QFrame.Shape.NoFrame)
        self.outer = QVBoxLayout(self)
        self.outer.addWidget(self.form_area)
        self.outer.addWidget(self.general_error)
        self.outer.addWidget(self.buttons)

        self.host.textChanged.connect(self._port_from_server_field)
        for line_edit in (
            self.name,
            self.host,
            self.username,
            self.sni,
            self.ca_file,
            self.pin,
            self.extra_routes,
            self.proxy_url,
            self.pac_url,
            self.proxy_user,
        ):
            line_edit.textChanged.connect(self._validate)
        for spin in (self.port, self.mtu):
            spin.valueChanged.connect(self._validate)
        self.proxy_mode.currentIndexChanged.connect(self._validate)
        self.kill_switch.currentIndexChanged.connect(lambda _index: self._touch("kill_switch"))
        self.kill_switch.currentIndexChanged.connect(self._validate)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        """The whole form where the screen has room for it, else the screen's room (the form then
        scrolls; the buttons stay in view)."""
        form = self.form.sizeHint()
        margins = self.outer.contentsMargins()
        scroll_bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        wanted = QSize(
            form.width() + scroll_bar + margins.left() + margins.right(),
            form.height() + self.buttons.sizeHint().height() + self.outer.spacing() + margins.top() + margins.bottom(),
        )
        screen = self.screen() or QGuiApplication.primaryScreen()
        room = screen.availableGeometry().size() * 0.92  # the frame and title bar need some
        return wanted.boundedTo(room)

    def _build_eap_fields(self) -> None:
        """Sign-in method and the EAP-TLS / PEAP settings (client/eap_options.py)."""
        self.auth_method = QComboBox()
        self.auth_method.setObjectName("auth_method")
        names = method_names()
        for method in AUTH_CHOICES:
            self.auth_method.addItem(names[method], method)
        # Translators: profile editor, shown in the empty "Certificate file" field (EAP-TLS)
        self.client_certificate = QLineEdit(placeholderText=_("PEM with the key, or .p12"))
        self.client_certificate.setObjectName("client_certificate")
        # Translators: profile editor, shown in the empty "EAP server name" field
        self.eap_server_name = QLineEdit(placeholderText=_("the name in the NPS/RADIUS certificate"))
        self.eap_server_name.setObjectName("eap_server_name")
        # Translators: profile editor, shown in the empty "EAP CA file" field
        self.eap_ca_file = QLineEdit(placeholderText=_("only the system's trusted authorities"))
        self.eap_ca_file.setObjectName("eap_ca_file")
        # Translators: profile editor, shown in the empty "EAP pinned SHA-256" field: no certificate is pinned
        self.eap_pin = QLineEdit(placeholderText=_("none"))
        self.eap_pin.setObjectName("eap_pin_sha256")
        self.eap_pin.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.eap_tls13 = QCheckBox(_("Allow TLS 1.3 for EAP-TLS"))
        self.eap_tls13.setObjectName("eap_tls13")
        for line_edit in (self.client_certificate, self.eap_server_name, self.eap_ca_file, self.eap_pin):
            line_edit.textChanged.connect(self._validate)
        # choosing a method is the user's answer for its fields: what it still needs shows at once
        self.auth_method.currentIndexChanged.connect(lambda _index: self.touched.update(("client_certificate", "eap_server_name")))
        self.auth_method.currentIndexChanged.connect(self._validate)

    def _add_eap_rows(self, form: QFormLayout) -> None:
        # Translators: profile editor, form-row label: the sign-in method
        form.addRow(_("Sign in with:"), self._with_error("auth_method", self.auth_method))
        # Translators: profile editor, form-row label: the client certificate for EAP-TLS
        form.addRow(_("Certificate file:"), self._with_error("client_certificate", self.client_certificate))
        # Translators: profile editor, form-row label: the name in the EAP (NPS/RADIUS) server's certificate
        form.addRow(_("EAP server name:"), self._with_error("eap_server_name", self.eap_server_name))
        # Translators: profile editor, form-row label: CA certificates trusted for the EAP server
        form.addRow(_("EAP CA file:"), self._with_error("eap_ca_file", self.eap_ca_file))
        # Translators: profile editor, form-row label: SHA-256 thumbprint of the pinned EAP server certificate
        form.addRow(_("EAP pinned SHA-256:"), self._with_error("eap_pin_sha256", self.eap_pin))
        form.addRow("", self.eap_tls13)

    def _update_eap_fields(self) -> None:
        method = self.auth_method.currentData()
        for widget in (self.eap_server_name, self.eap_ca_file, self.eap_pin):
            widget.setEnabled(method != "password")
        self.client_certificate.setEnabled(method == "eap-tls")
        self.eap_tls13.setEnabled(method == "eap-tls")
        if method == "eap-tls":
            self.password.setToolTip(_("EAP-TLS: the passphrase of your certificate's key (empty if it has none)"))
        else:
            self.password.setToolTip("")

    def _with_error(self, field: str, widget: QWidget, only_sentence: str = "") -> QWidget:
        """The field with its error sentence underneath, in room kept for it while the field is
        fine, so nothing moves as errors come and go (`only_sentence`: the one sentence the field
        can show, whose room is kept from the start). The field counts as touched once it is
        changed or left."""
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addWidget(widget)
        error = _ErrorLine(only_sentence)
        error.setObjectName(f"{field}_error")
        column.addWidget(error)
        self.errors[field] = error
        for editor in [widget, *widget.findChildren(QLineEdit)]:
            if isinstance(editor, QLineEdit):
                editor.textChanged.connect(lambda _text, f=field: self._touch(f))
            elif isinstance(editor, QSpinBox):
                editor.valueChanged.connect(lambda _value, f=field: self._touch(f))
            elif isinstance(editor, QComboBox):
                editor.currentIndexChanged.connect(lambda _index, f=field: self._touch(f))
            else:
                continue
            editor.installEventFilter(self)
            self._fields_of[editor] = field
        return box

    def _touch(self, field: str) -> None:
        if field not in self.touched:
            self.touched.add(field)
            self._validate()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        """A field left (by Tab or a click elsewhere, not by the window losing focus) shows its problem."""
        left = event.reason() if isinstance(event, QFocusEvent) and event.type() is QEvent.Type.FocusOut else None
        if left is not None and watched in self._fields_of and left not in (Qt.FocusReason.ActiveWindowFocusReason, Qt.FocusReason.PopupFocusReason):
            self._touch(self._fields_of[watched])
        return super().eventFilter(watched, event)

    # -- the profile in the fields -----------------------------------------------------------

    def _load(self, profile: Profile) -> None:
        self._pinned_at = (profile.pin_sha256, profile.pinned_at)  # the pin and when it was made (current_profile)
        self.name.setText(profile.name)
        self.host.setText(profile.host)
        self.port.setValue(profile.port)
        self.username.setText(profile.username)
        self.sni.setText(profile.sni)
        self.ca_file.setText(profile.ca_file)
        self.pin.setText(profile.pin_sha256)
        self.allow_pap.setChecked(profile.allow_pap)
        self.allow_chap_md5.setChecked(profile.allow_chap_md5)
        self.routing.setCurrentIndex(0 if profile.full_tunnel else 1)
        self.extra_routes.setText(" ".join(profile.extra_routes))
        self.use_vpn_dns.setChecked(profile.use_vpn_dns)
        self.ipv6.setChecked(profile.ipv6)
        self.mtu.setValue(profile.mtu)
        self.auto_reconnect.setChecked(profile.auto_reconnect)
        self.kill_switch.setCurrentIndex([mode for mode, _label in kill_switch_choices()].index(profile.kill_switch))
        self.kill_switch_allow_lan.setChecked(profile.kill_switch_allow_lan)
        self.proxy_mode.setCurrentIndex([mode for mode, _label in proxy_modes()].index(profile.proxy.mode))
        self.proxy_url.setText(profile.proxy.url)
        self.pac_url.setText(profile.proxy.pac_url)
        self.proxy_user.setText(profile.proxy.username if profile.proxy.mode is ProxyMode.PAC else "")
        self.allow_basic.setChecked(profile.proxy.allow_basic)
        self.revocation.setCurrentIndex([choice for choice, _label in revocation_choices()].index(profile.revocation))
        self.auth_method.setCurrentIndex(max(self.auth_method.findData(profile.auth_method), 0))
        self.client_certificate.setText(profile.client_certificate)
        self.eap_server_name.setText(profile.eap_server_name)
        self.eap_ca_file.setText(profile.eap_ca_file)
        self.eap_pin.setText(profile.eap_pin_sha256)
        self.eap_tls13.setChecked(profile.eap_tls13)
        self.password_choice.set_remember(profile.remember_password)

    def _port_from_server_field(self, text: str) -> None:
        """vpn.example.com:8443 in the Server field fills the Port field (a later change of the
        Port field alone then shows the disagreement)."""
        port = read_server_field(text).port
        if port is not None and port != self.port.value():
            self.port.setValue(port)

    def _proxy_choice(self) -> tuple[ProxyChoice, str | None]:
        """The proxy in the fields, and what is wrong with its URL."""
        mode = self.proxy_mode.currentData()
        allow_basic = self.allow_basic.isChecked()
        if mode is ProxyMode.PAC:
            return ProxyChoice(mode, username=self.proxy_user.text().strip(), pac_url=self.pac_url.text().strip(), allow_basic=allow_basic), None
        if mode is not ProxyMode.MANUAL:
            return ProxyChoice(mode, allow_basic=allow_basic), None
        try:
            return replace(ProxyChoice.manual_from_url(self.proxy_url.text()), allow_basic=allow_basic), None
        except ValueError as error:
            return ProxyChoice(ProxyMode.MANUAL, allow_basic=allow_basic), str(error)

    def current_profile(self) -> Profile:
        proxy, _problem = self._proxy_choice()
        return Profile(
            id=self.profile_id,
            name=self.name.text().strip(),
            host=read_server_field(self.host.text()).host,
            port=self.port.value(),
            username=self.username.text().strip(),
            sni=self.sni.text().strip(),
            ca_file=self.ca_file.text().strip(),
            pin_sha256=self.pin.text().strip(),
            pinned_at=self._pinned_at[1] if self.pin.text().strip() == self._pinned_at[0] else (pin_timestamp() if self.pin.text().strip() else ""),
            allow_pap=self.allow_pap.isChecked(),
            allow_chap_md5=self.allow_chap_md5.isChecked(),
            full_tunnel=self.routing.currentData(),
            extra_routes=tuple(self.extra_routes.text().replace(",", " ").split()),
            use_vpn_dns=self.use_vpn_dns.isChecked(),
            ipv6=self.ipv6.isChecked(),
            mtu=self.mtu.value(),
            auto_reconnect=self.auto_reconnect.isChecked(),
            kill_switch=self.kill_switch.currentData(),
            kill_switch_allow_lan=self.kill_switch_allow_lan.isChecked(),
            proxy=proxy,
            auth_method=self.auth_method.currentData(),
            client_certificate=self.client_certificate.text().strip(),
            eap_server_name=self.eap_server_name.text().strip(),
            eap_ca_file=self.eap_ca_file.text().strip(),
            eap_pin_sha256=self.eap_pin.text().strip(),
            eap_tls13=self.eap_tls13.isChecked(),
            revocation=self.revocation.currentData(),
            remember_password=self.password_choice.remember,
        )

    def problems(self) -> dict[str, str]:
        try:
            others = [p for p in self.store.load().profiles if p.id != self.profile_id]
        except ProfileFileError:
            others = []
        problems = profile_problems(self.current_profile(), others)
        server = read_server_field(self.host.text())
        if server.problem:
            problems["host"] = server.problem
        port_problem = ports_disagree(server, self.port.value())
        if port_problem:
            problems["port"] = port_problem
        _proxy, proxy_problem = self._proxy_choice()
        if proxy_problem:
            problems["proxy"] = proxy_problem
        if self.kill_switch.currentData() is not KillSwitchMode.OFF and self.proxy_mode.currentData() is ProxyMode.PAC:
            problems["kill_switch"] = kill_switch_with_pac_sentence()
        return problems

    def _validate(self) -> None:
        self._update_eap_fields()
        problems = self.problems()
        for field, label in self.errors.items():
            label.show_problem(problems.get(field, "") if field in self.touched else "")
        mode = self.proxy_mode.currentData()
        manual = mode is ProxyMode.MANUAL
        self.proxy_url.setEnabled(manual)
        self.pac_url.setEnabled(mode is ProxyMode.PAC)
        self.proxy_user.setEnabled(mode is ProxyMode.PAC)
        self.allow_basic.setEnabled(mode is not ProxyMode.NONE)
        self.allow_basic_note.setEnabled(mode is not ProxyMode.NONE)
        self.kill_switch_allow_lan.setEnabled(self.kill_switch.currentData() is not KillSwitchMode.OFF)
        self.proxy_password.setEnabled(mode in (ProxyMode.MANUAL, ProxyMode.PAC) and self.keyring is not None and self.keyring.problem is None)
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(not problems)
        blocking_test = {"host", "port", "sni", "ca_file", "pin_sha256", "proxy", "pac_url"}  # what Test's checks need
        self.test_button.setEnabled(not self._test_running and not (blocking_test & problems.keys()))

    # -- keyring -----------------------------------------------------------------------------

    def _read_keyring_state(self) -> _KeyringState:
        problem = self.secrets.problem()
        if problem or self.original is None:
            return _KeyringState(problem)
        return _KeyringState(
            None, self.secrets.get(self.profile_id, SecretKind.VPN) is not None, self.secrets.get(self.profile_id, SecretKind.PROXY) is not None
        )

    def _keyring_state_read(self, state: _KeyringState | None, error: BaseException | None) -> None:
        if state is None:  # the worker failed: `error` says why
            sentence = error.sentence if isinstance(error, KeyringUnavailable) else str(error)
            state = _KeyringState(sentence)
        self.keyring = state
        if state.problem:
            self.keyring_note.setText(state.problem)
            self.password.setEnabled(False)
            self.password.setPlaceholderText(_asked_when_connecting())
        else:
            self.keyring_note.setText(_("Passwords are kept in the system keyring only."))
            self.password.setPlaceholderText(_saved_in_keyring() if state.has_password else _not_saved())
            self.proxy_password.setPlaceholderText(_saved_in_keyring() if state.has_proxy_password else "")
        self._update_password_row()
        self._validate()

    def _update_password_row(self) -> None:
        """With "ask every time" there is nothing to type here: the field is emptied and disabled."""
        usable = self.keyring is None or self.keyring.problem is None
        remember = self.password_choice.remember
        if not remember:
            self.password.clear()
            # Translators: profile editor, shown in the disabled password field when the profile asks every time
            self.password.setPlaceholderText(_("asked for at each connection, never saved"))
        elif self.keyring is not None and usable:
            saved = self.keyring.has_password
            self.password.setPlaceholderText(_saved_in_keyring() if saved else _not_saved())
        elif not usable:
            self.password.setPlaceholderText(_asked_when_connecting())
        self.password.setEnabled(remember and usable)

    def _forget_password_if_asked(self, profile: Profile) -> None:
        """A profile saved as "ask every time" keeps no password: one saved before is removed
        (failing that, the next connection removes it)."""
        if profile.remember_password:
            return
        secrets = self.secrets

        def forget() -> None:
            try:
                secrets.delete(profile.id, SecretKind.VPN)
            except KeyringUnavailable:
                pass

        run_in_background(forget, lambda _result, _error: None, name="sstp-vpn-keyring")

    # -- saving ------------------------------------------------------------------------------

    def _save(self) -> None:
        if self.problems():
            return
        try:
            profile = self.store.save(self.current_profile())
        except ProfileFileError as error:
            self._show_general_error(str(error))
            return
        previous, self.original = self.original, profile
        password, proxy_password = self.password.text(), self.proxy_password.text()
        relabel = previous is not None and self.keyring is not None and not self.keyring.problem and _labelled_as(previous) != _labelled_as(profile)
        if not password and not proxy_password and not relabel:
            self._saved(profile)
            return
        self.buttons.setEnabled(False)

        def store_passwords() -> None:
            if relabel:
                with contextlib.suppress(KeyringUnavailable):  # only the keyring window's label is behind
                    self.secrets.relabel(profile)
            if password:
                self.secrets.set(profile.id, SecretKind.VPN, password, label=item_label(profile, SecretKind.VPN))
            if proxy_password and needs_proxy_password(profile):
                self.secrets.set(profile.id, SecretKind.PROXY, proxy_password, label=item_label(profile, SecretKind.PROXY))

        def stored(_result: object, error: BaseException | None) -> None:
            self.buttons.setEnabled(True)
            if error is not None:
                sentence = error.sentence if isinstance(error, KeyringUnavailable) else str(error)
                self._show_general_error(_("The profile is saved, but not its password: {reason}").format(reason=sentence))
                self.saved.emit(profile)
                return
            self._saved(profile)

        run_in_background(store_passwords, stored, name="sstp-vpn-keyring")

    def _saved(self, profile: Profile) -> None:
        self._written_certificate = None  # now part of the saved profile
        self.saved.emit(profile)
        self.accept()

    def reject(self) -> None:
        written = self._written_certificate
        if written is not None and (self.original is None or Path(self.original.ca_file) != written):
            written.unlink(missing_ok=True)
        super().reject()

    def _show_general_error(self, sentence: str) -> None:
        self.general_error.setText(in_gui_words(sentence))
        self.general_error.show()

    # -- Test --------------------------------------------------------------------------------

    def _test(self) -> None:
        profile = self.current_profile()
        typed_proxy_password = self.proxy_password.text() or None
        try:
            transport_settings(profile, typed_proxy_password)  # settings errors show at once
        except ProfileSettingsError as error:
            self.test_output.setPlainText(in_gui_words(str(error)))
            return
        self._test_running = True
        self._focus_before_test = self.focusWidget()
        self._validate()  # disables Test; Qt moves the focus on if it was there (Tab, Space)
        self._focus_while_testing = self.focusWidget()
        self.test_output.setPlainText(_("Testing {server}…").format(server=profile.server))

        typed_password = self.password.text() if self.password.isEnabled() else ""
        # Sign in too when the credentials are there (the typed password, else the saved one; for
        # EAP-TLS the certificate, whose passphrase may be empty): diagnose's Sign-in step.
        credentials_ok = not (set(SIGN_IN_FIELDS) & self.problems().keys())

        def work() -> TestOutcome:
            proxy_password = typed_proxy_password
            if proxy_password is None and needs_proxy_password(profile):
                try:
                    proxy_password = self.secrets.get(profile.id, SecretKind.PROXY)
                except KeyringUnavailable:
                    proxy_password = None
            settings = transport_settings(profile, proxy_password)
            password: str | None = typed_password or None
            if password is None and credentials_ok and profile.remember_password:
                try:
                    password = self.secrets.get(profile.id, SecretKind.VPN)
                except KeyringUnavailable:
                    password = None
            if password is None and profile.auth_method == "eap-tls" and profile.client_certificate:
                password = ""  # a key without a passphrase
            sign_in_as = build_connect(profile, settings, password).engine if credentials_ok and password is not None else None
            origin = system_proxy_origin(profile.host, profile.port) if profile.proxy.mode is ProxyMode.SYSTEM else ""
            report = diagnose(settings, sign_in_as=sign_in_as, proxy_origin=origin)
            certificate = None
            if report.failure_kind is FailureKind.TRUST:
                try:
                    certificate = fetch_presented_certificate(settings)
                except TransportError:
                    certificate = None
            return TestOutcome(report, certificate, "" if sign_in_as is not None or not report.would_connect else not_signed_in_sentence())

        run_in_background(work, self._tested, name="sstp-vpn-test")

    def _tested(self, outcome: TestOutcome | None, error: BaseException | None) -> None:
        self._test_running = False
        self._validate()
        if self.focusWidget() is self._focus_while_testing and self._focus_before_test is not None:
            self._focus_before_test.setFocus(Qt.FocusReason.OtherFocusReason)  # back where the user was, unless they moved on
        if outcome is None:  # the worker failed: `error` says why
            self.test_output.setPlainText(str(error))
            return
        text = io.StringIO()
        print_report(outcome.report, text)
        if outcome.not_signed_in:
            print(outcome.not_signed_in, file=text)
        self.test_output.setPlainText(in_gui_words(text.getvalue()))
        certificate = outcome.certificate
        if certificate is not None and certificate.can_be_pinned:
            changed = certificate_change(self.current_profile(), certificate)
            if changed is not None or not self.pin.text().strip():
                self.offer_pin(certificate, changed)

    def offer_pin(self, certificate: PresentedCertificate, changed: ChangedCertificate | None = None) -> None:
        dialog = PinDialog(self.current_profile().server, certificate, self, changed=changed)
        dialog.accepted.connect(lambda: self._pin(certificate, dialog.choice or Choice.PIN))
        dialog.open()
        self.pin_dialog = dialog  # one at a time; it goes with the editor

    def _pin(self, certificate: PresentedCertificate, choice: Choice = Choice.PIN) -> None:
        trusted = trust_offered(self.store, self.current_profile(), certificate, choice)
        if trusted.ca_file and Path(trusted.ca_file).parent == self.store.certificates_dir:
            self._written_certificate = Path(trusted.ca_file)
        self.ca_file.setText(trusted.ca_file)
        self.pin.setText(trusted.pin_sha256)
        self._pinned_at = (trusted.pin_sha256, trusted.pinned_at)
        if choice is Choice.CA:
            done = _("The issuing CA is in the Extra CA file: Save to keep it, then Test again.")
        else:
            done = _("The certificate is pinned: Save to keep it, then Test again.")
        self.test_output.appendPlainText("\n" + done)

    def _browse_ca_file(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(
            self,
            # Translators: title of the file dialog that chooses the profile's Extra CA file
            _("CA certificate file"),
            self.ca_file.text(),
            # Translators: file dialog filters; translate only "Certificates" and "All files", keep the rest as is
            _("Certificates (*.pem *.crt *.cer);;All files (*)"),
        )
        if path:
            self.ca_file.setText(path)
