"""The system's CA certificates where OpenSSL checks the chain itself (Linux, the BSDs: not
`trust.OS_VERIFIER`), loaded ahead of the first TLS handshake.

There truststore's context is an ordinary OpenSSL context whose store it fills with the
distribution's bundle on every `wrap_socket` (`truststore._openssl._configure_context`), which
parses the whole bundle, about 25 ms, on the way from the TCP connect to the ClientHello.
OpenSSL releases the GIL while it parses, so `begin()` does the same loading on a thread of its
own, beside the command line's other start-up work, and `trust.verifying_context` takes the
context once (`take()`); the anchors are the same, loaded by truststore's own function.
Light on purpose (threading only at import), like head_start.py (issue 18).
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

_lock = threading.Lock()
_pending: _Loader | None = None


def load() -> ssl.SSLContext:
    """A TLS client context holding the system's CA certificates, exactly as truststore's OpenSSL
    back-end puts them in its context before each handshake. Raises what that raises."""
    import ssl

    from truststore._openssl import _configure_context

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with _configure_context(context):
        pass
    return context


class _Loader:
    def __init__(self) -> None:
        self.context: ssl.SSLContext | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sstp-ca-store", daemon=True)

    def _run(self) -> None:
        try:
            self.context = load()
        except Exception:  # noqa: BLE001 - take() gives None: the caller loads again and meets the error itself
            self.context = None
        finally:
            self._done.set()

    def wait(self) -> None:
        self._done.wait()


def begin() -> None:
    """Start loading the system's CA certificates on a thread, for the next `take()`. Not on
    Windows and macOS, where truststore asks the OS instead (`trust.OS_VERIFIER`)."""
    global _pending
    if sys.platform in ("win32", "darwin"):
        return
    loader = _Loader()
    with _lock:
        if _pending is not None:
            return
        _pending = loader
    loader._thread.start()


def take() -> ssl.SSLContext | None:
    """The context `begin()` loaded (waiting for it), for one caller only; None when nothing was
    begun, it was taken already, or the loading failed."""
    global _pending
    with _lock:
        loader, _pending = _pending, None
    if loader is None:
        return None
    loader.wait()
    return loader.context
