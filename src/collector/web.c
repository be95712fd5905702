/* The collector's HTTP server. See web.h. */
#include "web.h"

#include "../base/blob.h"
#include "../base/file.h"
#include "../base/htab.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct web {
  struct MHD_Daemon *d;
  web_hooks h;
};

typedef struct params {
  const char *k[WEB_MAX_PARAMS], *v[WEB_MAX_PARAMS];
  size_t n;
  bool too_many, too_long;
} params;

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
  (void)kind;
  params *p = cls;
  if (p->n == WEB_MAX_PARAMS) {
    p->too_many = true;
    return MHD_NO;
  }
  if (strlen(key) > WEB_MAX_PARAM_LEN || (value && strlen(value) > WEB_MAX_PARAM_LEN)) {
    p->too_long = true;
    return MHD_NO;
  }
  p->k[p->n] = key;
  p->v[p->n] = value ? value : "";
  p->n++;
  return MHD_YES;
}

static const char *param(const params *p, const char *k) {
  for (size_t i = 0; i < p->n; i++)
    if (!strcmp(p->k[i], k)) return p->v[i];
  return NULL;
}

/* Queues r with the headers every answer carries (docs/api.md: a restrictive CSP and nosniff on
 * every response, errors, 401s and redirects included), then releases it. */
static enum MHD_Result queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *r) {
  MHD_add_response_header(r, "Content-Security-Policy",
                          "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                          "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
  MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(r, "Cache-Control", "no-store");
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, const char *ctype, void *buf,
                                size_t len, enum MHD_ResponseMemoryMode mode, const char *disposition) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, buf, mode);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, "Content-Type", ctype);
  if (disposition) MHD_add_response_header(r, "Content-Disposition", disposition);
  return queue(c, status, r);
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *text) {
  return send_buf(c, status, "text/plain; charset=utf-8", (void *)text, strlen(text), MHD_RESPMEM_MUST_COPY, NULL);
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *j) {
  char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
  json_decref(j);
  if (!s) return send_text(c, 500, "cannot encode JSON\n");
  return send_buf(c, status, "application/json", s, strlen(s), MHD_RESPMEM_MUST_FREE, NULL);
}

/* Prometheus-style error envelope. */
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *type, const char *msg) {
  return send_json(c, status, json_pack("{s:s,s:s,s:s}", "status", "error", "errorType", type, "error", msg));
}

/* Exact: nanosecond timestamps have 19 digits, more than a double holds, so the seconds and
 * the fraction are parsed as integers. */
static int parse_frac_ns(const char *s, const char **rest) {
  int64_t ns = 0;
  int digits = 0;
  while (*s >= '0' && *s <= '9') {
    if (digits < 9) ns = ns * 10 + (*s - '0'), digits++;
    s++;
  }
  while (digits++ < 9) ns *= 10;
  *rest = s;
  return (int)ns;
}

int web_parse_time(const char *s, int64_t *ret) {
  if (!s || !*s) return -1;
  const char *p = s;
  int64_t sec = 0;
  int n = 0;
  while (*p >= '0' && *p <= '9' && n < 11) sec = sec * 10 + (*p++ - '0'), n++;
  if (n > 0 && (*p == '\0' || *p == '.')) {
    int64_t frac = 0;
    if (*p == '.') {
      frac = parse_frac_ns(p + 1, &p);
      if (*p) return -1;
    }
    if (sec > 9200000000LL) return -1;
    *ret = sec * 1000000000 + frac;
    return 0;
  }
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return -1;
  int64_t frac = 0;
  if (*rest == '.') frac = parse_frac_ns(rest + 1, &rest);
  if (strcmp(rest, "Z") && strcmp(rest, "+00:00")) return -1;
  time_t t = timegm(&tm);
  if (t < 0 || t > 9200000000LL) return -1; /* past year 2262 does not fit in int64 nanoseconds */
  *ret = (int64_t)t * 1000000000 + frac;
  return 0;
}

static bool label_name_ok(const char *s) {
  if (!(isalpha((unsigned char)*s) || *s == '_')) return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_') return false;
  return true;
}

/* The selection shared by the data endpoints: type, time range, label matchers. */
typedef struct selection {
  const char *type;
  int64_t from, to;
  store_matcher m[WEB_MAX_PARAMS];
  size_t nm;
  store_agg agg;
} selection;

static const char *const reserved[] = {"type", "from", "to", "agg", "name", "limit", "after", "sample", "max_nodes", "top", NULL};

static int parse_selection(const params *p, selection *s, bool need_type, char *why, size_t n) {
  memset(s, 0, sizeof *s);
  s->type = param(p, "type");
  if (s->type) {
    int t = cfg_type_from_name(s->type);
    if (t < 0) return snprintf(why, n, "unknown type \"%.64s\" (cpu, heap, allocs, block, mutex, goroutine, threadcreate)", s->type), -1;
    s->type = cfg_type_name[t];
  } else if (need_type) {
    return snprintf(why, n, "missing parameter type"), -1;
  }
  const char *from = param(p, "from"), *to = param(p, "to");
  if (from && web_parse_time(from, &s->from) < 0) return snprintf(why, n, "from: want Unix seconds or RFC 3339"), -1;
  if (to && web_parse_time(to, &s->to) < 0) return snprintf(why, n, "to: want Unix seconds or RFC 3339"), -1;
  if (s->to && s->from > s->to) return snprintf(why, n, "from is after to"), -1;
  const char *agg = param(p, "agg");
  if (!agg || !strcmp(agg, "")) s->agg = STORE_AGG_DEFAULT;
  else if (!strcmp(agg, "sum")) s->agg = STORE_AGG_SUM;
  else if (!strcmp(agg, "avg")) s->agg = STORE_AGG_AVG;
  else if (!strcmp(agg, "latest")) s->agg = STORE_AGG_LATEST;
  else return snprintf(why, n, "agg: want sum, avg or latest"), -1;
  const char *name = param(p, "name");
  if (name) s->m[s->nm++] = (store_matcher){"monitor", name};
  for (size_t i = 0; i < p->n; i++) {
    bool res = !strncmp(p->k[i], "base_", 5); /* the comparison's own selection */
    for (const char *const *r = reserved; *r && !res; r++) res = !strcmp(*r, p->k[i]);
    if (res) continue;
    if (!label_name_ok(p->k[i])) return snprintf(why, n, "\"%.64s\" is not a label name", p->k[i]), -1;
    s->m[s->nm++] = (store_matcher){p->k[i], p->v[i]};
  }
  return 0;
}

/* The comparison ("base") of a selection: base_from, base_to, base_agg, base_name and base_LABEL
 * parameters; labels default to the main selection's when no base_ label is given. Returns 0
 * with *ret_has = false when no base_ parameter is present. */
static int parse_base(const params *p, const selection *main_sel, selection *b, bool *ret_has, char *why, size_t n) {
  params bp = {0};
  bool any_label = false;
  for (size_t i = 0; i < p->n; i++) {
    if (strncmp(p->k[i], "base_", 5)) continue;
    bp.k[bp.n] = p->k[i] + 5;
    bp.v[bp.n] = p->v[i];
    bp.n++;
    const char *k = p->k[i] + 5;
    if (strcmp(k, "from") && strcmp(k, "to") && strcmp(k, "agg")) any_label = true;
  }
  *ret_has = bp.n > 0;
  if (!bp.n) return 0;
  if (main_sel->type) {
    bp.k[bp.n] = "type";
    bp.v[bp.n] = main_sel->type;
    bp.n++;
  }
  if (parse_selection(&bp, b, true, why, n) < 0) return -1;
  if (!any_label) {
    memcpy(b->m, main_sel->m, main_sel->nm * sizeof *b->m);
    b->nm = main_sel->nm;
  }
  return 0;
}

/* The sample type a request asks for (name or index; default: the profile's default). */
static int pick_sample(const pprof_profile *pr, const params *p, char *why, size_t n) {
  pp_err err = {0};
  int si = pprof_sample_index(pr, param(p, "sample"), &err);
  if (si < 0) snprintf(why, n, "%s", err.msg);
  return si;
}

/* The same sample type (by name) in another profile, or -1. */
static int same_sample(const pprof_profile *a, int si, const pprof_profile *b) {
  const char *name = pprof_str(a, a->sample_type[si].type);
  for (size_t i = 0; i < b->nsample_type; i++)
    if (!strcmp(pprof_str(b, b->sample_type[i].type), name)) return (int)i;
  return -1;
}

static long num_param(const params *p, const char *k, long dflt, long min, long max, bool *bad) {
  const char *v = param(p, k);
  if (!v) return dflt;
  char *end;
  long x = strtol(v, &end, 10);
  if (*end || end == v || x < min || x > max) *bad = true;
  return x;
}

static int cmp_desc_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x > y ? -1 : x < y;
}

static inline int64_t abs64(int64_t v) { return v < 0 ? -v : v; }

/* /api/v1/render: flame graph (pruned to max_nodes, biggest first) and top table of the
 * selection, optionally against a base. Node values: [name, parent, self, total] and, with a
 * base, [.., baseSelf, baseTotal]. What pruning hid is total - self - sum(children). */
static enum MHD_Result api_render(web *w, struct MHD_Connection *c, const params *p) {
  selection s, b;
  bool has_base = false, bad = false;
  char why[600];
  if (parse_selection(p, &s, true, why, sizeof why) < 0 || parse_base(p, &s, &b, &has_base, why, sizeof why) < 0)
    return send_error(c, 400, "bad_data", why);
  long max_nodes = num_param(p, "max_nodes", 4096, 1, 200000, &bad);
  long topn = num_param(p, "top", 500, 1, 20000, &bad);
  if (bad) return send_error(c, 400, "bad_data", "max_nodes: 1..200000, top: 1..20000");
  pprof_profile *cmp = NULL, *base = NULL;
  size_t ncmp = 0, nbase = 0;
  pp_err err = {0};
  int r = store_merged(w->h.st, s.m, s.nm, s.type, s.from, s.to, s.agg, WEB_MAX_RECORDS, &cmp, &ncmp, &err);
  if (r == PP_EUSAGE) return send_error(c, 404, "not_found", err.msg);
  if (r < 0) return send_error(c, 500, "internal", err.msg);
  if (has_base) {
    r = store_merged(w->h.st, b.m, b.nm, b.type, b.from, b.to, b.agg, WEB_MAX_RECORDS, &base, &nbase, &err);
    if (r < 0) {
      pprof_free(cmp);
      return send_error(c, r == PP_EUSAGE ? 404 : 500, r == PP_EUSAGE ? "not_found" : "internal", err.msg);
    }
  }
  int si = pick_sample(cmp, p, why, sizeof why), bsi = 0;
  if (si >= 0 && base && (bsi = same_sample(cmp, si, base)) < 0) {
    snprintf(why, sizeof why, "the base has no sample type %s", pprof_str(cmp, cmp->sample_type[si].type));
    si = -1;
  }
  if (si < 0) {
    pprof_free(cmp);
    pprof_free(base);
    return send_error(c, 400, "bad_data", why);
  }
  const pprof_profile *ps[2] = {cmp, base};
  int sis[2] = {si, bsi};
  size_t nin = base ? 2 : 1;
  pprof_multitree t;
  r = pprof_multitree_compute(ps, sis, nin, 0, &t, &err);
  if (r < 0) {
    pprof_free(cmp);
    pprof_free(base);
    return send_error(c, 500, "internal", err.msg);
  }
  /* prune: keep the max_nodes nodes of largest |total| (summed over inputs); a node needs its
   * parent kept, which ids guarantee to be decided first (a parent is created before its
   * children) */
  int64_t *key = malloc(t.nnodes * sizeof *key), *sorted = malloc(t.nnodes * sizeof *sorted);
  int32_t *remap = malloc(t.nnodes * sizeof *remap);
  json_t *nodes = json_array(), *names = json_array();
  htab nameidx;
  htab_init(&nameidx, 1024, 0);
  size_t kept = 0, pruned = 0;
  if (key && sorted && remap) {
    for (size_t i = 0; i < t.nnodes; i++) {
      key[i] = 0;
      for (size_t k = 0; k < nin; k++) key[i] += abs64(t.total[i * nin + k]);
      sorted[i] = key[i];
    }
    qsort(sorted, t.nnodes, sizeof *sorted, cmp_desc_i64);
    int64_t threshold = sorted[(size_t)max_nodes < t.nnodes ? (size_t)max_nodes - 1 : t.nnodes - 1];
    for (size_t i = 0; i < t.nnodes; i++) {
      remap[i] = -1;
      bool parent_ok = i == 0 || remap[t.parent[i]] >= 0;
      if (parent_ok && key[i] >= threshold && kept < (size_t)max_nodes) {
        remap[i] = (int32_t)kept++;
        uint32_t ni;
        if (htab_intern(&nameidx, t.names[i], strlen(t.names[i]), &ni) == 1) json_array_append_new(names, json_string(t.names[i]));
        json_t *row = json_pack("[i,i,I,I]", (int)ni, i ? (int)remap[t.parent[i]] : -1, (json_int_t)t.self[i * nin],
                                (json_int_t)t.total[i * nin]);
        if (nin == 2) {
          json_array_append_new(row, json_integer(t.self[i * nin + 1]));
          json_array_append_new(row, json_integer(t.total[i * nin + 1]));
        }
        json_array_append_new(nodes, row);
      } else {
        pruned++;
      }
    }
  }
  htab_free(&nameidx);
  free(key);
  free(sorted);
  free(remap);
  /* the top table, with the base's values by function name */
  json_t *top = json_array();
  pprof_top tc, tb;
  bool have_tc = pprof_top_compute(cmp, si, &tc, NULL) == 0;
  bool have_tb = have_tc && base && pprof_top_compute(base, bsi, &tb, NULL) == 0;
  /* with a base: its functions by name (top tables are sorted by value), and which of them the
   * comparison has */
  htab bnames = {0};
  bool *in_cmp = NULL;
  bool names_ok = have_tb && htab_init(&bnames, tb.nfuncs + 16, 0) == 0 && (in_cmp = calloc(tb.nfuncs + 1, sizeof *in_cmp));
  for (size_t k = 0; names_ok && k < tb.nfuncs; k++) {
    uint32_t ix;
    names_ok = htab_intern(&bnames, tb.funcs[k].name, strlen(tb.funcs[k].name), &ix) >= 0;
  }
  if (have_tc && (!base || names_ok)) {
    for (size_t i = 0; i < tc.nfuncs; i++) {
      int64_t k = have_tb ? htab_find(&bnames, tc.funcs[i].name, strlen(tc.funcs[i].name)) : -1;
      if (k >= 0) in_cmp[k] = true;
      if (i >= (size_t)topn) continue;
      json_t *row = json_pack("{s:s,s:I,s:I}", "name", tc.funcs[i].name, "flat", (json_int_t)tc.funcs[i].flat, "cum",
                              (json_int_t)tc.funcs[i].cum);
      if (have_tb) {
        json_object_set_new(row, "baseFlat", json_integer(k >= 0 ? tb.funcs[k].flat : 0));
        json_object_set_new(row, "baseCum", json_integer(k >= 0 ? tb.funcs[k].cum : 0));
      }
      json_array_append_new(top, row);
    }
    /* functions only the base has (they went away) are rows too, with flat and cum 0, or a
     * comparison would not show what vanished */
    for (size_t k = 0; have_tb && k < tb.nfuncs && json_array_size(top) < (size_t)topn; k++) {
      if (in_cmp[k]) continue;
      json_array_append_new(top, json_pack("{s:s,s:I,s:I,s:I,s:I}", "name", tb.funcs[k].name, "flat", (json_int_t)0, "cum",
                                           (json_int_t)0, "baseFlat", (json_int_t)tb.funcs[k].flat, "baseCum",
                                           (json_int_t)tb.funcs[k].cum));
    }
    json_t *data = json_pack("{s:s,s:{s:s,s:s},s:I,s:I,s:o,s:o,s:{s:I,s:I},s:o}", "profileType", s.type, "sampleType",
                             "type", pprof_str(cmp, cmp->sample_type[si].type), "unit", pprof_str(cmp, cmp->sample_type[si].unit),
                             "profiles", (json_int_t)ncmp, "total", (json_int_t)tc.total, "names", names, "nodes", nodes,
                             "pruned", "nodes", (json_int_t)pruned, "kept", (json_int_t)kept, "top", top);
    json_t *types = json_array();
    for (size_t i = 0; i < cmp->nsample_type; i++)
      json_array_append_new(types, json_pack("{s:s,s:s}", "type", pprof_str(cmp, cmp->sample_type[i].type), "unit",
                                             pprof_str(cmp, cmp->sample_type[i].unit)));
    json_object_set_new(data, "sampleTypes", types);
    if (have_tb) {
      json_object_set_new(data, "baseTotal", json_integer(tb.total));
      json_object_set_new(data, "baseProfiles", json_integer((json_int_t)nbase));
      pprof_top_release(&tb);
    }
    pprof_top_release(&tc);
    pprof_multitree_release(&t);
    pprof_free(cmp);
    pprof_free(base);
    free(in_cmp);
    htab_free(&bnames);
    return send_json(c, 200, json_pack("{s:s,s:o}", "status", "success", "data", data));
  }
  if (have_tc) pprof_top_release(&tc);
  if (have_tb) pprof_top_release(&tb);
  free(in_cmp);
  htab_free(&bnames);
  json_decref(top);
  json_decref(nodes);
  json_decref(names);
  pprof_multitree_release(&t);
  pprof_free(cmp);
  pprof_free(base);
  return send_error(c, 500, "internal", "top table failed");
}

/* /api/v1/timeline: per-scrape totals of one sample type, one series of points per label set. */
static enum MHD_Result api_timeline(web *w, struct MHD_Connection *c, const params *p) {
  selection s;
  char why[256];
  if (parse_selection(p, &s, true, why, sizeof why) < 0) return send_error(c, 400, "bad_data", why);
  store_row *rows;
  size_t n;
  pp_err err = {0};
  if (store_list_rows(w->h.st, s.m, s.nm, s.type, s.from, s.to, WEB_MAX_RECORDS, &rows, &n, &err) < 0)
    return send_error(c, 500, "internal", err.msg);
  const char *want = param(p, "sample");
  json_t *series = json_object();
  for (size_t i = 0; i < n; i++) {
    /* the column: by name, by index, or the last (Go's default for every type but allocs) */
    int col = -1, k = 0;
    char types[1024];
    snprintf(types, sizeof types, "%s", rows[i].sample_types);
    char *save = NULL;
    for (char *tok = strtok_r(types, ",", &save); tok; tok = strtok_r(NULL, ",", &save), k++) {
      char *slash = strchr(tok, '/');
      if (slash) *slash = '\0';
      if (want && (!strcmp(tok, want) || (atoi(want) == k && want[0] >= '0' && want[0] <= '9'))) col = k;
    }
    if (!want) col = k - 1;
    if (col < 0) continue;
    long long v = 0;
    char totals[1024];
    snprintf(totals, sizeof totals, "%s", rows[i].totals);
    save = NULL;
    k = 0;
    for (char *tok = strtok_r(totals, ",", &save); tok; tok = strtok_r(NULL, ",", &save), k++)
      if (k == col) v = strtoll(tok, NULL, 10);
    json_t *e = json_object_get(series, rows[i].labels_json);
    if (!e) {
      json_t *labels = json_loads(rows[i].labels_json, 0, NULL);
      e = json_pack("{s:o,s:[]}", "labels", labels ? labels : json_object(), "points");
      json_object_set_new(series, rows[i].labels_json, e);
    }
    json_array_append_new(json_object_get(e, "points"), json_pack("[I,I,I]", (json_int_t)rows[i].start_ns,
                                                                  (json_int_t)rows[i].end_ns, (json_int_t)v));
  }
  store_rows_free(rows, n);
  json_t *arr = json_array();
  const char *k2;
  json_t *v2;
  json_object_foreach(series, k2, v2) json_array_append(arr, v2);
  json_decref(series);
  return send_json(c, 200, json_pack("{s:s,s:o}", "status", "success", "data", arr));
}

static enum MHD_Result api_profile(web *w, struct MHD_Connection *c, const params *p) {
  selection s;
  char why[600];
  if (parse_selection(p, &s, true, why, sizeof why) < 0) return send_error(c, 400, "bad_data", why);
  pprof_profile *prof = NULL;
  size_t count = 0;
  pp_err err = {0};
  int r = store_merged(w->h.st, s.m, s.nm, s.type, s.from, s.to, s.agg, WEB_MAX_RECORDS, &prof, &count, &err);
  if (r == PP_EUSAGE) return send_error(c, 404, "not_found", err.msg);
  if (r < 0) return send_error(c, 500, "internal", err.msg);
  selection b;
  bool has_base = false;
  if (parse_base(p, &s, &b, &has_base, why, sizeof why) < 0) {
    pprof_free(prof);
    return send_error(c, 400, "bad_data", why);
  }
  if (has_base) {
    pprof_profile *base = NULL, *d = NULL;
    r = store_merged(w->h.st, b.m, b.nm, b.type, b.from, b.to, b.agg, WEB_MAX_RECORDS, &base, NULL, &err);
    if (r == 0) r = pprof_diff(base, prof, &d, &err);
    pprof_free(base);
    pprof_free(prof);
    if (r < 0) return send_error(c, r == PP_EUSAGE ? 404 : 400, r == PP_EUSAGE ? "not_found" : "bad_data", err.msg);
    prof = d;
  }
  uint8_t *buf;
  size_t len;
  r = pprof_encode(prof, 1, &buf, &len, &err);
  pprof_free(prof);
  if (r < 0) return send_error(c, 500, "internal", err.msg);
  /* a file name from request input: only safe characters survive */
  char fname[160], disp[200];
  const char *name = param(p, "name");
  snprintf(fname, sizeof fname, "%s-%s.pb.gz", name ? name : "profile", s.type);
  for (char *q = fname; *q; q++)
    if (!isalnum((unsigned char)*q) && *q != '.' && *q != '-' && *q != '_') *q = '_';
  snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", fname);
  return send_buf(c, 200, "application/octet-stream", buf, len, MHD_RESPMEM_MUST_FREE, disp);
}

static enum MHD_Result api_series(web *w, struct MHD_Connection *c, const params *p) {
  selection s;
  char why[256];
  if (parse_selection(p, &s, false, why, sizeof why) < 0) return send_error(c, 400, "bad_data", why);
  /* pages: limit=N entries, then after=<the previous page's "next"> ("series_id:type") */
  const char *lim = param(p, "limit"), *after = param(p, "after");
  long limit = 0;
  if (lim) {
    char *end;
    limit = strtol(lim, &end, 10);
    if (!*lim || *end || limit < 1 || limit > WEB_MAX_SERIES_PAGE)
      return send_error(c, 400, "bad_data", "limit: want 1..100000");
  }
  store_series_cursor cur = {0, NULL};
  if (after) {
    char *end;
    long long id = strtoll(after, &end, 10);
    int t = end != after && *end == ':' ? cfg_type_from_name(end + 1) : -1;
    if (id < 0 || t < 0) return send_error(c, 400, "bad_data", "after: want the \"next\" of a previous page");
    cur = (store_series_cursor){id, cfg_type_name[t]};
  }
  store_series_info *v;
  size_t n;
  bool more = false;
  pp_err err = {0};
  if (store_list_series(w->h.st, s.m, s.nm, s.type, s.from, s.to, after ? &cur : NULL, (size_t)limit, &v, &n, &more,
                        &err) < 0)
    return send_error(c, 500, "internal", err.msg);
  char next[64] = "";
  if (more && n) snprintf(next, sizeof next, "%lld:%s", (long long)v[n - 1].series_id, v[n - 1].type);
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *labels = json_loads(v[i].labels_json, 0, NULL);
    json_t *types = json_array();
    char *st = v[i].sample_types, *save = NULL;
    for (char *tok = strtok_r(st, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
      char *slash = strchr(tok, '/');
      if (slash) *slash = '\0';
      json_array_append_new(types, json_pack("{s:s,s:s}", "type", tok, "unit", slash ? slash + 1 : ""));
    }
    json_array_append_new(arr, json_pack("{s:o,s:s,s:o,s:I,s:I,s:I}", "labels", labels ? labels : json_object(),
                                         "profileType", v[i].type, "sampleTypes", types, "firstUnixNano",
                                         (json_int_t)v[i].first_ns, "lastUnixNano", (json_int_t)v[i].last_ns,
                                         "profiles", (json_int_t)v[i].count));
  }
  store_series_free(v, n);
  json_t *out = json_pack("{s:s,s:o}", "status", "success", "data", arr);
  if (out && next[0]) json_object_set_new(out, "next", json_string(next));
  return send_json(c, 200, out);
}

static enum MHD_Result api_profiles(web *w, struct MHD_Connection *c, const params *p) {
  selection s;
  char why[256];
  if (parse_selection(p, &s, true, why, sizeof why) < 0) return send_error(c, 400, "bad_data", why);
  const char *lim = param(p, "limit");
  long limit = 1000;
  if (lim) {
    char *end;
    limit = strtol(lim, &end, 10);
    if (*end || limit < 1 || limit > WEB_MAX_RECORDS) return send_error(c, 400, "bad_data", "limit: want 1..20000");
  }
  store_row *rows;
  size_t n;
  pp_err err = {0};
  if (store_list_rows(w->h.st, s.m, s.nm, s.type, s.from, s.to, (size_t)limit, &rows, &n, &err) < 0)
    return send_error(c, 500, "internal", err.msg);
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *totals = json_array();
    char *save = NULL;
    for (char *tok = strtok_r(rows[i].totals, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
      json_array_append_new(totals, json_integer(strtoll(tok, NULL, 10)));
    json_t *labels = json_loads(rows[i].labels_json, 0, NULL);
    json_array_append_new(arr, json_pack("{s:I,s:o,s:s,s:I,s:I,s:I,s:s,s:o}", "id", (json_int_t)rows[i].id, "labels",
                                         labels ? labels : json_object(), "profileType", rows[i].type, "startUnixNano",
                                         (json_int_t)rows[i].start_ns, "endUnixNano", (json_int_t)rows[i].end_ns, "bytes",
                                         (json_int_t)rows[i].size, "sampleTypes", rows[i].sample_types, "totals", totals));
  }
  store_rows_free(rows, n);
  return send_json(c, 200, json_pack("{s:s,s:o}", "status", "success", "data", arr));
}

static void html_escape(char **buf, size_t *len, size_t *cap, const char *s);

static void bput(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
  if (*len + n + 1 > *cap) {
    size_t nc = (*cap ? *cap * 2 : 4096) + n;
    char *nb = realloc(*buf, nc);
    if (!nb) return;
    *buf = nb;
    *cap = nc;
  }
  memcpy(*buf + *len, s, n);
  *len += n;
  (*buf)[*len] = '\0';
}

static void html_escape(char **buf, size_t *len, size_t *cap, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '<': bput(buf, len, cap, "&lt;", 4); break;
    case '>': bput(buf, len, cap, "&gt;", 4); break;
    case '&': bput(buf, len, cap, "&amp;", 5); break;
    case '"': bput(buf, len, cap, "&quot;", 6); break;
    case '\'': bput(buf, len, cap, "&#39;", 5); break;
    default: bput(buf, len, cap, s, 1);
    }
  }
}

/* the UI's files (src/collector/ui), embedded by tools/embed.py */
PP_BLOB_TABLE(ui_assets);

static enum MHD_Result send_asset(struct MHD_Connection *c, const char *name) {
  const pp_blob *a = pp_blob_find(ui_assets, name);
  if (!a) return send_text(c, 404, "not found\n");
  return send_buf(c, 200, a->content_type, (void *)a->data, a->len, MHD_RESPMEM_PERSISTENT, NULL);
}

/* /raw: the seed's list of stored series, as a plain page with download links. */
static enum MHD_Result raw_page(web *w, struct MHD_Connection *c) {
  store_series_info *v;
  size_t n;
  pp_err err = {0};
  if (store_list_series(w->h.st, NULL, 0, NULL, 0, 0, NULL, 0, &v, &n, NULL, &err) < 0) return send_error(c, 500, "internal", err.msg);
  char *b = NULL;
  size_t len = 0, cap = 0;
  const char *head = "<!doctype html><html><head><meta charset=\"utf-8\"><title>stored series</title>"
                     "<link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/ui/app.css\"></head><body><main><h1>Stored series</h1>"
                     "<table><tr><th>labels</th><th>type</th><th>profiles</th><th>download</th></tr>";
  bput(&b, &len, &cap, head, strlen(head));
  for (size_t i = 0; i < n; i++) {
    bput(&b, &len, &cap, "<tr><td>", 8);
    html_escape(&b, &len, &cap, v[i].labels_json);
    bput(&b, &len, &cap, "</td><td>", 9);
    html_escape(&b, &len, &cap, v[i].type);
    char num[32];
    snprintf(num, sizeof num, "</td><td>%lld</td><td>", (long long)v[i].count);
    bput(&b, &len, &cap, num, strlen(num));
    /* a link built from stored labels: each value percent-encoded, then the whole HTML-escaped */
    json_t *labels = json_loads(v[i].labels_json, 0, NULL);
    char link[4096];
    size_t o = (size_t)snprintf(link, sizeof link, "/api/v1/profile?type=%s", v[i].type);
    const char *k;
    json_t *val;
    json_object_foreach(labels, k, val) {
      char *ek = curl_easy_escape(NULL, k, 0), *ev = curl_easy_escape(NULL, json_string_value(val) ? json_string_value(val) : "", 0);
      if (ek && ev && o < sizeof link) o += (size_t)snprintf(link + o, sizeof link - o, "&%s=%s", ek, ev);
      curl_free(ek);
      curl_free(ev);
    }
    json_decref(labels);
    bput(&b, &len, &cap, "<a href=\"", 9);
    html_escape(&b, &len, &cap, link);
    bput(&b, &len, &cap, "\">pprof</a></td></tr>", 21);
  }
  store_series_free(v, n);
  bput(&b, &len, &cap, "</table></main></body></html>", 29);
  if (!b) return send_text(c, 500, "out of memory\n");
  return send_buf(c, 200, "text/html; charset=utf-8", b, len, MHD_RESPMEM_MUST_FREE, NULL);
}

/* ---- authentication ------------------------------------------------------------------------ */

/* Credential files: 64 KiB at most (a longer one is an error, not silently cut). */
static int read_small_file(const char *path, char **ret, pp_err *err) {
  size_t n;
  return pp_read_file(path, 64 << 10, (uint8_t **)ret, &n, err);
}

int web_auth_load_users(const char *path, web_auth *a, pp_err *err) {
  char *text;
  int r = read_small_file(path, &text, err);
  if (r < 0) return r;
  char *save = NULL;
  size_t line = 0;
  for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    line++;
    l[strcspn(l, "\r")] = '\0';
    if (!*l || *l == '#') continue;
    char *colon = strchr(l, ':');
    if (!colon || colon == l || colon[1] != '$') {
      free(text);
      return pp_err_set(err, PP_EINVAL, "%s:%zu: want name:hash (a crypt(3) hash such as htpasswd -B writes)", path, line);
    }
    char **nu = realloc(a->users, (a->nusers + 1) * sizeof *nu);
    if (!nu || !(nu[a->nusers] = strdup(l))) {
      free(text);
      return pp_err_set(err, PP_ENOMEM, "out of memory");
    }
    a->users = nu;
    a->nusers++;
  }
  free(text);
  if (!a->nusers) return pp_err_set(err, PP_EINVAL, "%s: no users", path);
  return 0;
}

int web_auth_load_token(const char *path, web_auth *a, pp_err *err) {
  char *text;
  int r = read_small_file(path, &text, err);
  if (r < 0) return r;
  text[strcspn(text, "\r\n")] = '\0';
  if (strlen(text) < 16) {
    free(text);
    return pp_err_set(err, PP_EINVAL, "%s: the token must be at least 16 characters", path);
  }
  a->token = text;
  return 0;
}

/* Comparison whose time does not depend on where the strings differ. */
static bool same(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  unsigned char d = (unsigned char)(la != lb);
  for (size_t i = 0; i < la; i++) d |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
  return d == 0;
}

static bool authorized(const web_auth *a, struct MHD_Connection *c) {
  const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  if (!h) return false;
  if (a->token && !strncmp(h, "Bearer ", 7)) return same(h + 7, a->token);
  if (a->nusers && !strncmp(h, "Basic ", 6)) {
    char *pass = NULL;
    char *user = MHD_basic_auth_get_username_password(c, &pass);
    bool ok = false;
    if (user && pass) {
      size_t ul = strlen(user);
      for (size_t i = 0; i < a->nusers && !ok; i++) {
        const char *e = a->users[i];
        if (strncmp(e, user, ul) || e[ul] != ':') continue;
        struct crypt_data *cd = calloc(1, sizeof *cd); /* ~32 KiB: not on the stack */
        const char *hash = e + ul + 1;
        const char *got = cd ? crypt_r(pass, hash, cd) : NULL;
        ok = got && got[0] == '$' && same(got, hash);
        free(cd);
      }
    }
    MHD_free(user);
    MHD_free(pass);
    return ok;
  }
  return false;
}

static enum MHD_Result send_unauthorized(struct MHD_Connection *c, const web_auth *a) {
  struct MHD_Response *r = MHD_create_response_from_buffer(13, (void *)"unauthorized\n", MHD_RESPMEM_PERSISTENT);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
  if (a->nusers) MHD_add_response_header(r, "WWW-Authenticate", "Basic realm=\"pprof-controller\", charset=\"UTF-8\"");
  else MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
  return queue(c, 401, r);
}

typedef struct req {
  bool is_post;
} req;

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_size, void **con_cls) {
  (void)version;
  (void)upload_data;
  web *w = cls;
  if (!*con_cls) {
    /* first call: headers only; keep a marker so the body (if any) is drained and ignored */
    static req marker;
    *con_cls = &marker;
    return MHD_YES;
  }
  if (*upload_size) {
    *upload_size = 0;
    return MHD_YES;
  }
  bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
  bool post = !strcmp(method, "POST");
  params p = {0};
  MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_param, &p);
  if (p.too_many) return send_error(c, 400, "bad_data", "too many query parameters");
  if (p.too_long) return send_error(c, 400, "bad_data", "query parameter too long");

  if (!strcmp(url, "/healthz")) return get ? send_text(c, 200, "ok\n") : send_text(c, 405, "method not allowed\n");
  if (!strcmp(url, "/readyz")) {
    bool ok = w->h.ready && w->h.ready(w->h.ud);
    return send_text(c, ok ? 200 : 503, ok ? "ready\n" : "not ready\n");
  }
  /* everything past the health endpoints needs credentials when auth is configured */
  const web_auth *a = w->h.auth;
  if (a && (a->nusers || a->token) && !authorized(a, c)) return send_unauthorized(c, a);
  if (!strcmp(url, "/reload") || !strcmp(url, "/-/reload")) {
    if (!post) return send_text(c, 405, "use POST\n");
    pp_err err = {0};
    if (w->h.reload(w->h.ud, &err) < 0) {
      char msg[600];
      snprintf(msg, sizeof msg, "%s\n", err.msg);
      return send_text(c, w->h.ready && !w->h.ready(w->h.ud) ? 503 : 400, msg);
    }
    return send_text(c, 200, "config reloaded\n");
  }
  if (!get) return send_text(c, 405, "method not allowed\n");
  if (!strcmp(url, "/metrics")) {
    char *b = NULL;
    size_t len = 0, cap = 0;
    scrape_metrics(w->h.eng, &b, &len, &cap);
    if (w->h.metrics) w->h.metrics(w->h.ud, &b, &len, &cap);
    if (!b) return send_text(c, 500, "out of memory\n");
    return send_buf(c, 200, "text/plain; version=0.0.4; charset=utf-8", b, len, MHD_RESPMEM_MUST_FREE, NULL);
  }
  if (!strcmp(url, "/api/v1/targets"))
    return send_json(c, 200, json_pack("{s:s,s:o}", "status", "success", "data", scrape_targets_json(w->h.eng)));
  if (!strcmp(url, "/api/v1/series")) return api_series(w, c, &p);
  if (!strcmp(url, "/api/v1/profile")) return api_profile(w, c, &p);
  if (!strcmp(url, "/api/v1/profiles")) return api_profiles(w, c, &p);
  if (!strcmp(url, "/api/v1/render")) return api_render(w, c, &p);
  if (!strcmp(url, "/api/v1/timeline")) return api_timeline(w, c, &p);
  /* the UI: one page that routes on the path; its files come from the compiled-in table */
  if (!strcmp(url, "/") || !strcmp(url, "/targets") || !strcmp(url, "/explorer") || !strcmp(url, "/compare") ||
      !strcmp(url, "/dashboard"))
    return send_asset(c, "index.html");
  if (!strncmp(url, "/ui/", 4)) return send_asset(c, url + 4);
  if (!strcmp(url, "/favicon.ico")) return send_buf(c, 204, "image/x-icon", (void *)"", 0, MHD_RESPMEM_PERSISTENT, NULL);
  if (!strcmp(url, "/raw")) return raw_page(w, c);
  if (!strncmp(url, "/pprof/web", 10)) {
    /* the seed's per-file pprof web UI: its successor is the explorer */
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Location", "/explorer");
    return queue(c, 302, r);
  }
  return send_text(c, 404, "not found\n");
}

/* Query strings as browsers and Go's url.Values write them: %XX and '+' for a space
 * (libmicrohttpd's default only decodes %XX). */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s) {
  (void)cls;
  (void)c;
  char *w = s;
  for (char *r = s; *r; r++) {
    if (*r == '+') {
      *w++ = ' ';
    } else if (*r == '%' && isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2])) {
      char hex[3] = {r[1], r[2], 0};
      *w++ = (char)strtol(hex, NULL, 16);
      r += 2;
    } else {
      *w++ = *r;
    }
  }
  *w = '\0';
  return (size_t)(w - s);
}

int web_start(const char *addr, int port, const web_hooks *hooks, web **ret, pp_err *err) {
  web *w = calloc(1, sizeof *w);
  if (!w) return pp_err_set(err, PP_ENOMEM, "out of memory");
  w->h = *hooks;
  /* epoll (MHD_USE_AUTO): with thousands of targets our sockets pass FD_SETSIZE, which select cannot take */
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
  struct sockaddr_in sa4;
  struct sockaddr_in6 sa6;
  struct sockaddr *sa = NULL;
  if (addr && *addr && strcmp(addr, "0.0.0.0")) {
    memset(&sa4, 0, sizeof sa4);
    memset(&sa6, 0, sizeof sa6);
    if (inet_pton(AF_INET, addr, &sa4.sin_addr) == 1) {
      sa4.sin_family = AF_INET;
      sa4.sin_port = htons((uint16_t)port);
      sa = (struct sockaddr *)&sa4;
    } else if (inet_pton(AF_INET6, addr, &sa6.sin6_addr) == 1) {
      sa6.sin6_family = AF_INET6;
      sa6.sin6_port = htons((uint16_t)port);
      sa = (struct sockaddr *)&sa6;
      flags |= MHD_USE_IPv6;
    } else {
      free(w);
      return pp_err_set(err, PP_EINVAL, "listen address \"%s\" is not an IP address", addr);
    }
  }
  w->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handle, w, MHD_OPTION_THREAD_POOL_SIZE, 4,
                          MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_CONNECTION_LIMIT, 256u,
                          MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
                          sa ? MHD_OPTION_SOCK_ADDR : MHD_OPTION_END, sa, MHD_OPTION_END);
  if (!w->d) {
    free(w);
    return pp_err_set(err, PP_EIO, "cannot listen on %s:%d (in use, or not permitted)", addr && *addr ? addr : "*", port);
  }
  *ret = w;
  return 0;
}

void web_stop(web *w) {
  if (!w) return;
  MHD_stop_daemon(w->d);
  free(w);
}
