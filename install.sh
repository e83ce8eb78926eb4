#!/usr/bin/env bash
# Installs banger from this source tree: the Debian packages it needs at run time, a release
# build, and the binaries into a prefix (default /usr/local):
#   PREFIX/bin/banger, PREFIX/bin/bangerd, PREFIX/libexec/banger/banger-agent
#
#   sudo ./install.sh                  install (again: it is idempotent)
#   sudo ./install.sh --uninstall      remove the installed binaries; your VMs, images and
#                                      config stay where they are
#   sudo ./install.sh --uninstall --purge
#                                      also remove the invoking user's banger config, state
#                                      (VMs, images, kernels, keys) and cache
#
# Environment: PREFIX (default /usr/local), DESTDIR (staging root, prepended to every
# installed path), SKIP_PACKAGES=1 (do not apt-get anything), CARGO (the cargo to build with).
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
for arg in "$@"; do
    case "$arg" in
        --uninstall) uninstall=1 ;;
        --purge) purge=1 ;;
        -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

if [ "$uninstall" -eq 1 ]; then
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
as_user "$cargo" build --release --locked -p banger-cli -p bangerd -p banger-agent
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
say "a daemon that is already running keeps its old binary until \`banger daemon stop\`"
say "VM commands need root in this build (bridges and TAPs need CAP_NET_ADMIN): sudo banger vm run -- uname -a"
