/* Fuzz target for what the uploader reads (collector/upload.h) and the object store's name
 * rules (base/s3opts.h). The first byte picks:
 *   0: a line of the uploads file: accepted only as the uploader writes it, so what is accepted
 *      prints back byte for byte;
 *   1: an S3 error body: the <Code> found is [A-Za-z0-9] only, shorter than its buffer, and
 *      follows "<Code>" in the body;
 *   2: four '\n'-separated fields (endpoint, bucket, prefix, region) for pp_s3_check: an
 *      accepted prefix has no ".." part and no "//", an accepted bucket is 3..63 bytes.
 * Never crashes. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/base/s3opts.h"
#include "../src/collector/upload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 4096) return 0;
  char *s = malloc(size);
  if (!s) return 0;
  memcpy(s, data + 1, size - 1);
  s[size - 1] = '\0';
  switch (data[0] % 3) {
  case 0: {
    int64_t id, min_ns, max_ns;
    int tier;
    bool expired;
    if (upload__parse_line(s, &id, &tier, &min_ns, &max_ns, &expired)) {
      char back[128];
      snprintf(back, sizeof back, "%016" PRIx64 " %d %" PRId64 " %" PRId64 " %d\n", (uint64_t)id, tier, min_ns, max_ns, expired);
      if (strcmp(back, s)) abort();
    }
    break;
  }
  case 1: {
    char code[64];
    upload__s3_code((const char *)data + 1, size - 1, code, sizeof code);
    size_t n = strlen(code);
    if (n >= sizeof code) abort();
    for (size_t i = 0; i < n; i++)
      if (!((code[i] >= 'a' && code[i] <= 'z') || (code[i] >= 'A' && code[i] <= 'Z') || (code[i] >= '0' && code[i] <= '9')))
        abort();
    if (n) {
      char want[80];
      snprintf(want, sizeof want, "<Code>%s", code);
      if (!memmem(data + 1, size - 1, want, strlen(want))) abort();
    }
    break;
  }
  default: {
    char *f[4] = {NULL, NULL, NULL, NULL};
    char *save = NULL, *tok = strtok_r(s, "\n", &save);
    for (int i = 0; i < 4 && tok; i++, tok = strtok_r(NULL, "\n", &save)) f[i] = tok;
    if (pp_s3_check(f[0], f[1], f[2], f[3], NULL) == 0) {
      size_t bn = strlen(f[1]);
      if (bn < 3 || bn > 63) abort();
      if (f[2] && (strstr(f[2], "//") || !strcmp(f[2], "..") || !strncmp(f[2], "../", 3) || strstr(f[2], "/../") ||
                   (strlen(f[2]) >= 3 && !strcmp(f[2] + strlen(f[2]) - 3, "/.."))))
        abort();
    }
    break;
  }
  }
  free(s);
  return 0;
}
