"""Recorded stand-ins for what the macOS modules touch, so that they run on Linux:

- RecordedDarwin: the kernel side of a utun (tun_macos.Darwin). The control socket records
  connect/getsockopt/ioctl and is backed by a real AF_UNIX datagram socketpair, so packets keep
  their boundaries, the descriptor is selectable, and the test holds `kernel_side` to see exactly
  the bytes the kernel would get (4-byte family header included) and to send packets up.
- ScutilStore: the SystemConfiguration dynamic store as the `scutil` commands we use see it
  (show, get, d.init, d.add KEY * values, d.remove, set, remove), printing `show` the way scutil
  does, so DNS changes and their undo can be checked against the store's final state.
- mac_commands(): a RecordedCommands answering ps, route get and scutil like a Mac would.
"""

from __future__ import annotations

import os
import socket
import struct
from typing import Any

from sstpvpn.platform import tun_macos
from sstpvpn.platform.commands import CommandResult
from tests.recorded_commands import RecordedCommands

UTUN_CONTROL_ID = 0x2A  # what CTLIOCGINFO reports as the utun control's id


class RecordedControlSocket:
    def __init__(self, darwin: RecordedDarwin) -> None:
        self._darwin = darwin
        self._socket, darwin.kernel_side = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        darwin.kernel_side.setblocking(False)

    def fileno(self) -> int:
        return self._socket.fileno()

    def connect(self, address: Any) -> None:
        self._darwin.calls.append(("connect", address))
        if self._darwin.connect_error is not None:
            raise self._darwin.connect_error
        control_id, unit = address
        self._darwin.unit = unit if unit else 8  # unit 0: the kernel takes the first free one, utun7

    def getsockopt(self, level: int, option: int, length: int) -> bytes:
        self._darwin.calls.append(("getsockopt", level, option, length))
        return f"utun{self._darwin.unit - 1}".encode() + b"\0"

    def setblocking(self, flag: bool) -> None:
        self._darwin.calls.append(("setblocking", flag))
        self._socket.setblocking(flag)

    def recv(self, size: int) -> bytes:
        return self._socket.recv(size)

    def send(self, data: bytes) -> int:
        if self._darwin.send_error is not None:
            raise self._darwin.send_error
        return self._socket.send(data)

    def close(self) -> None:
        self._darwin.calls.append(("close",))
        self._socket.close()


class RecordedDarwin:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.kernel_side: socket.socket | None = None
        self.unit = 0
        self.mtu = 1500
        self.connect_error: OSError | None = None
        self.send_error: OSError | None = None
        self.interface_error: OSError | None = None

    def control_socket(self) -> RecordedControlSocket:
        self.calls.append(("socket", tun_macos.PF_SYSTEM, socket.SOCK_DGRAM, tun_macos.SYSPROTO_CONTROL))
        return RecordedControlSocket(self)

    def ioctl(self, fd: int, request: int, argument: bytes) -> bytes:
        self.calls.append(("ioctl", request, argument))
        assert request == tun_macos.CTLIOCGINFO and len(argument) == 100
        return struct.pack("=I", UTUN_CONTROL_ID) + argument[4:]

    def interface_ioctl(self, request: int, argument: bytes) -> bytes:
        self.calls.append(("interface_ioctl", request, argument))
        if self.interface_error is not None:
            raise self.interface_error
        if request == tun_macos.SIOCSIFMTU:
            self.mtu = struct.unpack_from("=i", argument, 16)[0]
            return argument
        return argument[:16] + struct.pack("=i", self.mtu) + argument[20:]


class ScutilStore:
    """The dynamic store: key -> dictionary of str or list[str] values."""

    def __init__(self, keys: dict[str, dict[str, Any]] | None = None) -> None:
        self.keys: dict[str, dict[str, Any]] = {key: dict(value) for key, value in (keys or {}).items()}
        self.sessions: list[str] = []  # every stdin scutil was given

    def run(self, stdin: str) -> CommandResult:
        self.sessions.append(stdin)
        current: dict[str, Any] = {}
        output = []
        for line in stdin.splitlines():
            words = line.split()
            if not words:
                continue
            command, arguments = words[0], words[1:]
            if command == "show":
                output.append(self.show(arguments[0]))
            elif command == "get":
                if arguments[0] not in self.keys:
                    output.append("  No such key")
                current = dict(self.keys.get(arguments[0], {}))
            elif command == "d.init":
                current = {}
            elif command == "d.add":
                name, kind, values = arguments[0], arguments[1], arguments[2:]
                assert kind == "*", "we only add arrays"
                current[name] = list(values)
            elif command == "d.remove":
                current.pop(arguments[0], None)
            elif command == "set":
                self.keys[arguments[0]] = dict(current)
            elif command == "remove":
                self.keys.pop(arguments[0], None)
            else:
                raise AssertionError(f"scutil command we do not use: {line!r}")
        return CommandResult(0, "\n".join(output) + "\n" if output else "")

    def show(self, key: str) -> str:
        if key not in self.keys:
            return "  No such key"
        lines = ["<dictionary> {"]
        for name, value in self.keys[key].items():
            if isinstance(value, list):
                lines.append(f"  {name} : <array> {{")
                lines += [f"    {index} : {item}" for index, item in enumerate(value)]
                lines.append("  }")
            else:
                lines.append(f"  {name} : {value}")
        lines.append("}")
        return "\n".join(lines)


def route_get_output(destination: str, gateway: str | None, interface: str = "en0") -> str:
    """What `route -n get <destination>` prints on macOS."""
    lines = [f"   route to: {destination}", "destination: default", "       mask: default"]
    if gateway is not None:
        lines.append(f"    gateway: {gateway}")
    lines.append(f"  interface: {interface}")
    flags = "<UP,GATEWAY,DONE,STATIC,PRCLONING,GLOBAL>" if gateway is not None else "<UP,HOST,DONE,LLINFO,WASCLONED>"
    lines.append(f"      flags: {flags}")
    lines.append(" recvpipe  sendpipe  ssthresh  rtt,msec    rttvar  hopcount      mtu     expire")
    lines.append("       0         0         0         0         0         0      1500         0")
    return "\n".join(lines) + "\n"


def mac_commands(
    store: ScutilStore, *, server: str = "203.0.113.5", gateway: str | None = "192.0.2.1", processes: dict[int, str] | None = None
) -> RecordedCommands:
    """A Mac with one default gateway, the given running processes (pid -> lstart) and `store`."""
    commands = RecordedCommands()
    commands.answer("/usr/sbin/scutil", result=lambda argv, stdin: store.run(stdin or ""))
    commands.answer("/sbin/route", "-n", "get", result=lambda argv, stdin: CommandResult(0, route_get_output(argv[-1], gateway)))
    running = processes or {}

    def ps(argv: list[str], stdin: str | None) -> CommandResult:
        started = running.get(int(argv[-1]))
        return CommandResult(0, f"{started}\n") if started else CommandResult(1, "")

    commands.answer("/bin/ps", result=ps)
    return commands


# -- pf, as pfctl shows and changes it (the kill switch) --------------------------------------

PFCTL = "/sbin/pfctl"
STOCK_MAIN_RULES = 'scrub-anchor "com.apple/*" all fragment reassemble\nanchor "com.apple/*" all\n'
ALTQ_NOTE = "No ALTQ support in kernel\nALTQ related functions disabled\n"


class RecordedPf:
    """pf's state as the pfctl commands the kill switch runs see it: the main ruleset, each
    anchor's rules, and the enable references (`pfctl -E` tokens; pf is enabled while one is
    held, or while `enabled_by_others`). `refuse` maps a pfctl option ("-f", "-E", "-F", "-X")
    to the stderr of one refusal."""

    def __init__(self, main_rules: str = STOCK_MAIN_RULES, enabled_by_others: bool = False) -> None:
        self.main_rules = main_rules
        self.enabled_by_others = enabled_by_others
        self.anchors: dict[str, str] = {}
        self.tokens: set[str] = set()
        self.refuse: dict[str, str] = {}
        self._next_token = 8_435_231_776_223_011_111

    @property
    def enabled(self) -> bool:
        return self.enabled_by_others or bool(self.tokens)

    def run(self, argv: list[str], stdin: str | None) -> CommandResult:
        assert argv[0] == PFCTL, argv
        words = argv[1:]
        anchor = None
        if words[:1] == ["-a"]:
            anchor, words = words[1], words[2:]
        option = words[0]
        if option in self.refuse:
            return CommandResult(1, "", ALTQ_NOTE + self.refuse.pop(option))
        if option == "-s" and words[1:] == ["rules"]:
            return CommandResult(0, self.anchors.get(anchor, "") if anchor else self.main_rules, ALTQ_NOTE)
        if option == "-f" and anchor is not None and words[1:] == ["-"]:
            self.anchors[anchor] = stdin or ""
            return CommandResult(0, "", ALTQ_NOTE)
        if option == "-f" and anchor is None and words[1:] == ["/etc/pf.conf"]:
            self.main_rules = STOCK_MAIN_RULES
            return CommandResult(
                0,
                "",
                ALTQ_NOTE
                + "pfctl: Use of -f option, could result in flushing of rules\npresent in the main ruleset added by the system at startup.\n",
            )
        if option == "-F" and anchor is not None and words[1:] == ["rules"]:
            self.anchors.pop(anchor, None)
            return CommandResult(0, "", ALTQ_NOTE + "rules cleared\n")
        if option == "-E" and anchor is None and len(words) == 1:
            token = str(self._next_token)
            self._next_token += 1
            self.tokens.add(token)
            return CommandResult(0, "", ALTQ_NOTE + f"pf enabled\nToken : {token}\n")
        if option == "-X" and anchor is None and len(words) == 2:
            if words[1] not in self.tokens:
                return CommandResult(1, "", "pfctl: DIOCSTOPREF: Invalid argument\n")
            self.tokens.remove(words[1])
            return CommandResult(0, "", "" if self.enabled else "pf disabled\n")
        raise AssertionError(f"a pfctl command the kill switch does not use: {argv}")


def pf_commands(pf: RecordedPf, processes: dict[int, str] | None = None) -> RecordedCommands:
    """pfctl on `pf`, and ps for the journal's owners: this process and the given ones (pid ->
    lstart) run."""
    commands = RecordedCommands()
    commands.answer(PFCTL, result=lambda argv, stdin: pf.run(argv, stdin))
    running = {os.getpid(): "Sat Dec  5 16:00:00 2026", **(processes or {})}

    def ps(argv: list[str], stdin: str | None) -> CommandResult:
        started = running.get(int(argv[-1]))
        return CommandResult(0, f"{started}\n") if started else CommandResult(1, "")

    commands.answer("/bin/ps", result=ps)
    return commands
