# shellcheck shell=bash
# podman helpers for weir's e2e tests. Source common.sh first.
#
# Configuration (see shared/docs/test-machine.md, podman section):
#  * /etc/containers/containers.conf: runtime runc, ulimits, both hooks dirs, netavark,
#    cgroupfs, file events logger, a default_subnet of its own. Written when absent (or when
#    it is one this suite wrote before); a containers.conf written by someone else is left
#    alone and the tests use a private copy through CONTAINERS_CONF instead.
#  * hooks.d: one file, /etc/containers/oci/hooks.d/$E2E_PREFIX.json, stages createRuntime and
#    poststop, pointing at the absolute path of the built weir-hook with WEIR_HOOK_ARGS (the
#    suite's own weir configuration) and no stage argument (weir-hook then takes the stage
#    from the state's status; the runc tests pass it explicitly), matching the annotation keys
#    the shipped hooks.d file matches (weir's own, kubernetes.io/{egress,ingress}-bandwidth). It is validated with jq
#    before it is moved into place, and removed at exit.
#
# Network: podman's bridge lives in the host namespace, so peers here are other podman
# containers (container to container over one bridge). The test creates its own
# network, --internal (no gateway route, no masquerade: nothing can leave the bridge), with
# two subnet halves so that policies can tell peers apart by prefix:
#   IPv4 10.212.0.0/15: peer A 10.212.200.10, peer B 10.213.200.10; containers get 10.212.0.x
#   IPv6 fd79::/48:     peer A fd79:0:0:a::10,  peer B fd79:0:0:b::10
# Those are the first choice. podman refuses a subnet that overlaps a route of the host or
# another network (a machine whose own network is in 10/8, say), so podman_init tries further
# pairs (10.214.0.0/15 and fd7a::/48, ...) until podman takes one; POD_* say which it got.
# Peers carry no weir annotation (no policy) and run wtool servers:
#   tcp 8080 8000 8005 8010 9000, udp sink 5000, udp echo 5001.

PODMAN=${PODMAN:-podman}
PODMAN_CONF_MARK="# weir tests/e2e: podman configuration for this test machine"
PODMAN_HOOKS_DIR=/etc/containers/oci/hooks.d
POD_SUBNET4=
POD_SUBNET6=
POD_A4=
POD_B4=
POD_A6=
POD_B6=
# the halves of peer B, for policies that name a prefix
POD_B4_NET=
POD_B6_NET=
POD_SUPER4=
POD_SUPER6=
POD_NET=
POD_ROOTFS=

_podman_conf() {
	cat <<EOF
$PODMAN_CONF_MARK
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
default_sysctls = ["net.ipv4.ping_group_range=0 2147483647"]

[network]
network_backend = "netavark"
default_subnet = "10.233.0.0/24"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
hooks_dir = ["/usr/share/containers/oci/hooks.d", "/etc/containers/oci/hooks.d"]
EOF
}

podman_configure() {
	local conf=/etc/containers/containers.conf
	mkdir -p /etc/containers /usr/share/containers/oci/hooks.d "$PODMAN_HOOKS_DIR"
	if [ -n "${CONTAINERS_CONF:-}" ]; then
		diag "using CONTAINERS_CONF=$CONTAINERS_CONF as given"
	elif [ ! -e "$conf" ] || head -n1 "$conf" | grep -qxF "$PODMAN_CONF_MARK"; then
		_podman_conf >"$conf.tmp.$$"
		mv "$conf.tmp.$$" "$conf"
	else
		diag "$conf was not written by this suite: using a private copy (CONTAINERS_CONF)"
		_podman_conf >"$E2E_TMP/containers.conf"
		export CONTAINERS_CONF=$E2E_TMP/containers.conf
	fi
}

# The shipped hooks.d file's "when" (examples/hooks.d/weir.json: weir's keys and the Kubernetes
# bandwidth annotations), so that the suites test the matcher a node gets.
_podman_hook_json() {
	jq -n --arg path "$WEIR_HOOK" --argjson conf "$(weir_hook_args_json)" \
		--argjson when "$(jq -c .when "$REPO/examples/hooks.d/weir.json")" '{
		version: "1.0.0",
		hook: {path: $path, args: (["weir-hook"] + $conf), timeout: 20},
		when: $when,
		stages: ["createRuntime", "poststop"]
	}'
}

# podman_hooks_install: the weir hooks.d file of this run (validated, removed at exit).
# With PODMAN_HOOKS_INSTALLED=FILE (tests/pkg/deb.t: the installed package's hooks.d file),
# none is written: podman must find FILE itself, and FILE must run $WEIR_HOOK.
PODMAN_HOOK_FILE=
podman_hooks_install() {
	local tmp=$E2E_TMP/hook.json other
	if [ -n "${PODMAN_HOOKS_INSTALLED:-}" ]; then
		PODMAN_HOOK_FILE=$PODMAN_HOOKS_INSTALLED
		jq -e --arg path "$WEIR_HOOK" '.version == "1.0.0" and .hook.path == $path' \
			"$PODMAN_HOOK_FILE" >/dev/null ||
			bail_out "$PODMAN_HOOK_FILE does not run $WEIR_HOOK: $(cat "$PODMAN_HOOK_FILE" 2>&1)"
		diag "hooks.d: the installed $PODMAN_HOOK_FILE (podman finds it itself)"
		return 0
	fi
	PODMAN_HOOK_FILE=$PODMAN_HOOKS_DIR/$E2E_PREFIX.json
	_podman_hook_json >"$tmp"
	jq -e '.version == "1.0.0" and (.hook.path | startswith("/")) and .stages == ["createRuntime", "poststop"]
		and (.when.annotations | length == 1)' "$tmp" >/dev/null ||
		bail_out "generated hooks.d JSON is invalid: $(cat "$tmp")"
	on_exit rm -f "$PODMAN_HOOK_FILE" "$PODMAN_HOOK_FILE.tmp"
	cp "$tmp" "$PODMAN_HOOK_FILE.tmp"
	mv "$PODMAN_HOOK_FILE.tmp" "$PODMAN_HOOK_FILE"
	# Another weir hook (an installed one) would run twice per container: say so.
	for other in /usr/share/containers/oci/hooks.d/*.json "$PODMAN_HOOKS_DIR"/*.json; do
		[ -e "$other" ] || continue
		[ "$other" != "$PODMAN_HOOK_FILE" ] || continue
		if grep -q weir-hook "$other"; then
			diag "warning: $other also runs a weir-hook"
		fi
		jq -e . "$other" >/dev/null 2>&1 || diag "warning: $other is not valid JSON: every podman run will fail"
	done
}

# _podman_network_create: the suite's network on the first subnet pair podman accepts
# (10.212.0.0/15 + fd79::/48, then 10.214.0.0/15 + fd7a::/48, ..., then 172.16.0.0/15 and up).
# shellcheck disable=SC2034 # POD_* are read by the files that source this one
_podman_network_create() {
	local i o1 o2 h6 err=$E2E_TMP/netcreate.err
	for i in $(seq 0 27); do
		if [ "$i" -lt 20 ]; then
			o1=10 o2=$((212 + 2 * i)) POD_SUPER4=10.0.0.0/8
		else
			o1=172 o2=$((16 + 2 * (i - 20))) POD_SUPER4=172.16.0.0/12
		fi
		h6=$(printf 'fd%02x' $((0x79 + i)))
		if "$PODMAN" network create --internal --subnet "$o1.$o2.0.0/15" --ipv6 \
			--subnet "$h6::/48" "$POD_NET" >/dev/null 2>"$err"; then
			POD_SUBNET4=$o1.$o2.0.0/15 POD_SUBNET6=$h6::/48
			POD_A4=$o1.$o2.200.10 POD_B4=$o1.$((o2 + 1)).200.10
			POD_A6=$h6:0:0:a::10 POD_B6=$h6:0:0:b::10
			POD_B4_NET=$o1.$((o2 + 1)).0.0/16 POD_B6_NET=$h6:0:0:b::/64
			POD_SUPER6=$h6::/16
			return 0
		fi
		grep -q "already used" "$err" || return 1
	done
	return 1
}

podman_init() {
	require_cmd podman jq bpftool
	ensure_wtool
	podman_configure
	POD_ROOTFS=$E2E_TMP/podman-rootfs
	make_rootfs "$POD_ROOTFS"
	POD_NET=$E2E_PREFIX
	_podman_network_create || bail_out "podman network create failed: $(cat "$E2E_TMP/netcreate.err")"
	# Cleanups run in reverse: containers first, then their network.
	on_exit "$PODMAN" network rm -f "$POD_NET"
	on_exit podman_cleanup_all
}

podman_name() { echo "$E2E_PREFIX-$1"; }

# podman 4.3 parses --annotation as a CSV list: a value with a comma (tcp/80,udp/53) must be
# one quoted CSV field, with its own double quotes doubled.
_pod_ann() {
	local v=${1//\"/\"\"}
	printf '"%s"' "$v"
}

# podman_run NAME [options] -- CMD...   (detached; prints nothing; returns podman's status)
#   --egress V / --ingress V / --mode V / --ann K=V   annotations
#   --ip4 A / --ip6 A   fixed addresses
#   --sysctl K=V / --cap-add CAP   passed to podman run
#   --fg         run in the foreground and wait (stdout/stderr in $E2E_TMP/NAME.{out,err})
#   --rm         remove the container when it exits
# stderr of podman itself goes to $E2E_TMP/NAME.err.
podman_run() {
	local name=$1
	shift
	rm -f "$E2E_TMP/$name.cid"
	local args=(--name "$(podman_name "$name")" --label "weir-e2e=$E2E_RUN" --cidfile "$E2E_TMP/$name.cid"
		--network "$POD_NET" --sysctl "net.ipv4.ping_group_range=0 2147483647"
		--sysctl net.ipv6.conf.all.accept_dad=0 --sysctl net.ipv6.conf.default.accept_dad=0)
	local fg=0
	while [ $# -gt 0 ]; do
		case $1 in
		--egress) args+=(--annotation "$(_pod_ann "egress.weir.io=$2")"); shift 2 ;;
		--ingress) args+=(--annotation "$(_pod_ann "ingress.weir.io=$2")"); shift 2 ;;
		--mode) args+=(--annotation "$(_pod_ann "policy-mode.weir.io=$2")"); shift 2 ;;
		--ann) args+=(--annotation "$(_pod_ann "$2")"); shift 2 ;;
		--ip4) args+=(--ip "$2"); shift 2 ;;
		--ip6) args+=(--ip6 "$2"); shift 2 ;;
		--sysctl | --cap-add) args+=("$1" "$2"); shift 2 ;;
		--fg) fg=1; shift ;;
		--rm) args+=(--rm); shift ;;
		--) shift; break ;;
		*) bail_out "podman_run: unknown option $1" ;;
		esac
	done
	if [ "$fg" = 1 ]; then
		"$PODMAN" run "${args[@]}" --rootfs "$POD_ROOTFS" "$@" </dev/null >"$E2E_TMP/$name.out" 2>"$E2E_TMP/$name.err"
	else
		"$PODMAN" run -d "${args[@]}" --rootfs "$POD_ROOTFS" "$@" </dev/null >"$E2E_TMP/$name.id" 2>"$E2E_TMP/$name.err"
	fi
}

podman_exec() {
	local name=$1
	shift
	"$PODMAN" exec "$(podman_name "$name")" "$@"
}

# podman_cid NAME: the id podman gave NAME (from --cidfile: known even when it failed to start)
podman_cid() { cat "$E2E_TMP/$1.cid" 2>/dev/null || true; }

# The lookups below print nothing (and succeed) for a container that does not exist.
podman_id() {
	"$PODMAN" inspect -f '{{.Id}}' "$(podman_name "$1")" 2>/dev/null || true
}

podman_state() {
	"$PODMAN" inspect -f '{{.State.Status}}' "$(podman_name "$1")" 2>/dev/null || echo absent
}

podman_ip4() {
	"$PODMAN" inspect -f "{{(index .NetworkSettings.Networks \"$POD_NET\").IPAddress}}" "$(podman_name "$1")" 2>/dev/null || true
}

podman_ip6() {
	"$PODMAN" inspect -f "{{(index .NetworkSettings.Networks \"$POD_NET\").GlobalIPv6Address}}" \
		"$(podman_name "$1")" 2>/dev/null || true
}

# cgroup v2 directory of a running container
podman_cgroup() {
	local pid cg
	pid=$("$PODMAN" inspect -f '{{.State.Pid}}' "$(podman_name "$1")" 2>/dev/null || true)
	[ -n "$pid" ] && [ "$pid" != 0 ] || return 0
	cg=$(awk -F: '$1 == "0" { print $3 }' "/proc/$pid/cgroup" 2>/dev/null || true)
	[ -z "$cg" ] || echo "$(cgroup2_mount)$cg"
}

# IPv6 addresses of a container no longer tentative (DAD is off, but be sure).
podman_wait_v6() {
	retry 10 _podman_v6_ready "$1"
}
_podman_v6_ready() {
	local flags
	flags=$(podman_exec "$1" cat /proc/net/if_inet6 2>/dev/null | awk '$6 == "eth0" && $1 !~ /^fe80/ { print $5 }')
	[ -n "$flags" ] || return 1
	local f
	for f in $flags; do
		# a half-read /proc line must not reach the arithmetic: an invalid expression
		# there can end a non-interactive shell
		[[ $f =~ ^[0-9a-fA-F]{1,8}$ ]] || return 1
		(((0x$f & 0x40) == 0)) || return 1
	done
}

# podman_peers: peers A and B (no weir annotations) with wtool servers.
podman_peers() {
	local p ip4 ip6
	for p in A B; do
		if [ $p = A ]; then ip4=$POD_A4 ip6=$POD_A6; else ip4=$POD_B4 ip6=$POD_B6; fi
		# shellcheck disable=SC2016 # expanded by the container shell
		podman_run "peer$p" --ip4 "$ip4" --ip6 "$ip6" -- /bin/sh -c '
			for p in 8080 8000 8005 8010 9000; do wtool tcp-server $p & done
			wtool udp-sink 5000 & wtool udp-echo-server 5001 & wait' ||
			bail_out "peer $p did not start: $(cat "$E2E_TMP/peer$p.err")"
	done
	for p in A B; do
		retry 10 _podman_listening "peer$p" || bail_out "peer $p servers did not start"
		podman_wait_v6 "peer$p" || bail_out "peer $p IPv6 not ready"
	done
}
_podman_listening() {
	[ "$("$PODMAN" logs "$(podman_name "$1")" 2>/dev/null | grep -c '^listening')" -ge "${2:-7}" ]
}

# podman_stop NAME: stop and remove (podman runs the poststop hooks).
podman_stop() {
	local n
	n=$(podman_name "$1")
	"$PODMAN" stop -t 1 "$n" >/dev/null 2>&1 || true
	"$PODMAN" rm -f "$n" >"$E2E_TMP/$1.rm" 2>&1
}

podman_cleanup_all() {
	local ids
	ids=$("$PODMAN" ps -aq --filter "label=weir-e2e=$E2E_RUN" 2>/dev/null || true)
	if [ -n "$ids" ]; then
		# shellcheck disable=SC2086
		"$PODMAN" rm -f -t 0 $ids >/dev/null 2>&1 || true
	fi
}
