/* The Prometheus text format writer. See metrics.h. */
#include "metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

void pp_metrics_head(pp_buf *b, const char *name, const char *type, const char *help) {
  pp_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void escape_valid(pp_buf *b, const char *s, size_t n) {
  size_t run = 0; /* bytes copied as they are, in one append */
  for (size_t i = 0; i < n; i++) {
    const char *e = s[i] == '\\' ? "\\\\" : s[i] == '"' ? "\\\"" : s[i] == '\n' ? "\\n" : NULL;
    if (!e) continue;
    pp_buf_put(b, s + run, i - run);
    pp_buf_put(b, e, 2);
    run = i + 1;
  }
  pp_buf_put(b, s + run, n - run);
}

void pp_metrics_escape(pp_buf *b, const char *value) {
  const char *s = value ? value : "";
  size_t n = strlen(s);
  if (pp_utf8_valid(s, n)) {
    escape_valid(b, s, n);
    return;
  }
  size_t m = 0;
  char *clean = pp_utf8_sanitize(s, n, &m);
  if (!clean) {
    b->failed = true; /* out of memory: the buffer's sticky failure, as for any append */
    return;
  }
  escape_valid(b, clean, m);
  free(clean);
}

static void name_labels(pp_buf *b, const char *name, const pp_metric_label *labels, size_t nlabels) {
  pp_buf_puts(b, name);
  if (!nlabels) return;
  pp_buf_put(b, "{", 1);
  for (size_t i = 0; i < nlabels; i++) {
    if (i) pp_buf_put(b, ",", 1);
    pp_buf_puts(b, labels[i].name);
    pp_buf_put(b, "=\"", 2);
    pp_metrics_escape(b, labels[i].value);
    pp_buf_put(b, "\"", 1);
  }
  pp_buf_put(b, "}", 1);
}

void pp_metrics_u64(pp_buf *b, const char *name, const pp_metric_label *labels, size_t nlabels, uint64_t v) {
  name_labels(b, name, labels, nlabels);
  pp_buf_printf(b, " %" PRIu64 "\n", v);
}

void pp_metrics_f64(pp_buf *b, const char *name, const pp_metric_label *labels, size_t nlabels, double v) {
  name_labels(b, name, labels, nlabels);
  if (isnan(v)) pp_buf_puts(b, " NaN\n");
  else if (isinf(v)) pp_buf_puts(b, v > 0 ? " +Inf\n" : " -Inf\n");
  else pp_buf_printf(b, " %.17g\n", v);
}
