/* Unit tests of the operator's builders, with the collector's own config parser as the oracle
 * for the generated config.yaml. */
#include "../../src/collector/config.h"
#include "../../src/operator/kbuild.h"
#include "tt.h"

static void config_yaml_round_trips_through_the_collector_parser(void) {
  json_t *conf =
      json_loads("{\"profile\":{\"seconds\":30},\"heap\":{},\"allocs\":{\"seconds\":60}}", 0, NULL);
  kbuild_target t[] = {
      {"shop", "checkout", "checkout-7d9f-b", "node-2", "mon", "http", "10.0.0.12", 6060, NULL,
       conf, 0, 0},
      {"shop", "checkout", "checkout-7d9f-a", "node-1", "mon", "http", "10.0.0.11", 6060,
       "/internal/", NULL, 30, 0},
      /* the same pod selected on a second port and by a second monitor: names stay unique */
      {"shop", "checkout", "checkout-7d9f-a", "node-1", "mon", "http", "10.0.0.11", 7070, NULL,
       NULL, 0, 0},
      {"shop", "checkout", "checkout-7d9f-a", "node-1", "other", "http", "10.0.0.11", 7070, NULL,
       NULL, 0, 0},
      /* hostile strings from the cluster cannot inject YAML */
      {"evil\"ns", "svc\nmonitors: []", "pod: {x}", "n\\1", "m'#", "https", "fd00::7", 443, NULL,
       NULL, 0, 12},
  };
  char *yaml = NULL, *again = NULL;
  pp_err err = {0};
  CHECK(kbuild_config_yaml(t, 5, &yaml, &err) == 0);
  /* deterministic: any input order gives the same bytes */
  kbuild_target rev[5];
  for (int i = 0; i < 5; i++)
    rev[i] = t[4 - i];
  CHECK(kbuild_config_yaml(rev, 5, &again, &err) == 0);
  CHECK(yaml && again && !strcmp(yaml, again));
  cfg_config *c = NULL;
  int r = yaml ? cfg_parse(yaml, strlen(yaml), "generated.yaml", &c, &err) : -1;
  if (r) fprintf(stderr, "  %s\n%s\n", err.msg, yaml ? yaml : "");
  CHECK(r == 0);
  if (c) {
    CHECK_EQ_I64(c->nmonitors, 5);
    CHECK_EQ_I64(c->nwarnings, 0);
    /* sorted: evil"ns first, then shop/checkout pods a (6060, 7070 x2), b */
    CHECK_STR(c->monitors[0].name, "pod: {x}");
    CHECK_STR(c->monitors[0].endpoint, "https://[fd00::7]:443");
    CHECK_STR(c->monitors[0].labels[0].value, "evil\"ns");
    CHECK_STR(c->monitors[0].labels[1].value, "svc\nmonitors: []");
    CHECK_STR(c->monitors[1].name, "checkout-7d9f-a");
    CHECK_STR(c->monitors[1].endpoint, "http://10.0.0.11:6060/internal");
    CHECK_STR(c->monitors[2].name, "checkout-7d9f-a-7070");
    CHECK_STR(c->monitors[3].name, "checkout-7d9f-a-7070-other");
    CHECK_STR(c->monitors[4].name, "checkout-7d9f-b");
    CHECK(c->monitors[4].types[CFG_CPU].enabled && c->monitors[4].types[CFG_CPU].seconds == 30);
    CHECK(c->monitors[4].types[CFG_HEAP].enabled && c->monitors[4].types[CFG_HEAP].seconds == 0);
    CHECK(c->monitors[4].types[CFG_ALLOCS].seconds == 60);
    cfg_effective e;
    CHECK(cfg_effective_for(c, &c->monitors[1], CFG_HEAP, &e, NULL) == 0);
    CHECK_STR(e.url, "http://10.0.0.11:6060/internal/debug/pprof/heap"); /* prefix, not doubled */
    CHECK_EQ_I64(e.interval_ms, 30000);
    CHECK(cfg_effective_for(c, &c->monitors[0], CFG_CPU, &e, NULL) == 0);
    CHECK_EQ_I64(e.timeout_ms, 13000); /* 12 s configured, raised to seconds + 3 */
  }
  cfg_free(c);
  free(yaml);
  free(again);
  /* bad input: a CPU profile of 0 seconds, and a target without a port */
  json_t *bad = json_loads("{\"profile\":{\"seconds\":0}}", 0, NULL);
  kbuild_target b[] = {{"ns", "svc", "p", "n", "m", "http", "10.0.0.1", 80, NULL, bad, 0, 0}};
  CHECK(kbuild_config_yaml(b, 1, &yaml, &err) == PP_EINVAL);
  CHECK(strstr(err.msg, "config.profile.seconds") != NULL);
  b[0].config = NULL;
  b[0].port = 0;
  CHECK(kbuild_config_yaml(b, 1, &yaml, &err) == PP_EINVAL);
  CHECK(kbuild_config_yaml(NULL, 0, &yaml, &err) == 0); /* no targets: an empty list, still valid */
  if (yaml) {
    CHECK(cfg_parse(yaml, strlen(yaml), "empty.yaml", &c, &err) == 0);
    if (c) CHECK_EQ_I64(c->nmonitors, 0);
    cfg_free(c);
    free(yaml);
  }
  json_decref(bad);
  json_decref(conf);
}

static void images_as_the_seed_builds_them(void) {
  char buf[512];
  pp_err err = {0};
  json_t *s = json_loads("{\"registry\":\"docker.io\",\"repo\":\"alex7285\",\"image\":\"pprof-"
                         "collector\",\"tag\":\"dev\","
                         "\"sha\":\"sha256:64bf\"}",
                         0, NULL);
  CHECK(kbuild_image(s, buf, sizeof buf, &err) == 0);
  CHECK_STR(buf, "docker.io/alex7285/pprof-collector:dev@sha256:64bf");
  json_decref(s);
  s = json_loads("{\"image\":\"configmap-reload\",\"repo\":\"jimmidyson\",\"registry\":\"ghcr.io\","
                 "\"sha\":\"\"}",
                 0, NULL);
  CHECK(kbuild_image(s, buf, sizeof buf, &err) == 0);
  CHECK_STR(buf, "ghcr.io/jimmidyson/configmap-reload:latest");
  json_decref(s);
  s = json_loads("{\"repo\":\"x\"}", 0, NULL);
  CHECK(kbuild_image(s, buf, sizeof buf, &err) == PP_EINVAL);
  json_decref(s);
}

int main(void) {
  RUN(config_yaml_round_trips_through_the_collector_parser);
  RUN(images_as_the_seed_builds_them);
  return tt_finish();
}
