/* /api/v1/pgo and /api/v1/regressions. See web_api.h; docs/api.md documents both.
 *
 * Both take the selection (and, for regressions, its base) through web_api_merge, so they keep
 * the data endpoints' rules: the same selection parameters, the same memory budget (the second
 * merge gets what the first left), the same errors. */
#include "web_api.h"

#include "../base/htab.h"
#include "web_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest keep_locations: Go stacks are capped far below (the decoder's max_stack_depth). */
#define PGO_MAX_KEEP 4096
/* Largest regressions limit (rows of the answer). */
#define REGRESSIONS_MAX_LIMIT 10000

/* ---- /api/v1/pgo ------------------------------------------------------------------------------ */

/* A boolean parameter: dflt when absent; true/false/1/0, else *bad. */
static bool bool_param(const web_params *p, const char *k, bool dflt, bool *bad) {
  const char *v = web_param(p, k);
  if (!v) return dflt;
  if (!strcmp(v, "true") || !strcmp(v, "1")) return true;
  if (!strcmp(v, "false") || !strcmp(v, "0")) return false;
  *bad = true;
  return dflt;
}

/* The merged CPU profile of the selection, trimmed (pprof_pgo_trim) as keep_locations (default
 * 5, 0 = every location) and aggregate_callees (default true) say, gzip pprof named
 * default.pgo, the name `go build -pgo=auto` looks for. */
void web_api_pgo(const web_ctx *x, const web_params *p, web_resp *out) {
  /* the type defaults to cpu and may only be cpu: the compiler reads CPU samples alone */
  const char *type = web_param(p, "type");
  if (type && strcmp(type, "cpu")) {
    web_resp_error(out, 400, "bad_data", "type: only cpu (go build -pgo reads CPU profiles)");
    return;
  }
  web_params q = *p;
  if (!type) {
    if (q.n >= WEB_MAX_PARAMS) {
      web_resp_error(out, 400, "bad_data", "too many parameters");
      return;
    }
    q.k[q.n] = "type";
    q.v[q.n] = "cpu";
    q.n++;
  }
  bool bad = false;
  long keep = web_api_num_param(p, "keep_locations", 5, 0, PGO_MAX_KEEP, &bad);
  if (bad) {
    web_resp_error(out, 400, "bad_data", "keep_locations: want 0..4096 (0 = every location; default 5)");
    return;
  }
  bool agg = bool_param(p, "aggregate_callees", true, &bad);
  if (bad) {
    web_resp_error(out, 400, "bad_data", "aggregate_callees: want true or false (default true)");
    return;
  }
  pprof_profile *merged = NULL, *trimmed = NULL;
  if (web_api_merge(x, &q, false, x->budget, &merged, NULL, out) < 0) return;
  pp_err err = {0};
  size_t used = web_api_profile_bytes(merged);
  pprof_pgo_opts o = {.keep_locations = (size_t)keep, .aggregate_callees = agg};
  int r = used < x->budget ? pprof_pgo_trim(merged, &o, x->budget - used, &trimmed, &err) : PP_ELIMIT;
  pprof_free(merged);
  if (r == PP_ELIMIT) {
    char msg[300];
    snprintf(msg, sizeof msg,
             "trimming the merged profile needed more than this query's memory budget of %.1f MiB "
             "(--web-query-memory): narrow the selection",
             (double)x->budget / 1048576);
    web_resp_error(out, 422, "execution", msg);
    return;
  }
  if (r < 0) {
    web_resp_error(out, 500, "internal", err.msg);
    return;
  }
  uint8_t *buf;
  size_t len;
  r = pprof_encode(trimmed, 6, &buf, &len, &err);
  pprof_free(trimmed);
  if (r < 0) {
    web_resp_error(out, 500, "internal", err.msg);
    return;
  }
  pp_buf wb;
  pp_buf_init(&wb, x->budget);
  pp_buf_put(&wb, buf, len);
  free(buf);
  web_resp_buf(out, 200, "application/octet-stream", &wb);
  pp_buf_free(&wb);
  if (out->status == 200) snprintf(out->disposition, sizeof out->disposition, "attachment; filename=\"default.pgo\"");
}

/* ---- /api/v1/regressions ---------------------------------------------------------------------- */

typedef struct regression {
  const char *name;
  int64_t flat, cum, base_flat, base_cum;
  double change;
} regression;

static int cmp_change(const void *a, const void *b) {
  const regression *x = a, *y = b;
  if (x->change != y->change) return x->change > y->change ? -1 : 1;
  return strcmp(x->name, y->name);
}

static double share(int64_t v, int64_t total) { return total ? (double)v / (double)total : 0; }

/* Shares as JSON numbers: 17 significant digits give the double back exactly. */
static void put_share(pp_buf *b, const char *key, double v) {
  pp_buf_printf(b, ",\"%s\":%.17g", key, isfinite(v) ? v : 0);
}

/* The main selection is "after", the base ("base_" parameters, as render's) "before"; one row per
 * function of either, sorted by the change of its flat share (by=cum: cum share), grown most
 * first, then by name; limit rows (default 20). */
void web_api_regressions(const web_ctx *x, const web_params *p, web_resp *out) {
  bool bad = false;
  long limit = web_api_num_param(p, "limit", 20, 1, REGRESSIONS_MAX_LIMIT, &bad);
  if (bad) {
    web_resp_error(out, 400, "bad_data", "limit: want 1..10000 functions (default 20)");
    return;
  }
  const char *by = web_param(p, "by");
  if (by && strcmp(by, "flat") && strcmp(by, "cum")) {
    web_resp_error(out, 400, "bad_data", "by: want flat or cum (default flat)");
    return;
  }
  bool by_cum = by && !strcmp(by, "cum");
  pprof_profile *after = NULL, *before = NULL;
  size_t nafter = 0, nbefore = 0;
  if (web_api_merge(x, p, false, x->budget, &after, &nafter, out) < 0) return;
  size_t used = web_api_profile_bytes(after);
  regression *rows = NULL;
  pprof_top ta, tb;
  bool have_ta = false, have_tb = false;
  htab idx;
  memset(&idx, 0, sizeof idx);
  pp_buf b;
  pp_buf_init(&b, x->budget);
  int r = used < x->budget ? web_api_merge(x, p, true, x->budget - used, &before, &nbefore, out) : -2;
  if (r == -2) {
    web_resp_error(out, 422, "execution", "the selection alone took this query's memory budget (--web-query-memory): narrow it");
    goto done;
  }
  if (r < 0) goto done;
  if (r == 1) {
    web_resp_error(out, 400, "bad_data",
                   "regressions compares two selections: give the base (\"before\") with base_ parameters, e.g. "
                   "base_version=v1 or base_from=..&base_to=..");
    goto done;
  }
  char why[600];
  int si = web_api_pick_sample(after, web_param(p, "sample"), why, sizeof why), bsi = -1;
  if (si >= 0 && (bsi = web_api_pick_sample(before, pprof_str(after, after->sample_type[si].type), why, sizeof why)) < 0)
    snprintf(why, sizeof why, "the base has no sample type %s", pprof_str(after, after->sample_type[si].type));
  if (si < 0 || bsi < 0) {
    web_resp_error(out, 400, "bad_data", why);
    goto done;
  }
  pp_err err = {0};
  if (pprof_top_compute(after, si, &ta, &err) < 0) goto oom;
  have_ta = true;
  if (pprof_top_compute(before, bsi, &tb, &err) < 0) goto oom;
  have_tb = true;
  /* the union of both sides' functions, joined by name */
  size_t cap = ta.nfuncs + tb.nfuncs;
  if (!(rows = calloc(cap + 1, sizeof *rows)) || htab_init(&idx, cap + 16, 0) < 0) goto oom;
  size_t n = 0;
  for (int side = 0; side < 2; side++) {
    const pprof_top *t = side ? &tb : &ta;
    for (size_t i = 0; i < t->nfuncs; i++) {
      uint32_t k;
      int added = htab_intern(&idx, t->funcs[i].name, strlen(t->funcs[i].name), &k);
      if (added < 0) goto oom;
      if (added == 1) rows[n++].name = t->funcs[i].name;
      if (side) rows[k].base_flat = t->funcs[i].flat, rows[k].base_cum = t->funcs[i].cum;
      else rows[k].flat = t->funcs[i].flat, rows[k].cum = t->funcs[i].cum;
    }
  }
  for (size_t i = 0; i < n; i++)
    rows[i].change = by_cum ? share(rows[i].cum, ta.total) - share(rows[i].base_cum, tb.total)
                            : share(rows[i].flat, ta.total) - share(rows[i].base_flat, tb.total);
  qsort(rows, n, sizeof *rows, cmp_change);
  pp_buf_puts(&b, "{\"status\":\"success\",\"data\":{\"sampleType\":{\"type\":");
  web_json_str(&b, pprof_str(after, after->sample_type[si].type));
  pp_buf_puts(&b, ",\"unit\":");
  web_json_str(&b, pprof_str(after, after->sample_type[si].unit));
  pp_buf_printf(&b, "},\"by\":\"%s\",\"total\":%lld,\"baseTotal\":%lld,\"profiles\":%zu,\"baseProfiles\":%zu,\"functions\":[",
                by_cum ? "cum" : "flat", (long long)ta.total, (long long)tb.total, nafter, nbefore);
  for (size_t i = 0; i < n && i < (size_t)limit; i++) {
    const regression *g = &rows[i];
    pp_buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
    web_json_str(&b, g->name);
    pp_buf_printf(&b, ",\"flat\":%lld,\"cum\":%lld,\"baseFlat\":%lld,\"baseCum\":%lld", (long long)g->flat, (long long)g->cum,
                  (long long)g->base_flat, (long long)g->base_cum);
    put_share(&b, "flatShare", share(g->flat, ta.total));
    put_share(&b, "baseFlatShare", share(g->base_flat, tb.total));
    put_share(&b, "cumShare", share(g->cum, ta.total));
    put_share(&b, "baseCumShare", share(g->base_cum, tb.total));
    put_share(&b, "change", g->change);
    pp_buf_put(&b, "}", 1);
  }
  pp_buf_printf(&b, "],\"truncated\":%s}}", n > (size_t)limit ? "true" : "false");
  web_resp_buf(out, 200, "application/json", &b);
  goto done;
oom:
  web_resp_error(out, 500, "internal", "out of memory");
done:
  pp_buf_free(&b);
  htab_free(&idx);
  free(rows);
  if (have_ta) pprof_top_release(&ta);
  if (have_tb) pprof_top_release(&tb);
  pprof_free(after);
  pprof_free(before);
}
