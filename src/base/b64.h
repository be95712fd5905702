/* b64: base64 (RFC 4648) for Kubernetes' byte fields (kubeconfig certificate data, ConfigMap
 * binaryData).
 *
 * pp_b64_encode writes the standard alphabet with padding. pp_b64_decode reads the standard
 * and the URL-safe alphabet, skips padding and whitespace, and fails with PP_EINVAL naming
 * `what` on any other character. Results are malloc'd, NUL-terminated (one byte past
 * *ret_len) and owned by the caller. */
#ifndef BASE_B64_H
#define BASE_B64_H

#include <stddef.h>

#include "pp_err.h"

int pp_b64_encode(const void *data, size_t len, char **ret, size_t *ret_len, pp_err *err);
int pp_b64_decode(const char *in, const char *what, char **ret, size_t *ret_len, pp_err *err);

#endif
