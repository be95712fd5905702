/* units: parsing of human sizes and durations from flags and config ("5GiB", "64MB", "15d",
 * "90s"). Both reject negatives, overflow, trailing garbage and unknown suffixes with
 * PP_EINVAL. */
#ifndef PP_UNITS_H
#define PP_UNITS_H

#include <stdint.h>

#include "pp_err.h"

/* Bytes: a plain number, or with B, kB/KB/KiB, MB/MiB, GB/GiB, TB/TiB (k/M/G/T = 1000^n,
 * Ki/Mi/Gi/Ti = 1024^n). */
int pp_parse_size(const char *s, uint64_t *ret_bytes, pp_err *err);

/* Seconds: a plain number of seconds, or numbers each with a unit of ms, s, m, h, d, w, y
 * (Prometheus' units), summed as Go's durations are: "90s", "1h30m", "1m30.5s", "15d". */
int pp_parse_duration(const char *s, double *ret_seconds, pp_err *err);

#endif
