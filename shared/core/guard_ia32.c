// SPDX-License-Identifier: Apache-2.0
/*
 * The 32-bit syscall ABI's escape calls. Its numbers come from the kernel's own table header,
 * which cannot share a file with the native one (both define __NR_ names).
 */
#include <string.h>

#include "guard.h"
#include "util.h"

#if defined(__x86_64__)
#include <asm/unistd_32.h>

static const struct {
	long nr;
	uint8_t call, filter;
	const char *name;
} compat_calls[] = {
	{__NR_mount, WEIR_CALL_MOUNT, WEIR_CF_ANY, "mount"},
	{__NR_umount, WEIR_CALL_MOUNT, WEIR_CF_ANY, "umount"},
	{__NR_umount2, WEIR_CALL_MOUNT, WEIR_CF_ANY, "umount2"},
	{__NR_fsopen, WEIR_CALL_MOUNT, WEIR_CF_ANY, "fsopen"},
	{__NR_fsmount, WEIR_CALL_MOUNT, WEIR_CF_ANY, "fsmount"},
	{__NR_fspick, WEIR_CALL_MOUNT, WEIR_CF_ANY, "fspick"},
	{__NR_move_mount, WEIR_CALL_MOUNT, WEIR_CF_ANY, "move_mount"},
	{__NR_open_tree, WEIR_CALL_MOUNT, WEIR_CF_ANY, "open_tree"},
	{__NR_mount_setattr, WEIR_CALL_MOUNT, WEIR_CF_ANY, "mount_setattr"},
	{__NR_pivot_root, WEIR_CALL_PIVOT_ROOT, WEIR_CF_ANY, "pivot_root"},
	{__NR_unshare, WEIR_CALL_NAMESPACES, WEIR_CF_UNSHARE, "unshare"},
	{__NR_setns, WEIR_CALL_NAMESPACES, WEIR_CF_ANY, "setns"},
	{__NR_clone, WEIR_CALL_NAMESPACES, WEIR_CF_CLONE, "clone"},
	{__NR_clone3, WEIR_CALL_NAMESPACES, WEIR_CF_CLONE3, "clone3"},
	{__NR_init_module, WEIR_CALL_MODULES, WEIR_CF_ANY, "init_module"},
	{__NR_finit_module, WEIR_CALL_MODULES, WEIR_CF_ANY, "finit_module"},
	{__NR_delete_module, WEIR_CALL_MODULES, WEIR_CF_ANY, "delete_module"},
	{__NR_kexec_load, WEIR_CALL_KEXEC, WEIR_CF_ANY, "kexec_load"},
	{__NR_bpf, WEIR_CALL_BPF, WEIR_CF_ANY, "bpf"},
	{__NR_perf_event_open, WEIR_CALL_PERF, WEIR_CF_ANY, "perf_event_open"},
	{__NR_ptrace, WEIR_CALL_PTRACE, WEIR_CF_PTRACE, "ptrace"},
	{__NR_process_vm_readv, WEIR_CALL_PTRACE, WEIR_CF_ANY, "process_vm_readv"},
	{__NR_process_vm_writev, WEIR_CALL_PTRACE, WEIR_CF_ANY, "process_vm_writev"},
	{__NR_open_by_handle_at, WEIR_CALL_OPEN_BY_HANDLE, WEIR_CF_ANY, "open_by_handle_at"},
	{__NR_keyctl, WEIR_CALL_KEYRING, WEIR_CF_ANY, "keyctl"},
	{__NR_add_key, WEIR_CALL_KEYRING, WEIR_CF_ANY, "add_key"},
	{__NR_request_key, WEIR_CALL_KEYRING, WEIR_CF_ANY, "request_key"},
	{__NR_userfaultfd, WEIR_CALL_USERFAULTFD, WEIR_CF_ANY, "userfaultfd"},
	{__NR_reboot, WEIR_CALL_REBOOT, WEIR_CF_ANY, "reboot"},
	{__NR_swapon, WEIR_CALL_SWAP, WEIR_CF_ANY, "swapon"},
	{__NR_swapoff, WEIR_CALL_SWAP, WEIR_CF_ANY, "swapoff"},
	{__NR_iopl, WEIR_CALL_IOPL, WEIR_CF_ANY, "iopl"},
	{__NR_ioperm, WEIR_CALL_IOPL, WEIR_CF_ANY, "ioperm"},
	{__NR_socket, WEIR_CALL_SOCKET, WEIR_CF_FAMILY, "socket"},
	{__NR_socketcall, WEIR_CALL_SOCKET, WEIR_CF_SOCKETCALL, "socketcall"},
};

void weir_syscalls_fill_compat(struct weir_syscall_nr *table)
{
	for (size_t i = 0; i < WEIR_ARRAY_SIZE(compat_calls); i++) {
		if (compat_calls[i].nr < 0 || compat_calls[i].nr >= WEIR_SYSCALL_SLOTS)
			continue;
		table[compat_calls[i].nr].abi[1].call = compat_calls[i].call;
		table[compat_calls[i].nr].abi[1].filter = compat_calls[i].filter;
	}
}
const char *weir_syscall_name_compat(long nr)
{
	for (size_t i = 0; i < WEIR_ARRAY_SIZE(compat_calls); i++)
		if (compat_calls[i].nr == nr)
			return compat_calls[i].name;
	return NULL;
}
#else
const char *weir_syscall_name_compat(long nr)
{
	(void)nr;
	return NULL;
}

/* Other architectures: only their native ABI is watched (README: escape detection). */
void weir_syscalls_fill_compat(struct weir_syscall_nr *table)
{
	(void)table;
}
#endif
