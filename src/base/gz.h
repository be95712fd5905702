/* gz: gzip for whole buffers (profiles, configs, anything untrusted that may be compressed).
 *
 * pp_gzip compresses with libdeflate at level 1..12 (deterministic: no name, no time, so equal
 * input gives equal bytes). pp_gunzip inflates when the data starts with the gzip magic (1f 8b)
 * and copies otherwise; concatenated members are one stream, as Go's reader takes them;
 * trailing garbage, truncation and corruption are PP_EINVAL; more than max_out bytes of output
 * is PP_ELIMIT, enforced while inflating (a gzip bomb stops at the cap). Results are malloc'd
 * and owned by the caller; on failure nothing is returned. Thread-safe (no shared state). */
#ifndef BASE_GZ_H
#define BASE_GZ_H

#include <stddef.h>
#include <stdint.h>

#include "pp_err.h"

int pp_gzip(const void *data, size_t len, int level, uint8_t **ret_buf, size_t *ret_len, pp_err *err);
int pp_gunzip(const void *data, size_t len, size_t max_out, uint8_t **ret_buf, size_t *ret_len, pp_err *err);

#endif
