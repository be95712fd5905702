/* The object store's names (s3opts.h). */
#include "s3opts.h"

#include <stdbool.h>
#include <string.h>

static bool bucket_ok(const char *b) {
  size_t n = strlen(b);
  if (n < 3 || n > 63) return false;
  for (size_t i = 0; i < n; i++)
    if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= '0' && b[i] <= '9') || b[i] == '.' || b[i] == '-')) return false;
  return b[0] != '.' && b[0] != '-' && b[n - 1] != '.' && b[n - 1] != '-';
}

/* a path of non-empty [A-Za-z0-9._-] segments, none "." or "..", an optional trailing '/' */
static bool prefix_ok(const char *p) {
  size_t n = strlen(p);
  if (n > 256 || p[0] == '/') return false;
  const char *seg = p;
  for (size_t i = 0; i <= n; i++) {
    char c = p[i];
    if (c == '/' || c == '\0') {
      size_t len = (size_t)(p + i - seg);
      if (len == 0 && !(c == '\0' && (i == 0 || p[i - 1] == '/'))) return false; /* "a//b" */
      if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.')) return false;
      seg = p + i + 1;
      continue;
    }
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      return false;
  }
  return true;
}

/* http(s)://host[:port] with no path, query, user or odd bytes */
static bool endpoint_ok(const char *e) {
  const char *h = !strncmp(e, "http://", 7) ? e + 7 : !strncmp(e, "https://", 8) ? e + 8 : NULL;
  if (!h || !*h || strlen(e) > 512) return false;
  for (const char *c = h; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' || *c == '-' ||
          *c == ':' || *c == '[' || *c == ']'))
      return false;
  return true;
}

static bool region_ok(const char *r) {
  size_t n = strlen(r);
  if (n == 0 || n > 64) return false;
  for (size_t i = 0; i < n; i++)
    if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-')) return false;
  return true;
}

int pp_s3_check(const char *endpoint, const char *bucket, const char *prefix, const char *region, pp_err *err) {
  if (!endpoint || !endpoint_ok(endpoint))
    return pp_err_set(err, PP_EINVAL, "object store endpoint: want http://host[:port] or https://host[:port], without a path");
  if (!bucket || !bucket_ok(bucket))
    return pp_err_set(err, PP_EINVAL, "object store bucket: want 3 to 63 of a-z, 0-9, '.' and '-'");
  if (prefix && !prefix_ok(prefix))
    return pp_err_set(err, PP_EINVAL,
                      "object store prefix: want up to 256 bytes of A-Z, a-z, 0-9, '.', '_', '-' and '/' (no \"..\", no empty part)");
  if (region && !region_ok(region)) return pp_err_set(err, PP_EINVAL, "object store region: want 1 to 64 of a-z, 0-9 and '-'");
  return 0;
}
