"""NTLM and Negotiate (Kerberos) tokens for proxy authentication, from pyspnego: the edge that
proxy.py's handshake takes its `AuthContext`s from.

- NTLM: the profile's proxy user name (DOMAIN\\user, user@domain or user) and password; pure
  computation (NTLMv2, pyspnego's own code).
- Negotiate: Kerberos from the user's ticket cache (KRB5CCNAME, or the system's default cache: the
  one a domain sign-in or `kinit` fills), never from the password; the service is HTTP/<proxy
  host name as configured>. With a proxy user name and password, NTLM is offered inside
  Negotiate as well, for a proxy (or a user without a ticket) that ends up with NTLM there; the
  password is handed over only as its NT hash, an NTLM-only credential, so it never becomes a
  Kerberos sign-in with the password. On Linux pyspnego reaches Kerberos through python-gssapi
  (MIT krb5); on Windows through SSPI, with the signed-in user's own credentials.

Before a Negotiate context is made, the ticket cache is looked at (gssapi), so that "no ticket"
and "ticket expired" are told as such instead of as a failed mechanism negotiation.
"""

from __future__ import annotations

import logging
import os
import struct
import sys
from collections.abc import Callable
from typing import Any

from .core.i18n import _
from .proxy import AuthFailed, AuthScheme, AuthUnavailable, ProxySettings, Unavailable

SERVICE = "HTTP"  # RFC 4559: the proxy's service principal is HTTP/<its host name>


class SpnegoContext:
    """proxy.AuthContext over a pyspnego client context."""

    def __init__(self, context: Any, user: str | None, mechanism: str | None = None, explain: Callable[[], str] | None = None) -> None:
        self._context = context
        self._user = user
        self._mechanism = mechanism  # fixed for NTLM; Negotiate says after its first step
        self._explain = explain  # why the first step failed, when pyspnego's error names another mechanism

    def step(self, token: bytes | None) -> bytes | None:
        import spnego.exceptions

        try:
            return self._context.step(token)
        except spnego.exceptions.SpnegoError as error:
            if token is None and self._explain is not None:
                raise AuthFailed(self._explain() or reason(error)) from None
            raise AuthFailed(reason(error)) from None
        except (KeyError, IndexError, ValueError, TypeError, struct.error):  # pyspnego's parsers, on a malformed token
            raise AuthFailed(_("the token is malformed")) from None

    @property
    def mechanism(self) -> str:
        if self._mechanism is not None:
            return self._mechanism
        return getattr(self._context, "negotiated_protocol", None) or "ntlm"

    @property
    def user(self) -> str | None:
        return self._user if self.mechanism == "kerberos" else None  # None: the proxy user name


def reason(error: BaseException) -> str:
    """The innermost cause of a pyspnego error in its own words (GSSAPI's minor message, e.g.
    "Server not found in Kerberos database"), not pyspnego's nested wrapper text."""
    inner: BaseException = error
    for _depth in range(8):
        base = getattr(inner, "base_error", None)
        if not isinstance(base, BaseException):
            break
        inner = base
    minor = _gss_minor(inner)
    if minor:
        return minor
    words = getattr(inner, "context_message", None) or getattr(inner, "message", None) or str(inner)
    return str(words).strip()


def _gss_minor(error: BaseException) -> str:
    try:
        from gssapi.raw.misc import GSSError
    except ImportError:
        return ""
    if not isinstance(error, GSSError):
        return ""
    messages = [text for text in error.get_all_statuses(error.min_code, False) if text] if error.min_code else []
    return "; ".join(str(text) for text in messages)


def kerberos_principal() -> str:
    """The principal of the default ticket cache (e.g. alice@EXAMPLE.COM). Raises AuthUnavailable:
    NO_TICKET, TICKET_EXPIRED, or NOT_INSTALLED without python-gssapi."""
    try:
        import gssapi
        import gssapi.exceptions
        import krb5  # noqa: F401  (pyspnego's Kerberos needs it beside gssapi)
    except ImportError as error:
        raise AuthUnavailable(Unavailable.NOT_INSTALLED, error.name or "gssapi") from None
    try:
        credentials = gssapi.Credentials(usage="initiate")
        lifetime = credentials.lifetime  # raises ExpiredCredentialsError for an expired ticket
        if lifetime is not None and lifetime <= 0:
            raise AuthUnavailable(Unavailable.TICKET_EXPIRED)
        return str(credentials.name)
    except gssapi.exceptions.ExpiredCredentialsError:
        raise AuthUnavailable(Unavailable.TICKET_EXPIRED) from None
    except gssapi.exceptions.GSSError:
        raise AuthUnavailable(Unavailable.NO_TICKET, SUDO if _root_through_sudo() else "") from None


SUDO = "sudo"  # AuthUnavailable's detail: root through sudo, whose ticket cache is root's, not the user's


def _root_through_sudo() -> bool:
    """`sudo sstp-vpn ...`: root's own ticket cache is looked at, not the one the user's domain
    sign-in or kinit filled (sudo does not pass KRB5CCNAME on)."""
    return sys.platform != "win32" and os.geteuid() == 0 and bool(os.environ.get("SUDO_USER")) and "KRB5CCNAME" not in os.environ


def spnego_context(scheme: AuthScheme, proxy: ProxySettings) -> SpnegoContext:
    """A client context for `scheme` toward `proxy`. Raises AuthUnavailable."""
    try:
        import spnego
    except ImportError:
        raise AuthUnavailable(Unavailable.NOT_INSTALLED, "pyspnego") from None
    # pyspnego's DEBUG lines carry every token (an NTLMv2 response can be cracked offline): keep them
    # out of any log, whatever level a caller gives the root logger.
    logging.getLogger("spnego").setLevel(logging.WARNING)
    if scheme is AuthScheme.NTLM:
        if not proxy.has_credentials:
            raise AuthUnavailable(Unavailable.NO_CREDENTIALS)
        context = spnego.client(proxy.username, proxy.password, hostname=proxy.host, service=SERVICE, protocol="ntlm")
        return SpnegoContext(context, proxy.username, "ntlm")
    if scheme is not AuthScheme.NEGOTIATE:
        raise ValueError(f"no context for {scheme}")
    if sys.platform == "win32":  # SSPI: the signed-in user's own Kerberos or NTLM credentials
        context = spnego.client(proxy.username, proxy.password, hostname=proxy.host, service=SERVICE, protocol="negotiate")
        return SpnegoContext(context, proxy.username)
    credentials: list[Any] = []
    principal: str | None = None
    problem: AuthUnavailable | None = None
    try:
        principal = kerberos_principal()
    except AuthUnavailable as error:
        if not proxy.has_credentials:
            raise
        problem = error  # NTLM inside Negotiate may still do
    if proxy.has_credentials:
        assert proxy.username is not None and proxy.password is not None
        # First: an NTLM-only credential, so that the cache below is taken for Kerberos alone.
        credentials.append(spnego.NTLMHash(proxy.username, nt_hash=nt_hash(proxy.password)))
    if principal is not None:
        credentials.append(spnego.CredentialCache())
    try:
        context = spnego.client(credentials, hostname=proxy.host, service=SERVICE, protocol="negotiate")
    except spnego.exceptions.SpnegoError as error:
        raise AuthUnavailable(problem.why if problem else Unavailable.FAILED, reason(error)) from None
    return SpnegoContext(context, principal, explain=lambda: _kerberos_error(proxy) if principal is not None else "")


def _kerberos_error(proxy: ProxySettings) -> str:
    """Why Kerberos alone cannot make a token for the proxy (SPNEGO reports the last mechanism's
    error, which is NTLM's when Kerberos failed first): e.g. "Server not found in Kerberos database"."""
    import spnego

    try:
        spnego.client(hostname=proxy.host, service=SERVICE, protocol="kerberos").step()
    except spnego.exceptions.SpnegoError as error:
        return reason(error)
    except ImportError:
        return ""
    return ""


def nt_hash(password: str) -> str:
    """[MS-NLMP] NTOWFv1 (MD4 of the UTF-16LE password), hex: NTLM's key, usable for NTLM only.
    pyspnego's own MD4 (hashlib's is gone from OpenSSL 3's default provider)."""
    from spnego._ntlm_raw.crypto import ntowfv1

    return ntowfv1(password).hex()
