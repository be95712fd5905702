/* Leader election on the Lease <name>-leader; see operator.h. */
#include "op_int.h"

#include <stdio.h>
#include <string.h>

#include "../base/log.h"

void op_lease_step(op *o, int64_t now) {
  if (now < o->next_lease_ms) return;
  o->next_lease_ms = now + RETRY_MS;
  char path[1024], ts[64];
  snprintf(path, sizeof path, "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s-leader", o->ns, o->name);
  op_now_rfc3339(ts, sizeof ts, true);
  json_t *lease = NULL;
  pp_err err = {0};
  int st = kc_do(o->c, "GET", path, NULL, NULL, &lease, &err);
  bool was = o->leader;
  if (st == 404) {
    char coll[1024];
    snprintf(coll, sizeof coll, "/apis/coordination.k8s.io/v1/namespaces/%s/leases", o->ns);
    char lname[300];
    snprintf(lname, sizeof lname, "%s-leader", o->name);
    json_t *body = json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s,s:i,s:s,s:s,s:i}}", "apiVersion", "coordination.k8s.io/v1", "kind",
                             "Lease", "metadata", "name", lname, "namespace", o->ns, "spec", "holderIdentity", o->identity,
                             "leaseDurationSeconds", LEASE_SECONDS, "acquireTime", ts, "renewTime", ts, "leaseTransitions", 0);
    st = kc_do(o->c, "POST", coll, NULL, body, NULL, &err);
    json_decref(body);
    if (st == 201) {
      o->leader = true;
      o->renewed_ms = now;
    }
  } else if (st == 200) {
    json_t *spec = json_object_get(lease, "spec");
    const char *holder = str(spec, "holderIdentity");
    char record[512];
    snprintf(record, sizeof record, "%s|%s", holder ? holder : "", str(spec, "renewTime") ?: "");
    /* expiry is judged by when we saw the record change, not by the other replica's clock */
    if (strcmp(record, o->observed)) {
      snprintf(o->observed, sizeof o->observed, "%s", record);
      o->observed_ms = now;
    }
    bool mine = holder && !strcmp(holder, o->identity);
    bool expired = !holder || !*holder || now - o->observed_ms > (int64_t)LEASE_SECONDS * 1000;
    if (mine || expired) {
      json_object_set_new(spec, "holderIdentity", json_string(o->identity));
      json_object_set_new(spec, "leaseDurationSeconds", json_integer(LEASE_SECONDS));
      json_object_set_new(spec, "renewTime", json_string(ts));
      if (!mine) {
        json_object_set_new(spec, "acquireTime", json_string(ts));
        json_object_set_new(spec, "leaseTransitions",
                            json_integer(json_integer_value(json_object_get(spec, "leaseTransitions")) + 1));
      }
      st = kc_do(o->c, "PUT", path, NULL, lease, NULL, &err); /* resourceVersion guards the race */
      if (st == 200) {
        o->leader = true;
        o->renewed_ms = now;
      }
    } else {
      o->leader = false;
    }
  }
  json_decref(lease);
  if (o->leader && now - o->renewed_ms > RENEW_DEADLINE_MS) {
    pp_log(PP_LOG_ERROR, "leader election lost: could not renew the lease for %d s", RENEW_DEADLINE_MS / 1000);
    o->leader = false;
  }
  if (o->leader != was) {
    o->leader_transitions++;
    pp_log(PP_LOG_INFO, "%s", o->leader ? "became the leader" : "no longer the leader");
    if (o->leader) {
      /* a new leader starts from the full picture */
      kq_add(o->q, MONITORS_KEY);
      const char *k;
      json_t *s;
      json_object_foreach((json_t *)inf_items(o->inf[I_STACKS]), k, s)
      op_enqueue_stack(o, str(md(s), "namespace"), str(md(s), "name"));
    }
  }
}

void op_release(op *o) {
  if (!o->leader) return;
  char path[1024];
  snprintf(path, sizeof path, "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s-leader", o->ns, o->name);
  json_t *lease = NULL;
  if (kc_do(o->c, "GET", path, NULL, NULL, &lease, NULL) == 200) {
    json_t *spec = json_object_get(lease, "spec");
    json_object_set_new(spec, "holderIdentity", json_string(""));
    json_object_set_new(spec, "leaseDurationSeconds", json_integer(1));
    kc_do(o->c, "PUT", path, NULL, lease, NULL, NULL);
  }
  json_decref(lease);
  o->leader = false;
}
