/* Leader election on the Lease <name>-leader, as client-go's leaderelection does; see
 * operator.h.
 *
 * An attempt starts every RETRY_MS on a fixed grid, whatever else is in flight: its requests
 * are priority requests (they never wait behind lists or writes) with a timeout of their own,
 * and its renewTime is when the attempt began, so a slow answer cannot make the lease look
 * renewed later than it was. One attempt at a time:
 *
 *   GET --404--> POST (create, holder = us)            --201--> leader
 *       --200--> ours, or expired: PUT (renew/take over) --200--> leader
 *                someone else's, not expired: not leader (its record's changes are watched;
 *                it expires LEASE_SECONDS after the last change we saw, by our clock)
 *
 * A leader that has not renewed for RENEW_DEADLINE_MS stops leading (and cancels its jobs)
 * before the lease can expire for the others. Failed requests are logged when they start
 * failing and when they work again, not at every attempt.
 */
#include "op_int.h"

#include <stdio.h>
#include <string.h>

#include "../base/log.h"

#define LEASE_TIMEOUT_MS 4000 /* one request; two attempts fit in the renew deadline */

static void lease_path(const op *o, char *buf, size_t n) {
  snprintf(buf, n, "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s-leader", o->ns, o->name);
}

static void set_leader(op *o, bool leader) {
  if (o->leader == leader) return;
  o->leader = leader;
  o->leader_transitions++;
  pp_log(PP_LOG_INFO, "%s", leader ? "became the leader" : "no longer the leader");
  if (leader) {
    /* a new leader starts from the full picture */
    kq_add(o->q, MONITORS_KEY);
    const char *k;
    json_t *s;
    json_object_foreach((json_t *)inf_items(o->inf[I_STACKS]), k, s) op_enqueue_stack(o, str(md(s), "namespace"), str(md(s), "name"));
  } else {
    op_cancel_jobs(o); /* writes in flight must not land as a replica that no longer leads */
  }
}

static void failed(op *o, const char *what) {
  o->lease_failures++;
  if (!o->lease_failing) {
    o->lease_failing = true;
    pp_log(PP_LOG_WARN, "leader election: lease request failed: %s (retrying every %d s; logged again when it works)", what,
           RETRY_MS / 1000);
  }
}

static void worked(op *o) {
  if (o->lease_failing) {
    o->lease_failing = false;
    pp_log(PP_LOG_INFO, "leader election: lease requests work again");
  }
}

static bool start(op *o, const char *method, const char *path, const json_t *body, kc_done_fn fn) {
  kc_req_opts opts = {.timeout_ms = LEASE_TIMEOUT_MS, .priority = true};
  pp_err err = {0};
  if (kc_start(o->c, method, path, NULL, body, &opts, fn, o, &o->lease_req, &err) < 0) {
    o->lease_req = NULL;
    failed(o, err.msg);
    return false;
  }
  return true;
}

static void on_written(void *ud, int st, json_t *body, const pp_err *err) {
  op *o = ud;
  o->lease_req = NULL;
  if (st == 200 || st == 201) {
    worked(o);
    o->renewed_ms = o->attempt_ms;
    set_leader(o, true);
    return;
  }
  /* 409: the record changed since we read it (another replica renewed or took it): the next
   * attempt reads it again */
  failed(o, err->msg);
}

static void on_read(void *ud, int st, json_t *lease, const pp_err *err) {
  op *o = ud;
  o->lease_req = NULL;
  char path[1024];
  lease_path(o, path, sizeof path);
  if (st == 404) {
    char coll[1024], lname[300];
    snprintf(coll, sizeof coll, "/apis/coordination.k8s.io/v1/namespaces/%s/leases", o->ns);
    snprintf(lname, sizeof lname, "%s-leader", o->name);
    json_t *body = json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s,s:i,s:s,s:s,s:i}}", "apiVersion", "coordination.k8s.io/v1", "kind",
                             "Lease", "metadata", "name", lname, "namespace", o->ns, "spec", "holderIdentity", o->identity,
                             "leaseDurationSeconds", LEASE_SECONDS, "acquireTime", o->attempt_ts, "renewTime", o->attempt_ts,
                             "leaseTransitions", 0);
    start(o, "POST", coll, body, on_written);
    json_decref(body);
    return;
  }
  if (st != 200) {
    failed(o, err->msg);
    return;
  }
  json_t *spec = json_object_get(lease, "spec");
  const char *holder = str(spec, "holderIdentity");
  char record[512];
  snprintf(record, sizeof record, "%s|%s", holder ? holder : "", str(spec, "renewTime") ?: "");
  int64_t now = pp_clock_mono_ms();
  /* expiry is judged by when we saw the record change, not by the other replica's clock */
  if (strcmp(record, o->observed)) {
    snprintf(o->observed, sizeof o->observed, "%s", record);
    o->observed_ms = now;
  }
  bool mine = holder && !strcmp(holder, o->identity);
  bool expired = !holder || !*holder || now - o->observed_ms > (int64_t)LEASE_SECONDS * 1000;
  if (!mine && !expired) {
    worked(o); /* the attempt is complete: someone else leads */
    set_leader(o, false);
    return;
  }
  json_object_set_new(spec, "holderIdentity", json_string(o->identity));
  json_object_set_new(spec, "leaseDurationSeconds", json_integer(LEASE_SECONDS));
  json_object_set_new(spec, "renewTime", json_string(o->attempt_ts));
  if (!mine) {
    json_object_set_new(spec, "acquireTime", json_string(o->attempt_ts));
    json_object_set_new(spec, "leaseTransitions", json_integer(json_integer_value(json_object_get(spec, "leaseTransitions")) + 1));
  }
  start(o, "PUT", path, lease, on_written); /* resourceVersion guards the race */
}

int64_t op_lease_tick(op *o, int64_t now) {
  if (o->leader && now - o->renewed_ms > RENEW_DEADLINE_MS) {
    pp_log(PP_LOG_ERROR, "leader election lost: could not renew the lease for %d s", RENEW_DEADLINE_MS / 1000);
    set_leader(o, false);
  }
  if (now >= o->next_lease_ms) {
    /* on the grid: a late turn of the loop does not push the following attempts back */
    o->next_lease_ms = o->next_lease_ms && now - o->next_lease_ms < RETRY_MS ? o->next_lease_ms + RETRY_MS : now + RETRY_MS;
    if (!o->lease_req) { /* the previous attempt still waits for its answer (or its timeout) */
      o->attempt_ms = now;
      op_now_rfc3339(o->attempt_ts, sizeof o->attempt_ts, true);
      char path[1024];
      lease_path(o, path, sizeof path);
      start(o, "GET", path, NULL, on_read);
    }
  }
  int64_t wait = o->next_lease_ms - now;
  if (o->leader) {
    int64_t deadline = o->renewed_ms + RENEW_DEADLINE_MS + 1 - now;
    if (deadline < wait) wait = deadline;
  }
  return wait < 0 ? 0 : wait;
}

/* Shutdown: gives the Lease up so another replica takes over at once. The loop has stopped, so
 * this waits for its two requests itself, at most twice LEASE_TIMEOUT_MS. */
typedef struct release_state {
  op *o;
  kc_req *req; /* in flight */
  bool done;
} release_state;

static void on_released(void *ud, int st, json_t *body, const pp_err *err) {
  release_state *rs = ud;
  rs->req = NULL;
  rs->done = true;
}

static void on_release_read(void *ud, int st, json_t *lease, const pp_err *err) {
  release_state *rs = ud;
  op *o = rs->o;
  rs->req = NULL;
  const char *holder = str(json_object_get(lease, "spec"), "holderIdentity");
  if (st != 200 || !holder || strcmp(holder, o->identity)) {
    rs->done = true; /* not ours (any more): nothing to give up */
    return;
  }
  json_t *spec = json_object_get(lease, "spec");
  json_object_set_new(spec, "holderIdentity", json_string(""));
  json_object_set_new(spec, "leaseDurationSeconds", json_integer(1));
  char path[1024];
  lease_path(o, path, sizeof path);
  kc_req_opts opts = {.timeout_ms = LEASE_TIMEOUT_MS, .priority = true};
  if (kc_start(o->c, "PUT", path, NULL, lease, &opts, on_released, rs, &rs->req, NULL) < 0) rs->done = true;
}

void op_release(op *o) {
  op_cancel_jobs(o);
  if (o->lease_req) {
    kc_cancel(o->c, o->lease_req);
    o->lease_req = NULL;
  }
  if (!o->leader) return;
  o->leader = false;
  release_state rs = {o, NULL, false};
  char path[1024];
  lease_path(o, path, sizeof path);
  kc_req_opts opts = {.timeout_ms = LEASE_TIMEOUT_MS, .priority = true};
  if (kc_start(o->c, "GET", path, NULL, NULL, &opts, on_release_read, &rs, &rs.req, NULL) < 0) return;
  int64_t end = pp_clock_mono_ms() + 2 * LEASE_TIMEOUT_MS + 500;
  while (!rs.done && pp_clock_mono_ms() < end) kc_poll(o->c, 100);
  if (rs.req) kc_cancel(o->c, rs.req); /* its callback points here: it must not run later */
}
