/* The operator's loop: informers, leader election, the work queue; see operator.h. */
#include "op_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/log.h"
#include "kyaml.h"

#define MAX_KEYS_PER_STEP 64
#define MAX_JOBS 32 /* reconciles in flight at once */

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
  /* query front ends come or go: the config's peer list follows (op_monitor.c) */
  int was = -1, now = -1;
  kbuild_stack_query(json_object_get(obj, "spec"), &now, NULL);
  if (old) kbuild_stack_query(json_object_get(old, "spec"), &was, NULL);
  if ((was > 0) != (now > 0)) kq_add(o->q, MONITORS_KEY);
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

/* A pod's version can change (labels, image) without its EndpointSlice changing; its status
 * changes far more often, which op_trim_pod leaves out: only a change of what is kept counts. */
static void on_pod(void *ud, informer *inf, const char *type, const json_t *obj, const json_t *old) {
  op *o = ud;
  if (old && !strcmp(type, "MODIFIED")) {
    json_t *a = json_deep_copy(obj), *b = json_deep_copy(old);
    json_object_del(json_object_get(a, "metadata"), "resourceVersion");
    json_object_del(json_object_get(b, "metadata"), "resourceVersion");
    bool same = a && b && json_equal(a, b);
    json_decref(a);
    json_decref(b);
    if (same) return;
  }
  kq_add(o->q, MONITORS_KEY);
}

static void on_op_configmap(void *ud, informer *inf, const char *type, const json_t *obj, const json_t *old) {
  op *o = ud;
  char want[300];
  snprintf(want, sizeof want, "%s-config", o->name);
  const char *n = str(md(obj), "name");
  if (n && !strcmp(n, want)) kq_add(o->q, MONITORS_KEY); /* edited or deleted by someone: rewrite */
}

/* An informer starts failing, or works again: logged once each, not once per retry. */
static void on_health(void *ud, informer *inf, const char *error) {
  if (error) pp_log(PP_LOG_WARN, "%s: %s; retrying with backoff", inf_name(inf), error);
  else pp_log(PP_LOG_INFO, "%s: works again", inf_name(inf));
}

/* ---- jobs ------------------------------------------------------------------------------------ */

struct op_call {
  op_job *j;
  kc_req *req;
  op_call_fn fn;
  void *arg;
  void (*free_arg)(void *);
  op_call *prev, *next;
};

static void call_free(op_call *c) {
  if (c->free_arg) c->free_arg(c->arg);
  free(c);
}

void op_job_fail(op_job *j, int code, const char *fmt, ...) {
  if (j->result < 0) return; /* the first failure is the one to tell */
  j->result = code < 0 ? code : PP_EIO;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(j->err.msg, sizeof j->err.msg, fmt, ap);
  va_end(ap);
  j->err.code = j->result;
}

static void job_free(op_job *j) {
  while (j->calls) {
    op_call *c = j->calls;
    j->calls = c->next;
    kc_cancel(j->o->c, c->req);
    call_free(c);
  }
  if (j->free_state) j->free_state(j->state);
  free(j);
}

static void job_unlink(op_job *j) {
  op *o = j->o;
  if (j->prev) j->prev->next_job = j->next_job;
  else o->jobs = j->next_job;
  if (j->next_job) j->next_job->prev = j->prev;
  o->njobs--;
}

/* The job is over: its key is done, forgotten on success, retried with backoff on failure. A
 * key's failures are logged when they start and when they end, not at every retry. */
static void job_finish(op_job *j) {
  op *o = j->o;
  int64_t now = pp_clock_mono_ms();
  o->reconciles[j->controller]++;
  if (j->result < 0) {
    o->errors[j->controller]++;
    if (!kq_failures(o->q, j->key)) pp_log(PP_LOG_WARN, "reconcile %s failed, retrying with backoff: %s", j->key, j->err.msg);
    else pp_log(PP_LOG_DEBUG, "reconcile %s failed again: %s", j->key, j->err.msg);
    kq_retry(o->q, j->key, now);
  } else {
    unsigned failures = kq_failures(o->q, j->key);
    if (failures) pp_log(PP_LOG_INFO, "reconcile %s works again after %u failure%s", j->key, failures, failures > 1 ? "s" : "");
    kq_forget(o->q, j->key);
  }
  kq_done(o->q, j->key);
  job_unlink(j);
  job_free(j);
}

/* Runs the job's steps while none has requests in flight; finishes it after the last. */
static void job_advance(op_job *j) {
  while (!j->calls) {
    op_step_fn step = j->next;
    if (!step) {
      job_finish(j);
      return;
    }
    j->next = NULL;
    step(j);
  }
}

static void on_call_done(void *ud, int status, json_t *body, const pp_err *err) {
  op_call *c = ud;
  op_job *j = c->j;
  if (c->prev) c->prev->next = c->next;
  else j->calls = c->next;
  if (c->next) c->next->prev = c->prev;
  if (c->fn) c->fn(j, c->arg, status, body, err);
  call_free(c);
  job_advance(j);
}

int op_call_start(op_job *j, const char *method, const char *path, const char *ctype, const json_t *body, op_call_fn fn,
                  void *arg, void (*free_arg)(void *)) {
  op_call *c = calloc(1, sizeof *c);
  pp_err err = {0};
  kc_req_opts opts = {.timeout_ms = WRITE_TIMEOUT_MS};
  if (!c) {
    if (free_arg) free_arg(arg);
    op_job_fail(j, PP_ENOMEM, "out of memory");
    return PP_ENOMEM;
  }
  c->j = j;
  c->fn = fn;
  c->arg = arg;
  c->free_arg = free_arg;
  if (kc_start(j->o->c, method, path, ctype, body, &opts, on_call_done, c, &c->req, &err) < 0) {
    op_job_fail(j, err.code, "%s %s: %s", method, path, err.msg);
    call_free(c);
    return err.code < 0 ? err.code : PP_EIO;
  }
  c->next = j->calls;
  if (j->calls) j->calls->prev = c;
  j->calls = c;
  return 0;
}

void op_cancel_jobs(op *o) {
  while (o->jobs) {
    op_job *j = o->jobs;
    kq_done(o->q, j->key); /* not retried: a new leader starts from the full picture */
    job_unlink(j);
    job_free(j);
  }
}

static void job_start(op *o, const char *key) {
  op_job *j = calloc(1, sizeof *j);
  if (!j) {
    kq_retry(o->q, key, pp_clock_mono_ms());
    kq_done(o->q, key);
    return;
  }
  j->o = o;
  snprintf(j->key, sizeof j->key, "%s", key);
  j->controller = strcmp(key, MONITORS_KEY) ? C_STACK : C_MONITORS;
  j->next = j->controller == C_MONITORS ? op_monitors_start : op_stack_start;
  j->next_job = o->jobs;
  if (o->jobs) o->jobs->prev = j;
  o->jobs = j;
  o->njobs++;
  job_advance(j);
}

/* ---- loop ------------------------------------------------------------------------------------ */

bool op_ready(const op *o) {
  for (int i = 0; i < I_COUNT; i++)
    if (!inf_synced(o->inf[i])) return false;
  return true;
}

/* Whether reconciles may start: every cache listed once, none being relisted (a pass must not
 * read a cache that a relist is about to replace), and this replica leads. */
static bool may_reconcile(const op *o) {
  if (!op_ready(o) || (o->o.leader_elect && !o->leader)) return false;
  for (int i = 0; i < I_COUNT; i++)
    if (inf_listing(o->inf[i])) return false;
  return true;
}

static void process(op *o, int64_t now) {
  for (int n = 0; n < MAX_KEYS_PER_STEP && o->njobs < MAX_JOBS; n++) {
    const char *key = kq_get(o->q, now);
    if (!key) break;
    job_start(o, key);
  }
}

void op_step(op *o, int max_wait_ms) {
  int64_t now = pp_clock_mono_ms(), wait = max_wait_ms;
  for (int i = 0; i < I_COUNT; i++) {
    int64_t w = inf_tick(o->inf[i], now);
    if (w < wait) wait = w;
  }
  if (o->o.leader_elect) {
    int64_t w = op_lease_tick(o, now);
    if (w < wait) wait = w;
  }
  if (may_reconcile(o)) {
    process(o, now);
    int64_t qn = o->njobs < MAX_JOBS ? kq_next_ms(o->q, pp_clock_mono_ms()) : -1;
    if (qn >= 0 && qn < wait) wait = qn;
  }
  if (wait < 0) wait = 0;
  kc_poll(o->c, (int)wait);
}

int op_new(const op_opts *oo, kclient *c, op **ret, pp_err *err) {
  op *o = calloc(1, sizeof *o);
  if (!o) return pp_err_set(err, PP_ENOMEM, "out of memory");
  o->o = *oo;
  o->name = strdup(oo->name);
  o->ns = strdup(oo->namespace_);
  o->identity = strdup(oo->identity);
  o->c = c;
  o->q = kq_new();
  if (!o->name || !o->ns || !o->identity || !o->q) {
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
      /* the targets' `version` label (op_trim_pod keeps what it needs) */
      [I_PODS] = {"pods", "/api/v1/pods", NULL, on_pod, o, false, op_trim_pod},
      /* the stacks' query front ends (spec.query) */
      [I_DEPLOYS] = {"deployments", "/apis/apps/v1/deployments", managed, on_child, o},
  };
  for (int i = 0; i < I_COUNT; i++) {
    io[i].health = on_health;
    int r = inf_new(c, &io[i], &o->inf[i], err);
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
  op_cancel_jobs(o);
  if (o->lease_req) kc_cancel(o->c, o->lease_req);
  for (int i = 0; i < I_COUNT; i++) inf_free(o->inf[i]);
  kq_free(o->q);
  free(o->name);
  free(o->ns);
  free(o->identity);
  free(o);
}

/* Start-up, before the loop runs: synchronous requests are fine here. */
int op_install_crds(op *o, pp_err *err) {
  for (const pp_blob *a = crd_assets; a->name; a++) {
    json_t *crd;
    int r = kyaml_load((const char *)a->data, a->len, a->name, &crd, err);
    if (r < 0) return r;
    char path[1024];
    snprintf(path, sizeof path, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/%s?fieldManager=pprof-operator&force=true",
             str(md(crd), "name"));
    int st = kc_do(o->c, "PATCH", path, "application/apply-patch+yaml", crd, NULL, err);
    json_decref(crd);
    if (st < 0) return st;
    if (st != 200 && st != 201) return PP_EIO;
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
