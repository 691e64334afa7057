"""First contact (issue 16, "Certificates"): what a server's presented chain offers (pin the leaf,
or trust the issuing CA it sends), what each choice writes into the profile, a pinned server whose
certificate changed, and certificates with a serial number of 0 or below (SoftEther's own)."""

from __future__ import annotations

import datetime
import hashlib
import ssl
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from sstpvpn.client import trust
from sstpvpn.client.certificate_files import ca_file_problem
from sstpvpn.client.first_contact import Choice, certificate_change, describe_presented, fetch_presented_certificate, pin_date, trust_offered
from sstpvpn.client.profiles import Profile, ProfileStore, new_profile_id
from sstpvpn.client.transport import CertificateRejected, TransportError, TransportSettings, open_connection
from tests.gui.tls_server import LoopbackTlsServer
from tests.unit.trust_pki import make, private_chain, softether_like, with_serial_byte


@pytest.fixture
def store(tmp_path: Path) -> ProfileStore:
    return ProfileStore(tmp_path / "config" / "profiles.toml")


def profile(store: ProfileStore, **changes) -> Profile:
    values = dict(id=new_profile_id(), name="Office", host="localhost", username="alice")
    values.update(changes)
    return store.save(Profile(**values))


# ---------------------------------------------------------------------------------------------
# What a chain offers


def test_a_self_signed_certificate_offers_only_the_pin() -> None:
    leaf = make("localhost", dns="localhost")
    offer = describe_presented([leaf.der], "localhost")
    assert offer.self_signed and offer.can_be_pinned
    assert offer.issuing_ca is None and not offer.can_trust_ca and not offer.ca_missing


def test_a_private_ca_chain_offers_the_top_of_the_chain() -> None:
    root, intermediate, leaf = private_chain()
    offer = describe_presented([leaf.der, intermediate.der, root.der], "localhost")
    assert not offer.self_signed and offer.can_be_pinned and offer.can_trust_ca
    assert offer.issuing_ca is not None and offer.issuing_ca.der == root.der
    assert offer.issuing_ca.facts.subject == "CN=Example Private Root CA"
    assert offer.issuing_ca.sha256_colons == trust.colon_hex(hashlib.sha256(root.der).digest())
    assert offer.issuing_ca.sha1_colons == trust.colon_hex(hashlib.sha1(root.der).digest())
    # Without the root, the intermediate is the top; the leaf's own issuer always counts first.
    assert describe_presented([leaf.der, intermediate.der], "localhost").issuing_ca.der == intermediate.der  # type: ignore[union-attr]


def test_a_chain_that_does_not_link_up_offers_no_ca() -> None:
    root, intermediate, leaf = private_chain()
    stranger = make("Stranger CA", ca=True)
    assert describe_presented([leaf.der, stranger.der], "localhost").issuing_ca is None  # not the leaf's issuer
    assert describe_presented([leaf.der, root.der], "localhost").issuing_ca is None  # skips the intermediate
    # A link that is not a CA certificate stops the walk.
    not_ca = make("Not a CA", basic_constraints=False)
    issued = make("localhost", not_ca, dns="localhost")
    assert describe_presented([issued.der, not_ca.der], "localhost").issuing_ca is None
    # The top stops where the chain stops linking up.
    assert describe_presented([leaf.der, intermediate.der, stranger.der], "localhost").issuing_ca.der == intermediate.der  # type: ignore[union-attr]


def test_a_server_that_does_not_send_its_ca_is_offered_only_the_pin() -> None:
    _, _, leaf = private_chain()
    offer = describe_presented([leaf.der], "localhost")
    assert offer.ca_missing and offer.can_be_pinned and not offer.can_trust_ca
    assert offer.issuer == "CN=Example Issuing CA"


def test_nothing_is_offered_for_the_wrong_name_or_an_unusable_certificate() -> None:
    root, intermediate, leaf = private_chain("vpn.example.com")
    assert not describe_presented([leaf.der, intermediate.der, root.der], "localhost").can_be_pinned
    expired = make("localhost", dns="localhost", days=(-10, -1))
    offer = describe_presented([expired.der], "localhost")
    assert not offer.can_be_pinned and offer.unusable is not None and "expired on" in offer.unusable


# ---------------------------------------------------------------------------------------------
# What each choice writes


def test_pinning_a_self_signed_certificate_keeps_it_as_the_ca_file(store: ProfileStore) -> None:
    leaf = make("localhost", dns="localhost")
    offer = describe_presented([leaf.der], "localhost")
    now = datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=datetime.UTC)
    trusted = trust_offered(store, profile(store), offer, Choice.PIN, now)
    assert trusted.pin_sha256 == offer.sha256_colons and trusted.pinned_at == "2026-03-04T05:06:07Z"
    assert trust.pem_certificates(Path(trusted.ca_file).read_bytes()) == [leaf.der]
    store.save(trusted)
    assert store.load().by_id(trusted.id) == trusted  # the date survives the file


def test_pinning_a_private_ca_leaf_leaves_the_ca_file_alone(store: ProfileStore, tmp_path: Path) -> None:
    root, intermediate, leaf = private_chain()
    own = tmp_path / "own.pem"
    other = make("Some other CA", ca=True)
    own.write_bytes(other.pem)
    offer = describe_presented([leaf.der, intermediate.der, root.der], "localhost")
    trusted = trust_offered(store, profile(store, ca_file=str(own)), offer, Choice.PIN)
    assert trusted.ca_file == str(own) and own.read_bytes() == other.pem
    assert trust.parse_pin(trusted.pin_sha256) == hashlib.sha256(leaf.der).digest() and trusted.pinned_at


def test_trusting_the_ca_adds_it_to_the_profiles_own_ca_file(store: ProfileStore, tmp_path: Path) -> None:
    root, intermediate, leaf = private_chain()
    own = tmp_path / "own.pem"
    other = make("Some other CA", ca=True)
    own.write_bytes(other.pem)
    offer = describe_presented([leaf.der, intermediate.der, root.der], "localhost")
    before = profile(store, ca_file=str(own))
    trusted = trust_offered(store, before, offer, Choice.CA)
    assert Path(trusted.ca_file) == store.certificates_dir / f"{before.id}.pem"  # the user's own data folder
    assert trust.pem_certificates(Path(trusted.ca_file).read_bytes()) == [other.der, root.der]  # what it trusted stays
    assert own.read_bytes() == other.pem and trusted.pin_sha256 == "" and trusted.pinned_at == ""
    again = trust_offered(store, trusted, offer, Choice.CA)
    assert trust.pem_certificates(Path(again.ca_file).read_bytes()) == [other.der, root.der]  # not twice
    assert ca_file_problem(Path(again.ca_file)) is None


def test_the_ca_choice_needs_a_ca(store: ProfileStore) -> None:
    _, _, leaf = private_chain()
    with pytest.raises(ValueError, match="did not send the certificate of its issuing authority"):
        trust_offered(store, profile(store), describe_presented([leaf.der], "localhost"), Choice.CA)


# ---------------------------------------------------------------------------------------------
# A pinned server whose certificate changed


def test_a_changed_certificate_is_named_with_the_pin_date_and_both_thumbprints(store: ProfileStore) -> None:
    old, new = make("localhost", dns="localhost"), make("localhost", dns="localhost")
    old_offer, new_offer = describe_presented([old.der], "localhost"), describe_presented([new.der], "localhost")
    pinned = trust_offered(store, profile(store, port=8443), old_offer, Choice.PIN, datetime.datetime(2026, 1, 2, 3, 4, tzinfo=datetime.UTC))
    assert certificate_change(pinned, old_offer) is None  # the same certificate: no change
    assert certificate_change(profile(store, name="Unpinned"), new_offer) is None  # no pin: a first contact
    changed = certificate_change(pinned, new_offer)
    assert changed is not None
    assert changed.sentence() == (
        f"The certificate of localhost:8443 changed since you trusted it on 2026-01-02; old {old_offer.sha256_colons}, new {new_offer.sha256_colons}."
    )
    # A pin made before the date was kept (or typed in lower case without colons) still says what changed.
    undated = certificate_change(Profile(id="x", name="Old", host="localhost", pin_sha256=old_offer.sha256_hex), new_offer)
    assert undated is not None and undated.sentence().startswith("The certificate of localhost changed since you trusted it; old ")
    assert undated.old_sha256 == old_offer.sha256_colons


def test_pin_dates() -> None:
    assert pin_date("2026-01-02T03:04:05Z") == "2026-01-02"
    assert pin_date("") == pin_date("yesterday") == ""


def test_an_old_profile_file_without_the_pin_date_loads(store: ProfileStore) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_text('schema = 1\n[[profiles]]\nid = "a1"\nname = "Old"\nhost = "vpn.example.com"\npin_sha256 = "' + "ab" * 32 + '"\n')
    loaded = store.load().by_id("a1")
    assert loaded is not None and loaded.pin_sha256 == "ab" * 32 and loaded.pinned_at == ""


# ---------------------------------------------------------------------------------------------
# A pinned leaf is trusted as it stands, whoever issued it (real TLS on loopback)


def served(tmp_path: Path, *chain) -> tuple[Path, Path]:
    cert_path, key_path = tmp_path / "chain.pem", tmp_path / "leaf.key"
    cert_path.write_bytes(b"".join(made.pem for made in chain))
    key_path.write_bytes(chain[0].key_pem())
    return cert_path, key_path


def test_a_pasted_pin_connects_to_a_private_ca_server(tmp_path: Path) -> None:
    root, intermediate, leaf = private_chain()
    with LoopbackTlsServer(*served(tmp_path, leaf, intermediate, root)) as server:
        plain = TransportSettings("localhost", server.port, timeout=5)
        with pytest.raises(CertificateRejected, match="not issued by a trusted authority"):
            open_connection(plain)
        pin = hashlib.sha256(leaf.der).hexdigest()
        connection = open_connection(TransportSettings("localhost", server.port, pin_sha256=pin, timeout=5))
        try:
            assert connection.peer_certificate_der == leaf.der
        finally:
            connection.sock.close()
        with pytest.raises(CertificateRejected, match="does not match the pinned one"):
            open_connection(TransportSettings("localhost", server.port, pin_sha256=hashlib.sha256(root.der).hexdigest(), timeout=5))
        with pytest.raises(TransportError, match="is for localhost, not other.test"):
            open_connection(TransportSettings("localhost", server.port, sni="other.test", pin_sha256=pin, timeout=5))
        assert server.requests == []  # nothing was sent over a refused connection


def test_trusting_the_presented_ca_connects(tmp_path: Path, store: ProfileStore) -> None:
    root, intermediate, leaf = private_chain()
    for chain in ((leaf, intermediate, root), (leaf, intermediate)):  # the top may be an intermediate
        with LoopbackTlsServer(*served(tmp_path, *chain)) as server:
            offer = fetch_presented_certificate(TransportSettings("localhost", server.port, timeout=5))
            assert offer.issuing_ca is not None and offer.issuing_ca.der == chain[-1].der
            trusted = trust_offered(store, profile(store, port=server.port), offer, Choice.CA)
            connection = open_connection(TransportSettings("localhost", server.port, ca_file=Path(trusted.ca_file), timeout=5))
            connection.sock.close()
            store.remove(trusted.id)


# ---------------------------------------------------------------------------------------------
# Serial numbers of 0 and below (SoftEther's self-made certificate)


@pytest.fixture
def no_serial_warning():
    """Fail on cryptography's warning about the serial number."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", CryptographyDeprecationWarning)
        yield


@pytest.mark.parametrize("value", [0x00, 0xFF, 0x80], ids=["zero", "minus-one", "minus-128"])
def test_a_certificate_with_a_non_positive_serial_is_read_without_warning(tmp_path: Path, value: int, no_serial_warning) -> None:
    cert_path, _, der = softether_like(tmp_path, value=value)
    with pytest.raises(CryptographyDeprecationWarning):  # what cryptography does with it by itself
        x509.load_der_x509_certificate(der)
    offer = describe_presented([der], "localhost")
    assert offer.self_signed and offer.can_be_pinned and offer.facts.subject == "CN=localhost"
    assert offer.sha256_hex == hashlib.sha256(der).hexdigest()
    assert ca_file_problem(cert_path) is None
    assert trust.describe_certificate(der).sha1 == hashlib.sha1(der).hexdigest()


@pytest.fixture
def future_cryptography(monkeypatch: pytest.MonkeyPatch):
    """cryptography as "a future release" will be: such a certificate is refused (ValueError)."""
    real = x509.load_der_x509_certificate

    def refusing(data: bytes) -> x509.Certificate:
        with warnings.catch_warnings():
            warnings.simplefilter("error", CryptographyDeprecationWarning)
            try:
                return real(data)
            except CryptographyDeprecationWarning as warning:
                raise ValueError(str(warning)) from None

    monkeypatch.setattr(x509, "load_der_x509_certificate", refusing)


@pytest.mark.parametrize("key", ["ec", "rsa"])
def test_a_non_positive_serial_still_works_when_cryptography_refuses_it(tmp_path: Path, future_cryptography, key: str) -> None:
    made = make("localhost", dns="localhost", key=key)
    der = with_serial_byte(made, 0x00)
    with pytest.raises(ValueError, match="serial number"):
        x509.load_der_x509_certificate(der)
    offer = describe_presented([der], "localhost")
    assert offer.self_signed and offer.can_be_pinned  # the signature is checked over the original bytes
    assert offer.sha256_hex == hashlib.sha256(der).hexdigest() and offer.facts.names == ("DNS:localhost",)
    tampered = bytearray(der)
    tampered[-5] ^= 0x01  # inside the signature
    assert not trust.is_self_signed_der(bytes(tampered))
    # Issued by a private CA, also with serial 0: the chain still links up to the CA.
    ca = make("Example Private Root CA", ca=True, key=key)
    issued = with_serial_byte(make("localhost", ca, dns="localhost", key=key), 0x00, signer=ca)
    assert trust.issued_by(issued, ca.der) and not trust.issued_by(issued, made.der)
    assert describe_presented([issued, ca.der], "localhost").issuing_ca.der == ca.der  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        trust.load_certificate(b"\x30\x03\x02\x01\x01")  # not a certificate: still refused


def test_softethers_kind_of_certificate_over_real_tls(tmp_path: Path, no_serial_warning) -> None:
    """First contact with a server presenting a serial-0 certificate, then the pinned connection."""
    cert_path, key_path, der = softether_like(tmp_path)
    with LoopbackTlsServer(cert_path, key_path) as server:
        offer = fetch_presented_certificate(TransportSettings("localhost", server.port, timeout=5))
        assert offer.der == der and offer.self_signed and offer.can_be_pinned
        connection = open_connection(TransportSettings("localhost", server.port, ca_file=cert_path, pin_sha256=offer.sha256_hex, timeout=5))
        connection.sock.close()
    assert ssl.DER_cert_to_PEM_cert(der).encode() == offer.pem
