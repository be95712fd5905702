/* Fuzz target for the tag= parser (web_tags_parse, pprof_tag_parse): the input, split at '&', is
 * a request's tag= parameters. Never crashes; what it accepts are at most WEB_MAX_TAGS filters,
 * each with a non-empty key, and KEY + ("!=" or "=") + VALUE gives back the parameter. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/collector/web_labels.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4 * WEB_TAGS_MEM) return 0;
  char *s = malloc(size + 1);
  if (!s) return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  web_params p;
  memset(&p, 0, sizeof p);
  char *save = NULL;
  for (char *tok = strtok_r(s, "&", &save); tok && p.n < WEB_MAX_PARAMS; tok = strtok_r(NULL, "&", &save)) {
    p.k[p.n] = p.n % 7 == 6 ? "base_tag" : "tag"; /* other names are not read */
    p.v[p.n++] = tok;
  }
  static web_tags t;
  char why[300];
  int n = web_tags_parse(&p, "tag", &t, why, sizeof why);
  if (n >= 0) {
    if ((size_t)n != t.n || t.n > WEB_MAX_TAGS) abort();
    size_t k = 0;
    for (size_t i = 0; i < p.n; i++) {
      if (strcmp(p.k[i], "tag")) continue;
      const pprof_tag_filter *f = &t.f[k++];
      char back[2 * WEB_TAGS_MEM];
      if (!f->key[0]) abort();
      snprintf(back, sizeof back, "%s%s%s", f->key, f->negate ? "!=" : "=", f->value);
      if (strcmp(back, p.v[i])) abort();
    }
    if (k != t.n) abort();
  } else if (!why[0]) {
    abort();
  }
  free(s);
  return 0;
}
