#!/usr/bin/env bash
# Boot benchmark, side by side in one run (medians): banger's cold create and its restored
# create from a warm snapshot (create -> sshd's SSH-2.0 banner), `vm run --rm REPO -- true`
# cold and warm, the PSS of RUNS cold VMs against RUNS restored ones, banger's host-side
# share of a cold create, and the raw QEMU floors with the same image, kernel and guest init:
# a cold boot, and a restore of one saved guest (RAM file mapped private, device state loaded
# by migration; bench/qmp.py speaks QMP) with each restored guest's PSS.
#
# Needs root, qemu-system-x86 and the debug or release binaries (BIN, default target/release,
# falling back to target/debug). Everything that touches the network happens inside a network
# namespace this script creates and deletes. Usage: sudo [SETTLE=SECONDS] bench/boot.sh [RUNS]
set -euo pipefail
RUNS=${1:-3}
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
[ -x "$BIN/banger" ] || BIN=target/debug
[ -x "$BIN/banger" ] || { echo "build first: cargo build --release" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }

ROOT=${BANGER_BENCH_ROOT:-/var/tmp/banger-bench}
NS=bgr-bench-$$
RAWNS=bgr-braw-$$
mkdir -p "$ROOT"/{home,config,state,cache,run}
export HOME=$ROOT/home XDG_CONFIG_HOME=$ROOT/config XDG_STATE_HOME=$ROOT/state \
    XDG_CACHE_HOME=$ROOT/cache XDG_RUNTIME_DIR=$ROOT/run NO_COLOR=1
RAW=$ROOT/raw
QPID=
cleanup() {
    [ -n "$QPID" ] && kill -9 "$QPID" 2>/dev/null || true
    ip netns exec "$NS" "$BIN/banger" daemon stop >/dev/null 2>&1 || true
    ip netns del "$NS" 2>/dev/null || true
    ip netns del "$RAWNS" 2>/dev/null || true
    rm -rf "$RAW" "$ROOT/snap"
}
trap cleanup EXIT
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "== pulling the default image and kernel (host side, cached after the first run)"
"$BIN/banger" image pull debian-bookworm >/dev/null
"$BIN/banger" kernel pull debian-cloud >/dev/null
"$BIN/banger" daemon stop >/dev/null
ip netns add "$NS"
ip -n "$NS" link set lo up
in_ns() { ip netns exec "$NS" "$@"; }

# The PSS of VM $1's VMM in MiB (the process whose command line carries the VM's tag).
pss() {
    local id pid
    id=$(in_ns "$BIN/banger" vm show "$1" --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
    pid=$(pgrep -f "banger-$id" | head -1)
    awk '/^Pss:/ {s += $2} END {print s / 1024}' "/proc/$pid/smaps_rollup"
}
create_timed() { # name times-file [flags...]
    local name=$1 out=$2; shift 2
    local t0 t1
    t0=$(now)
    in_ns "$BIN/banger" vm create --name "$name" --vcpu 1 --memory 512M "$@" >/dev/null 2>"$ROOT/create.err" \
        || { cat "$ROOT/create.err" >&2; exit 1; }
    t1=$(now)
    echo "$t1 - $t0" | bc >> "$out"
    settle
}
# Between creates (outside the timed window): each create's spare disks are made in the
# background after it (a copy and a sync), as they would be between a user's creates. A
# create that comes sooner waits for them; SETTLE=0 measures that back-to-back case.
settle() { sync; sleep "${SETTLE:-4}"; }
# The raw QEMU floors run interleaved with banger's runs (banger, raw, banger, raw, …), so
# a drift of the machine's speed during the benchmark hits both alike.
KERNEL=$(in_ns "$BIN/banger" kernel show debian-cloud --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["vmlinux_path"])')
INITRD=$(in_ns "$BIN/banger" kernel show debian-cloud --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["initrd_path"])')
ROOTFS=$(in_ns "$BIN/banger" image show debian-bookworm --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["rootfs_path"])')
SEED=$(in_ns "$BIN/banger" image show debian-bookworm --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["work_seed_path"])')
KEY=$ROOT/state/banger/ssh/id_ed25519
# The agent banger's VMs run (the daemon writes it into every VM's disk): the raw guests run it too.
AGENT=$BIN/../libexec/banger/banger-agent
[ -x "$AGENT" ] || AGENT=$BIN/banger-agent
[ -x "$AGENT" ] || { echo "no banger-agent next to $BIN" >&2; exit 1; }
# raw_rootfs: a copy of the image's rootfs with that agent.
raw_rootfs() {
    cp --sparse=always "$ROOTFS" "$RAW/rootfs.ext4"
    printf 'rm /usr/local/bin/banger-agent\nwrite %s /usr/local/bin/banger-agent\nsif /usr/local/bin/banger-agent mode 0100755\n' \
        "$AGENT" > "$RAW/agent.dbg"
    debugfs -w -f "$RAW/agent.dbg" "$RAW/rootfs.ext4" >/dev/null 2>&1
}
# A namespace of its own: banger's bridge in $NS uses the same subnet.
ip netns add "$RAWNS"
ip -n "$RAWNS" link set lo up
in_raw() { ip netns exec "$RAWNS" "$@"; }
in_raw ip link add br-bench type bridge
in_raw ip addr add 172.30.0.1/24 dev br-bench
in_raw ip link set br-bench up
in_raw ip tuntap add dev tap-bench mode tap
in_raw ip link set tap-bench master br-bench up
KHZ=$(awk -F: '/cpu MHz/ {printf "%d", $2*1000; exit}' /proc/cpuinfo)
QMP=$ROOT/qmp.py
cp bench/qmp.py "$QMP"
# raw_qemu anon|template|restore: the same guest (banger's devices, its agent's virtio-serial
# port included, with nothing connected to it); a template keeps its RAM in a shared file
# (to be saved), a restore maps that file private and waits for the saved state.
raw_qemu() {
    local machine=microvm,x-option-roms=off,isa-serial=on,rtc=on extra=()
    case "$1" in
    template) machine+=,memory-backend=ram0
        extra=(-object "memory-backend-file,id=ram0,size=512M,mem-path=$ROOT/snap/ram,share=on") ;;
    restore) machine+=,memory-backend=ram0
        extra=(-object "memory-backend-file,id=ram0,size=512M,mem-path=$ROOT/snap/ram,share=off" -incoming defer) ;;
    esac
    in_raw qemu-system-x86_64 -M "$machine" -accel tcg -cpu max \
        -smp 1 -m 512M -nodefaults -no-user-config -no-reboot -display none \
        -serial "file:$RAW/console.log" -kernel "$KERNEL" -initrd "$INITRD" \
        -append "console=ttyS0 reboot=k panic=1 root=/dev/vda rw init=/usr/local/bin/banger-agent banger.hostname=raw banger.ip=172.30.0.2/24 banger.gw=172.30.0.1 banger.work=/dev/vdb tsc_early_khz=$KHZ tsc=reliable" \
        -drive "id=d0,file=$RAW/rootfs.ext4,format=raw,if=none" -device virtio-blk-device,drive=d0 \
        -drive "id=d1,file=$RAW/work.ext4,format=raw,if=none" -device virtio-blk-device,drive=d1 \
        -netdev tap,id=n0,ifname=tap-bench,script=no,downscript=no -device virtio-net-device,netdev=n0 \
        -device virtio-serial-device -chardev "socket,id=agent,path=$RAW/agent.sock,server=on,wait=off" \
        -device virtserialport,chardev=agent,name=banger.agent \
        -qmp "unix:$RAW/qmp.sock,server=on,wait=off" -daemonize -pidfile "$RAW/qemu.pid" "${extra[@]}"
}
# The same readiness criterion as banger's "wait for SSH" stage: sshd sends its banner.
banner() {
    for _ in $(seq 1 600); do
        if in_raw python3 -c '
import socket, sys
s = socket.create_connection(("172.30.0.2", 22), timeout=0.2)
s.settimeout(2)
sys.exit(0 if s.recv(255).startswith(b"SSH-2.0-") else 1)' 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    return 1
}
# One timed raw cold boot (fresh disks, as banger's cold create has), appended to raw.times.
raw_cold_once() {
    rm -rf "$RAW"; mkdir -p "$RAW"
    raw_rootfs
    cp --sparse=always "$SEED" "$RAW/work.ext4"
    truncate -s 8G "$RAW/work.ext4"; e2fsck -fy "$RAW/work.ext4" >/dev/null 2>&1 || true; resize2fs "$RAW/work.ext4" >/dev/null 2>&1
    printf 'mkdir .ssh\nwrite %s .ssh/authorized_keys\nsif .ssh mode 040700\nsif .ssh/authorized_keys mode 0100600\nsif .ssh uid 0\nsif .ssh/authorized_keys uid 0\n' "$KEY.pub" > "$RAW/dbg"
    debugfs -w -f "$RAW/dbg" "$RAW/work.ext4" >/dev/null 2>&1
    t0=$(now)
    raw_qemu anon
    QPID=$(cat "$RAW/qemu.pid")
    ok=; banner && ok=1
    t1=$(now)
    # And the key must really log in (not timed: banger's create does not log in either).
    in_raw ssh -F /dev/null -i "$KEY" -o IdentitiesOnly=yes -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=5 -o BatchMode=yes \
        root@172.30.0.2 true || { echo "raw guest refused the key" >&2; exit 1; }
    [ -n "$ok" ] || { echo "raw guest never answered; console: $RAW/console.log" >&2; exit 1; }
    echo "$t1 - $t0" | bc >> "$ROOT/raw.times"
    kill -9 "$QPID"; QPID=
    sleep 0.5
    settle
}
# The raw guest saved once (the recipe of banger-vmm's qemu::snapshot): every raw restore
# starts from it.
raw_template() {
    rm -rf "$RAW" "$ROOT/snap"; mkdir -p "$RAW" "$ROOT/snap"
    raw_rootfs
    cp --sparse=always "$SEED" "$RAW/work.ext4"
    truncate -s 8G "$RAW/work.ext4"; e2fsck -fy "$RAW/work.ext4" >/dev/null 2>&1 || true; resize2fs "$RAW/work.ext4" >/dev/null 2>&1
    printf 'mkdir .ssh\nwrite %s .ssh/authorized_keys\nsif .ssh mode 040700\nsif .ssh/authorized_keys mode 0100600\nsif .ssh uid 0\nsif .ssh/authorized_keys uid 0\n' "$KEY.pub" > "$RAW/dbg"
    debugfs -w -f "$RAW/dbg" "$RAW/work.ext4" >/dev/null 2>&1
    raw_qemu template
    QPID=$(cat "$RAW/qemu.pid")
    banner || { echo "the template never answered; console: $RAW/console.log" >&2; exit 1; }
    CAP='{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"x-ignore-shared","state":true}]}}'
    python3 "$QMP" "$RAW/qmp.sock" "$CAP" '{"execute":"stop"}' \
        "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"exec:cat > $ROOT/snap/state\"}}"
    python3 "$QMP" "$RAW/qmp.sock" --wait-migration || { echo "saving the template failed" >&2; exit 1; }
    # Disks copied while paused: every restore starts from these.
    cp --sparse=always "$RAW/rootfs.ext4" "$ROOT/snap/rootfs.ext4"
    cp --sparse=always "$RAW/work.ext4" "$ROOT/snap/work.ext4"
    kill -9 "$QPID"; QPID=
    sleep 0.5
}
# One timed raw restore (the physical floor for banger's warm starts), appended to
# restore.times with its PSS.
raw_restore_once() {
    rm -f "$RAW"/*.ext4 "$RAW/qmp.sock"
    cp --sparse=always "$ROOT/snap/rootfs.ext4" "$RAW/rootfs.ext4"
    cp --sparse=always "$ROOT/snap/work.ext4" "$RAW/work.ext4"
    t0=$(now)
    raw_qemu restore
    QPID=$(cat "$RAW/qemu.pid")
    python3 "$QMP" "$RAW/qmp.sock" "$CAP" \
        "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":\"exec:cat $ROOT/snap/state\"}}"
    python3 "$QMP" "$RAW/qmp.sock" --wait-migration || { echo "a restore did not load" >&2; exit 1; }
    python3 "$QMP" "$RAW/qmp.sock" '{"execute":"cont"}'
    banner || { echo "a restore never answered; console: $RAW/console.log" >&2; exit 1; }
    t1=$(now)
    echo "$t1 - $t0" | bc >> "$ROOT/restore.times"
    awk '/^Pss:/ {s += $2} END {print s / 1024}' "/proc/$QPID/smaps_rollup" >> "$ROOT/restore.pss"
    kill -9 "$QPID"; QPID=
    sleep 0.5
    settle
}
: > "$ROOT/raw.times"; : > "$ROOT/restore.times"; : > "$ROOT/restore.pss"
# Every run starts without warm snapshots: the first non-cold create below saves one.
rm -rf "$ROOT/state/banger/snapshots"

echo "== banger: cold vm create --cold (create -> SSH ready), $RUNS runs, all kept for the PSS row, each followed by a raw QEMU boot"
: > "$ROOT/banger.times"; : > "$ROOT/host.times"; : > "$ROOT/cold.pss"
for i in $(seq 1 "$RUNS"); do
    create_timed "bench-$i" "$ROOT/banger.times" --cold
    # Host-side share: the stages that run before the VMM starts, from the daemon's own timings.
    in_ns "$BIN/banger" daemon operations --json | python3 -c '
import json, sys
ops = [o for o in json.load(sys.stdin) if o["kind"] == "vm.create" and o.get("target") == sys.argv[1]]
st = {s["name"]: s.get("duration_ms", 0) for s in ops[-1]["stages"]}
print((st.get("prepare disks", 0) + st.get("network", 0) + st.get("boot", 0)) / 1000)' "bench-$i" >> "$ROOT/host.times"
    raw_cold_once
done
sleep 5 # let the guests settle before their memory is read
for i in $(seq 1 "$RUNS"); do pss "bench-$i" >> "$ROOT/cold.pss"; done
for i in $(seq 1 "$RUNS"); do in_ns "$BIN/banger" vm delete "bench-$i" >/dev/null; done

echo "== banger: the class's first create saves its warm snapshot"
: > "$ROOT/template.times"
create_timed bench-tpl "$ROOT/template.times"
grep -q "save warm snapshot" "$ROOT/create.err" || { echo "no warm snapshot was saved" >&2; cat "$ROOT/create.err" >&2; exit 1; }
in_ns "$BIN/banger" vm delete bench-tpl >/dev/null

echo "== banger: restored vm create (create -> SSH ready), $RUNS runs, all kept for the PSS row, each followed by a raw QEMU restore"
raw_template
: > "$ROOT/warm.times"; : > "$ROOT/warm.pss"
for i in $(seq 1 "$RUNS"); do
    create_timed "bench-w$i" "$ROOT/warm.times"
    grep -q "✓ restore" "$ROOT/create.err" || { echo "bench-w$i did not restore" >&2; cat "$ROOT/create.err" >&2; exit 1; }
    raw_restore_once
done
sleep 5
for i in $(seq 1 "$RUNS"); do pss "bench-w$i" >> "$ROOT/warm.pss"; done
for i in $(seq 1 "$RUNS"); do in_ns "$BIN/banger" vm delete "bench-w$i" >/dev/null; done

echo "== banger: vm run --rm REPO -- true, cold and warm, $RUNS runs each"
REPO=$ROOT/repo
rm -rf "$REPO"; mkdir -p "$REPO"; echo bench > "$REPO/README"
git -C "$REPO" init -q -b main
git -C "$REPO" add README
git -C "$REPO" -c user.name=bench -c user.email=bench@example.com commit -qm bench
: > "$ROOT/run-cold.times"; : > "$ROOT/run-warm.times"
for i in $(seq 1 "$RUNS"); do
    for mode in cold warm; do
        flags=(); [ "$mode" = cold ] && flags=(--cold)
        t0=$(now)
        in_ns "$BIN/banger" vm run --rm --vcpu 1 --memory 512M "${flags[@]}" "$REPO" -- true >/dev/null 2>"$ROOT/run.err" \
            || { cat "$ROOT/run.err" >&2; exit 1; }
        t1=$(now)
        echo "$t1 - $t0" | bc >> "$ROOT/run-$mode.times"
        settle
    done
done
in_ns "$BIN/banger" daemon stop >/dev/null 2>&1 || true

rm -rf "$ROOT/snap"

row() { printf '%-48s %8.2f   %s\n' "$1" "$(median < "$2")" "$(tr '\n' ' ' < "$2")"; }
printf '\n%-48s %8s   runs: %s\n' "measure (seconds, median of $RUNS)" "median" "all"
row "banger vm create --cold -> SSH ready" "$ROOT/banger.times"
row "banger vm create, restored -> SSH ready" "$ROOT/warm.times"
row "banger first create of a class (saves)" "$ROOT/template.times"
row "raw QEMU start -> sshd banner" "$ROOT/raw.times"
row "raw QEMU restore -> sshd banner" "$ROOT/restore.times"
row "banger vm run --rm REPO -- true, cold" "$ROOT/run-cold.times"
row "banger vm run --rm REPO -- true, warm" "$ROOT/run-warm.times"
row "banger host-side stages (disks+network+launch)" "$ROOT/host.times"
printf '%-48s %8.1f   %s\n' "PSS of $RUNS cold banger VMs, total (MiB)" "$(paste -sd+ "$ROOT/cold.pss" | bc)" "$(tr '\n' ' ' < "$ROOT/cold.pss")"
printf '%-48s %8.1f   %s\n' "PSS of $RUNS restored banger VMs, total (MiB)" "$(paste -sd+ "$ROOT/warm.pss" | bc)" "$(tr '\n' ' ' < "$ROOT/warm.pss")"
printf '%-48s %8.1f   %s\n' "raw QEMU restored guest PSS (MiB)" "$(median < "$ROOT/restore.pss")" "$(tr '\n' ' ' < "$ROOT/restore.pss")"
ratio() { echo "scale=2; $(median < "$1") / $(median < "$2")" | bc; }
echo
echo "restored / cold create: $(ratio "$ROOT/warm.times" "$ROOT/banger.times")x (target <= 0.25)"
echo "restored create / raw restore: $(ratio "$ROOT/warm.times" "$ROOT/restore.times")x (target <= 1.1)"
echo "cold create / raw boot: $(ratio "$ROOT/banger.times" "$ROOT/raw.times")x (target <= 1.05)"
echo "warm vm run / cold vm run: $(ratio "$ROOT/run-warm.times" "$ROOT/run-cold.times")x (target <= 0.35 of the cold run)"
