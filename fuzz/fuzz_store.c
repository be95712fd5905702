/* Differential fuzz target of the store's v2 format (store_sym.h): a profile that decodes is
 * appended to a store, read back with store_read and must say the same thing as the input,
 * sample by sample (tests/unit/profile_same.h) and in pprof_top per sample type; a merged
 * read (store_merged, the path without gzip) must have the input's totals. Inputs are raw or
 * gzip protobuf. One store in a temp dir serves many inputs (opened once, emptied every
 * STORE_INPUTS), so symbols of one input meet those of the ones before it, as in a segment. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/collector/store.h"
#include "../tests/unit/profile_same.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STORE_INPUTS 500

static char dir[64];
static store *st;
static int used;
static int64_t seq;

static void drop_store(void) {
  store_close(st);
  st = NULL;
  if (dir[0]) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz_store: cannot remove %s\n", dir);
  }
}

static void open_store(void) {
  if (!dir[0]) {
    snprintf(dir, sizeof dir, "/tmp/fuzz-store-XXXXXX");
    if (!mkdtemp(dir)) abort();
    atexit(drop_store);
  }
  store_opts o = {.dir = dir, .sync_interval = -1};
  pp_err err = {0};
  if (store_open(&o, &st, NULL, &err) < 0) {
    fprintf(stderr, "fuzz_store: open: %s\n", err.msg);
    abort();
  }
  used = 0;
}

/* A finding: told, the temp dir removed (abort skips atexit), then the abort libFuzzer and the
 * replay report. */
static void fail(const char *what, const char *why) {
  fprintf(stderr, "fuzz_store: %s: %s\n", what, why);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (dir[0] && system(cmd) != 0) fprintf(stderr, "fuzz_store: cannot remove %s\n", dir);
  abort();
}

/* The tops of a and b agree for every sample type. */
static void same_tops(const pprof_profile *a, const pprof_profile *b, const char *what) {
  for (size_t t = 0; t < a->nsample_type; t++) {
    pprof_top x, y;
    pp_err e = {0};
    if (pprof_top_compute(a, (int)t, &x, &e) < 0) fail(what, e.msg);
    if (pprof_top_compute(b, (int)t, &y, &e) < 0) fail(what, e.msg);
    if (x.total != y.total || x.nfuncs != y.nfuncs) fail(what, "top totals differ");
    for (size_t i = 0; i < x.nfuncs; i++)
      if (strcmp(x.funcs[i].name, y.funcs[i].name) || x.funcs[i].flat != y.funcs[i].flat ||
          x.funcs[i].cum != y.funcs[i].cum)
        fail(what, "top entries differ");
    pprof_top_release(&x);
    pprof_top_release(&y);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  pprof_limits lim;
  pprof_limits_default(&lim);
  lim.max_memory = 64 << 20;
  pprof_profile *p = NULL;
  if (pprof_decode(data, size, &lim, &p, NULL) < 0) return 0;
  if (!st || used >= STORE_INPUTS) {
    drop_store();
    open_store();
  }
  used++;
  int64_t end = ++seq * 1000;
  char mon[32];
  snprintf(mon, sizeof mon, "m%lld", (long long)seq);
  store_label l[1] = {{"monitor", mon}};
  store_record r = {l, 1, "t", end - 1, end, data, size, p};
  bool enospc;
  pp_err err = {0};
  /* a profile the store refuses (over a limit) is not a finding; anything else it takes must
   * come back */
  if (store_append(st, &r, &enospc, &err) < 0) {
    if (err.code != PP_ELIMIT) fail("append", err.msg);
    pprof_free(p);
    return 0;
  }
  store_matcher m = {"monitor", mon};
  store_row *rows;
  size_t n;
  if (store_list_rows(st, &m, 1, "t", 0, 0, 0, &rows, &n, &err) < 0 || n != 1) fail("list", err.msg);
  uint8_t *b = NULL;
  size_t len = 0;
  if (store_read(st, rows[0].id, &b, &len, &err) < 0) fail("read", err.msg);
  store_rows_free(rows, n);
  pprof_profile *back = NULL;
  if (pprof_decode(b, len, &lim, &back, &err) < 0) fail("decode of what was read", err.msg);
  free(b);
  const char *why = stored_as_scraped(p, back);
  if (why) fail("read back differs", why);
  same_tops(p, back, "read back");
  /* the merge path sums the record's samples on ids (store_idm.h); one record merged
   * keeps its samples' values (equal stacks summed, all-zero samples dropped) */
  pprof_profile *merged = NULL;
  size_t cnt = 0;
  if (store_merged(st, &m, 1, "t", 0, 0, STORE_AGG_SUM, 0, &merged, &cnt, &err) == 0) {
    if (cnt != 1) fail("merge", "count");
    same_tops(p, merged, "merged");
  } else if (err.code != PP_EUSAGE && err.code != PP_ELIMIT)
    fail("merge", err.msg);
  pprof_free(merged);
  pprof_free(back);
  pprof_free(p);
  return 0;
}
