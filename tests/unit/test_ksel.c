/* Unit tests of label selectors and PprofMonitor port resolution (src/operator/ksel). */
#include "../../src/operator/ksel.h"
#include "tt.h"

static ksel *sel(const char *json) {
  json_t *j = json_loads(json, 0, NULL);
  ksel *s = NULL;
  pp_err err = {0};
  int r = ksel_parse(j, &s, &err);
  json_decref(j);
  if (r) fprintf(stderr, "  %s\n", err.msg);
  return s;
}

static bool match(const char *selector, const char *labels) {
  ksel *s = sel(selector);
  json_t *l = json_loads(labels, 0, NULL);
  bool m = s && ksel_matches(s, l);
  json_decref(l);
  ksel_free(s);
  return m;
}

static void selectors_match_like_kubernetes(void) {
  CHECK(match("{}", "{\"app\":\"x\"}"));
  CHECK(match("null", "{}"));
  CHECK(match("{\"matchLabels\":{\"app\":\"pprof\"}}", "{\"app\":\"pprof\",\"tier\":\"web\"}"));
  CHECK(!match("{\"matchLabels\":{\"app\":\"pprof\"}}", "{\"app\":\"other\"}"));
  CHECK(!match("{\"matchLabels\":{\"app\":\"pprof\"}}", "{}"));
  const char *e = "{\"matchLabels\":{\"app\":\"pprof\"},\"matchExpressions\":["
                  "{\"key\":\"env\",\"operator\":\"In\",\"values\":[\"prod\",\"staging\"]},"
                  "{\"key\":\"canary\",\"operator\":\"DoesNotExist\"},"
                  "{\"key\":\"team\",\"operator\":\"Exists\"},"
                  "{\"key\":\"zone\",\"operator\":\"NotIn\",\"values\":[\"eu-1\"]}]}";
  CHECK(match(e, "{\"app\":\"pprof\",\"env\":\"prod\",\"team\":\"a\"}"));
  CHECK(match(e, "{\"app\":\"pprof\",\"env\":\"staging\",\"team\":\"a\",\"zone\":\"us-1\"}"));
  CHECK(!match(e, "{\"app\":\"pprof\",\"env\":\"dev\",\"team\":\"a\"}")); /* In */
  CHECK(!match(
      e,
      "{\"app\":\"pprof\",\"env\":\"prod\",\"team\":\"a\",\"canary\":\"1\"}")); /* DoesNotExist */
  CHECK(!match(e, "{\"app\":\"pprof\",\"env\":\"prod\"}"));                     /* Exists */
  CHECK(!match(
      e, "{\"app\":\"pprof\",\"env\":\"prod\",\"team\":\"a\",\"zone\":\"eu-1\"}")); /* NotIn */
}

static void bad_selectors_are_errors(void) {
  const char *bad[] = {
      "[]",
      "{\"matchLabels\":[]}",
      "{\"matchLabels\":{\"a\":1}}",
      "{\"matchExpressions\":{}}",
      "{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Gt\",\"values\":[\"1\"]}]}",
      "{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\"}]}",
      "{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\",\"values\":[\"x\"]}]}",
      "{\"matchExpressions\":[{\"operator\":\"Exists\"}]}",
      "{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[1]}]}"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    json_t *j = json_loads(bad[i], 0, NULL);
    ksel *s = NULL;
    pp_err err = {0};
    int r = ksel_parse(j, &s, &err);
    if (r >= 0) fprintf(stderr, "  accepted: %s\n", bad[i]);
    CHECK(r < 0 && s == NULL && err.msg[0]);
    json_decref(j);
  }
}

static int port(const char *ep, const char *svc, const char *slice) {
  json_t *e = json_loads(ep, 0, NULL), *s = json_loads(svc, 0, NULL),
         *p = json_loads(slice, 0, NULL);
  pp_err err = {0};
  int r = ksel_resolve_port(e, s, p, &err);
  json_decref(e);
  json_decref(s);
  json_decref(p);
  return r;
}

static void ports_resolve_both_readings(void) {
  /* Service port 80 named web -> container port 6060 (the seed's example) */
  const char *svc = "{\"spec\":{\"ports\":[{\"name\":\"web\",\"port\":80,\"targetPort\":6060},"
                    "{\"name\":\"metrics\",\"port\":9090,\"targetPort\":\"prom\"}]}}";
  const char *slice = "[{\"name\":\"web\",\"port\":6060},{\"name\":\"metrics\",\"port\":9100}]";
  CHECK_EQ_I64(port("{\"port\":\"web\"}", svc, slice), 6060); /* port = Service port name */
  CHECK_EQ_I64(port("{\"port\":\"metrics\"}", svc, slice),
               9100); /* named targetPort, via the slice */
  CHECK_EQ_I64(port("{\"targetPort\":6060}", svc, slice), 6060);     /* container port number */
  CHECK_EQ_I64(port("{\"targetPort\":\"6060\"}", svc, slice), 6060); /* as a string */
  CHECK_EQ_I64(port("{\"targetPort\":80}", svc, slice),
               6060); /* the seed's reading: Service port */
  CHECK_EQ_I64(port("{\"targetPort\":\"metrics\"}", svc, slice), 9100);
  CHECK(port("{\"port\":\"nope\"}", svc, slice) == PP_EUSAGE);
  CHECK(port("{\"targetPort\":12345}", svc, slice) == PP_EUSAGE);
  CHECK(port("{}", svc, slice) == PP_EUSAGE);
  /* an unnamed single-port Service: slices carry an empty name */
  CHECK_EQ_I64(port("{\"targetPort\":80}",
                    "{\"spec\":{\"ports\":[{\"port\":80,\"targetPort\":6060}]}}",
                    "[{\"name\":\"\",\"port\":6060}]"),
               6060);
}

int main(void) {
  RUN(selectors_match_like_kubernetes);
  RUN(bad_selectors_are_errors);
  RUN(ports_resolve_both_readings);
  return tt_finish();
}
