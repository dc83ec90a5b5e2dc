#!/bin/bash
# Install weir's build and test dependencies on Debian 12 (bookworm) or newer.
#
# libbpf >= 1.4 and bpftool come from bookworm-backports on Debian 12: bookworm's
# own libbpf 1.1 lacks the tcx API (and its 6.1 UAPI headers the tcx attach types). The backports source is derived from the
# machine's existing Debian source, so no mirror name is written here.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
apt_get() { apt-get -y -q -o Dpkg::Use-Pty=0 "$@"; }

. /etc/os-release
codename=${VERSION_CODENAME:-}

debian_uri() {
	# First Debian main-archive URI from deb822 or one-line sources.
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f"
	done | head -n1
	if [ -f /etc/apt/sources.list ]; then
		awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { print $i; exit } }' \
			/etc/apt/sources.list | head -n1
	fi
}

need_backports=0
if [ "$ID" = debian ] && [ "$codename" = bookworm ]; then
	need_backports=1
fi

if [ "$need_backports" = 1 ] && ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
	uri=$(debian_uri | head -n1)
	[ -n "$uri" ] || { echo "install-deps: no Debian source found in /etc/apt" >&2; exit 1; }
	cat >/etc/apt/sources.list.d/weir-backports.sources <<EOS
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
fi

base=(make gcc clang llvm pkg-config libelf-dev zlib1g-dev libjson-c-dev libcap-dev
	libcmocka-dev libprotobuf-c-dev protobuf-c-compiler libmicrohttpd-dev
	iproute2 iputils-ping nftables iperf3 busybox-static runc jq bc
	podman netavark aardvark-dns iptables socat python3 ncat
	containernetworking-plugins python3-grpcio python3-protobuf protobuf-compiler
	libncurses-dev curl tmux python3-prometheus-client qemu-system-x86 cpio
	clang-format shellcheck scdoc man-db groff-base bash-completion dpkg-dev debhelper lintian pkgconf libclang-rt-dev valgrind)
# linux-libc-dev too: the tcx attach types and link info are in 6.6+ UAPI headers
bp=(libbpf-dev bpftool linux-libc-dev)

all_installed() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || return 1
	done
}

# libbpf 1.4 or newer: older ones lack the tcx and link APIs weir uses.
if [ "${1:-}" = --if-needed ] && all_installed "${base[@]}" "${bp[@]}" &&
	pkg-config --atleast-version=1.4 libbpf; then
	exit 0
fi

apt_get update
apt_get install --no-install-recommends "${base[@]}"
if [ "$need_backports" = 1 ]; then
	apt_get -t bookworm-backports install --no-install-recommends "${bp[@]}"
else
	apt_get install --no-install-recommends "${bp[@]}"
fi
