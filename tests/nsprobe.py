"""Small network checks run *inside* a test namespace, by a short Python child process.

The test process itself lives in the host namespace and cannot open sockets in a test namespace,
so each probe is a tiny script started with `ip netns exec`. Probes poll until their own deadline
(no fixed sleeps) and exit non-zero with a reason when it passes.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from tests.netns import Namespace

_WAIT_FOR_TCP = r"""
import socket, sys, time
host, port, deadline = sys.argv[1], int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
while True:
    try:
        socket.create_connection((host, port), 1).close()
        break
    except OSError as error:
        if time.monotonic() > deadline:
            sys.exit(f"nothing accepts TCP on {host}:{port}: {error}")
        time.sleep(0.05)
"""

_FREE_PORT = r"""
import socket, sys
s = socket.socket()
s.bind((sys.argv[1], 0))
print(s.getsockname()[1])
"""

# Prints the SHA-256 of the certificate the server presents (no verification: this only looks),
# waiting until it equals the expected one if one is given.
_SERVED_CERTIFICATE = r"""
import hashlib, socket, ssl, sys, time
host, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
deadline, expected = time.monotonic() + float(sys.argv[4]), sys.argv[5]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
seen = "nothing"
while True:
    try:
        with socket.create_connection((host, port), 2) as raw:
            with context.wrap_socket(raw, server_hostname=name) as tls:
                seen = hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()
        if not expected or seen == expected:
            print(seen)
            break
    except OSError as error:
        seen = repr(error)
    if time.monotonic() > deadline:
        sys.exit(f"{host}:{port} served {seen}, expected {expected or 'any certificate'}")
    time.sleep(0.05)
"""


def run_python(ns: Namespace, script: str, *args: str, timeout: float = 60.0):
    """Run a Python snippet inside `ns` (same interpreter as the tests). Does not raise on failure."""
    return ns.run(sys.executable, "-c", script, *args, check=False, timeout=timeout)


def wait_for_tcp(ns: Namespace, host: str, port: int, timeout: float = 20.0, still_worth_waiting: Callable[[], bool] = lambda: True) -> None:
    """Wait until host:port in `ns` accepts TCP; give up early once `still_worth_waiting()` is
    False (e.g. the server process died)."""
    probe = subprocess.Popen(
        ns.argv(sys.executable, "-c", _WAIT_FOR_TCP, host, str(port), str(timeout)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        while True:
            try:
                _, error = probe.communicate(timeout=0.05)
                break
            except subprocess.TimeoutExpired:
                if not still_worth_waiting():
                    raise TimeoutError(f"gave up waiting for {host}:{port} in {ns.name}") from None
    finally:
        if probe.poll() is None:
            probe.kill()
            probe.wait()
    if probe.returncode != 0:
        raise TimeoutError(f"in {ns.name}: {error.strip()}")


def free_tcp_port(ns: Namespace, host: str) -> int:
    """A TCP port nothing in `ns` uses right now (the namespace is ours, so it stays free)."""
    result = run_python(ns, _FREE_PORT, host)
    if result.returncode != 0:
        raise RuntimeError(f"in {ns.name}: {result.stderr.strip()}")
    return int(result.stdout)


def served_certificate_sha256(ns: Namespace, host: str, port: int, server_name: str, expected: str = "", timeout: float = 20.0) -> str:
    """SHA-256 (hex) of the DER certificate served at host:port, seen from `ns`.

    With `expected`, wait until the server presents that certificate (e.g. after a change).
    """
    result = run_python(ns, _SERVED_CERTIFICATE, host, str(port), server_name, str(timeout), expected, timeout=timeout + 10)
    if result.returncode != 0:
        raise TimeoutError(f"in {ns.name}: {result.stderr.strip()}")
    return result.stdout.strip()
