"""The pure parts of platform/winpipe.py, on any system: SIDs, the pipes' SDDL, pipe names.
(The pipes themselves run under Wine: tests/windows/test_named_pipes.py.)"""

from __future__ import annotations

import sys

import pytest

from sstpvpn.platform import winpipe
from sstpvpn.platform.errors import PlatformError

FILE_GENERIC_READ = 0x120089
FILE_GENERIC_WRITE = 0x120116


def test_client_access_is_read_and_write_without_creating_pipe_instances():
    assert winpipe.PIPE_CLIENT_ACCESS == (FILE_GENERIC_READ | FILE_GENERIC_WRITE) & ~winpipe.FILE_CREATE_PIPE_INSTANCE
    assert not winpipe.PIPE_CLIENT_ACCESS & 0x4


def test_control_pipe_sddl_gives_system_everything_and_the_group_read_write():
    assert winpipe.control_pipe_sddl(winpipe.USERS_SID) == "O:SYD:P(A;;GA;;;SY)(A;;0x12019b;;;S-1-5-32-545)"
    assert winpipe.control_pipe_sddl("S-1-5-32-556") == "O:SYD:P(A;;GA;;;SY)(A;;0x12019b;;;S-1-5-32-556)"


def test_relay_pipe_sddl_names_the_one_user():
    user = "S-1-5-21-3623811015-3361044348-30300820-1013"
    assert winpipe.relay_pipe_sddl(user) == f"O:SYD:P(A;;GA;;;SY)(A;;0x12019b;;;{user})"


@pytest.mark.parametrize(
    "sid",
    [
        "S-1-5-18",
        "S-1-5-4",
        "S-1-5-32-545",
        "S-1-5-21-3623811015-3361044348-30300820-1013",
        "S-1-16-12288",  # a mandatory label
        "S-1-5-21-4294967295-1-2-3",  # the largest sub-authority
        "S-1-281474976710655-0",  # the largest identifier authority (48 bits)
        "S-1-5" + "-1" * 15,  # the most sub-authorities a SID may have
    ],
)
def test_check_sid_accepts_real_sids(sid):
    assert winpipe.check_sid(sid) == sid


@pytest.mark.parametrize(
    "value",
    [
        "",
        "S-1-5",  # no sub-authority
        "S-1-5-",
        "S-1-5-32-545)(A;;GA;;;WD)",  # would add an ACE for Everyone to the DACL
        "S-1-5-32-545;;;WD)",
        "S-1-5-32-545\n",
        " S-1-5-32-545",
        "s-1-5-32-545",
        "S-2-5-32-545",  # only revision 1 exists
        "S-1-5-32--545",
        "S-1-5-32-0x221",
        "S-1-5-32-545-",
        "BU",  # an SDDL alias is not a SID
        "WD",
        "S-1-5-21-4294967296",  # a sub-authority is 32 bits
        "S-1-281474976710656-1",  # the authority is 48 bits
        "S-1-5" + "-1" * 16,  # at most 15 sub-authorities
        "S-1-5-32-５４５",  # fullwidth digits are digits to str.isdigit, not to Windows
    ],
)
def test_check_sid_refuses_anything_else(value):
    with pytest.raises(PlatformError, match="is not a Windows security identifier"):
        winpipe.check_sid(value)


def test_check_sid_refuses_a_non_string():
    with pytest.raises(PlatformError):
        winpipe.check_sid(545)


@pytest.mark.parametrize("builder", [winpipe.control_pipe_sddl, winpipe.relay_pipe_sddl])
def test_sddl_builders_refuse_injection(builder):
    with pytest.raises(PlatformError):
        builder("S-1-5-32-545)(A;;GA;;;WD)")


def test_relay_pipe_name():
    token = "0123456789abcdef0123456789abcdef"
    assert winpipe.relay_pipe_name(token) == r"\\.\pipe\sstp-vpn-relay-0123456789abcdef0123456789abcdef"
    assert winpipe.relay_pipe_name(token).startswith(winpipe.RELAY_PIPE_PREFIX)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "0123456789abcdef0123456789abcde",  # 31 digits
        "0123456789abcdef0123456789abcdef0",  # 33
        "0123456789ABCDEF0123456789ABCDEF",  # upper case
        "0123456789abcdef0123456789abcdeg",
        "0123456789abcdef0123456789abcde\n",
        "0123456789abcdef0123456789abcdef\n",
        "..\\..\\pipe\\sstp-vpn-helperxxxxxx",
        "0123456789abcdef\\0123456789abcde",
    ],
)
def test_relay_pipe_name_refuses_other_tokens(token):
    with pytest.raises(PlatformError, match="is not a relay pipe token"):
        winpipe.relay_pipe_name(token)


def test_pipe_names():
    assert winpipe.CONTROL_PIPE_NAME == r"\\.\pipe\sstp-vpn-helper"
    assert winpipe.RELAY_PIPE_PREFIX == r"\\.\pipe\sstp-vpn-relay-"


@pytest.mark.skipif(sys.platform == "win32", reason="on Windows these would open pipes")
def test_elsewhere_the_pipe_calls_say_they_need_windows():
    with pytest.raises(PlatformError, match="Windows only"):
        winpipe.connect(winpipe.CONTROL_PIPE_NAME, 1, message_mode=True)
    with pytest.raises(PlatformError, match="Windows only"):
        winpipe.PipeListener(winpipe.CONTROL_PIPE_NAME, winpipe.control_pipe_sddl(winpipe.USERS_SID), message_mode=True)


@pytest.mark.parametrize("name", [r"\\server\pipe\x", r"\\.\pipe\\", r"\\.\pipe\a\b", "sstp-vpn-helper", r"\\.\pipe" + "\\x" * 200])
def test_only_local_pipe_names_are_taken(name):
    with pytest.raises(PlatformError, match="is not a local pipe name"):
        winpipe.connect(name, 1, message_mode=True)
