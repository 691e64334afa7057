"""Named pipes between the SSTP VPN Windows service (sstp-vpn-helper.exe, LocalSystem) and the
unprivileged app: the listener the service serves on, the client's connect(), one connected end
(PipeStream), the pipes' security descriptors, and who the client at the other end is.

UNTESTED ON WINDOWS: runs under Wine 8 only (tests/windows/test_named_pipes.py); written against
the Win32 documentation of named pipes, overlapped I/O and access control.

Why it looks the way it does:
- Importable everywhere, like winapi.py: the pure parts (SID and SDDL checks, pipe names) are unit
  tested on Linux. The Windows modules (_winapi, winapi.py) are imported on Windows only, and the
  DLLs are loaded at first use.
- Who may open a pipe is decided by its security descriptor, built here from SDDL: owner SYSTEM, a
  protected DACL (nothing inherited), SYSTEM full control and the clients PIPE_CLIENT_ACCESS,
  which is read and write without FILE_CREATE_PIPE_INSTANCE: a client can never add a server
  instance of our pipe and so answer other clients in our place. The client opens the pipe asking
  for exactly PIPE_CLIENT_ACCESS, not GENERIC_WRITE (that maps to FILE_GENERIC_WRITE, which holds
  FILE_CREATE_PIPE_INSTANCE, and would be refused by our own DACL).
- Squatting: the listener creates its first instance with FILE_FLAG_FIRST_PIPE_INSTANCE, so it fails
  when another process already owns the name, and checks that every instance it creates has the
  owner our descriptor names (a second line of defence: Wine 8, for one, ignores the flag). The
  client checks owner_sid() is SYSTEM before it trusts the server, and opens with
  SECURITY_IDENTIFICATION: the server may find out who we are, never act as us.
  PIPE_REJECT_REMOTE_CLIENTS keeps other machines out.
- Blocking calls must be interruptible (close() from another thread, timeouts, Ctrl+C), so every
  read, write and connect is overlapped I/O (the standard library's _winapi, as
  multiprocessing.connection uses it) and we wait on the operation's event together with the
  stream's own "closed" event. An operation we stop waiting for is cancelled (CancelIoEx) and
  waited for before its buffer may go.
- A handle is closed by whoever is last: close() while another thread is inside a read leaves the
  CloseHandle to that thread, so no thread ever uses a handle number Windows may already have
  handed out again.
- Message mode reads whole messages; a zero-length message would look like the end of the stream,
  so write() refuses one and read() skips one.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import re
import sys
import threading
import time
from ctypes import POINTER, Structure, byref, c_int32, c_uint32, c_void_p, c_wchar_p
from dataclasses import dataclass
from typing import Any

from sstpvpn.client.core.i18n import _
from sstpvpn.platform.errors import PlatformError

if sys.platform == "win32":
    import _winapi

    from sstpvpn.platform import winapi
else:  # the pure parts work everywhere; everything that talks to Windows calls _require_windows() first
    _winapi: Any = None
    winapi: Any = None

log = logging.getLogger(__name__)

CONTROL_PIPE_NAME = r"\\.\pipe\sstp-vpn-helper"
RELAY_PIPE_PREFIX = r"\\.\pipe\sstp-vpn-relay-"  # + a 32-hex-digit token
PIPE_PREFIX = "\\\\.\\pipe\\"

LOCAL_SYSTEM_SID = "S-1-5-18"
INTERACTIVE_SID = "S-1-5-4"
USERS_SID = "S-1-5-32-545"

# FILE_GENERIC_READ (0x120089) | FILE_GENERIC_WRITE (0x120116) without FILE_APPEND_DATA, which on a
# pipe is FILE_CREATE_PIPE_INSTANCE (0x4): a client must never be able to create a server instance.
FILE_CREATE_PIPE_INSTANCE = 0x4
PIPE_CLIENT_ACCESS = 0x12019B

# Windows' values (winbase.h, winnt.h, winerror.h).
PIPE_ACCESS_DUPLEX = 0x3
FILE_FLAG_FIRST_PIPE_INSTANCE = 0x00080000
FILE_FLAG_OVERLAPPED = 0x40000000
PIPE_TYPE_BYTE = 0x0
PIPE_TYPE_MESSAGE = 0x4
PIPE_READMODE_BYTE = 0x0
PIPE_READMODE_MESSAGE = 0x2
PIPE_WAIT = 0x0
PIPE_REJECT_REMOTE_CLIENTS = 0x8
PIPE_UNLIMITED_INSTANCES = 255
OPEN_EXISTING = 3
SECURITY_SQOS_PRESENT = 0x00100000
SECURITY_IDENTIFICATION = 0x00010000  # SecurityIdentification << 16

ERROR_FILE_NOT_FOUND = 2
ERROR_ACCESS_DENIED = 5
ERROR_BROKEN_PIPE = 109
ERROR_SEM_TIMEOUT = 121
ERROR_INSUFFICIENT_BUFFER = 122
ERROR_PIPE_BUSY = 231
ERROR_NO_DATA = 232  # the pipe is being closed
ERROR_PIPE_NOT_CONNECTED = 233
ERROR_MORE_DATA = 234
ERROR_PIPE_CONNECTED = 535
ERROR_OPERATION_ABORTED = 995
ERROR_IO_PENDING = 997

WAIT_OBJECT_0 = 0
WAIT_TIMEOUT = 0x102
INFINITE = 0xFFFFFFFF

SE_KERNEL_OBJECT = 6
OWNER_SECURITY_INFORMATION = 0x1
DACL_SECURITY_INFORMATION = 0x4
SDDL_REVISION_1 = 1
TOKEN_QUERY = 0x8
TOKEN_USER_CLASS = 1  # TOKEN_INFORMATION_CLASS TokenUser

BUFFER_SIZE = 65536  # the pipe's in and out buffers, a hint to Windows
DISCARD_CHUNK = 65536
BUSY_RETRY_SECONDS = 0.1  # accept() while every allowed instance is in use

# Errors that mean the other end has gone (or is going): a read ends with b"", a write with BrokenPipeError.
_ENDED = frozenset({ERROR_BROKEN_PIPE, ERROR_PIPE_NOT_CONNECTED, ERROR_NO_DATA})

_SID_PATTERN = re.compile(r"S-1-([0-9]{1,15})((?:-[0-9]{1,10}){1,15})")
_TOKEN_PATTERN = re.compile(r"[0-9a-f]{32}")


# -- the pure parts ----------------------------------------------------------------------


def check_sid(value: str) -> str:
    """`value` when it is a string SID (S-1-<authority>-<sub-authority>..., 1 to 15 sub-authorities,
    decimal, each in range); else PlatformError. It goes into SDDL text, so nothing else may pass."""
    match = _SID_PATTERN.fullmatch(value) if isinstance(value, str) else None
    if match is not None:
        authority = int(match.group(1))
        parts = [int(part) for part in match.group(2).split("-")[1:]]
        if authority < 2**48 and all(part < 2**32 for part in parts):
            return value
    raise PlatformError(_("{value} is not a Windows security identifier (a SID looks like S-1-5-32-545).").format(value=repr(value)))


def _pipe_sddl(sid: str) -> str:
    return f"O:SYD:P(A;;GA;;;SY)(A;;{PIPE_CLIENT_ACCESS:#x};;;{check_sid(sid)})"


def control_pipe_sddl(allowed_group_sid: str) -> str:
    """The service's control pipe: owner SYSTEM, protected DACL, SYSTEM full control, members of
    the group read and write (PIPE_CLIENT_ACCESS)."""
    return _pipe_sddl(allowed_group_sid)


def relay_pipe_sddl(user_sid: str) -> str:
    """A relay pipe for one session: as the control pipe, but only that one user may open it."""
    return _pipe_sddl(user_sid)


def relay_pipe_name(token: str) -> str:
    """The relay pipe of a session, named by its 32-lowercase-hex-digit token."""
    if not isinstance(token, str) or _TOKEN_PATTERN.fullmatch(token) is None:
        raise PlatformError(_("{token} is not a relay pipe token (32 lowercase hexadecimal digits).").format(token=repr(token)))
    return RELAY_PIPE_PREFIX + token


def _check_pipe_name(name: str) -> None:
    rest = name[len(PIPE_PREFIX) :] if name.startswith(PIPE_PREFIX) else ""
    if not rest or len(name) > 256 or "\\" in rest or not rest.isprintable():
        raise PlatformError(
            _("{name} is not a local pipe name ({prefix} and a name of at most 256 characters in all).").format(name=repr(name), prefix=PIPE_PREFIX)
        )


@dataclass(frozen=True)
class ClientIdentity:
    """Who is at the other end of a server's stream."""

    process_id: int
    user_sid: str
    interactive: bool  # the client's token holds S-1-5-4 (enabled): a user logged on at this machine
    in_group: bool  # the client's token holds the group client_identity() was asked about (enabled)


# -- Windows: libraries ------------------------------------------------------------------


class SECURITY_ATTRIBUTES(Structure):
    _fields_ = [("nLength", c_uint32), ("lpSecurityDescriptor", c_void_p), ("bInheritHandle", c_int32)]


class SID_AND_ATTRIBUTES(Structure):
    _fields_ = [("Sid", c_void_p), ("Attributes", c_uint32)]


class TOKEN_USER(Structure):
    _fields_ = [("User", SID_AND_ATTRIBUTES)]


# Prototypes as in winapi.py: BOOL is c_int32, HANDLE/PSID/PSECURITY_DESCRIPTOR are c_void_p.
# Strings Windows allocates come back as c_void_p (read with wstring_at, then LocalFree).
ADVAPI32_PROTOTYPES: dict[str, tuple[Any, list[Any]]] = {
    # (StringSecurityDescriptor, StringSDRevision, *SecurityDescriptor out, *Size out or NULL)
    "ConvertStringSecurityDescriptorToSecurityDescriptorW": (c_int32, [c_wchar_p, c_uint32, POINTER(c_void_p), POINTER(c_uint32)]),
    # (SecurityDescriptor, RequestedStringSDRevision, SecurityInformation, *String out, *Length out or NULL)
    "ConvertSecurityDescriptorToStringSecurityDescriptorW": (c_int32, [c_void_p, c_uint32, c_uint32, POINTER(c_void_p), POINTER(c_uint32)]),
    # (handle, ObjectType, SecurityInfo, *Owner, *Group, *Dacl, *Sacl, *SecurityDescriptor) -> error code
    "GetSecurityInfo": (c_uint32, [c_void_p, c_int32, c_uint32] + [POINTER(c_void_p)] * 5),
    # (SecurityDescriptor, *Owner out, *OwnerDefaulted out)
    "GetSecurityDescriptorOwner": (c_int32, [c_void_p, POINTER(c_void_p), POINTER(c_int32)]),
    "ConvertSidToStringSidW": (c_int32, [c_void_p, POINTER(c_void_p)]),
    "ConvertStringSidToSidW": (c_int32, [c_wchar_p, POINTER(c_void_p)]),
    "ImpersonateNamedPipeClient": (c_int32, [c_void_p]),
    "RevertToSelf": (c_int32, []),
    # (ThreadHandle, DesiredAccess, OpenAsSelf, *TokenHandle out)
    "OpenThreadToken": (c_int32, [c_void_p, c_uint32, c_int32, POINTER(c_void_p)]),
    # (TokenHandle, TokenInformationClass, TokenInformation, Length, *ReturnLength out)
    "GetTokenInformation": (c_int32, [c_void_p, c_int32, c_void_p, c_uint32, POINTER(c_uint32)]),
    # (ProcessHandle, DesiredAccess, *TokenHandle out)
    "OpenProcessToken": (c_int32, [c_void_p, c_uint32, POINTER(c_void_p)]),
    # (TokenHandle, SidToCheck, *IsMember out)
    "CheckTokenMembership": (c_int32, [c_void_p, c_void_p, POINTER(c_int32)]),
}

KERNEL32_PROTOTYPES: dict[str, tuple[Any, list[Any]]] = {
    # (lpEventAttributes, bManualReset, bInitialState, lpName) -> HANDLE or NULL
    "CreateEventW": (c_void_p, [c_void_p, c_int32, c_int32, c_wchar_p]),
    "SetEvent": (c_int32, [c_void_p]),
    "CloseHandle": (c_int32, [c_void_p]),
    "LocalFree": (c_void_p, [c_void_p]),
    "GetCurrentThread": (c_void_p, []),
    "GetCurrentProcess": (c_void_p, []),
    "GetNamedPipeClientProcessId": (c_int32, [c_void_p, POINTER(c_uint32)]),
}

_libraries: dict[str, Any] = {}
_libraries_lock = threading.Lock()


def _require_windows() -> None:
    if sys.platform != "win32":
        raise PlatformError(_("Named pipes of the SSTP VPN service exist on Windows only; this system is {system}.").format(system=sys.platform))


def _library(name: str, prototypes: dict[str, tuple[Any, list[Any]]]) -> Any:
    """advapi32 / kernel32 with our prototypes, loaded once (our own WinDLL objects, so the
    prototypes set here never change those winapi.py's callers use)."""
    _require_windows()
    with _libraries_lock:
        if name not in _libraries:
            _libraries[name] = winapi.load(winapi.system32_path(name), prototypes)
        return _libraries[name]


def _advapi32() -> Any:
    return _library("advapi32.dll", ADVAPI32_PROTOTYPES)


def _kernel32() -> Any:
    return _library("kernel32.dll", KERNEL32_PROTOTYPES)


def _windows_error(what: str, code: int | None = None) -> OSError:
    """An OSError for a failed call, its subclass chosen by Windows' error code (5 gives PermissionError)."""
    code = _kernel32().last_error() if code is None else code
    # Translators: {function} is the name of a Windows function, {reason} Windows' error
    return OSError(None, _("{function} failed ({reason})").format(function=what, reason=winapi.describe_error(code)), None, code)


# -- Windows: security descriptors and SIDs ----------------------------------------------


def _local_free(pointer: int | None) -> None:
    if pointer:
        _kernel32().LocalFree(pointer)


def sid_string(sid: int | None) -> str:
    """A SID in memory (not freed here) as text."""
    text = c_void_p()
    if not sid or not _advapi32().ConvertSidToStringSidW(sid, byref(text)):
        raise _windows_error("ConvertSidToStringSidW")
    try:
        return ctypes.wstring_at(text.value or 0)
    finally:
        _local_free(text.value)


def _token_has(token: int, sid_text: str) -> bool:
    """CheckTokenMembership: `token` holds the SID, enabled (a deny-only group does not count)."""
    sid = c_void_p()
    if not _advapi32().ConvertStringSidToSidW(check_sid(sid_text), byref(sid)):
        raise _windows_error(f"ConvertStringSidToSidW({sid_text})")
    try:
        member = c_int32()
        if not _advapi32().CheckTokenMembership(token, sid, byref(member)):
            raise _windows_error("CheckTokenMembership")
        return bool(member.value)
    finally:
        _local_free(sid.value)


class SecurityDescriptor:
    """A self-relative security descriptor made from SDDL, and SECURITY_ATTRIBUTES pointing at
    it (kept alive here: every pipe instance the listener creates is made with them; the service
    also makes its folder with one). free() releases it."""

    def __init__(self, sddl: str) -> None:
        pointer = c_void_p()
        if not _advapi32().ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, byref(pointer), None):
            raise PlatformError(
                _("Windows refused the security descriptor {sddl} ({reason}).").format(
                    sddl=repr(sddl), reason=winapi.describe_error(_kernel32().last_error())
                )
            )
        self.pointer: int | None = pointer.value
        self.attributes = SECURITY_ATTRIBUTES(ctypes.sizeof(SECURITY_ATTRIBUTES), self.pointer, 0)

    def owner_sid(self) -> str:
        owner, defaulted = c_void_p(), c_int32()
        if not _advapi32().GetSecurityDescriptorOwner(self.pointer, byref(owner), byref(defaulted)):
            raise _windows_error("GetSecurityDescriptorOwner")
        return sid_string(owner.value)

    def address(self) -> int:
        return ctypes.addressof(self.attributes)

    def free(self) -> None:
        pointer, self.pointer = self.pointer, None
        _local_free(pointer)


def _object_security(handle: int) -> tuple[str, str]:
    """(owner SID or "" when it has none, owner and DACL as SDDL) of a kernel object, read back from Windows."""
    owner, descriptor = c_void_p(), c_void_p()
    information = OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION
    error = _advapi32().GetSecurityInfo(handle, SE_KERNEL_OBJECT, information, byref(owner), None, None, None, byref(descriptor))
    if error:
        raise _windows_error("GetSecurityInfo", error)
    try:
        text = c_void_p()
        if not _advapi32().ConvertSecurityDescriptorToStringSecurityDescriptorW(descriptor, SDDL_REVISION_1, information, byref(text), None):
            raise _windows_error("ConvertSecurityDescriptorToStringSecurityDescriptorW")
        try:
            sddl = ctypes.wstring_at(text.value or 0)
        finally:
            _local_free(text.value)
        # The owner points into the descriptor: read it before freeing that. A pipe made without a
        # security descriptor may have no owner at all (seen under Wine): "".
        return (sid_string(owner.value) if owner.value else ""), sddl
    finally:
        _local_free(descriptor.value)


# -- Windows: waiting ----------------------------------------------------------------------


def _milliseconds_until(deadline: float | None) -> int:
    if deadline is None:
        return INFINITE
    return max(0, math.ceil((deadline - time.monotonic()) * 1000))


def _abandon(overlapped: Any) -> None:
    """Cancel an operation and wait until Windows no longer uses its buffer."""
    try:
        overlapped.cancel()
        overlapped.GetOverlappedResult(True)
    except OSError:
        pass


class _Closable:
    """A handle (or a few) that close() may release while another thread is blocked on it.

    Every operation runs between _enter() and _leave(); close() sets the manual-reset `closed`
    event, which wakes every wait, and releases the handles only when no operation is inside;
    otherwise the last one to leave does."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self._closed = False
        event = _kernel32().CreateEventW(None, True, False, None)  # manual reset, not set
        if not event:
            raise _windows_error("CreateEventW")
        self._closed_event: int = event

    @property
    def closed(self) -> bool:
        return self._closed

    def _enter(self) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._inside += 1
            return True

    def _leave(self) -> None:
        with self._lock:
            self._inside -= 1
            last = self._closed and self._inside == 0
        if last:
            self._release_all()

    def close(self) -> None:
        """Idempotent and thread-safe; an operation blocked in another thread returns promptly."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            _kernel32().SetEvent(self._closed_event)
            nobody_inside = self._inside == 0
        if nobody_inside:
            self._release_all()

    def _release_all(self) -> None:
        try:
            self._release()
        finally:
            _kernel32().CloseHandle(self._closed_event)

    def _release(self) -> None:
        raise NotImplementedError

    def _await(self, overlapped: Any, deadline: float | None, *, pending: bool = True) -> tuple[int, int] | None:
        """Wait for an overlapped operation: (bytes transferred, 0 or ERROR_MORE_DATA) once it has
        completed, None when close() came first, TimeoutError at the deadline; OSError when it
        failed. An operation that completes while we give up on it still counts (its data would
        otherwise be lost)."""
        stopped_by = ""
        if pending:
            try:
                while True:
                    try:
                        index = _winapi.WaitForMultipleObjects([overlapped.event, self._closed_event], False, _milliseconds_until(deadline))
                    except InterruptedError:
                        # Ctrl+C on the main thread: Python's handler runs now (KeyboardInterrupt
                        # leaves through the cancel below); if it does not raise, wait on.
                        continue
                    if index == WAIT_OBJECT_0:
                        break
                    if index in (WAIT_OBJECT_0 + 1, WAIT_TIMEOUT):
                        stopped_by = "close" if index == WAIT_OBJECT_0 + 1 else "timeout"
                        overlapped.cancel()
                        break
                    # Translators: {function} is the name of a Windows function, {result} the number it returned
                    raise OSError(_("{function} returned {result:#x}").format(function="WaitForMultipleObjects", result=index))
            except BaseException:
                _abandon(overlapped)
                raise
        transferred, error = overlapped.GetOverlappedResult(True)  # raises OSError for a failed operation
        if error == ERROR_OPERATION_ABORTED:
            if stopped_by == "timeout":
                raise TimeoutError(_("the pipe operation did not complete in the time allowed"))
            return None
        return transferred, error

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# -- Windows: a connected end ---------------------------------------------------------------


class PipeStream(_Closable):
    """One connected end of a pipe, server or client. One thread may read while another writes;
    two concurrent reads (or writes) on one stream are not supported."""

    def __init__(self, handle: int, *, message_mode: bool, server: bool, name: str) -> None:
        super().__init__()
        self._handle = handle
        self._message_mode = message_mode
        self._server = server
        self.name = name

    def _release(self) -> None:
        # No DisconnectNamedPipe: it would discard what the other end has not read yet.
        _winapi.CloseHandle(self._handle)

    # -- data --

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Message mode: one whole message, cut to its first max_bytes bytes (the rest of it is
        read and dropped; pass limit + 1 to see "too long"). Byte mode: 1 to max_bytes bytes.
        b"" when the other end has closed or this stream is closed (also during the read);
        TimeoutError after `timeout` seconds without data."""
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._enter():
            return b""
        try:
            while True:
                result = self._read_once(max_bytes, deadline)
                if result is None:
                    return b""
                data, more = result
                if more and not self._discard_rest_of_message():
                    return b""
                if data:
                    return data
                # An empty message (or an empty byte-mode write) carries nothing: wait for the next.
        finally:
            self._leave()

    def _read_once(self, size: int, deadline: float | None) -> tuple[bytes, bool] | None:
        """One ReadFile: (data, the message goes on), None at the end of the stream."""
        try:
            overlapped, started = _winapi.ReadFile(self._handle, size, overlapped=True)
            result = self._await(overlapped, deadline, pending=started == ERROR_IO_PENDING)
        except TimeoutError:
            raise
        except OSError as error:
            if getattr(error, "winerror", None) in _ENDED:
                return None
            raise
        if result is None:
            return None
        return bytes(overlapped.getbuffer() or b""), result[1] == ERROR_MORE_DATA

    def _discard_rest_of_message(self) -> bool:
        """Read and drop what is left of an oversized message; False when the stream ended meanwhile."""
        while True:
            result = self._read_once(DISCARD_CHUNK, None)
            if result is None:
                return False
            if not result[1]:
                return True

    def write(self, data: bytes) -> None:
        """All of `data` (message mode: as one message). BrokenPipeError when the other end is
        gone or this stream is closed (also during the write)."""
        data = bytes(data)
        if self._message_mode and not data:
            raise ValueError("an empty message cannot be told from the end of the stream")
        if not self._enter():
            raise BrokenPipeError(_("the pipe {name} is closed").format(name=self.name))
        try:
            sent = 0
            while sent < len(data):
                chunk = data[sent:]
                written = self._write_once(chunk)
                if self._message_mode and written != len(chunk):
                    raise OSError(
                        _("Windows wrote {written} of the {total} bytes of a message to {name}").format(
                            written=written, total=len(chunk), name=self.name
                        )
                    )
                if written == 0:
                    raise OSError(_("Windows wrote nothing to {name}").format(name=self.name))
                sent += written
        finally:
            self._leave()

    def _write_once(self, chunk: bytes) -> int:
        try:
            overlapped, started = _winapi.WriteFile(self._handle, chunk, overlapped=True)
            result = self._await(overlapped, None, pending=started == ERROR_IO_PENDING)
        except OSError as error:
            if getattr(error, "winerror", None) in _ENDED:
                raise BrokenPipeError(_("the other end of {name} has closed").format(name=self.name)) from error
            raise
        if result is None:
            raise BrokenPipeError(_("the pipe {name} was closed").format(name=self.name))
        return result[0]

    # -- who is at the other end --

    def _handle_in_use(self) -> int:
        if not self._enter():
            raise BrokenPipeError(_("the pipe {name} is closed").format(name=self.name))
        return self._handle

    def client_process_id(self) -> int:
        """The client's process id (server end only)."""
        self._server_only("client_process_id")
        handle = self._handle_in_use()
        try:
            process_id = c_uint32()
            if not _kernel32().GetNamedPipeClientProcessId(handle, byref(process_id)):
                raise _windows_error("GetNamedPipeClientProcessId")
            return process_id.value
        finally:
            self._leave()

    def client_identity(self, group_sid: str) -> ClientIdentity:
        """The client's process, user and memberships (server end only), from its token, which
        we see by impersonating the client just long enough to open it. Call it after the first
        message has been read: older Windows documentation says impersonation fails before
        (ERROR_CANNOT_IMPERSONATE); the Wine tests do it that way too."""
        self._server_only("client_identity")
        check_sid(group_sid)
        handle = self._handle_in_use()
        try:
            process_id = self.client_process_id()
            token = self._client_token(handle)
            try:
                return ClientIdentity(
                    process_id=process_id,
                    user_sid=_token_user(token),
                    interactive=_token_has(token, INTERACTIVE_SID),
                    in_group=_token_has(token, group_sid),
                )
            finally:
                _kernel32().CloseHandle(token)
        finally:
            self._leave()

    def _client_token(self, handle: int) -> int:
        advapi32, kernel32 = _advapi32(), _kernel32()
        if not advapi32.ImpersonateNamedPipeClient(handle):
            raise _windows_error("ImpersonateNamedPipeClient")
        try:
            token = c_void_p()
            # OpenAsSelf: the access check is made as the service, not as the client.
            if not advapi32.OpenThreadToken(kernel32.GetCurrentThread(), TOKEN_QUERY, True, byref(token)):
                raise _windows_error("OpenThreadToken")
            assert token.value is not None
            return token.value
        finally:
            if not advapi32.RevertToSelf():
                # This thread would go on with the client's identity, and whatever it did next would
                # be done as the client (or, at identification level, fail in ways nobody expects).
                # SystemExit would only end this thread; ending the process is the safe answer.
                log.critical(
                    "RevertToSelf failed (%s): the service stops.",  # not translated: the service's own log, for administrators
                    winapi.describe_error(kernel32.last_error()),
                )
                os._exit(70)

    def owner_sid(self) -> str:
        """The pipe's owner ("" if it has none). A client trusts a server only if this is
        LOCAL_SYSTEM_SID: an ordinary process squatting on the name cannot make SYSTEM the owner
        of its pipe."""
        handle = self._handle_in_use()
        try:
            return _object_security(handle)[0]
        finally:
            self._leave()

    def security_sddl(self) -> str:
        """The pipe's owner and DACL as SDDL, as Windows reports them."""
        handle = self._handle_in_use()
        try:
            return _object_security(handle)[1]
        finally:
            self._leave()

    def _server_only(self, what: str) -> None:
        if not self._server:
            raise ValueError(f"{what}() is for the server end of a pipe")


def process_user_sid() -> str:
    """The user this process runs as (the service: SYSTEM; under Wine: Wine's one user)."""
    advapi32, kernel32 = _advapi32(), _kernel32()
    token = c_void_p()
    if not advapi32.OpenProcessToken(kernel32.GetCurrentProcess(), TOKEN_QUERY, byref(token)):
        raise _windows_error("OpenProcessToken")
    assert token.value is not None
    try:
        return _token_user(token.value)
    finally:
        kernel32.CloseHandle(token)


def _token_user(token: int) -> str:
    advapi32 = _advapi32()
    needed = c_uint32()
    advapi32.GetTokenInformation(token, TOKEN_USER_CLASS, None, 0, byref(needed))  # fails, saying the size
    if not needed.value:
        raise _windows_error("GetTokenInformation(TokenUser)")
    buffer = ctypes.create_string_buffer(needed.value)
    if not advapi32.GetTokenInformation(token, TOKEN_USER_CLASS, buffer, needed.value, byref(needed)):
        raise _windows_error("GetTokenInformation(TokenUser)")
    return sid_string(ctypes.cast(buffer, POINTER(TOKEN_USER)).contents.User.Sid)


# -- Windows: the server's listener -----------------------------------------------------------


class PipeListener(_Closable):
    """The server side of a pipe name: accept() hands out one connected PipeStream per client.

    One instance always waits for the next client, except while max_instances clients are
    connected: then the name lives on through their instances only, and once they have all
    closed it is gone until accept() makes a new instance (a waiting accept() tries every
    BUSY_RETRY_SECONDS)."""

    def __init__(self, name: str, sddl: str, *, message_mode: bool, max_instances: int = PIPE_UNLIMITED_INSTANCES) -> None:
        _check_pipe_name(name)
        if not 1 <= max_instances <= PIPE_UNLIMITED_INSTANCES:
            raise ValueError("max_instances must be 1 to 255")
        _require_windows()
        super().__init__()
        self.name = name
        self._message_mode = message_mode
        self._max_instances = max_instances
        self._instance: int | None = None  # the instance waiting for the next client
        self._security: SecurityDescriptor | None = None
        try:
            self._security = SecurityDescriptor(sddl)
            self._owner = self._security.owner_sid()
            self._instance = self._create_instance(first=True)
        except BaseException:
            self.close()
            raise

    def _create_instance(self, *, first: bool) -> int:
        assert self._security is not None
        open_mode = PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | (FILE_FLAG_FIRST_PIPE_INSTANCE if first else 0)
        kind = PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE if self._message_mode else PIPE_TYPE_BYTE | PIPE_READMODE_BYTE
        pipe_mode = kind | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS
        try:
            handle = _winapi.CreateNamedPipe(
                self.name, open_mode, pipe_mode, self._max_instances, BUFFER_SIZE, BUFFER_SIZE, 0, self._security.address()
            )
        except OSError as error:
            # With FILE_FLAG_FIRST_PIPE_INSTANCE, a name that exists gives ERROR_ACCESS_DENIED (or
            # ERROR_PIPE_BUSY when that pipe has all the instances it allows).
            if first and getattr(error, "winerror", None) in (ERROR_ACCESS_DENIED, ERROR_PIPE_BUSY):
                raise PlatformError(self._squatted_sentence()) from error
            raise
        try:
            # An instance joins whatever pipe has the name: a later one, if ours had gone (every
            # instance closed) and another process took the name; the first one too where
            # FILE_FLAG_FIRST_PIPE_INSTANCE is not enforced (Wine 8 ignores it). Another process's
            # pipe has another owner: no ordinary process can make SYSTEM the owner of its pipe.
            owner = _object_security(handle)[0]
        except BaseException:
            _winapi.CloseHandle(handle)
            raise
        if owner != self._owner:
            _winapi.CloseHandle(handle)
            raise PlatformError(self._squatted_sentence())
        return handle

    def _squatted_sentence(self) -> str:
        return _(
            "Another program already has the pipe {name}: SSTP VPN's service is running twice, or something is posing as it. "
            "Restart the computer; if this comes back, look for unknown software."
        ).format(name=self.name)

    def accept(self, timeout: float | None = None) -> PipeStream | None:
        """The next client, connected (and the next instance made ready); None when the listener
        is closed (also from another thread during the wait) or after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._enter():
            return None
        try:
            while True:
                if self._instance is None:
                    try:
                        self._instance = self._create_instance(first=False)
                    except OSError as error:
                        if getattr(error, "winerror", None) != ERROR_PIPE_BUSY:
                            raise
                        # Every instance allowed is connected: try again when one may have closed.
                        if self._wait_for_close(BUSY_RETRY_SECONDS, deadline):
                            return None
                        continue
                instance = self._instance
                try:
                    overlapped = _winapi.ConnectNamedPipe(instance, overlapped=True)  # its event is set at once if a client is already there
                    connected = self._await(overlapped, deadline) is not None
                except TimeoutError:
                    return None
                except OSError as error:
                    code = getattr(error, "winerror", None)
                    if code == ERROR_PIPE_CONNECTED:
                        connected = True
                    elif code == ERROR_NO_DATA:
                        # A client came and went before we looked: this instance is spent. The new one
                        # first, so the name never goes unowned.
                        self._instance = None
                        try:
                            self._instance = self._create_instance(first=False)
                        finally:
                            _winapi.CloseHandle(instance)
                        continue
                    else:
                        raise
                if not connected:
                    return None  # closed
                self._instance = None
                try:
                    stream = PipeStream(instance, message_mode=self._message_mode, server=True, name=self.name)
                except BaseException:
                    _winapi.CloseHandle(instance)
                    raise
                try:
                    self._instance = self._create_instance(first=False)
                except (OSError, PlatformError) as error:
                    # The client is connected and gets served; the next accept() tries again (and
                    # raises, if the reason lasts). Busy: max_instances clients are connected.
                    busy = getattr(error, "winerror", None) == ERROR_PIPE_BUSY
                    log.log(logging.DEBUG if busy else logging.WARNING, "The next instance of %s could not be made yet: %s", self.name, error)
                return stream
        finally:
            self._leave()

    def _wait_for_close(self, seconds: float, deadline: float | None) -> bool:
        """Sleep up to `seconds` (not past the deadline); True when closed or the deadline passed."""
        limit = time.monotonic() + seconds
        if deadline is not None:
            limit = min(limit, deadline)
        if _winapi.WaitForSingleObject(self._closed_event, _milliseconds_until(limit)) == WAIT_OBJECT_0:
            return True
        return deadline is not None and time.monotonic() >= deadline

    def _release(self) -> None:
        instance, self._instance = self._instance, None
        if instance is not None:
            _winapi.CloseHandle(instance)
        if self._security is not None:
            self._security.free()


# -- Windows: the client -----------------------------------------------------------------------


def pipe_exists(name: str) -> bool:
    """Whether a server has the pipe `name` open, without taking an instance from it (a check
    before connecting, so that the app can say the service is not running)."""
    _check_pipe_name(name)
    _require_windows()
    try:
        _winapi.WaitNamedPipe(name, 1)
    except OSError as error:
        return getattr(error, "winerror", None) == ERROR_SEM_TIMEOUT  # there, every instance busy
    return True


def connect(name: str, timeout: float, *, message_mode: bool) -> PipeStream:
    """Open a pipe as a client, waiting up to `timeout` seconds for a free instance.

    FileNotFoundError when there is no such pipe, PermissionError when its DACL keeps us out,
    TimeoutError when every instance stays busy. We ask for PIPE_CLIENT_ACCESS exactly (see the
    module doc), and allow the server only to identify us (SECURITY_IDENTIFICATION)."""
    _check_pipe_name(name)
    _require_windows()
    deadline = time.monotonic() + timeout
    flags = FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION
    while True:
        try:
            handle = _winapi.CreateFile(name, PIPE_CLIENT_ACCESS, 0, 0, OPEN_EXISTING, flags, 0)
            break
        except OSError as error:
            if getattr(error, "winerror", None) != ERROR_PIPE_BUSY:
                error.filename = name
                raise
        left = _milliseconds_until(deadline)
        if left <= 0:
            raise TimeoutError(_("every instance of the pipe {name} stayed busy").format(name=name))
        try:
            _winapi.WaitNamedPipe(name, left)  # never 0: that would mean "the pipe's default time"
        except OSError as error:
            if getattr(error, "winerror", None) == ERROR_SEM_TIMEOUT:
                raise TimeoutError(_("every instance of the pipe {name} stayed busy").format(name=name)) from error
            error.filename = name
            raise
    try:
        if message_mode:
            _winapi.SetNamedPipeHandleState(handle, PIPE_READMODE_MESSAGE, None, None)
        return PipeStream(handle, message_mode=message_mode, server=False, name=name)
    except BaseException:
        _winapi.CloseHandle(handle)
        raise
