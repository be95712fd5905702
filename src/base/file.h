/* file: reading a whole file under a size cap, the one way the project does it (profiles,
 * configs, kubeconfigs, tokens, certificates, credential files).
 *
 * pp_read_file reads at most max bytes; a longer file (or an endless one such as a pipe or a
 * device) fails with PP_ELIMIT and a message naming the file and the cap, and is never read
 * past max + 1 bytes. Regular files are sized up front, others grow the buffer as they are
 * read. The buffer is malloc'd, owned by the caller, and NUL-terminated (one byte past
 * *ret_len), so text can be used as a string. Errors: PP_EIO with errno's text (missing,
 * unreadable, a directory), PP_ELIMIT, PP_ENOMEM. */
#ifndef PP_FILE_H
#define PP_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "pp_err.h"

int pp_read_file(const char *path, size_t max, uint8_t **ret, size_t *ret_len, pp_err *err);

#endif
