/* Fuzz target for what the operator parses besides API JSON: YAML streams (kubeconfigs, the
 * CRDs it installs) through kyaml, and each document taken as a PprofCollectorStack through
 * the stack builders (quantities, image references). Every call either succeeds with a value
 * or fails with a message; nothing else. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/operator/kbuild.h"
#include "../src/operator/kyaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *all = NULL;
  pp_err err = {0};
  if (kyaml_load_all((const char *)data, size, "fuzz", &all, &err) == 0) {
    size_t i;
    json_t *doc;
    json_array_foreach(all, i, doc) {
      json_t *objs = NULL;
      pp_err e2 = {0};
      if (kbuild_stack_objects(doc, "op", &objs, &e2) == 0) {
        if (json_array_size(objs) != 4) abort();
        json_decref(objs);
      } else if (!e2.msg[0]) {
        abort();
      }
    }
    json_decref(all);
  } else if (!err.msg[0]) {
    abort();
  }
  char q[64];
  size_t n = size < sizeof q - 1 ? size : sizeof q - 1;
  memcpy(q, data, n);
  q[n] = '\0';
  uint64_t b;
  kbuild_quantity(q, &b, NULL);
  return 0;
}
