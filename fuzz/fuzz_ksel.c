/* Fuzz target for label selectors and endpoint port specs as they arrive from the API server:
 * a JSON document {"selector":..., "labels":..., "endpoint":..., "service":..., "ports":...}.
 * Parsing either fails with a message or yields a selector that can be evaluated; port
 * resolution returns a valid port or an error, never anything else. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/operator/ksel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
  if (!doc) return 0;
  ksel *s = NULL;
  pp_err err;
  if (ksel_parse(json_object_get(doc, "selector"), &s, &err) == 0) {
    ksel_matches(s, json_object_get(doc, "labels"));
    ksel_free(s);
  } else if (!memchr(err.msg, '\0', sizeof err.msg)) {
    abort();
  }
  int p = ksel_resolve_port(json_object_get(doc, "endpoint"), json_object_get(doc, "service"),
                            json_object_get(doc, "ports"), &err);
  if (p == 0 || p > 65535) abort();
  json_decref(doc);
  return 0;
}
