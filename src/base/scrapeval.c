/* Scrape setting rules; see scrapeval.h. */
#include "scrapeval.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static bool bad_char(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p <= 0x20 || *p == 0x7f || *p == '?' || *p == '#') return true;
  return false;
}

int sv_check_endpoint(const char *url, pp_err *err) {
  if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)))
    return pp_err_set(err, PP_EINVAL, "\"%.100s\" must be an http:// or https:// URL", url ? url : "");
  const char *host = url + (url[4] == 's' ? 8 : 7);
  if (!*host || *host == '/' || *host == ':')
    return pp_err_set(err, PP_EINVAL, "\"%.100s\" names no host", url);
  if (strlen(url) > SV_MAX_URL_LEN || bad_char(url))
    return pp_err_set(err, PP_EINVAL, "\"%.100s%s\" must be a URL of at most %d characters without spaces, ? or #", url,
                      strlen(url) > 100 ? "..." : "", SV_MAX_URL_LEN);
  return 0;
}

int sv_check_path(const char *path, pp_err *err) {
  if (!path || path[0] != '/' || strlen(path) > SV_MAX_URL_LEN || bad_char(path))
    return pp_err_set(err, PP_EINVAL, "\"%.100s%s\" must start with / and hold at most %d characters, no spaces, ? or #",
                      path ? path : "", path && strlen(path) > 100 ? "..." : "", SV_MAX_URL_LEN);
  return 0;
}

int sv_check_seconds(bool cpu, double s, pp_err *err) {
  double min = cpu ? 1 : 0;
  /* range first: casting an out-of-range double to an integer is undefined */
  if (!(s >= min && s <= SV_MAX_SECONDS)) return pp_err_set(err, PP_EINVAL, "%g is outside %g..%d", s, min, SV_MAX_SECONDS);
  if (s != floor(s)) return pp_err_set(err, PP_EINVAL, "%g must be a whole number of seconds", s);
  return 0;
}

static int range(const char *what, double s, pp_err *err) {
  if (!(s >= SV_MIN_INTERVAL_SECONDS && s <= SV_MAX_INTERVAL_SECONDS))
    return pp_err_set(err, PP_EINVAL, "%s of %g s is outside %g..%d s", what, s, SV_MIN_INTERVAL_SECONDS, SV_MAX_INTERVAL_SECONDS);
  return 0;
}

int sv_check_interval(double s, pp_err *err) { return range("an interval", s, err); }
int sv_check_timeout(double s, pp_err *err) { return range("a timeout", s, err); }

int sv_check_name(const char *name, pp_err *err) {
  size_t n = name ? strlen(name) : 0;
  if (n < 1 || n > SV_MAX_NAME_LEN) return pp_err_set(err, PP_EINVAL, "a name must be 1..%d characters", SV_MAX_NAME_LEN);
  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    if (*p < 0x20 || *p == 0x7f) return pp_err_set(err, PP_EINVAL, "control characters are not allowed in a name");
  return 0;
}

unsigned sv_shard_of(const char *endpoint, unsigned shards) {
  if (shards <= 1 || !endpoint) return 0;
  const char *a = strstr(endpoint, "://");
  a = a ? a + 3 : endpoint;
  uint64_t h = 14695981039346656037ull;
  for (; *a && *a != '/'; a++) h = (h ^ (uint8_t)*a) * 1099511628211ull;
  return (unsigned)(h % shards);
}
