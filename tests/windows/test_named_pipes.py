"""platform/winpipe.py under Wine: the named pipes between the Windows service and the app.

One script, run once by the build's Windows Python (the installed app is not needed), plays every
scenario (server and client in threads of one process, and a second process where it matters:
the client whose identity is checked, the squatter) and prints one JSON object; each test
asserts one part of it.

What Wine 8 cannot judge (measured): it does not enforce a pipe's DACL (a client the DACL leaves
out, or one asking for GENERIC_WRITE, still gets in; a client can create another server instance)
and it ignores FILE_FLAG_FIRST_PIPE_INSTANCE. So PermissionError and the refusal of a second
listener of our own SDDL are not shown here; a squatter whose pipe has another owner is.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.windows.wine_env import run_windows_python

SCRIPT = r'''
import json, os, subprocess, sys, threading, time, traceback
from sstpvpn.platform import winpipe
from sstpvpn.platform.errors import PlatformError

SDDL = winpipe.control_pipe_sddl(winpipe.USERS_SID)
results = {}


def scenario(function):
    try:
        results[function.__name__] = function()
    except BaseException as error:
        results[function.__name__] = {"traceback": "".join(traceback.format_exception(error))}
    return function


def text(data):
    return data.decode("latin-1")


def pipe_name(label):
    return rf"\\.\pipe\sstp-vpn-test-{label}-{os.getpid()}"


def pair(label, message_mode, sddl=SDDL, **options):
    """(listener, server end, client end) of a new pipe."""
    name = pipe_name(label)
    listener = winpipe.PipeListener(name, sddl, message_mode=message_mode, **options)
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept(10)))
    thread.start()
    client = winpipe.connect(name, 5, message_mode=message_mode)
    thread.join(10)
    return listener, accepted[0], client


def in_thread(function):
    """Start function() in a thread; a box that gets "value" or "error", and "ended" (monotonic)."""
    box = {}
    def run():
        try:
            box["value"] = function()
        except BaseException as error:
            box["error"] = type(error).__name__
        box["ended"] = time.monotonic()
    box["thread"] = threading.Thread(target=run)
    box["thread"].start()
    return box


@scenario
def message_round_trip():
    listener, server, client = pair("messages", True)
    client.write(b"hello server")
    to_server = server.read(100, 5)
    server.write(b"hello client")
    to_client = client.read(100, 5)
    for index in range(3):
        client.write(b"message %d" % index)
    separate = [text(server.read(100, 5)) for _ in range(3)]
    try:
        client.write(b"")
        empty = "written"
    except ValueError:
        empty = "ValueError"
    for stream in (client, server, listener):
        stream.close()
    return {"to_server": text(to_server), "to_client": text(to_client), "separate": separate, "empty_message": empty}


@scenario
def oversized_message():
    limit = 16
    listener, server, client = pair("oversized", True)
    client.write(b"A" * 100)
    client.write(b"next")
    first, second = server.read(limit + 1, 5), server.read(limit + 1, 5)
    # Larger than the pipe's buffer: the writer waits for the reader, which drops it in chunks.
    big = in_thread(lambda: client.write(b"B" * 300_000))
    third = server.read(limit + 1, 10)
    big["thread"].join(10)
    client.write(b"after the big one")
    fourth = server.read(limit + 1, 5)
    exact = b"C" * (limit + 1)
    client.write(exact)
    fifth = server.read(limit + 1, 5)
    for stream in (client, server, listener):
        stream.close()
    return {
        "first": text(first), "second": text(second), "third": text(third), "fourth": text(fourth),
        "fifth": text(fifth), "big_write": big.get("error", "ok"),
    }


@scenario
def byte_stream():
    listener, server, client = pair("bytes", False)
    chunks = [(b"%05d|" % index) * (1 + index % 7) for index in range(1000)]
    expected = b"".join(chunks)
    writer = in_thread(lambda: [client.write(chunk) for chunk in chunks])
    received, reads, largest = bytearray(), 0, 0
    while len(received) < len(expected):
        data = server.read(4096, 10)
        if not data:
            break
        received += data
        reads += 1
        largest = max(largest, len(data))
    writer["thread"].join(10)
    client.close()
    at_end = server.read(4096, 5)
    server.close()
    listener.close()
    return {"same": bytes(received) == expected, "length": len(received), "expected": len(expected),
            "reads": reads, "largest": largest, "writer": writer.get("error", "ok"), "at_end": text(at_end)}


@scenario
def close_unblocks_read():
    listener, server, client = pair("close-read", True)
    reader = in_thread(lambda: server.read(100))
    time.sleep(0.3)
    closing = time.monotonic()
    server.close()
    reader["thread"].join(5)
    server.close()  # again: nothing happens
    after = {"read": text(server.read(100)), "closed": server.closed}
    try:
        server.write(b"x")
        after["write"] = "written"
    except BrokenPipeError:
        after["write"] = "BrokenPipeError"
    # The client sees the server's end go.
    after["client_read"] = text(client.read(100, 5))
    try:
        client.write(b"anyone there?")
        after["client_write"] = "written"
    except BrokenPipeError:
        after["client_write"] = "BrokenPipeError"
    client.close()
    listener.close()
    return {"value": text(reader.get("value", b"?")), "error": reader.get("error"),
            "seconds": reader["ended"] - closing, "still_blocked": reader["thread"].is_alive(), **after}


@scenario
def close_unblocks_write():
    # A message far larger than the pipe's buffer, nobody reading: the write waits (if Wine makes it).
    listener, server, client = pair("close-write", True)
    writer = in_thread(lambda: client.write(b"W" * 4_000_000))
    time.sleep(0.5)
    blocked = writer["thread"].is_alive()
    closing = time.monotonic()
    client.close()
    writer["thread"].join(5)
    server.close()
    listener.close()
    return {"blocked": blocked, "error": writer.get("error"), "seconds": writer["ended"] - closing}


@scenario
def read_timeout():
    listener, server, client = pair("timeout", True)
    started = time.monotonic()
    try:
        client.read(100, timeout=0.5)
        outcome = "returned"
    except TimeoutError:
        outcome = "TimeoutError"
    seconds = time.monotonic() - started
    server.write(b"still works")  # the stream goes on after a timeout, nothing lost
    later = client.read(100, 5)
    for stream in (client, server, listener):
        stream.close()
    return {"outcome": outcome, "seconds": seconds, "later": text(later)}


@scenario
def other_end_closes():
    listener, server, client = pair("other-end", True)
    server.write(b"last words")
    server.close()
    messages = [text(client.read(100, 5)), text(client.read(100, 5))]
    client.close()
    closed_read = text(client.read(100, 5))
    listener.close()
    return {"messages": messages, "closed_read": closed_read}


@scenario
def accept_waits():
    name = pipe_name("accept")
    listener = winpipe.PipeListener(name, SDDL, message_mode=True)
    started = time.monotonic()
    timed_out = listener.accept(timeout=0.3)
    timeout_seconds = time.monotonic() - started
    waiting = in_thread(lambda: listener.accept())
    time.sleep(0.3)
    closing = time.monotonic()
    listener.close()
    waiting["thread"].join(5)
    return {"timed_out": repr(timed_out), "timeout_seconds": timeout_seconds, "after_close": repr(waiting.get("value", "?")),
            "close_seconds": waiting["ended"] - closing, "accept_when_closed": repr(listener.accept(5))}


@scenario
def busy_instances():
    listener, server, client = pair("busy", True, max_instances=1)
    started = time.monotonic()
    try:
        winpipe.connect(listener.name, 0.5, message_mode=True)
        second = "connected"
    except TimeoutError:
        second = "TimeoutError"
    seconds = time.monotonic() - started
    # Once the one instance is closed, the name is gone until the waiting accept() makes a new
    # instance (it tries every 0.1 s): then the next client is served.
    server.close()
    client.close()
    accepted = in_thread(lambda: listener.accept(10))
    deadline = time.monotonic() + 5
    while True:
        try:
            third = winpipe.connect(listener.name, 5, message_mode=True)
            break
        except FileNotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    accepted["thread"].join(10)
    third.write(b"third")
    served = text(accepted["value"].read(100, 5))
    third.close()
    accepted["value"].close()
    listener.close()
    return {"second": second, "seconds": seconds, "served": served}


@scenario
def two_clients():
    name = pipe_name("two")
    listener = winpipe.PipeListener(name, SDDL, message_mode=True)
    ends = []
    for label in (b"one", b"two"):
        accepted = in_thread(lambda: listener.accept(10))
        client = winpipe.connect(name, 5, message_mode=True)
        accepted["thread"].join(10)
        ends.append((label, accepted["value"], client))
    for label, server, client in reversed(ends):
        client.write(label)
    heard = [text(server.read(100, 5)) for _, server, _ in ends]
    for _, server, client in ends:
        server.close()
        client.close()
    listener.close()
    return {"heard": heard}


@scenario
def security():
    listener, server, client = pair("security", True)
    result = {"asked": SDDL, "server_sddl": server.security_sddl(), "client_sddl": client.security_sddl(),
              "owner": client.owner_sid(), "server_owner": server.owner_sid()}
    for stream in (client, server, listener):
        stream.close()
    user = "S-1-5-21-1004336348-1177238915-682003330-512"
    listener, server, client = pair("relay", True, sddl=winpipe.relay_pipe_sddl(user))
    result["relay_asked"] = winpipe.relay_pipe_sddl(user)
    result["relay_sddl"] = client.security_sddl()
    for stream in (client, server, listener):
        stream.close()
    return result


CHILD_CLIENT = """
import os, sys
from sstpvpn.platform import winpipe
stream = winpipe.connect(sys.argv[1], 10, message_mode=True)
stream.write(str(os.getpid()).encode())
print(stream.read(100, 10).decode(), stream.owner_sid(), flush=True)
"""


@scenario
def client_identity():
    name = pipe_name("identity")
    listener = winpipe.PipeListener(name, SDDL, message_mode=True)
    child = subprocess.Popen([sys.executable, "-c", CHILD_CLIENT, name], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    server = listener.accept(30)
    told_pid = int(server.read(100, 30))
    identity = server.client_identity(winpipe.USERS_SID)
    other_group = server.client_identity("S-1-5-32-556")  # Network Configuration Operators
    system = server.client_identity(winpipe.LOCAL_SYSTEM_SID)
    process_id = server.client_process_id()
    server.write(b"bye")
    output, _ = child.communicate(timeout=30)
    server.close()
    listener.close()
    return {"identity": vars(identity), "other_group": vars(other_group), "system_group": system.in_group, "process_id": process_id,
            "child_pid": child.pid, "told_pid": told_pid, "server_pid": os.getpid(), "child_output": output.decode(errors="replace").strip()}


SQUATTER = """
import _winapi, sys
handle = _winapi.CreateNamedPipe(sys.argv[1], 3, 4, 255, 4096, 4096, 0, 0)  # duplex, message, default security
print("ready", flush=True)
sys.stdin.read()
"""


@scenario
def squatter():
    name = pipe_name("squatted")
    child = subprocess.Popen([sys.executable, "-c", SQUATTER, name], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ready = child.stdout.readline().decode().strip()
    try:
        winpipe.PipeListener(name, SDDL, message_mode=True)
        outcome = "listening"
    except PlatformError as error:
        outcome = "PlatformError: " + str(error)
    child.stdin.close()
    child.wait(30)
    return {"ready": ready, "outcome": outcome}


@scenario
def second_listener():
    name = pipe_name("twice")
    first = winpipe.PipeListener(name, SDDL, message_mode=True)
    try:
        winpipe.PipeListener(name, SDDL, message_mode=True).close()
        outcome = "listening"
    except PlatformError as error:
        outcome = "PlatformError: " + str(error)
    first.close()
    return {"outcome": outcome}


@scenario
def missing_pipe():
    try:
        winpipe.connect(r"\\.\pipe\sstp-vpn-test-nobody-listens", 2, message_mode=True)
        return {"outcome": "connected"}
    except OSError as error:
        return {"outcome": type(error).__name__, "text": str(error)}


print(json.dumps(results))
'''


@pytest.fixture(scope="module")
def results(wine, tmp_path_factory):
    output = run_windows_python(wine, SCRIPT, tmp_path_factory.mktemp("named-pipes"), timeout=300)
    return json.loads(output.strip().splitlines()[-1])


def scenario(results, name):
    result = results[name]
    assert "traceback" not in result, result["traceback"]
    return result


def test_messages_go_both_ways_whole(results):
    result = scenario(results, "message_round_trip")
    assert result["to_server"] == "hello server"
    assert result["to_client"] == "hello client"
    assert result["separate"] == ["message 0", "message 1", "message 2"]
    assert result["empty_message"] == "ValueError"


def test_an_oversized_message_is_cut_to_the_limit_and_the_next_one_is_intact(results):
    result = scenario(results, "oversized_message")
    assert result["first"] == "A" * 17
    assert result["second"] == "next"
    assert result["third"] == "B" * 17
    assert result["big_write"] == "ok"
    assert result["fourth"] == "after the big one"  # 17 characters: the limit, not more
    assert result["fifth"] == "C" * 17


def test_a_byte_stream_of_many_writes_reads_back_the_same(results):
    result = scenario(results, "byte_stream")
    assert result["writer"] == "ok"
    assert result["same"], result
    assert 1 <= result["largest"] <= 4096
    assert result["at_end"] == ""


def test_close_from_another_thread_unblocks_a_read(results):
    result = scenario(results, "close_unblocks_read")
    assert not result["still_blocked"]
    assert result["error"] is None
    assert result["value"] == ""
    assert result["seconds"] < 1
    assert result["read"] == "" and result["closed"] is True
    assert result["write"] == "BrokenPipeError"
    assert result["client_read"] == ""
    assert result["client_write"] == "BrokenPipeError"


def test_close_from_another_thread_unblocks_a_write(results):
    result = scenario(results, "close_unblocks_write")
    if not result["blocked"]:
        pytest.skip("Wine took the whole 4 MB message without a reader: a blocked write cannot be shown")
    assert result["error"] == "BrokenPipeError"
    assert result["seconds"] < 1


def test_a_read_times_out_and_the_stream_goes_on(results):
    result = scenario(results, "read_timeout")
    assert result["outcome"] == "TimeoutError"
    assert 0.4 <= result["seconds"] < 2
    assert result["later"] == "still works"


def test_the_other_end_closing_ends_the_stream_after_what_it_wrote(results):
    result = scenario(results, "other_end_closes")
    assert result["messages"] == ["last words", ""]
    assert result["closed_read"] == ""


def test_accept_times_out_and_close_unblocks_it(results):
    result = scenario(results, "accept_waits")
    assert result["timed_out"] == "None"
    assert 0.2 <= result["timeout_seconds"] < 2
    assert result["after_close"] == "None"
    assert result["close_seconds"] < 1
    assert result["accept_when_closed"] == "None"


def test_every_instance_busy_gives_timeout_and_a_freed_instance_serves_again(results):
    result = scenario(results, "busy_instances")
    assert result["second"] == "TimeoutError"
    assert 0.4 <= result["seconds"] < 2
    assert result["served"] == "third"


def test_each_client_has_its_own_stream(results):
    assert scenario(results, "two_clients")["heard"] == ["one", "two"]


# -- security descriptors ------------------------------------------------------------------

SID_ALIASES = {"SY": "S-1-5-18", "BU": "S-1-5-32-545", "BA": "S-1-5-32-544", "WD": "S-1-1-0", "IU": "S-1-5-4"}
# Rights as SDDL names them; generic rights mapped as Windows maps them for files and pipes (the
# kernel may store either form).
RIGHTS = {
    "GA": 0x1F01FF,
    "GR": 0x120089,
    "GW": 0x120116,
    "GX": 0x1200A0,
    "FA": 0x1F01FF,
    "FR": 0x120089,
    "FW": 0x120116,
    "FX": 0x1200A0,
    "RC": 0x20000,
    "SD": 0x10000,
    "WD": 0x40000,
    "WO": 0x80000,
}
GENERIC_BITS = {0x10000000: "GA", 0x80000000: "GR", 0x40000000: "GW", 0x20000000: "GX"}


def rights(text: str) -> int:
    if text.lower().startswith("0x"):
        value = int(text, 16)
        mask = 0
        for bit, name in GENERIC_BITS.items():
            if value & bit:
                value &= ~bit
                mask |= RIGHTS[name]
        return value | mask
    assert len(text) % 2 == 0, text
    mask = 0
    for index in range(0, len(text), 2):
        mask |= RIGHTS[text[index : index + 2]]
    return mask


def parsed(sddl: str) -> tuple[str, str, frozenset[tuple[str, str, int, str]]]:
    """(owner SID, DACL flags, ACEs as (type, flags, access mask, trustee SID))."""
    match = re.fullmatch(r"O:([A-Z]{2}|S-[0-9-]+)D:([A-Z]*)((?:\([^)]*\))*)", sddl)
    assert match, sddl
    owner, flags, aces = match.groups()
    entries = set()
    for ace in re.findall(r"\(([^)]*)\)", aces):
        kind, ace_flags, mask, _, _, trustee = ace.split(";")
        entries.add((kind, ace_flags, rights(mask), SID_ALIASES.get(trustee, trustee)))
    return SID_ALIASES.get(owner, owner), flags, frozenset(entries)


def test_the_sddl_parser_of_these_tests():
    assert parsed("O:SYD:P(A;;GA;;;SY)(A;;GWGR;;;BU)") == parsed("O:S-1-5-18D:P(A;;FA;;;SY)(A;;0x12019f;;;S-1-5-32-545)")
    assert parsed("O:SYD:P(A;;GA;;;SY)(A;;GWGR;;;BU)") != parsed("O:SYD:P(A;;GA;;;SY)(A;;0x12019b;;;BU)")
    assert parsed("O:SYD:P(A;;GA;;;SY)") != parsed("O:SYD:(A;;GA;;;SY)")


def test_the_pipe_has_the_security_descriptor_asked_for(results):
    result = scenario(results, "security")
    asked = parsed(result["asked"])
    assert asked == ("S-1-5-18", "P", {("A", "", 0x1F01FF, "S-1-5-18"), ("A", "", 0x12019B, "S-1-5-32-545")})
    assert parsed(result["server_sddl"]) == asked, result
    assert parsed(result["client_sddl"]) == asked, result
    assert parsed(result["relay_sddl"]) == parsed(result["relay_asked"]), result


def test_the_pipe_is_owned_by_system(results):
    result = scenario(results, "security")
    assert result["owner"] == "S-1-5-18"
    assert result["server_owner"] == "S-1-5-18"


def test_the_server_knows_who_the_client_is(results):
    result = scenario(results, "client_identity")
    assert result["child_output"] == "bye S-1-5-18"
    assert result["told_pid"] == result["child_pid"] != result["server_pid"]
    assert result["process_id"] == result["child_pid"]
    identity = result["identity"]
    assert identity["process_id"] == result["child_pid"]
    assert identity["user_sid"].startswith("S-1-5-21-")
    assert identity["interactive"] is True
    assert identity["in_group"] is True
    assert result["other_group"]["in_group"] is False
    assert result["other_group"]["user_sid"] == identity["user_sid"]
    assert result["system_group"] is False


def test_a_pipe_another_process_owns_is_refused(results):
    result = scenario(results, "squatter")
    assert result["ready"] == "ready"
    assert result["outcome"].startswith("PlatformError: Another program already has the pipe"), result


@pytest.mark.xfail(strict=True, reason="Wine 8 ignores FILE_FLAG_FIRST_PIPE_INSTANCE: a second listener of the same SDDL joins the first")
def test_a_second_listener_of_the_same_name_is_refused(results):
    assert scenario(results, "second_listener")["outcome"].startswith("PlatformError: Another program already has the pipe")


def test_connecting_to_a_missing_pipe_raises_file_not_found(results):
    result = scenario(results, "missing_pipe")
    assert result["outcome"] == "FileNotFoundError", result
    assert "sstp-vpn-test-nobody-listens" in result["text"]
