/* metrics: the one writer of the Prometheus text exposition format (version 0.0.4), used by
 * the collector's and the operator's /metrics. It appends to a pp_buf (so the caller's cap and
 * out-of-memory handling apply; check the buffer once at the end).
 *
 * pp_metrics_head writes a family's `# HELP name help` and `# TYPE name type` lines (help is
 * written as given: callers pass fixed text, without backslashes or newlines). A sample line is
 * `name{k1="v1",k2="v2"} value` (no braces without labels). Label values are escaped as the
 * format requires: backslash as \\, double quote as \", newline as \n; the format is UTF-8, so
 * invalid UTF-8 bytes are replaced with U+FFFD the way browsers do (pp_utf8_sanitize). Label
 * names are the caller's fixed identifiers and are written as given. Values: integers in
 * decimal, doubles with %.17g (round-trips exactly; NaN and infinities as Prometheus spells
 * them: NaN, +Inf, -Inf).
 */
#ifndef PP_METRICS_H
#define PP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct pp_metric_label {
  const char *name;
  const char *value; /* NULL is written as "" */
} pp_metric_label;

void pp_metrics_head(pp_buf *b, const char *name, const char *type, const char *help);
/* Appends value escaped for a label value (without the quotes). */
void pp_metrics_escape(pp_buf *b, const char *value);
void pp_metrics_u64(pp_buf *b, const char *name, const pp_metric_label *labels, size_t nlabels, uint64_t v);
void pp_metrics_f64(pp_buf *b, const char *name, const pp_metric_label *labels, size_t nlabels, double v);

#endif
