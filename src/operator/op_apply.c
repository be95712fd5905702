/* Writes of the operator: server-side apply, status, conditions; see op_int.h. */
#include "op_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void op_now_rfc3339(char *buf, size_t n, bool micro) {
  struct timespec ts = pp_clock_timespec(pp_clock_real_ns());
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  size_t w = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
  if (micro) snprintf(buf + w, n - w, ".%06ldZ", ts.tv_nsec / 1000);
  else snprintf(buf + w, n - w, "Z");
}

typedef struct apply_call {
  op_call_fn fn;
  void *arg;
} apply_call;

/* The apply's answer: anything but 200/201 fails the job; then the caller's callback. */
static void on_applied(op_job *j, void *arg, int status, json_t *body, const pp_err *err) {
  const apply_call *a = arg;
  if (status != 200 && status != 201) op_job_fail(j, status < 0 ? status : PP_EIO, "%s", err->msg);
  if (a->fn) a->fn(j, a->arg, status, body, err);
}

void op_apply(op_job *j, const char *path, const char *manager, const json_t *obj, op_call_fn fn, void *arg) {
  char url[2048];
  snprintf(url, sizeof url, "%s?fieldManager=%s&force=true", path, manager);
  apply_call *a = malloc(sizeof *a);
  if (!a) {
    op_job_fail(j, PP_ENOMEM, "out of memory");
    return;
  }
  *a = (apply_call){fn, arg};
  op_call_start(j, "PATCH", url, "application/apply-patch+yaml", obj, on_applied, a, free);
}

const char *op_resource_path(const char *kind) {
  if (!strcmp(kind, "Service")) return "/api/v1/namespaces/%s/services/%s";
  if (!strcmp(kind, "PersistentVolumeClaim")) return "/api/v1/namespaces/%s/persistentvolumeclaims/%s";
  if (!strcmp(kind, "ConfigMap")) return "/api/v1/namespaces/%s/configmaps/%s";
  if (!strcmp(kind, "StatefulSet")) return "/apis/apps/v1/namespaces/%s/statefulsets/%s";
  if (!strcmp(kind, "Deployment")) return "/apis/apps/v1/namespaces/%s/deployments/%s";
  return NULL;
}

json_t *op_condition(const json_t *old_status, const char *type, bool ok, const char *reason, const char *msg,
                     json_int_t gen) {
  const char *ltt = NULL;
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(old_status, "conditions"), i, c) {
    const char *t = str(c, "type"), *s = str(c, "status");
    if (t && !strcmp(t, type) && s && !strcmp(s, ok ? "True" : "False")) ltt = str(c, "lastTransitionTime");
  }
  char now[64];
  op_now_rfc3339(now, sizeof now, false);
  return json_pack("{s:s,s:s,s:s,s:s,s:I,s:s}", "type", type, "status", ok ? "True" : "False", "reason", reason, "message",
                   msg, "observedGeneration", gen, "lastTransitionTime", ltt ? ltt : now);
}

static void on_status_written(op_job *j, void *arg, int status, json_t *body, const pp_err *err) {
  if (status == 200 || status == 201) j->o->status_writes++;
  /* 404: deleted since the cache saw it; its DELETED event is on the way */
  else if (status != 404) op_job_fail(j, status < 0 ? status : PP_EIO, "%s", err->msg);
}

void op_write_status(op_job *j, const char *coll, const json_t *obj, const char *kind, json_t *status) {
  if (!json_equal(status, json_object_get(obj, "status"))) {
    char path[1024];
    snprintf(path, sizeof path, GROUP_PATH "/namespaces/%s/%s/%s/status?fieldManager=pprof-operator&force=true",
             str(md(obj), "namespace"), coll, str(md(obj), "name"));
    json_t *body = json_pack("{s:s,s:s,s:{s:s,s:s},s:O}", "apiVersion", "resources.cattle.io/v1alpha1", "kind", kind,
                             "metadata", "name", str(md(obj), "name"), "namespace", str(md(obj), "namespace"), "status", status);
    if (body) op_call_start(j, "PATCH", path, "application/apply-patch+yaml", body, on_status_written, NULL, NULL);
    else op_job_fail(j, PP_ENOMEM, "out of memory");
    json_decref(body);
  }
  json_decref(status);
}
