/* The PprofMonitor reconciler: the collector's config and the monitors' statuses; see operator.h.
 *
 *   op_monitors_start: one pass over the caches: every monitor checked (kbuild_monitor_check,
 *                      the collector's rules) and its targets gathered; the config written
 *                      when its digest differs from the ConfigMap's
 *   monitors_status:   once the write has answered, each monitor's status
 */
#include "op_int.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/arena.h"
#include "../base/b64.h"
#include "../base/gz.h"
#include "../base/htab.h"
#include "../base/log.h"
#include "kbuild.h"
#include "ksel.h"

void op_digest(const char *text, char *buf, size_t n) {
  snprintf(buf, n, "digest:%016llx:%zu", (unsigned long long)htab_hash(text, strlen(text)), strlen(text));
}

/* The config can be megabytes: the cache keeps a digest of its YAML in data["config.yaml"],
 * "gz:"-prefixed when it is stored gzipped in binaryData (see config_body), so a change of form
 * is a change too. */
void op_digest_config(json_t *cm) {
  json_t *data = json_object_get(cm, "data"), *bin = json_object_get(cm, "binaryData");
  const char *y = json_string_value(json_object_get(data, "config.yaml"));
  const char *b = json_string_value(json_object_get(bin, "config.yaml"));
  char d[64];
  if (y) {
    op_digest(y, d, sizeof d);
  } else if (b) {
    char *gz = NULL;
    uint8_t *text = NULL;
    size_t gzlen, n;
    pp_err err = {0};
    snprintf(d, sizeof d, "digest:unreadable"); /* never equal to a wanted digest: rewritten */
    if (pp_b64_decode(b, "binaryData", &gz, &gzlen, &err) == 0 &&
        pp_gunzip(gz, gzlen, OP_CONFIG_MAX_TEXT, &text, &n, &err) == 0 && !memchr(text, 0, n)) {
      char *t = realloc(text, n + 1);
      if (t) {
        t[n] = '\0';
        d[0] = 'g', d[1] = 'z', d[2] = ':';
        op_digest(t, d + 3, sizeof d - 3);
        text = (uint8_t *)t;
      }
    }
    free(gz);
    free(text);
    json_object_del(bin, "config.yaml");
  } else {
    return;
  }
  if (!json_is_object(data)) {
    data = json_object();
    json_object_set_new(cm, "data", data);
  }
  json_object_set_new(data, "config.yaml", json_string(d));
}

/* The ConfigMap body for the config: plain YAML in data, or, over the --config-gzip-above size,
 * gzipped into binaryData, as Prometheus Operator does with its generated config (a ConfigMap
 * holds at most 1 MiB; 10,000 targets are about 2.5 MB of YAML and 0.2 MB gzipped). The
 * collector reads either. */
/* The ConfigMap holding yaml (gzipped into binaryData past config_gzip_above) in *ret: 0, or a
 * negative PP_E* code, also in err. */
static int config_body(const op *o, const char *cm, const char *yaml, size_t targets, json_t **ret, pp_err *err) {
  size_t len = strlen(yaml);
  json_t *body = NULL;
  if (len <= o->o.config_gzip_above) {
    body = json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap", "metadata", "name", cm,
                     "namespace", o->ns, "data", "config.yaml", yaml);
    if (!body) return pp_err_set(err, PP_ENOMEM, "out of memory");
    *ret = body;
    return 0;
  }
  uint8_t *gz = NULL;
  char *b64 = NULL;
  size_t gzlen, blen;
  /* level 6: 2.1 MB of 10,000 targets in 5 ms to 97 KB; level 9 took 66 ms for 88 KB, on every
   * pass (libdeflate, measured on the benchmark's config) */
  int r = pp_gzip(yaml, len, 6, &gz, &gzlen, err);
  if (r == 0 && gzlen > OP_CONFIGMAP_MAX)
    r = pp_err_set(err, PP_ELIMIT, "the config of %zu targets is %zu bytes gzipped (%zu as YAML), over the %d a ConfigMap holds",
                   targets, gzlen, len, OP_CONFIGMAP_MAX);
  if (r == 0) r = pp_b64_encode(gz, gzlen, &b64, &blen, err);
  if (r == 0 && !(body = json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap", "metadata", "name",
                                   cm, "namespace", o->ns, "binaryData", "config.yaml", b64)))
    r = pp_err_set(err, PP_ENOMEM, "out of memory");
  free(gz);
  free(b64);
  if (r == 0) *ret = body;
  return r;
}



typedef struct mon_result {
  json_t *monitor; /* a reference: the cache may move on before the statuses are written */
  size_t targets;
  const char *reason; /* why Reconciled is False (InvalidSpec, PortNotFound, TargetsSkipped), or NULL */
  char problem[1024];
} mon_result;

static bool ns_selected(const json_t *spec, const char *mon_ns, const char *ns) {
  const json_t *nsel = json_object_get(spec, "namespaceSelector");
  if (json_is_true(json_object_get(nsel, "any"))) return true;
  const json_t *names = json_object_get(nsel, "matchNames");
  if (json_array_size(names)) {
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n) if (json_string_value(n) && !strcmp(json_string_value(n), ns)) return true;
    return false;
  }
  return !strcmp(mon_ns, ns);
}

static const char *adup(arena *a, const char *s) { return s ? arena_strndup(a, s, strlen(s)) : NULL; }

typedef struct mon_state {
  mon_result *res;
  size_t nres;
  size_t targets, monitors; /* for the log line of a written config */
  bool config_failed;       /* the config could not be built or written: msg says why */
  char msg[512];
} mon_state;

static void free_state(void *p) {
  mon_state *st = p;
  if (!st) return;
  for (size_t i = 0; i < st->nres; i++) json_decref(st->res[i].monitor);
  free(st->res);
  free(st);
}

static void monitors_status(op_job *j) {
  mon_state *st = j->state;
  /* statuses, whatever happened to the config */
  for (size_t i = 0; i < st->nres; i++) {
    const mon_result *mr = &st->res[i];
    const json_t *m = mr->monitor;
    json_int_t gen = json_integer_value(json_object_get(md(m), "generation"));
    bool ok = !mr->reason && !st->config_failed;
    char msg[600];
    if (ok) snprintf(msg, sizeof msg, "%zu target%s in the collector's config", mr->targets, mr->targets == 1 ? "" : "s");
    else snprintf(msg, sizeof msg, "%.590s", mr->reason ? mr->problem : st->msg);
    json_t *conds = json_array();
    json_array_append_new(conds, op_condition(json_object_get(m, "status"), "Reconciled", ok,
                                              ok ? "TargetsConfigured" : mr->reason ? mr->reason : "ConfigWriteFailed", msg, gen));
    json_t *status = json_pack("{s:I,s:I,s:o}", "observedGeneration", gen, "targets", (json_int_t)mr->targets, "conditions", conds);
    op_write_status(j, "pprofmonitors", m, "PprofMonitor", status);
  }
}

static void on_config_written(op_job *j, void *arg, int status, json_t *now, const pp_err *err) {
  op *o = j->o;
  mon_state *st = j->state;
  if (status != 200 && status != 201) {
    st->config_failed = true;
    snprintf(st->msg, sizeof st->msg, "%s", err->msg);
    return;
  }
  /* the cache shows this write at once, so the passes before its watch event arrives compare
   * against it instead of writing it again */
  inf_observe(o->inf[I_OPCMS], now);
  o->config_writes++;
  pp_log(PP_LOG_INFO, "collector config written: %zu targets from %zu monitors", st->targets, st->monitors);
}

void op_monitors_start(op_job *j) {
  op *o = j->o;
  pp_err errv = {0}, *err = &errv;
  const json_t *mons = inf_items(o->inf[I_MONITORS]);
  size_t nmon = json_object_size(mons), ti = 0, tcap = 256;
  mon_state *state = calloc(1, sizeof *state);
  mon_result *res = calloc(nmon ? nmon : 1, sizeof *res);
  kbuild_target *t = malloc(tcap * sizeof *t);
  if (!state || !res || !t) {
    free(state);
    free(res);
    free(t);
    op_job_fail(j, PP_ENOMEM, "out of memory");
    return;
  }
  j->state = state;
  j->free_state = free_state;
  state->res = res;
  /* slices by "namespace/service", built once per pass */
  json_t *by_svc = json_object();
  /* the targets' strings, copied out of objects decoded one at a time: a pass over 10,000
   * endpoints never holds more than one Service and one EndpointSlice as trees */
  arena strings;
  arena_init(&strings, 0);
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)inf_items(o->inf[I_SLICES]), k, v) {
    const char *key = inf_entry_index(o->inf[I_SLICES], v); /* "namespace/service", kept by the cache */
    if (!key) continue;
    json_t *list = json_object_get(by_svc, key);
    if (!list) json_object_set_new(by_svc, key, list = json_array());
    json_array_append(list, v); /* the entry: decoded only when its service is selected */
  }
  int r = 0;
  size_t mi = 0;
  const char *mk;
  json_t *mon;
  json_object_foreach((json_t *)mons, mk, mon) {
    mon_result *mr = &res[mi++];
    state->nres = mi;
    mr->monitor = json_incref(mon);
    const json_t *spec = json_object_get(mon, "spec");
    const char *mon_ns = str(md(mon), "namespace"), *mon_name = str(md(mon), "name");
    ksel *sel = NULL;
    pp_err serr = {0};
    /* a monitor the collector would refuse is left out alone: its targets would make the
     * collector refuse the whole config, everyone's targets included */
    kbuild_monitor km;
    if (kbuild_monitor_check(spec, &km, &serr) < 0) {
      mr->reason = "InvalidSpec";
      snprintf(mr->problem, sizeof mr->problem, "%s", serr.msg);
      continue;
    }
    if (ksel_parse(json_object_get(spec, "selector"), &sel, &serr) < 0) {
      mr->reason = "InvalidSpec";
      snprintf(mr->problem, sizeof mr->problem, "spec.selector: %s", serr.msg);
      continue;
    }
    const json_t *ep = json_object_get(spec, "endpoint");
    size_t unresolved = 0, skipped = 0;
    char first_problem[700] = "", first_skipped[700] = "";
    const char *sk;
    json_t *sentry;
    json_object_foreach((json_t *)inf_items(o->inf[I_SERVICES]), sk, sentry) {
      /* the key is "namespace/name": filter by namespace before decoding */
      const char *slash = strchr(sk, '/');
      if (!slash) continue;
      char sns_buf[300];
      snprintf(sns_buf, sizeof sns_buf, "%.*s", (int)(slash - sk), sk);
      if (!ns_selected(spec, mon_ns, sns_buf)) continue;
      json_t *svc = inf_decode(o->inf[I_SERVICES], sentry);
      if (!svc) continue;
      const char *sns = adup(&strings, str(md(svc), "namespace")), *sname = adup(&strings, str(md(svc), "name"));
      if (!sns || !sname || !ksel_matches(sel, json_object_get(md(svc), "labels"))) {
        json_decref(svc);
        continue;
      }
      char key[600];
      snprintf(key, sizeof key, "%s/%s", sns, sname);
      size_t si;
      json_t *slice_entry;
      json_array_foreach(json_object_get(by_svc, key), si, slice_entry) {
        json_t *slice = inf_decode(o->inf[I_SLICES], slice_entry);
        if (!slice) continue;
        pp_err perr = {0};
        int port = ksel_resolve_port(ep, svc, json_object_get(slice, "ports"), &perr);
        if (port < 0) {
          unresolved++;
          if (!first_problem[0]) snprintf(first_problem, sizeof first_problem, "%.180s: %.480s", key, perr.msg);
          json_decref(slice);
          continue;
        }
        size_t ei;
        json_t *e;
        json_array_foreach(json_object_get(slice, "endpoints"), ei, e) {
          if (json_is_false(json_object_get(json_object_get(e, "conditions"), "ready"))) continue;
          const json_t *tref = json_object_get(e, "targetRef");
          size_t ai;
          json_t *addr;
          json_array_foreach(json_object_get(e, "addresses"), ai, addr) {
            const char *ip = json_string_value(addr);
            if (!ip) continue;
            if (ti == tcap) {
              kbuild_target *nt = realloc(t, (tcap *= 2) * sizeof *nt);
              if (!nt) {
                r = pp_err_set(err, PP_ENOMEM, "out of memory");
                break;
              }
              t = nt;
            }
            const char *pod = str(tref, "kind") && !strcmp(str(tref, "kind"), "Pod") ? str(tref, "name") : NULL;
            ip = adup(&strings, ip);
            pod = pod ? adup(&strings, pod) : ip;
            const char *node = adup(&strings, str(e, "nodeName"));
            /* the workload's version, from the pod (the pods cache is trimmed by op_trim_pod) */
            const char *version = NULL;
            const json_t *po = pod != ip ? inf_get(o->inf[I_PODS], str(tref, "namespace") ? str(tref, "namespace") : sns, pod) : NULL;
            if (po) {
              char vb[KBUILD_MAX_VERSION + 1];
              kbuild_pod_version(po, port, vb);
              version = vb[0] ? adup(&strings, vb) : NULL;
            }
            if (!ip || !pod) {
              r = pp_err_set(err, PP_ENOMEM, "out of memory");
              break;
            }
            t[ti] = (kbuild_target){.namespace_ = sns,
                                    .service = sname,
                                    .pod = pod,
                                    .node = node,
                                    .monitor = mon_name,
                                    .scheme = km.scheme,
                                    .ip = ip,
                                    .port = port,
                                    .path = km.path,
                                    .config = km.config,
                                    .interval_seconds = km.interval_seconds,
                                    .timeout_seconds = km.timeout_seconds,
                                    .version = version,
                                    .pin = km.pin};
            /* an address the collector would refuse (cluster data, not the spec) is left out */
            pp_err terr;
            if (kbuild_target_check(&t[ti], &terr) < 0) {
              if (!skipped++) snprintf(first_skipped, sizeof first_skipped, "%.600s", terr.msg);
              continue;
            }
            ti++;
            mr->targets++;
          }
        }
        json_decref(slice);
      }
      json_decref(svc);
    }
    ksel_free(sel);
    if (unresolved) {
      mr->reason = "PortNotFound";
      snprintf(mr->problem, sizeof mr->problem, "%zu endpoint slice%s without the port: %s", unresolved,
               unresolved > 1 ? "s" : "", first_problem);
    } else if (skipped) {
      mr->reason = "TargetsSkipped";
      snprintf(mr->problem, sizeof mr->problem, "%zu address%s left out: %s", skipped, skipped > 1 ? "es" : "", first_skipped);
    }
  }
  char *yaml = NULL;
  char cm[300];
  snprintf(cm, sizeof cm, "%s-config", o->name);
  const json_t *cur = inf_get(o->inf[I_OPCMS], o->ns, cm);
  /* the stack's shard plan, which its reconciler keeps in the ConfigMap's annotations */
  kbuild_shards plan;
  kbuild_shards_read(cur, &plan);
  /* with more than one collector pod (shards running, or retired ones still answering their
   * history), or query front ends (a stack's spec.query) asking them, every shard's pod, so that
   * each answers for all (the collectors skip themselves in the list); else no list: the config
   * keeps its bytes */
  char urls[KBUILD_MAX_PEERS][KBUILD_PEER_URL];
  const char *peers[KBUILD_MAX_PEERS];
  bool fronts = false;
  const char *qk;
  json_t *qv;
  json_object_foreach((json_t *)inf_items(o->inf[I_STACKS]), qk, qv) {
    int q = -1;
    const char *sns = str(md(qv), "namespace");
    if (sns && !strcmp(sns, o->ns) && kbuild_stack_query(json_object_get(qv, "spec"), &q, NULL) == 0 && q > 0) fronts = true;
  }
  size_t npeers = kbuild_collector_peers(inf_items(o->inf[I_PODS]), o->ns, o->name, urls, KBUILD_MAX_PEERS);
  if (npeers < 2 && !fronts) npeers = 0;
  for (size_t i = 0; i < npeers; i++) peers[i] = urls[i];
  if (r == 0) r = kbuild_config_yaml_peers(t, ti, &plan, peers, npeers, &yaml, err);
  if (r == 0) {
    uint64_t counts[KBUILD_MAX_SHARDS];
    kbuild_shard_counts(t, ti, plan.shards, counts);
    if (plan.shards != o->shard_targets_of || memcmp(counts, o->shard_targets, (size_t)plan.shards * sizeof *counts)) {
      memcpy(o->shard_targets, counts, (size_t)plan.shards * sizeof *counts);
      o->shard_targets_of = plan.shards;
      /* the stacks' statuses show them */
      const char *sk;
      json_t *sv;
      json_object_foreach((json_t *)inf_items(o->inf[I_STACKS]), sk, sv) {
        char sns[300], sname[300];
        if (sscanf(sk, "%299[^/]/%299s", sns, sname) == 2 && !strcmp(sns, o->ns)) op_enqueue_stack(o, sns, sname);
      }
    }
  }
  state->targets = ti;
  state->monitors = nmon;
  if (r == 0) {
    const char *have = str(json_object_get(cur, "data"), "config.yaml"); /* its digest: see op_digest_config */
    char want[64];
    bool gzipped = strlen(yaml) > o->o.config_gzip_above;
    if (gzipped) memcpy(want, "gz:", 3);
    op_digest(yaml, want + (gzipped ? 3 : 0), sizeof want - (gzipped ? 3 : 0));
    /* The ConfigMap is made (and owned) by a PprofCollectorStack: without one nothing reads the
     * config, and writing it would only bring back what the garbage collector removed with the
     * stack. Its creation is an event of this informer, which runs this pass again. */
    if (cur && (!have || strcmp(have, want))) {
      char path[1024];
      snprintf(path, sizeof path, "/api/v1/namespaces/%s/configmaps/%s", o->ns, cm);
      json_t *body = NULL;
      r = config_body(o, cm, yaml, ti, &body, err);
      if (r == 0) op_apply(j, path, "pprof-operator-config", body, on_config_written, NULL);
      json_decref(body);
    }
    o->last_config_targets = ti;
  }
  if (r < 0) {
    state->config_failed = true;
    snprintf(state->msg, sizeof state->msg, "%s", err->msg);
    op_job_fail(j, r, "%s", err->msg);
  } else if (j->result < 0) { /* the write could not start */
    state->config_failed = true;
    snprintf(state->msg, sizeof state->msg, "%s", j->err.msg);
  }
  free(yaml);
  json_decref(by_svc);
  arena_free(&strings);
  free(t);
  /* a pass over 10,000 endpoints frees megabytes of small allocations: give them back */
  malloc_trim(0);
  j->next = monitors_status;
}

/* The pods cache keeps what kbuild_pod_version and kbuild_collector_peers read and the informer
 * needs (name, namespace, resourceVersion): a pod's full object is kilobytes, and a cluster has
 * many. */
void op_trim_pod(json_t *pod) {
  json_t *m = json_object_get(pod, "metadata");
  json_t *tm = json_pack("{s:O*,s:O*,s:O*}", "name", json_object_get(m, "name"), "namespace", json_object_get(m, "namespace"),
                         "resourceVersion", json_object_get(m, "resourceVersion"));
  const json_t *labels = json_object_get(m, "labels");
  json_t *tl = json_object();
  static const char *const keep[] = {"app.kubernetes.io/version", "app.kubernetes.io/name", "app.kubernetes.io/instance"};
  for (size_t k = 0; tl && k < sizeof keep / sizeof keep[0]; k++) {
    json_t *v = json_object_get(labels, keep[k]);
    if (json_is_string(v)) json_object_set(tl, keep[k], v);
  }
  if (tm && tl && json_object_size(tl)) json_object_set(tm, "labels", tl);
  json_decref(tl);
  if (tm && json_object_get(m, "deletionTimestamp")) json_object_set(tm, "deletionTimestamp", json_object_get(m, "deletionTimestamp"));
  /* copied: clearing the pod below frees its strings */
  const json_t *ip0 = json_object_get(json_object_get(pod, "status"), "podIP");
  json_t *ip = json_is_string(ip0) ? json_string(json_string_value(ip0)) : NULL;
  json_t *cs = json_array(), *ss = json_array();
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(json_object_get(pod, "spec"), "containers"), i, c) {
    json_t *ports = json_array();
    size_t k;
    json_t *pt;
    json_array_foreach(json_object_get(c, "ports"), k, pt)
      json_array_append_new(ports, json_pack("{s:O*}", "containerPort", json_object_get(pt, "containerPort")));
    json_array_append_new(cs, json_pack("{s:O*,s:O*,s:o}", "name", json_object_get(c, "name"), "image", json_object_get(c, "image"),
                                        "ports", ports));
  }
  json_array_foreach(json_object_get(json_object_get(pod, "status"), "containerStatuses"), i, c)
    json_array_append_new(ss, json_pack("{s:O*,s:O*}", "name", json_object_get(c, "name"), "imageID", json_object_get(c, "imageID")));
  json_object_clear(pod);
  if (tm) json_object_set_new(pod, "metadata", tm);
  json_object_set_new(pod, "spec", json_pack("{s:o}", "containers", cs));
  json_object_set_new(pod, "status", json_pack("{s:o}", "containerStatuses", ss));
  if (ip) json_object_set_new(json_object_get(pod, "status"), "podIP", ip);
}
