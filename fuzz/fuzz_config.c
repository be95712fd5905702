/* Fuzz target for the collector's config parser (YAML from a file or a ConfigMap): any bytes
 * either fail with a message or give a config whose every monitor and type yields effective
 * settings, and whose monitors each go to exactly one shard of the counts it names (every shard
 * for `shard: all`). */
#include <stdlib.h>
#include <string.h>

#include "../src/collector/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cfg_config *c = NULL;
  pp_err err;
  if (cfg_parse((const char *)data, size, "fuzz.yaml", &c, &err) < 0) {
    if (!memchr(err.msg, '\0', sizeof err.msg)) abort(); /* the message is a string */
    return 0;
  }
  int counts[2] = {c->shards, c->previous_shards ? c->previous_shards : c->shards};
  for (size_t i = 0; i < c->nmonitors; i++)
    for (int k = 0; k < 2; k++) {
      const cfg_monitor *m = &c->monitors[i];
      bool all = m->shard == CFG_SHARD_ALL;
      int on = 0;
      for (int s = 0; s < counts[k]; s++) on += cfg_on_shard(m, s, counts[k]);
      if (on != (all ? counts[k] : 1) || cfg_on_shard(m, counts[k], counts[k]) != all) abort(); /* past the count: only all */
    }
  cfg_add_self_monitor(c, NULL);
  for (size_t i = 0; i < c->nmonitors; i++)
    for (int t = 0; t < CFG_NTYPES; t++) {
      cfg_effective e;
      if (c->monitors[i].types[t].enabled &&
          cfg_effective_for(c, &c->monitors[i], (cfg_ptype)t, &e, NULL) == 0 &&
          (e.timeout_ms <= (int64_t)e.seconds * 1000 || !memchr(e.url, '\0', sizeof e.url)))
        abort(); /* a timeout must outlast the profile it waits for */
    }
  cfg_free(c);
  return 0;
}
