#!/usr/bin/env bash
# Sets up what meshprint needs on a Debian machine: system packages (only those missing)
# and the project's virtual environment in .venv. Safe to run again; fast when done.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the node, the tests and the demo use: CUPS and its IPP tools (the
# printer fixtures and pycups), avahi and D-Bus (ippeveprinter needs them), faketime
# (the expiry tests), Mosquitto and its clients (the MQTT control plane and its tests),
# mmdebstrap, systemd-nspawn and nft (the provisioning tests), Chromium (the web UI
# browser tests).
PACKAGES=(python3 python3-venv python3-dev gcc make pkg-config ca-certificates openssl faketime
          cups cups-client cups-bsd cups-ipp-utils cups-filters libcups2-dev
          avahi-daemon avahi-utils dbus mosquitto mosquitto-clients
          mmdebstrap systemd-container nftables chromium chromium-driver)

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
stamp=.venv/.meshprint-setup
if [ ! -x .venv/bin/python ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: preparing the virtual environment in .venv"
    [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[appliance,test]"
    touch "$stamp"
fi
