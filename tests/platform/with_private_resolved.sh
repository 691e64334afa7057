#!/bin/bash
# Runs a command next to a private systemd-resolved and D-Bus system bus, for tests.
# Usage (inside a test's network namespace, in new mount and PID namespaces so that nothing
# leaks to the machine and everything dies with the command):
#   unshare --mount --pid --fork --kill-child --mount-proc \
#       bash with_private_resolved.sh RUNTIME_DIR RESOLVED_ROOT COMMAND...
# RESOLVED_ROOT is where the systemd-resolved package is unpacked ("/" if installed).
# The bus listens on RUNTIME_DIR/bus, so the test can ask resolved through it.
set -euo pipefail
runtime=$1 root=$2
shift 2

mount -t tmpfs tmpfs /run              # resolved's runtime folder, private to this mount namespace
mkdir -p /run/systemd
mount -t tmpfs tmpfs /etc/systemd      # our resolved.conf, without touching the machine's
printf '[Resolve]\nLLMNR=no\nMulticastDNS=no\nDNSStubListener=no\n' > /etc/systemd/resolved.conf
# resolved drops its privileges to the user systemd-resolve, which the unpacked package did not create.
for db in passwd group; do
    cp "/etc/$db" "$runtime/$db"
done
grep -q '^systemd-resolve:' "$runtime/passwd" || echo 'systemd-resolve:x:64990:64990::/:/usr/sbin/nologin' >> "$runtime/passwd"
grep -q '^systemd-resolve:' "$runtime/group" || echo 'systemd-resolve:x:64990:' >> "$runtime/group"
mount --bind "$runtime/passwd" /etc/passwd
mount --bind "$runtime/group" /etc/group

cat > "$runtime/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:path=$runtime/bus</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*"/>
<allow receive_sender="*"/></policy></busconfig>
CONF
dbus-daemon --config-file="$runtime/bus.conf" --nofork --nopidfile 2>"$runtime/dbus.log" &
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$runtime/bus"
for _ in $(seq 100); do [ -S "$runtime/bus" ] && break; sleep 0.05; done

SYSTEMD_LOG_TARGET=console "$root/lib/systemd/systemd-resolved" >"$runtime/resolved.log" 2>&1 &
for _ in $(seq 100); do [ -S /run/systemd/resolve/io.systemd.Resolve ] && break; sleep 0.05; done
[ -S /run/systemd/resolve/io.systemd.Resolve ] || { cat "$runtime/resolved.log" >&2; exit 1; }
# resolved registers on the bus after its socket appears; wait for its name.
for _ in $(seq 100); do
    "$root/usr/bin/resolvectl" status >/dev/null 2>&1 && break
    sleep 0.05
done

export PATH="$root/usr/bin:$PATH"
exec "$@"
