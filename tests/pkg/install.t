#!/bin/bash
# make install / make uninstall: the layout (the one the Debian package has, see deb.t),
# DESTDIR and PREFIX honoured in paths and in what the installed files point at, the node
# configuration kept when it exists, and nothing but it left after uninstall.
#
#   prove -v tests/pkg/install.t      (`make` first)

# shellcheck source-path=SCRIPTDIR
# shellcheck source=../e2e/lib/common.sh
. "$(dirname "$0")/../e2e/lib/common.sh"
set -euo pipefail
trap _run_cleanups EXIT
TMP=$(mktemp -d /tmp/weir-install.XXXXXX)
on_exit rm -rf "$TMP"

mk() { make -s -C "$REPO" OUTPUT="$OUTPUT" "$@" >"$TMP/make.log" 2>&1; }
files() { (cd "$1" && find . -type f -printf '%P %m\n' | sort); }

usr=$TMP/usr
ok_run "make install DESTDIR=... PREFIX=/usr" mk install DESTDIR="$usr" PREFIX=/usr
is "$(files "$usr")" "etc/weir/weir.conf 644
usr/bin/weir 755
usr/bin/weir-nri 755
usr/lib/systemd/system/weir-gc.service 644
usr/lib/systemd/system/weir-gc.timer 644
usr/lib/systemd/system/weir-nri.service 644
usr/libexec/oci/hooks.d/weir-hook 755
usr/share/bash-completion/completions/weir 644
usr/share/containers/oci/hooks.d/weir.json 644
usr/share/man/man5/weir-annotations.5 644
usr/share/man/man5/weir.conf.5 644
usr/share/man/man8/weir-hook.8 644
usr/share/man/man8/weir-nri.8 644
usr/share/man/man8/weir.8 644" "PREFIX=/usr: binaries, the hook in libexec/oci/hooks.d, its hooks.d file, config, units, man pages, completion"
is "$(jq -r .hook.path "$usr/usr/share/containers/oci/hooks.d/weir.json")" /usr/libexec/oci/hooks.d/weir-hook \
	"the hooks.d file runs the installed hook (no DESTDIR in it)"
is "$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$usr/usr/lib/systemd/system/weir-nri.service" "$usr/usr/lib/systemd/system/weir-gc.service" | tr '\n' ' ')" \
	"/usr/bin/weir-nri /usr/bin/weir " "the units run the installed binaries"
like "$("$usr/usr/bin/weir" --version)" "^weir [0-9]" "the installed weir runs"
like "$("$usr/usr/libexec/oci/hooks.d/weir-hook" --version)" "^weir-hook [0-9]" "the installed weir-hook runs"

echo '{"fail_open": true}' >"$usr/etc/weir/weir.conf"
ok_run "make install again" mk install DESTDIR="$usr" PREFIX=/usr
is "$(cat "$usr/etc/weir/weir.conf")" '{"fail_open": true}' "an existing weir.conf is kept"
ok_run "make uninstall" mk uninstall DESTDIR="$usr" PREFIX=/usr
is "$(files "$usr")" "etc/weir/weir.conf 644" "uninstall leaves only the node configuration"
like "$(cat "$TMP/make.log")" "weir unload" "uninstall says the datapath stays until weir unload"

opt=$TMP/opt
ok_run "make install DESTDIR=... PREFIX=/opt/weir" mk install DESTDIR="$opt" PREFIX=/opt/weir
missing=()
for f in opt/weir/bin/weir opt/weir/bin/weir-nri opt/weir/libexec/oci/hooks.d/weir-hook \
	opt/weir/share/man/man8/weir.8 opt/weir/share/bash-completion/completions/weir \
	opt/weir/lib/systemd/system/weir-nri.service usr/share/containers/oci/hooks.d/weir.json; do
	[ -f "$opt/$f" ] || missing+=("$f")
done
ok "${#missing[@]}" "PREFIX=/opt/weir: everything under the prefix, the hooks.d file where podman looks" \
	"missing: ${missing[*]}"
is "$(jq -r .hook.path "$opt/usr/share/containers/oci/hooks.d/weir.json")" /opt/weir/libexec/oci/hooks.d/weir-hook \
	"the hooks.d file follows PREFIX"
is "$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$opt/opt/weir/lib/systemd/system/weir-nri.service")" /opt/weir/bin/weir-nri \
	"the unit follows PREFIX"
ok_run "make uninstall PREFIX=/opt/weir" mk uninstall DESTDIR="$opt" PREFIX=/opt/weir
is "$(files "$opt")" "etc/weir/weir.conf 644" "uninstall with the same PREFIX leaves only the node configuration"

done_testing
