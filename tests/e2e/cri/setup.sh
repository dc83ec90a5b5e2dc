#!/bin/bash
# Prepare this machine for weir's CRI/NRI end-to-end tests (run as root;
# idempotent, safe to run again):
#   - Debian packages: runc, containernetworking-plugins (CNI in /usr/lib/cni),
#     busybox-static, jq, python3-grpcio, python3-protobuf, protobuf-compiler;
#   - containerd >= 1.7 from Debian trixie, downloaded through a private apt
#     configuration (the system's sources are not changed), unless a
#     containerd >= 1.7 is installed already;
#   - the containerd config, CNI config and busybox OCI image in the test
#     folder (default /run/weir-test/containerd, env WEIR_CRI_DIR);
#   - the Python CRI stubs (compiled from cri.proto into $WEIR_CRI_GEN_DIR).
# Then: tests/e2e/cri/containerd.sh start, tests/e2e/cri/cri.py ..., or prove.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
	[ "$(id -u)" = 0 ] || { cri_log "error: run as root"; exit 1; }
	local t0=$SECONDS
	cri_install_packages runc containernetworking-plugins busybox-static jq \
		python3 python3-grpcio python3-protobuf protobuf-compiler iproute2
	cri_install_containerd
	cri_write_config
	cri_build_image
	# Compiles cri.proto into the stub cache and checks that grpc imports.
	"$WEIR_CRI_PYTHON" "$WEIR_CRI_LIB_DIR/cri.py" gen-pod setup-check >/dev/null
	cri_log "ready in $((SECONDS - t0)) s: $(containerd --version), test folder $WEIR_CRI_DIR"
}

main "$@"
