/* /metrics of bin/operator; see operator.h. */
#include "op_int.h"

#include <inttypes.h>
#include <stdio.h>

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
  fprintf(f, "# HELP operator_watch_restarts_total Watches that ended and were restarted, by resource.\n"
             "# TYPE operator_watch_restarts_total counter\n");
  for (int i = 0; i < I_COUNT; i++) {
    inf_stats s;
    inf_get_stats(o->inf[i], &s);
    fprintf(f, "operator_watch_restarts_total{resource=\"%s\"} %" PRIu64 "\n", inf_name(o->inf[i]), s.watch_restarts);
  }
  fprintf(f, "# HELP operator_relists_total Lists after the first (410 Gone, or an event lost to a bad one), by resource.\n"
             "# TYPE operator_relists_total counter\n");
  for (int i = 0; i < I_COUNT; i++) {
    inf_stats s;
    inf_get_stats(o->inf[i], &s);
    fprintf(f, "operator_relists_total{resource=\"%s\"} %" PRIu64 "\n", inf_name(o->inf[i]), s.relists);
  }
  fprintf(f, "# HELP operator_watch_errors_total Watches that ended in an error, by resource and reason: bad_event (an "
             "event over 16 MiB or not JSON), failed (connection, HTTP status, ERROR event).\n"
             "# TYPE operator_watch_errors_total counter\n");
  for (int i = 0; i < I_COUNT; i++) {
    inf_stats s;
    inf_get_stats(o->inf[i], &s);
    fprintf(f, "operator_watch_errors_total{resource=\"%s\",reason=\"bad_event\"} %" PRIu64 "\n", inf_name(o->inf[i]),
            s.bad_events);
    fprintf(f, "operator_watch_errors_total{resource=\"%s\",reason=\"failed\"} %" PRIu64 "\n", inf_name(o->inf[i]),
            s.watch_failures);
  }
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
