"""EAP-TLS and PEAP (EAP-MSCHAPv2 inside) from the sans-IO engine to real EAP servers (FreeRADIUS 3.2,
and hostapd 2.10 for the [MS-PEAP] crypto binding TLV).

The SSTP side is ScriptedServer from our codecs; its authenticator relays EAP to FreeRADIUS over
RADIUS (relay.py), takes the MSK from the MS-MPPE keys of Access-Accept and verifies the client's
crypto binding (Compound MAC in Call Connected) with the HLAK derived from that MSK, as RRAS + NPS
do. So a passing binding check means our MSK (from the TLS master secret, or [MS-PEAP]'s keys)
equals FreeRADIUS's, computed by OpenSSL on the other side."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from sstpvpn.client.core.auth import AuthPolicy
from sstpvpn.client.core.eap_tls import TlsMethod, TlsMethodSettings
from sstpvpn.client.core.engine import EngineSettings
from sstpvpn.client.core.events import Credentials, SignedIn
from sstpvpn.client.core.ppp_codec import PppProtocol
from sstpvpn.client.core.types import FailureKind, SessionSecurity
from tests.eap.freeradius import PASSWORD, USER
from tests.eap.pki import PASSPHRASE, SERVER_NAME
from tests.eap.radius import ACCESS_ACCEPT, RadiusClient
from tests.eap.relay import RadiusRelay
from tests.unit.scripted_server import EAP, MSCHAPV2, Conversation

pytestmark = pytest.mark.realparts


def _settings(method: TlsMethod, ca: Path, password: str = PASSWORD, **extra) -> EngineSettings:  # type: ignore[no-untyped-def]
    tls = TlsMethodSettings(method, server_name=SERVER_NAME, ca_file=ca, **extra)
    return EngineSettings(Credentials(USER, password), "vpn.example.com", AuthPolicy(tls_method=tls))


def _run(freeradius, settings: EngineSettings, corrupt_hlak: bool = False, methods: tuple[str, ...] = (EAP,)):  # type: ignore[no-untyped-def]
    radius = RadiusClient("127.0.0.1", freeradius.port, freeradius.secret)
    try:
        server = RadiusRelay(radius, corrupt_hlak=corrupt_hlak, methods=methods)
        conversation = Conversation(settings, server).start()
    finally:
        radius.close()
    return conversation, server


def _failure(conversation):  # type: ignore[no-untyped-def]
    ends = conversation.disconnected
    assert ends, "the session did not end"
    return ends[-1].failure


# --------------------------------------------------------------------------- EAP-TLS


@pytest.mark.parametrize("file", ["client_pem", "client_p12"])
def test_eap_tls_with_a_certificate_from_the_test_ca_binds_with_freeradius_msk(freeradius, eap_pki, file):
    settings = _settings(TlsMethod.EAP_TLS, eap_pki.ca, client_certificate=getattr(eap_pki, file), key_passphrase=PASSPHRASE)
    conversation, server = _run(freeradius, settings)
    assert server.problems == []
    assert server.radius_codes[-1] == ACCESS_ACCEPT
    assert 13 in server.eap_types_from_client
    assert server.msk is not None and len(server.msk) == 64
    assert server.binding is not None and server.binding.ok, server.binding  # the MAC was made with FreeRADIUS's MSK
    assert server.binding.hlak == server.msk[:32]
    assert conversation.plans, "IPCP did not come up"
    assert conversation.engine.security == SessionSecurity("EAP-TLS", "SHA-256", True)
    assert conversation.engine.security.binding == "SHA-256 with the EAP-TLS key"  # the status window's line


@pytest.mark.parametrize(("method", "shown"), [(TlsMethod.EAP_TLS, "EAP-TLS"), (TlsMethod.PEAP, "PEAP (EAP-MSCHAPv2)")])
def test_the_sign_in_check_signs_in_with_eap_and_leaves_before_ipcp(freeradius, eap_pki, method, shown):
    """What the editor's Test and `diagnose --user` do (client/sign_in.py, authenticate_only) with
    EAP-TLS or PEAP: the real EAP server accepts, the binding made with its MSK checks out, and the
    client disconnects before IPCP (nothing would change on the machine)."""
    extra = {"client_certificate": eap_pki.client_pem, "key_passphrase": PASSPHRASE} if method is TlsMethod.EAP_TLS else {}
    settings = replace(_settings(method, eap_pki.ca, **extra), authenticate_only=True)
    conversation, server = _run(freeradius, settings)
    assert server.problems == []
    assert server.radius_codes[-1] == ACCESS_ACCEPT
    assert server.binding is not None and server.binding.ok, server.binding
    assert conversation.of_type(SignedIn) == [SignedIn(USER, shown)]
    assert _failure(conversation) is None
    assert not conversation.plans
    assert PppProtocol.IPCP not in {protocol for protocol, _ in server.frames_received}


def test_a_wrong_hlak_fails_the_binding_check(freeradius, eap_pki):
    settings = _settings(TlsMethod.EAP_TLS, eap_pki.ca, client_certificate=eap_pki.client_pem, key_passphrase=PASSPHRASE)
    _conversation, server = _run(freeradius, settings, corrupt_hlak=True)
    assert server.radius_codes[-1] == ACCESS_ACCEPT
    assert server.binding is not None
    assert server.binding.nonce_ok and server.binding.cert_hash_ok
    assert not server.binding.mac_ok


def test_eap_tls_with_a_certificate_from_another_ca_is_refused_by_freeradius(freeradius, eap_pki):
    settings = _settings(TlsMethod.EAP_TLS, eap_pki.ca, client_certificate=eap_pki.foreign_client_pem, key_passphrase=PASSPHRASE)
    conversation, server = _run(freeradius, settings)
    failure = _failure(conversation)
    assert failure is not None and failure.kind is FailureKind.AUTHENTICATION
    assert "authentication server" in failure.reason and "certificate" in failure.reason
    assert server.binding is None and not server.authenticated
    assert ACCESS_ACCEPT not in server.radius_codes


def test_eap_tls_refuses_a_server_certificate_from_an_unknown_ca(freeradius, eap_pki):
    # The client trusts only the other CA: FreeRADIUS's certificate is unknown to it.
    settings = _settings(TlsMethod.EAP_TLS, eap_pki.other_ca, client_certificate=eap_pki.client_pem, key_passphrase=PASSPHRASE)
    conversation, server = _run(freeradius, settings)
    failure = _failure(conversation)
    assert failure.kind is FailureKind.TRUST
    assert failure.reason.startswith("EAP authentication server: The server's certificate was not issued by a trusted authority")
    assert "--eap-ca-file" in failure.reason
    assert server.binding is None and ACCESS_ACCEPT not in server.radius_codes


def test_eap_tls_refuses_a_server_certificate_for_another_name(freeradius, eap_pki):
    tls = TlsMethodSettings(
        TlsMethod.EAP_TLS, server_name="nps.example.com", ca_file=eap_pki.ca, client_certificate=eap_pki.client_pem, key_passphrase=PASSPHRASE
    )
    settings = EngineSettings(Credentials(USER, ""), "vpn.example.com", AuthPolicy(tls_method=tls))
    conversation, server = _run(freeradius, settings)
    failure = _failure(conversation)
    assert failure.kind is FailureKind.TRUST
    assert failure.reason == (
        f"EAP authentication server: The server's certificate is for {SERVER_NAME}, not nps.example.com. "
        "Check the EAP server name in the profile (--eap-server-name)."
    )
    assert server.binding is None


def test_eap_tls_with_the_wrong_key_passphrase_says_so(freeradius, eap_pki):
    settings = _settings(TlsMethod.EAP_TLS, eap_pki.ca, client_certificate=eap_pki.client_p12, key_passphrase="wrong")
    conversation, _server = _run(freeradius, settings)
    failure = _failure(conversation)
    assert failure.reason.startswith(f"The passphrase for {eap_pki.client_p12} is wrong")


# --------------------------------------------------------------------------- PEAP


def test_peap_mschapv2_binds_with_freeradius_msk(freeradius, eap_pki):
    conversation, server = _run(freeradius, _settings(TlsMethod.PEAP, eap_pki.ca))
    assert server.problems == []
    assert server.radius_codes[-1] == ACCESS_ACCEPT
    assert 25 in server.eap_types_from_client
    assert server.binding is not None and server.binding.ok
    assert conversation.plans
    assert conversation.engine.security == SessionSecurity("PEAP (EAP-MSCHAPv2)", "SHA-256", True)
    assert conversation.engine.security.binding == "SHA-256 with the PEAP (EAP-MSCHAPv2) key"


def test_peap_with_a_wrong_password_says_so(freeradius, eap_pki):
    conversation, server = _run(freeradius, _settings(TlsMethod.PEAP, eap_pki.ca, password="wrong password"))
    failure = _failure(conversation)
    assert failure.kind is FailureKind.AUTHENTICATION
    assert failure.reason == "The server refused the user name or password. Check them and try again."
    assert server.binding is None and ACCESS_ACCEPT not in server.radius_codes


def test_peap_checks_the_pin_of_the_server_certificate(freeradius, eap_pki):
    pinned = _settings(TlsMethod.PEAP, eap_pki.ca, pin_sha256=eap_pki.server_sha256)
    _conversation, server = _run(freeradius, pinned)
    assert server.binding is not None and server.binding.ok
    wrong = _settings(TlsMethod.PEAP, eap_pki.ca, pin_sha256=bytes(32))
    conversation, server = _run(freeradius, wrong)
    assert _failure(conversation).kind is FailureKind.TRUST
    assert "does not match the pinned one" in _failure(conversation).reason


# --------------------------------------------------------------------------- PEAP with crypto binding (hostapd)


def test_peap_with_the_ms_peap_crypto_binding_tlv_binds_with_hostapd_msk(hostapd, eap_pki):
    """hostapd's PEAPv0 server sends a Crypto Binding TLV, checks ours ("Valid cryptobinding TLV
    received") and then derives the MSK from IPMK (CSK): the SSTP binding only checks out if our
    IPMK, CMK, Compound MAC and CSK all equal hostapd's."""
    conversation, server = _run(hostapd, _settings(TlsMethod.PEAP, eap_pki.ca))
    assert server.problems == []
    assert server.radius_codes[-1] == ACCESS_ACCEPT
    assert server.binding is not None and server.binding.ok
    assert "EAP-PEAP: Valid cryptobinding TLV received" in hostapd.log_text()
    assert conversation.plans
    assert any("crypto binding checks out" in str(getattr(e, "message", "")) for e in conversation.events)


def test_peap_with_hostapd_and_a_wrong_password_says_so(hostapd, eap_pki):
    conversation, server = _run(hostapd, _settings(TlsMethod.PEAP, eap_pki.ca, password="wrong password"))
    failure = _failure(conversation)
    assert failure.kind is FailureKind.AUTHENTICATION
    assert failure.reason == "The server refused the user name or password. Check them and try again."
    assert server.binding is None


def test_without_an_eap_server_name_or_pin_nothing_is_trusted(freeradius, eap_pki):
    tls = TlsMethodSettings(TlsMethod.PEAP, ca_file=eap_pki.ca)  # the chain is fine, but for whom?
    settings = EngineSettings(Credentials(USER, PASSWORD), "vpn.example.com", AuthPolicy(tls_method=tls))
    conversation, server = _run(freeradius, settings)
    failure = _failure(conversation)
    assert failure.kind is FailureKind.TRUST
    assert failure.reason == (
        f"No EAP server name is set in the profile, so the authentication server's certificate "
        f"(for {SERVER_NAME}) cannot be checked: set the EAP server name (--eap-server-name)."
    )
    assert server.binding is None and ACCESS_ACCEPT not in server.radius_codes


def test_eap_tls_over_tls13_when_the_profile_allows_it(freeradius, eap_pki):
    """RFC 9190: keys from the TLS 1.3 exporter, success only after the commitment message.
    FreeRADIUS computes the same MSK (the SSTP binding checks out with its MS-MPPE keys)."""
    settings = _settings(TlsMethod.EAP_TLS, eap_pki.ca, client_certificate=eap_pki.client_pem, key_passphrase=PASSPHRASE, allow_tls13=True)
    conversation, server = _run(freeradius, settings)
    assert server.radius_codes[-1] == ACCESS_ACCEPT
    assert server.binding is not None and server.binding.ok
    messages = [str(getattr(e, "message", "")) for e in conversation.events]
    assert any("TLSv1.3" in m for m in messages) and any("commitment message" in m for m in messages)


def test_eap_tls_stays_at_tls12_by_default_even_when_the_server_offers_13(freeradius, eap_pki):
    settings = _settings(TlsMethod.EAP_TLS, eap_pki.ca, client_certificate=eap_pki.client_pem, key_passphrase=PASSPHRASE)
    conversation, server = _run(freeradius, settings)
    assert server.binding is not None and server.binding.ok
    assert any("TLSv1.2" in str(getattr(e, "message", "")) for e in conversation.events)


def test_eap_tls13_with_a_certificate_from_another_ca_is_refused(freeradius, eap_pki):
    settings = _settings(TlsMethod.EAP_TLS, eap_pki.ca, client_certificate=eap_pki.foreign_client_pem, key_passphrase=PASSPHRASE, allow_tls13=True)
    conversation, server = _run(freeradius, settings)
    failure = _failure(conversation)
    assert failure.kind is FailureKind.AUTHENTICATION and "certificate" in failure.reason
    assert server.binding is None and ACCESS_ACCEPT not in server.radius_codes


def test_a_peap_profile_steers_a_server_that_offers_mschapv2_first_to_eap(freeradius, eap_pki):
    """RRAS offers its methods in turn; a profile that asks for PEAP signs in with nothing else."""
    conversation, server = _run(freeradius, _settings(TlsMethod.PEAP, eap_pki.ca), methods=(MSCHAPV2, EAP))
    assert server.lcp_refusals == [MSCHAPV2]
    assert server.binding is not None and server.binding.ok
    assert conversation.engine.security.auth_method == "PEAP (EAP-MSCHAPv2)"


def test_eap_tls_fragments_both_ways_with_acks(freeradius, eap_pki):
    """Our certificate flight (RSA-4096, long chain) goes out in fragments, each after the server's
    ACK; the server's flight comes in fragments (FreeRADIUS fragment_size 1024) that we ACK."""
    settings = _settings(TlsMethod.EAP_TLS, eap_pki.ca, client_certificate=eap_pki.big_client_pem, key_passphrase=PASSPHRASE)
    _conversation, server = _run(freeradius, settings)
    more, length = 0x40, 0x80
    assert any(flags & more for flags in server.tls_flags_from_client), server.tls_flags_from_client
    assert any(flags & length and flags & more for flags in server.tls_flags_from_client)
    assert any(flags & more for flags in server.tls_flags_from_server), server.tls_flags_from_server
    assert server.radius_codes[-1] == ACCESS_ACCEPT
    assert server.binding is not None and server.binding.ok
