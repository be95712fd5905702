/* The PprofCollectorStack reconciler; see operator.h for what it does.
 *
 *   op_stack_start: the stack's four objects (kbuild) applied at once
 *   stack_status:   once they have all answered, the stack's status from what they said and
 *                   from the StatefulSet's readiness in the cache
 */
#include "op_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbuild.h"

typedef struct stack_state {
  char ns[300], name[300];
  json_t *stack;      /* the object reconciled (a reference: the cache may move on meanwhile) */
  const char *reason; /* why Reconciled is False, or NULL */
  char problem[512];
} stack_state;

static void free_state(void *p) {
  stack_state *st = p;
  if (!st) return;
  json_decref(st->stack);
  free(st);
}

static void on_object_applied(op_job *j, void *arg, int status, json_t *body, const pp_err *err) {
  stack_state *st = j->state;
  if ((status == 200 || status == 201) || st->reason) return;
  st->reason = "ApplyFailed";
  snprintf(st->problem, sizeof st->problem, "%s", err->msg);
}

static void stack_status(op_job *j) {
  op *o = j->o;
  stack_state *st = j->state;
  json_int_t gen = json_integer_value(json_object_get(md(st->stack), "generation"));
  const json_t *old_status = json_object_get(st->stack, "status");
  char sts[300];
  snprintf(sts, sizeof sts, "%s-collector", o->name);
  const json_t *set = inf_get(o->inf[I_STS], st->ns, sts);
  json_int_t ready = json_integer_value(json_object_get(json_object_get(set, "status"), "readyReplicas"));
  json_t *conds = json_array();
  bool ok = !st->reason && j->result == 0; /* (a request that could not start set only the latter) */
  json_array_append_new(conds, op_condition(old_status, "Reconciled", ok, ok ? "Applied" : st->reason ? st->reason : "ApplyFailed",
                                            ok ? "Service, PVC, ConfigMap and StatefulSet applied"
                                            : st->reason ? st->problem : j->err.msg,
                                            gen));
  json_array_append_new(conds, op_condition(old_status, "Ready", ready >= 1, ready >= 1 ? "CollectorReady" : "CollectorNotReady",
                                            ready >= 1 ? "the collector is ready" : "waiting for the collector pod to be ready",
                                            gen));
  json_t *status = json_pack("{s:I,s:I,s:o}", "observedGeneration", gen, "readyReplicas", ready, "conditions", conds);
  op_write_status(j, "pprofcollectorstacks", st->stack, "PprofCollectorStack", status);
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
  if (kbuild_stack_objects(stack, o->name, &objs, &err) < 0) {
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
  }
  j->next = stack_status;
}
