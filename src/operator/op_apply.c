/* Writes of the operator: server-side apply, status, conditions; see op_int.h. */
#include "op_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void op_now_rfc3339(char *buf, size_t n, bool micro) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  size_t w = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
  if (micro) snprintf(buf + w, n - w, ".%06ldZ", ts.tv_nsec / 1000);
  else snprintf(buf + w, n - w, "Z");
}

/* Server-side apply of obj at path (collection path + name), as manager, forced. ret_obj (may
 * be NULL) receives the object as the server now has it; ret_status the HTTP status. */
int op_apply_obj(op *o, const char *path, const char *manager, const json_t *obj, json_t **ret_obj, int *ret_status,
                     pp_err *err) {
  char url[2048];
  snprintf(url, sizeof url, "%s?fieldManager=%s&force=true", path, manager);
  json_t *resp = NULL;
  int st = kc_do(o->c, "PATCH", url, "application/apply-patch+yaml", obj, ret_obj ? &resp : NULL, err);
  if (ret_status) *ret_status = st;
  bool ok = st == 200 || st == 201;
  if (ret_obj) *ret_obj = ok ? resp : NULL;
  if (!ok) json_decref(resp);
  if (st < 0) return st;
  return ok ? 0 : PP_EIO;
}

int op_apply(op *o, const char *path, const char *manager, const json_t *obj, pp_err *err) {
  return op_apply_obj(o, path, manager, obj, NULL, NULL, err);
}

const char *op_resource_path(const char *kind) {
  if (!strcmp(kind, "Service")) return "/api/v1/namespaces/%s/services/%s";
  if (!strcmp(kind, "PersistentVolumeClaim")) return "/api/v1/namespaces/%s/persistentvolumeclaims/%s";
  if (!strcmp(kind, "ConfigMap")) return "/api/v1/namespaces/%s/configmaps/%s";
  if (!strcmp(kind, "StatefulSet")) return "/apis/apps/v1/namespaces/%s/statefulsets/%s";
  return NULL;
}

/* A condition, keeping lastTransitionTime when the status did not change. */
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

/* Writes status through the status subresource when it differs from the object's. */
int op_write_status(op *o, const char *coll, const json_t *obj, const char *kind, json_t *status, pp_err *err) {
  int r = 0;
  if (!json_equal(status, json_object_get(obj, "status"))) {
    char path[1024];
    snprintf(path, sizeof path, GROUP_PATH "/namespaces/%s/%s/%s/status", str(md(obj), "namespace"), coll, str(md(obj), "name"));
    json_t *body = json_pack("{s:s,s:s,s:{s:s,s:s},s:O}", "apiVersion", "resources.cattle.io/v1alpha1", "kind", kind,
                             "metadata", "name", str(md(obj), "name"), "namespace", str(md(obj), "namespace"), "status", status);
    int st = 0;
    r = op_apply_obj(o, path, "pprof-operator", body, NULL, &st, err);
    json_decref(body);
    if (r == 0) o->status_writes++;
    if (st == 404) r = 0; /* deleted since the cache saw it: its DELETED event is on the way */
  }
  json_decref(status);
  return r;
}
