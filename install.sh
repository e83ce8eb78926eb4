#!/usr/bin/env bash
# Installs banger from this source tree: the Debian packages it needs at run time, a release
# build, and the binaries into a prefix (default /usr/local):
#   PREFIX/bin/banger, PREFIX/bin/bangerd, PREFIX/libexec/banger/banger-agent
#
#   sudo ./install.sh                  install (again: it is idempotent); where systemd runs
#                                      and PREFIX is the default, also runs
#                                      `banger system install --owner <you>` (the services)
#   sudo ./install.sh --no-system      binaries only, no systemd services
#   sudo ./install.sh --uninstall      remove the installed binaries (and the services, via
#                                      `banger system uninstall`); VMs, images and config stay
#   sudo ./install.sh --uninstall --purge
#                                      also remove the invoking user's banger config, state
#                                      (VMs, images, kernels, keys) and cache
#
# Environment: PREFIX (default /usr/local), DESTDIR (staging root, prepended to every
# installed path), SKIP_PACKAGES=1 (do not apt-get anything), CARGO (the cargo to build with).
# The services are set up only with systemd as PID 1 (/run/systemd/system exists), as root,
# with PREFIX=/usr/local and no DESTDIR: the units run /usr/local/bin/bangerd. A temporary
# prefix (CI, packaging) therefore never touches the host's services.
set -euo pipefail
cd "$(dirname "$0")"

PREFIX="${PREFIX:-/usr/local}"
DESTDIR="${DESTDIR:-}"
BIN_DIR="$DESTDIR$PREFIX/bin"
LIBEXEC_DIR="$DESTDIR$PREFIX/libexec/banger"
# Runtime needs: QEMU boots guests; e2fsprogs makes and edits ext4 disks; OpenSSH reaches
# guests; debootstrap, busybox-static, cpio, zstd and xz-utils build the default image and
# kernel from Debian packages; git copies repositories into VMs; nftables for outbound NAT;
# iproute2 for diagnostics.
PACKAGES=(qemu-system-x86 e2fsprogs openssh-client debootstrap busybox-static cpio zstd
    xz-utils git ca-certificates iproute2 procps nftables)

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

uninstall=0
purge=0
no_system=0
for arg in "$@"; do
    case "$arg" in
        --uninstall) uninstall=1 ;;
        --purge) purge=1 ;;
        --no-system) no_system=1 ;;
        -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $arg (see ./install.sh --help)" ;;
    esac
done
[ "$purge" -eq 0 ] || [ "$uninstall" -eq 1 ] || die "--purge only goes with --uninstall"
case "$PREFIX" in /*) ;; *) die "PREFIX must be an absolute path, got $PREFIX" ;; esac

# The user who asked (under sudo, the one behind it): builds run as them and --purge
# removes their data, never root's by accident.
user="${SUDO_USER:-$(id -un)}"
user_home="$(getent passwd "$user" | cut -d: -f6)"
[ -n "$user_home" ] || die "cannot find the home directory of $user"

# Whether to manage the systemd services: see the header.
with_services() {
    [ "$no_system" -eq 0 ] && [ -d /run/systemd/system ] && [ "$(id -u)" -eq 0 ] &&
        [ "$PREFIX" = /usr/local ] && [ -z "$DESTDIR" ]
}

if [ "$uninstall" -eq 1 ]; then
    if with_services && [ -e /etc/banger/install.toml ] && [ -x "$BIN_DIR/banger" ]; then
        say "removing the systemd services"
        if [ "$purge" -eq 1 ]; then
            "$BIN_DIR/banger" system uninstall --purge
        else
            "$BIN_DIR/banger" system uninstall
        fi
    fi
    for f in "$BIN_DIR/banger" "$BIN_DIR/bangerd" "$LIBEXEC_DIR/banger-agent"; do
        if [ -e "$f" ]; then
            rm -f "$f"
            say "removed $f"
        fi
    done
    rmdir "$LIBEXEC_DIR" 2>/dev/null || true
    if [ "$purge" -eq 1 ]; then
        for d in "${XDG_CONFIG_HOME:-$user_home/.config}/banger" \
            "${XDG_STATE_HOME:-$user_home/.local/state}/banger" \
            "${XDG_CACHE_HOME:-$user_home/.cache}/banger"; do
            if [ -e "$d" ]; then
                rm -rf -- "$d"
                say "removed $d"
            fi
        done
    else
        say "your config, VMs, images and kernels are kept (add --purge to remove them)"
    fi
    say "a daemon that is still running keeps its binary until \`banger daemon stop\` (VMs keep running)"
    exit 0
fi

if [ "${SKIP_PACKAGES:-0}" != 1 ]; then
    command -v dpkg-query >/dev/null && command -v apt-get >/dev/null ||
        die "apt-get not found: install these packages yourself, then rerun with SKIP_PACKAGES=1: ${PACKAGES[*]}"
    missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        [ "$(id -u)" -eq 0 ] || die "installing ${missing[*]} needs root: run sudo ./install.sh"
        say "installing packages: ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    else
        say "packages already installed"
    fi
fi

# Build as the invoking user, so target/ never becomes root's.
as_user() {
    if [ "$(id -u)" -eq 0 ] && [ "$user" != root ]; then
        sudo -u "$user" -H env PATH="$user_home/.cargo/bin:$PATH" "$@"
    else
        env PATH="$user_home/.cargo/bin:$PATH" "$@"
    fi
}
cargo="${CARGO:-cargo}"
as_user sh -c "command -v $cargo >/dev/null" ||
    die "cargo not found for $user: install Rust (https://rustup.rs) or set CARGO=/path/to/cargo"
say "building release binaries (a few minutes the first time)"
as_user "$cargo" build --release --locked -p banger-cli -p bangerd
# The agent is PID 1 of every guest, including images without glibc (Alpine, busybox): static.
as_user "$cargo" rustc --release --locked -p banger-agent --bin banger-agent -- \
    -C target-feature=+crt-static
target="$(as_user "$cargo" metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
[ -n "$target" ] || target="$PWD/target"

install -d -m 0755 "$BIN_DIR" "$LIBEXEC_DIR"
install -m 0755 "$target/release/banger" "$BIN_DIR/banger"
install -m 0755 "$target/release/bangerd" "$BIN_DIR/bangerd"
install -m 0755 "$target/release/banger-agent" "$LIBEXEC_DIR/banger-agent"
say "installed $BIN_DIR/banger, $BIN_DIR/bangerd and $LIBEXEC_DIR/banger-agent"

case ":$PATH:" in
    *":$PREFIX/bin:"*) ;;
    *) say "note: $PREFIX/bin is not on your PATH; add it, or run $PREFIX/bin/banger" ;;
esac
if with_services && [ "$user" != root ]; then
    say "installing the systemd services for $user (banger system install)"
    "$BIN_DIR/banger" system install --owner "$user"
    say "done: run banger as $user without sudo, e.g. banger vm run -- uname -a"
elif with_services; then
    say "not installing the services: run as the user who will own the VMs (sudo ./install.sh),"
    say "or: sudo banger system install --owner USER"
else
    if [ "$no_system" -eq 0 ] && [ ! -d /run/systemd/system ]; then
        say "systemd is not running here, so no services were installed"
    fi
    say "a daemon that is already running keeps its old binary until \`banger daemon stop\`"
    say "start the daemon by hand: VM commands run as root start one on demand (bridges and"
    say "TAPs need CAP_NET_ADMIN): sudo banger vm run -- uname -a"
fi
