#!/bin/bash
# The Debian package end to end: `make deb` builds it with dpkg-buildpackage, lintian finds no
# error or warning, its files are those of `make install`, apt installs it, the podman
# scenario (tests/e2e/podman.t) runs against the installed files with podman finding the
# installed hooks.d file by itself, and a purge with a container still enforced removes every
# file the package installed, says that enforcement stays, and leaves that container enforced.
#
#   flock /tmp/weir-e2e.lock prove -v tests/pkg/deb.t      (root; installs and purges weir)

# shellcheck source-path=SCRIPTDIR
# shellcheck source=../e2e/lib/common.sh
. "$(dirname "$0")/../e2e/lib/common.sh"
# shellcheck source=../e2e/lib/podman.sh
. "$E2E_LIB/podman.sh"

# the installed package runs with the node's own configuration: so does the suite
e2e_init --node-weir
require_cmd dpkg-buildpackage lintian apt-get podman jq
export DEBIAN_FRONTEND=noninteractive

INSTALLED_HOOK=/usr/libexec/oci/hooks.d/weir-hook
INSTALLED_HOOKS_D=/usr/share/containers/oci/hooks.d/weir.json

installed() { dpkg-query -W -f '${Status}' weir 2>/dev/null | grep -q 'install ok installed'; }
purge() { apt-get purge -y -q weir >"$E2E_TMP/purge.log" 2>&1; }

if installed; then
	diag "weir is installed already (a run that did not finish?): purging it first"
	purge || bail_out "cannot purge the weir package installed before this test"
fi
on_exit purge

# ---------------------------------------------------------------------------------------
diag "build"
if make -C "$REPO" OUTPUT="$OUTPUT" deb >"$E2E_TMP/build.log" 2>&1; then
	pass "make deb"
else
	fail "make deb"
	diag_block "last lines" "$(tail -n 30 "$E2E_TMP/build.log")"
	bail_out "no package to test"
fi
deb=$(find "$OUTPUT/deb" -maxdepth 1 -name 'weir_*.deb' | head -n1)
changes=$(find "$OUTPUT/deb" -maxdepth 1 -name 'weir_*.changes' | head -n1)
if [ -z "$deb" ] || [ -z "$changes" ]; then bail_out "make deb made no weir_*.deb and .changes"; fi
version=$(dpkg-deb -f "$deb" Version)

out=$(lintian --pedantic -I "$changes" 2>&1 | grep -v 'running with root privileges' || true)
is "$(grep -E '^[EW]: ' <<<"$out" || true)" "" "lintian: no error and no warning"
[ -z "$out" ] || diag_block "lintian" "$out"

# The package's files are make install's (PREFIX=/usr), plus Debian's documentation.
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /lib/systemd/system)
make -s -C "$REPO" OUTPUT="$OUTPUT" install DESTDIR="$E2E_TMP/inst" PREFIX=/usr \
	SYSTEMDUNITDIR="$unitdir" >"$E2E_TMP/install.log" 2>&1 || diag_block "make install" "$(cat "$E2E_TMP/install.log")"
want=$(cd "$E2E_TMP/inst" && find . -type f -printf '%P\n' | sort)
got=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { sub(/^\.\//, "", $6); print $6 }' |
	grep -v -e '^usr/share/doc/weir/' -e '^usr/share/lintian/overrides/weir$' | sed 's/\.gz$//' | sort)
is "$got" "$want" "the package holds what make install installs (PREFIX=/usr)"

# ---------------------------------------------------------------------------------------
diag "install"
if apt-get install -y -q --no-install-recommends "$deb" >"$E2E_TMP/apt.log" 2>&1 && installed; then
	pass "apt-get install ./$(basename "$deb")"
else
	fail "apt-get install ./$(basename "$deb")"
	diag_block "apt-get" "$(tail -n 20 "$E2E_TMP/apt.log")"
	bail_out "the package does not install"
fi
dpkg -L weir | sort >"$E2E_TMP/files"
is "$(/usr/bin/weir --version | head -n1) $("$INSTALLED_HOOK" --version | head -n1) $(/usr/bin/weir-nri --version | head -n1)" \
	"weir $version weir-hook $version weir-nri $version" "the installed binaries are this version"
like "$(/usr/bin/weir --version)" $'\nbpf build id [0-9a-f]{16}\ndatapath abi [0-9]+$' "--version: BPF build id and datapath ABI"
is "$(dpkg-query -W -f '${Conffiles}' weir | awk '{ print $1 }' | xargs)" /etc/weir/weir.conf "/etc/weir/weir.conf is a conffile"
is "$(jq -r .hook.path "$INSTALLED_HOOKS_D")" "$INSTALLED_HOOK" "the hooks.d file runs the installed hook"
is "$(man -w weir-annotations 2>&1)" /usr/share/man/man5/weir-annotations.5.gz "man finds weir-annotations(5)"
ok "$([ -f /usr/share/bash-completion/completions/weir ]; echo $?)" "bash completion installed"
ok "$([ -L /etc/systemd/system/timers.target.wants/weir-gc.timer ]; echo $?)" "weir-gc.timer is enabled"
ok "$([ ! -e /etc/systemd/system/multi-user.target.wants/weir-nri.service ]; echo $?)" "weir-nri.service is not enabled"
like "$(/usr/bin/weir gc 2>&1)" "^gc: " "the installed weir runs gc"

# ---------------------------------------------------------------------------------------
diag "the podman scenario against the installed files (tests/e2e/podman.t)"
rc=0
WEIR=/usr/bin/weir WEIR_HOOK=$INSTALLED_HOOK PODMAN_HOOKS_INSTALLED=$INSTALLED_HOOKS_D \
	prove -v "$REPO/tests/e2e/podman.t" >"$E2E_TMP/podman.log" 2>&1 || rc=$?
summary=$(grep -E '^(Files=|Result:|# [0-9]+ passed)' "$E2E_TMP/podman.log" | tr '\n' ' ')
ok "$rc" "podman.t passes with weir-hook from the package, found through its hooks.d file ($summary)" \
	"failed: $(grep -E '^(not ok|Bail out)' "$E2E_TMP/podman.log" | head -n 20 | tr '\n' ';')"
[ "$rc" = 0 ] || diag_block "podman.t (last lines)" "$(tail -n 40 "$E2E_TMP/podman.log")"

# ---------------------------------------------------------------------------------------
diag "purge with a container still enforced"
WEIR=/usr/bin/weir WEIR_HOOK=$INSTALLED_HOOK PODMAN_HOOKS_INSTALLED=$INSTALLED_HOOKS_D
podman_init
podman_hooks_install
podman_run held --egress "allow $POD_A4 tcp/8080" -- /bin/sleep 600 ||
	bail_out "held: podman run failed: $(cat "$E2E_TMP/held.err")"
id=$(podman_id held)
ep=$(weir_record "$id" | jq -r '.endpoint // empty')
[ -n "$ep" ] || bail_out "held: the installed hook registered no endpoint"
wrun podman_exec held /bin/wtool connect "$POD_B4" 8080 1000
is "$W_OUT" EPERM "held: a denied connect fails with EPERM (enforced by the installed hook)"

if purge; then pass "apt-get purge weir"; else fail "apt-get purge weir" "$(tail -n 20 "$E2E_TMP/purge.log")"; fi
like "$(cat "$E2E_TMP/purge.log")" "containers it enforces stay enforced until they stop" "removal says enforcement stays"
like "$(cat "$E2E_TMP/purge.log")" "run 'weir unload'" "purge says what removes it: weir unload"
left=()
while read -r f; do
	# dpkg -L lists folders too (/lib among them, a link to usr/lib on merged-/usr systems)
	if [ -d "$f" ]; then
		if [ -z "$(ls -A "$f")" ] && ! dpkg -S "$f" >/dev/null 2>&1; then
			left+=("$f/ (empty, owned by no package)")
		fi
	elif [ -e "$f" ] || [ -L "$f" ]; then
		left+=("$f")
	fi
done <"$E2E_TMP/files"
for f in /etc/weir /etc/systemd/system/timers.target.wants/weir-gc.timer \
	/var/lib/systemd/deb-systemd-helper-enabled/weir-gc.timer.dsh-also \
	/var/lib/systemd/deb-systemd-helper-enabled/timers.target.wants/weir-gc.timer; do
	[ ! -e "$f" ] && [ ! -L "$f" ] || left+=("$f")
done
installed && left+=("dpkg still lists weir as installed")
is "${left[*]:-}" "" "nothing the package installed remains (files, configuration, unit enablement)"

wrun podman_exec held /bin/wtool connect "$POD_B4" 8080 1000
is "$W_OUT" EPERM "held: still enforced after the purge"
ok "$([ -d "$WEIR_BPFFS/endpoints/$ep" ]; echo $?)" "held: its endpoint's links stay pinned"

# The build tree's weir cleans up after the container: poststop could not run the purged hook.
WEIR=$BIN/weir
"$PODMAN" rm -f -t 0 "$(podman_name held)" >/dev/null 2>&1 || true
"$WEIR" gc >/dev/null 2>&1 || true
is "$(weir_record "$id" | jq -r .state)" stopped "held: once it is gone, weir gc detaches its endpoint"

done_testing
