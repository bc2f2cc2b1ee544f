#!/usr/bin/env bash
# Build the meshprint Raspberry Pi image (arm64), or boot-test one under qemu.
#
#   ./build-image.sh [--base debian|PATH-TO-RASPIOS.img[.xz]] [--out DIR] [--keep-work]
#   ./build-image.sh --test IMAGE.img[.xz]
#
# Build: an arm64 root filesystem from Debian packages (mmdebstrap + qemu-user,
# raspi-firmware, linux-image-arm64) or a given Raspberry Pi OS Lite image, then
# provisioning/site.yml through Ansible's chroot connection, then an SD-card image:
#   DIR/meshprint-VERSION-arm64.img.xz, its .sha256 and DIR/meshprint-VERSION-arm64.manifest
# Test: boots the image's own kernel under qemu-system-aarch64 (virt machine), ports
# forwarded to 127.0.0.1 only, with the journal and a periodic `systemctl status` of the
# meshprint units on the serial console, and passes when the web UI's health endpoint and
# setup page answer and the node is ready (READY=1) within 30 s of starting. It says
# why when it fails, and keeps the console log beside the image.
#
# Needs a Debian machine and root. Missing tools are installed with apt-get.
set -Eeuo pipefail

cd "$(dirname "$(readlink -f "$0")")"
REPO=$PWD
BASE=debian
OUT=$REPO/dist
TEST_IMAGE=""
KEEP_WORK=0
SUITE=bookworm
MIRROR=${MESHPRINT_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${MESHPRINT_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
ANSIBLE_PLAYBOOK=${ANSIBLE_PLAYBOOK:-$REPO/.venv/bin/ansible-playbook}
FIRM_START=8192        # sectors: the firmware (FAT32) partition starts at 4 MiB
FIRM_SECTORS=524288    # 256 MiB
BUILD_SPACE_MB=6000
TEST_SPACE_MB=4000
TEST_TIMEOUT=${MESHPRINT_TEST_TIMEOUT:-1200}
NODE_READY_MAX=30      # seconds from starting the node to its READY=1, under emulation

# Packages of the Debian-based image; the roles install anything missing, but one
# mmdebstrap pass is much faster than apt under emulation.
INCLUDE=(systemd-sysv systemd-resolved udev dbus kmod iproute2 openssh-server
    python3 python3-apt python3-venv python3-dev python3-packaging gcc libcups2-dev
    linux-image-arm64 initramfs-tools zstd raspi-firmware firmware-brcm80211
    ca-certificates systemd-timesyncd netbase tzdata avahi-utils openssl curl sudo less fdisk e2fsprogs
    cups cups-client cups-filters cups-ipp-utils avahi-daemon libnss-mdns mosquitto nftables)

STAGE=0
STAGES=0
WORK=""
LOOPS=()
MOUNTS=()
QEMU_PID=""

say() { printf '%s\n' "$*"; }
die() { printf 'build-image: error: %s\n' "$*" >&2; exit 1; }
stage() {
    STAGE=$((STAGE + 1))
    printf '\n==> [%d/%d] %s  (%dm%02ds)\n' "$STAGE" "$STAGES" "$*" $((SECONDS / 60)) $((SECONDS % 60))
}

cleanup() {
    local rc=$?
    set +e
    [ -n "$QEMU_PID" ] && kill "$QEMU_PID" 2>/dev/null && wait "$QEMU_PID" 2>/dev/null
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[$i]}" 2>/dev/null; done
    for loop in "${LOOPS[@]}"; do losetup -d "$loop" 2>/dev/null; done
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ "$KEEP_WORK" = 1 ] && [ $rc -ne 0 ]; then
            say "build-image: work directory kept for inspection: $WORK"
        else
            rm -rf --one-file-system "$WORK"
        fi
    fi
    [ $rc -ne 0 ] && [ "$STAGE" -gt 0 ] && printf 'build-image: failed in stage %d/%d (exit %d); mounts and loop devices released\n' \
        "$STAGE" "$STAGES" "$rc" >&2
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --base) BASE=${2:?--base needs debian or an image path}; shift 2 ;;
        --out) OUT=${2:?--out needs a directory}; shift 2 ;;
        --test) TEST_IMAGE=${2:?--test needs an image}; shift 2 ;;
        --keep-work) KEEP_WORK=1; shift ;;
        -h|--help) usage 0 ;;
        *) printf 'build-image: unknown argument %s\n\n' "$1" >&2; usage 2 ;;
    esac
done
[ "$BASE" = debian ] || [ -f "$BASE" ] \
    || die "--base $BASE: no such image file (give 'debian' or a Raspberry Pi OS Lite .img[.xz])"

# Checks

need_root() {
    [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0 …): mmdebstrap, chroot, mkfs and loop devices need it"
}

need_tools() {
    # command:package pairs; missing ones are installed.
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing the tools this needs: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "could not install ${missing[*]} (apt-get install them, then run again)"
}

need_arm64() {
    if ! arch-test arm64 >/dev/null 2>&1; then
        # qemu-user-static registers its handler; it only needs binfmt_misc mounted.
        [ -e /proc/sys/fs/binfmt_misc/register ] \
            || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
        update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
    fi
    arch-test arm64 >/dev/null 2>&1 || die "this machine cannot run arm64 programs (no binfmt handler):
  apt-get install qemu-user-static binfmt-support, and make sure binfmt_misc is available
  (in a container, the host must provide it); 'arch-test arm64' must say ok"
}

need_space() {  # DIR MEGABYTES
    local avail
    avail=$(df --output=avail -BM "$1" | tail -n1 | tr -dc '0-9')
    [ "$avail" -ge "$2" ] || die "not enough disk space in $1: ${avail} MB free, about $2 MB needed"
}

make_work() {
    mkdir -p "$OUT"
    OUT=$(readlink -f "$OUT")
    # One run per output directory; the lock goes with the process, even on kill -9.
    exec 9>"$OUT/.lock"
    flock -n 9 || die "another build-image.sh is running with --out $OUT (wait for it, or use another --out)"
    release_stale_work
    WORK=$(mktemp -d "$OUT/.work.XXXXXX")
}

release_stale_work() {
    # A run killed outright (power, kill -9) could not run its EXIT trap: release
    # what it left (mmdebstrap's own mounts too) before starting again.
    local dir mount loop
    for dir in "$OUT"/.work.*; do
        [ -d "$dir" ] || continue
        say "releasing $dir, left by a run that was killed"
        findmnt -rn -o TARGET | awk -v d="$dir/" 'index($0, d) == 1' | sort -r | while read -r mount; do
            umount -l "$mount" || die "cannot unmount $mount (left by a killed run)"
        done
        losetup -n -O NAME,BACK-FILE | awk -v d="$dir/" 'index($2, d) == 1 { print $1 }' | while read -r loop; do
            losetup -d "$loop" || die "cannot detach $loop (left by a killed run)"
        done
        rm -rf --one-file-system "$dir"
    done
}

version() {
    python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])'
}

revision() {
    local rev
    rev=$(git -C "$REPO" rev-parse --short=12 HEAD 2>/dev/null) || { echo unknown; return; }
    git -C "$REPO" diff --quiet HEAD -- 2>/dev/null || rev="$rev-dirty"
    echo "$rev"
}

# Build stages

debian_rootfs() {  # ROOT
    local root=$1
    local sources=(
        "deb $MIRROR $SUITE main non-free-firmware"
        "deb $MIRROR $SUITE-updates main non-free-firmware"
        "deb $SECURITY_MIRROR $SUITE-security main non-free-firmware"
    )
    # initramfs under emulation is slow: build it once at the end, not per package.
    mmdebstrap --arch=arm64 --variant=minbase --format=directory \
        --include="$(IFS=,; echo "${INCLUDE[*]}")" \
        --dpkgopt=force-unsafe-io \
        --essential-hook='chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs && ln -s /bin/true "$1/usr/sbin/update-initramfs"' \
        --customize-hook='rm "$1/usr/sbin/update-initramfs" && chroot "$1" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs' \
        --customize-hook='sed -i "/^#\?ROOTPART=/d" "$1/etc/default/raspi-firmware" && echo "ROOTPART=LABEL=RASPIROOT" >> "$1/etc/default/raspi-firmware"' \
        "$SUITE" "$root" "${sources[@]}"
}

debian_initramfs() {  # ROOT
    mkdir -p "$1/boot/firmware"   # raspi-firmware's hook fills it (the FAT partition later)
    # raspi-firmware's hook wants /boot/firmware mounted unless it sees a chroot (which
    # needs /proc): give it both.
    mount -t proc proc "$1/proc"; MOUNTS+=("$1/proc")
    mount --bind "$1/boot/firmware" "$1/boot/firmware"; MOUNTS+=("$1/boot/firmware")
    chroot "$1" update-initramfs -c -k all
    umount "$1/boot/firmware" "$1/proc"; MOUNTS=()
    ls "$1"/boot/firmware/vmlinuz* "$1"/boot/firmware/initrd.img* >/dev/null 2>&1 \
        || die "raspi-firmware did not put a kernel and initrd in /boot/firmware"
}

debian_system_files() {  # ROOT
    local root=$1
    cat > "$root/etc/fstab" <<'EOF'
# meshprint appliance (build-image.sh)
LABEL=RASPIROOT  /               ext4  rw,noatime,errors=remount-ro                  0 1
LABEL=RASPIFIRM  /boot/firmware  vfat  rw,noatime,nofail,x-systemd.device-timeout=90s 0 2
EOF
    cat > "$root/etc/systemd/network/20-wired.network" <<'EOF'
[Match]
Type=ether

[Network]
DHCP=yes
MulticastDNS=no
LLMNR=no
EOF
    chroot "$root" systemctl enable systemd-networkd.service systemd-resolved.service >/dev/null 2>&1
}

raspios_rootfs() {  # IMAGE ROOT: grow the image, attach its partitions, mount them
    local img=$1 root=$2 p1 p2 size2 loop_root loop_firm
    truncate -s +1536M "$img"
    echo ", +" | sfdisk --quiet --no-reread -N 2 "$img" || die "cannot grow the root partition of $BASE"
    p1=$(partx -g -o START -n 1 "$img" 2>/dev/null | tr -d ' ') || true
    read -r p2 size2 < <(partx -g -o START,SECTORS -n 2 "$img" 2>/dev/null) || true
    [ -n "$p2" ] && [ -n "$size2" ] || die "$BASE does not look like a Raspberry Pi OS image (no second partition)"
    loop_root=$(losetup --find --show --offset $((p2 * 512)) --sizelimit $((size2 * 512)) "$img")
    LOOPS+=("$loop_root")
    e2fsck -p -f "$loop_root" >/dev/null || true
    resize2fs "$loop_root" >/dev/null
    mount "$loop_root" "$root"; MOUNTS+=("$root")
    loop_firm=$(losetup --find --show --offset $((p1 * 512)) "$img")
    LOOPS+=("$loop_firm")
    mkdir -p "$root/boot/firmware"
    if mount -t vfat "$loop_firm" "$root/boot/firmware" 2>/dev/null; then
        MOUNTS+=("$root/boot/firmware")
    else
        say "note: cannot mount the FAT partition here; the boot partition is left as it is"
    fi
    for fs in proc sys dev; do
        mount --bind "/$fs" "$root/$fs"; MOUNTS+=("$root/$fs")
    done
}

apply_site() {  # ROOT
    local root=$1 inventory=$WORK/inventory.ini
    [ -x "$ANSIBLE_PLAYBOOK" ] || die "$ANSIBLE_PLAYBOOK not found: run 'make setup' (scripts/setup.sh) first"
    # apt inside the tree needs name resolution while it is built (finish_rootfs puts
    # systemd-resolved's stub back).
    rm -f "$root/etc/resolv.conf"
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
    printf '[appliances]\n%s ansible_connection=community.general.chroot ansible_python_interpreter=/usr/bin/python3\n' \
        "$root" > "$inventory"
    (cd "$REPO/provisioning" && ANSIBLE_CONFIG=ansible.cfg ANSIBLE_FORCE_COLOR=0 \
        "$ANSIBLE_PLAYBOOK" -i "$inventory" site.yml -e appliance_arch=aarch64) \
        || die "provisioning/site.yml failed in the image (see above)"
}

finish_rootfs() {  # ROOT: what a flashed card must not share with the build host
    local root=$1
    ln -sf ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/* 2>/dev/null || true
}

manifest() {  # ROOT FILE
    local root=$1 file=$2 venv
    venv=$(readlink -f "$root/opt/meshprint/current" | sed "s|^$root||")
    {
        echo "image: $(basename "${file%.manifest}").img.xz"
        echo "meshprint: $VERSION"
        echo "git revision: $REVISION"
        echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
        echo "base: $BASE"
        echo "release: $venv"
        echo
        echo "# Python packages of the release (venv)"
        find "$root$venv/venv/lib" -maxdepth 3 -name '*.dist-info' -printf '%f\n' \
            | sed -E 's/\.dist-info$//; s/-([^-]+)$/ \1/' | sort
        echo
        echo "# Debian packages"
        dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${Package} ${Version}\n'
    } > "$file"
}

assemble_image() {  # ROOT IMG: partition table, FAT firmware, ext4 root, without mounting
    local root=$1 img=$2 used_mb size_mb total root_start root_blocks firm=$WORK/firmware
    used_mb=$(du -sxm "$root" | cut -f1)
    size_mb=$(( (used_mb * 13 / 10 + 700 + 255) / 256 * 256 ))
    [ "$size_mb" -ge 2048 ] || size_mb=2048
    truncate -s "${size_mb}M" "$img"
    root_start=$((FIRM_START + FIRM_SECTORS))
    sfdisk --quiet "$img" <<EOF
label: dos
start=$FIRM_START, size=$FIRM_SECTORS, type=c, bootable
start=$root_start, type=83
EOF
    # The firmware partition: what raspi-firmware put in /boot/firmware.
    mkdir -p "$firm"
    cp -a "$root/boot/firmware/." "$firm/"
    find "$root/boot/firmware" -mindepth 1 -delete
    mkfs.vfat -C -F 32 -n RASPIFIRM "$WORK/firmware.vfat" $((FIRM_SECTORS / 2)) >/dev/null
    mcopy -i "$WORK/firmware.vfat" -s -p -m "$firm"/* ::/
    dd if="$WORK/firmware.vfat" of="$img" bs=512 seek=$FIRM_START conv=notrunc,sparse status=none
    # The root partition, populated straight from the directory.
    total=$(( size_mb * 2048 ))
    root_blocks=$(( (total - root_start) * 512 / 4096 ))
    mkfs.ext4 -q -F -b 4096 -L RASPIROOT -E offset=$((root_start * 512)) -d "$root" "$img" "$root_blocks"
}

compress() {  # IMG
    xz -T2 -6 -f "$1"
    (cd "$(dirname "$1")" && sha256sum "$(basename "$1").xz" > "$(basename "$1").xz.sha256")
}

build() {
    need_root
    STAGES=7
    stage "checks: root, tools, arm64 emulation, disk space"
    need_tools mmdebstrap:mmdebstrap qemu-aarch64-static:qemu-user-static update-binfmts:binfmt-support \
        arch-test:arch-test mkfs.vfat:dosfstools mcopy:mtools sfdisk:fdisk mkfs.ext4:e2fsprogs xz:xz-utils
    need_arm64
    make_work
    need_space "$OUT" "$BUILD_SPACE_MB"
    VERSION=$(version)
    REVISION=$(revision)
    local name="meshprint-$VERSION-arm64" root=$WORK/root img
    img="$WORK/$name.img"
    say "building $name (git $REVISION) from $BASE into $OUT"

    if [ "$BASE" = debian ]; then
        stage "root filesystem from Debian packages (mmdebstrap, arm64; about 4 minutes)"
        debian_rootfs "$root"
        stage "kernel initramfs and Raspberry Pi firmware files (slow under emulation)"
        debian_initramfs "$root"
        debian_system_files "$root"
    else
        stage "root filesystem from $BASE"
        case "$BASE" in
            *.xz) xz -dc "$BASE" > "$img" ;;
            *) cp --sparse=always "$BASE" "$img" ;;
        esac
        mkdir -p "$root"
        raspios_rootfs "$img" "$root"
        stage "kernel and firmware: as Raspberry Pi OS ships them"
    fi

    stage "provisioning/site.yml through the chroot connection"
    apply_site "$root"
    finish_rootfs "$root"
    manifest "$root" "$OUT/$name.manifest"

    stage "SD-card image"
    if [ "$BASE" = debian ]; then
        assemble_image "$root" "$img"
    else
        for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount "${MOUNTS[$i]}"; done
        MOUNTS=()
        for loop in "${LOOPS[@]}"; do losetup -d "$loop"; done
        LOOPS=()
    fi

    stage "compress (xz) and checksum"
    compress "$img"
    mv -f "$img.xz" "$img.xz.sha256" "$OUT/"
    stage "done"
    say "image:    $OUT/$name.img.xz ($(du -h "$OUT/$name.img.xz" | cut -f1))"
    say "checksum: $OUT/$name.img.xz.sha256"
    say "manifest: $OUT/$name.manifest"
    say "time:     $((SECONDS / 60))m$((SECONDS % 60))s"
}

# Boot test

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

test_image() {
    STAGES=4
    stage "checks"
    [ -f "$TEST_IMAGE" ] || die "--test $TEST_IMAGE: no such image"
    OUT=$(dirname "$(readlink -f "$TEST_IMAGE")")
    make_work
    need_space "$WORK" "$TEST_SPACE_MB"
    need_tools qemu-system-aarch64:qemu-system-arm qemu-img:qemu-utils mcopy:mtools sfdisk:fdisk curl:curl xz:xz-utils
    local raw=$WORK/image.img
    case "$TEST_IMAGE" in
        *.xz) say "decompressing $TEST_IMAGE"; xz -dc "$TEST_IMAGE" > "$raw" ;;
        *) raw=$(readlink -f "$TEST_IMAGE") ;;
    esac

    stage "the image's own kernel and initrd (from its firmware partition, without mounting)"
    local start
    start=$(partx -g -o START -n 1 "$raw" 2>/dev/null | tr -d ' ') || true
    [ -n "$start" ] || die "$TEST_IMAGE has no partition table"
    local kernel initrd
    kernel=$(mdir -b -i "$raw@@$((start * 512))" :: | grep -m1 '/vmlinuz' | sed 's|^::/||') \
        || die "no kernel in the image's firmware partition"
    initrd=$(mdir -b -i "$raw@@$((start * 512))" :: | grep -m1 '/initrd.img' | sed 's|^::/||') \
        || die "no initrd in the image's firmware partition"
    mcopy -n -i "$raw@@$((start * 512))" "::$kernel" "$WORK/vmlinuz"
    mcopy -n -i "$raw@@$((start * 512))" "::$initrd" "$WORK/initrd.img"
    say "kernel $kernel, initrd $initrd"

    stage "boot under qemu-system-aarch64 (virt, TCG; first boot takes a few minutes)"
    local size https http ssh console=$WORK/console.log
    size=$(( $(stat -c %s "$raw") + 1024 * 1024 * 1024 ))   # 1 GiB more: first boot grows root
    qemu-img create -q -f qcow2 -b "$raw" -F raw "$WORK/overlay.qcow2" "$size"
    https=$(free_port); http=$(free_port); ssh=$(free_port)
    qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 -display none -monitor none \
        -serial "file:$console" -kernel "$WORK/vmlinuz" -initrd "$WORK/initrd.img" \
        -append "console=ttyAMA0 root=LABEL=RASPIROOT rw rootwait net.ifnames=0 systemd.show_status=1 systemd.status_unit_format=name systemd.journald.forward_to_console=1 meshprint.console_status" \
        -drive "file=$WORK/overlay.qcow2,if=none,format=qcow2,id=hd0" -device virtio-blk-pci,drive=hd0 \
        -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$https-:443,hostfwd=tcp:127.0.0.1:$http-:80,hostfwd=tcp:127.0.0.1:$ssh-:22" \
        -device virtio-net-pci,netdev=n0,romfile= &
    QEMU_PID=$!
    say "qemu pid $QEMU_PID; console log $console; https 127.0.0.1:$https, http :$http, ssh :$ssh"

    stage "wait for the web UI, the setup page and the node"
    local deadline=$((SECONDS + TEST_TIMEOUT)) health="" setup="" redirect="" node="" web_up=0 node_ready=""
    while [ $SECONDS -lt $deadline ]; do
        # Once the web UI answers, the rest must follow within two minutes.
        if [ -n "$health" ] && [ $web_up -eq 0 ]; then web_up=$SECONDS; fi
        if [ $web_up -gt 0 ] && [ $((SECONDS - web_up)) -gt 120 ]; then deadline=$SECONDS; break; fi
        kill -0 "$QEMU_PID" 2>/dev/null || die "qemu exited early; console: $(tail -n 20 "$console")"
        [ -n "$health" ] || { curl -sk --max-time 10 "https://127.0.0.1:$https/health" | grep -q '"ok": *true' \
            && health=yes && say "  web UI health: ok ($((SECONDS / 60))m$((SECONDS % 60))s)"; } || true
        [ -n "$setup" ] || { [ "$(curl -sk --max-time 10 -o /dev/null -w '%{http_code}' "https://127.0.0.1:$https/setup/code")" = 200 ] \
            && setup=yes && say "  setup page: 200"; } || true
        [ -n "$redirect" ] || { curl -s --max-time 10 -o /dev/null -w '%{redirect_url}' "http://127.0.0.1:$http/setup" \
            | grep -q '^https://' && redirect=yes && say "  port 80 redirects to https"; } || true
        if [ -z "$node" ]; then
            node_ready=$(ready_seconds "$console" meshprint-node.service)
            [ -z "$node_ready" ] || { node=yes; say "  node: ready (READY=1) ${node_ready} s after it started"; }
        fi
        if [ -n "$health" ] && [ -n "$setup" ] && [ -n "$redirect" ] && [ -n "$node" ]; then
            say ""
            # (each line comes twice: its own output, and the journal forwarded)
            grep -a 'meshprint-firstboot: ' "$console" | sed 's/^.*meshprint-firstboot: /  first boot: /' \
                | tr -d '\r' | awk '!seen[$0]++' || true
            if awk -v s="$node_ready" -v max="$NODE_READY_MAX" 'BEGIN { exit !(s > max) }'; then
                boot_report "$console"
                die "boot test failed: the node took ${node_ready} s from starting to ready (at most $NODE_READY_MAX s)"
            fi
            cp "$console" "$OUT/$(basename "$TEST_IMAGE").console.log"
            say "boot test passed in $((SECONDS / 60))m$((SECONDS % 60))s (node ready ${node_ready} s after it started)"
            say "console log: $OUT/$(basename "$TEST_IMAGE").console.log"
            return 0
        fi
        sleep 5
    done
    boot_report "$console"
    cp "$console" "$OUT/$(basename "$TEST_IMAGE").console.log"
    say "console log: $OUT/$(basename "$TEST_IMAGE").console.log"
    [ -n "$setup" ] || say "GET https://…/setup answered $(curl -sk --max-time 10 -o /dev/null -w '%{http_code}' "https://127.0.0.1:$https/setup/code") (wanted 200)"
    die "boot test failed after $((SECONDS / 60))m$((SECONDS % 60))s: health=${health:-no} setup=${setup:-no} redirect=${redirect:-no} node=${node:-no}"
}

# Seconds from the unit's last "Starting" to its first "Started" (READY=1 for a notify
# unit), read from the journal on the console, which carries monotonic timestamps
# ("[   42.123456] systemd[1]: Started meshprint-node.service - …"); empty until then.
ready_seconds() {
    awk -v unit="$2" '
        function stamp(line,  t) {
            match(line, /\[ *[0-9]+\.[0-9]+\] systemd\[1\]: /)
            t = substr(line, RSTART + 1); sub(/\].*/, "", t); return t + 0
        }
        index($0, "] systemd[1]: Starting " unit) { start = stamp($0) }
        index($0, "] systemd[1]: Started " unit) && start != "" {
            printf "%.1f\n", stamp($0) - start; exit
        }
    ' "$1" 2>/dev/null || true
}

# Why a boot test failed, from the console: the journal of the meshprint units (the
# boot forwards the journal there), the last `systemctl status` of every meshprint unit
# (meshprint-console-status.service, on with meshprint.console_status), the console's end.
boot_report() {
    say ""; say "journal of the meshprint units (from the console):"
    grep -a 'meshprint' "$1" | grep -a -v -e 'meshprint-status\[' -e 'meshprint-firstboot: ' \
        | tail -n 80 || true
    say ""; say "systemctl status of the meshprint units (the last report on the console):"
    awk '/meshprint-status\[[0-9]+\]: === meshprint units ===/ { n = 0; delete lines }
        /meshprint-status\[[0-9]+\]: / { sub(/^.*meshprint-status\[[0-9]+\]: /, ""); lines[n++] = $0 }
        END { for (i = 0; i < n; i++) print lines[i]; if (!n) print "(none yet: it reports every 30 s)" }' "$1"
    say ""; say "console (last 40 lines):"; tail -n 40 "$1"
}

if [ -n "$TEST_IMAGE" ]; then
    need_root
    test_image
else
    build
fi
