/* Fuzz target for what the operator parses besides API JSON: YAML streams (kubeconfigs, the
 * CRDs it installs) through kyaml, each document taken as a PprofCollectorStack through the
 * stack builders (quantities, image references) and its spec as a PprofMonitor's through the
 * monitor check (durations, the collector's rules); the input also as a quantity and as a
 * duration. Every call either succeeds with a value or fails with a message; nothing else. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/base/units.h"
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
      if (kbuild_stack_objects(doc, "op", NULL, 1, 1, NULL, false, &objs, &e2) == 0) {
        if (json_array_size(objs) != 4) abort();
        json_decref(objs);
      } else if (!e2.msg[0]) {
        abort();
      }
      /* a stack's shards and a ConfigMap's plan: within bounds whatever the document says; the
       * objects of every shard that could run under that plan are built */
      int want;
      kbuild_shards cur, plan;
      kbuild_shards_read(doc, &cur);
      if (cur.shards < 1 || cur.shards > KBUILD_MAX_SHARDS || cur.previous < 0 || cur.previous > KBUILD_MAX_SHARDS) abort();
      if (kbuild_stack_shards(json_object_get(doc, "spec"), &want, &e2) == 0) {
        if (want < 1 || want > KBUILD_MAX_SHARDS) abort();
        kbuild_shard_plan(want, &cur, 1764650000, 150, &plan);
        int run = kbuild_shards_running(&plan, 1764650000);
        if (run < 1 || run > KBUILD_MAX_SHARDS) abort();
        /* and one retired shard past them, answering or not, and the query front ends */
        kbuild_retired retired[KBUILD_MAX_SHARDS + 1] = {{0}};
        int sets = run < KBUILD_MAX_SHARDS ? run + 1 : run, q = -1;
        retired[run].at = 1764650000;
        retired[run].answering = run % 2;
        bool query = kbuild_stack_query(json_object_get(doc, "spec"), &q, NULL) == 0 && (q >= 0 || run > 1);
        if (kbuild_stack_objects(doc, "op", &plan, run, sets, retired, run > 1, &objs, &e2) == 0) {
          if (json_array_size(objs) != 4 + 2 * (size_t)(sets - 1) + (query ? 2 : 0)) abort();
          json_decref(objs);
        }
      }
      kbuild_monitor m;
      pp_err e3 = {0};
      if (kbuild_monitor_check(json_object_get(doc, "spec"), &m, &e3) == 0) {
        /* what it accepts is within the collector's bounds */
        if (m.interval_seconds < 0 || m.interval_seconds > 86400 || m.timeout_seconds < 0 || m.timeout_seconds > 86400 ||
            m.pin < KBUILD_PIN_ALL || m.pin > 1000)
          abort();
      } else if (!e3.msg[0]) {
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
  double d = -1;
  pp_err e4 = {0};
  if (pp_parse_duration(q, &d, &e4) == 0) {
    if (!(d >= 0)) abort(); /* never negative or NaN */
  } else if (!e4.msg[0]) {
    abort();
  }
  return 0;
}
