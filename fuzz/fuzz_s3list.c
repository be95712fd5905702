/* Fuzz target for the object store's listings as the restore reads them (collector/restore.h):
 * any bytes as a ListObjectsV2 answer. Never crashes; every key handed out is a C string shorter
 * than the parser's key buffer; an accepted truncated page has a non-empty continuation token
 * within its buffer; a refusal says why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/collector/restore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void each(void *ud, const char *key, uint64_t sz) {
  (void)sz;
  size_t *n = ud;
  if (strlen(key) >= 1100) abort();
  (*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > (1 << 20)) return 0;
  char token[64];
  int truncated = -1;
  size_t n = 0;
  pp_err err = {0};
  int r = restore_parse_list((const char *)data, size, each, &n, &truncated, token, sizeof token, &err);
  if (!memchr(token, '\0', sizeof token)) abort();
  if (r == 0 && truncated && !token[0]) abort();
  if (r < 0 && !err.msg[0]) abort();
  return 0;
}
