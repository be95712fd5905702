/* /metrics of bin/operator; see operator.h. */
#include "op_int.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>

/* One line per informer of the counter at offset field of its stats, with a reason label when
 * reason is set. */
static void per_resource(FILE *f, const op *o, const inf_stats *st, const char *name, const char *reason, size_t field) {
  for (int i = 0; i < I_COUNT; i++)
    fprintf(f, "%s{resource=\"%s\"%s%s%s} %" PRIu64 "\n", name, inf_name(o->inf[i]), reason ? ",reason=\"" : "",
            reason ? reason : "", reason ? "\"" : "", *(const uint64_t *)((const char *)&st[i] + field));
}

char *op_metrics(const op *o) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  static const char *const names[C_COUNT] = {[C_STACK] = "stack", [C_MONITORS] = "monitors"};
  fprintf(f, "# HELP operator_reconciles_total Reconciles run, by controller.\n# TYPE operator_reconciles_total counter\n");
  for (int i = 0; i < 2; i++) fprintf(f, "operator_reconciles_total{controller=\"%s\"} %" PRIu64 "\n", names[i], o->reconciles[i]);
  fprintf(f, "# HELP operator_reconcile_errors_total Reconciles that failed (retried with backoff).\n"
             "# TYPE operator_reconcile_errors_total counter\n");
  for (int i = 0; i < 2; i++) fprintf(f, "operator_reconcile_errors_total{controller=\"%s\"} %" PRIu64 "\n", names[i], o->errors[i]);
  fprintf(f, "# HELP operator_workqueue_depth Keys waiting in the work queue.\n# TYPE operator_workqueue_depth gauge\n"
             "operator_workqueue_depth %zu\n", kq_len(o->q));
  inf_stats st[I_COUNT];
  for (int i = 0; i < I_COUNT; i++) inf_get_stats(o->inf[i], &st[i]);
  fprintf(f, "# HELP operator_watch_restarts_total Watches that ended and were restarted, by resource.\n"
             "# TYPE operator_watch_restarts_total counter\n");
  per_resource(f, o, st, "operator_watch_restarts_total", NULL, offsetof(inf_stats, watch_restarts));
  fprintf(f, "# HELP operator_relists_total Lists after the first (410 Gone, or an event lost to a bad one), by resource.\n"
             "# TYPE operator_relists_total counter\n");
  per_resource(f, o, st, "operator_relists_total", NULL, offsetof(inf_stats, relists));
  fprintf(f, "# HELP operator_watch_errors_total Watches that ended in an error, by resource and reason: bad_event (an "
             "event over 16 MiB or not JSON), gone (410: the resourceVersion was compacted away; relisted at once), failed "
             "(connection, other HTTP status or ERROR event).\n"
             "# TYPE operator_watch_errors_total counter\n");
  per_resource(f, o, st, "operator_watch_errors_total", "bad_event", offsetof(inf_stats, bad_events));
  per_resource(f, o, st, "operator_watch_errors_total", "failed", offsetof(inf_stats, watch_failures));
  per_resource(f, o, st, "operator_watch_errors_total", "gone", offsetof(inf_stats, relists_gone));
  fprintf(f, "# HELP operator_api_requests_total Requests made to the API server.\n# TYPE operator_api_requests_total counter\n"
             "operator_api_requests_total %" PRIu64 "\n", kc_requests(o->c));
  fprintf(f, "# HELP operator_config_writes_total Times the collector config changed and was written.\n"
             "# TYPE operator_config_writes_total counter\noperator_config_writes_total %" PRIu64 "\n", o->config_writes);
  fprintf(f, "# HELP operator_status_writes_total Status subresource writes.\n# TYPE operator_status_writes_total counter\n"
             "operator_status_writes_total %" PRIu64 "\n", o->status_writes);
  fprintf(f, "# HELP operator_config_targets Targets in the last collector config.\n# TYPE operator_config_targets gauge\n"
             "operator_config_targets %" PRIu64 "\n", o->last_config_targets);
  fprintf(f, "# HELP operator_reconciles_in_flight Reconciles waiting for the API server's answers.\n"
             "# TYPE operator_reconciles_in_flight gauge\noperator_reconciles_in_flight %zu\n", o->njobs);
  fprintf(f, "# HELP operator_api_requests_waiting Requests waiting for one of the %d places.\n"
             "# TYPE operator_api_requests_waiting gauge\noperator_api_requests_waiting %zu\n", KC_MAX_INFLIGHT,
          kc_waiting(o->c));
  fprintf(f, "# HELP operator_lease_failures_total Leader-election requests that failed.\n"
             "# TYPE operator_lease_failures_total counter\noperator_lease_failures_total %" PRIu64 "\n", o->lease_failures);
  fprintf(f, "# HELP operator_leader 1 while this replica reconciles (always 1 without --leader-elect).\n"
             "# TYPE operator_leader gauge\noperator_leader %d\n", !o->o.leader_elect || o->leader);
  fprintf(f, "# HELP operator_ready 1 once every informer has listed.\n# TYPE operator_ready gauge\noperator_ready %d\n",
          op_ready(o));
  fclose(f);
  return buf;
}
