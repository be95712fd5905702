/* Fuzz target for Pyroscope's push API as the collector reads it (web_push_connect): the first
 * byte picks the encoding (bit 0: JSON, else protobuf; bit 1: the body gzip-compressed by the
 * client), the rest is the request body. Nothing is stored: the push hook checks what would be
 * (a known type, at most two records, labels led by service_name, monitor and endpoint, no
 * "__" key) and succeeds. Never crashes; every answer is 200 or a Connect error with a status. */
#include <stdlib.h>
#include <string.h>

#include "../src/base/gz.h"
#include "../src/collector/web_push.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_push(void *ud, const store_record *recs, size_t n, pp_err *err) {
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
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > ((size_t)1 << 20)) return 0;
  web_hooks h;
  memset(&h, 0, sizeof h);
  h.push = check_push;
  web_ctx x = {&h, (size_t)64 << 20, WEB_MAX_RECORDS};
  web_push_body b;
  memset(&b, 0, sizeof b);
  b.ctype = data[0] & 1 ? "application/json" : "application/proto";
  b.profile = (uint8_t *)(data + 1);
  b.profile_len = size - 1;
  uint8_t *gz = NULL;
  if (data[0] & 2) {
    /* the body as a client gzips it, so the fuzzer's bytes reach the decoder, not the inflater */
    size_t glen = 0;
    pp_err err = {0};
    if (pp_gzip(data + 1, size - 1, 1, &gz, &glen, &err) < 0) return 0;
    b.profile = gz;
    b.profile_len = glen;
    b.cenc = "gzip";
  }
  web_resp out;
  memset(&out, 0, sizeof out);
  web_push_connect(&x, &b, &out);
  if (out.status != 200 && (out.status < 400 || out.status > 599)) abort();
  web_resp_release(&out);
  free(gz);
  return 0;
}
