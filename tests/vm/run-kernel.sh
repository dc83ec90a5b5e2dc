#!/bin/bash
# Boot a Debian kernel package under qemu (software emulation) and run weir's datapath tests
# in it: kernel-version coverage for the BPF programs.
#
#   tests/vm/run-kernel.sh [options] KERNEL_PACKAGE
#
# KERNEL_PACKAGE is a Debian package name: a meta package (linux-image-cloud-amd64,
# linux-image-6.12-cloud-amd64) is followed to the real image package it depends on. The .deb
# is fetched with `apt-get download` and cached; the initramfs holds busybox-static, an /init,
# the test binaries with the shared libraries ldd lists, the host's ip, tc and bpftool (the
# iface suite's veths, and the kernel's view of what is attached to them), and the kernel
# modules the suites need with their dependencies (dummy: the tests need a non-loopback
# device; veth, sch_ingress and cls_bpf: see `modules` below).
#
# Standard output: only what the guest's /init writes to its second serial port: one TAP
# stream per suite between "#@ suite NAME" and "#@ end NAME rc=N" lines, then
# "#@ WEIR-VM-DONE rc=N". The kernel console goes to --console FILE (default: discarded, and
# its tail is printed on stderr when the guest does not finish).
#
# Options:
#   --suites "datapath policy hook"  what to run in the guest (default: those three; also
#                                    guard-lsm, guard-nolsm, guard-escape and
#                                    guard-escape-bench, which adds the getpid benchmark:
#                                    tests/vm/guard-suite.sh; iface: ingress at the interface
#                                    and ingress shaping on veths, tests/vm/iface-suite.sh)
#   --append "ARGS"                  more kernel command line (e.g. an lsm= list)
#   --console FILE                   keep the guest's kernel console
#   --timeout SECONDS                kill qemu after this long (default 180)
#   --print-package                  only print the real package KERNEL_PACKAGE resolves to
#
# Exit status: the guest's (0: every suite passed), 77 when the kernel package cannot be had
# (the reason on stderr), 3 when the guest did not finish, 2 on a usage or host error.
#
# Environment: WEIR_OUTPUT (build output, default .output), WEIR_VM_CACHE (default
# /var/cache/weir-vm). Never uses KVM: /dev/kvm on the test machines cannot run stock kernels.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
OUTPUT=${WEIR_OUTPUT:-$root/.output}
CACHE=${WEIR_VM_CACHE:-/var/cache/weir-vm}

suites="datapath policy hook"
append=
console=
timeout=180
print_only=0

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--suites) suites=$2; shift 2 ;;
	--append) append=$2; shift 2 ;;
	--console) console=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--print-package) print_only=1; shift ;;
	-h | --help) usage ;;
	-*) echo "run-kernel.sh: unknown option $1" >&2; usage ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || usage
want=$1

skip() {
	echo "run-kernel.sh: $want: $*" >&2
	exit 77
}
die() {
	echo "run-kernel.sh: $*" >&2
	exit 2
}

# Follow meta packages (Depends: linux-image-...) to the package that ships the kernel.
resolve() {
	local p=$1 dep _
	for _ in 1 2 3 4; do
		apt-cache show "$p" >/dev/null 2>&1 || return 1
		dep=$(apt-cache depends "$p" 2>/dev/null |
			awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
		[ -n "$dep" ] || break
		p=$dep
	done
	echo "$p"
}

pkg=$(resolve "$want") || skip "no such package in the apt lists (run tests/install-deps.sh, or apt-get update)"
if [ "$print_only" = 1 ]; then
	echo "$pkg"
	exit 0
fi

for f in "$OUTPUT/tests/test_datapath" "$OUTPUT/tests/test_policy"; do
	[ -x "$f" ] || die "$f is missing: run 'make test-build' first"
done
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is missing: run tests/install-deps.sh"
command -v cpio >/dev/null || die "cpio is missing: run tests/install-deps.sh"
busybox=$(command -v busybox || true)
if [ -z "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then die "a static busybox is needed (busybox-static)"; fi

# --- the kernel: download once, keep vmlinuz and the modules the guest loads ----------------
# The modules, each with what it needs first: dummy (the tests need a non-loopback device),
# veth, sch_ingress (which provides clsact) and cls_bpf (the iface suite's veth pairs and tc's
# fallback on a kernel without tcx). The package ships no modules.dep (its postinst makes one):
# busybox's depmod makes it here from the package's own modules.
modules="dummy veth sch_ingress cls_bpf"

# mod_file NAME: the file of module NAME in modules.dep (relative to $moddir), else nothing
mod_file() {
	awk -F: -v want="$1" '{ n = $1; sub(/.*\//, "", n); sub(/\.ko(\.[a-z]+)?$/, "", n)
		gsub(/-/, "_", n); if (n == want) { print $1; exit } }' "$moddir/modules.dep"
}

# mod_add FILE: FILE after every module it depends on (modules.dep lists them all), each once
mod_order=()
mod_add() {
	local f=$1 d deps
	case " ${mod_order[*]} " in *" $f "*) return 0 ;; esac
	read -ra deps < <(awk -v f="$f:" '$1 == f { $1 = ""; print }' "$moddir/modules.dep") || true
	for d in "${deps[@]}"; do
		mod_add "$d"
	done
	mod_order+=("$f")
}

# mod_unpack FILE OUT: the module uncompressed (busybox's insmod in the guest takes plain .ko)
mod_unpack() {
	case "$1" in
	*.ko.xz) xz -dc "$1" >"$2" ;;
	*.ko.zst) zstd -qdc "$1" >"$2" ;;
	*.ko.gz) gzip -dc "$1" >"$2" ;;
	*.ko) cp "$1" "$2" ;;
	*) die "$1: not a kernel module" ;;
	esac
}

# $CACHE/guest/PKG: vmlinuz, release, modules/ (the .ko files, their load order, the list
# they were unpacked for). $CACHE/kernels/PKG is an older layout (vmlinuz and dummy.ko).
mkdir -p "$CACHE/debs" "$CACHE/guest"
kdir=$CACHE/guest/$pkg
exec 9>"$CACHE/.lock"
flock 9 # one download and unpack at a time
# unpacked before with another list of modules (or none): unpack again from the cached .deb
if [ ! -e "$kdir/.done" ] || [ "$(cat "$kdir/modules/wanted" 2>/dev/null)" != "$modules" ]; then
	deb=$(find "$CACHE/debs" -maxdepth 1 -name "${pkg}_*.deb" | sort | head -n1)
	if [ -z "$deb" ]; then
		echo "run-kernel.sh: downloading $pkg (for $want)" >&2
		dl=$(mktemp -d "$CACHE/debs/.dl.XXXXXX")
		if ! (cd "$dl" && apt-get -q -o APT::Sandbox::User=root download "$pkg") >"$dl/log" 2>&1; then
			reason=$(grep -E '^(E|W):' "$dl/log" | head -n2 | tr '\n' ' ')
			rm -rf "$dl"
			skip "apt-get download $pkg failed: ${reason:-no reason given}"
		fi
		mv "$dl"/*.deb "$CACHE/debs/"
		rm -rf "$dl"
		deb=$(find "$CACHE/debs" -maxdepth 1 -name "${pkg}_*.deb" | sort | head -n1)
	fi
	rm -rf "$kdir.tmp"
	mkdir -p "$kdir.tmp/modules"
	dpkg-deb --fsys-tarfile "$deb" |
		tar -x -C "$kdir.tmp" --wildcards './boot/vmlinuz-*' '*/lib/modules/*'
	v=$(find "$kdir.tmp/boot" -name 'vmlinuz-*' | head -n1)
	[ -n "$v" ] || die "$deb holds no /boot/vmlinuz-*"
	rel=$(basename "$v" | sed 's/^vmlinuz-//')
	mv "$v" "$kdir.tmp/vmlinuz"
	# /lib/modules/REL, or /usr/lib/modules/REL in a merged-/usr package
	moddir=$(find "$kdir.tmp" -maxdepth 4 -type d -path "*/lib/modules/$rel" | head -n1)
	[ -n "$moddir" ] || die "$deb holds no lib/modules/$rel"
	"$busybox" depmod -b "${moddir%/lib/modules/"$rel"}" "$rel" ||
		die "depmod failed on the modules of $deb"
	for m in $modules; do
		f=$(mod_file "$m")
		if [ -n "$f" ]; then
			mod_add "$f"
		elif ! grep -Eq "(^|/)$m\.ko" "$moddir/modules.builtin" 2>/dev/null; then
			die "$pkg has no module $m and does not build it in"
		fi
	done
	for f in "${mod_order[@]}"; do
		b=$(basename "$f" | sed 's/\.ko.*$/.ko/')
		mod_unpack "$moddir/$f" "$kdir.tmp/modules/$b"
		echo "$b" >>"$kdir.tmp/modules/order"
	done
	touch "$kdir.tmp/modules/order"
	echo "$modules" >"$kdir.tmp/modules/wanted"
	rm -rf "$kdir.tmp/boot" "$kdir.tmp/lib" "$kdir.tmp/usr"
	echo "$rel" >"$kdir.tmp/release"
	touch "$kdir.tmp/.done"
	rm -rf "$kdir"
	mv "$kdir.tmp" "$kdir"
fi
release=$(cat "$kdir/release")
exec 9>&-

# --- the initramfs ---------------------------------------------------------------------------
tmp=$(mktemp -d /tmp/weir-vm.XXXXXX)
qpid=
# stop_qemu: SIGTERM, up to 2 s to exit, then SIGKILL
stop_qemu() {
	kill "$qpid" 2>/dev/null || return 0
	for _ in $(seq 20); do
		kill -0 "$qpid" 2>/dev/null || return 0
		sleep 0.1 # a poll, up to the 2 s grace period
	done
	kill -9 "$qpid" 2>/dev/null || true
}
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	[ -z "$qpid" ] || stop_qemu
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ir=$tmp/root
mkdir -p "$ir"/{bin,dev,proc,sys,tmp,run,etc,weir,bundle}
cp "$busybox" "$ir/bin/busybox"
ln -s busybox "$ir/bin/sh"

# copy a binary and every library ldd lists, at the same paths, the loader included
add_bin() {
	local f=$1 lib
	cp "$f" "$ir/weir/"
	for lib in $(ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
		[ -e "$ir$lib" ] && continue
		mkdir -p "$ir$(dirname "$lib")"
		cp -L "$lib" "$ir$lib"
	done
}
add_bin "$OUTPUT/tests/test_datapath"
add_bin "$OUTPUT/tests/test_policy"
for b in weir-hook weir; do
	[ -x "$OUTPUT/bin/$b" ] || die "$OUTPUT/bin/$b is missing: run 'make test-build' first"
	add_bin "$OUTPUT/bin/$b"
done
for b in gtool wtool; do
	[ -x "$OUTPUT/bin/$b" ] || die "$OUTPUT/bin/$b is missing: run 'make test-build' first"
	cp "$OUTPUT/bin/$b" "$ir/weir/$b" # static
done
# the iface suite's veths and namespaces, and the kernel's view of their tc filters and tcx
# programs; `ip netns` keeps its namespaces in /var/run/netns
for b in ip tc bpftool; do
	f=$(command -v "$b") || die "$b is missing: run tests/install-deps.sh"
	add_bin "$f"
done
mkdir -p "$ir/var"
ln -s ../run "$ir/var/run"
cp "$here/guard-suite.sh" "$here/iface-suite.sh" "$ir/weir/"
cp -r "$kdir/modules" "$ir/weir/modules"
echo "$suites" >"$ir/weir/suites"

cat >"$ir/init" <<'EOF'
#!/bin/sh
# weir's guest /init: set up what the datapath tests need, run them, report on ttyS1, power off
/bin/busybox --install -s /bin
export PATH=/bin LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
mount -t devtmpfs dev /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
out=/dev/ttyS1
say() { echo "$*" >"$out"; }
say "# guest kernel $(uname -r), $(nproc) cpus, LSMs $(cat /sys/kernel/security/lsm 2>/dev/null)"
ip link set lo up
# the kernel modules the suites need, in load order (dummy: one non-loopback device)
while read -r m; do
	a=
	[ "$m" = dummy.ko ] && a=numdummies=1
	insmod /weir/modules/"$m" $a || say "# insmod $m failed"
done </weir/modules/order
ip link set dummy0 up 2>/dev/null || say "# no dummy0 interface"
# the tests run in a cgroup of their own (test_datapath registers its own cgroup)
mkdir /sys/fs/cgroup/weir-vm
echo $$ >/sys/fs/cgroup/weir-vm/cgroup.procs
status=0
hook_suite() {
	# weir-hook attaches a fake container's cgroup, then the kernel enforces its policy
	n=0 fail=0
	t() { # t DESC CMD...: one TAP line
		d=$1; shift
		n=$((n + 1))
		if "$@" >/tmp/t.out 2>&1; then echo "ok $n - $d"; else
			echo "not ok $n - $d"; fail=1; sed 's/^/#   /' /tmp/t.out; fi
	}
	mkdir -p /etc/weir /sys/fs/cgroup/c1
	# c1 is nowhere a runtime puts containers: the node config allows it. A TCG guest runs 13-20
	# times slower than the host: the first hook loads and verifies the whole datapath
	echo '{"endpoint_cgroups": ["/c1"], "hook_timeout_seconds": 300}' >/etc/weir/weir.conf
	echo '{"ociVersion":"1.0.2","annotations":{"egress.weir.io":"allow 10.1.0.0/16 tcp/443; deny 10.9.0.0/16","monitor.weir.io":"flows"}}' >/bundle/config.json
	sh -c 'echo $$ > /sys/fs/cgroup/c1/cgroup.procs; exec sleep 1000' &
	pid=$!
	# attach once the process is in its cgroup
	i=0
	until grep -qx "$pid" /sys/fs/cgroup/c1/cgroup.procs; do
		i=$((i + 1))
		[ $i -lt 100 ] || break
		sleep 0.1
	done
	echo "{\"ociVersion\":\"1.0.2\",\"id\":\"vm1\",\"status\":\"creating\",\"pid\":$pid,\"bundle\":\"/bundle\"}" >/tmp/state
	t "weir-hook attaches a container cgroup" sh -c '/weir/weir-hook createRuntime </tmp/state >/tmp/hook.out 2>&1; rc=$?; cat /tmp/hook.out; exit $rc'
	# weir-hook leaves out a monitoring program the kernel refuses, with a warning
	t "the kernel takes every monitoring program (sockops, tp_btf/kfree_skb)" sh -c '! grep . /tmp/hook.out'
	t "weir list shows the container" sh -c '/weir/weir list | grep -q vm1'
	# a denied connect fails with EPERM at once; an allowed one gets past the hook (no route)
	t "a denied TCP connect fails with EPERM" sh -c 'echo $$ > /sys/fs/cgroup/c1/cgroup.procs; nc -w 2 10.9.0.1 443 </dev/null 2>&1 | grep -qi "not permitted"'
	t "an allowed TCP connect is not refused by weir" sh -c 'echo $$ > /sys/fs/cgroup/c1/cgroup.procs; ! nc -w 2 10.1.0.1 443 </dev/null 2>&1 | grep -qi "not permitted"'
	# loopback is never filtered; sockops sees the connection
	nc -l -p 8080 >/dev/null 2>&1 </dev/null &
	srv=$!
	# connect once it listens: port 8080 (1F90) in state LISTEN (0A) in /proc/net/tcp or tcp6
	i=0
	until cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q ':1F90 [0-9A-F:]* 0A '; do
		i=$((i + 1))
		[ $i -lt 100 ] || break
		sleep 0.1
	done
	t "a loopback TCP connection from the container passes" sh -c 'echo $$ > /sys/fs/cgroup/c1/cgroup.procs; echo hi | nc -w 2 127.0.0.1 8080'
	kill $srv 2>/dev/null
	wait $srv 2>/dev/null
	/weir/weir stats vm1 >/tmp/stats 2>&1
	sed 's/^/# /' /tmp/stats
	t "weir stats counts the denied connect" grep -Eq 'egress +denied_connects +[1-9]' /tmp/stats
	t "weir stats counts the TCP open (sockops)" grep -q 'active_opens=1' /tmp/stats
	kill $pid
	wait $pid 2>/dev/null
	echo '{"ociVersion":"1.0.2","id":"vm1","status":"stopped","bundle":"/bundle"}' >/tmp/state
	t "weir-hook detaches at poststop" sh -c '/weir/weir-hook poststop </tmp/state'
	echo "1..$n"
	return $fail
}
for s in $(cat /weir/suites); do
	say "#@ suite $s"
	start=$(date +%s)
	case $s in
	datapath) CMOCKA_MESSAGE_OUTPUT=TAP /weir/test_datapath >"$out" 2>&1 ;;
	policy) CMOCKA_MESSAGE_OUTPUT=TAP /weir/test_policy >"$out" 2>&1 ;;
	hook) if [ -x /weir/weir-hook ] && [ -x /weir/weir ]; then hook_suite >"$out" 2>&1
		else printf '1..1\nnot ok 1 - weir-hook and weir are in the guest (built?)\n' >"$out"; false; fi ;;
	guard-lsm | guard-nolsm | guard-escape | guard-escape-bench)
		if [ -x /weir/weir-hook ] && [ -x /weir/weir ] && [ -x /weir/gtool ]; then
			sh /weir/guard-suite.sh "${s#guard-}" >"$out" 2>&1
		else printf '1..1\nnot ok 1 - weir-hook, weir and gtool are in the guest (built?)\n' >"$out"; false; fi ;;
	iface) sh /weir/iface-suite.sh >"$out" 2>&1 ;;
	*) echo "not ok 1 - unknown suite $s" >"$out"; false ;;
	esac
	rc=$?
	[ $rc = 0 ] || status=1
	say "#@ end $s rc=$rc seconds=$(($(date +%s) - start))"
done
say "#@ WEIR-VM-DONE rc=$status"
sync
poweroff -f
EOF
chmod +x "$ir/init"

(cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1) >"$tmp/initrd"

# --- boot ------------------------------------------------------------------------------------
results=$tmp/results
clog=${console:-$tmp/console}
boot() {
	: >"$results"
	: >"$clog"
	echo "run-kernel.sh: booting $pkg ($release) under qemu tcg" >&2
	qemu-system-x86_64 -accel tcg -m 1G -smp 2 -display none -nodefaults -no-user-config -no-reboot \
		-cpu max -kernel "$kdir/vmlinuz" -initrd "$tmp/initrd" \
		-append "console=ttyS0 panic=-1 quiet $append" \
		-serial "file:$clog" -serial "file:$results" -monitor none -nic none \
		</dev/null >"$tmp/qemu.out" 2>&1 &
	qpid=$!
	deadline=$((SECONDS + timeout))
	while kill -0 "$qpid" 2>/dev/null; do
		if [ $SECONDS -ge $deadline ]; then
			echo "run-kernel.sh: $pkg: guest still running after ${timeout}s: killing qemu" >&2
			stop_qemu
			break
		fi
		sleep 0.5 # a poll: the guest powers off when its tests are done
	done
	wait "$qpid" 2>/dev/null || true
	qpid=
}
boot
# A kernel that panics before weir's /init has said a word (seen once: 6.12 in the timer code
# while setting up ARP, under TCG) ran none of weir's code: boot it once more, and say so.
if [ ! -s "$results" ] && grep -q 'Kernel panic' "$clog"; then
	echo "run-kernel.sh: $pkg: the kernel panicked before weir's /init ran; booting it again:" >&2
	tr -d '\r' <"$clog" | grep -m1 -A1 -E 'BUG|RIP:' | sed 's/^/  /' >&2
	boot
fi

tr -d '\r' <"$results"
rc=$(tr -d '\r' <"$results" | sed -n 's/^#@ WEIR-VM-DONE rc=\([0-9]*\)$/\1/p' | tail -n1)
if [ -z "$rc" ]; then
	{
		echo "run-kernel.sh: $pkg: the guest did not finish; qemu said:"
		sed 's/^/  /' "$tmp/qemu.out"
		echo "run-kernel.sh: last lines of the guest console:"
		tr -d '\r' <"$clog" | tail -n 30 | sed 's/^/  /'
	} >&2
	exit 3
fi
exit "$rc"
