/* The PprofCollectorStack reconciler; see operator.h for what it does.
 *
 *   op_stack_start: the shard plan (kbuild_shard_plan: spec.shards against the plan in the
 *                   config ConfigMap's annotations), the stack's objects (kbuild) applied at
 *                   once (the StatefulSets of shards no longer running at 0 replicas), and
 *                   the key queued again for the end of a change in progress
 *   stack_status:   once they have all answered, the stack's status from what they said and
 *                   from the StatefulSets' readiness in the cache
 */
#include "op_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/clock.h"
#include "kbuild.h"

typedef struct stack_state {
  char ns[300], name[300];
  json_t *stack;      /* the object reconciled (a reference: the cache may move on meanwhile) */
  const char *reason; /* why Reconciled is False, or NULL */
  char problem[512];
  kbuild_shards plan; /* the shards this pass applied */
  int running;        /* collectors that run under it now */
  int sets;           /* StatefulSets applied: running ones, then retired ones */
  kbuild_retired retired[KBUILD_MAX_SHARDS]; /* [running, sets): shards past the count */
  double keep_s;      /* how long a retired shard answers (kbuild_stack_shard_retention) */
  int64_t now_s;
} stack_state;

static void free_state(void *p) {
  stack_state *st = p;
  if (!st) return;
  json_decref(st->stack);
  free(st);
}

static void on_object_applied(op_job *j, void *arg, int status, json_t *body, const pp_err *err) {
  stack_state *st = j->state;
  if ((status == 200 || status == 201)) {
    /* the plan is read back from the ConfigMap: a pass before its watch event must see it */
    if (!strcmp(str(body, "kind") ? str(body, "kind") : "", "ConfigMap")) inf_observe(j->o->inf[I_CMS], body);
    return;
  }
  if (st->reason) return;
  st->reason = "ApplyFailed";
  snprintf(st->problem, sizeof st->problem, "%s", err->msg);
}

/* A Unix second as the status shows times (RFC 3339, UTC) */
static json_t *rfc3339(int64_t s) {
  char at[64];
  pp_clock_rfc3339(s > INT64_MAX / 1000000000 ? INT64_MAX : s * 1000000000, at, sizeof at);
  return json_string(at);
}

static void stack_status(op_job *j) {
  op *o = j->o;
  stack_state *st = j->state;
  json_int_t gen = json_integer_value(json_object_get(md(st->stack), "generation"));
  const json_t *old_status = json_object_get(st->stack, "status");
  json_t *shards = json_array();
  json_int_t ready = 0;
  int ready_shards = 0;
  /* the targets counted by the monitors' last pass, when it ran under this count */
  bool counted = o->shard_targets_of == st->plan.shards;
  for (int k = 0; k < st->running; k++) {
    char sts[300];
    kbuild_shard_set_name(o->name, k, sts, sizeof sts);
    const json_t *set = inf_get(o->inf[I_STS], st->ns, sts);
    json_int_t r = json_integer_value(json_object_get(json_object_get(set, "status"), "readyReplicas"));
    ready += r;
    ready_shards += r >= 1;
    json_t *one = json_pack("{s:i,s:s,s:I}", "shard", k, "statefulSet", sts, "readyReplicas", r);
    if (counted && k < st->plan.shards) json_object_set_new(one, "targets", json_integer((json_int_t)o->shard_targets[k]));
    json_array_append_new(shards, one);
  }
  json_t *conds = json_array();
  bool ok = !st->reason && j->result == 0; /* (a request that could not start set only the latter) */
  char applied[128];
  if (st->running > 1) snprintf(applied, sizeof applied, "Service, PVCs, ConfigMap and %d StatefulSets applied", st->running);
  else snprintf(applied, sizeof applied, "Service, PVC, ConfigMap and StatefulSet applied");
  json_array_append_new(conds, op_condition(old_status, "Reconciled", ok, ok ? "Applied" : st->reason ? st->reason : "ApplyFailed",
                                            ok ? applied : st->reason ? st->problem : j->err.msg, gen));
  bool all = ready_shards == st->running;
  char waiting[128];
  if (st->running > 1) snprintf(waiting, sizeof waiting, "%d of %d collector shards ready", ready_shards, st->running);
  else snprintf(waiting, sizeof waiting, "waiting for the collector pod to be ready");
  json_array_append_new(conds, op_condition(old_status, "Ready", all, all ? "CollectorReady" : "CollectorNotReady",
                                            all ? (st->running > 1 ? "every collector shard is ready" : "the collector is ready")
                                                : waiting,
                                            gen));
  json_t *status = json_pack("{s:I,s:I,s:i,s:o,s:o}", "observedGeneration", gen, "readyReplicas", ready, "shards",
                             st->plan.shards, "shardStatuses", shards, "conditions", conds);
  int qwant = -1;
  kbuild_stack_query(json_object_get(st->stack, "spec"), &qwant, NULL);
  char qname[300];
  kbuild_query_name(o->name, qname, sizeof qname);
  const json_t *qd = inf_get(o->inf[I_DEPLOYS], st->ns, qname);
  if (qwant >= 0 || qd)
    json_object_set_new(status, "query",
                        json_pack("{s:s,s:i,s:I}", "deployment", qname, "replicas", qwant > 0 ? qwant : 0, "readyReplicas",
                                  json_integer_value(json_object_get(json_object_get(qd, "status"), "readyReplicas"))));
  json_t *retired = json_array();
  for (int k = st->running; k < st->sets; k++) {
    char sts[300];
    kbuild_shard_set_name(o->name, k, sts, sizeof sts);
    const json_t *set = inf_get(o->inf[I_STS], st->ns, sts);
    json_t *one = json_pack("{s:i,s:s,s:I,s:b}", "shard", k, "statefulSet", sts, "readyReplicas",
                            json_integer_value(json_object_get(json_object_get(set, "status"), "readyReplicas")), "answering",
                            st->retired[k].answering);
    if (st->retired[k].answering) json_object_set_new(one, "until", rfc3339(st->retired[k].at + (int64_t)st->keep_s));
    json_array_append_new(retired, one);
  }
  if (json_array_size(retired)) json_object_set(status, "retiredShards", retired);
  json_decref(retired);
  if (st->plan.previous && st->now_s < st->plan.change_at)
    json_object_set_new(status, "shardChange", json_pack("{s:i,s:i,s:o}", "from", st->plan.previous, "to", st->plan.shards,
                                                          "at", rfc3339(st->plan.change_at)));
  op_write_status(j, "pprofcollectorstacks", st->stack, "PprofCollectorStack", status);
}

/* The StatefulSets the stack has: shard 0 and one past the highest shard k found in the cache.
 * Those of shards no longer running stay, scaled to 0 (kbuild_stack_objects): the operator
 * needs no delete permission, and a shard that comes back finds its volume. */
static int sets_known(op *o, stack_state *st) {
  char prefix[700];
  int plen = snprintf(prefix, sizeof prefix, "%s/%s-collector-shard-", st->ns, o->name), n = 1;
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)inf_items(o->inf[I_STS]), key, v) {
    char *end;
    if (strncmp(key, prefix, (size_t)plen) || key[plen] < '1' || key[plen] > '9') continue;
    long k = strtol(key + plen, &end, 10);
    if (!*end && k < KBUILD_MAX_SHARDS && k + 1 > n) n = (int)k + 1;
  }
  return n;
}

void op_stack_start(op_job *j) {
  op *o = j->o;
  stack_state *st = calloc(1, sizeof *st);
  if (!st || sscanf(j->key, "stack/%299[^/]/%299s", st->ns, st->name) != 2) {
    free(st);
    return; /* not a key of ours (or no memory): nothing to do */
  }
  j->state = st;
  j->free_state = free_state;
  const json_t *stack = inf_get(o->inf[I_STACKS], st->ns, st->name);
  if (!stack) return; /* deleted: garbage collection removes the children */
  st->stack = json_incref((json_t *)stack);
  json_t *objs = NULL;
  pp_err err = {0};
  int want = 1;
  char cmname[300];
  snprintf(cmname, sizeof cmname, "%s-config", o->name);
  const json_t *cm = inf_get(o->inf[I_CMS], st->ns, cmname);
  kbuild_shards cur;
  if (cm) kbuild_shards_read(cm, &cur);
  st->now_s = pp_clock_real_ns() / 1000000000;
  int r = kbuild_stack_shards(json_object_get(stack, "spec"), &want, &err);
  if (r < 0) want = cm ? cur.shards : 1; /* a bad count changes nothing: the status says what runs */
  kbuild_shard_plan(want, cm ? &cur : NULL, st->now_s, o->o.shard_change_delay_s, &st->plan);
  st->running = kbuild_shards_running(&st->plan, st->now_s);
  int sets = sets_known(o, st);
  char qname[300];
  kbuild_query_name(o->name, qname, sizeof qname);
  bool query_known = inf_get(o->inf[I_DEPLOYS], st->ns, qname) != NULL;
  /* the shards past the count: each answers its history for the retention policy's period from
   * when it stopped scraping (kept on its StatefulSet), then stops */
  st->sets = sets > st->running ? sets : st->running;
  if (r == 0) r = kbuild_stack_shard_retention(json_object_get(stack, "spec"), &st->keep_s, &err);
  int64_t next_end = 0;
  for (int k = st->running; r == 0 && k < st->sets; k++) {
    char sts[300];
    kbuild_shard_set_name(o->name, k, sts, sizeof sts);
    const json_t *set = inf_get(o->inf[I_STS], st->ns, sts);
    const char *at = str(json_object_get(md(set), "annotations"), KBUILD_ANN_RETIRED_AT);
    char *end;
    long long v = at ? strtoll(at, &end, 10) : 0;
    st->retired[k].at = at && *at && !*end && v > 0 && v <= st->now_s ? v : st->now_s;
    int64_t until = st->retired[k].at + (int64_t)st->keep_s;
    st->retired[k].answering = st->now_s < until;
    if (st->retired[k].answering && (!next_end || until < next_end)) next_end = until;
  }
  if (r == 0)
    r = kbuild_stack_objects(stack, o->name, &st->plan, st->running, st->sets, st->retired, query_known, &objs, &err);
  if (r < 0) {
    st->reason = "InvalidSpec";
    snprintf(st->problem, sizeof st->problem, "%s", err.msg);
    op_job_fail(j, PP_EINVAL, "stack %s/%s: %s", st->ns, st->name, err.msg);
  } else {
    size_t i;
    json_t *obj;
    json_array_foreach(objs, i, obj) {
      char path[1024];
      snprintf(path, sizeof path, op_resource_path(str(obj, "kind")), st->ns, str(md(obj), "name"));
      op_apply(j, path, "pprof-operator", obj, on_object_applied, NULL);
    }
    json_decref(objs);
    if (st->plan.previous && st->now_s < st->plan.change_at) /* its end: the extra shards stop */
      kq_add_after(o->q, j->key, (st->plan.change_at - st->now_s) * 1000 + 500, pp_clock_mono_ms());
    else if (next_end) /* a retired shard's period ends (looked at again hourly at most) */
      kq_add_after(o->q, j->key, (next_end - st->now_s < 3600 ? next_end - st->now_s : 3600) * 1000 + 500, pp_clock_mono_ms());
  }
  j->next = stack_status;
}
