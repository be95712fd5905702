#include "units.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int pp_parse_size(const char *s, uint64_t *ret, pp_err *err) {
  if (!s || !*s || *s == '-' || *s == '+')
    return pp_err_set(err, PP_EINVAL, "invalid size \"%s\": want a number of bytes like 5GiB",
                      s ? s : "");
  errno = 0;
  char *end;
  double v = strtod(s, &end);
  if (errno || end == s || v < 0 || !isfinite(v))
    return pp_err_set(err, PP_EINVAL, "invalid size \"%s\": want a number of bytes like 5GiB", s);
  static const struct {
    const char *suffix;
    double mul;
  } units[] = {{"", 1},
               {"B", 1},
               {"kB", 1e3},
               {"KB", 1e3},
               {"KiB", 1024.0},
               {"MB", 1e6},
               {"MiB", 1048576.0},
               {"GB", 1e9},
               {"GiB", 1073741824.0},
               {"TB", 1e12},
               {"TiB", 1099511627776.0},
               {"Ki", 1024.0},
               {"Mi", 1048576.0},
               {"Gi", 1073741824.0},
               {"Ti", 1099511627776.0},
               {"k", 1e3},
               {"M", 1e6},
               {"G", 1e9},
               {"T", 1e12}};
  for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
    if (strcmp(end, units[i].suffix) == 0) {
      double b = v * units[i].mul;
      if (b >= 1.8e19) return pp_err_set(err, PP_EINVAL, "size \"%s\" is too large", s);
      *ret = (uint64_t)b;
      return 0;
    }
  }
  return pp_err_set(
      err, PP_EINVAL,
      "invalid size \"%s\": unknown unit \"%s\" (use B, KiB, MiB, GiB, TiB, kB, MB, GB, TB)", s,
      end);
}

int pp_parse_duration(const char *s, double *ret, pp_err *err) {
  static const struct {
    const char *suffix;
    double mul;
  } units[] = {{"ms", 1e-3}, {"s", 1},      {"m", 60},      {"h", 3600},
               {"d", 86400}, {"w", 604800}, {"y", 31536000}}; /* "ms" before "m" */
  if (!s || !*s || !(isdigit((unsigned char)*s) || *s == '.'))
    return pp_err_set(err, PP_EINVAL, "invalid duration \"%s\": want e.g. 90s, 15m, 1h30m, 15d", s ? s : "");
  /* a plain number is seconds; otherwise number+unit pairs, summed, as Go's time.ParseDuration */
  double total = 0;
  const char *p = s;
  for (int part = 0; *p; part++) {
    if (!(isdigit((unsigned char)*p) || *p == '.'))
      return pp_err_set(err, PP_EINVAL, "invalid duration \"%s\": want a number at \"%s\"", s, p);
    /* digits with at most one point: no signs, exponents, hex or inf, which strtod would take */
    const char *end = p;
    bool dot = false;
    while (isdigit((unsigned char)*end) || (*end == '.' && !dot && (dot = true))) end++;
    char num[64];
    size_t n = (size_t)(end - p);
    if (n >= sizeof num || (n == 1 && *p == '.'))
      return pp_err_set(err, PP_EINVAL, "invalid duration \"%s\": bad number at \"%s\"", s, p);
    memcpy(num, p, n);
    num[n] = '\0';
    double v = strtod(num, NULL);
    p = end;
    if (!*p && part == 0) {
      total = v;
      break;
    }
    size_t i = 0;
    for (; i < sizeof units / sizeof *units; i++)
      if (!strncmp(p, units[i].suffix, strlen(units[i].suffix))) break;
    if (i == sizeof units / sizeof *units)
      return pp_err_set(err, PP_EINVAL,
                        "invalid duration \"%s\": %s unit at \"%s\" (use ms, s, m, h, d, w, y)", s,
                        *p ? "unknown" : "missing", p);
    p += strlen(units[i].suffix);
    total += v * units[i].mul;
  }
  if (!isfinite(total)) return pp_err_set(err, PP_EINVAL, "duration \"%s\" is too large", s);
  *ret = total;
  return 0;
}
