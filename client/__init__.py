"""The SSTP + PPP engine (pure), and the edges that drive it: transport, runner, command line."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sstp-vpn")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0+unknown"
