// SPDX-License-Identifier: Apache-2.0
/* What --version prints: one build's identity, for bug reports and upgrade questions. */
#include <inttypes.h>
#include <stdio.h>

#include "bpf/weir.h"
#include "bpf_build_id.h"
#include "version.h"
#include "libweir.h"

const char *weir_version(void)
{
	return WEIR_VERSION;
}

void weir_version_print(const char *prog)
{
	/* the build id names the BPF objects; the ABI says which pinned maps they can share */
	printf("%s %s\nbpf build id %016" PRIx64 "\ndatapath abi %d\n", prog, WEIR_VERSION,
	       (uint64_t)WEIR_BPF_BUILD_ID, WEIR_ABI_VERSION);
}
