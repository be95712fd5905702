/* The operator's loop: informers, leader election, the work queue; see operator.h. */
#include "op_int.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/log.h"
#include "kyaml.h"

#define MAX_KEYS_PER_STEP 64

int64_t op_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- event handlers: map changes to keys ------------------------------------------------ */

void op_enqueue_stack(op *o, const char *ns, const char *name) {
  char key[600];
  snprintf(key, sizeof key, "stack/%s/%s", ns, name);
  kq_add(o->q, key);
}

static void on_stack(void *ud, informer *inf, const char *type, const json_t *obj, const json_t *old) {
  op *o = ud;
  if (!strcmp(type, "DELETED")) return; /* its children go with it (ownerReferences) */
  op_enqueue_stack(o, str(md(obj), "namespace"), str(md(obj), "name"));
}

/* A child changed or vanished: its owning stack repairs it. */
static void on_child(void *ud, informer *inf, const char *type, const json_t *obj, const json_t *old) {
  op *o = ud;
  size_t i;
  json_t *ref;
  json_array_foreach(json_object_get(md(obj), "ownerReferences"), i, ref) {
    const char *kind = str(ref, "kind");
    if (kind && !strcmp(kind, "PprofCollectorStack")) op_enqueue_stack(o, str(md(obj), "namespace"), str(ref, "name"));
  }
}

static void on_monitor_input(void *ud, informer *inf, const char *type, const json_t *obj, const json_t *old) {
  op *o = ud;
  kq_add(o->q, MONITORS_KEY);
  if (inf == o->inf[I_SERVICES]) on_child(ud, inf, type, obj, old);
}

/* The collector config is compared by digest: the operator-namespace ConfigMap cache keeps
 * "digest:<hex>" instead of megabytes of YAML (10,000 targets make ~2.5 MB). */

static void on_op_configmap(void *ud, informer *inf, const char *type, const json_t *obj, const json_t *old) {
  op *o = ud;
  char want[300];
  snprintf(want, sizeof want, "%s-config", o->name);
  const char *n = str(md(obj), "name");
  if (n && !strcmp(n, want)) kq_add(o->q, MONITORS_KEY); /* edited or deleted by someone: rewrite */
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
      r = op_reconcile_monitors(o, &err);
    } else {
      char ns[300], name[300];
      if (sscanf(key, "stack/%299[^/]/%299s", ns, name) != 2) {
        kq_done(o->q, key);
        continue;
      }
      r = op_reconcile_stack(o, ns, name, &err);
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
  int64_t now = op_now_ms(), wait = max_wait_ms;
  for (int i = 0; i < I_COUNT; i++) {
    int64_t w = inf_tick(o->inf[i], now);
    if (w < wait) wait = w;
  }
  if (o->o.leader_elect) {
    op_lease_step(o, now);
    if (o->next_lease_ms - now < wait) wait = o->next_lease_ms - now;
  }
  if (op_ready(o) && (!o->o.leader_elect || o->leader)) {
    process(o, now);
    int64_t qn = kq_next_ms(o->q, op_now_ms());
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
        if (inf_done(o->inf[i], m->easy_handle, m->data.result, op_now_ms())) break;
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
      [I_OPCMS] = {"operator-configmaps", opcm, NULL, on_op_configmap, o, false, op_digest_config},
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
    r = op_apply(o, path, "pprof-operator", crd, err);
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
