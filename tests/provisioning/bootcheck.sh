#!/bin/sh
# Runs inside the provisioned root filesystem booted with systemd-nspawn: records what
# the test checks in /root/bootcheck.txt, then powers the container off.
out=/root/bootcheck.txt
# Wait until the boot has no jobs left but this one.
for _ in $(seq 90); do
    [ "$(systemctl list-jobs --no-legend | grep -vc bootcheck)" -eq 0 ] && break
    sleep 1
done
{
    echo "jobs $(systemctl list-jobs --no-legend | grep -vc bootcheck)"
    for unit in meshprint-node.service meshprint-node.socket meshprint-webui.service meshprint-webui.socket \
        meshprint-redirect.socket meshprint-firstboot.service meshprint-site.path nftables.service \
        avahi-daemon.service cups.service mosquitto.service ssh.service; do
        echo "unit $unit $(systemctl is-active "$unit")"
    done
    echo "nodestatus $(systemctl show -P StatusText meshprint-node.service)"
    # On one line, so that a failure shows the whole answer (an error page is many lines).
    echo "health $(curl -s --cacert /etc/meshprint/tls/device.pem https://127.0.0.1/health | tr '\n' ' ')"
    echo "setup $(curl -s -o /dev/null -w '%{http_code}' --cacert /etc/meshprint/tls/device.pem \
        https://127.0.0.1/setup/code)"
    echo "redirect $(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' \
        -H 'Host: meshprint.local' http://127.0.0.1/setup)"
    # Who listens on TCP (no ss in a minbase system): "ipp631" the processes with a
    # listening socket on 631, "cupstcp" how many TCP listeners cupsd has.
    python3 - <<'PY'
import glob, os
listening = {}
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    for row in open(table).read().splitlines()[1:]:
        f = row.split()
        if f[3] == "0A":
            listening[f[9]] = int(f[1].rsplit(":", 1)[1], 16)
owners = {}
for fd in glob.glob("/proc/[0-9]*/fd/*"):
    try:
        target = os.readlink(fd)
        comm = open(fd.split("/fd/")[0] + "/comm").read().strip()
    except OSError:
        continue
    if target.startswith("socket:["):
        inode = target[8:-1]
        if inode in listening:
            owners.setdefault(comm, set()).add(listening[inode])
print("ipp631", " ".join(sorted(c for c, ports in owners.items() if 631 in ports)))
print("cupstcp", len(owners.get("cupsd", ())))
PY
    echo "machineid $(cat /etc/machine-id)"
    echo "hostkeys $(ls /etc/ssh/ssh_host_*_key 2>/dev/null | wc -l)"
    printf 'issue %s\n' "$(tr '\n' ' ' < /etc/issue.d/meshprint.issue)"
    echo "webuilog $(journalctl -b -q -u meshprint-webui.service | tail -n 20 | tr '\n' '|')"
    for unit in $(systemctl list-units --failed --plain --no-legend | awk '{print $1}'); do
        echo "failed $unit"
        journalctl -b -q -u "$unit" | tail -n 5
    done
    echo "ruleset"
    nft list ruleset
} > "$out" 2>&1
systemctl poweroff
