# shellcheck shell=bash
# Shared functions for weir's end-to-end tests against a real containerd 1.7
# with CRI and NRI. Source this file (bash); it defines variables and
# functions only and changes no shell options.
#
#   . tests/e2e/cri/lib.sh
#   cri_start                        # containerd in the background
#   pod=$(cri_runp web -a weir.io/policy=deny-all)
#   ctr=$(cri_run "$pod" app -- sleep 1000)
#   cri exec "$ctr" -- ip addr
#   cri_restart                      # keeps pods and containers running
#   cri_stop                         # removes every pod, then stops
#
# Settings (environment, read when this file is sourced):
#   WEIR_CRI_DIR        test folder (default /run/weir-test/containerd)
#   WEIR_NRI_SOCK       NRI socket (default /var/run/nri/nri.sock)
#   WEIR_NRI_REQUEST_TIMEOUT, WEIR_NRI_REGISTRATION_TIMEOUT
#                       e.g. "2s"; unset = containerd's default
#   WEIR_NRI_PLUGIN_DIR pre-launched NRI plugins (default $WEIR_CRI_DIR/nri/plugins)
#   WEIR_CRI_LOG_LEVEL  containerd log level (default info)
#   WEIR_CRI_SUBNET4, WEIR_CRI_SUBNET6, WEIR_CRI_BRIDGE  pod network
#   WEIR_CRI_IMAGE_FILES  extra static binaries (space-separated host paths)
#                       copied into the image's /bin (e.g. .output/bin/wtool)

WEIR_CRI_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WEIR_CRI_DIR=${WEIR_CRI_DIR:-/run/weir-test/containerd}
WEIR_CRI_SOCK=$WEIR_CRI_DIR/containerd.sock
WEIR_CRI_ENDPOINT=unix://$WEIR_CRI_SOCK
WEIR_CRI_GEN_DIR=${WEIR_CRI_GEN_DIR:-$(dirname "$WEIR_CRI_DIR")/cri-py}
WEIR_CRI_IMAGE=${WEIR_CRI_IMAGE:-localhost/weir-test/busybox:1}
WEIR_CRI_IMAGE_FILES=${WEIR_CRI_IMAGE_FILES:-}
WEIR_CRI_CGROUP_ROOT=${WEIR_CRI_CGROUP_ROOT:-/weir-test}
WEIR_NRI_SOCK=${WEIR_NRI_SOCK:-/var/run/nri/nri.sock}
WEIR_NRI_PLUGIN_DIR=${WEIR_NRI_PLUGIN_DIR:-$WEIR_CRI_DIR/nri/plugins}
WEIR_NRI_REQUEST_TIMEOUT=${WEIR_NRI_REQUEST_TIMEOUT:-}
WEIR_NRI_REGISTRATION_TIMEOUT=${WEIR_NRI_REGISTRATION_TIMEOUT:-}
WEIR_CRI_LOG_LEVEL=${WEIR_CRI_LOG_LEVEL:-info}
WEIR_CRI_SUBNET4=${WEIR_CRI_SUBNET4:-10.89.77.0/24}
WEIR_CRI_SUBNET6=${WEIR_CRI_SUBNET6-fd00:89:77::/64} # empty: IPv4 only
WEIR_CRI_BRIDGE=${WEIR_CRI_BRIDGE:-weircri0}
WEIR_CRI_PYTHON=${WEIR_CRI_PYTHON:-/usr/bin/python3}
WEIR_CRI_CNI_BIN=/usr/lib/cni
WEIR_CRI_MIN_VERSION=1.7
export WEIR_CRI_DIR WEIR_CRI_ENDPOINT WEIR_CRI_GEN_DIR WEIR_CRI_IMAGE WEIR_CRI_CGROUP_ROOT

cri_log() { printf 'weir-cri: %s\n' "$*" >&2; }
cri_die() {
	cri_log "error: $*"
	return 1
}

# The CRI client, pointed at our containerd.
cri() { "$WEIR_CRI_PYTHON" "$WEIR_CRI_LIB_DIR/cri.py" --endpoint "$WEIR_CRI_ENDPOINT" "$@"; }

# cri_runp NAME [-a K=V]... [-l K=V]...        -> pod id
cri_runp() { cri runp "$@"; }
# cri_run POD NAME [-a K=V]... [-- CMD...]     -> container id (created and started)
cri_run() { cri run "$@"; }
# ctr for our containerd, in the CRI namespace
cri_ctr() { ctr --address "$WEIR_CRI_SOCK" --namespace k8s.io "$@"; }

# ---------------------------------------------------------------------------
# installation

# containerd's version as MAJOR.MINOR, or nothing.
cri_containerd_version() {
	command -v containerd >/dev/null 2>&1 || return 0
	containerd --version 2>/dev/null | awk '{ for (i = 1; i <= NF; i++)
		if ($i ~ /^v?[0-9]+\.[0-9]+/) { sub(/^v/, "", $i); split($i, p, "."); print p[1] "." p[2]; exit } }'
}

cri_version_ge() { # A >= B, both MAJOR.MINOR
	[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]
}

# First URI of the system's Debian main archive (deb822 or one-line format).
cri_debian_uri() {
	local f uri=
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		uri=$(awk '
			/^[ \t]*$/ { uris = ""; deb = 0; next }
			/^Types:/ { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
			/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security|backports/) { uris = $i; break } }
			{ if (deb && uris != "") { print uris; exit } }' "$f")
		[ -n "$uri" ] && break
	done
	if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
		uri=$(awk '$1 == "deb" && $0 !~ /security/ {
			for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { print $i; exit } }' /etc/apt/sources.list)
	fi
	[ -n "$uri" ] || return 1
	printf '%s\n' "$uri"
}

cri_apt() { DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Use-Pty=0 "$@"; }

# Install missing Debian packages (bookworm's own sources).
cri_install_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	cri_log "installing ${missing[*]}"
	cri_apt update >/dev/null || cri_die "apt-get update failed" || return 1
	cri_apt install --no-install-recommends "${missing[@]}" >/dev/null ||
		cri_die "apt-get install ${missing[*]} failed" || return 1
}

# containerd >= 1.7 from Debian trixie, fetched through a private apt
# configuration so that trixie never enters the system's sources.
cri_install_containerd() {
	local have
	have=$(cri_containerd_version)
	if [ -n "$have" ] && cri_version_ge "$have" "$WEIR_CRI_MIN_VERSION"; then
		return 0
	fi
	local uri scratch keyring opts deb
	uri=$(cri_debian_uri) || cri_die "no Debian source found in /etc/apt to derive a trixie source from" || return 1
	keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	[ -f "$keyring" ] || cri_die "$keyring missing (package debian-archive-keyring)" || return 1
	scratch=$(mktemp -d /tmp/weir-trixie.XXXXXX)
	mkdir -p "$scratch/lists/partial" "$scratch/cache/archives/partial" "$scratch/parts" "$scratch/prefs"
	printf 'deb [signed-by=%s] %s trixie main\n' "$keyring" "$uri" >"$scratch/sources.list"
	: >"$scratch/status"
	opts=(-o "Dir::Etc::SourceList=$scratch/sources.list"
		-o "Dir::Etc::SourceParts=$scratch/parts"
		-o "Dir::Etc::PreferencesParts=$scratch/prefs"
		-o "Dir::State::Lists=$scratch/lists"
		-o "Dir::State::status=$scratch/status"
		-o "Dir::Cache=$scratch/cache"
		-o "Acquire::Languages=none"
		-o "APT::Sandbox::User=root")
	cri_log "downloading containerd from Debian trixie (private apt config in $scratch)"
	if ! apt-get -q "${opts[@]}" update >"$scratch/update.log" 2>&1; then
		cat "$scratch/update.log" >&2
		rm -rf "$scratch"
		cri_die "apt-get update for trixie failed"
		return 1
	fi
	if ! (cd "$scratch" && apt-get -q "${opts[@]}" download containerd >"$scratch/download.log" 2>&1); then
		cat "$scratch/download.log" >&2
		rm -rf "$scratch"
		cri_die "apt-get download containerd (trixie) failed"
		return 1
	fi
	deb=
	for deb in "$scratch"/containerd_*.deb; do break; done
	[ -f "$deb" ] || { rm -rf "$scratch"; cri_die "no containerd .deb downloaded"; return 1; }
	cri_log "installing $(basename "$deb")"
	if ! DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >"$scratch/dpkg.log" 2>&1; then
		cat "$scratch/dpkg.log" >&2
		rm -rf "$scratch"
		cri_die "dpkg -i $(basename "$deb") failed (needs runc and libc6 >= 2.34)"
		return 1
	fi
	rm -rf "$scratch"
	have=$(cri_containerd_version)
	cri_version_ge "${have:-0.0}" "$WEIR_CRI_MIN_VERSION" ||
		cri_die "containerd $have installed, but >= $WEIR_CRI_MIN_VERSION is needed"
}

# ---------------------------------------------------------------------------
# configuration

cri_write_cni_config() {
	local dir=$WEIR_CRI_DIR/cni/net.d ranges
	mkdir -p "$dir" "$WEIR_CRI_DIR/cni/ipam"
	ranges="[{ \"subnet\": \"$WEIR_CRI_SUBNET4\" }]"
	if [ -n "$WEIR_CRI_SUBNET6" ]; then
		ranges="$ranges, [{ \"subnet\": \"$WEIR_CRI_SUBNET6\" }]"
	fi
	# No gateway on the bridge, no masquerade, no routes: pods reach each
	# other over the bridge and nothing else.
	cat >"$dir/10-weir-test.conflist.tmp" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "weir-test",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$WEIR_CRI_BRIDGE",
      "isGateway": false,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$WEIR_CRI_DIR/cni/ipam",
        "ranges": [ $ranges ],
        "routes": []
      }
    }
  ]
}
EOF
	mv "$dir/10-weir-test.conflist.tmp" "$dir/10-weir-test.conflist"
}

cri_write_config() {
	local d=$WEIR_CRI_DIR cri='plugins."io.containerd.grpc.v1.cri"' nri_extra=
	mkdir -p "$d/root" "$d/state" "$d/logs" "$d/opt" "$WEIR_NRI_PLUGIN_DIR" "$d/nri/conf.d" \
		"$(dirname "$WEIR_NRI_SOCK")"
	cri_write_cni_config
	[ -n "$WEIR_NRI_REQUEST_TIMEOUT" ] &&
		nri_extra+="  plugin_request_timeout = \"$WEIR_NRI_REQUEST_TIMEOUT\""$'\n'
	[ -n "$WEIR_NRI_REGISTRATION_TIMEOUT" ] &&
		nri_extra+="  plugin_registration_timeout = \"$WEIR_NRI_REGISTRATION_TIMEOUT\""$'\n'
	cat >"$d/config.toml.tmp" <<EOF
# Written by tests/e2e/cri/lib.sh for weir's e2e tests. Regenerated on start.
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "$d/containerd.sock"

[ttrpc]
  address = "$d/containerd.sock.ttrpc"

[debug]
  level = "$WEIR_CRI_LOG_LEVEL"

[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"

[plugins."io.containerd.nri.v1.nri"]
  disable = false
  disable_connections = false
  socket_path = "$WEIR_NRI_SOCK"
  plugin_path = "$WEIR_NRI_PLUGIN_DIR"
  plugin_config_path = "$d/nri/conf.d"
$nri_extra
[$cri]
  sandbox_image = "$WEIR_CRI_IMAGE"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  max_container_log_line_size = 16384

[$cri.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[$cri.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[$cri.containerd.runtimes.runc.options]
  SystemdCgroup = false

[$cri.cni]
  bin_dir = "$WEIR_CRI_CNI_BIN"
  conf_dir = "$d/cni/net.d"
  max_conf_num = 1
EOF
	mv "$d/config.toml.tmp" "$d/config.toml"
}

# ---------------------------------------------------------------------------
# image: an OCI layout built by hand from busybox-static

cri_sha256() { sha256sum "$1" | cut -d' ' -f1; }

# Store FILE as a blob of LAYOUT; print "DIGEST SIZE".
cri_blob() {
	local layout=$1 file=$2 sum size
	sum=$(cri_sha256 "$file")
	size=$(stat -c %s "$file")
	mv "$file" "$layout/blobs/sha256/$sum"
	printf 'sha256:%s %s\n' "$sum" "$size"
}

cri_image_tar() { printf '%s\n' "$WEIR_CRI_DIR/image/busybox-oci.tar"; }

# Build the image archive once (again when busybox changes).
cri_build_image() {
	local out stamp bb tmp rootfs arch cfg man idx ldig lsize cdig csize mdig msize
	out=$(cri_image_tar)
	bb=$(command -v busybox 2>/dev/null || true)
	[ -n "$bb" ] && [ -x "$bb" ] || cri_die "busybox not found (Debian package busybox-static)" || return 1
	# A dynamically linked busybox would not run in an image without libc.
	if file -L "$bb" 2>/dev/null | grep -q dynamically; then
		cri_die "$bb is dynamically linked: install busybox-static" || return 1
	fi
	stamp="$(cri_sha256 "$bb") $WEIR_CRI_IMAGE v1"
	local extra
	for extra in $WEIR_CRI_IMAGE_FILES; do
		[ -f "$extra" ] || cri_die "image file $extra not found" || return 1
		stamp+=" $(basename "$extra")=$(cri_sha256 "$extra")"
	done
	if [ -f "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
		return 0
	fi
	arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
	tmp=$(mktemp -d /tmp/weir-image.XXXXXX)
	rootfs=$tmp/rootfs
	mkdir -p "$rootfs"/{bin,dev,etc,proc,sys,tmp,root,run,var/tmp} "$tmp/layout/blobs/sha256"
	chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
	chmod 700 "$rootfs/root"
	cp "$bb" "$rootfs/bin/busybox"
	chmod 755 "$rootfs/bin/busybox"
	chroot "$rootfs" /bin/busybox --install -s /bin ||
		{ rm -rf "$tmp"; cri_die "busybox --install in $rootfs failed"; return 1; }
	for extra in $WEIR_CRI_IMAGE_FILES; do
		rm -f "$rootfs/bin/$(basename "$extra")"
		install -m 0755 "$extra" "$rootfs/bin/$(basename "$extra")"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
	# One uncompressed, reproducible layer.
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
		-C "$rootfs" -cf "$tmp/layer.tar" . || { rm -rf "$tmp"; cri_die "tar of the rootfs failed"; return 1; }
	read -r ldig lsize < <(cri_blob "$tmp/layout" "$tmp/layer.tar")
	# The default process serves as pause for sandboxes and as an idle
	# workload: wait forever, exit 0 on TERM (or INT).
	cfg=$tmp/config.json
	jq -n --arg arch "$arch" --arg diff "$ldig" '{
		architecture: $arch, os: "linux", created: "1970-01-01T00:00:00Z",
		config: {
			Env: ["PATH=/bin"],
			Cmd: ["/bin/sh", "-c", "trap \"exit 0\" TERM INT; while :; do sleep 3600 & wait $!; done"],
			WorkingDir: "/"
		},
		rootfs: { type: "layers", diff_ids: [$diff] },
		history: [{ created: "1970-01-01T00:00:00Z", created_by: "weir tests/e2e/cri/lib.sh" }]
	}' >"$cfg"
	read -r cdig csize < <(cri_blob "$tmp/layout" "$cfg")
	man=$tmp/manifest.json
	jq -n --arg cd "$cdig" --argjson cs "$csize" --arg ld "$ldig" --argjson ls "$lsize" '{
		schemaVersion: 2,
		mediaType: "application/vnd.oci.image.manifest.v1+json",
		config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs },
		layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $ld, size: $ls }]
	}' >"$man"
	read -r mdig msize < <(cri_blob "$tmp/layout" "$man")
	idx=$tmp/layout/index.json
	jq -n --arg md "$mdig" --argjson ms "$msize" --arg name "$WEIR_CRI_IMAGE" --arg arch "$arch" '{
		schemaVersion: 2,
		mediaType: "application/vnd.oci.image.index.v1+json",
		manifests: [{
			mediaType: "application/vnd.oci.image.manifest.v1+json",
			digest: $md, size: $ms,
			platform: { architecture: $arch, os: "linux" },
			annotations: {
				"io.containerd.image.name": $name,
				"org.opencontainers.image.ref.name": ($name | sub(".*:"; ""))
			}
		}]
	}' >"$idx"
	printf '{"imageLayoutVersion":"1.0.0"}\n' >"$tmp/layout/oci-layout"
	mkdir -p "$(dirname "$out")"
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
		-C "$tmp/layout" -cf "$out.tmp" oci-layout index.json blobs &&
		mv "$out.tmp" "$out" && printf '%s\n' "$stamp" >"$out.stamp"
	local rc=$?
	rm -rf "$tmp"
	[ $rc -eq 0 ] || cri_die "writing $out failed"
}

# Import the image into the running containerd unless it is there (again
# when the archive was rebuilt since, e.g. with new WEIR_CRI_IMAGE_FILES).
cri_import_image() {
	local tar
	cri_build_image || return 1
	tar=$(cri_image_tar)
	if cri_ctr images ls -q 2>/dev/null | grep -qxF "$WEIR_CRI_IMAGE" &&
		cmp -s "$tar.stamp" "$WEIR_CRI_DIR/image/imported.stamp"; then
		return 0
	fi
	cri_ctr images import --snapshotter overlayfs "$tar" >"$WEIR_CRI_DIR/import.log" 2>&1 || {
		cat "$WEIR_CRI_DIR/import.log" >&2
		cri_die "ctr images import $tar failed"
		return 1
	}
	cp "$tar.stamp" "$WEIR_CRI_DIR/image/imported.stamp"
}

# ---------------------------------------------------------------------------
# daemon

cri_pidfile() { printf '%s\n' "$WEIR_CRI_DIR/containerd.pid"; }

# pid of our containerd if it runs.
cri_pid() {
	local pid
	pid=$(cat "$(cri_pidfile)" 2>/dev/null) || return 1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	# The pid may have been reused: check it is containerd with our config.
	{ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$WEIR_CRI_DIR/config.toml" || return 1
	printf '%s\n' "$pid"
}

cri_running() { cri_pid >/dev/null; }

# Microseconds since the epoch (bash 5).
cri_now_us() { printf '%s\n' "${EPOCHREALTIME//[.,]/}"; }

# Wait up to $2 seconds (default 10) for socket $1.
cri_wait_socket() {
	local sock=$1 limit=${2:-10} end i=0
	end=$(($(cri_now_us) + limit * 1000000))
	while [ "$(cri_now_us)" -lt "$end" ]; do
		[ -S "$sock" ] && return 0
		# Checking the daemon forks: do it every 20th round only.
		if [ $((i++ % 20)) = 19 ] && ! cri_running; then
			return 1
		fi
		sleep 0.005
	done
	[ -S "$sock" ]
}

# Start containerd in the background (no-op when ours runs already).
# Waits for the containerd/CRI socket and the NRI socket, then imports the
# image if the store lacks it.
cri_start() {
	local pid log t0 t1
	if cri_running; then
		return 0
	fi
	command -v containerd >/dev/null || cri_die "containerd not installed: run tests/e2e/cri/setup.sh" || return 1
	cri_write_config || return 1
	rm -f "$WEIR_CRI_SOCK" "$WEIR_CRI_SOCK.ttrpc"
	# A stale NRI socket from a crashed run would hide whether ours came up.
	if [ -S "$WEIR_NRI_SOCK" ] && ! cri_socket_in_use "$WEIR_NRI_SOCK"; then
		rm -f "$WEIR_NRI_SOCK"
	fi
	log=$WEIR_CRI_DIR/containerd.log
	printf '=== start %s\n' "$(date -Is)" >>"$log"
	t0=$(date +%s%N)
	setsid containerd --config "$WEIR_CRI_DIR/config.toml" </dev/null >>"$log" 2>&1 &
	pid=$!
	disown "$pid" 2>/dev/null || true # no job notice when a test kills it
	echo "$pid" >"$(cri_pidfile)"
	if ! cri_wait_socket "$WEIR_CRI_SOCK" 20; then
		tail -n 30 "$log" >&2
		cri_die "containerd (pid $pid) did not open $WEIR_CRI_SOCK; log: $log"
		return 1
	fi
	if ! cri_wait_socket "$WEIR_NRI_SOCK" 10; then
		tail -n 30 "$log" >&2
		cri_die "containerd (pid $pid) did not open the NRI socket $WEIR_NRI_SOCK; log: $log"
		return 1
	fi
	t1=$(date +%s%N)
	WEIR_CRI_START_MS=$(((t1 - t0) / 1000000))
	export WEIR_CRI_START_MS
	cri_import_image
}

cri_socket_in_use() { # is anyone listening on unix socket $1?
	awk -v p="$1" '$NF == p { found = 1 } END { exit !found }' /proc/net/unix 2>/dev/null
}

# Stop containerd.
#   cri_stop              remove every pod (through CRI), stop, clean up: no
#                         shim, mount, netns or pod cgroup is left behind
#   cri_stop --keep-pods  stop the daemon only; containers keep running in
#                         their shims and come back on the next cri_start
#   cri_stop --kill       SIGKILL the daemon (a crash), keeping pods
cri_stop() {
	local mode=${1:-} pid i
	case $mode in "" | --keep-pods | --kill) ;; *) cri_die "cri_stop: unknown option $mode" || return 1 ;; esac
	if pid=$(cri_pid); then
		if [ -z "$mode" ]; then
			cri --timeout 30 rm-all >/dev/null || cri_log "warning: removing pods failed"
		fi
		if [ "$mode" = --kill ]; then
			kill -KILL "$pid" 2>/dev/null || true
		else
			kill -TERM "$pid" 2>/dev/null || true
		fi
		for ((i = 0; i < 1500; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.01
		done
		if kill -0 "$pid" 2>/dev/null; then
			cri_log "containerd $pid ignored TERM for 15 s: killing it"
			kill -KILL "$pid" 2>/dev/null || true
			sleep 0.1
		fi
	fi
	rm -f "$(cri_pidfile)" "$WEIR_CRI_SOCK" "$WEIR_CRI_SOCK.ttrpc"
	# containerd leaves its NRI socket file behind: drop it when nobody listens.
	if [ -S "$WEIR_NRI_SOCK" ] && ! cri_socket_in_use "$WEIR_NRI_SOCK"; then
		rm -f "$WEIR_NRI_SOCK"
	fi
	[ -n "$mode" ] || cri_cleanup_leftovers
}

# Restart containerd; pods and containers keep running in their shims.
cri_restart() {
	cri_stop --keep-pods && cri_start
}

# The containerd log, and a mark in it (its line count) to wait from.
cri_log_file() { printf '%s\n' "$WEIR_CRI_DIR/containerd.log"; }
cri_log_mark() { wc -l <"$(cri_log_file)" 2>/dev/null || echo 0; }

# cri_wait_nri_plugin IDX-NAME [TIMEOUT_S=10] [MARK]
# Wait until containerd logs that NRI plugin IDX-NAME (e.g. 10-weir) is
# connected (registered and synchronized), after MARK (from cri_log_mark;
# default: since the last cri_start). Fails on timeout or if containerd dies.
cri_wait_nri_plugin() {
	local name=$1 limit=${2:-10} mark=${3:-} end
	[ -n "$name" ] || cri_die "cri_wait_nri_plugin: no plugin name" || return 1
	end=$(($(cri_now_us) + limit * 1000000))
	while [ "$(cri_now_us)" -lt "$end" ]; do
		if WEIR_PAT="plugin \\\"$name\\\" connected" awk -v mark="$mark" '
			mark == "" && /^=== start/ { found = 0 }
			(mark == "" || NR > mark + 0) && index($0, ENVIRON["WEIR_PAT"]) { found = 1 }
			END { exit !found }' "$(cri_log_file)" 2>/dev/null; then
			return 0
		fi
		cri_running || cri_die "containerd is not running" || return 1
		sleep 0.02
	done
	cri_die "NRI plugin $name did not connect within $limit s (log: $(cri_log_file))"
}

# Kill shims of our containerd that outlived it, unmount what they left,
# and remove empty pod cgroups under $WEIR_CRI_CGROUP_ROOT.
cri_cleanup_leftovers() {
	local p cmd m
	for p in /proc/[0-9]*; do
		cmd=$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
		case $cmd in
		*containerd-shim*"-address $WEIR_CRI_SOCK "*)
			kill -KILL "${p#/proc/}" 2>/dev/null || true ;;
		esac
	done
	# Mounts under our folder (rootfs overlays, shm), deepest first.
	awk -v d="$WEIR_CRI_DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo 2>/dev/null |
		sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	cri_remove_cgroups
	# The CNI bridge plugin never deletes its bridge: do it once it is empty.
	if [ -d "/sys/class/net/$WEIR_CRI_BRIDGE/brif" ] &&
		[ -z "$(ls -A "/sys/class/net/$WEIR_CRI_BRIDGE/brif")" ]; then
		ip link del "$WEIR_CRI_BRIDGE" 2>/dev/null || true
	fi
}

# Every cgroup mount point (v1 hierarchies and the v2 one).
cri_cgroup_mounts() {
	awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break
		if ($(i + 1) == "cgroup" || $(i + 1) == "cgroup2") print $5 }' /proc/self/mountinfo
}

# Remove the empty cgroups under WEIR_CRI_CGROUP_ROOT, deepest first.
cri_remove_cgroups() {
	local mnt
	[ -n "$WEIR_CRI_CGROUP_ROOT" ] && [ "$WEIR_CRI_CGROUP_ROOT" != / ] || return 0
	for mnt in $(cri_cgroup_mounts); do
		[ -d "$mnt$WEIR_CRI_CGROUP_ROOT" ] || continue
		find "$mnt$WEIR_CRI_CGROUP_ROOT" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done
}

# The cgroup2 mount point (hybrid hosts have it at /sys/fs/cgroup/unified).
cri_cgroup2_mount() {
	awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break
		if ($(i + 1) == "cgroup2") { print $5; exit } }' /proc/self/mountinfo
}
