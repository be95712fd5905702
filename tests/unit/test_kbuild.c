/* Unit tests of the operator's builders, with the collector's own config parser as the oracle
 * for the generated config.yaml. */
#include <stdio.h>
#include <unistd.h>

#include "../../src/collector/config.h"
#include "../../src/operator/kbuild.h"
#include "../../src/operator/kqueue.h"
#include "../../src/operator/kyaml.h"
#include "tt.h"

static void config_yaml_round_trips_through_the_collector_parser(void) {
  json_t *conf =
      json_loads("{\"profile\":{\"seconds\":30},\"heap\":{},\"allocs\":{\"seconds\":60}}", 0, NULL);
  kbuild_target t[] = {
      {"shop", "checkout", "checkout-7d9f-b", "node-2", "mon", "http", "10.0.0.12", 6060, NULL,
       conf, 0, 0, "v1.4.2", 0},
      {"shop", "checkout", "checkout-7d9f-a", "node-1", "mon", "http", "10.0.0.11", 6060,
       "/internal/", NULL, 30, 0, "", 0},
      /* the same pod selected on a second port and by a second monitor: names stay unique */
      {"shop", "checkout", "checkout-7d9f-a", "node-1", "mon", "http", "10.0.0.11", 7070, NULL,
       NULL, 0, 0, NULL, 0},
      {"shop", "checkout", "checkout-7d9f-a", "node-1", "other", "http", "10.0.0.11", 7070, NULL,
       NULL, 0, 0, NULL, 0},
      /* hostile strings from the cluster cannot inject YAML */
      {"evil\"ns", "svc\nmonitors: []", "pod: {x}", "n\\1", "m'#", "https", "fd00::7", 443, NULL,
       NULL, 0, 12, "v\"1\n- name: x", 0},
  };
  char *yaml = NULL, *again = NULL;
  pp_err err = {0};
  CHECK(kbuild_config_yaml(t, 5, NULL, &yaml, &err) == 0);
  /* deterministic: any input order gives the same bytes */
  kbuild_target rev[5];
  for (int i = 0; i < 5; i++)
    rev[i] = t[4 - i];
  CHECK(kbuild_config_yaml(rev, 5, NULL, &again, &err) == 0);
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
    /* the version label: written when set (escaped like every string), absent when NULL or "" */
    CHECK_EQ_I64(c->monitors[0].nlabels, 6);
    CHECK_STR(c->monitors[0].labels[5].key, "version");
    CHECK_STR(c->monitors[0].labels[5].value, "v\"1\n- name: x");
    CHECK_EQ_I64(c->monitors[1].nlabels, 5);
    CHECK_EQ_I64(c->monitors[2].nlabels, 5);
    CHECK_STR(c->monitors[4].labels[5].key, "version");
    CHECK_STR(c->monitors[4].labels[5].value, "v1.4.2");
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
  kbuild_target b[] = {{"ns", "svc", "p", "n", "m", "http", "10.0.0.1", 80, NULL, bad, 0, 0, NULL, 0}};
  CHECK(kbuild_config_yaml(b, 1, NULL, &yaml, &err) == PP_EINVAL);
  CHECK(strstr(err.msg, "config.profile.seconds") != NULL);
  b[0].config = NULL;
  b[0].port = 0;
  CHECK(kbuild_config_yaml(b, 1, NULL, &yaml, &err) == PP_EINVAL);
  CHECK(kbuild_config_yaml(NULL, 0, NULL, &yaml, &err) == 0); /* no targets: an empty list, still valid */
  if (yaml) {
    CHECK(cfg_parse(yaml, strlen(yaml), "empty.yaml", &c, &err) == 0);
    if (c) CHECK_EQ_I64(c->nmonitors, 0);
    cfg_free(c);
    free(yaml);
  }
  json_decref(bad);
  json_decref(conf);
}

/* Parses the generated config with the collector's parser; returns it (NULL and the error
 * printed when the collector would refuse it). */
static cfg_config *collector_parses(const char *yaml) {
  cfg_config *c = NULL;
  pp_err err = {0};
  if (cfg_parse(yaml, strlen(yaml), "config.yaml", &c, &err) < 0) {
    fprintf(stderr, "  collector refuses: %s\n", err.msg);
    return NULL;
  }
  return c;
}

/* One bad PprofMonitor must not cost everyone their targets: each case the collector refuses is
 * refused for its monitor alone, by the same rules (base/scrapeval.h), naming the field; the
 * config built from the good monitors is accepted by the collector's parser. */
static void bad_monitors_are_refused_alone(void) {
  static const struct {
    const char *spec, *field, *says;
  } bad[] = {
      {"{\"endpoint\":{\"path\":\"/debug?token=x\"}}", "spec.endpoint.path", "/debug?token=x"},
      {"{\"endpoint\":{\"path\":\"/a#b\"}}", "spec.endpoint.path", "/a#b"},
      {"{\"config\":{\"profile\":{\"seconds\":3601}}}", "spec.config.profile.seconds", "3600"},
      {"{\"config\":{\"heap\":{\"seconds\":100000}}}", "spec.config.heap.seconds", "3600"},
      {"{\"config\":{\"profile\":{\"seconds\":0}}}", "spec.config.profile.seconds", "1..3600"},
      {"{\"endpoint\":{\"interval\":\"100000h\"}}", "spec.endpoint.interval", "86400"},
      {"{\"endpoint\":{\"timeout\":\"100000h\"}}", "spec.endpoint.timeout", "86400"},
      {"{\"endpoint\":{\"interval\":200000}}", "spec.endpoint.interval", "86400"},
      {"{\"endpoint\":{\"interval\":\"0s\"}}", "spec.endpoint.interval", "0.001"},
      {"{\"endpoint\":{\"interval\":\"1h30\"}}", "spec.endpoint.interval", "1h30"},
      {"{\"endpoint\":{\"scheme\":\"ftp\"}}", "spec.endpoint.scheme", "ftp"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    json_t *spec = json_loads(bad[i].spec, 0, NULL);
    kbuild_monitor m;
    pp_err err = {0};
    int r = kbuild_monitor_check(spec, &m, &err);
    if (r != PP_EINVAL || !strstr(err.msg, bad[i].field) || !strstr(err.msg, bad[i].says)) {
      fprintf(stderr, "  %s: got %d \"%s\", want the field %s and \"%s\"\n", bad[i].spec, r, err.msg, bad[i].field,
              bad[i].says);
      tt_failures++;
    }
    json_decref(spec);
  }
  /* the same values handed to the config builder as targets: refused there too, and the
   * collector's own parser agrees that such a config is unusable */
  json_t *over = json_loads("{\"profile\":{\"seconds\":3601}}", 0, NULL);
  kbuild_target t[] = {{"ns", "svc", "p-0", "n", "m", "http", "10.0.0.1", 80, "/debug?token=x", NULL, 0, 0, NULL, 0},
                       {"ns", "svc", "p-0", "n", "m", "http", "10.0.0.1", 80, NULL, over, 0, 0, NULL, 0},
                       {"ns", "svc", "p-0", "n", "m", "http", "10.0.0.1", 80, NULL, NULL, 360000000, 0, NULL, 0},
                       {"ns", "svc", "p-0", "n", "m", "http", "10.0.0.1", 80, NULL, NULL, 0, 360000000, NULL, 0}};
  const char *as_collector_config[] = {
      "monitors:\n- name: p-0\n  endpoint: http://10.0.0.1:80/debug?token=x\n",
      "monitors:\n- name: p-0\n  endpoint: http://10.0.0.1:80\n  profile: {seconds: 3601}\n",
      "monitors:\n- name: p-0\n  endpoint: http://10.0.0.1:80\n  interval_seconds: 360000000\n",
      "monitors:\n- name: p-0\n  endpoint: http://10.0.0.1:80\n  timeout_seconds: 360000000\n"};
  for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
    pp_err err = {0};
    char *yaml = NULL;
    CHECK(kbuild_target_check(&t[i], &err) == PP_EINVAL);
    CHECK(kbuild_config_yaml(&t[i], 1, NULL, &yaml, &err) == PP_EINVAL);
    free(yaml);
    cfg_config *c = NULL;
    CHECK(cfg_parse(as_collector_config[i], strlen(as_collector_config[i]), "c.yaml", &c, &err) == PP_EINVAL);
    cfg_free(c);
  }
  json_decref(over);
  /* 1h30m is 5400 s, end to end: the monitor, the generated config, the collector's schedule */
  json_t *spec = json_loads("{\"endpoint\":{\"interval\":\"1h30m\",\"timeout\":\"1m30s\",\"path\":\"internal/\"},"
                            "\"config\":{\"heap\":{}}}",
                            0, NULL);
  kbuild_monitor m;
  pp_err err = {0};
  CHECK(kbuild_monitor_check(spec, &m, &err) == 0);
  CHECK(m.interval_seconds == 5400);
  CHECK(m.timeout_seconds == 90);
  kbuild_target good = {"ns", "svc", "p-0", "n", "m", m.scheme, "10.0.0.1", 80, m.path, m.config, m.interval_seconds,
                        m.timeout_seconds, NULL, 0};
  CHECK(kbuild_target_check(&good, &err) == 0);
  char *yaml = NULL;
  CHECK(kbuild_config_yaml(&good, 1, NULL, &yaml, &err) == 0);
  cfg_config *c = yaml ? collector_parses(yaml) : NULL;
  CHECK(c != NULL);
  if (c && c->nmonitors == 1) {
    cfg_effective e;
    CHECK(cfg_effective_for(c, &c->monitors[0], CFG_HEAP, &e, NULL) == 0);
    CHECK_EQ_I64(e.interval_ms, 5400000);
    CHECK_EQ_I64(e.timeout_ms, 90000);
    CHECK_STR(e.url, "http://10.0.0.1:80/internal/debug/pprof/heap");
  }
  cfg_free(c);
  free(yaml);
  json_decref(spec);
  /* durations as the CRD gives them: whole seconds or Go-style strings */
  double d = 0;
  json_t *v = json_integer(90);
  CHECK(kbuild_duration(v, &d, &err) == 0 && d == 90);
  json_decref(v);
  v = json_string("1h30m");
  CHECK(kbuild_duration(v, &d, &err) == 0 && d == 5400);
  json_decref(v);
  v = json_true();
  CHECK(kbuild_duration(v, &d, &err) == PP_EINVAL);
  json_decref(v);
}

/* Names stay within what the collector accepts even when a pod's own name is long and it is
 * picked twice on one port (pod-port-monitor would pass 253 characters). */
static void long_names_fit(void) {
  char pod[254], mon[254];
  memset(pod, 'p', 253);
  pod[253] = '\0';
  memset(mon, 'm', 253);
  mon[253] = '\0';
  kbuild_target t[] = {{"ns", "svc", pod, "n", "a", "http", "10.0.0.1", 80, NULL, NULL, 0, 0, NULL, 0},
                       {"ns", "svc", pod, "n", mon, "http", "10.0.0.1", 80, NULL, NULL, 0, 0, NULL, 0},
                       {"ns", "svc", pod, "n", "b", "http", "10.0.0.1", 80, NULL, NULL, 0, 0, NULL, 0}};
  char *yaml = NULL;
  pp_err err = {0};
  CHECK(kbuild_config_yaml(t, 3, NULL, &yaml, &err) == 0);
  cfg_config *c = yaml ? collector_parses(yaml) : NULL;
  CHECK(c && c->nmonitors == 3);
  if (c && c->nmonitors == 3) {
    CHECK(strcmp(c->monitors[0].name, c->monitors[1].name) && strcmp(c->monitors[1].name, c->monitors[2].name) &&
          strcmp(c->monitors[0].name, c->monitors[2].name));
    for (size_t i = 0; i < 3; i++) CHECK(strlen(c->monitors[i].name) <= 253);
  }
  cfg_free(c);
  free(yaml);
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

static void quantities(void) {
  uint64_t b = 0;
  pp_err err = {0};
  CHECK(kbuild_quantity("5Gi", &b, &err) == 0);
  CHECK_EQ_I64(b, (int64_t)5 << 30);
  CHECK(kbuild_quantity("500M", &b, &err) == 0);
  CHECK_EQ_I64(b, 500000000);
  CHECK(kbuild_quantity("1.5Gi", &b, &err) == 0);
  CHECK_EQ_I64(b, (int64_t)3 << 29);
  CHECK(kbuild_quantity("1e9", &b, &err) == 0);
  CHECK_EQ_I64(b, 1000000000);
  CHECK(kbuild_quantity("1024", &b, &err) == 0);
  CHECK_EQ_I64(b, 1024);
  CHECK(kbuild_quantity("-1Gi", &b, &err) == PP_EINVAL);
  CHECK(kbuild_quantity("5GB", &b, &err) == PP_EINVAL);
  CHECK(kbuild_quantity("lots", &b, &err) == PP_EINVAL);
  CHECK(kbuild_quantity("", &b, &err) == PP_EINVAL);
  CHECK(kbuild_quantity("99999999999999999999Ei", &b, &err) == PP_EINVAL);
}

static const json_t *find_kind(const json_t *objs, const char *kind) {
  size_t i;
  json_t *o;
  json_array_foreach(objs, i,
                     o) if (!strcmp(json_string_value(json_object_get(o, "kind")), kind)) return o;
  return NULL;
}

static void stack_objects(void) {
  json_t *stack = json_loads("{\"metadata\":{\"name\":\"s\",\"namespace\":\"pc\",\"uid\":\"u-1\"},"
                             "\"spec\":{\"storage\":{\"diskSpace\":\"10Gi\"},"
                             "\"collectorImage\":{\"repo\":\"r\",\"image\":\"collector\",\"tag\":"
                             "\"v1\",\"imagePullSecrets\":[{\"name\":\"pull\"}]}}}",
                             0, NULL);
  json_t *objs = NULL;
  pp_err err = {0};
  CHECK(kbuild_stack_objects(stack, "pprof-operator", NULL, 1, 1, NULL, false, &objs, &err) == 0);
  CHECK_EQ_I64(json_array_size(objs), 4);
  const json_t *sts = find_kind(objs, "StatefulSet"), *svc = find_kind(objs, "Service");
  const json_t *pvc = find_kind(objs, "PersistentVolumeClaim"), *cm = find_kind(objs, "ConfigMap");
  CHECK(sts && svc && pvc && cm);
  if (sts && svc && pvc && cm) {
    CHECK_STR(json_string_value(json_object_get(json_object_get(svc, "metadata"), "name")),
              "pprof-operator-collector");
    CHECK_STR(json_string_value(json_object_get(json_object_get(pvc, "metadata"), "name")),
              "pprof-operator-collector-data");
    CHECK_STR(json_string_value(json_object_get(json_object_get(cm, "metadata"), "name")),
              "pprof-operator-config");
    CHECK(json_object_get(cm, "data") ==
          NULL); /* config.yaml belongs to the monitors' reconciler */
    const json_t *owner =
        json_array_get(json_object_get(json_object_get(sts, "metadata"), "ownerReferences"), 0);
    CHECK_STR(json_string_value(json_object_get(owner, "uid")), "u-1");
    CHECK(json_is_true(json_object_get(owner, "controller")));
    const json_t *pod =
        json_object_get(json_object_get(json_object_get(sts, "spec"), "template"), "spec");
    const json_t *containers = json_object_get(pod, "containers");
    CHECK_EQ_I64(json_array_size(containers), 1); /* no reloaderImage, no sidecar */
    const json_t *c = json_array_get(containers, 0);
    CHECK_STR(json_string_value(json_object_get(c, "image")), "docker.io/r/collector:v1");
    char *args = json_dumps(json_object_get(c, "args"), JSON_COMPACT);
    CHECK(args && strstr(args, "--retention-size=9126805470B")); /* 85% of 10Gi */
    /* the default split of that budget: raw 55%, rollups 30% (91268054 a percent), 24h and 30d */
    CHECK(args && strstr(args, "\"--retention-raw=86400s\""));
    CHECK(args && strstr(args, "\"--retention-raw-size=5019742970B\""));
    CHECK(args && strstr(args, "\"--retention-rollup=2592000s\""));
    CHECK(args && strstr(args, "\"--retention-rollup-size=2738041620B\""));
    free(args);
    CHECK(json_is_true(json_object_get(json_object_get(pod, "securityContext"), "runAsNonRoot")));
    CHECK_STR(json_string_value(json_object_get(
                  json_array_get(json_object_get(pod, "imagePullSecrets"), 0), "name")),
              "pull");
    CHECK_STR(
        json_string_value(json_object_get(
            json_object_get(json_object_get(json_object_get(pvc, "spec"), "resources"), "requests"),
            "storage")),
        "10Gi");
  }
  json_decref(objs);
  /* a reloader image adds the sidecar */
  json_object_set_new(json_object_get(stack, "spec"), "reloaderImage",
                      json_pack("{s:s,s:s,s:s}", "registry", "ghcr.io", "repo", "jimmidyson",
                                "image", "configmap-reload"));
  CHECK(kbuild_stack_objects(stack, "pprof-operator", NULL, 1, 1, NULL, false, &objs, &err) == 0);
  sts = find_kind(objs, "StatefulSet");
  const json_t *cs = json_object_get(
      json_object_get(json_object_get(json_object_get(sts, "spec"), "template"), "spec"),
      "containers");
  CHECK_EQ_I64(json_array_size(cs), 2);
  CHECK_STR(json_string_value(json_object_get(json_array_get(cs, 1), "image")),
            "ghcr.io/jimmidyson/configmap-reload:latest");
  json_decref(objs);
  /* bad specs name the field */
  json_object_set_new(json_object_get(json_object_get(stack, "spec"), "storage"), "diskSpace",
                      json_string("1Mi"));
  CHECK(kbuild_stack_objects(stack, "pprof-operator", NULL, 1, 1, NULL, false, &objs, &err) == PP_EINVAL);
  CHECK(strstr(err.msg, "diskSpace") != NULL);
  json_object_set_new(json_object_get(json_object_get(stack, "spec"), "storage"), "diskSpace",
                      json_string("5Gi"));
  json_object_del(json_object_get(json_object_get(stack, "spec"), "collectorImage"), "image");
  CHECK(kbuild_stack_objects(stack, "pprof-operator", NULL, 1, 1, NULL, false, &objs, &err) == PP_EINVAL);
  CHECK(strstr(err.msg, "collectorImage") != NULL);
  json_decref(stack);
}

/* spec.storage.retention: each field reaches its flag; bad values name their field. */
static void stack_retention(void) {
  pp_err err = {0};
  char args[5][64];
  json_t *st = json_loads("{\"diskSpace\":\"10Gi\",\"retention\":{\"raw\":\"12h\",\"rollup\":\"2w\","
                          "\"rawSize\":\"2Gi\",\"rollupSize\":1073741824}}",
                          0, NULL);
  CHECK(kbuild_stack_retention(st, (uint64_t)10 << 30, args, &err) == 0);
  CHECK_STR(args[0], "--retention-size=9126805470B");
  CHECK_STR(args[1], "--retention-raw=43200s");
  CHECK_STR(args[2], "--retention-raw-size=2147483648B");
  CHECK_STR(args[3], "--retention-rollup=1209600s");
  CHECK_STR(args[4], "--retention-rollup-size=1073741824B");
  json_decref(st);
  /* a period that is not whole seconds is written as it is, in milliseconds */
  st = json_loads("{\"retention\":{\"raw\":\"1500ms\",\"rollup\":\"90m\"}}", 0, NULL);
  CHECK(kbuild_stack_retention(st, (uint64_t)10 << 30, args, &err) == 0);
  CHECK_STR(args[1], "--retention-raw=1500ms");
  CHECK_STR(args[3], "--retention-rollup=5400s");
  json_decref(st);
  const char *bad[][2] = {
      {"{\"retention\":{\"raw\":\"48h\",\"rollup\":\"1d\"}}", "rollup is shorter than raw"},
      {"{\"retention\":{\"raw\":\"soon\"}}", "spec.storage.retention.raw"},
      {"{\"retention\":{\"rollup\":-5}}", "positive durations"},
      {"{\"retention\":{\"raw\":\"400ms\",\"rollup\":\"1500ms\"}}", "at least 1s"},
      {"{\"retention\":{\"rawSize\":\"lots\"}}", "spec.storage.retention.rawSize"},
      {"{\"retention\":{\"rollupSize\":true}}", "spec.storage.retention.rollupSize"},
      {"{\"retention\":{\"rawSize\":\"8Gi\",\"rollupSize\":\"1Gi\"}}", "over 85% of diskSpace"},
      {"{\"retention\":{\"rawSize\":0}}", "over 0"},
      {"{\"retention\":[]}", "not an object"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    st = json_loads(bad[i][0], 0, NULL);
    memset(&err, 0, sizeof err);
    CHECK(kbuild_stack_retention(st, (uint64_t)10 << 30, args, &err) == PP_EINVAL);
    if (!strstr(err.msg, bad[i][1])) fprintf(stderr, "  %s: %s\n", bad[i][0], err.msg);
    CHECK(strstr(err.msg, bad[i][1]) != NULL);
    json_decref(st);
  }
}

/* spec.storage.objectStore: the collector's flags, and its credentials from the Secret by the
 * kubelet; bad fields are named. */
static void stack_objstore(void) {
  json_t *stack = json_loads("{\"metadata\":{\"name\":\"s\",\"namespace\":\"pc\",\"uid\":\"u-1\"},"
                             "\"spec\":{\"storage\":{\"diskSpace\":\"10Gi\",\"objectStore\":{"
                             "\"endpoint\":\"http://minio.storage:9000\",\"bucket\":\"profiles\","
                             "\"credentialsSecret\":{\"name\":\"s3-creds\"}}},"
                             "\"collectorImage\":{\"repo\":\"r\",\"image\":\"collector\",\"tag\":\"v1\"}}}",
                             0, NULL);
  json_t *objs = NULL;
  pp_err err = {0};
  CHECK(kbuild_stack_objects(stack, "pprof-operator", NULL, 1, 1, NULL, false, &objs, &err) == 0);
  const json_t *sts = find_kind(objs, "StatefulSet");
  const json_t *c = json_array_get(
      json_object_get(json_object_get(json_object_get(json_object_get(sts, "spec"), "template"), "spec"), "containers"), 0);
  char *args = json_dumps(json_object_get(c, "args"), JSON_COMPACT);
  char *env = json_dumps(json_object_get(c, "env"), JSON_COMPACT | JSON_SORT_KEYS);
  CHECK(args && strstr(args, "\"--object-store-endpoint=http://minio.storage:9000\""));
  CHECK(args && strstr(args, "\"--object-store-bucket=profiles\""));
  CHECK(args && strstr(args, "\"--object-store-prefix=pc/s\"")); /* namespace/stack by default */
  CHECK(args && !strstr(args, "--object-store-region") && !strstr(args, "--object-store-retention"));
  CHECK(args && strstr(args, "\"--retention-size=9126805470B\"")); /* the other flags stay */
  CHECK_STR(env, "[{\"name\":\"AWS_ACCESS_KEY_ID\",\"valueFrom\":{\"secretKeyRef\":{\"key\":\"AWS_ACCESS_KEY_ID\","
                 "\"name\":\"s3-creds\"}}},{\"name\":\"AWS_SECRET_ACCESS_KEY\",\"valueFrom\":{\"secretKeyRef\":{\"key\":"
                 "\"AWS_SECRET_ACCESS_KEY\",\"name\":\"s3-creds\"}}}]");
  free(args);
  free(env);
  json_decref(objs);
  /* every field given */
  json_t *st = json_loads("{\"objectStore\":{\"endpoint\":\"https://s3.eu-west-1.amazonaws.com\",\"bucket\":\"b-1.x\","
                          "\"prefix\":\"cluster-a/c0\",\"region\":\"eu-west-1\",\"retention\":\"90d\","
                          "\"credentialsSecret\":{\"name\":\"aws\",\"accessKeyIdKey\":\"id\",\"secretAccessKeyKey\":\"key.secret\"}}}",
                          0, NULL);
  json_t *a = NULL, *e = NULL;
  CHECK(kbuild_stack_objstore(st, "pc", "s", &a, &e, &err) == 0);
  args = json_dumps(a, JSON_COMPACT);
  CHECK_STR(args, "[\"--object-store-endpoint=https://s3.eu-west-1.amazonaws.com\",\"--object-store-bucket=b-1.x\","
                  "\"--object-store-prefix=cluster-a/c0\",\"--object-store-region=eu-west-1\",\"--object-store-retention=7776000s\"]");
  env = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
  CHECK(env && strstr(env, "\"key\":\"id\",\"name\":\"aws\"") && strstr(env, "\"key\":\"key.secret\",\"name\":\"aws\""));
  free(args);
  free(env);
  json_decref(a);
  json_decref(e);
  json_decref(st);
  /* an endpoint's trailing slashes are no path */
  st = json_loads("{\"objectStore\":{\"endpoint\":\"http://minio:9000//\",\"bucket\":\"bkt\",\"credentialsSecret\":{\"name\":\"c\"}}}",
                  0, NULL);
  CHECK(kbuild_stack_objstore(st, "pc", "s", &a, &e, &err) == 0);
  CHECK(a && !strcmp(json_string_value(json_array_get(a, 0)), "--object-store-endpoint=http://minio:9000//"));
  json_decref(a);
  json_decref(e);
  json_decref(st);
  /* none: nothing added */
  st = json_loads("{\"diskSpace\":\"1Gi\"}", 0, NULL);
  CHECK(kbuild_stack_objstore(st, "pc", "s", &a, &e, &err) == 0);
  CHECK(a == NULL && e == NULL);
  json_decref(st);
  const char *bad[][2] = {
      {"{\"objectStore\":[]}", "not an object"},
      {"{\"objectStore\":{\"endpoint\":\"http://h:9000\",\"bucket\":\"Bad_Bucket\",\"credentialsSecret\":{\"name\":\"c\"}}}", "bucket"},
      {"{\"objectStore\":{\"endpoint\":\"ftp://h\",\"bucket\":\"bkt\",\"credentialsSecret\":{\"name\":\"c\"}}}", "endpoint"},
      {"{\"objectStore\":{\"endpoint\":\"http://h/path\",\"bucket\":\"bkt\",\"credentialsSecret\":{\"name\":\"c\"}}}", "endpoint"},
      {"{\"objectStore\":{\"endpoint\":\"http://h\",\"bucket\":\"bkt\",\"prefix\":\"a/../b\",\"credentialsSecret\":{\"name\":\"c\"}}}", "prefix"},
      {"{\"objectStore\":{\"endpoint\":\"http://h\",\"bucket\":\"bkt\",\"region\":\"EU\",\"credentialsSecret\":{\"name\":\"c\"}}}", "region"},
      {"{\"objectStore\":{\"endpoint\":\"http://h\",\"bucket\":\"bkt\"}}", "credentialsSecret.name"},
      {"{\"objectStore\":{\"endpoint\":\"http://h\",\"bucket\":\"bkt\",\"credentialsSecret\":{\"name\":\"c\",\"accessKeyIdKey\":\"a/b\"}}}", "not a Secret data key"},
      {"{\"objectStore\":{\"endpoint\":\"http://h\",\"bucket\":\"bkt\",\"retention\":\"soon\",\"credentialsSecret\":{\"name\":\"c\"}}}", "objectStore.retention"},
      {"{\"objectStore\":{\"endpoint\":\"http://h\",\"bucket\":\"bkt\",\"retention\":\"100ms\",\"credentialsSecret\":{\"name\":\"c\"}}}", "at least 1s"},
      {"{\"objectStore\":{\"endpoint\":\"http://h\",\"bucket\":\"bkt\",\"retention\":\"999999w\",\"credentialsSecret\":{\"name\":\"c\"}}}", "at most 100 years"},
      {"{\"objectStore\":{\"endpoint\":\"http://h\",\"bucket\":\"bkt\",\"prefix\":\"a/.hidden\",\"credentialsSecret\":{\"name\":\"c\"}}}", "prefix"},
      {"{\"objectStore\":{\"endpoint\":\"http://h\",\"bucket\":\"bkt\",\"credentialsSecret\":{\"name\":\"-c\"}}}", "credentialsSecret.name"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    st = json_loads(bad[i][0], 0, NULL);
    memset(&err, 0, sizeof err);
    CHECK(kbuild_stack_objstore(st, "pc", "s", &a, &e, &err) == PP_EINVAL);
    if (!strstr(err.msg, bad[i][1])) fprintf(stderr, "  %s: %s\n", bad[i][0], err.msg);
    CHECK(strstr(err.msg, bad[i][1]) != NULL);
    CHECK(a == NULL && e == NULL);
    json_decref(st);
  }
  /* the stack as a whole refuses it, naming the field */
  json_object_set_new(json_object_get(json_object_get(json_object_get(stack, "spec"), "storage"), "objectStore"), "bucket",
                      json_string("x"));
  CHECK(kbuild_stack_objects(stack, "pprof-operator", NULL, 1, 1, NULL, false, &objs, &err) == PP_EINVAL);
  CHECK(strstr(err.msg, "spec.storage.objectStore") != NULL);
  json_decref(stack);
}

static void yaml_to_json(void) {
  json_t *v = NULL;
  pp_err err = {0};
  const char *doc = "a: 1\nb: true\nc: \"1\"\nd: [x, 2.5, null]\ne: {f: ~}\n---\nsecond: doc\n";
  CHECK(kyaml_load_all(doc, strlen(doc), "t", &v, &err) == 0);
  CHECK_EQ_I64(json_array_size(v), 2);
  char *s = json_dumps(json_array_get(v, 0), JSON_COMPACT | JSON_SORT_KEYS);
  CHECK_STR(s, "{\"a\":1,\"b\":true,\"c\":\"1\",\"d\":[\"x\",2.5,null],\"e\":{\"f\":null}}");
  free(s);
  json_decref(v);
  const char *alias = "a: &x [1]\nb: *x\n";
  CHECK(kyaml_load_all(alias, strlen(alias), "t", &v, &err) == PP_EINVAL);
  CHECK(strstr(err.msg, "aliases") != NULL);
  const char *bad = "a: [1\n";
  CHECK(kyaml_load_all(bad, strlen(bad), "cfg", &v, &err) == PP_EINVAL);
  CHECK(strstr(err.msg, "cfg:") != NULL);
  char deep[400];
  memset(deep, '[', 200);
  deep[200] = '\0';
  CHECK(kyaml_load_all(deep, 200, "t", &v, &err) < 0);
  /* well formed but past KYAML_MAX_DEPTH: PP_ELIMIT, also without a pp_err (the code used to
   * come from err->code, so a NULL err turned every conversion failure into PP_EINVAL) */
  memset(deep, '[', 100);
  memset(deep + 100, ']', 100);
  CHECK(kyaml_load_all(deep, 200, "t", &v, NULL) == PP_ELIMIT);
  pp_err derr = {0};
  CHECK(kyaml_load_all(deep, 200, "t", &v, &derr) == PP_ELIMIT && derr.code == PP_ELIMIT);
  CHECK(strstr(derr.msg, "nested deeper") != NULL);
  CHECK(kyaml_load_all(deep + 40, 120, "t", &v, NULL) == 0); /* 60 levels: within the limit */
  json_decref(v);
  /* the size cap, by length and through the file reader */
  char *big = malloc(KYAML_MAX_BYTES + 1);
  if (big) {
    memset(big, ' ', KYAML_MAX_BYTES + 1);
    CHECK(kyaml_load_all(big, KYAML_MAX_BYTES + 1, "big", &v, &err) == PP_ELIMIT);
    char path[64];
    snprintf(path, sizeof path, "/tmp/pp-kyaml-test-%d", (int)getpid());
    FILE *f = fopen(path, "w");
    if (f) fwrite(big, 1, KYAML_MAX_BYTES + 1, f), fclose(f);
    CHECK(kyaml_load_file(path, &v, &err) == PP_ELIMIT);
    CHECK(strstr(err.msg, path) != NULL);
    unlink(path);
    free(big);
  }
}

static void work_queue(void) {
  kq *q = kq_new();
  kq_add(q, "a");
  kq_add(q, "a"); /* coalesced */
  kq_add(q, "b");
  CHECK_EQ_I64(kq_len(q), 2);
  const char *k = kq_get(q, 0);
  CHECK_STR(k, "a");
  kq_add(q, "a"); /* while processing: dirty, not handed out twice */
  const char *k2 = kq_get(q, 0);
  CHECK_STR(k2, "b");
  CHECK(kq_get(q, 0) == NULL);
  kq_done(q, "a"); /* re-queued after done */
  kq_done(q, "b");
  CHECK_EQ_I64(kq_len(q), 1);
  CHECK_STR(kq_get(q, 0), "a");
  /* per-key backoff: 5 ms, 10 ms, 20 ms ... */
  kq_retry(q, "a", 1000);
  kq_done(q, "a");
  CHECK(kq_get(q, 1004) == NULL);
  CHECK_EQ_I64(kq_next_ms(q, 1000), 5);
  CHECK_STR(kq_get(q, 1005), "a");
  kq_retry(q, "a", 2000);
  kq_done(q, "a");
  CHECK(kq_get(q, 2009) == NULL);
  CHECK_STR(kq_get(q, 2010), "a");
  CHECK_EQ_I64(kq_failures(q, "a"), 2); /* what the operator logs by: the first failure, the recovery */
  CHECK_EQ_I64(kq_failures(q, "nope"), 0);
  kq_forget(q, "a"); /* success resets the backoff */
  CHECK_EQ_I64(kq_failures(q, "a"), 0);
  kq_retry(q, "a", 3000);
  kq_done(q, "a");
  CHECK_STR(kq_get(q, 3005), "a");
  kq_done(q, "a");
  kq_free(q);
}

/* The `version` label from a pod: its app.kubernetes.io/version label, else the image tag of the
 * container exposing the port (else the first's), else the digest (the reference's, else the
 * status imageID's), else none. */
static void pod_versions(void) {
  static const struct {
    const char *pod;
    int port;
    const char *want;
  } cases[] = {
      /* the label wins over any image */
      {"{\"metadata\":{\"labels\":{\"app.kubernetes.io/version\":\"2.3.1\"}},\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"r/x:v9\"}]}}",
       6060, "2.3.1"},
      /* an empty label is no label */
      {"{\"metadata\":{\"labels\":{\"app.kubernetes.io/version\":\"\"}},\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"r/x:v9\"}]}}",
       6060, "v9"},
      /* the container exposing the port, not the first; a registry port is not a tag */
      {"{\"spec\":{\"containers\":[{\"name\":\"proxy\",\"image\":\"envoy:1.30\",\"ports\":[{\"containerPort\":9901}]},"
       "{\"name\":\"app\",\"image\":\"registry:5000/shop/checkout:2024.11.3\",\"ports\":[{\"containerPort\":6060}]}]}}",
       6060, "2024.11.3"},
      /* a port no container declares: the first container */
      {"{\"spec\":{\"containers\":[{\"name\":\"proxy\",\"image\":\"envoy:1.30\",\"ports\":[{\"containerPort\":9901}]},"
       "{\"name\":\"app\",\"image\":\"shop/checkout:7\"}]}}",
       7070, "1.30"},
      /* tag and digest: the tag */
      {"{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"r:5000/x:v2@sha256:abcd\"}]}}", 1, "v2"},
      /* digest only: the digest */
      {"{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"r:5000/x@sha256:abcd\"}]}}", 1, "sha256:abcd"},
      /* neither (registry port only): the digest the kubelet resolved, with or without a scheme */
      {"{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"r:5000/x\"}]},"
       "\"status\":{\"containerStatuses\":[{\"name\":\"b\",\"imageID\":\"sha256:ffff\"},"
       "{\"name\":\"a\",\"imageID\":\"docker-pullable://r:5000/x@sha256:0123\"}]}}",
       1, "sha256:0123"},
      {"{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"x\"}]},"
       "\"status\":{\"containerStatuses\":[{\"name\":\"a\",\"imageID\":\"sha256:0123\"}]}}",
       1, "sha256:0123"},
      /* nothing known: no version; a trailing ':' is no tag */
      {"{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"x\"}]}}", 1, ""},
      {"{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"x:\"}]}}", 1, ""},
      {"{\"spec\":{\"containers\":[]}}", 1, ""},
      {"{}", 1, ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    json_t *pod = json_loads(cases[i].pod, 0, NULL);
    char v[KBUILD_MAX_VERSION + 1];
    CHECK(pod != NULL);
    kbuild_pod_version(pod, cases[i].port, v);
    if (strcmp(v, cases[i].want)) {
      fprintf(stderr, "  case %zu: got \"%s\", want \"%s\"\n", i, v, cases[i].want);
      tt_failures++;
    }
    json_decref(pod);
  }
  /* a long label is cut to KBUILD_MAX_VERSION bytes, not refused */
  char long_v[300], v[KBUILD_MAX_VERSION + 1];
  memset(long_v, 'v', sizeof long_v - 1);
  long_v[sizeof long_v - 1] = '\0';
  json_t *pod = json_pack("{s:{s:{s:s}}}", "metadata", "labels", "app.kubernetes.io/version", long_v);
  kbuild_pod_version(pod, 1, v);
  CHECK_EQ_I64(strlen(v), KBUILD_MAX_VERSION);
  json_decref(pod);
}


static const json_t *jpath(const json_t *o, const char *const *keys) {
  for (; *keys && o; keys++) o = json_object_get(o, *keys);
  return o;
}
#define JP(o, ...) jpath((o), (const char *const[]){__VA_ARGS__, NULL})

static const json_t *find_named(const json_t *objs, const char *kind, const char *name) {
  size_t i;
  json_t *o;
  json_array_foreach(objs, i, o) if (!strcmp(json_string_value(json_object_get(o, "kind")), kind) &&
                                     !strcmp(json_string_value(JP(o, "metadata", "name")), name)) return o;
  return NULL;
}

/* Shards: the plan's steps, the annotations it lives in, the config block and pins as the
 * collector parses them, the counts against the collector's own split, and shard k's objects. */
static void shards(void) {
  kbuild_shards p, cur = {1, 0, 0};
  kbuild_shard_plan(3, NULL, 1000, 150, &p); /* a new stack: its count at once */
  CHECK(p.shards == 3 && p.previous == 0 && p.change_at == 0);
  kbuild_shard_plan(1, &cur, 1000, 150, &p); /* nothing to change */
  CHECK(p.shards == 1 && p.previous == 0);
  kbuild_shard_plan(3, &cur, 1000, 150, &p); /* 1 -> 3 at now + delay */
  CHECK(p.shards == 3 && p.previous == 1 && p.change_at == 1150);
  CHECK_EQ_I64(kbuild_shards_running(&p, 1000), 3);
  cur = p;
  kbuild_shard_plan(2, &cur, 1149, 150, &p); /* a change in progress runs to its end first */
  CHECK(p.shards == 3 && p.previous == 1 && p.change_at == 1150);
  kbuild_shard_plan(2, &cur, 1150, 150, &p); /* then 3 -> 2 */
  CHECK(p.shards == 2 && p.previous == 3 && p.change_at == 1300);
  CHECK_EQ_I64(kbuild_shards_running(&p, 1299), 3); /* shard 2 runs until the change */
  CHECK_EQ_I64(kbuild_shards_running(&p, 1300), 2);
  cur = p;
  kbuild_shard_plan(2, &cur, 5000, 150, &p); /* done: the same plan, the same bytes */
  CHECK(p.shards == 2 && p.previous == 3 && p.change_at == 1300);

  /* annotations: read back, and what does not make a plan */
  struct { const char *ann; int shards, previous; long long at; } rd[] = {
      {"{\"resources.cattle.io/shards\":\"4\",\"resources.cattle.io/previous-shards\":\"2\","
       "\"resources.cattle.io/shard-change-at\":\"1764650000\"}", 4, 2, 1764650000},
      {"{\"resources.cattle.io/shards\":\"4\"}", 4, 0, 0},
      {"{\"resources.cattle.io/shards\":\"4\",\"resources.cattle.io/previous-shards\":\"2\"}", 4, 0, 0},
      {"{\"resources.cattle.io/shards\":\"0\"}", 1, 0, 0},
      {"{\"resources.cattle.io/shards\":\"101\"}", 1, 0, 0},
      {"{\"resources.cattle.io/shards\":\"-3\"}", 1, 0, 0},
      {"{\"resources.cattle.io/shards\":\"3x\"}", 1, 0, 0},
      {"{\"resources.cattle.io/shards\":3}", 1, 0, 0},
      {"{}", 1, 0, 0},
  };
  for (size_t i = 0; i < sizeof rd / sizeof *rd; i++) {
    json_t *cm = json_pack("{s:{s:o}}", "metadata", "annotations", json_loads(rd[i].ann, 0, NULL));
    kbuild_shards got;
    kbuild_shards_read(cm, &got);
    CHECK(got.shards == rd[i].shards && got.previous == rd[i].previous && got.change_at == rd[i].at);
    json_decref(cm);
  }

  /* the config: the block and the pins, as the collector reads them */
  kbuild_target t[40];
  char ips[40][32];
  for (int i = 0; i < 40; i++) {
    snprintf(ips[i], sizeof ips[i], "10.1.%d.%d", i / 7, 3 + i * 5);
    t[i] = (kbuild_target){"ns", "svc", ips[i], "n", "m", "http", ips[i], 6060 + i % 3, NULL, NULL, 0, 0, NULL,
                           i == 0 ? KBUILD_PIN_ALL : i == 1 ? 1 + 4 : KBUILD_PIN_HASH};
  }
  kbuild_shards sh = {3, 2, 1764650000};
  char *yaml = NULL;
  pp_err err = {0};
  CHECK(kbuild_config_yaml(t, 40, &sh, &yaml, &err) == 0);
  CHECK(yaml && strstr(yaml, "sharding:\n  shards: 3\n  previous_shards: 2\n  change_at: 1764650000\n"));
  cfg_config *c = NULL;
  CHECK(yaml && cfg_parse(yaml, strlen(yaml), "c.yaml", &c, &err) == 0);
  uint64_t counts[KBUILD_MAX_SHARDS], by_collector[3] = {0};
  kbuild_shard_counts(t, 40, 3, counts);
  if (c) {
    CHECK(c->shards == 3 && c->previous_shards == 2 && c->change_at == 1764650000 && c->nmonitors == 40);
    int all = 0, pinned = 0;
    for (size_t i = 0; i < c->nmonitors; i++) {
      all += c->monitors[i].shard == CFG_SHARD_ALL;
      pinned += c->monitors[i].shard == 4;
      for (int k = 0; k < 3; k++) by_collector[k] += cfg_on_shard(&c->monitors[i], k, 3);
    }
    CHECK(all == 1 && pinned == 1);
  }
  for (int k = 0; k < 3; k++) CHECK_EQ_I64(counts[k], by_collector[k]);
  CHECK_EQ_I64(counts[0] + counts[1] + counts[2], 40 + 2); /* `all` counted on each of 3 */
  cfg_free(c);
  free(yaml);
  /* one shard, never changed: no block (a stack's config keeps its bytes) */
  sh = (kbuild_shards){1, 0, 0};
  CHECK(kbuild_config_yaml(t + 2, 1, &sh, &yaml, &err) == 0);
  CHECK(yaml && !strstr(yaml, "sharding") && !strstr(yaml, "shard:"));
  free(yaml);

  /* spec.shards and spec.shard */
  int n;
  json_t *v = json_loads("{\"shards\":7}", 0, NULL);
  CHECK(kbuild_stack_shards(v, &n, &err) == 0 && n == 7);
  json_decref(v);
  CHECK(kbuild_stack_shards(NULL, &n, &err) == 0 && n == 1);
  const char *bad_shards[] = {"{\"shards\":0}", "{\"shards\":101}", "{\"shards\":\"3\"}", "{\"shards\":2.5}"};
  for (size_t i = 0; i < 4; i++) {
    v = json_loads(bad_shards[i], 0, NULL);
    CHECK(kbuild_stack_shards(v, &n, &err) == PP_EINVAL && strstr(err.msg, "spec.shards"));
    json_decref(v);
  }
  kbuild_monitor m;
  const char *pins[] = {"{\"shard\":\"all\"}", "{\"shard\":0}", "{\"shard\":999}", "{}"};
  int want[] = {KBUILD_PIN_ALL, 1, 1000, KBUILD_PIN_HASH};
  for (size_t i = 0; i < 4; i++) {
    v = json_loads(pins[i], 0, NULL);
    CHECK(kbuild_monitor_check(v, &m, &err) == 0 && m.pin == want[i]);
    json_decref(v);
  }
  const char *bad_pins[] = {"{\"shard\":-1}", "{\"shard\":1000}", "{\"shard\":\"ALL\"}", "{\"shard\":true}"};
  for (size_t i = 0; i < 4; i++) {
    v = json_loads(bad_pins[i], 0, NULL);
    CHECK(kbuild_monitor_check(v, &m, &err) == PP_EINVAL && strstr(err.msg, "spec.shard"));
    json_decref(v);
  }

  /* shard k's objects: 1 -> 3 planned, so 3 run; a shard 3 from before is kept at 0 replicas */
  json_t *stack = json_loads("{\"metadata\":{\"name\":\"s\",\"namespace\":\"pc\",\"uid\":\"u-1\"},"
                             "\"spec\":{\"shards\":3,\"storage\":{\"diskSpace\":\"10Gi\",\"objectStore\":{"
                             "\"endpoint\":\"http://minio.storage:9000\",\"bucket\":\"profiles\","
                             "\"credentialsSecret\":{\"name\":\"s3-creds\"}}},"
                             "\"collectorImage\":{\"image\":\"collector\"}}}",
                             0, NULL);
  json_t *objs = NULL;
  sh = (kbuild_shards){3, 1, 1764650000};
  CHECK(kbuild_stack_objects(stack, "op", &sh, 3, 4, NULL, false, &objs, &err) == 0);
  CHECK_EQ_I64(json_array_size(objs), 10);
  const json_t *s0 = find_named(objs, "StatefulSet", "op-collector");
  const json_t *s2 = find_named(objs, "StatefulSet", "op-collector-shard-2");
  const json_t *cm = find_named(objs, "ConfigMap", "op-config");
  const json_t *s3 = find_named(objs, "StatefulSet", "op-collector-shard-3");
  CHECK(s3 && json_integer_value(JP(s3, "spec", "replicas")) == 0 && find_named(objs, "PersistentVolumeClaim", "op-collector-shard-3-data"));
  CHECK(s2 && json_integer_value(JP(s2, "spec", "replicas")) == 1);
  CHECK(s0 && s2 && cm && find_named(objs, "PersistentVolumeClaim", "op-collector-shard-1-data") &&
        find_named(objs, "PersistentVolumeClaim", "op-collector-shard-2-data") &&
        find_named(objs, "StatefulSet", "op-collector-shard-1"));
  if (s0 && s2 && cm) {
    char *a0 = json_dumps(JP(json_array_get(JP(s0, "spec", "template", "spec", "containers"), 0), "args"), JSON_COMPACT);
    char *a2 = json_dumps(JP(json_array_get(JP(s2, "spec", "template", "spec", "containers"), 0), "args"), JSON_COMPACT);
    CHECK(a0 && !strstr(a0, "--shard") && strstr(a0, "\"--object-store-prefix=pc/s\""));
    CHECK(a2 && strstr(a2, "\"--shard=2\"") && strstr(a2, "\"--object-store-prefix=pc/s/shard-2\""));
    free(a0);
    free(a2);
    CHECK_STR(json_string_value(JP(json_array_get(JP(s2, "spec", "template", "spec", "volumes"), 1), "persistentVolumeClaim",
                                   "claimName")),
              "op-collector-shard-2-data");
    CHECK_STR(json_string_value(JP(s2, "spec", "selector", "matchLabels", "resources.cattle.io/shard")), "2");
    CHECK_STR(json_string_value(JP(s2, "spec", "template", "metadata", "labels", "resources.cattle.io/shard")), "2");
    /* shard 0's selector (and the Service's) does not take shard k's pods */
    CHECK_STR(json_string_value(JP(s0, "spec", "selector", "matchLabels", "app.kubernetes.io/name")), "pprof-collector");
    CHECK_STR(json_string_value(JP(s2, "spec", "template", "metadata", "labels", "app.kubernetes.io/name")),
              "pprof-collector-shard");
    CHECK_STR(json_string_value(JP(cm, "metadata", "annotations", "resources.cattle.io/shards")), "3");
    CHECK_STR(json_string_value(JP(cm, "metadata", "annotations", "resources.cattle.io/previous-shards")), "1");
    CHECK_STR(json_string_value(JP(cm, "metadata", "annotations", "resources.cattle.io/shard-change-at")), "1764650000");
    kbuild_shards back;
    kbuild_shards_read(cm, &back);
    CHECK(back.shards == 3 && back.previous == 1 && back.change_at == 1764650000);
  }
  json_decref(objs);
  json_decref(stack);
}

/* spec.shardRetentionPolicy (issue 15 §1): a shard past the count answers its history with
 * --query-only for the period, then its StatefulSet is at 0 replicas with the same arguments */
static void retired_shards(void) {
  pp_err err = {0};
  double keep;
  struct {
    const char *spec;
    double want;
  } ok[] = {{"{}", 30 * 86400.0},
            {"{\"storage\":{\"retention\":{\"rollup\":\"7d\"}}}", 7 * 86400.0},
            {"{\"shardRetentionPolicy\":{\"whenScaled\":\"Retain\",\"retain\":{\"retentionPeriod\":\"90s\"}}}", 90},
            {"{\"shardRetentionPolicy\":{\"retain\":{\"retentionPeriod\":3600}}}", 3600},
            {"{\"shardRetentionPolicy\":{\"whenScaled\":\"Stop\",\"retain\":{\"retentionPeriod\":\"90s\"}}}", 0}};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    json_t *v = json_loads(ok[i].spec, 0, NULL);
    CHECK(kbuild_stack_shard_retention(v, &keep, &err) == 0 && keep == ok[i].want);
    json_decref(v);
  }
  const char *bad[] = {"{\"shardRetentionPolicy\":{\"whenScaled\":\"Delete\"}}",
                       "{\"shardRetentionPolicy\":{\"retain\":{\"retentionPeriod\":\"soon\"}}}",
                       "{\"shardRetentionPolicy\":{\"retain\":{\"retentionPeriod\":0}}}", "{\"shardRetentionPolicy\":[]}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    json_t *v = json_loads(bad[i], 0, NULL);
    CHECK(kbuild_stack_shard_retention(v, &keep, &err) == PP_EINVAL && strstr(err.msg, "spec.shardRetentionPolicy"));
    json_decref(v);
  }
  /* 3 -> 1 done: shard 1 retired and answering, shard 2 retired and past its period */
  json_t *stack = json_loads("{\"metadata\":{\"name\":\"s\",\"namespace\":\"pc\",\"uid\":\"u-1\"},"
                             "\"spec\":{\"shards\":1,\"storage\":{\"diskSpace\":\"10Gi\"},\"collectorImage\":{\"image\":\"c\"}}}",
                             0, NULL),
         *objs = NULL;
  kbuild_shards sh = {1, 3, 1764650000};
  kbuild_retired r[3] = {{0, false}, {1764650000, true}, {1764000000, false}};
  CHECK(kbuild_stack_objects(stack, "op", &sh, 1, 3, r, false, &objs, &err) == 0 && json_array_size(objs) == 8);
  const json_t *s1 = find_named(objs, "StatefulSet", "op-collector-shard-1"), *s2 = find_named(objs, "StatefulSet", "op-collector-shard-2");
  const json_t *s0 = find_named(objs, "StatefulSet", "op-collector");
  CHECK(s0 && s1 && s2);
  if (s0 && s1 && s2) {
    CHECK(json_integer_value(JP(s1, "spec", "replicas")) == 1 && json_integer_value(JP(s2, "spec", "replicas")) == 0);
    CHECK_STR(json_string_value(JP(s1, "metadata", "annotations", "resources.cattle.io/retired-at")), "1764650000");
    CHECK_STR(json_string_value(JP(s2, "metadata", "annotations", "resources.cattle.io/retired-at")), "1764000000");
    char *a1 = json_dumps(JP(json_array_get(JP(s1, "spec", "template", "spec", "containers"), 0), "args"), JSON_COMPACT);
    char *a2 = json_dumps(JP(json_array_get(JP(s2, "spec", "template", "spec", "containers"), 0), "args"), JSON_COMPACT);
    char *a0 = json_dumps(JP(json_array_get(JP(s0, "spec", "template", "spec", "containers"), 0), "args"), JSON_COMPACT);
    CHECK(a1 && strstr(a1, "\"--query-only\"") && strstr(a1, "\"--shard=1\""));
    CHECK(a2 && strstr(a2, "\"--query-only\"") && strstr(a2, "\"--shard=2\""));
    CHECK(a0 && !strstr(a0, "--query-only"));
    free(a0);
    free(a1);
    free(a2);
    CHECK(!JP(s0, "metadata", "annotations"));
  }
  json_decref(objs);
  /* shard 1 back under the count: no --query-only, no annotation */
  objs = NULL;
  sh = (kbuild_shards){2, 1, 1764650000};
  CHECK(kbuild_stack_objects(stack, "op", &sh, 2, 3, r, false, &objs, &err) == 0);
  s1 = find_named(objs, "StatefulSet", "op-collector-shard-1");
  char *a1 = s1 ? json_dumps(JP(json_array_get(JP(s1, "spec", "template", "spec", "containers"), 0), "args"), JSON_COMPACT) : NULL;
  CHECK(a1 && !strstr(a1, "--query-only") && !JP(s1, "metadata", "annotations") && json_integer_value(JP(s1, "spec", "replicas")) == 1);
  free(a1);
  json_decref(objs);
  json_decref(stack);
}

/* spec.query (issue 15 §3): a Service and a Deployment of query front ends, shard 0's pod with
 * --query-only and neither a volume nor the object store; scaled to 0 once spec.query goes */
static void query_fronts(void) {
  pp_err err = {0};
  int n;
  const char *counts[] = {"{}", "{\"query\":{}}", "{\"query\":{\"replicas\":0}}", "{\"query\":{\"replicas\":10}}"};
  int want[] = {-1, 1, 0, 10};
  for (size_t i = 0; i < 4; i++) {
    json_t *v = json_loads(counts[i], 0, NULL);
    CHECK(kbuild_stack_query(v, &n, &err) == 0 && n == want[i]);
    json_decref(v);
  }
  const char *bad[] = {"{\"query\":{\"replicas\":11}}", "{\"query\":{\"replicas\":-1}}", "{\"query\":{\"replicas\":\"2\"}}",
                       "{\"query\":3}"};
  for (size_t i = 0; i < 4; i++) {
    json_t *v = json_loads(bad[i], 0, NULL);
    CHECK(kbuild_stack_query(v, &n, &err) == PP_EINVAL && strstr(err.msg, "spec.query") && n == -1);
    json_decref(v);
  }
  const char *doc = "{\"metadata\":{\"name\":\"s\",\"namespace\":\"pc\",\"uid\":\"u-1\"},"
                    "\"spec\":{%s\"storage\":{\"diskSpace\":\"10Gi\",\"objectStore\":{"
                    "\"endpoint\":\"http://minio.storage:9000\",\"bucket\":\"profiles\","
                    "\"credentialsSecret\":{\"name\":\"s3-creds\"}}},\"collectorImage\":{\"image\":\"collector\"}}}";
  char text[1000];
  snprintf(text, sizeof text, doc, "\"query\":{\"replicas\":2},");
  json_t *stack = json_loads(text, 0, NULL), *objs = NULL;
  CHECK(kbuild_stack_objects(stack, "op", NULL, 1, 1, NULL, false, &objs, &err) == 0);
  CHECK_EQ_I64(json_array_size(objs), 6);
  const json_t *d = find_named(objs, "Deployment", "op-query"), *svc = find_named(objs, "Service", "op-query");
  CHECK(d && svc);
  if (d && svc) {
    CHECK(json_integer_value(JP(d, "spec", "replicas")) == 2);
    const json_t *c = json_array_get(JP(d, "spec", "template", "spec", "containers"), 0);
    char *a = json_dumps(JP(c, "args"), JSON_COMPACT);
    CHECK(a && strstr(a, "\"--query-only\"") && !strstr(a, "--object-store-") && strstr(a, "\"--config=/etc/pprof-collector/config.yaml\""));
    free(a);
    CHECK(!json_object_get(c, "env"));
    CHECK(json_is_object(JP(json_array_get(JP(d, "spec", "template", "spec", "volumes"), 1), "emptyDir")));
    CHECK_STR(json_string_value(JP(d, "spec", "selector", "matchLabels", "app.kubernetes.io/name")), "pprof-collector-query");
    CHECK_STR(json_string_value(JP(d, "spec", "template", "metadata", "labels", "app.kubernetes.io/name")), "pprof-collector-query");
    CHECK_STR(json_string_value(JP(svc, "spec", "selector", "app.kubernetes.io/name")), "pprof-collector-query");
    CHECK_STR(json_string_value(JP(json_array_get(JP(d, "metadata", "ownerReferences"), 0), "kind")), "PprofCollectorStack");
    /* shard 0's StatefulSet keeps its volume and the object store */
    const json_t *s0 = find_named(objs, "StatefulSet", "op-collector");
    char *a0 = s0 ? json_dumps(JP(json_array_get(JP(s0, "spec", "template", "spec", "containers"), 0), "args"), JSON_COMPACT) : NULL;
    CHECK(a0 && !strstr(a0, "--query-only") && strstr(a0, "--object-store-bucket=profiles"));
    free(a0);
  }
  json_decref(objs);
  json_decref(stack);
  /* spec.query removed: nothing made unless the Deployment exists, then scaled to 0 */
  snprintf(text, sizeof text, doc, "");
  stack = json_loads(text, 0, NULL);
  objs = NULL;
  CHECK(kbuild_stack_objects(stack, "op", NULL, 1, 1, NULL, false, &objs, &err) == 0 && json_array_size(objs) == 4 &&
        !find_named(objs, "Deployment", "op-query"));
  json_decref(objs);
  objs = NULL;
  CHECK(kbuild_stack_objects(stack, "op", NULL, 1, 1, NULL, true, &objs, &err) == 0 && json_array_size(objs) == 6);
  d = find_named(objs, "Deployment", "op-query");
  CHECK(d && json_integer_value(JP(d, "spec", "replicas")) == 0);
  json_decref(objs);
  json_decref(stack);
  snprintf(text, sizeof text, doc, "\"query\":{\"replicas\":11},");
  stack = json_loads(text, 0, NULL);
  objs = NULL;
  CHECK(kbuild_stack_objects(stack, "op", NULL, 1, 1, NULL, false, &objs, &err) == PP_EINVAL && strstr(err.msg, "spec.query.replicas") &&
        !objs);
  json_decref(stack);
}

/* query.peers (issue 15 §3): the operator's collector pods from the pods cache, and the block the
 * collector's parser reads back */
static void peers(void) {
  json_error_t je;
  json_t *pods = json_loads(
      "{\"o/op-collector-0\": {\"metadata\": {\"name\": \"op-collector-0\", \"namespace\": \"o\", \"labels\": "
      "  {\"app.kubernetes.io/name\": \"pprof-collector\", \"app.kubernetes.io/instance\": \"op\"}}, \"status\": {\"podIP\": \"10.0.0.9\"}},"
      " \"o/op-collector-shard-1-0\": {\"metadata\": {\"namespace\": \"o\", \"labels\": "
      "  {\"app.kubernetes.io/name\": \"pprof-collector-shard\", \"app.kubernetes.io/instance\": \"op\"}}, \"status\": {\"podIP\": \"10.0.0.10\"}},"
      " \"o/v6\": {\"metadata\": {\"namespace\": \"o\", \"labels\": "
      "  {\"app.kubernetes.io/name\": \"pprof-collector-shard\", \"app.kubernetes.io/instance\": \"op\"}}, \"status\": {\"podIP\": \"fd00::7\"}},"
      " \"o/other-op\": {\"metadata\": {\"namespace\": \"o\", \"labels\": "
      "  {\"app.kubernetes.io/name\": \"pprof-collector\", \"app.kubernetes.io/instance\": \"op2\"}}, \"status\": {\"podIP\": \"10.0.0.11\"}},"
      " \"p/other-ns\": {\"metadata\": {\"namespace\": \"p\", \"labels\": "
      "  {\"app.kubernetes.io/name\": \"pprof-collector\", \"app.kubernetes.io/instance\": \"op\"}}, \"status\": {\"podIP\": \"10.0.0.12\"}},"
      " \"o/op-query-x\": {\"metadata\": {\"namespace\": \"o\", \"labels\": "
      "  {\"app.kubernetes.io/name\": \"pprof-collector-query\", \"app.kubernetes.io/instance\": \"op\"}}, \"status\": {\"podIP\": \"10.0.0.15\"}},"
      " \"o/workload\": {\"metadata\": {\"namespace\": \"o\", \"labels\": "
      "  {\"app.kubernetes.io/name\": \"demo\", \"app.kubernetes.io/instance\": \"op\"}}, \"status\": {\"podIP\": \"10.0.0.13\"}},"
      " \"o/no-ip\": {\"metadata\": {\"namespace\": \"o\", \"labels\": "
      "  {\"app.kubernetes.io/name\": \"pprof-collector-shard\", \"app.kubernetes.io/instance\": \"op\"}}, \"status\": {}},"
      " \"o/going\": {\"metadata\": {\"namespace\": \"o\", \"deletionTimestamp\": \"2026-01-01T00:00:00Z\", \"labels\": "
      "  {\"app.kubernetes.io/name\": \"pprof-collector-shard\", \"app.kubernetes.io/instance\": \"op\"}}, \"status\": {\"podIP\": \"10.0.0.14\"}},"
      " \"o/hostile\": {\"metadata\": {\"namespace\": \"o\", \"labels\": "
      "  {\"app.kubernetes.io/name\": \"pprof-collector-shard\", \"app.kubernetes.io/instance\": \"op\"}}, "
      "  \"status\": {\"podIP\": \"10.0.0.1\\\"\\nmonitors: []\"}}}",
      0, &je);
  CHECK(pods != NULL);
  char urls[KBUILD_MAX_PEERS][KBUILD_PEER_URL];
  size_t n = kbuild_collector_peers(pods, "o", "op", urls, KBUILD_MAX_PEERS);
  CHECK(n == 3);
  if (n == 3)
    CHECK(!strcmp(urls[0], "http://10.0.0.10:8989") && !strcmp(urls[1], "http://10.0.0.9:8989") &&
          !strcmp(urls[2], "http://[fd00::7]:8989"));
  CHECK(kbuild_collector_peers(pods, "o", "op", urls, 2) == 2);
  const char *pv[3] = {urls[0], urls[1], urls[2]};
  kbuild_target t = {.namespace_ = "o", .service = "s", .pod = "p", .monitor = "m", .scheme = "http", .ip = "10.1.0.1", .port = 6060};
  kbuild_shards sh = {2, 0, 0};
  char *yaml = NULL;
  pp_err err = {0};
  n = kbuild_collector_peers(pods, "o", "op", urls, KBUILD_MAX_PEERS);
  CHECK(kbuild_config_yaml_peers(&t, 1, &sh, pv, n, &yaml, &err) == 0);
  cfg_config *c = NULL;
  CHECK(yaml && cfg_parse(yaml, strlen(yaml), "generated.yaml", &c, &err) == 0);
  if (c) CHECK(c->npeers == 3 && !strcmp(c->peers[2], "http://[fd00::7]:8989") && c->shards == 2 && c->nmonitors == 1);
  cfg_free(c);
  free(yaml);
  /* none: no block, the bytes of the plain config */
  char *plain = NULL;
  yaml = NULL;
  CHECK(kbuild_config_yaml_peers(&t, 1, &sh, NULL, 0, &yaml, &err) == 0 && kbuild_config_yaml(&t, 1, &sh, &plain, &err) == 0);
  CHECK(yaml && plain && !strcmp(yaml, plain) && !strstr(yaml, "query:"));
  free(yaml);
  free(plain);
  json_decref(pods);
}

int main(void) {
  RUN(config_yaml_round_trips_through_the_collector_parser);
  RUN(bad_monitors_are_refused_alone);
  RUN(long_names_fit);
  RUN(images_as_the_seed_builds_them);
  RUN(quantities);
  RUN(stack_objects);
  RUN(stack_retention);
  RUN(stack_objstore);
  RUN(shards);
  RUN(peers);
  RUN(query_fronts);
  RUN(retired_shards);
  RUN(yaml_to_json);
  RUN(work_queue);
  RUN(pod_versions);
  return tt_finish();
}
