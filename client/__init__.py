"""The SSTP + PPP engine (pure), and the edges that drive it: transport, runner, command line."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # The version is read from the installed metadata when first asked for (importlib.metadata
    # costs the command line's start-up about 15 ms otherwise).
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("sstp-vpn")
        except PackageNotFoundError:  # a source tree that was never installed
            found = "0.0.0+unknown"
        globals()["__version__"] = found
        return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
