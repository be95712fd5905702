/* The PprofCollectorStack reconciler; see operator.h for what it does. */
#include "op_int.h"

#include <stdio.h>
#include <string.h>

#include "kbuild.h"

int op_reconcile_stack(op *o, const char *ns, const char *name, pp_err *err) {
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
      snprintf(path, sizeof path, op_resource_path(kind), ns, str(md(obj), "name"));
      if ((r = op_apply(o, path, "pprof-operator", obj, &aerr)) < 0) break;
    }
  }
  json_decref(objs);
  char sts[300];
  snprintf(sts, sizeof sts, "%s-collector", o->name);
  const json_t *set = inf_get(o->inf[I_STS], ns, sts);
  json_int_t ready = json_integer_value(json_object_get(json_object_get(set, "status"), "readyReplicas"));
  json_t *conds = json_array();
  json_array_append_new(conds, op_condition(old_status, "Reconciled", r == 0, r == 0 ? "Applied" : reason,
                                         r == 0 ? "Service, PVC, ConfigMap and StatefulSet applied" : aerr.msg, gen));
  json_array_append_new(conds, op_condition(old_status, "Ready", ready >= 1, ready >= 1 ? "CollectorReady" : "CollectorNotReady",
                                         ready >= 1 ? "the collector is ready" : "waiting for the collector pod to be ready",
                                         gen));
  json_t *status = json_pack("{s:I,s:I,s:o}", "observedGeneration", gen, "readyReplicas", ready, "conditions", conds);
  int sr = op_write_status(o, "pprofcollectorstacks", stack, "PprofCollectorStack", status, r < 0 ? NULL : err);
  if (r < 0) {
    pp_err_set(err, r, "stack %s/%s: %s", ns, name, aerr.msg);
    return r;
  }
  return sr;
}
