/* SPDX-License-Identifier: Apache-2.0 */
/*
 * weir-nri logs through libweir's logger (shared/include/weir/log.h). The nri_* names keep the
 * protocol code independent of it: switching the logger means editing this header only.
 */
#ifndef WEIR_NRI_LOG_H
#define WEIR_NRI_LOG_H

#include "log.h" /* shared/include/weir/log.h */

#define nri_debug(...) weir_log(WEIR_LOG_DEBUG, __VA_ARGS__)
#define nri_info(...)  weir_log(WEIR_LOG_INFO, __VA_ARGS__)
#define nri_warn(...)  weir_log(WEIR_LOG_WARN, __VA_ARGS__)
#define nri_error(...) weir_log(WEIR_LOG_ERROR, __VA_ARGS__)

#endif
