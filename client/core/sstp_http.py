"""The HTTP exchange that opens an SSTP call ([MS-SSTP] 3.2.4.1), through h11.

The client sends one `SSTP_DUPLEX_POST` request; the server answers with headers only. On 200
every later byte of the stream is SSTP binary, so the reader hands back what follows the headers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import h11

from .i18n import _

SSTP_METHOD = b"SSTP_DUPLEX_POST"
SSTP_URI = b"/sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/"
ENDLESS_LENGTH = b"18446744073709551615"  # 2**64 - 1: the body is the rest of the connection
MAX_HEADER_BYTES = 16 * 1024


@dataclass(frozen=True)
class HttpReply:
    status: int
    reason: str
    after_headers: bytes  # SSTP bytes that arrived with the headers
    http_version: str = "1.1"

    @property
    def status_line(self) -> str:
        """For messages, as the server wrote it: HTTP/1.1 200 OK."""
        return f"HTTP/{self.http_version} {self.status} {self.reason}".rstrip()


class HttpRefused(Exception):
    """The server did not accept the SSTP request. The message is for the user; `reply` is the
    server's answer when it was a complete HTTP reply with a status other than 200."""

    def __init__(self, message: str, reply: HttpReply | None = None) -> None:
        super().__init__(message)
        self.reply = reply


def build_request(host: str, correlation_id: uuid.UUID) -> tuple[h11.Connection, bytes]:
    """The request bytes, and the h11 connection that will read the reply."""
    connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
    request = h11.Request(
        method=SSTP_METHOD,
        target=SSTP_URI,
        headers=[
            ("Host", host),
            ("Content-Length", ENDLESS_LENGTH.decode("ascii")),
            ("SSTPCORRELATIONID", f"{{{str(correlation_id).upper()}}}"),
        ],
    )
    return connection, connection.send(request)


class ReplyReader:
    """Feeds received bytes to h11 until the reply headers are complete."""

    def __init__(self, connection: h11.Connection, host: str) -> None:
        self._connection = connection
        self._host = host

    def feed(self, data: bytes) -> HttpReply | None:
        """None while the headers are incomplete; raises HttpRefused for anything but a usable 200."""
        if not data:  # end of stream before the reply; h11 would call it a protocol error
            raise HttpRefused(
                _(
                    "The server {host} closed the connection instead of answering the SSTP request: "
                    "it may not be an SSTP server, or SSTP may be disabled on it."
                ).format(host=self._host)
            )
        connection = self._connection
        connection.receive_data(data)
        try:
            event = connection.next_event()
            while isinstance(event, h11.InformationalResponse):
                event = connection.next_event()
            if event is h11.NEED_DATA:
                return None
            assert isinstance(event, h11.Response)
        except h11.RemoteProtocolError as error:
            raise HttpRefused(
                _("The server {host} sent a malformed HTTP reply to the SSTP request ({error}): it may not be an SSTP server.").format(
                    host=self._host, error=error
                )
            ) from None
        reason = event.reason.decode("latin-1", "replace")
        http_version = event.http_version.decode("latin-1")
        if event.status_code != 200:
            raise HttpRefused(
                _(
                    "The server {host} refused the SSTP request with HTTP {status} {reason}: "
                    "check the server name and port, and that SSTP is enabled on the server."
                ).format(host=self._host, status=event.status_code, reason=reason),
                HttpReply(event.status_code, reason, b"", http_version),
            )
        headers = dict(event.headers)
        length = headers.get(b"content-length")
        if length is not None and length != ENDLESS_LENGTH:
            raise HttpRefused(
                _("The server {host} answered the SSTP request with a finite body (Content-Length {length}): it is not speaking SSTP.").format(
                    host=self._host, length=length.decode("latin-1")
                )
            )
        coding = headers.get(b"transfer-encoding")
        if coding is not None:  # h11 would decode the SSTP bytes as chunks
            raise HttpRefused(
                _("The server {host} answered the SSTP request with an encoded body (Transfer-Encoding {coding}): it is not speaking SSTP.").format(
                    host=self._host, coding=coding.decode("latin-1")
                )
            )
        # Bytes h11 already buffered past the headers belong to the SSTP stream.
        rest = bytearray()
        while isinstance(event := connection.next_event(), h11.Data):
            rest += event.data
        return HttpReply(200, reason, bytes(rest), http_version)
