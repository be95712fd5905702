/* Fuzz target for a pushed profile's name (web_push_name_parse: Pyroscope's APP{key=value,...}).
 * Never crashes; what it accepts has an application name of allowed bytes, at most
 * WEB_PUSH_MAX_LABELS labels with non-empty keys of allowed bytes, no key twice, and values
 * without ',' or '}'. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "../src/collector/web_push.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 2 * WEB_PUSH_MAX_NAME) return 0;
  char *s = malloc(size + 1);
  if (!s) return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  static web_push_name n;
  pp_err err = {0};
  if (web_push_name_parse(s, &n, &err) == 0) {
    size_t al = strlen(n.app);
    if (!al || al > 256 || n.n > WEB_PUSH_MAX_LABELS) abort();
    for (size_t i = 0; i < al; i++)
      if (!isalnum((unsigned char)n.app[i]) && !strchr("_.-/:", n.app[i])) abort();
    for (size_t i = 0; i < n.n; i++) {
      size_t kl = strlen(n.k[i]);
      if (!kl || kl > 128 || strpbrk(n.v[i], ",}")) abort();
      for (size_t j = 0; j < kl; j++)
        if (!isalnum((unsigned char)n.k[i][j]) && n.k[i][j] != '_' && n.k[i][j] != '.') abort();
      for (size_t j = 0; j < i; j++)
        if (!strcmp(n.k[i], n.k[j])) abort();
    }
  } else if (!err.msg[0] || (err.code != PP_EINVAL && err.code != PP_ELIMIT)) {
    abort(); /* a refusal always says why */
  }
  free(s);
  return 0;
}
