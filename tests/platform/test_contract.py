"""One contract for every platform implementation (psutil's tests/test_contracts.py idea): the
same public API with the same signatures and types, and the same behaviour where it can be
observed without the OS, for Linux, Windows and macOS alike. Runs on any system: Windows and macOS
devices are backed by the recorded stand-ins of tests/recorded_windows.py and recorded_macos.py,
the Linux device by a datagram socketpair in place of /dev/net/tun."""

from __future__ import annotations

import inspect
import os
import selectors
import socket
import typing
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from sstpvpn.platform import interfaces, netconfig_linux, netconfig_macos, netconfig_windows, tun_linux, tun_macos, tun_windows
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.journal import UndoJournal
from tests.recorded_macos import RecordedDarwin
from tests.recorded_windows import RecordedWindows

IPV4_PACKET = bytes.fromhex("4500001c00000000400100000a0000010a000002") + bytes(8)


@dataclass
class Backend:
    """How to get an open device of one implementation without its OS, and how to play the
    system's side of it: put a packet into the interface, take one out."""

    tun: ModuleType
    netconfig: ModuleType
    open_device: Callable[[], Any]
    arrive: Callable[[Any], None] = None  # type: ignore[assignment]
    departed: Callable[[], bytes] = None  # type: ignore[assignment]


def linux_backend() -> Backend:
    ours, system = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    ours.setblocking(False)
    backend = Backend(tun_linux, netconfig_linux, lambda: tun_linux.TunDevice(ours.detach(), "sstp-contract"))
    backend.arrive = system.send
    backend.departed = lambda: system.recv(65535)
    return backend


def windows_backend() -> Backend:
    windows = RecordedWindows()
    backend = Backend(tun_windows, netconfig_windows, lambda: tun_windows.TunDevice.open(**windows.libraries()))
    backend.arrive = windows.wintun.arrive
    backend.departed = lambda: windows.wintun.sent.pop(0)
    return backend


def macos_backend() -> Backend:
    darwin = RecordedDarwin()
    backend = Backend(tun_macos, netconfig_macos, lambda: tun_macos.TunDevice.open(darwin=darwin))
    backend.arrive = lambda packet: darwin.kernel_side.send(tun_macos.af_header(packet) + packet)
    backend.departed = lambda: darwin.kernel_side.recv(65535)[4:]
    return backend


BACKENDS = {"linux": linux_backend, "windows": windows_backend, "macos": macos_backend}
REFERENCE = BACKENDS["linux"]


def public_names(cls: type) -> set[str]:
    """Public names defined on the class or a base of it in this project (not on object)."""
    return {name for base in cls.__mro__ if base.__module__.startswith("sstpvpn.") for name in vars(base) if not name.startswith("_")}


def shape(signature: inspect.Signature, skip: int = 0) -> list[tuple[Any, ...]]:
    """Name, kind, default and annotation of each parameter (after `skip`), and the return type."""
    parameters = list(signature.parameters.values())[skip:]
    return [(p.name, p.kind, p.default, p.annotation) for p in parameters] + [("->", signature.return_annotation)]


def required_then_optional_keywords(signature: inspect.Signature, common: int) -> tuple[list, list]:
    """The first `common` parameters (compared across implementations), and the rest, which must
    be keyword-only with defaults: each OS may take its own injected system calls."""
    parameters = list(signature.parameters.values())
    extra = parameters[common:]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty for p in extra), extra
    return parameters[:common], extra


@pytest.mark.parametrize("name", BACKENDS)
def test_the_platform_api_is_the_same_everywhere(name):
    """Same public names, signatures and annotated types as the Linux reference."""
    backend, reference = BACKENDS[name](), REFERENCE()
    # TunDevice: the same methods and properties, the same signatures.
    tun, reference_tun = backend.tun.TunDevice, reference.tun.TunDevice
    assert (
        public_names(tun) == public_names(reference_tun) == {"open", "fileno", "closed", "read_packets", "write_packets", "mtu", "set_mtu", "close"}
    )
    for method in ("fileno", "read_packets", "write_packets", "set_mtu", "close", "__enter__", "__exit__"):
        assert shape(inspect.signature(getattr(tun, method))) == shape(inspect.signature(getattr(reference_tun, method))), method
    for prop in ("closed", "mtu"):
        assert isinstance(vars(tun)[prop], property)
        assert shape(inspect.signature(vars(tun)[prop].fget)) == shape(inspect.signature(vars(reference_tun)[prop].fget))
    assert isinstance(vars(tun)["open"], classmethod)
    common, _ = required_then_optional_keywords(inspect.signature(tun.open), 1)
    reference_common, _ = required_then_optional_keywords(inspect.signature(reference_tun.open), 1)
    assert (
        [(p.name, p.default, p.annotation) for p in common]
        == [(p.name, p.default, p.annotation) for p in reference_common]
        == [("name", None, "str | None")]
    )
    assert inspect.signature(tun.open).return_annotation == "TunDevice"
    # NetConfigurator: the same constructor (plus keyword-only stand-ins) and methods.
    config, reference_config = backend.netconfig.NetConfigurator, reference.netconfig.NetConfigurator
    assert (
        public_names(config)
        == public_names(reference_config)
        == {"apply", "add_ipv6_link", "add_ipv6_dns", "add_pushed", "follow_server_route", "restore"}
    )
    common, _ = required_then_optional_keywords(inspect.signature(config.__init__), 5)
    reference_common, _ = required_then_optional_keywords(inspect.signature(reference_config.__init__), 5)
    assert [(p.name, p.kind, p.default, p.annotation) for p in common] == [(p.name, p.kind, p.default, p.annotation) for p in reference_common]
    for method in ("apply", "add_ipv6_link", "add_ipv6_dns", "add_pushed", "follow_server_route", "restore"):
        assert shape(inspect.signature(getattr(config, method))) == shape(inspect.signature(getattr(reference_config, method))), method
    # The module functions current.py re-exports.
    common, _ = required_then_optional_keywords(inspect.signature(backend.netconfig.repair_from_journal), 1)
    assert [(p.name, p.annotation) for p in common] == [("journal_path", "pathlib.Path")]
    assert inspect.signature(backend.netconfig.repair_from_journal).return_annotation == "bool"
    assert shape(inspect.signature(backend.netconfig.default_journal_path)) == shape(inspect.signature(reference.netconfig.default_journal_path))


@pytest.mark.parametrize("name", BACKENDS)
def test_a_device_behaves_the_same_everywhere(name):
    backend = BACKENDS[name]()
    with pytest.raises(PlatformError) as caught:
        backend.tun.TunDevice.open("")
    assert caught.value.sentence.strip()

    device = backend.open_device()
    with device:
        assert isinstance(device.name, str) and device.name
        assert device.closed is False and isinstance(device.fileno(), int)
        assert device.read_packets() == []
        with selectors.DefaultSelector() as selector:
            selector.register(device, selectors.EVENT_READ)
            backend.arrive(IPV4_PACKET)
            assert len(selector.select(5)) == 1
        assert device.read_packets() == [IPV4_PACKET]
        assert device.write_packets([IPV4_PACKET]) is None
        assert backend.departed() == IPV4_PACKET
        assert device.dropped_packets == 0
        for impossible in (0, 65536):
            with pytest.raises(PlatformError, match=f"An MTU of {impossible} bytes is not possible"):
                device.set_mtu(impossible)
    assert device.closed is True
    device.close()  # twice is fine
    for use in (device.fileno, device.read_packets, lambda: device.write_packets([IPV4_PACKET])):
        with pytest.raises(PlatformError, match="already closed"):
            use()


@pytest.mark.parametrize("name", BACKENDS)
def test_the_journal_rules_are_the_same_everywhere(name, tmp_path):
    netconfig = BACKENDS[name]().netconfig
    path = tmp_path / "journal.json"
    # Nothing applied: restore and repair have nothing to do, and touch no OS for it.
    assert netconfig.NetConfigurator("tun0", "192.0.2.7", journal_path=path).restore() == []
    assert netconfig.repair_from_journal(path) is False
    # An empty journal is just removed.
    UndoJournal(path).begin({"pid": 1})
    assert netconfig.repair_from_journal(path) is False and not path.exists()
    # A damaged one is a sentence and is moved aside, so it cannot block every later start.
    path.write_bytes(b"\x00 not a journal")
    with pytest.raises(PlatformError, match=r"is damaged.*It was moved to"):
        netconfig.repair_from_journal(path)
    assert not path.exists() and path.with_name("journal.json.damaged").exists()
    assert isinstance(netconfig.default_journal_path(), os.PathLike)


def protocol_members(protocol: type) -> list[str]:
    return sorted(typing._get_protocol_attrs(protocol))  # type: ignore[attr-defined]


def protocol_methods(protocol: type) -> list[str]:
    return [name for name in protocol_members(protocol) if callable(getattr(protocol, name, None))]


def has_members(instance: object, protocol: type) -> bool:
    """isinstance() for a protocol, without calling properties (a device's mtu asks the OS)."""
    missing = object()
    return all(inspect.getattr_static(instance, name, missing) is not missing for name in protocol_members(protocol))


@pytest.mark.parametrize("name", BACKENDS)
def test_every_implementation_satisfies_the_declared_protocols(name, tmp_path):
    """platform.interfaces: the members are there, and each method has the protocol's parameters
    and types."""
    backend = BACKENDS[name]()
    with backend.open_device() as device:
        assert has_members(device, interfaces.TunDevice)
    config = backend.netconfig.NetConfigurator("tun0", "192.0.2.7", journal_path=tmp_path / "journal.json")
    assert has_members(config, interfaces.NetConfigurator)
    for protocol, implementation in ((interfaces.TunDevice, backend.tun.TunDevice), (interfaces.NetConfigurator, backend.netconfig.NetConfigurator)):
        for method in protocol_methods(protocol):
            assert shape(inspect.signature(getattr(implementation, method))) == shape(inspect.signature(getattr(protocol, method))), (
                protocol.__name__,
                method,
            )
        for prop in ("closed", "mtu") if protocol is interfaces.TunDevice else ():
            assert shape(inspect.signature(vars(implementation)[prop].fget)) == shape(inspect.signature(vars(protocol)[prop].fget))


if typing.TYPE_CHECKING:  # the same, for the type checker
    _devices: list[interfaces.TunDevice] = [tun_linux.TunDevice(0, ""), tun_macos.TunDevice.open(), tun_windows.TunDevice.open()]
    _configurators: list[interfaces.NetConfigurator] = [
        netconfig_linux.NetConfigurator("", ""),
        netconfig_macos.NetConfigurator("", ""),
        netconfig_windows.NetConfigurator("", ""),
    ]
