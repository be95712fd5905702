/* Controllers of bin/operator; see operator.h for the contract. */
#include "operator.h"

#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/arena.h"
#include "../base/htab.h"
#include "../base/log.h"
#include "../base/units.h"
#include "../base/blob.h"
#include "informer.h"
#include "kbuild.h"
#include "kqueue.h"
#include "ksel.h"
#include "kyaml.h"

/* deploy/crds, embedded by tools/embed.py */
PP_BLOB_TABLE(crd_assets);

#define GROUP_PATH "/apis/resources.cattle.io/v1alpha1"
#define MONITORS_KEY "monitors"
#define LEASE_SECONDS 15
#define RENEW_DEADLINE_MS 10000
#define RETRY_MS 2000
#define MAX_KEYS_PER_STEP 64

enum { I_MONITORS, I_STACKS, I_SERVICES, I_SLICES, I_STS, I_PVCS, I_CMS, I_OPCMS, I_COUNT };

struct op {
  op_opts o;
  char *name, *ns, *identity;
  kclient *c;
  CURLM *multi;
  informer *inf[I_COUNT];
  kq *q;
  /* leader election */
  bool leader;
  int64_t renewed_ms, next_lease_ms;
  char observed[512];
  int64_t observed_ms;
  /* metrics */
  uint64_t reconciles[2], errors[2], config_writes, status_writes, leader_transitions;
  uint64_t last_config_targets;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }
static const json_t *md(const json_t *o) { return json_object_get(o, "metadata"); }

/* ---- event handlers: map changes to keys ------------------------------------------------ */

static void enqueue_stack(op *o, const char *ns, const char *name) {
  char key[600];
  snprintf(key, sizeof key, "stack/%s/%s", ns, name);
  kq_add(o->q, key);
}

static void on_stack(void *ud, informer *inf, const char *type, const json_t *obj, const json_t *old) {
  op *o = ud;
  if (!strcmp(type, "DELETED")) return; /* its children go with it (ownerReferences) */
  enqueue_stack(o, str(md(obj), "namespace"), str(md(obj), "name"));
}

/* A child changed or vanished: its owning stack repairs it. */
static void on_child(void *ud, informer *inf, const char *type, const json_t *obj, const json_t *old) {
  op *o = ud;
  size_t i;
  json_t *ref;
  json_array_foreach(json_object_get(md(obj), "ownerReferences"), i, ref) {
    const char *kind = str(ref, "kind");
    if (kind && !strcmp(kind, "PprofCollectorStack")) enqueue_stack(o, str(md(obj), "namespace"), str(ref, "name"));
  }
}

static void on_monitor_input(void *ud, informer *inf, const char *type, const json_t *obj, const json_t *old) {
  op *o = ud;
  kq_add(o->q, MONITORS_KEY);
  if (inf == o->inf[I_SERVICES]) on_child(ud, inf, type, obj, old);
}

/* The collector config is compared by digest: the operator-namespace ConfigMap cache keeps
 * "digest:<hex>" instead of megabytes of YAML (10,000 targets make ~2.5 MB). */
static void digest(const char *text, char *buf, size_t n) {
  snprintf(buf, n, "digest:%016llx:%zu", (unsigned long long)htab_hash(text, strlen(text)), strlen(text));
}

static void digest_config(json_t *cm) {
  json_t *data = json_object_get(cm, "data");
  const char *y = json_string_value(json_object_get(data, "config.yaml"));
  if (!y) return;
  char d[64];
  digest(y, d, sizeof d);
  json_object_set_new(data, "config.yaml", json_string(d));
}

static void on_op_configmap(void *ud, informer *inf, const char *type, const json_t *obj, const json_t *old) {
  op *o = ud;
  char want[300];
  snprintf(want, sizeof want, "%s-config", o->name);
  const char *n = str(md(obj), "name");
  if (n && !strcmp(n, want)) kq_add(o->q, MONITORS_KEY); /* edited or deleted by someone: rewrite */
}

/* ---- helpers ------------------------------------------------------------------------------ */

static void now_rfc3339(char *buf, size_t n, bool micro) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  size_t w = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
  if (micro) snprintf(buf + w, n - w, ".%06ldZ", ts.tv_nsec / 1000);
  else snprintf(buf + w, n - w, "Z");
}

/* Server-side apply of obj at path (collection path + name), as manager, forced. ret_obj (may
 * be NULL) receives the object as the server now has it; ret_status the HTTP status. */
static int apply_obj(op *o, const char *path, const char *manager, const json_t *obj, json_t **ret_obj, int *ret_status,
                     pp_err *err) {
  char url[2048];
  snprintf(url, sizeof url, "%s?fieldManager=%s&force=true", path, manager);
  json_t *resp = NULL;
  int st = kc_do(o->c, "PATCH", url, "application/apply-patch+yaml", obj, ret_obj ? &resp : NULL, err);
  if (ret_status) *ret_status = st;
  bool ok = st == 200 || st == 201;
  if (ret_obj) *ret_obj = ok ? resp : NULL;
  if (!ok) json_decref(resp);
  if (st < 0) return st;
  return ok ? 0 : PP_EIO;
}

static int apply(op *o, const char *path, const char *manager, const json_t *obj, pp_err *err) {
  return apply_obj(o, path, manager, obj, NULL, NULL, err);
}

static const char *resource_path(const char *kind) {
  if (!strcmp(kind, "Service")) return "/api/v1/namespaces/%s/services/%s";
  if (!strcmp(kind, "PersistentVolumeClaim")) return "/api/v1/namespaces/%s/persistentvolumeclaims/%s";
  if (!strcmp(kind, "ConfigMap")) return "/api/v1/namespaces/%s/configmaps/%s";
  if (!strcmp(kind, "StatefulSet")) return "/apis/apps/v1/namespaces/%s/statefulsets/%s";
  return NULL;
}

/* A condition, keeping lastTransitionTime when the status did not change. */
static json_t *condition(const json_t *old_status, const char *type, bool ok, const char *reason, const char *msg,
                         json_int_t gen) {
  const char *ltt = NULL;
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(old_status, "conditions"), i, c) {
    const char *t = str(c, "type"), *s = str(c, "status");
    if (t && !strcmp(t, type) && s && !strcmp(s, ok ? "True" : "False")) ltt = str(c, "lastTransitionTime");
  }
  char now[64];
  now_rfc3339(now, sizeof now, false);
  return json_pack("{s:s,s:s,s:s,s:s,s:I,s:s}", "type", type, "status", ok ? "True" : "False", "reason", reason, "message",
                   msg, "observedGeneration", gen, "lastTransitionTime", ltt ? ltt : now);
}

/* Writes status through the status subresource when it differs from the object's. */
static int write_status(op *o, const char *coll, const json_t *obj, const char *kind, json_t *status, pp_err *err) {
  int r = 0;
  if (!json_equal(status, json_object_get(obj, "status"))) {
    char path[1024];
    snprintf(path, sizeof path, GROUP_PATH "/namespaces/%s/%s/%s/status", str(md(obj), "namespace"), coll, str(md(obj), "name"));
    json_t *body = json_pack("{s:s,s:s,s:{s:s,s:s},s:O}", "apiVersion", "resources.cattle.io/v1alpha1", "kind", kind,
                             "metadata", "name", str(md(obj), "name"), "namespace", str(md(obj), "namespace"), "status", status);
    int st = 0;
    r = apply_obj(o, path, "pprof-operator", body, NULL, &st, err);
    json_decref(body);
    if (r == 0) o->status_writes++;
    if (st == 404) r = 0; /* deleted since the cache saw it: its DELETED event is on the way */
  }
  json_decref(status);
  return r;
}

/* ---- stacks -------------------------------------------------------------------------------- */

static int reconcile_stack(op *o, const char *ns, const char *name, pp_err *err) {
  const json_t *stack = inf_get(o->inf[I_STACKS], ns, name);
  if (!stack) return 0; /* deleted: garbage collection removes the children */
  json_int_t gen = json_integer_value(json_object_get(md(stack), "generation"));
  const json_t *old_status = json_object_get(stack, "status");
  json_t *objs = NULL;
  pp_err aerr = {0};
  int r = kbuild_stack_objects(stack, o->name, &objs, &aerr);
  const char *reason = "InvalidSpec";
  if (r == 0) {
    reason = "ApplyFailed";
    size_t i;
    json_t *obj;
    json_array_foreach(objs, i, obj) {
      /* skip what the cache already shows as applied: a resync touches nothing */
      const char *kind = str(obj, "kind");
      char path[1024];
      snprintf(path, sizeof path, resource_path(kind), ns, str(md(obj), "name"));
      if ((r = apply(o, path, "pprof-operator", obj, &aerr)) < 0) break;
    }
  }
  json_decref(objs);
  char sts[300];
  snprintf(sts, sizeof sts, "%s-collector", o->name);
  const json_t *set = inf_get(o->inf[I_STS], ns, sts);
  json_int_t ready = json_integer_value(json_object_get(json_object_get(set, "status"), "readyReplicas"));
  json_t *conds = json_array();
  json_array_append_new(conds, condition(old_status, "Reconciled", r == 0, r == 0 ? "Applied" : reason,
                                         r == 0 ? "Service, PVC, ConfigMap and StatefulSet applied" : aerr.msg, gen));
  json_array_append_new(conds, condition(old_status, "Ready", ready >= 1, ready >= 1 ? "CollectorReady" : "CollectorNotReady",
                                         ready >= 1 ? "the collector is ready" : "waiting for the collector pod to be ready",
                                         gen));
  json_t *status = json_pack("{s:I,s:I,s:o}", "observedGeneration", gen, "readyReplicas", ready, "conditions", conds);
  int sr = write_status(o, "pprofcollectorstacks", stack, "PprofCollectorStack", status, r < 0 ? NULL : err);
  if (r < 0) {
    pp_err_set(err, r, "stack %s/%s: %s", ns, name, aerr.msg);
    return r;
  }
  return sr;
}

/* ---- monitors ------------------------------------------------------------------------------ */

typedef struct mon_result {
  const json_t *monitor;
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

static int reconcile_monitors(op *o, pp_err *err) {
  const json_t *mons = inf_items(o->inf[I_MONITORS]);
  size_t nmon = json_object_size(mons), ti = 0, tcap = 256;
  mon_result *res = calloc(nmon ? nmon : 1, sizeof *res);
  kbuild_target *t = malloc(tcap * sizeof *t);
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
    mr->monitor = mon;
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
                                    .timeout_seconds = km.timeout_seconds};
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
  if (r == 0) r = kbuild_config_yaml(t, ti, &yaml, err);
  if (r == 0) {
    char cm[300];
    snprintf(cm, sizeof cm, "%s-config", o->name);
    const json_t *cur = inf_get(o->inf[I_OPCMS], o->ns, cm);
    const char *have = str(json_object_get(cur, "data"), "config.yaml"); /* its digest: see digest_config */
    char want[64];
    digest(yaml, want, sizeof want);
    if (!have || strcmp(have, want)) {
      char path[1024];
      snprintf(path, sizeof path, "/api/v1/namespaces/%s/configmaps/%s", o->ns, cm);
      json_t *body = json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap", "metadata", "name", cm,
                               "namespace", o->ns, "data", "config.yaml", yaml);
      json_t *now = NULL;
      r = apply_obj(o, path, "pprof-operator-config", body, &now, NULL, err);
      json_decref(body);
      if (r == 0) {
        /* the cache shows this write at once, so the passes before its watch event arrives
         * compare against it instead of writing it again */
        inf_observe(o->inf[I_OPCMS], now);
        json_decref(now);
        o->config_writes++;
        pp_log(PP_LOG_INFO, "collector config written: %zu targets from %zu monitors", ti, nmon);
      }
    }
    o->last_config_targets = ti;
  }
  free(yaml);
  /* statuses, whatever happened to the config */
  for (size_t i = 0; i < mi; i++) {
    const json_t *m = res[i].monitor;
    json_int_t gen = json_integer_value(json_object_get(md(m), "generation"));
    bool ok = !res[i].reason && r == 0;
    char msg[600];
    if (ok) snprintf(msg, sizeof msg, "%zu target%s in the collector's config", res[i].targets, res[i].targets == 1 ? "" : "s");
    else snprintf(msg, sizeof msg, "%s", res[i].reason ? res[i].problem : (err ? err->msg : "config not written"));
    json_t *conds = json_array();
    json_array_append_new(conds, condition(json_object_get(m, "status"), "Reconciled", ok,
                                           ok ? "TargetsConfigured" : res[i].reason ? res[i].reason : "ConfigWriteFailed",
                                           msg, gen));
    json_t *status = json_pack("{s:I,s:I,s:o}", "observedGeneration", gen, "targets", (json_int_t)res[i].targets,
                               "conditions", conds);
    pp_err serr = {0};
    if (write_status(o, "pprofmonitors", m, "PprofMonitor", status, &serr) < 0 && r == 0) {
      *err = serr;
      r = PP_EIO;
    }
  }
  json_decref(by_svc);
  arena_free(&strings);
  free(res);
  free(t);
  return r;
}

/* ---- leader election ------------------------------------------------------------------- */

static void lease_step(op *o, int64_t now) {
  if (now < o->next_lease_ms) return;
  o->next_lease_ms = now + RETRY_MS;
  char path[1024], ts[64];
  snprintf(path, sizeof path, "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s-leader", o->ns, o->name);
  now_rfc3339(ts, sizeof ts, true);
  json_t *lease = NULL;
  pp_err err = {0};
  int st = kc_do(o->c, "GET", path, NULL, NULL, &lease, &err);
  bool was = o->leader;
  if (st == 404) {
    char coll[1024];
    snprintf(coll, sizeof coll, "/apis/coordination.k8s.io/v1/namespaces/%s/leases", o->ns);
    char lname[300];
    snprintf(lname, sizeof lname, "%s-leader", o->name);
    json_t *body = json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s,s:i,s:s,s:s,s:i}}", "apiVersion", "coordination.k8s.io/v1", "kind",
                             "Lease", "metadata", "name", lname, "namespace", o->ns, "spec", "holderIdentity", o->identity,
                             "leaseDurationSeconds", LEASE_SECONDS, "acquireTime", ts, "renewTime", ts, "leaseTransitions", 0);
    st = kc_do(o->c, "POST", coll, NULL, body, NULL, &err);
    json_decref(body);
    if (st == 201) {
      o->leader = true;
      o->renewed_ms = now;
    }
  } else if (st == 200) {
    json_t *spec = json_object_get(lease, "spec");
    const char *holder = str(spec, "holderIdentity");
    char record[512];
    snprintf(record, sizeof record, "%s|%s", holder ? holder : "", str(spec, "renewTime") ?: "");
    /* expiry is judged by when we saw the record change, not by the other replica's clock */
    if (strcmp(record, o->observed)) {
      snprintf(o->observed, sizeof o->observed, "%s", record);
      o->observed_ms = now;
    }
    bool mine = holder && !strcmp(holder, o->identity);
    bool expired = !holder || !*holder || now - o->observed_ms > (int64_t)LEASE_SECONDS * 1000;
    if (mine || expired) {
      json_object_set_new(spec, "holderIdentity", json_string(o->identity));
      json_object_set_new(spec, "leaseDurationSeconds", json_integer(LEASE_SECONDS));
      json_object_set_new(spec, "renewTime", json_string(ts));
      if (!mine) {
        json_object_set_new(spec, "acquireTime", json_string(ts));
        json_object_set_new(spec, "leaseTransitions",
                            json_integer(json_integer_value(json_object_get(spec, "leaseTransitions")) + 1));
      }
      st = kc_do(o->c, "PUT", path, NULL, lease, NULL, &err); /* resourceVersion guards the race */
      if (st == 200) {
        o->leader = true;
        o->renewed_ms = now;
      }
    } else {
      o->leader = false;
    }
  }
  json_decref(lease);
  if (o->leader && now - o->renewed_ms > RENEW_DEADLINE_MS) {
    pp_log(PP_LOG_ERROR, "leader election lost: could not renew the lease for %d s", RENEW_DEADLINE_MS / 1000);
    o->leader = false;
  }
  if (o->leader != was) {
    o->leader_transitions++;
    pp_log(PP_LOG_INFO, "%s", o->leader ? "became the leader" : "no longer the leader");
    if (o->leader) {
      /* a new leader starts from the full picture */
      kq_add(o->q, MONITORS_KEY);
      const char *k;
      json_t *s;
      json_object_foreach((json_t *)inf_items(o->inf[I_STACKS]), k, s)
      enqueue_stack(o, str(md(s), "namespace"), str(md(s), "name"));
    }
  }
}

void op_release(op *o) {
  if (!o->leader) return;
  char path[1024];
  snprintf(path, sizeof path, "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s-leader", o->ns, o->name);
  json_t *lease = NULL;
  if (kc_do(o->c, "GET", path, NULL, NULL, &lease, NULL) == 200) {
    json_t *spec = json_object_get(lease, "spec");
    json_object_set_new(spec, "holderIdentity", json_string(""));
    json_object_set_new(spec, "leaseDurationSeconds", json_integer(1));
    kc_do(o->c, "PUT", path, NULL, lease, NULL, NULL);
  }
  json_decref(lease);
  o->leader = false;
}

/* ---- loop ------------------------------------------------------------------------------------ */

bool op_ready(const op *o) {
  for (int i = 0; i < I_COUNT; i++)
    if (!inf_synced(o->inf[i])) return false;
  return true;
}

static void process(op *o, int64_t now) {
  for (int n = 0; n < MAX_KEYS_PER_STEP; n++) {
    const char *key = kq_get(o->q, now);
    if (!key) {
      /* a pass over 10,000 endpoints frees megabytes of small allocations: give them back */
      if (n) malloc_trim(0);
      return;
    }
    pp_err err = {0};
    int kind = strcmp(key, MONITORS_KEY) ? 0 : 1;
    int r;
    if (kind == 1) {
      r = reconcile_monitors(o, &err);
    } else {
      char ns[300], name[300];
      if (sscanf(key, "stack/%299[^/]/%299s", ns, name) != 2) {
        kq_done(o->q, key);
        continue;
      }
      r = reconcile_stack(o, ns, name, &err);
    }
    o->reconciles[kind]++;
    if (r < 0) {
      o->errors[kind]++;
      pp_log(PP_LOG_WARN, "reconcile %s failed, retrying: %s", key, err.msg);
      kq_retry(o->q, key, now);
    } else {
      kq_forget(o->q, key);
    }
    kq_done(o->q, key);
  }
}

void op_step(op *o, int max_wait_ms) {
  int64_t now = now_ms(), wait = max_wait_ms;
  for (int i = 0; i < I_COUNT; i++) {
    int64_t w = inf_tick(o->inf[i], now);
    if (w < wait) wait = w;
  }
  if (o->o.leader_elect) {
    lease_step(o, now);
    if (o->next_lease_ms - now < wait) wait = o->next_lease_ms - now;
  }
  if (op_ready(o) && (!o->o.leader_elect || o->leader)) {
    process(o, now);
    int64_t qn = kq_next_ms(o->q, now_ms());
    if (qn >= 0 && qn < wait) wait = qn;
  }
  if (wait < 0) wait = 0;
  curl_multi_poll(o->multi, NULL, 0, (int)wait, NULL);
  int running;
  curl_multi_perform(o->multi, &running);
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(o->multi, &left)))
    if (m->msg == CURLMSG_DONE)
      for (int i = 0; i < I_COUNT; i++)
        if (inf_done(o->inf[i], m->easy_handle, m->data.result, now_ms())) break;
}

int op_new(const op_opts *oo, kclient *c, op **ret, pp_err *err) {
  op *o = calloc(1, sizeof *o);
  if (!o) return pp_err_set(err, PP_ENOMEM, "out of memory");
  o->o = *oo;
  o->name = strdup(oo->name);
  o->ns = strdup(oo->namespace_);
  o->identity = strdup(oo->identity);
  o->c = c;
  o->multi = curl_multi_init();
  o->q = kq_new();
  if (!o->name || !o->ns || !o->identity || !o->multi || !o->q) {
    op_free(o);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  char opcm[600];
  snprintf(opcm, sizeof opcm, "/api/v1/namespaces/%s/configmaps", o->ns);
  const char *managed = "app.kubernetes.io/managed-by=pprof-operator";
  inf_opts io[I_COUNT] = {
      [I_MONITORS] = {"pprofmonitors", GROUP_PATH "/pprofmonitors", NULL, on_monitor_input, o},
      [I_STACKS] = {"pprofcollectorstacks", GROUP_PATH "/pprofcollectorstacks", NULL, on_stack, o},
      [I_SERVICES] = {"services", "/api/v1/services", NULL, on_monitor_input, o, true},
      [I_SLICES] = {"endpointslices", "/apis/discovery.k8s.io/v1/endpointslices", NULL, on_monitor_input, o, true, NULL,
                    "kubernetes.io/service-name"},
      [I_STS] = {"statefulsets", "/apis/apps/v1/statefulsets", managed, on_child, o},
      [I_PVCS] = {"persistentvolumeclaims", "/api/v1/persistentvolumeclaims", managed, on_child, o},
      [I_CMS] = {"configmaps", "/api/v1/configmaps", managed, on_child, o},
      [I_OPCMS] = {"operator-configmaps", opcm, NULL, on_op_configmap, o, false, digest_config},
  };
  for (int i = 0; i < I_COUNT; i++) {
    int r = inf_new(c, o->multi, &io[i], &o->inf[i], err);
    if (r < 0) {
      op_free(o);
      return r;
    }
  }
  *ret = o;
  return 0;
}

void op_free(op *o) {
  if (!o) return;
  for (int i = 0; i < I_COUNT; i++) inf_free(o->inf[i]);
  if (o->multi) curl_multi_cleanup(o->multi);
  kq_free(o->q);
  free(o->name);
  free(o->ns);
  free(o->identity);
  free(o);
}

int op_install_crds(op *o, pp_err *err) {
  for (const pp_blob *a = crd_assets; a->name; a++) {
    json_t *crd;
    int r = kyaml_load((const char *)a->data, a->len, a->name, &crd, err);
    if (r < 0) return r;
    char path[1024];
    snprintf(path, sizeof path, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/%s", str(md(crd), "name"));
    r = apply(o, path, "pprof-operator", crd, err);
    json_decref(crd);
    if (r < 0) return r;
    pp_log(PP_LOG_INFO, "CRD %s applied", a->name);
  }
  for (int i = 0; i < 300; i++) {
    json_t *body = NULL;
    int st = kc_do(o->c, "GET", GROUP_PATH, NULL, NULL, &body, NULL);
    size_t n = json_array_size(json_object_get(body, "resources"));
    json_decref(body);
    if (st == 200 && n >= 2) return 0;
    struct timespec ts = {0, 100000000};
    nanosleep(&ts, NULL);
  }
  return pp_err_set(err, PP_EIO, "the API server does not serve %s 30 s after the CRDs were applied", GROUP_PATH);
}

char *op_metrics(const op *o) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  static const char *const names[] = {"stack", "monitors"};
  fprintf(f, "# HELP operator_reconciles_total Reconciles run, by controller.\n# TYPE operator_reconciles_total counter\n");
  for (int i = 0; i < 2; i++) fprintf(f, "operator_reconciles_total{controller=\"%s\"} %" PRIu64 "\n", names[i], o->reconciles[i]);
  fprintf(f, "# HELP operator_reconcile_errors_total Reconciles that failed (retried with backoff).\n"
             "# TYPE operator_reconcile_errors_total counter\n");
  for (int i = 0; i < 2; i++) fprintf(f, "operator_reconcile_errors_total{controller=\"%s\"} %" PRIu64 "\n", names[i], o->errors[i]);
  fprintf(f, "# HELP operator_workqueue_depth Keys waiting in the work queue.\n# TYPE operator_workqueue_depth gauge\n"
             "operator_workqueue_depth %zu\n", kq_len(o->q));
  fprintf(f, "# HELP operator_watch_restarts_total Watches that ended and were restarted, by resource.\n"
             "# TYPE operator_watch_restarts_total counter\n");
  for (int i = 0; i < I_COUNT; i++) {
    inf_stats s;
    inf_get_stats(o->inf[i], &s);
    fprintf(f, "operator_watch_restarts_total{resource=\"%s\"} %" PRIu64 "\n", inf_name(o->inf[i]), s.watch_restarts);
  }
  fprintf(f, "# HELP operator_relists_total Relists after 410 Gone, by resource.\n# TYPE operator_relists_total counter\n");
  for (int i = 0; i < I_COUNT; i++) {
    inf_stats s;
    inf_get_stats(o->inf[i], &s);
    fprintf(f, "operator_relists_total{resource=\"%s\"} %" PRIu64 "\n", inf_name(o->inf[i]), s.relists_gone);
  }
  fprintf(f, "# HELP operator_api_requests_total Requests made to the API server.\n# TYPE operator_api_requests_total counter\n"
             "operator_api_requests_total %" PRIu64 "\n", kc_requests(o->c));
  fprintf(f, "# HELP operator_config_writes_total Times the collector config changed and was written.\n"
             "# TYPE operator_config_writes_total counter\noperator_config_writes_total %" PRIu64 "\n", o->config_writes);
  fprintf(f, "# HELP operator_status_writes_total Status subresource writes.\n# TYPE operator_status_writes_total counter\n"
             "operator_status_writes_total %" PRIu64 "\n", o->status_writes);
  fprintf(f, "# HELP operator_config_targets Targets in the last collector config.\n# TYPE operator_config_targets gauge\n"
             "operator_config_targets %" PRIu64 "\n", o->last_config_targets);
  fprintf(f, "# HELP operator_leader 1 while this replica reconciles (always 1 without --leader-elect).\n"
             "# TYPE operator_leader gauge\noperator_leader %d\n", !o->o.leader_elect || o->leader);
  fprintf(f, "# HELP operator_ready 1 once every informer has listed.\n# TYPE operator_ready gauge\noperator_ready %d\n",
          op_ready(o));
  fclose(f);
  return buf;
}
