/* Builders of the operator's outputs; see kbuild.h. */
#include "kbuild.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/buf.h"
#include "../base/htab.h"
#include "../base/s3opts.h"
#include "../base/scrapeval.h"
#include "../base/units.h"

/* A double-quoted YAML scalar: backslash, quote and every control byte escaped. */
static void quoted(pp_buf *s, const char *v) {
  pp_buf_put(s, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)(v ? v : ""); *p; p++) {
    if (*p == '"' || *p == '\\') {
      char e[2] = {'\\', (char)*p};
      pp_buf_put(s, e, 2);
    } else if (*p < 0x20 || *p == 0x7f) {
      char e[5];
      snprintf(e, sizeof e, "\\x%02x", *p);
      pp_buf_put(s, e, 4);
    } else {
      pp_buf_put(s, (const char *)p, 1);
    }
  }
  pp_buf_put(s, "\"", 1);
}

static int cmp_str(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : ""); }

static int cmp_target(const void *x, const void *y) {
  const kbuild_target *a = *(const kbuild_target *const *)x, *b = *(const kbuild_target *const *)y;
  int c;
  if ((c = cmp_str(a->namespace_, b->namespace_))) return c;
  if ((c = cmp_str(a->service, b->service))) return c;
  if ((c = cmp_str(a->pod, b->pod))) return c;
  if (a->port != b->port) return a->port < b->port ? -1 : 1;
  if ((c = cmp_str(a->monitor, b->monitor))) return c;
  return cmp_str(a->ip, b->ip);
}

static const char *const types[] = {"allocs", "block", "goroutine", "heap", "mutex", "profile", "threadcreate"};

/* scheme://ip:port[/prefix], the prefix without trailing slashes; false if it does not fit. */
static bool endpoint_of(const kbuild_target *x, char *buf, size_t n) {
  bool v6 = strchr(x->ip, ':') != NULL;
  size_t plen = x->path ? strlen(x->path) : 0;
  while (plen && x->path[plen - 1] == '/') plen--;
  int w = snprintf(buf, n, "%s://%s%s%s:%d%s%.*s", x->scheme && *x->scheme ? x->scheme : "http", v6 ? "[" : "", x->ip,
                   v6 ? "]" : "", x->port, plen && x->path[0] != '/' ? "/" : "", (int)plen, plen ? x->path : "");
  return w >= 0 && (size_t)w < n;
}

/* spec.config's seconds, checked by the collector's rule; what names the field in errors. */
static int check_config(const json_t *config, const char *what, pp_err *err) {
  if (!config || json_is_null(config)) return 0;
  if (!json_is_object(config)) return pp_err_set(err, PP_EINVAL, "%s: expected a mapping of profile types", what);
  for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
    const json_t *c = json_object_get(config, types[k]);
    if (!c || json_is_null(c)) continue;
    if (!json_is_object(c)) return pp_err_set(err, PP_EINVAL, "%s.%s: expected a mapping like {seconds: 10}", what, types[k]);
    const json_t *sec = json_object_get(c, "seconds");
    if (!sec) continue;
    pp_err e;
    if (!json_is_number(sec))
      return pp_err_set(err, PP_EINVAL, "%s.%s.seconds: expected a whole number of seconds", what, types[k]);
    if (sv_check_seconds(!strcmp(types[k], "profile"), json_number_value(sec), &e) < 0)
      return pp_err_set(err, PP_EINVAL, "%s.%s.seconds: %s", what, types[k], e.msg);
  }
  return 0;
}

int kbuild_target_check(const kbuild_target *x, pp_err *err) {
  const char *ns = x->namespace_ ? x->namespace_ : "", *mon = x->monitor ? x->monitor : "";
  if (!x->pod || !*x->pod || !x->ip || !*x->ip || x->port < 1 || x->port > 65535)
    return pp_err_set(err, PP_EINVAL, "%s/%s: pod, ip and a port in 1..65535 are required", ns, mon);
  pp_err e;
  char ep[SV_MAX_URL_LEN + 2];
  if (sv_check_name(x->pod, &e) < 0) return pp_err_set(err, PP_EINVAL, "%s/%s: pod %.100s: %s", ns, mon, x->pod, e.msg);
  if (!endpoint_of(x, ep, sizeof ep)) return pp_err_set(err, PP_EINVAL, "%s/%s: pod %s: endpoint too long", ns, mon, x->pod);
  if (sv_check_endpoint(ep, &e) < 0) return pp_err_set(err, PP_EINVAL, "%s/%s: pod %s: endpoint %s", ns, mon, x->pod, e.msg);
  if (x->interval_seconds && sv_check_interval(x->interval_seconds, &e) < 0)
    return pp_err_set(err, PP_EINVAL, "%s/%s: %s", ns, mon, e.msg);
  if (x->timeout_seconds && sv_check_timeout(x->timeout_seconds, &e) < 0)
    return pp_err_set(err, PP_EINVAL, "%s/%s: %s", ns, mon, e.msg);
  char what[600];
  snprintf(what, sizeof what, "%s/%s: config", ns, mon);
  return check_config(x->config, what, err);
}

/* The container a port belongs to: the one declaring it as a containerPort, else the first. */
static const json_t *port_container(const json_t *pod, int port) {
  const json_t *cs = json_object_get(json_object_get(pod, "spec"), "containers");
  size_t i, k;
  json_t *c, *p;
  json_array_foreach(cs, i, c) {
    json_array_foreach(json_object_get(c, "ports"), k, p) if (json_integer_value(json_object_get(p, "containerPort")) == port) return c;
  }
  return json_array_get(cs, 0);
}

void kbuild_pod_version(const json_t *pod, int port, char buf[KBUILD_MAX_VERSION + 1]) {
  buf[0] = '\0';
  const char *v = json_string_value(json_object_get(json_object_get(json_object_get(pod, "metadata"), "labels"), "app.kubernetes.io/version"));
  if (v && *v) {
    snprintf(buf, KBUILD_MAX_VERSION + 1, "%s", v);
    return;
  }
  const json_t *c = port_container(pod, port);
  const char *image = json_string_value(json_object_get(c, "image"));
  if (!image) return;
  /* registry[:port]/repo[:tag][@digest]: the tag follows the last ':' after the last '/' */
  const char *at = strchr(image, '@'), *slash = strrchr(image, '/');
  size_t end = at ? (size_t)(at - image) : strlen(image);
  const char *colon = NULL;
  for (size_t i = slash ? (size_t)(slash - image) : 0; i < end; i++)
    if (image[i] == ':') colon = image + i;
  if (colon && (size_t)(colon - image) + 1 < end) {
    snprintf(buf, KBUILD_MAX_VERSION + 1, "%.*s", (int)(end - (size_t)(colon - image) - 1), colon + 1);
    return;
  }
  if (at && at[1]) {
    snprintf(buf, KBUILD_MAX_VERSION + 1, "%s", at + 1);
    return;
  }
  /* no tag nor digest in the spec: the digest the kubelet resolved ("repo@sha256:..", or a
   * runtime's "docker-pullable://repo@sha256:..", or a bare "sha256:..") */
  const char *name = json_string_value(json_object_get(c, "name"));
  size_t i;
  json_t *st;
  json_array_foreach(json_object_get(json_object_get(pod, "status"), "containerStatuses"), i, st) {
    const char *sn = json_string_value(json_object_get(st, "name")), *id = json_string_value(json_object_get(st, "imageID"));
    if (!sn || !name || strcmp(sn, name) || !id) continue;
    const char *d = strrchr(id, '@');
    d = d ? d + 1 : !strncmp(id, "sha256:", 7) ? id : NULL;
    if (d && *d) snprintf(buf, KBUILD_MAX_VERSION + 1, "%s", d);
    return;
  }
}

int kbuild_duration(const json_t *v, double *ret, pp_err *err) {
  if (json_is_integer(v)) {
    *ret = (double)json_integer_value(v);
    return 0;
  }
  const char *s = json_string_value(v);
  if (!s) return pp_err_set(err, PP_EINVAL, "expected seconds or a duration such as 30s or 1h30m");
  double d;
  pp_err e;
  if (pp_parse_duration(s, &d, &e) < 0) return pp_err_set(err, PP_EINVAL, "%s", e.msg);
  *ret = d;
  return 0;
}

/* spec.endpoint.interval or .timeout: a duration within the collector's bounds, or absent. */
static int check_duration(const json_t *ep, const char *key, int (*check)(double, pp_err *), double *ret, pp_err *err) {
  const json_t *v = json_object_get(ep, key);
  *ret = 0;
  if (!v || json_is_null(v)) return 0;
  char text[64];
  if (json_is_string(v)) snprintf(text, sizeof text, "\"%.40s\"", json_string_value(v));
  else snprintf(text, sizeof text, "%lld", (long long)json_integer_value(v));
  double d;
  pp_err e;
  if (kbuild_duration(v, &d, &e) < 0 || check(d, &e) < 0)
    return pp_err_set(err, PP_EINVAL, "spec.endpoint.%s: %s: %s", key, text, e.msg);
  *ret = d;
  return 0;
}

int kbuild_monitor_check(const json_t *spec, kbuild_monitor *ret, pp_err *err) {
  kbuild_monitor m = {.scheme = "http"};
  const json_t *ep = json_object_get(spec, "endpoint");
  const json_t *scheme = json_object_get(ep, "scheme"), *path = json_object_get(ep, "path");
  pp_err e;
  if (scheme && !json_is_null(scheme)) {
    m.scheme = json_string_value(scheme);
    if (!m.scheme || (strcmp(m.scheme, "http") && strcmp(m.scheme, "https")))
      return pp_err_set(err, PP_EINVAL, "spec.endpoint.scheme: \"%.40s\" must be http or https", m.scheme ? m.scheme : "");
  }
  if (path && !json_is_null(path)) {
    m.path = json_string_value(path);
    if (!m.path) return pp_err_set(err, PP_EINVAL, "spec.endpoint.path: expected a string");
    /* as kbuild_config_yaml writes it: with a leading /, without trailing ones */
    char norm[SV_MAX_URL_LEN + 2];
    size_t plen = strlen(m.path);
    while (plen && m.path[plen - 1] == '/') plen--;
    int w = snprintf(norm, sizeof norm, "%s%.*s", m.path[0] == '/' ? "" : "/", (int)plen, m.path);
    if (w < 0 || (size_t)w >= sizeof norm) return pp_err_set(err, PP_EINVAL, "spec.endpoint.path: longer than %d characters", SV_MAX_URL_LEN);
    if (plen && sv_check_path(norm, &e) < 0) return pp_err_set(err, PP_EINVAL, "spec.endpoint.path: %s", e.msg);
  }
  int r;
  if ((r = check_duration(ep, "interval", sv_check_interval, &m.interval_seconds, err)) < 0 ||
      (r = check_duration(ep, "timeout", sv_check_timeout, &m.timeout_seconds, err)) < 0)
    return r;
  m.config = json_object_get(spec, "config");
  if ((r = check_config(m.config, "spec.config", err)) < 0) return r;
  const json_t *sh = json_object_get(spec, "shard");
  if (json_is_string(sh) && !strcmp(json_string_value(sh), "all")) m.pin = KBUILD_PIN_ALL;
  else if (json_is_integer(sh) && json_integer_value(sh) >= 0 && json_integer_value(sh) < SV_MAX_SHARDS)
    m.pin = 1 + (int)json_integer_value(sh);
  else if (sh && !json_is_null(sh))
    return pp_err_set(err, PP_EINVAL, "spec.shard: a shard number 0..%d or \"all\"", SV_MAX_SHARDS - 1);
  *ret = m;
  return 0;
}

/* A name the collector accepts: over SV_MAX_NAME_LEN, the end gives way to a hash of the whole,
 * so it stays unique and the same for the same target. */
static void fit_name(char *name, size_t cap) {
  size_t len = strlen(name);
  if (len <= SV_MAX_NAME_LEN) return;
  unsigned long long h = (unsigned long long)htab_hash(name, len);
  snprintf(name + SV_MAX_NAME_LEN - 17, cap - (SV_MAX_NAME_LEN - 17), "-%016llx", h);
}

int kbuild_config_yaml(const kbuild_target *t, size_t n, const kbuild_shards *sh, char **ret, pp_err *err) {
  return kbuild_config_yaml_peers(t, n, sh, NULL, 0, ret, err);
}

static int cmp_url(const void *a, const void *b) { return strcmp(a, b); }

size_t kbuild_collector_peers(const json_t *pods, const char *ns, const char *op, char (*urls)[KBUILD_PEER_URL], size_t max) {
  size_t n = 0;
  const char *key;
  json_t *pod;
  json_object_foreach((json_t *)pods, key, pod) {
    const json_t *m = json_object_get(pod, "metadata"), *l = json_object_get(m, "labels");
    const char *pns = json_string_value(json_object_get(m, "namespace"));
    const char *inst = json_string_value(json_object_get(l, "app.kubernetes.io/instance"));
    const char *name = json_string_value(json_object_get(l, "app.kubernetes.io/name"));
    const char *ip = json_string_value(json_object_get(json_object_get(pod, "status"), "podIP"));
    if (!pns || !inst || !name || !ip || strcmp(pns, ns) || strcmp(inst, op) || json_object_get(m, "deletionTimestamp") ||
        (strcmp(name, "pprof-collector") && strcmp(name, "pprof-collector-shard")) || n == max)
      continue;
    /* an address from the API server goes into a URL and a config file: only a real one */
    unsigned char bin[16];
    if (inet_pton(AF_INET, ip, bin) == 1) snprintf(urls[n++], KBUILD_PEER_URL, "http://%s:8989", ip);
    else if (inet_pton(AF_INET6, ip, bin) == 1) snprintf(urls[n++], KBUILD_PEER_URL, "http://[%s]:8989", ip);
  }
  qsort(urls, n, KBUILD_PEER_URL, cmp_url);
  return n;
}

int kbuild_config_yaml_peers(const kbuild_target *t, size_t n, const kbuild_shards *sh, const char *const *peers,
                             size_t npeers, char **ret, pp_err *err) {
  const kbuild_target **v = calloc(n ? n : 1, sizeof *v);
  /* the names given so far, hashed: 10,000 targets compared pairwise were 50 million strcmp
   * calls, 40% of a pass (perf, bench/operator_bench.py) */
  htab names = {0};
  if (!v || htab_init(&names, n, 0) < 0) {
    free(v);
    htab_free(&names);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++) v[i] = &t[i];
  qsort(v, n, sizeof *v, cmp_target);
  pp_buf s;
  pp_buf_init(&s, 0); /* no cap of its own: its size follows the targets, each checked by kbuild_target_check */
  pp_buf_puts(&s, "# generated by pprof-controller's operator: do not edit\n");
  if (sh && (sh->shards > 1 || sh->previous)) {
    pp_buf_printf(&s, "sharding:\n  shards: %d\n", sh->shards);
    if (sh->previous) pp_buf_printf(&s, "  previous_shards: %d\n  change_at: %lld\n", sh->previous, (long long)sh->change_at);
  }
  if (npeers) {
    pp_buf_puts(&s, "query:\n  peers:\n");
    for (size_t i = 0; i < npeers; i++) pp_buf_puts(&s, "  - "), quoted(&s, peers[i]), pp_buf_puts(&s, "\n");
  }
  pp_buf_puts(&s, "monitors:\n");
  int r = 0;
  for (size_t i = 0; i < n && r == 0; i++) {
    const kbuild_target *x = v[i];
    if ((r = kbuild_target_check(x, err)) < 0) break;
    /* unique, deterministic names: pod, then pod-port, then pod-port-monitor */
    char name[600];
    snprintf(name, sizeof name, "%s", x->pod);
    fit_name(name, sizeof name);
    for (int level = 0; level < 3; level++) {
      if (htab_find(&names, name, strlen(name)) < 0) break;
      if (level == 0) snprintf(name, sizeof name, "%s-%d", x->pod, x->port);
      else snprintf(name, sizeof name, "%s-%d-%.250s", x->pod, x->port, x->monitor ? x->monitor : "");
      fit_name(name, sizeof name);
    }
    uint32_t ni;
    if (htab_intern(&names, name, strlen(name), &ni) < 0) {
      r = pp_err_set(err, PP_ENOMEM, "out of memory");
      break;
    }
    pp_buf_puts(&s, "- name: ");
    quoted(&s, name);
    char ep[SV_MAX_URL_LEN + 2];
    endpoint_of(x, ep, sizeof ep); /* fits: checked above */
    pp_buf_puts(&s, "\n  endpoint: ");
    quoted(&s, ep);
    pp_buf_puts(&s, "\n  labels:\n    __k8s_namespace: ");
    quoted(&s, x->namespace_);
    pp_buf_puts(&s, "\n    __k8s_name: ");
    quoted(&s, x->service);
    pp_buf_puts(&s, "\n    pod: ");
    quoted(&s, x->pod);
    pp_buf_puts(&s, "\n    node: ");
    quoted(&s, x->node);
    pp_buf_puts(&s, "\n    monitor: ");
    quoted(&s, x->monitor);
    if (x->version && *x->version) {
      pp_buf_puts(&s, "\n    version: ");
      quoted(&s, x->version);
    }
    pp_buf_puts(&s, "\n");
    if (x->pin == KBUILD_PIN_ALL) pp_buf_puts(&s, "  shard: all\n");
    else if (x->pin > 0) pp_buf_printf(&s, "  shard: %d\n", x->pin - 1);
    if (x->interval_seconds > 0) pp_buf_printf(&s, "  interval_seconds: %.15g\n", x->interval_seconds);
    if (x->timeout_seconds > 0) pp_buf_printf(&s, "  timeout_seconds: %.15g\n", x->timeout_seconds);
    if (json_is_object(x->config) && json_object_size(x->config)) {
      pp_buf_puts(&s, "  sampling:\n");
      for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
        const json_t *c = json_object_get(x->config, types[k]);
        if (!c || json_is_null(c)) continue;
        const json_t *sec = json_object_get(c, "seconds");
        if (sec) pp_buf_printf(&s, "    %s: {seconds: %lld}\n", types[k], (long long)json_number_value(sec));
        else pp_buf_printf(&s, "    %s: {}\n", types[k]);
      }
    }
  }
  htab_free(&names);
  free(v);
  if (r == 0 && s.failed) r = pp_err_set(err, PP_ENOMEM, "out of memory");
  if (r < 0) {
    pp_buf_free(&s);
    return r;
  }
  *ret = pp_buf_take(&s, NULL);
  return 0;
}

void kbuild_shard_plan(int want, const kbuild_shards *cur, int64_t now, int64_t delay, kbuild_shards *ret) {
  if (!cur) *ret = (kbuild_shards){want, 0, 0};
  else if ((cur->previous && now < cur->change_at) || want == cur->shards) *ret = *cur;
  else *ret = (kbuild_shards){want, cur->shards, now + delay};
}

int kbuild_shards_running(const kbuild_shards *p, int64_t now) {
  return p->previous > p->shards && now < p->change_at ? p->previous : p->shards;
}

/* a positive decimal integer up to max, all of s */
static bool ann_int(const json_t *ann, const char *key, long long max, long long *ret) {
  const char *s = json_string_value(json_object_get(ann, key));
  char *end;
  if (!s || *s < '0' || *s > '9') return false;
  long long v = strtoll(s, &end, 10);
  if (*end || v > max) return false;
  *ret = v;
  return true;
}

void kbuild_shards_read(const json_t *cm, kbuild_shards *ret) {
  const json_t *ann = json_object_get(json_object_get(cm, "metadata"), "annotations");
  long long n, prev, at;
  *ret = (kbuild_shards){1, 0, 0};
  if (!ann_int(ann, KBUILD_ANN_SHARDS, KBUILD_MAX_SHARDS, &n) || n < 1) return;
  ret->shards = (int)n;
  /* a change is both or neither; a lone one is dropped (the collector refuses it too) */
  if (ann_int(ann, KBUILD_ANN_PREVIOUS, KBUILD_MAX_SHARDS, &prev) && prev >= 1 &&
      ann_int(ann, KBUILD_ANN_CHANGE_AT, 253402300799LL, &at)) {
    ret->previous = (int)prev;
    ret->change_at = at;
  }
}

void kbuild_shard_counts(const kbuild_target *t, size_t n, int shards, uint64_t *counts) {
  for (int k = 0; k < shards; k++) counts[k] = 0;
  for (size_t i = 0; i < n; i++) {
    if (t[i].pin == KBUILD_PIN_ALL) {
      for (int k = 0; k < shards; k++) counts[k]++;
      continue;
    }
    char ep[SV_MAX_URL_LEN + 2];
    if (t[i].pin > 0) counts[(t[i].pin - 1) % shards]++;
    else if (endpoint_of(&t[i], ep, sizeof ep)) counts[sv_shard_of(ep, (unsigned)shards)]++;
  }
}

int kbuild_stack_shards(const json_t *spec, int *ret, pp_err *err) {
  const json_t *v = json_object_get(spec, "shards");
  *ret = 1;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > KBUILD_MAX_SHARDS)
    return pp_err_set(err, PP_EINVAL, "spec.shards: a count of 1..%d", KBUILD_MAX_SHARDS);
  *ret = (int)json_integer_value(v);
  return 0;
}

int kbuild_stack_query(const json_t *spec, int *ret, pp_err *err) {
  const json_t *q = json_object_get(spec, "query");
  *ret = -1;
  if (!q || json_is_null(q)) return 0;
  if (!json_is_object(q)) return pp_err_set(err, PP_EINVAL, "spec.query: not an object");
  const json_t *v = json_object_get(q, "replicas");
  if (!v || json_is_null(v)) return *ret = 1, 0;
  if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > KBUILD_MAX_QUERY)
    return pp_err_set(err, PP_EINVAL, "spec.query.replicas: a count of 0..%d", KBUILD_MAX_QUERY);
  *ret = (int)json_integer_value(v);
  return 0;
}

void kbuild_query_name(const char *op, char *buf, size_t n) { snprintf(buf, n, "%s-query", op); }

int kbuild_stack_shard_retention(const json_t *spec, double *ret_s, pp_err *err) {
  const json_t *p = json_object_get(spec, "shardRetentionPolicy");
  const json_t *rollup = json_object_get(json_object_get(json_object_get(spec, "storage"), "retention"), "rollup");
  *ret_s = KBUILD_ROLLUP_DEFAULT_S;
  if (rollup && !json_is_null(rollup) && kbuild_duration(rollup, ret_s, NULL) < 0) *ret_s = KBUILD_ROLLUP_DEFAULT_S;
  if (!p || json_is_null(p)) return 0;
  if (!json_is_object(p)) return pp_err_set(err, PP_EINVAL, "spec.shardRetentionPolicy: not an object");
  const json_t *w = json_object_get(p, "whenScaled");
  const char *when = json_string_value(w);
  if (w && !json_is_null(w) && (!when || (strcmp(when, "Retain") && strcmp(when, "Stop"))))
    return pp_err_set(err, PP_EINVAL, "spec.shardRetentionPolicy.whenScaled: Retain or Stop");
  const json_t *rp = json_object_get(json_object_get(p, "retain"), "retentionPeriod");
  if (rp && !json_is_null(rp)) {
    if (kbuild_duration(rp, ret_s, err) < 0) {
      pp_err_prefix(err, "spec.shardRetentionPolicy.retain.retentionPeriod");
      return PP_EINVAL;
    }
    if (*ret_s < 1 || *ret_s > PP_S3_RETENTION_MAX_S)
      return pp_err_set(err, PP_EINVAL, "spec.shardRetentionPolicy.retain.retentionPeriod: at least 1s, at most 100 years");
  }
  if (when && !strcmp(when, "Stop")) *ret_s = 0;
  return 0;
}

int kbuild_image(const json_t *spec, char *buf, size_t n, pp_err *err) {
  const char *reg = json_string_value(json_object_get(spec, "registry"));
  const char *repo = json_string_value(json_object_get(spec, "repo"));
  const char *image = json_string_value(json_object_get(spec, "image"));
  const char *tag = json_string_value(json_object_get(spec, "tag"));
  const char *sha = json_string_value(json_object_get(spec, "sha"));
  if (!image || !*image) return pp_err_set(err, PP_EINVAL, "image is required");
  int w = snprintf(buf, n, "%s/%s%s%s:%s%s%s", reg && *reg ? reg : "docker.io", repo && *repo ? repo : "",
                   repo && *repo ? "/" : "", image, tag && *tag ? tag : "latest", sha && *sha ? "@" : "", sha && *sha ? sha : "");
  if (w < 0 || (size_t)w >= n) return pp_err_set(err, PP_EINVAL, "image reference too long");
  return 0;
}

int kbuild_quantity(const char *q, uint64_t *ret, pp_err *err) {
  if (!q || !*q) return pp_err_set(err, PP_EINVAL, "empty quantity");
  const char *p = q;
  if (*p == '+') p++;
  if (*p == '-') return pp_err_set(err, PP_EINVAL, "quantity %s is negative", q);
  long double v = 0;
  bool digits = false;
  while (*p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0'), digits = true;
  if (*p == '.') {
    long double scale = 0.1L;
    for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10) v += (*p - '0') * scale, digits = true;
  }
  if (!digits) return pp_err_set(err, PP_EINVAL, "quantity %s has no number", q);
  static const struct {
    const char *sfx;
    long double mul;
  } units[] = {{"Ki", 1024.0L}, {"Mi", 1048576.0L}, {"Gi", 1073741824.0L}, {"Ti", 1099511627776.0L},
               {"Pi", 1125899906842624.0L}, {"Ei", 1152921504606846976.0L}, {"k", 1e3L}, {"M", 1e6L}, {"G", 1e9L},
               {"T", 1e12L}, {"P", 1e15L}, {"E", 1e18L}, {"m", 1e-3L}, {"", 1.0L}};
  long double mul = -1;
  if (*p == 'e' || *p == 'E') {
    char *end;
    long e = strtol(p + 1, &end, 10);
    if (*end || end == p + 1 || e > 30 || e < -30) return pp_err_set(err, PP_EINVAL, "quantity %s: bad exponent", q);
    mul = 1;
    for (long i = 0; i < (e < 0 ? -e : e); i++) mul *= 10;
    if (e < 0) mul = 1 / mul;
  } else {
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
      if (!strcmp(p, units[i].sfx)) mul = units[i].mul;
  }
  if (mul < 0) return pp_err_set(err, PP_EINVAL, "quantity %s: unknown suffix \"%s\"", q, p);
  long double bytes = v * mul;
  if (bytes >= 18446744073709551615.0L) return pp_err_set(err, PP_EINVAL, "quantity %s is too large", q);
  *ret = (uint64_t)bytes;
  return 0;
}

#define LBL_NAME "app.kubernetes.io/name"
#define LBL_INSTANCE "app.kubernetes.io/instance"
#define LBL_MANAGED "app.kubernetes.io/managed-by"

json_t *kbuild_collector_selector(const char *op) {
  return json_pack("{s:s,s:s}", LBL_NAME, "pprof-collector", LBL_INSTANCE, op);
}

static json_t *meta(const char *name, const char *ns, const char *op, const json_t *owner) {
  return json_pack("{s:s,s:s,s:{s:s,s:s,s:s},s:[O]}", "name", name, "namespace", ns, "labels", LBL_NAME,
                   "pprof-collector", LBL_INSTANCE, op, LBL_MANAGED, "pprof-operator", "ownerReferences", owner);
}

static json_t *restricted_container_sc(void) {
  return json_pack("{s:b,s:b,s:b,s:{s:[s]}}", "allowPrivilegeEscalation", 0, "readOnlyRootFilesystem", 1, "runAsNonRoot", 1,
                   "capabilities", "drop", "ALL");
}

static json_t *pull_secrets(const json_t *img) {
  json_t *out = json_array();
  size_t i;
  json_t *s;
  json_array_foreach(json_object_get(img, "imagePullSecrets"), i, s) {
    const char *n = json_string_value(json_object_get(s, "name"));
    if (n) json_array_append_new(out, json_pack("{s:s}", "name", n));
  }
  return out;
}

/* A quantity field (string or integer) in bytes; *set false when absent. */
static int quantity_field(const json_t *v, const char *what, uint64_t *ret, bool *set, pp_err *err) {
  char buf[64];
  const char *q = json_string_value(v);
  *set = v != NULL && !json_is_null(v);
  if (!*set) return 0;
  if (json_is_integer(v)) {
    snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
    q = buf;
  }
  if (!q) return pp_err_set(err, PP_EINVAL, "%s: not a quantity", what);
  if (kbuild_quantity(q, ret, err) < 0) {
    pp_err_prefix(err, what);
    return PP_EINVAL;
  }
  return 0;
}

/* "--flag=Ns", or "--flag=Nms" when the period is not whole seconds (never rounded away). */
static void duration_flag(char out[64], const char *flag, double secs) {
  double ms = secs * 1000;
  if (secs == (double)(long long)secs) snprintf(out, 64, "%s=%.0fs", flag, secs);
  else snprintf(out, 64, "%s=%.0fms", flag, ms);
}

int kbuild_stack_retention(const json_t *storage, uint64_t disk_bytes, char args[5][64], pp_err *err) {
  const json_t *rt = json_object_get(storage, "retention");
  if (rt && !json_is_object(rt)) return pp_err_set(err, PP_EINVAL, "spec.storage.retention: not an object");
  uint64_t budget = disk_bytes / 100 * 85;
  /* defaults: a split of the budget (docs/operations.md, tiered retention): the rest of it is
   * the index's and the WAL's */
  uint64_t raw_size = budget / 100 * KBUILD_RAW_SHARE, rollup_size = budget / 100 * KBUILD_ROLLUP_SHARE;
  double raw = KBUILD_RAW_DEFAULT_S, rollup = KBUILD_ROLLUP_DEFAULT_S;
  bool set;
  const json_t *v;
  if ((v = json_object_get(rt, "raw")) && kbuild_duration(v, &raw, err) < 0) {
    pp_err_prefix(err, "spec.storage.retention.raw");
    return PP_EINVAL;
  }
  if ((v = json_object_get(rt, "rollup")) && kbuild_duration(v, &rollup, err) < 0) {
    pp_err_prefix(err, "spec.storage.retention.rollup");
    return PP_EINVAL;
  }
  if (raw <= 0 || rollup <= 0)
    return pp_err_set(err, PP_EINVAL, "spec.storage.retention: raw and rollup must be positive durations");
  /* the collector's flags carry milliseconds at most; a period under a second is no use and
   * would have been written as 0s, which the collector reads as no limit */
  if (raw < 1 || rollup < 1)
    return pp_err_set(err, PP_EINVAL, "spec.storage.retention: raw and rollup must be at least 1s");
  if (rollup < raw) return pp_err_set(err, PP_EINVAL, "spec.storage.retention.rollup is shorter than raw");
  uint64_t sz;
  if (quantity_field(json_object_get(rt, "rawSize"), "spec.storage.retention.rawSize", &sz, &set, err) < 0) return PP_EINVAL;
  if (set) raw_size = sz;
  if (quantity_field(json_object_get(rt, "rollupSize"), "spec.storage.retention.rollupSize", &sz, &set, err) < 0)
    return PP_EINVAL;
  if (set) rollup_size = sz;
  if (!raw_size || !rollup_size) return pp_err_set(err, PP_EINVAL, "spec.storage.retention: sizes must be over 0");
  if (raw_size > budget || rollup_size > budget - raw_size)
    return pp_err_set(err, PP_EINVAL,
                      "spec.storage.retention: rawSize + rollupSize (%llu bytes) is over 85%% of diskSpace (%llu bytes)",
                      (unsigned long long)raw_size + rollup_size, (unsigned long long)budget);
  /* the store's budget: 85% of the volume leaves room for the file system, the WAL's growth
   * between checkpoints and one segment past the budget (see store.h) */
  snprintf(args[0], 64, "--retention-size=%lluB", (unsigned long long)budget);
  duration_flag(args[1], "--retention-raw", raw);
  snprintf(args[2], 64, "--retention-raw-size=%lluB", (unsigned long long)raw_size);
  duration_flag(args[3], "--retention-rollup", rollup);
  snprintf(args[4], 64, "--retention-rollup-size=%lluB", (unsigned long long)rollup_size);
  return 0;
}

/* a Secret's name (DNS-1123 subdomain) or a key in its data ([-._a-zA-Z0-9]), up to 253 bytes */
static bool secret_word_ok(const char *s, bool key) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > 253) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              (key && ((c >= 'A' && c <= 'Z') || c == '_'));
    if (!ok) return false;
  }
  return key || (s[0] != '-' && s[0] != '.' && s[n - 1] != '-' && s[n - 1] != '.');
}

int kbuild_stack_objstore(const json_t *storage, const char *ns, const char *stack, json_t **ret_args, json_t **ret_env,
                          pp_err *err) {
  *ret_args = *ret_env = NULL;
  const json_t *os = json_object_get(storage, "objectStore");
  if (!os || json_is_null(os)) return 0;
  if (!json_is_object(os)) return pp_err_set(err, PP_EINVAL, "spec.storage.objectStore: not an object");
  const char *endpoint = json_string_value(json_object_get(os, "endpoint"));
  const char *bucket = json_string_value(json_object_get(os, "bucket"));
  const char *prefix = json_string_value(json_object_get(os, "prefix"));
  const char *region = json_string_value(json_object_get(os, "region"));
  char defprefix[600];
  if (!prefix) { /* stacks sharing a bucket keep apart: namespace/name */
    snprintf(defprefix, sizeof defprefix, "%s/%s", ns, stack);
    prefix = defprefix;
  }
  if (pp_s3_check(endpoint, bucket, prefix, region, err) < 0) {
    pp_err_prefix(err, "spec.storage.objectStore");
    return PP_EINVAL;
  }
  const json_t *cs = json_object_get(os, "credentialsSecret");
  const char *sname = json_string_value(json_object_get(cs, "name"));
  const char *kid = json_string_value(json_object_get(cs, "accessKeyIdKey"));
  const char *ksec = json_string_value(json_object_get(cs, "secretAccessKeyKey"));
  if (!kid) kid = "AWS_ACCESS_KEY_ID";
  if (!ksec) ksec = "AWS_SECRET_ACCESS_KEY";
  if (!secret_word_ok(sname, false))
    return pp_err_set(err, PP_EINVAL, "spec.storage.objectStore.credentialsSecret.name: want a Secret's name");
  if (!secret_word_ok(kid, true) || !secret_word_ok(ksec, true))
    return pp_err_set(err, PP_EINVAL, "spec.storage.objectStore.credentialsSecret: a key is not a Secret data key");
  double keep = 0;
  const json_t *rv = json_object_get(os, "retention");
  if (rv && !json_is_null(rv)) {
    if (kbuild_duration(rv, &keep, err) < 0) {
      pp_err_prefix(err, "spec.storage.objectStore.retention");
      return PP_EINVAL;
    }
    if (keep < 1 || keep > PP_S3_RETENTION_MAX_S)
      return pp_err_set(err, PP_EINVAL, "spec.storage.objectStore.retention: at least 1s, at most 100 years");
  }
  json_t *args = json_array();
  bool ok = args && !json_array_append_new(args, json_sprintf("--object-store-endpoint=%s", endpoint)) &&
            !json_array_append_new(args, json_sprintf("--object-store-bucket=%s", bucket)) &&
            !json_array_append_new(args, json_sprintf("--object-store-prefix=%s", prefix)) &&
            (!region || !json_array_append_new(args, json_sprintf("--object-store-region=%s", region))) &&
            (keep <= 0 || !json_array_append_new(args, json_sprintf("--object-store-retention=%.0fs", keep)));
  /* the kubelet reads the Secret: the operator needs no access to Secrets */
  json_t *env = json_pack("[{s:s,s:{s:{s:s,s:s}}},{s:s,s:{s:{s:s,s:s}}}]", "name", "AWS_ACCESS_KEY_ID", "valueFrom",
                          "secretKeyRef", "name", sname, "key", kid, "name", "AWS_SECRET_ACCESS_KEY", "valueFrom",
                          "secretKeyRef", "name", sname, "key", ksec);
  if (!ok || !env) {
    json_decref(args);
    json_decref(env);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  *ret_args = args;
  *ret_env = env;
  return 0;
}

/* Shard k's StatefulSet, from shard 0's: its own name, pods, volume, --shard and object store
 * prefix. Pods of shards k >= 1 carry another app.kubernetes.io/name, so neither shard 0's
 * selector nor the Service's takes them (StatefulSet selectors are immutable: shard 0's stays). */
void kbuild_shard_set_name(const char *op, int k, char *buf, size_t n) {
  if (k) snprintf(buf, n, "%s-collector-shard-%d", op, k);
  else snprintf(buf, n, "%s-collector", op);
}

static json_t *shard_set(const json_t *set0, const char *op, int k, const char *pvc, bool run, const kbuild_retired *retired) {
  json_t *set = json_deep_copy(set0);
  char name[300];
  kbuild_shard_set_name(op, k, name, sizeof name);
  json_t *labels = json_pack("{s:s,s:s,s:o}", LBL_NAME, "pprof-collector-shard", LBL_INSTANCE, op, KBUILD_SHARD_LABEL,
                             json_sprintf("%d", k));
  json_t *spec = json_object_get(set, "spec"), *pod = json_object_get(json_object_get(spec, "template"), "spec");
  json_t *args = json_object_get(json_array_get(json_object_get(pod, "containers"), 0), "args");
  json_t *claim = json_object_get(json_array_get(json_object_get(pod, "volumes"), 1), "persistentVolumeClaim");
  if (!set || !labels || !args || !claim) {
    json_decref(set);
    json_decref(labels);
    return NULL;
  }
  json_object_set_new(json_object_get(set, "metadata"), "name", json_string(name));
  json_object_set_new(json_object_get(spec, "selector"), "matchLabels", json_deep_copy(labels));
  json_object_set_new(json_object_get(spec, "template"), "metadata", json_pack("{s:O}", "labels", labels));
  json_decref(labels);
  json_object_set_new(claim, "claimName", json_string(pvc));
  json_object_set_new(spec, "replicas", json_integer(run || (retired && retired->answering)));
  size_t i;
  json_t *a;
  json_array_foreach(args, i, a) /* each shard uploads under a prefix of its own: ids may repeat */
    if (!strncmp(json_string_value(a), "--object-store-prefix=", 22))
      json_array_set_new(args, i, json_sprintf("%s/shard-%d", json_string_value(a), k));
  json_array_append_new(args, json_sprintf("--shard=%d", k));
  if (!run && retired) {
    /* retired: it answers its history (the peer list takes its pod) and scrapes nothing, even of
     * the `shard: all` monitors; the same arguments whether it answers or not, so the end of its
     * period only scales it (no roll) */
    json_array_append_new(args, json_string("--query-only"));
    json_object_set_new(json_object_get(set, "metadata"), "annotations",
                        json_pack("{s:o}", KBUILD_ANN_RETIRED_AT, json_sprintf("%lld", (long long)retired->at)));
  }
  return set;
}

/* The query front ends' Deployment from shard 0's StatefulSet (see kbuild.h). */
static json_t *query_deployment(const json_t *set0, const char *op, const char *name, int replicas) {
  json_t *labels = json_pack("{s:s,s:s}", LBL_NAME, "pprof-collector-query", LBL_INSTANCE, op);
  const json_t *spec0 = json_object_get(set0, "spec");
  json_t *meta0 = json_deep_copy(json_object_get(set0, "metadata"));
  json_t *pod = json_deep_copy(json_object_get(json_object_get(spec0, "template"), "spec"));
  json_t *c = json_array_get(json_object_get(pod, "containers"), 0), *args = json_object_get(c, "args");
  json_t *vols = json_object_get(pod, "volumes");
  json_t *d = labels && meta0 && args && json_array_size(vols) == 2
                  ? json_pack("{s:s,s:s,s:O,s:{s:i,s:{s:O},s:{s:{s:O},s:O}}}", "apiVersion", "apps/v1", "kind", "Deployment",
                              "metadata", meta0, "spec", "replicas", replicas, "selector", "matchLabels", labels, "template",
                              "metadata", "labels", labels, "spec", pod)
                  : NULL;
  if (d) {
    json_object_set_new(json_object_get(d, "metadata"), "name", json_string(name));
    json_t *kept = json_array();
    size_t i;
    json_t *a;
    json_array_foreach(args, i, a)
      if (strncmp(json_string_value(a), "--object-store-", 15)) json_array_append(kept, a);
    json_array_append_new(kept, json_string("--query-only"));
    json_object_set_new(c, "args", kept);
    json_object_del(c, "env"); /* the object store's credentials: not needed */
    json_array_set_new(vols, 1, json_pack("{s:s,s:{}}", "name", "data", "emptyDir"));
    /* a Deployment's spec.template.spec is the pod's: pod (shared with d) is changed in place */
  }
  json_decref(labels);
  json_decref(meta0);
  json_decref(pod);
  return d;
}

int kbuild_stack_objects(const json_t *stack, const char *op, const kbuild_shards *plan, int running, int sets,
                         const kbuild_retired *retired, bool query_known, json_t **ret, pp_err *err) {
  const json_t *md = json_object_get(stack, "metadata"), *spec = json_object_get(stack, "spec");
  const char *sname = json_string_value(json_object_get(md, "name"));
  const char *ns = json_string_value(json_object_get(md, "namespace"));
  const char *uid = json_string_value(json_object_get(md, "uid"));
  if (!sname || !ns || !uid) return pp_err_set(err, PP_EINVAL, "stack without name, namespace or uid");
  const json_t *disk = json_object_get(json_object_get(spec, "storage"), "diskSpace");
  char diskbuf[64];
  const char *dq = json_string_value(disk);
  if (json_is_integer(disk)) {
    snprintf(diskbuf, sizeof diskbuf, "%lld", (long long)json_integer_value(disk));
    dq = diskbuf;
  }
  uint64_t bytes;
  if (!dq) return pp_err_set(err, PP_EINVAL, "spec.storage.diskSpace is required");
  if (kbuild_quantity(dq, &bytes, err) < 0) return pp_err_set(err, PP_EINVAL, "spec.storage.diskSpace: %s", err ? err->msg : "");
  if (bytes < ((uint64_t)64 << 20))
    return pp_err_set(err, PP_EINVAL, "spec.storage.diskSpace: %s is under the 64Mi a collector needs", dq);
  char cimg[1024], rimg[1024];
  const json_t *ci = json_object_get(spec, "collectorImage"), *ri = json_object_get(spec, "reloaderImage");
  if (kbuild_image(ci, cimg, sizeof cimg, err) < 0) return pp_err_set(err, PP_EINVAL, "spec.collectorImage: %s", err ? err->msg : "");
  bool reloader = json_is_object(ri) && json_string_value(json_object_get(ri, "image"));
  if (reloader && kbuild_image(ri, rimg, sizeof rimg, err) < 0)
    return pp_err_set(err, PP_EINVAL, "spec.reloaderImage: %s", err ? err->msg : "");
  const char *cpol = json_string_value(json_object_get(ci, "imagePullPolicy"));
  const char *rpol = json_string_value(json_object_get(ri, "imagePullPolicy"));

  char svc[300], pvc[300], cm[300], retention[5][64];
  snprintf(svc, sizeof svc, "%s-collector", op);
  snprintf(pvc, sizeof pvc, "%s-collector-data", op);
  snprintf(cm, sizeof cm, "%s-config", op);
  if (kbuild_stack_retention(json_object_get(spec, "storage"), bytes, retention, err) < 0) return PP_EINVAL;
  json_t *os_args, *os_env;
  if (kbuild_stack_objstore(json_object_get(spec, "storage"), ns, sname, &os_args, &os_env, err) < 0) return PP_EINVAL;
  int qreplicas;
  double keep_s;
  if (kbuild_stack_query(spec, &qreplicas, err) < 0 || kbuild_stack_shard_retention(spec, &keep_s, err) < 0) {
    json_decref(os_args);
    json_decref(os_env);
    return PP_EINVAL;
  }
  bool query = qreplicas >= 0 || query_known;

  json_t *owner = json_pack("{s:s,s:s,s:s,s:s,s:b,s:b}", "apiVersion", "resources.cattle.io/v1alpha1", "kind",
                            "PprofCollectorStack", "name", sname, "uid", uid, "controller", 1, "blockOwnerDeletion", 1);
  json_t *out = json_array();
  json_t *sel = kbuild_collector_selector(op);

  json_array_append_new(out, json_pack("{s:s,s:s,s:o,s:{s:O,s:[{s:s,s:i,s:s,s:s}]}}", "apiVersion", "v1", "kind", "Service",
                                       "metadata", meta(svc, ns, op, owner), "spec", "selector", sel, "ports", "name", "web",
                                       "port", 8989, "targetPort", "web", "protocol", "TCP"));
  json_t *pvcspec = json_pack("{s:[s],s:{s:{s:s}}}", "accessModes", "ReadWriteOnce", "resources", "requests", "storage", dq);
  const char *sc = json_string_value(json_object_get(json_object_get(spec, "storage"), "storageClassName"));
  if (sc) json_object_set_new(pvcspec, "storageClassName", json_string(sc));
  json_array_append_new(out, json_pack("{s:s,s:s,s:o,s:O}", "apiVersion", "v1", "kind", "PersistentVolumeClaim", "metadata",
                                       meta(pvc, ns, op, owner), "spec", pvcspec));
  json_t *cmmeta = meta(cm, ns, op, owner);
  if (plan) { /* the plan in force, read back by kbuild_shards_read */
    json_t *ann = json_pack("{s:o}", KBUILD_ANN_SHARDS, json_sprintf("%d", plan->shards));
    if (plan->previous) {
      json_object_set_new(ann, KBUILD_ANN_PREVIOUS, json_sprintf("%d", plan->previous));
      json_object_set_new(ann, KBUILD_ANN_CHANGE_AT, json_sprintf("%lld", (long long)plan->change_at));
    }
    json_object_set_new(cmmeta, "annotations", ann);
  }
  json_array_append_new(out, json_pack("{s:s,s:s,s:o}", "apiVersion", "v1", "kind", "ConfigMap", "metadata", cmmeta));

  json_t *probe_ready = json_pack("{s:{s:s,s:s},s:i,s:i}", "httpGet", "path", "/readyz", "port", "web", "initialDelaySeconds", 2,
                                  "periodSeconds", 10);
  json_t *probe_live = json_pack("{s:{s:s,s:s},s:i,s:i,s:i}", "httpGet", "path", "/healthz", "port", "web", "initialDelaySeconds",
                                 10, "periodSeconds", 20, "failureThreshold", 6);
  json_t *collector = json_pack(
      "{s:s,s:s,s:s,s:[s,s,s,s,s,s,s,s],s:[{s:s,s:i,s:s}],s:o,s:o,s:{s:{s:s,s:s}},s:o,s:[{s:s,s:s,s:b},{s:s,s:s}]}",
      "name", "collector", "image", cimg, "imagePullPolicy", cpol ? cpol : "IfNotPresent", "args",
      "--config=/etc/pprof-collector/config.yaml", "--data-dir=/var/lib/pprof-collector", "--web-port=8989", retention[0],
      retention[1], retention[2], retention[3], retention[4],
      "ports", "name", "web", "containerPort", 8989, "protocol", "TCP", "readinessProbe", probe_ready, "livenessProbe",
      probe_live, "resources", "requests", "cpu", "100m", "memory", "128Mi", "securityContext", restricted_container_sc(),
      "volumeMounts", "name", "config", "mountPath", "/etc/pprof-collector", "readOnly", 1, "name", "data", "mountPath",
      "/var/lib/pprof-collector");
  if (os_args) {
    json_array_extend(json_object_get(collector, "args"), os_args);
    json_object_set_new(collector, "env", os_env);
    json_decref(os_args);
  }
  json_t *containers = json_array();
  json_array_append_new(containers, collector);
  if (reloader)
    json_array_append_new(
        containers,
        json_pack("{s:s,s:s,s:s,s:[s,s],s:{s:{s:s,s:s}},s:o,s:[{s:s,s:s,s:b}]}", "name", "config-reloader", "image", rimg,
                  "imagePullPolicy", rpol ? rpol : "IfNotPresent", "args", "--volume-dir=/etc/pprof-collector",
                  "--webhook-url=http://127.0.0.1:8989/-/reload", "resources", "requests", "cpu", "10m", "memory", "16Mi",
                  "securityContext", restricted_container_sc(), "volumeMounts", "name", "config", "mountPath",
                  "/etc/pprof-collector", "readOnly", 1));
  json_t *podspec = json_pack(
      "{s:{s:b,s:i,s:i,s:i,s:{s:s}},s:o,s:b,s:[{s:s,s:{s:s}},{s:s,s:{s:s}}]}", "securityContext", "runAsNonRoot", 1,
      "runAsUser", 65532, "runAsGroup", 65532, "fsGroup", 65532, "seccompProfile", "type", "RuntimeDefault", "containers",
      containers, "automountServiceAccountToken", 0, "volumes", "name", "config", "configMap", "name", cm, "name", "data",
      "persistentVolumeClaim", "claimName", pvc);
  json_t *ps = pull_secrets(ci);
  if (reloader) {
    json_t *more = pull_secrets(ri);
    json_array_extend(ps, more);
    json_decref(more);
  }
  if (json_array_size(ps)) json_object_set(podspec, "imagePullSecrets", ps);
  json_decref(ps);
  json_t *set0 = json_pack("{s:s,s:s,s:o,s:{s:i,s:s,s:{s:O},s:{s:{s:O},s:o}}}", "apiVersion", "apps/v1", "kind",
                           "StatefulSet", "metadata", meta(svc, ns, op, owner), "spec", "replicas", 1, "serviceName", svc,
                           "selector", "matchLabels", sel, "template", "metadata", "labels", sel, "spec", podspec);
  json_array_append(out, set0);
  if (sets < running) sets = running;
  if (sets > KBUILD_MAX_SHARDS) sets = KBUILD_MAX_SHARDS;
  for (int k = 1; k < sets; k++) {
    char kset[300], kpvc[320];
    kbuild_shard_set_name(op, k, kset, sizeof kset);
    snprintf(kpvc, sizeof kpvc, "%s-data", kset);
    json_array_append_new(out, json_pack("{s:s,s:s,s:o,s:O}", "apiVersion", "v1", "kind", "PersistentVolumeClaim", "metadata",
                                         meta(kpvc, ns, op, owner), "spec", pvcspec));
    json_array_append_new(out, set0 ? shard_set(set0, op, k, kpvc, k < running, retired && k >= running ? &retired[k] : NULL)
                                    : NULL);
  }
  if (query) {
    char qname[300];
    kbuild_query_name(op, qname, sizeof qname);
    json_t *qsel = json_pack("{s:s,s:s}", LBL_NAME, "pprof-collector-query", LBL_INSTANCE, op);
    json_array_append_new(out, qsel ? json_pack("{s:s,s:s,s:o,s:{s:o,s:[{s:s,s:i,s:s,s:s}]}}", "apiVersion", "v1", "kind",
                                                "Service", "metadata", meta(qname, ns, op, owner), "spec", "selector", qsel,
                                                "ports", "name", "web", "port", 8989, "targetPort", "web", "protocol", "TCP")
                                     : NULL);
    json_array_append_new(out, set0 ? query_deployment(set0, op, qname, qreplicas > 0 ? qreplicas : 0) : NULL);
  }
  json_decref(set0);
  json_decref(owner);
  json_decref(sel);
  for (size_t i = 0; i < json_array_size(out); i++)
    if (!json_array_get(out, i)) {
      json_decref(out);
      return pp_err_set(err, PP_ENOMEM, "building the stack's objects");
    }
  json_decref(pvcspec);
  size_t want = 4 + 2 * (size_t)(sets > 1 ? sets - 1 : 0) + (query ? 2 : 0);
  if (json_array_size(out) != want) {
    json_decref(out);
    return pp_err_set(err, PP_ENOMEM, "building the stack's objects");
  }
  *ret = out;
  return 0;
}
