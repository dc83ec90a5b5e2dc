#!/bin/bash
# Run the test containerd (CRI + NRI) of weir's e2e tests.
#
#   tests/e2e/cri/containerd.sh start      start in the background, wait for the
#                                          CRI and NRI sockets, import the image
#   tests/e2e/cri/containerd.sh stop       remove every pod, stop, clean up
#   tests/e2e/cri/containerd.sh restart    stop and start, keeping pods running
#   tests/e2e/cri/containerd.sh status     exit 0 if running; print the pid
#   tests/e2e/cri/containerd.sh env        print the settings as shell assignments
#
# Settings come from the environment: see lib.sh beside this script.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
	exit 2
}

main() {
	[ $# -eq 1 ] || usage
	case $1 in
	start)
		cri_start
		echo "containerd running, pid $(cri_pid), CRI endpoint $WEIR_CRI_ENDPOINT, NRI socket $WEIR_NRI_SOCK (ready in ${WEIR_CRI_START_MS:-?} ms)"
		;;
	stop) cri_stop ;;
	restart)
		cri_restart
		echo "containerd restarted, pid $(cri_pid) (ready in ${WEIR_CRI_START_MS:-?} ms)"
		;;
	status)
		if cri_running; then
			cri_pid
		else
			echo "not running" >&2
			exit 1
		fi
		;;
	env)
		local v
		for v in WEIR_CRI_DIR WEIR_CRI_ENDPOINT WEIR_CRI_IMAGE WEIR_NRI_SOCK WEIR_NRI_PLUGIN_DIR \
			WEIR_CRI_SUBNET4 WEIR_CRI_SUBNET6 WEIR_CRI_BRIDGE WEIR_CRI_CGROUP_ROOT; do
			printf '%s=%q\n' "$v" "${!v}"
		done
		;;
	-h | --help | help) usage ;;
	*) usage ;;
	esac
}

main "$@"
