/* Fuzz target for the profile decoder: any bytes, gzip or raw. A profile that decodes must
 * also survive every reader: top and tree for each sample type, encode, decode of the
 * encoding, and a merge with itself. Limits are lowered so one input stays fast. */
#include <stdlib.h>

#include "../src/codec/pprof.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  pprof_limits lim;
  pprof_limits_default(&lim);
  lim.max_decompressed = 4 << 20;
  lim.max_memory = 64 << 20;
  pprof_profile *p = NULL;
  if (pprof_decode(data, size, &lim, &p, NULL) < 0) return 0;
  for (size_t i = 0; i < p->nsample_type; i++) {
    pprof_top t;
    if (pprof_top_compute(p, (int)i, &t, NULL) == 0) pprof_top_release(&t);
    pprof_tree tr;
    if (pprof_tree_compute(p, (int)i, 100000, &tr, NULL) == 0) pprof_tree_release(&tr);
  }
  uint8_t *buf = NULL;
  size_t len = 0;
  if (pprof_encode(p, 1, &buf, &len, NULL) == 0) {
    pprof_profile *q = NULL;
    /* what we encode we must read back */
    if (pprof_decode(buf, len, NULL, &q, NULL) != 0) abort();
    if (q->nsample != p->nsample || q->nlocation != p->nlocation) abort();
    pprof_free(q);
    free(buf);
  }
  pprof_profile *srcs[2] = {p, p}, *m = NULL;
  if (pprof_merge(srcs, 2, &m, NULL) == 0) pprof_free(m);
  pprof_free(p);
  return 0;
}
