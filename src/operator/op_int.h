/* op_int.h: what the parts of the operator share; operator.h is the public contract.
 *
 *   operator.c    the loop: informers, leader election, the work queue, jobs, event handlers
 *   op_apply.c    writes: server-side apply, status subresource, conditions
 *   op_stack.c    the PprofCollectorStack reconciler
 *   op_monitor.c  the PprofMonitor reconciler (the collector's config)
 *   op_lease.c    leader election on a coordination.k8s.io Lease
 *   op_metrics.c  /metrics
 *
 * Nothing here waits for the API server. A reconcile is a job: it reads the caches, starts
 * its requests and returns; kc_poll runs their callbacks as they end, and when the last one of
 * a step has ended the job's next step runs (the statuses after the objects), then the job
 * ends and its key is done (or retried):
 *
 *   process --> step 1 (reads caches, starts requests) --[all ended]--> step 2 ... --> finish
 *                                                                          (kq_forget/kq_retry, kq_done)
 *
 * While a job runs its key is "processing" in the queue, so the same key never has two jobs;
 * changes meanwhile mark it dirty and it runs again after. Losing the lead cancels every job.
 */
#ifndef OPERATOR_OP_INT_H
#define OPERATOR_OP_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/clock.h"
#include "../base/blob.h"
#include "informer.h"
#include "kbuild.h"
#include "kqueue.h"
#include "operator.h"

#define GROUP_PATH "/apis/resources.cattle.io/v1alpha1"
#define MONITORS_KEY "monitors"
#define LEASE_SECONDS 15
#define RENEW_DEADLINE_MS 10000
#define RETRY_MS 2000
#define WRITE_TIMEOUT_MS 30000

/* deploy/crds, embedded by tools/embed.py */
PP_BLOB_TABLE(crd_assets);

enum { I_MONITORS, I_STACKS, I_SERVICES, I_SLICES, I_STS, I_PVCS, I_CMS, I_OPCMS, I_PODS, I_DEPLOYS, I_COUNT };
enum { C_STACK, C_MONITORS, C_COUNT }; /* the controllers, for jobs and metrics */

typedef struct op_job op_job;
typedef struct op_call op_call;

struct op {
  op_opts o;
  char *name, *ns, *identity;
  kclient *c;
  informer *inf[I_COUNT];
  kq *q;
  op_job *jobs; /* running */
  size_t njobs;
  /* leader election (op_lease.c) */
  bool leader;
  int64_t renewed_ms;   /* when the last successful renewal began */
  int64_t next_lease_ms; /* the next attempt, on a RETRY_MS grid */
  int64_t attempt_ms;   /* when the attempt in flight began */
  char attempt_ts[64];  /* its renewTime */
  kc_req *lease_req;    /* the attempt's request in flight, or NULL */
  char observed[512];   /* the other holder's record as last seen, and when it changed */
  int64_t observed_ms;
  bool lease_failing;   /* lease requests fail: logged once, when it starts and when it ends */
  uint64_t lease_failures;
  /* metrics */
  uint64_t reconciles[C_COUNT], errors[C_COUNT], config_writes, status_writes, leader_transitions;
  uint64_t last_config_targets;
  /* targets per shard in the last config, under shard_targets_of shards (0: not counted) */
  uint64_t shard_targets[KBUILD_MAX_SHARDS];
  int shard_targets_of;
};

static inline const char *str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }
static inline const json_t *md(const json_t *o) { return json_object_get(o, "metadata"); }

/* ---- operator.c -------------------------------------------------------------------------- */

void op_enqueue_stack(op *o, const char *ns, const char *name);
/* Every job's requests dropped, their keys done without a retry (the lead was lost). */
void op_cancel_jobs(op *o);

/* A job's step: reads the caches, starts requests with op_call_start (or none) and sets
 * j->next to what runs once they have all ended (NULL: the job is over). */
typedef void (*op_step_fn)(op_job *j);
/* A request's end, for its job: status, body and err as kc_done_fn gives them. */
typedef void (*op_call_fn)(op_job *j, void *arg, int status, json_t *body, const pp_err *err);

struct op_job {
  op *o;
  char key[600];
  int controller;
  op_step_fn next;
  op_call *calls;                 /* in flight */
  int result;                     /* 0, or the first failure's code */
  pp_err err;                     /* and its message */
  void *state;                    /* the reconciler's, freed with free_state */
  void (*free_state)(void *state);
  op_job *prev, *next_job;
};

/* Starts a request for j; fn (may be NULL) runs when it ends. A request that cannot start
 * fails the job and returns its (negative) code; fn then never runs. free_arg (may be NULL)
 * releases arg once the request is over, whether fn ran, the request could not start or the
 * job was cancelled. */
int op_call_start(op_job *j, const char *method, const char *path, const char *content_type, const json_t *body,
                  op_call_fn fn, void *arg, void (*free_arg)(void *));
/* Records a failure (the first one is the job's result); the job goes on with its steps. */
void op_job_fail(op_job *j, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- op_apply.c -------------------------------------------------------------------------- */

/* now as RFC 3339 (with microseconds for Lease times) */
void op_now_rfc3339(char *buf, size_t n, bool micro);
/* Server-side apply of obj at path (collection path + name), as manager, forced. fn (may be
 * NULL) gets the server's answer; a status other than 200/201 fails the job. */
void op_apply(op_job *j, const char *path, const char *manager, const json_t *obj, op_call_fn fn, void *arg);
/* "/api/v1/namespaces/%s/services/%s" and so on for the kinds a stack owns; NULL for others. */
const char *op_resource_path(const char *kind);
/* A condition, keeping lastTransitionTime when the status did not change. */
json_t *op_condition(const json_t *old_status, const char *type, bool ok, const char *reason, const char *msg,
                     json_int_t gen);
/* Writes status (stolen) through obj's status subresource when it differs from obj's; a 404
 * (deleted meanwhile) is fine, other failures fail the job. */
void op_write_status(op_job *j, const char *coll, const json_t *obj, const char *kind, json_t *status);

/* ---- op_stack.c, op_monitor.c: the first steps of their jobs ----------------------------- */

void op_stack_start(op_job *j);    /* key "stack/<ns>/<name>" */
void op_monitors_start(op_job *j); /* key MONITORS_KEY */
/* The collector config is compared by digest: the operator-namespace ConfigMap cache keeps
 * "digest:<hex>" instead of megabytes of YAML (10,000 targets make ~2.5 MB). */
/* A ConfigMap's data and binaryData hold at most 1 MiB together (the API server's limit); the
 * gzipped config is kept under it with room for the metadata. A config's YAML is read back (to
 * digest it) up to OP_CONFIG_MAX_TEXT, the collector's own limit. */
#define OP_CONFIGMAP_MAX 1000000
#define OP_CONFIG_MAX_TEXT ((size_t)64 << 20)
void op_digest(const char *text, char *buf, size_t n);
void op_digest_config(json_t *cm);
/* The pods informer's transform: a pod cut to what the `version` label needs. */
void op_trim_pod(json_t *pod);

/* ---- op_lease.c -------------------------------------------------------------------------- */

/* Starts an attempt when one is due (none in flight), drops the lead past the renew deadline;
 * returns ms until it next wants to run. */
int64_t op_lease_tick(op *o, int64_t now);

#endif
