/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Short names for the generated NRI protobuf-c types (package nri.pkg.api.v1alpha1) and the
 * event numbers and mask bits of docs/nri-protocol.md §5.
 */
#ifndef WEIR_NRI_API_H
#define WEIR_NRI_API_H

/* gnu11 predefines `linux`; NRI messages have fields of that name. */
#undef linux
#include "nri.pb-c.h"

typedef Nri__Pkg__Api__V1alpha1__PodSandbox Nri__PodSandbox;
typedef Nri__Pkg__Api__V1alpha1__LinuxPodSandbox Nri__LinuxPodSandbox;
typedef Nri__Pkg__Api__V1alpha1__Container Nri__Container;
typedef Nri__Pkg__Api__V1alpha1__LinuxContainer Nri__LinuxContainer;
typedef Nri__Pkg__Api__V1alpha1__LinuxNamespace Nri__LinuxNamespace;
typedef Nri__Pkg__Api__V1alpha1__TextEntry Nri__TextEntry;

#define NRI_SERVICE_RUNTIME "nri.pkg.api.v1alpha1.Runtime"
#define NRI_SERVICE_PLUGIN  "nri.pkg.api.v1alpha1.Plugin"

enum nri_event {
	NRI_EV_UNKNOWN = 0,
	NRI_EV_RUN_POD_SANDBOX = 1,
	NRI_EV_STOP_POD_SANDBOX = 2,
	NRI_EV_REMOVE_POD_SANDBOX = 3,
	NRI_EV_CREATE_CONTAINER = 4,
	NRI_EV_POST_CREATE_CONTAINER = 5,
	NRI_EV_START_CONTAINER = 6,
	NRI_EV_POST_START_CONTAINER = 7,
	NRI_EV_UPDATE_CONTAINER = 8,
	NRI_EV_POST_UPDATE_CONTAINER = 9,
	NRI_EV_STOP_CONTAINER = 10,
	NRI_EV_REMOVE_CONTAINER = 11,
	NRI_EV_UPDATE_POD_SANDBOX = 12,
	NRI_EV_POST_UPDATE_POD_SANDBOX = 13,
	NRI_EV_VALIDATE_CONTAINER_ADJUSTMENT = 14,
};

/* Event value v has mask bit 1 << (v - 1). */
#define NRI_EV_BIT(v) (1u << ((v)-1))

/* containerd 1.7, 2.0 and 2.1 accept only bits 0..10 (events 1..11). */
#define NRI_EV_MASK_PORTABLE 0x7ffu

#endif
