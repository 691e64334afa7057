"""The SSTP VPN network service (sstp-vpn-helper.exe) as installed, under Wine: it starts by
itself, serves its control pipe with the Linux helper's conversation, refuses what it must, says
our sentence when the adapter cannot be made (Wine has no Wintun driver), stops and starts. And
the packet relay between the service and the app over real named pipes.

What Wine cannot judge, and so is not asserted here: that the pipe's DACL keeps anyone out
(Wine 8 does not enforce pipe access checks), that the service really runs as SYSTEM (Wine has one
user), the protected DACL of its folder (Wine ignores a new folder's security descriptor), and a
Wintun adapter with its routes and DNS."""

from __future__ import annotations

import json

from sstpvpn.platform import helper_client, winpipe
from tests.hostile.hostile_server import PASSWORD, USERNAME, HostileServer, Scenario
from tests.integration.certificates import make_test_pki
from tests.windows.test_named_pipes import parsed
from tests.windows.wine_env import run_windows_python, wine_build

# Wine 8 lacks IP Helper functions the adapter needs (tests/windows/test_wintun_winapi.py lists
# them), so the service's TunDevice.open stops there, before Wintun (which has no driver either).
NO_ADAPTER_UNDER_WINE = "iphlpapi.dll lacks a function SSTP VPN needs (function 'InitializeIpInterfaceEntry' not found)"

SERVICE_SCRIPT = r"""
import json, os, subprocess, time
from sstpvpn.platform import current, helper_client, winpipe
from sstpvpn.platform import helper_protocol as protocol
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.helper_protocol import OpenTun, Restore

def wait_for(condition, seconds=60):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True

def sc(*arguments):
    return subprocess.run(["sc", *arguments], capture_output=True, text=True).stdout

out = {}
# Start type "auto": Wine starts the service with the first program of the prefix, this one.
out["came_up"] = wait_for(lambda: winpipe.pipe_exists(winpipe.CONTROL_PIPE_NAME))
out["query"] = sc("query", "SstpVpnHelper")
out["problem_running"] = current.tunnel_problem()

raw = winpipe.connect(winpipe.CONTROL_PIPE_NAME, 10, message_mode=True)
out["owner"], out["sddl"] = raw.owner_sid(), raw.security_sddl()
raw.write(b"{not json")
out["garbage"] = protocol.parse_reply(raw.read(protocol.MAX_MESSAGE_BYTES + 1, 30)).error
raw.write(protocol.encode_request(Restore("SSTP VPN")))
out["restore_first"] = protocol.parse_reply(raw.read(protocol.MAX_MESSAGE_BYTES + 1, 30)).error
raw.write(b"x" * 10000)
out["too_long"] = protocol.parse_reply(raw.read(protocol.MAX_MESSAGE_BYTES + 1, 30)).error
raw.close()

channel = helper_client.PipeHelperChannel(timeout=30)
try:
    channel.request(OpenTun("Ethernet"))
except PlatformError as error:
    out["open_other_name"] = error.sentence
try:
    channel.request(OpenTun(None))
    out["open"] = "opened"
except PlatformError as error:
    out["open"] = error.sentence
channel.close()

# The app's whole path: PrivilegedNetwork as the engine runner uses it on Windows.
try:
    current.open_tunnel(None)
    out["open_tunnel"] = "opened"
except PlatformError as error:
    out["open_tunnel"] = error.sentence

sc("stop", "SstpVpnHelper")
out["went_down"] = wait_for(lambda: not winpipe.pipe_exists(winpipe.CONTROL_PIPE_NAME))
out["problem_stopped"] = current.tunnel_problem()
try:
    current.open_tunnel(None)
except PlatformError as error:
    out["open_stopped"] = error.sentence
sc("start", "SstpVpnHelper")
out["came_back"] = wait_for(lambda: winpipe.pipe_exists(winpipe.CONTROL_PIPE_NAME))
folder = os.path.join(os.environ["ProgramData"], "SSTP VPN", "service")
with open(os.path.join(folder, "service.log"), encoding="utf-8") as log:
    out["log"] = log.read()
print("RESULT " + json.dumps(out))
"""


def result_of(output: str) -> dict:
    [line] = [line for line in output.splitlines() if line.startswith("RESULT ")]
    return json.loads(line.removeprefix("RESULT "))


def test_the_service_starts_serves_its_pipe_refuses_and_restarts(installed, tmp_path):
    out = result_of(run_windows_python(installed.wine, SERVICE_SCRIPT, tmp_path, timeout=240))
    assert out["came_up"], out
    assert "RUNNING" in out["query"], out["query"]
    assert out["problem_running"] is None  # what the tray asks before connecting

    # The pipe as the client sees it: SYSTEM's, and the group may read and write but never
    # create an instance of it (0x4 is left out of the client's rights).
    assert out["owner"] == winpipe.LOCAL_SYSTEM_SID
    assert parsed(out["sddl"]) == parsed(winpipe.control_pipe_sddl(winpipe.USERS_SID)), out["sddl"]

    # The Linux helper's checks, over the pipe.
    assert out["garbage"] == "The request is not a JSON object."
    assert out["restore_first"] == "Open the tunnel interface first."
    assert "longer than the network helper accepts" in out["too_long"]
    assert "names its adapter 'SSTP VPN' itself" in out["open_other_name"]
    # Under Wine the service cannot make the adapter: the sentence reaches the app.
    assert NO_ADAPTER_UNDER_WINE in out["open"], out["open"]
    assert out["open_tunnel"] == out["open"]

    # Stopped, the app says so before and when connecting; started again, it serves.
    assert out["went_down"] and out["came_back"], out
    assert out["problem_stopped"] == helper_client.windows_not_running_sentence()
    assert out["open_stopped"] == helper_client.windows_not_running_sentence()

    # Its log: who asked, what was refused, and nothing of the user's beyond that.
    log = out["log"]
    assert "listening on \\\\.\\pipe\\sstp-vpn-helper for interactive members of S-1-5-32-545" in log
    assert "session started" in log and "refused a request: Open the tunnel interface first." in log
    assert NO_ADAPTER_UNDER_WINE in log


RELAY_SCRIPT = r'''
import json, os, secrets, selectors, threading, time
from sstpvpn.platform import winpipe
from sstpvpn.platform.packet_inbox import PacketInbox
from sstpvpn.platform.packet_relay import RelayTunDevice, TunnelRelay

class InboxTun:
    """Stands in for the Wintun device: packets "from the system" arrive through an inbox."""
    name = "SSTP VPN"
    dropped_packets = 0
    def __init__(self):
        self.inbox = PacketInbox(4096)
        self.written = []
    def fileno(self):
        return self.inbox.fileno()
    def read_packets(self, max_count=64):
        return self.inbox.take(max_count)
    def write_packets(self, packets):
        self.written.extend(packets)

name = winpipe.relay_pipe_name(secrets.token_hex(16))
sid = winpipe.process_user_sid()
listener = winpipe.PipeListener(name, winpipe.relay_pipe_sddl(sid), message_mode=False, max_instances=1)
accepted = []
waiter = threading.Thread(target=lambda: accepted.append(listener.accept(10)))
waiter.start()
client_stream = winpipe.connect(name, 10, message_mode=False)
waiter.join()
sddl, client_pid = accepted[0].security_sddl(), accepted[0].client_process_id()
tun = InboxTun()
ended = []
relay = TunnelRelay(tun, accepted[0], ended.append)
relay.start()
closed = []
device = RelayTunDevice(client_stream, "SSTP VPN", lambda mtu: None, lambda: closed.append(True))

count = 5000
outbound = [bytes([0x45]) + n.to_bytes(4, "big") + bytes(1395) for n in range(count)]
started = time.monotonic()
sender = threading.Thread(target=lambda: [device.write_packets(outbound[i:i + 64]) for i in range(0, count, 64)])
sender.start()
for i in range(0, count, 64):
    tun.inbox.hand_over(outbound[i:i + 64])
received = []
selector = selectors.DefaultSelector()
selector.register(device, selectors.EVENT_READ)
while len(received) < count and time.monotonic() - started < 60:
    if selector.select(5):
        received.extend(device.read_packets(64))
sender.join(60)
deadline = time.monotonic() + 60
while len(tun.written) < count and time.monotonic() < deadline:
    time.sleep(0.01)
seconds = time.monotonic() - started
device.close()
deadline = time.monotonic() + 10
while not ended and time.monotonic() < deadline:
    time.sleep(0.01)
print("RESULT " + json.dumps({
    "to_engine_in_order": received == outbound,
    "to_system_in_order": tun.written == outbound,
    "seconds": seconds,
    "ended": ended,
    "closed": closed,
    "sddl": sddl,
    "client_pid_is_ours": client_pid == os.getpid(),
}))
'''


def test_packets_cross_the_relay_over_real_named_pipes(wine, tmp_path):
    """5000 full-size packets each way at once between the service's side (TunnelRelay) and the
    engine's (RelayTunDevice), through a byte-mode pipe made as the service makes it."""
    out = result_of(run_windows_python(wine, RELAY_SCRIPT, tmp_path, timeout=240))
    assert out["to_engine_in_order"] and out["to_system_in_order"], out
    assert out["ended"] == [None] and out["closed"] == [True]  # the engine closed: the relay ends cleanly, once
    assert out["client_pid_is_ours"]
    assert parsed(out["sddl"])[0] == winpipe.LOCAL_SYSTEM_SID
    print(f"relay under Wine: 2 x 5000 packets of 1400 bytes in {out['seconds']:.2f} s")


CLI_SCRIPT = r"""
import json, subprocess, sys, time
from sstpvpn.platform import winpipe

deadline = time.monotonic() + 60
while not winpipe.pipe_exists(winpipe.CONTROL_PIPE_NAME) and time.monotonic() < deadline:
    time.sleep(0.2)
started = time.monotonic()
result = subprocess.run(sys.argv[1:], input=PASSWORD + "\n", capture_output=True, text=True, timeout=150)
print("RESULT " + json.dumps({"code": result.returncode, "output": result.stdout + result.stderr, "seconds": time.monotonic() - started}))
"""


def test_the_cli_as_installed_gets_its_tunnel_through_the_service(installed, tmp_path):
    """`sstp-vpn.exe connect` (asInvoker) against a loopback SSTP server that signs it in and
    configures IPCP: the tunnel is asked of the service, whose sentence (no Wintun under Wine)
    ends the session cleanly; the server sees the client say goodbye."""
    pki = make_test_pki(tmp_path / "pki", "localhost", "127.0.0.1", "other.test")
    script = CLI_SCRIPT.replace("PASSWORD", repr(PASSWORD))
    with HostileServer(None, pki, [Scenario("correct")]) as server:
        port = server.ports["correct"]
        arguments = [installed.cli, "connect", f"localhost:{port}", "--user", USERNAME, "--password-stdin"]
        arguments += ["--ca-file", wine_build.windows_path(pki.ca_path), "--timeout", "30"]
        path = tmp_path / "cli.py"
        path.write_text(script)
        output = installed.wine.run([installed.wine.python, wine_build.windows_path(path), *arguments], check=False, quiet=True, timeout=240).stdout
        out = result_of(output)
        connection = server.latest("correct")
        assert server.errors("correct") == []
    text = out["output"]
    assert PASSWORD not in text
    assert NO_ADAPTER_UNDER_WINE in text, text
    assert out["code"] != 0, text
    print(f"sstp-vpn.exe connect -> the service's answer in {out['seconds']:.1f} s")
    scripted = connection.server
    assert scripted.authenticated and scripted.ipcp_client_acked and scripted.ipcp_server_acked  # IPCP up: then the tunnel is asked for
    assert scripted.stage in ("disconnected", "aborted") or scripted.lcp_terminate_requests, scripted.stage  # said goodbye
