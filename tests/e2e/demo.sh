#!/bin/bash
# weir demo: a network policy from a container annotation, enforced on real podman containers
# with real traffic. Run as root after `make`:
#
#   tests/e2e/demo.sh
#
# It installs weir's OCI hook for podman (hooks.d, removed at the end), starts two servers,
# "web" and "db", on a private podman network, and an "app" container whose annotation lets
# it reach web:8080 only. app's connect to web succeeds, its connect to db fails at once with
# EPERM; `weir list` and `weir stats` show the endpoint and its counters. Everything it
# creates is removed at exit. Exits 0 when weir behaved, 1 otherwise.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/podman.sh
. "$E2E_LIB/podman.sh"

e2e_init --node-weir
require_weir
bold='' plain=''
if [ -t 1 ]; then
	bold=$(tput bold 2>/dev/null || true)
	plain=$(tput sgr0 2>/dev/null || true)
fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
# show CMD...: print the command (on fd 3, the terminal, whatever CMD's output is piped or
# redirected to), then run it.
exec 3>&1
show() {
	printf '%s$ %s%s\n' "$bold" "$*" "$plain" >&3
	"$@"
}
problems=0
verdict() {
	if [ "$1" = "$2" ]; then
		printf '   -> %s (as expected)\n' "$1"
	else
		printf '   -> %s, EXPECTED %s\n' "$1" "$2"
		problems=$((problems + 1))
	fi
}

step "Setting up podman (runc, netavark) and weir's OCI hook"
podman_init >/dev/null
podman_hooks_install
echo "hooks.d: $PODMAN_HOOK_FILE (createRuntime, poststop) -> $WEIR_HOOK"
echo "network: $POD_NET (internal: $POD_SUBNET4, $POD_SUBNET6)"

step "Two servers: web ($POD_A4) and db ($POD_B4), no weir annotation"
podman_run web --ip4 "$POD_A4" --ip6 "$POD_A6" -- /bin/wtool tcp-server 8080 || bail_out "web: $(cat "$E2E_TMP/web.err")"
podman_run db --ip4 "$POD_B4" --ip6 "$POD_B6" -- /bin/wtool tcp-server 8080 || bail_out "db: $(cat "$E2E_TMP/db.err")"
retry 10 _podman_listening web 1 || bail_out "web did not start"
retry 10 _podman_listening db 1 || bail_out "db did not start"
echo "web and db listen on tcp/8080"

policy="allow $POD_A4 tcp/8080; allow $POD_A6 tcp/8080"
step "app, annotated egress.weir.io=\"$policy\""
echo "(podman 4 reads --annotation as CSV: a value with commas must be one quoted field)"
show podman run -d --name "$(podman_name app)" --label "weir-e2e=$E2E_RUN" --network "$POD_NET" \
	--annotation "\"egress.weir.io=$policy\"" --rootfs "$POD_ROOTFS" /bin/sleep 600 >/dev/null ||
	bail_out "app did not start"
id=$(podman_id app)

step "app -> web:8080 (allowed)"
show podman exec "$(podman_name app)" wtool connect "$POD_A4" 8080 2>/dev/null | tee "$E2E_TMP/r1" || true
verdict "$(cat "$E2E_TMP/r1")" ok

step "app -> db:8080 (not in the policy)"
show podman exec "$(podman_name app)" wtool connect "$POD_B4" 8080 2>"$E2E_TMP/r2.err" | tee "$E2E_TMP/r2" || true
ms=$(sed -n 's/^elapsed_ms=//p' "$E2E_TMP/r2.err")
verdict "$(cat "$E2E_TMP/r2")" EPERM
echo "   refused by weir in ${ms:-?} ms: no SYN left the container"

step "app -> db over IPv6 ($POD_B6), and a request/response to web over IPv6"
show podman exec "$(podman_name app)" wtool connect "$POD_B6" 8080 2>/dev/null | tee "$E2E_TMP/r3" || true
verdict "$(cat "$E2E_TMP/r3")" EPERM
show podman exec "$(podman_name app)" wtool tcp-rr "$POD_A6" 8080 2>/dev/null | tee "$E2E_TMP/r4" || true
verdict "$(cut -d' ' -f1 "$E2E_TMP/r4")" ok

step "weir list"
show "$WEIR" list | grep -E "^(ID|id)|${id:0:12}" || verdict "no record for app" "a record"

step "weir stats ${id:0:12}"
show "$WEIR" stats "$id" || verdict "weir stats failed" "stats"
denied=$("$WEIR" stats "$id" --json 2>/dev/null | jq -r '.egress.denied_connects' || echo '?')
verdict "denied_connects=$denied" "denied_connects=2"

step "Stopping app: weir detaches, the record keeps the final counters"
podman_stop app
show "$WEIR" list | grep -E "^(ID|id)|${id:0:12}" || true
state=$(weir_record "$id" | jq -r .state)
verdict "state=$state" "state=stopped"

echo
if [ "$problems" -eq 0 ]; then
	echo "${bold}demo: weir enforced app's policy as annotated${plain}"
else
	echo "${bold}demo: $problems unexpected result(s)${plain}"
	exit 1
fi
