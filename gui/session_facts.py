"""TLS and crypto-binding facts of the current session, for the status window.

The runner's Status snapshot carries the state, the network plan and the failure, but not how
the session is secured; the runner and the engine tell that in their log records. This reads
those few records (the exact sentences of runner.py and engine.py) into plain facts. When Status
grows fields for them, this module goes away.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

_CONNECTING = re.compile(r"^Connecting to \S+")
_TLS_UP = re.compile(r"^TLS is up \((?P<version>[^,]+), (?P<cipher>[^)]+)\)\.$")
_AUTHENTICATING = re.compile(r"^Authenticating with (?P<method>\w+)\.$")
_NO_AUTHENTICATION = "The server asked for no authentication."
_BINDING_SENT = re.compile(r"^Authenticated; crypto binding sent \((?P<hash>\w+)\)\.$")
_EAP_MD5 = re.compile(r"^answered EAP-MD5 challenge")

_METHOD_NAMES = {"MSCHAPV2": "MS-CHAPv2", "EAP": "EAP", "CHAP_MD5": "CHAP-MD5", "PAP": "PAP"}
_HASH_NAMES = {"SHA256": "SHA-256", "SHA1": "SHA-1"}
_KEYLESS_METHODS = {"PAP", "CHAP-MD5", "EAP-MD5", "none"}  # they derive no key: the binding uses zeros


@dataclass(frozen=True)
class SessionFacts:
    tls_version: str = ""
    cipher: str = ""
    auth_method: str = ""  # "MS-CHAPv2", "EAP-MSCHAPv2", "EAP-MD5", "PAP", "CHAP-MD5", "none"
    binding_hash: str = ""  # "SHA-256" or "SHA-1"; set once the binding was sent

    @property
    def binding(self) -> str:
        """E.g. "SHA-256 with the MS-CHAPv2 key", or "" before authentication finished."""
        if not self.binding_hash:
            return ""
        if self.auth_method in _KEYLESS_METHODS:
            return f"{self.binding_hash} with a zero key ({self.auth_method} derives no key)"
        return f"{self.binding_hash} with the {self.auth_method} key"

    def updated(self, message: str) -> "SessionFacts":
        """These facts after one more log message."""
        if _CONNECTING.match(message):
            return SessionFacts()  # a new session
        if match := _TLS_UP.match(message):
            return replace(self, tls_version=match["version"], cipher=match["cipher"])
        if match := _AUTHENTICATING.match(message):
            method = _METHOD_NAMES.get(match["method"], match["method"])
            return replace(self, auth_method="EAP-MSCHAPv2" if method == "EAP" else method)
        if message == _NO_AUTHENTICATION:
            return replace(self, auth_method="none")
        if _EAP_MD5.match(message):
            return replace(self, auth_method="EAP-MD5")
        if match := _BINDING_SENT.match(message):
            return replace(self, binding_hash=_HASH_NAMES.get(match["hash"], match["hash"]))
        return self
