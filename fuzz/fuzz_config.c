/* Fuzz target for the collector's config parser (YAML from a file or a ConfigMap): any bytes
 * either fail with a message or give a config whose every monitor and type yields effective
 * settings. */
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
