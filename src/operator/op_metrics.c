/* /metrics of bin/operator; see operator.h. */
#include "op_int.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>

#include "../base/buf.h"
#include "../base/metrics.h"

/* One line per informer of the counter at offset field of its stats, with a reason label when
 * reason is set. */
static void per_resource(pp_buf *b, const op *o, const inf_stats *st, const char *name, const char *reason, size_t field) {
  for (int i = 0; i < I_COUNT; i++) {
    pp_metric_label l[] = {{"resource", inf_name(o->inf[i])}, {"reason", reason}};
    pp_metrics_u64(b, name, l, reason ? 2 : 1, *(const uint64_t *)((const char *)&st[i] + field));
  }
}

/* A family of one sample without labels. */
static void single(pp_buf *b, const char *name, const char *type, const char *help, uint64_t v) {
  pp_metrics_head(b, name, type, help);
  pp_metrics_u64(b, name, NULL, 0, v);
}

char *op_metrics(const op *o) {
  pp_buf b;
  pp_buf_init(&b, 0); /* no cap: a fixed set of families, one line per controller or resource */
  static const char *const names[C_COUNT] = {[C_STACK] = "stack", [C_MONITORS] = "monitors"};
  pp_metrics_head(&b, "operator_reconciles_total", "counter", "Reconciles run, by controller.");
  for (int i = 0; i < 2; i++)
    pp_metrics_u64(&b, "operator_reconciles_total", &(pp_metric_label){"controller", names[i]}, 1, o->reconciles[i]);
  pp_metrics_head(&b, "operator_reconcile_errors_total", "counter", "Reconciles that failed (retried with backoff).");
  for (int i = 0; i < 2; i++)
    pp_metrics_u64(&b, "operator_reconcile_errors_total", &(pp_metric_label){"controller", names[i]}, 1, o->errors[i]);
  single(&b, "operator_workqueue_depth", "gauge", "Keys waiting in the work queue.", kq_len(o->q));
  inf_stats st[I_COUNT];
  for (int i = 0; i < I_COUNT; i++) inf_get_stats(o->inf[i], &st[i]);
  pp_metrics_head(&b, "operator_watch_restarts_total", "counter", "Watches that ended and were restarted, by resource.");
  per_resource(&b, o, st, "operator_watch_restarts_total", NULL, offsetof(inf_stats, watch_restarts));
  pp_metrics_head(&b, "operator_relists_total", "counter",
                  "Lists after the first (410 Gone, or an event lost to a bad one), by resource.");
  per_resource(&b, o, st, "operator_relists_total", NULL, offsetof(inf_stats, relists));
  pp_metrics_head(&b, "operator_watch_errors_total", "counter",
                  "Watches that ended in an error, by resource and reason: bad_event (an "
                  "event over 16 MiB or not JSON), gone (410: the resourceVersion was compacted away; relisted at once), failed "
                  "(connection, other HTTP status or ERROR event).");
  per_resource(&b, o, st, "operator_watch_errors_total", "bad_event", offsetof(inf_stats, bad_events));
  per_resource(&b, o, st, "operator_watch_errors_total", "failed", offsetof(inf_stats, watch_failures));
  per_resource(&b, o, st, "operator_watch_errors_total", "gone", offsetof(inf_stats, relists_gone));
  single(&b, "operator_api_requests_total", "counter", "Requests made to the API server.", kc_requests(o->c));
  single(&b, "operator_config_writes_total", "counter", "Times the collector config changed and was written.", o->config_writes);
  single(&b, "operator_status_writes_total", "counter", "Status subresource writes.", o->status_writes);
  single(&b, "operator_config_targets", "gauge", "Targets in the last collector config.", o->last_config_targets);
  single(&b, "operator_reconciles_in_flight", "gauge", "Reconciles waiting for the API server's answers.", o->njobs);
  char help[100];
  snprintf(help, sizeof help, "Requests waiting for one of the %d places.", KC_MAX_INFLIGHT);
  single(&b, "operator_api_requests_waiting", "gauge", help, kc_waiting(o->c));
  single(&b, "operator_lease_failures_total", "counter", "Leader-election requests that failed.", o->lease_failures);
  single(&b, "operator_leader", "gauge", "1 while this replica reconciles (always 1 without --leader-elect).",
         !o->o.leader_elect || o->leader);
  single(&b, "operator_ready", "gauge", "1 once every informer has listed.", op_ready(o));
  return pp_buf_take(&b, NULL); /* NULL when out of memory, as before */
}
