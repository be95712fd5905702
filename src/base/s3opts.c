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

/* a path of non-empty [A-Za-z0-9._-] parts that do not start with '.' (so no "." or ".."),
 * joined by '/', an optional trailing '/', up to 512 bytes */
static bool prefix_ok(const char *p) {
  size_t n = strlen(p);
  if (n > 512 || p[0] == '/') return false;
  bool part_start = true;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (c == '/') {
      if (part_start) return false; /* "a//b" */
      part_start = true;
      continue;
    }
    if (part_start && c == '.') return false;
    part_start = false;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      return false;
  }
  return true;
}

/* http(s)://host[:port] with no path (trailing slashes aside), query, user or odd bytes */
static bool endpoint_ok(const char *e) {
  const char *h = !strncmp(e, "http://", 7) ? e + 7 : !strncmp(e, "https://", 8) ? e + 8 : NULL;
  if (!h || !*h || *h == '/' || strlen(e) > 512) return false;
  const char *end = h + strlen(h);
  while (end > h && end[-1] == '/') end--;
  for (const char *c = h; c < end; c++)
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
                      "object store prefix: want up to 512 bytes of parts of A-Z, a-z, 0-9, '.', '_' and '-' joined by '/' (no empty part, none starting with '.')");
  if (region && !region_ok(region)) return pp_err_set(err, PP_EINVAL, "object store region: want 1 to 64 of a-z, 0-9 and '-'");
  return 0;
}
