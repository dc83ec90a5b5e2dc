#!/bin/bash
# Least privilege and what a container can do to weir.
#
#  1. weir-hook and weir-nri keep only the capabilities endpoints need once started
#     (shared/caps.c), with no_new_privs, empty bounding, inheritable and ambient sets.
#  2. A process in a weir container with a user namespace of its own, holding CAP_NET_ADMIN,
#     CAP_SYS_ADMIN, CAP_BPF and CAP_PERFMON there, can neither see nor open weir's pins, maps,
#     programs, links or records, nor detach its own programs, nor load one of its own; its
#     policy stays enforced.
#  3. weir's state folder and bpffs folder hold nothing but root-only folders and files.
#
#   prove -v tests/e2e/privilege.t        (root; `make test-build` first)

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/runc.sh
. "$E2E_LIB/runc.sh"

e2e_init
require_weir
require_cmd jq bpftool
BPFPROBE=$BIN/bpfprobe
[ -x "$BPFPROBE" ] || bail_out "$BPFPROBE missing: run make test-build"
runc_init
cp "$BPFPROBE" "$RUNC_ROOTFS/bin/bpfprobe"

# ---- 1. the capabilities kept ----------------------------------------------------------
# probed from the running kernel: CAP_BPF (39) and CAP_PERFMON (38) where it knows them
if [ "$(cat /proc/sys/kernel/cap_last_cap)" -ge 39 ]; then
	want=$(((1 << 39) | (1 << 38) | (1 << 12) | (1 << 19))) # bpf perfmon net_admin sys_ptrace
else
	want=$(((1 << 21) | (1 << 12) | (1 << 19))) # sys_admin net_admin sys_ptrace
fi
want=$(printf '%016x' "$want")

# caps_of PID: "CapPrm CapEff CapBnd CapInh CapAmb NoNewPrivs" of a running process
caps_of() {
	awk '/^Cap(Prm|Eff|Bnd|Inh|Amb):/ { c[$1] = $2 } /^NoNewPrivs:/ { n = $2 }
		END { print c["CapPrm:"], c["CapEff:"], c["CapBnd:"], c["CapInh:"], c["CapAmb:"], n }' \
		"/proc/$1/status" 2>/dev/null
}
expected_caps="$want $want $want 0000000000000000 0000000000000000 1"
caps_are_expected() { [ "$(caps_of "$1")" = "$expected_caps" ]; }
# wait_caps PID: until the process has dropped what it drops (it does so first thing)
wait_caps() {
	retry 10 caps_are_expected "$1" || true
}

hconf=$E2E_TMP/hook-caps.conf
jq '. + {hook_timeout_seconds: 60}' "$E2E_CONF" >"$hconf"
# the hook waits for a state that does not come: time to look at it
exec 7< <(exec sleep 120)
writer=$!
on_exit kill "$writer"
env -i "$WEIR_HOOK" --config "$hconf" createRuntime <&7 2>"$E2E_TMP/hook.err" &
hook=$!
exec 7<&-
on_exit kill "$hook"
wait_caps "$hook"
is "$(caps_of "$hook")" "$expected_caps" \
	"weir-hook keeps only CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_SYS_PTRACE (or CAP_SYS_ADMIN for the first two), no_new_privs"
kill "$hook"
wait "$hook" 2>/dev/null || true

nconf=$E2E_TMP/nri-caps.conf
jq --arg s "$E2E_TMP/nri-state" '. + {state_dir: $s}' "$E2E_CONF" >"$nconf"
# no runtime at that socket: weir-nri keeps trying to connect, as it would after a restart
"$BIN/weir-nri" --socket "$E2E_TMP/no-runtime.sock" --config "$nconf" 2>"$E2E_TMP/nri.err" &
nri=$!
on_exit kill "$nri"
wait_caps "$nri"
is "$(caps_of "$nri")" "$expected_caps" "weir-nri keeps the same set"
kill -TERM "$nri"
wait "$nri" && rc=0 || rc=$?
is "$rc" 0 "weir-nri stops cleanly on SIGTERM with the reduced set"

# ---- 2. a container that holds CAP_NET_ADMIN in a user namespace of its own -------------
peer_create "$E2E_PREFIX"
peer_server "$E2E_TMP/peer-tcp8080.log" tcp-server 8080
NAME=priv
runc_bundle "$NAME" 1 --egress "allow $PEER_A4 tcp/8080" -- sleep 3600
dir=$(runc_bundle_dir "$NAME")
caps='["CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_BPF", "CAP_PERFMON", "CAP_NET_RAW", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"]'
jq --argjson caps "$caps" '
	.linux.namespaces = ([.linux.namespaces[] | select(.type != "user" and .type != "cgroup")]
		+ [{type: "user"}, {type: "cgroup"}])
	| .linux.uidMappings = [{containerID: 0, hostID: 200000, size: 65536}]
	| .linux.gidMappings = [{containerID: 0, hostID: 200000, size: 65536}]
	| .process.capabilities = {bounding: $caps, effective: $caps, permitted: $caps}
	| del(.linux.sysctl)
	| .mounts = [.mounts[] | select(.destination != "/sys/fs/cgroup")]
		+ [{destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev"]}]' \
	"$dir/config.json" >"$dir/config.json.new"
mv "$dir/config.json.new" "$dir/config.json"
# the container's root is host uid 200000: it must reach the (read-only) rootfs
chmod 0711 "$E2E_TMP" "$E2E_TMP/bundles"
if runc_start "$NAME"; then
	pass "a container with its own user namespace starts with weir's hooks"
else
	fail "a container with its own user namespace starts with weir's hooks"
	diag_block "runc stderr" "$(runc_err "$NAME")"
	bail_out "no container to test"
fi
ID=$(runc_id "$NAME")
CG=$(runc_cgroup "$NAME")

status=$(runc_exec "$NAME" cat /proc/self/status)
eff=$(awk '/^CapEff:/ { print $2 }' <<<"$status")
cmp_num "$(((0x$eff >> 12) & 1))" -eq 1 "the container's process holds CAP_NET_ADMIN (in its user namespace)"
is "$(runc_exec "$NAME" cat /proc/self/uid_map | awk '{ print $1, $2 }')" "0 200000" \
	"its root is host uid 200000"

ep=$(jq -r .endpoint "$WEIR_STATE/containers/$ID.json")
# (bpftool 7.5 prints what it was asked and may still exit 255: its output is what counts)
map_info=$(bpftool -j map show pinned "$WEIR_BPFFS/maps/weir_policy" 2>/dev/null || true)
link_pin=$(find "$WEIR_BPFFS/endpoints/$ep" -mindepth 1 -maxdepth 1 -print -quit)
link_info=$(bpftool -j link show pinned "$link_pin" 2>/dev/null || true)
map_id=$(jq -r .id <<<"$map_info")
link_id=$(jq -r .id <<<"$link_info")
prog_id=$(jq -r .prog_id <<<"$link_info")
cmp_num "$((${map_id:-0} > 0 && ${link_id:-0} > 0 && ${prog_id:-0} > 0))" -eq 1 \
	"the host knows weir_policy (map $map_id), the container's link $link_id and program $prog_id"
progs_before=$(cgroup_progs "$CG")
like "$progs_before" "weir_egress" "weir's programs are attached to its cgroup"
cmp_num "$(jq -r '.netns_ino // 0' "$WEIR_STATE/containers/$ID.json")" -gt 0 \
	"weir saw its network namespace (/proc/PID/ns/net of a runtime's init: CAP_SYS_PTRACE)"

out=$(runc_exec "$NAME" /bin/bpfprobe "$map_id" "$prog_id" "$link_id" "$link_pin" 2>&1)
diag_block "bpfprobe in the container" "$out"
probe() { sed -n "s/^$1 //p" <<<"$probed"; }
probed=$out
for a in next_map_id next_prog_id next_link_id; do
	like "$(probe "$a")" '^EPERM$' "$a: it cannot list the node's BPF objects"
done
like "$(probe map_by_id)" '^EPERM$' "map_by_id: it cannot open weir_policy (map $map_id)"
like "$(probe prog_by_id)" '^EPERM$' "prog_by_id: it cannot open its own program (prog $prog_id)"
like "$(probe link_by_id)" '^EPERM$' "link_by_id: it cannot open its own link (link $link_id)"
like "$(probe obj_get)" '^(ENOENT|EACCES|EPERM)$' "obj_get: weir's pins are not there for it"
like "$(probe cgroup2)" '^/' "it has its own cgroup at hand (cgroup2 mounted in its namespaces)"
like "$(probe query_egress)" '^EPERM$' "query_egress: it cannot ask what is attached to it"
# programs attached beside others (weir's links) are detached only by naming them, with an fd
# it cannot get (above): the kernel refuses the anonymous detach whatever its capabilities
like "$(probe detach_egress)" '^(EPERM|EINVAL|ENOENT)$' "detach_egress: it cannot detach its programs"
like "$(probe load_skb)" '^EPERM$' "load_skb: it cannot load a cgroup program of its own"
like "$(probe mount_bpffs)" '^(ok|EPERM)$' "mount_bpffs: a bpffs it mounts is its own, empty (no weir pins)"
out=$(runc_exec "$NAME" ls "$WEIR_STATE" 2>&1) && rc=0 || rc=$?
cmp_num "$rc" -ne 0 "weir's records ($WEIR_STATE) are not in its mount namespace"
out=$(setpriv --reuid 200000 --regid 200000 --clear-groups ls "$WEIR_STATE" 2>&1) && rc=0 || rc=$?
like "$rc:$out" "^[1-9][0-9]*:.*[Pp]ermission denied" "and its uid could not read them from the host either"

is "$(cgroup_progs "$CG")" "$progs_before" "weir's programs are still attached, unchanged"
wrun runc_exec "$NAME" /bin/wtool connect "$PEER_B4" 8080 2000
wlike '^EPERM' "a denied destination is still refused (EPERM)"
wrun runc_exec "$NAME" /bin/wtool connect "$PEER_A4" 8080 2000
wlike '^ok' "an allowed destination is still reached"

# a child cgroup of its own: weir's programs run there too, and drop what is not an endpoint's
cg2=$(probe cgroup2)
out=$(runc_exec "$NAME" sh -c "mkdir '$cg2/escape' && echo \$\$ >'$cg2/escape/cgroup.procs' &&
	exec /bin/wtool connect '$PEER_A4' 8080 2000" 2>&1) && rc=0 || rc=$?
if [[ $out == *"Permission denied"* || $out == *"Read-only file system"* ]]; then
	pass "it cannot leave its cgroup for a child of its own ($(head -n1 <<<"$out"))"
else
	unlike "$out" '^ok' "from a child cgroup of its own, even an allowed destination is refused (fail closed)"
fi

# ---- 3. root-only state and pins ---------------------------------------------------------
loose=$(find "$WEIR_STATE" "$WEIR_BPFFS" \( -perm /077 -o ! -user root \) -printf '%m %u %p\n' 2>/dev/null)
is "$loose" "" "every folder and file under $WEIR_STATE and $WEIR_BPFFS is root's and root-only"

ok_run "the container stops; poststop detaches" runc_stop "$NAME"
is "$(cgroup_progs "$CG")" "" "nothing left on its cgroup"

done_testing
