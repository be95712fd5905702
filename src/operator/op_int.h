/* op_int.h: what the parts of the operator share; operator.h is the public contract.
 *
 *   operator.c    the loop: informers, leader election, the work queue, event handlers
 *   op_apply.c    writes: server-side apply, status subresource, conditions
 *   op_stack.c    the PprofCollectorStack reconciler
 *   op_monitor.c  the PprofMonitor reconciler (the collector's config)
 *   op_lease.c    leader election on a coordination.k8s.io Lease
 *   op_metrics.c  /metrics
 */
#ifndef OPERATOR_OP_INT_H
#define OPERATOR_OP_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/blob.h"
#include "informer.h"
#include "kqueue.h"
#include "operator.h"

#define GROUP_PATH "/apis/resources.cattle.io/v1alpha1"
#define MONITORS_KEY "monitors"
#define LEASE_SECONDS 15
#define RENEW_DEADLINE_MS 10000
#define RETRY_MS 2000

/* deploy/crds, embedded by tools/embed.py */
PP_BLOB_TABLE(crd_assets);

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

static inline const char *str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }
static inline const json_t *md(const json_t *o) { return json_object_get(o, "metadata"); }

/* operator.c */
int64_t op_now_ms(void);
void op_enqueue_stack(op *o, const char *ns, const char *name);

/* op_apply.c: now as RFC 3339 (with microseconds for Lease times) */
void op_now_rfc3339(char *buf, size_t n, bool micro);
/* Server-side apply of obj at path (collection path + name), as manager, forced. ret_obj (may
 * be NULL) receives the object as the server now has it; ret_status the HTTP status. */
int op_apply_obj(op *o, const char *path, const char *manager, const json_t *obj, json_t **ret_obj, int *ret_status,
                 pp_err *err);
int op_apply(op *o, const char *path, const char *manager, const json_t *obj, pp_err *err);
/* "/api/v1/namespaces/%s/services/%s" and so on for the kinds a stack owns; NULL for others. */
const char *op_resource_path(const char *kind);
/* A condition, keeping lastTransitionTime when the status did not change. */
json_t *op_condition(const json_t *old_status, const char *type, bool ok, const char *reason, const char *msg,
                     json_int_t gen);
/* Writes status (stolen) through the status subresource when it differs from the object's. */
int op_write_status(op *o, const char *coll, const json_t *obj, const char *kind, json_t *status, pp_err *err);

/* op_stack.c, op_monitor.c: one reconcile of a key */
int op_reconcile_stack(op *o, const char *ns, const char *name, pp_err *err);
int op_reconcile_monitors(op *o, pp_err *err);
/* The collector config is compared by digest: the operator-namespace ConfigMap cache keeps
 * "digest:<hex>" instead of megabytes of YAML (10,000 targets make ~2.5 MB). */
void op_digest(const char *text, char *buf, size_t n);
void op_digest_config(json_t *cm);

/* op_lease.c */
void op_lease_step(op *o, int64_t now);

#endif
