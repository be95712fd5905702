/* What the push fuzz targets (fuzz_pushconnect, fuzz_otlp) share: a push hook that checks what
 * would be stored instead of storing it, and the run of one pushed body through a handler. */
#ifndef FUZZ_PUSH_COMMON_H
#define FUZZ_PUSH_COMMON_H

#include <stdlib.h>
#include <string.h>

#include "../src/base/gz.h"
#include "../src/collector/web_push.h"

/* A known type, at most two records, labels led by service_name, monitor and endpoint ("push"),
 * no "__" key after them, start <= end, and the record's bytes a pprof that decodes. */
static int fuzz_check_push(void *ud, const store_record *recs, size_t n, pp_err *err) {
  (void)ud;
  (void)err;
  static const char *const types[] = {"cpu", "heap", "allocs", "goroutine", "threadcreate", "mutex", "block"};
  if (n < 1 || n > 2) abort();
  for (size_t i = 0; i < n; i++) {
    bool known = false;
    for (size_t t = 0; t < sizeof types / sizeof *types; t++) known |= !strcmp(recs[i].type, types[t]);
    if (!known || !recs[i].profile || recs[i].nlabels < 3 || strcmp(recs[i].labels[0].name, "service_name") ||
        strcmp(recs[i].labels[2].value, "push") || recs[i].start_ns > recs[i].end_ns)
      abort();
    for (size_t l = 3; l < recs[i].nlabels; l++)
      if (!strncmp(recs[i].labels[l].name, "__", 2)) abort();
    pprof_profile *p = NULL;
    pp_err e = {0};
    if (pprof_decode(recs[i].data, recs[i].len, NULL, &p, &e) < 0) abort(); /* what would be stored reads back */
    pprof_free(p);
  }
  return 0;
}

/* The input: its first byte picks the encoding (bit 0: JSON, else proto_ctype; bit 1: the body
 * gzip-compressed as a client does, so the fuzzer's bytes reach the decoder, not the inflater),
 * the rest is the body, handed to handle. Every answer must be 200 or an error status. */
static void fuzz_push_body(const uint8_t *data, size_t size, const char *proto_ctype,
                           void (*handle)(const web_ctx *, const web_push_body *, web_resp *)) {
  if (size < 1 || size > ((size_t)1 << 20)) return;
  web_hooks h;
  memset(&h, 0, sizeof h);
  h.push = fuzz_check_push;
  web_ctx x = {.h = &h, .budget = (size_t)64 << 20, .max_records = 20000};
  web_push_body b;
  memset(&b, 0, sizeof b);
  b.ctype = data[0] & 1 ? "application/json" : (char *)proto_ctype;
  b.profile = (uint8_t *)(data + 1);
  b.profile_len = size - 1;
  uint8_t *gz = NULL;
  if (data[0] & 2) {
    size_t glen = 0;
    pp_err err = {0};
    if (pp_gzip(data + 1, size - 1, 1, &gz, &glen, &err) < 0) return;
    b.profile = gz;
    b.profile_len = glen;
    b.cenc = "gzip";
  }
  web_resp out;
  memset(&out, 0, sizeof out);
  handle(&x, &b, &out);
  if (out.status != 200 && (out.status < 400 || out.status > 599)) abort();
  web_resp_release(&out);
  free(gz);
}

#endif
