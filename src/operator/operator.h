/* operator: the controllers behind bin/operator, driven by one loop that never waits.
 *
 * Informers (PprofMonitors, PprofCollectorStacks, Services, EndpointSlices cluster-wide; the
 * stacks' children by the label app.kubernetes.io/managed-by=pprof-operator; ConfigMaps in the
 * operator's namespace) feed a work queue of two kinds of keys: "stack/<ns>/<name>" and the
 * single key "monitors". Reconcilers are level-based: they read the caches, call the pure
 * builders in kbuild, and write with server-side apply only what differs:
 *  - a stack: its Service, PVC, ConfigMap and StatefulSet (field manager "pprof-operator",
 *    force), then its status (conditions Ready and Reconciled, observedGeneration,
 *    readyReplicas);
 *  - the monitors: every ready endpoint address of every selected Service becomes a collector
 *    monitor, except those of a monitor the collector's rules refuse (base/scrapeval.h), which
 *    is left out alone and says why in its status; the config.yaml (field manager
 *    "pprof-operator-config") in ConfigMap <name>-config of the operator's namespace is applied
 *    only when its bytes change; then each monitor's status (targets, condition Reconciled,
 *    observedGeneration).
 * Every list, watch and write is a request on the kclient's event loop (op_step runs one turn
 * of it): a slow list or write delays only its own reconcile, never the Lease renewal (every
 * 2 s, on its own priority requests) or the other informers. Nothing is reconciled before
 * every informer has listed once, nor while one relists (a partial cache never writes a
 * partial config). With leader election, only the Lease holder reconciles, and it stops (its
 * writes in flight cancelled) when it has not renewed for 10 s.
 * Errors: reconcile failures are retried with the queue's per-key backoff; failures of a key,
 * an informer or the Lease are logged when they start and when they end, not at each retry
 * (pp_log, at --log-level). They never stop the loop.
 */
#ifndef OPERATOR_OPERATOR_H
#define OPERATOR_OPERATOR_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/pp_err.h"
#include "kclient.h"

typedef struct op_opts {
  const char *name;       /* --name: prefixes every object (default pprof-operator) */
  const char *namespace_; /* --namespace: where the ConfigMap and Lease live */
  bool leader_elect;
  const char *identity; /* this replica's Lease holder identity */
  bool install_crds;
  size_t config_gzip_above; /* --config-gzip-above: a config.yaml larger than this is written
                             * gzipped into binaryData (a ConfigMap holds at most 1 MiB) */
  int64_t shard_change_delay_s; /* --shard-change-delay: a new shard count takes effect this
                                 * long after the operator sees it (the ConfigMap's way to every pod) */
} op_opts;

typedef struct op op;

int op_new(const op_opts *o, kclient *c, op **ret, pp_err *err);
void op_free(op *o);
/* Applies the embedded CRDs and waits (up to 30 s) until the API serves them; synchronous,
 * for start-up, before the loop runs. */
int op_install_crds(op *o, pp_err *err);
/* One turn of the loop: informers, leader election, queue; waits at most max_wait_ms for
 * network activity and handles what arrived. */
void op_step(op *o, int max_wait_ms);
/* Stops reconciling and gives the Lease up (when held) so another replica takes over at once;
 * for shutdown: waits up to 8.5 s for the API server itself. */
void op_release(op *o);
bool op_ready(const op *o);
/* Prometheus text for /metrics (malloc'd). */
char *op_metrics(const op *o);

#endif
