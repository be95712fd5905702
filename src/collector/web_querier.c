/* Pyroscope's query API on the store (see web_querier.h). */
#include "web_querier.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "../base/arena.h"
#include "../base/htab.h"
#include "../codec/pprof.h"
#include "profile.pb-c.h"
#include "querier.pb-c.h"
#include "web_connect.h"
#include "web_fanout.h"
#include "web_json.h"

/* ---- profile types ---------------------------------------------------------------------------- */

/* Our types as Pyroscope names them; prefix: the sample types a type offers ("" = all). */
typedef struct qkind {
  const char *type, *name, *period_type, *period_unit, *prefix;
} qkind;

static const qkind kinds[] = {
    {"cpu", "process_cpu", "cpu", "nanoseconds", ""},
    {"heap", "memory", "space", "bytes", "inuse_"},
    {"allocs", "memory", "space", "bytes", "alloc_"},
    {"goroutine", "goroutines", "goroutine", "count", ""},
    {"mutex", "mutex", "contentions", "count", ""},
    {"block", "block", "contentions", "count", ""},
    {"threadcreate", "threadcreate", "threadcreate", "count", ""},
};

static const qkind *kind_of_type(const char *type) {
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (!strcmp(kinds[i].type, type)) return &kinds[i];
  return NULL;
}

/* A profile type id NAME:SAMPLE:UNIT:PERIOD_TYPE:PERIOD_UNIT to our type and sample type (into
 * sample[n]); NULL when no type of ours is that. */
static const qkind *parse_type_id(const char *id, char *sample, size_t n) {
  char buf[512];
  if (!id || strlen(id) >= sizeof buf) return NULL;
  snprintf(buf, sizeof buf, "%s", id);
  char *part[5], *p = buf;
  size_t k = 0;
  for (; k < 5; k++) {
    part[k] = p;
    char *c = strchr(p, ':');
    if (!c) break;
    *c = '\0';
    p = c + 1;
  }
  if (k != 4 || strchr(part[4], ':')) return NULL;
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    const qkind *q = &kinds[i];
    if (!strcmp(q->name, part[0]) && !strncmp(part[1], q->prefix, strlen(q->prefix)) &&
        !strcmp(q->period_type, part[3]) && !strcmp(q->period_unit, part[4]) && *part[1] && *part[2]) {
      snprintf(sample, n, "%s", part[1]);
      return q;
    }
  }
  return NULL;
}

/* ---- selectors ------------------------------------------------------------------------------- */

enum { OP_EQ, OP_NE, OP_RE, OP_NRE };

struct web_querier_sel {
  struct {
    char *name, *value;
    int op;
    pcre2_code *re;         /* =~, !~ */
    pcre2_match_data *md;
  } m[WEB_QUERIER_MAX_MATCHERS];
  size_t n;
  size_t re_bytes;          /* its regular expressions' compiled sizes */
  pcre2_match_context *mc;  /* the match limits, made with the first expression */
};

void web_querier_sel_free(web_querier_sel *s) {
  if (!s) return;
  for (size_t i = 0; i < s->n; i++) {
    free(s->m[i].name);
    free(s->m[i].value);
    pcre2_match_data_free(s->m[i].md);
    pcre2_code_free(s->m[i].re);
  }
  pcre2_match_context_free(s->mc);
  free(s);
}

static const char *skip_ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  return p;
}

/* A quoted string ("..", '..' or `..`, Go's escapes \\ \" \' \n \t \r in the first two) at *pp
 * into a malloc'd *ret; NULL on error (why set). */
static char *quoted(const char **pp, char *why, size_t whyn) {
  const char *p = *pp;
  char q = *p;
  if (q != '"' && q != '\'' && q != '`') {
    snprintf(why, whyn, "a label value must be quoted");
    return NULL;
  }
  size_t cap = strlen(p) + 1, o = 0;
  char *out = malloc(cap);
  if (!out) {
    snprintf(why, whyn, "out of memory");
    return NULL;
  }
  for (p++; *p && *p != q; p++) {
    if (*p == '\\' && q != '`') {
      p++;
      switch (*p) {
      case '\\': case '"': case '\'': out[o++] = *p; break;
      case 'n': out[o++] = '\n'; break;
      case 't': out[o++] = '\t'; break;
      case 'r': out[o++] = '\r'; break;
      default:
        snprintf(why, whyn, "unknown escape \\%c in a label value", *p ? *p : ' ');
        free(out);
        return NULL;
      }
    } else {
      out[o++] = *p;
    }
  }
  if (*p != q) {
    snprintf(why, whyn, "a label value's quote is not closed");
    free(out);
    return NULL;
  }
  out[o] = '\0';
  *pp = p + 1;
  return out;
}

int web_querier_sel_parse(const char *text, web_querier_sel **ret, char *why, size_t whyn) {
  *ret = NULL;
  if (!text) text = "";
  if (strlen(text) > WEB_QUERIER_MAX_SELECTOR)
    return snprintf(why, whyn, "a selector of over %d bytes", WEB_QUERIER_MAX_SELECTOR), -1;
  web_querier_sel *s = calloc(1, sizeof *s);
  if (!s) return snprintf(why, whyn, "out of memory"), -1;
  const char *p = skip_ws(text);
  if (!*p) {
    *ret = s;
    return 0;
  }
  if (*p != '{') goto syntax;
  p = skip_ws(p + 1);
  while (*p != '}') {
    if (s->n == WEB_QUERIER_MAX_MATCHERS) {
      snprintf(why, whyn, "more than %d matchers in a selector", WEB_QUERIER_MAX_MATCHERS);
      goto fail;
    }
    const char *n0 = p;
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_')) goto syntax;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.') p++;
    size_t nl = (size_t)(p - n0);
    p = skip_ws(p);
    int op;
    if (p[0] == '=' && p[1] == '~') op = OP_RE, p += 2;
    else if (p[0] == '!' && p[1] == '~') op = OP_NRE, p += 2;
    else if (p[0] == '!' && p[1] == '=') op = OP_NE, p += 2;
    else if (p[0] == '=') op = OP_EQ, p += 1;
    else goto syntax;
    p = skip_ws(p);
    char *v = quoted(&p, why, whyn);
    if (!v) goto fail;
    char *name = strndup(n0, nl);
    if (!name) {
      free(v);
      snprintf(why, whyn, "out of memory");
      goto fail;
    }
    if (op == OP_RE || op == OP_NRE) {
      /* PCRE2 (Perl's syntax, which covers RE2's: \\d, (?i), (?:..)), matched whole as Prometheus
       * does, '.' matching newlines too (Prometheus' (?s)). Bounded: the pattern's length, its
       * compiled size (PCRE2's own limit, and WEB_QUERIER_MAX_REGEX_TOTAL for a selector's),
       * and each match's work (match_limit, depth_limit, heap_limit in the match context).
       * glibc's regcomp, used before, took gigabytes for 30 bytes of stacked '+', and
       * seconds for 400 bytes of optional atoms. */
      int ec = 0;
      PCRE2_SIZE eo = 0, sz = 0;
      /* no backreferences: RE2, the engine of Prometheus' and Pyroscope's selectors, has none */
      bool backref = false;
      for (const char *c = v; *c; c++)
        if (*c == '\\' && c[1]) backref |= c[1] >= '1' && c[1] <= '9', c++;
      pcre2_code *re = strlen(v) <= WEB_QUERIER_MAX_REGEX && !backref
                           ? pcre2_compile((PCRE2_SPTR)v, strlen(v), PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOTALL | PCRE2_NEVER_BACKSLASH_C,
                                           &ec, &eo, NULL)
                           : NULL;
      if (re) pcre2_pattern_info(re, PCRE2_INFO_SIZE, &sz);
      if (re && s->re_bytes + sz > WEB_QUERIER_MAX_REGEX_TOTAL) {
        pcre2_code_free(re);
        re = NULL;
        ec = 0;
      }
      if (re && !s->mc && (s->mc = pcre2_match_context_create(NULL))) {
        pcre2_set_match_limit(s->mc, WEB_QUERIER_REGEX_MATCH_LIMIT);
        pcre2_set_depth_limit(s->mc, WEB_QUERIER_REGEX_MATCH_LIMIT);
        pcre2_set_heap_limit(s->mc, 256); /* KiB */
      }
      pcre2_match_data *md = re && s->mc ? pcre2_match_data_create_from_pattern(re, NULL) : NULL;
      if (!md) {
        char msg[160] = "";
        if (ec) pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof msg);
        snprintf(why, whyn, "%s: %.60s is not a regular expression this server takes (%s%sat most %d bytes, no backreferences, its "
                 "selector's together %d bytes compiled)", name, v, msg, *msg ? "; " : "", WEB_QUERIER_MAX_REGEX, WEB_QUERIER_MAX_REGEX_TOTAL);
        pcre2_code_free(re);
        free(v);
        free(name);
        goto fail;
      }
      s->m[s->n].re = re;
      s->m[s->n].md = md;
      s->re_bytes += sz;
    }
    s->m[s->n].name = name;
    s->m[s->n].value = v;
    s->m[s->n].op = op;
    s->n++;
    p = skip_ws(p);
    if (*p == ',') p = skip_ws(p + 1);
    else if (*p != '}') goto syntax;
  }
  if (*skip_ws(p + 1)) goto syntax;
  *ret = s;
  return 0;
syntax:
  snprintf(why, whyn, "not a label selector ({name=\"value\", ...}) at byte %zu", (size_t)(p - text));
fail:
  web_querier_sel_free(s);
  return -1;
}

bool web_querier_sel_match(const web_querier_sel *s, const char *const *k, const char *const *v, size_t n) {
  for (size_t i = 0; i < s->n; i++) {
    const char *val = "";
    for (size_t j = 0; j < n; j++)
      if (!strcmp(k[j], s->m[i].name)) val = v[j];
    bool ok;
    switch (s->m[i].op) {
    case OP_EQ: ok = !strcmp(val, s->m[i].value); break;
    case OP_NE: ok = strcmp(val, s->m[i].value) != 0; break;
    /* a match past its limits counts as no match */
    case OP_RE: ok = pcre2_match(s->m[i].re, (PCRE2_SPTR)val, strlen(val), 0, 0, s->m[i].md, s->mc) >= 0; break;
    default: ok = pcre2_match(s->m[i].re, (PCRE2_SPTR)val, strlen(val), 0, 0, s->m[i].md, s->mc) < 0; break;
    }
    if (!ok) return false;
  }
  return true;
}

/* ---- the series model ------------------------------------------------------------------------ */

/* One stored (series, type) seen through one of its sample types, with Pyroscope's labels
 * (sorted by name). Strings live in the request's arena. */
typedef struct vseries {
  int64_t sid;
  int64_t count; /* its profiles in range */
  const qkind *k;
  const char *id, *sample, *unit;
  const char **lk, **lv;
  size_t nl;
} vseries;

typedef struct qctx {
  const web_ctx *x;
  arena_budget a; /* the request and everything the answer points to */
  bool json;
  char why[700];
  const char *code; /* Connect's code for why */
  bool counts;      /* SelectSeries answers each bucket's profile count (counts=1, a peer's call) */
} qctx;

static int fail(qctx *q, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(qctx *q, const char *code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(q->why, sizeof q->why, fmt, ap);
  va_end(ap);
  q->code = code;
  return -1;
}

static char *adup(qctx *q, const char *s) {
  return arena_strndup(&q->a.mem, s, strlen(s));
}

static int cmp_label(const void *a, const void *b) {
  const char *const *x = a, *const *y = b;
  return strcmp(x[0], y[0]);
}

/* A stored series' labels as Pyroscope's, plus __name__ and __profile_type__ (id). */
static int map_labels(qctx *q, const char *labels_json, const qkind *k, const char *id, vseries *v) {
  json_t *o = web_json_load_labels(labels_json);
  if (!o) return fail(q, "internal", "a series' labels are unreadable");
  const char *ns = json_string_value(json_object_get(o, "__k8s_namespace"));
  const char *svc = json_string_value(json_object_get(o, "__k8s_name"));
  const char *sn = json_string_value(json_object_get(o, "service_name"));
  const char *mon = json_string_value(json_object_get(o, "monitor"));
  size_t cap = json_object_size(o) + 5, n = 0;
  const char **pairs = arena_calloc(&q->a.mem, 2 * cap, sizeof *pairs);
  char svcname[1200];
  if (!pairs) goto nomem;
  const char *key;
  json_t *val;
  json_object_foreach(o, key, val) {
    if (!strncmp(key, "__", 2) || !json_is_string(val) || !*json_string_value(val)) continue;
    if ((ns && !strcmp(key, "namespace")) || (svc && !strcmp(key, "service"))) continue; /* ours below win */
    pairs[2 * n] = adup(q, key);
    pairs[2 * n + 1] = adup(q, json_string_value(val));
    if (!pairs[2 * n] || !pairs[2 * n + 1]) goto nomem;
    n++;
  }
  if (ns && *ns) pairs[2 * n] = "namespace", pairs[2 * n + 1] = adup(q, ns), n++;
  if (svc && *svc) pairs[2 * n] = "service", pairs[2 * n + 1] = adup(q, svc), n++;
  if (!sn || !*sn) {
    if (ns && *ns && svc && *svc) snprintf(svcname, sizeof svcname, "%s/%s", ns, svc);
    else snprintf(svcname, sizeof svcname, "%s", svc && *svc ? svc : mon ? mon : "unknown_service");
    pairs[2 * n] = "service_name", pairs[2 * n + 1] = adup(q, svcname), n++;
  }
  pairs[2 * n] = "__name__", pairs[2 * n + 1] = k->name, n++;
  pairs[2 * n] = "__profile_type__", pairs[2 * n + 1] = id, n++;
  for (size_t i = 0; i < 2 * n; i++)
    if (!pairs[i]) goto nomem;
  json_decref(o);
  qsort(pairs, n, 2 * sizeof *pairs, cmp_label);
  v->lk = arena_calloc(&q->a.mem, n ? n : 1, sizeof *v->lk);
  v->lv = arena_calloc(&q->a.mem, n ? n : 1, sizeof *v->lv);
  if (!v->lk || !v->lv) return fail(q, "resource_exhausted", "the series' labels need more memory than a query may take");
  for (size_t i = 0; i < n; i++) v->lk[i] = pairs[2 * i], v->lv[i] = pairs[2 * i + 1];
  v->nl = n;
  return 0;
nomem:
  json_decref(o);
  return fail(q, "resource_exhausted", "the series' labels need more memory than a query may take");
}

/* e's labels: those of `from` (another sample type of the same stored series), its own id as
 * __profile_type__ */
static int relabel(qctx *q, const vseries *from, vseries *e) {
  e->lk = from->lk;
  e->nl = from->nl;
  e->lv = arena_alloc(&q->a.mem, (from->nl ? from->nl : 1) * sizeof *e->lv);
  if (!e->lv) return fail(q, "resource_exhausted", "the series' labels need more memory than a query may take");
  for (size_t j = 0; j < from->nl; j++) e->lv[j] = strcmp(from->lk[j], "__profile_type__") ? from->lv[j] : e->id;
  return 0;
}

/* [start, end] in milliseconds as the store's nanoseconds (0 = unbounded). */
static int range_ns(qctx *q, int64_t start, int64_t end, int64_t *from, int64_t *to) {
  const int64_t max_ms = INT64_MAX / 1000000 - 1;
  if (start < 0 || end < 0 || start > max_ms || end > max_ms)
    return fail(q, "invalid_argument", "start and end: Unix milliseconds, 0 to %lld", (long long)max_ms);
  if (end && start > end) return fail(q, "invalid_argument", "start is after end");
  *from = start * 1000000;
  *to = end ? end * 1000000 + 999999 : 0;
  if (q->x) web_note_window(q->x, *from, *to, STORE_AGG_DEFAULT); /* the window the answer covers */
  return 0;
}

/* Every series (of `type`, NULL = all) with profiles in [from, to], once per sample type. */
static int list_vseries(qctx *q, const char *type, int64_t from, int64_t to, vseries **ret, size_t *ret_n) {
  store_series_info *info = NULL;
  size_t n = 0;
  bool more = false;
  pp_err err = {0};
  if (store_list_series(q->x->h->st, NULL, 0, type, from, to, NULL, WEB_QUERIER_MAX_SERIES, &info, &n, &more, &err) < 0)
    return fail(q, "internal", "%s", err.msg);
  int r = 0;
  if (more) {
    r = fail(q, "resource_exhausted", "more than %d series have profiles in this range: narrow it", WEB_QUERIER_MAX_SERIES);
    goto out;
  }
  size_t cap = 0, nv = 0;
  for (size_t i = 0; i < n; i++) cap += 1 + (info[i].sample_types ? strlen(info[i].sample_types) : 0) / 2;
  vseries *v = arena_calloc(&q->a.mem, cap ? cap : 1, sizeof *v);
  if (!v) {
    r = fail(q, "resource_exhausted", "the series in range need more memory than a query may take");
    goto out;
  }
  for (size_t i = 0; i < n && r == 0; i++) {
    const qkind *k = kind_of_type(info[i].type);
    if (!k || !info[i].sample_types) continue;
    char *types = adup(q, info[i].sample_types), *save = NULL;
    if (!types) {
      r = fail(q, "resource_exhausted", "the series in range need more memory than a query may take");
      break;
    }
    const vseries *first = NULL; /* this series' first sample type: its labels, mapped once */
    for (char *t = strtok_r(types, ",", &save); t && r == 0; t = strtok_r(NULL, ",", &save)) {
      char *unit = strchr(t, '/');
      if (!unit || strncmp(t, k->prefix, strlen(k->prefix))) continue;
      *unit++ = '\0';
      char id[600];
      snprintf(id, sizeof id, "%s:%s:%s:%s:%s", k->name, t, unit, k->period_type, k->period_unit);
      vseries *e = &v[nv];
      e->sid = info[i].series_id;
      e->count = info[i].count;
      e->k = k;
      e->sample = t;
      e->unit = unit;
      if (!(e->id = adup(q, id))) r = fail(q, "resource_exhausted", "the series in range need more memory than a query may take");
      else if (!first) r = map_labels(q, info[i].labels_json, k, e->id, e);
      else r = relabel(q, first, e);
      if (r == 0 && !first) first = e;
      if (r == 0) nv++;
    }
  }
  *ret = v;
  *ret_n = nv;
out:
  store_series_free(info, n);
  return r;
}

/* The selectors of a matchers list (all series when empty); *ret NULL-terminated. */
static int parse_matchers(qctx *q, char **m, size_t n, web_querier_sel ***ret) {
  if (n > WEB_QUERIER_MAX_MATCHERS) return fail(q, "invalid_argument", "more than %d matchers", WEB_QUERIER_MAX_MATCHERS);
  web_querier_sel **s = calloc(n + 1, sizeof *s);
  if (!s) return fail(q, "resource_exhausted", "out of memory");
  size_t nm = 0, bytes = 0; /* all selectors together: matching costs each series every one */
  for (size_t i = 0; i < n; i++) {
    char why[600];
    int r = web_querier_sel_parse(m[i], &s[i], why, sizeof why);
    if (r == 0) nm += s[i]->n, bytes += s[i]->re_bytes;
    if (r == 0 && (nm > WEB_QUERIER_MAX_MATCHERS_TOTAL || bytes > WEB_QUERIER_MAX_REGEX_TOTAL)) {
      snprintf(why, sizeof why, "the selectors together have more than %d matchers or regular expressions of more than %d "
               "bytes compiled", WEB_QUERIER_MAX_MATCHERS_TOTAL, WEB_QUERIER_MAX_REGEX_TOTAL);
      r = -1;
      i++; /* s[i] is freed below with the others */
    }
    if (r < 0) {
      for (size_t j = 0; j < i; j++) web_querier_sel_free(s[j]);
      free(s);
      return fail(q, "invalid_argument", "matchers: %s", why);
    }
  }
  *ret = s;
  return 0;
}

static void free_matchers(web_querier_sel **s) {
  for (size_t i = 0; s && s[i]; i++) web_querier_sel_free(s[i]);
  free(s);
}

static bool match_any(web_querier_sel **s, const vseries *v) {
  if (!s[0]) return true;
  for (size_t i = 0; s[i]; i++)
    if (web_querier_sel_match(s[i], v->lk, v->lv, v->nl)) return true;
  return false;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Distinct strings (sorted), through a hash table; into *ret (arena) */
typedef struct strset {
  htab h;
  const char **v;
  size_t n, cap;
} strset;

static int strset_add(qctx *q, strset *s, const char *str) {
  uint32_t idx;
  int r = htab_intern(&s->h, str, strlen(str), &idx);
  if (r < 0) return fail(q, "resource_exhausted", "out of memory");
  if (r == 0) return 0;
  if (s->n == s->cap) {
    size_t nc = s->cap ? 2 * s->cap : 64;
    const char **nv = realloc(s->v, nc * sizeof *nv);
    if (!nv) return fail(q, "resource_exhausted", "out of memory");
    s->v = nv;
    s->cap = nc;
  }
  s->v[s->n++] = str;
  return 0;
}

/* ---- the selection of a profile type --------------------------------------------------------- */

typedef struct qpick {
  const qkind *k;
  char sample[256];
  char *ids; /* JSON array of the series ids, for STORE_MATCH_IDS */
  size_t nseries;
  int64_t nrecords; /* the matching series' profiles in range */
  vseries *v; /* every series of the type in range (matching or not) */
  size_t nv;
  bool *hit; /* v[i] matches */
  int64_t from, to;
  const char *type_id, *selector; /* as asked, for the peers */
  int64_t start, end;
} qpick;

static int pick(qctx *q, const char *type_id, const char *selector, int64_t start, int64_t end, qpick *p) {
  memset(p, 0, sizeof *p);
  if (!(p->k = parse_type_id(type_id, p->sample, sizeof p->sample)))
    return fail(q, "invalid_argument", "profile_typeID %.200s: not a profile type this collector has (ProfileTypes lists them)",
                type_id ? type_id : "");
  if (range_ns(q, start, end, &p->from, &p->to) < 0) return -1;
  p->type_id = type_id, p->selector = selector ? selector : "", p->start = start, p->end = end;
  web_querier_sel *sel;
  char why[600];
  if (web_querier_sel_parse(selector, &sel, why, sizeof why) < 0) return fail(q, "invalid_argument", "label_selector: %s", why);
  int r = list_vseries(q, p->k->type, p->from, p->to, &p->v, &p->nv);
  pp_buf ids;
  pp_buf_init(&ids, 0);
  pp_buf_put(&ids, "[", 1);
  if (r == 0 && !(p->hit = arena_calloc(&q->a.mem, p->nv ? p->nv : 1, sizeof *p->hit)))
    r = fail(q, "resource_exhausted", "out of memory");
  for (size_t i = 0; r == 0 && i < p->nv; i++) {
    if (strcmp(p->v[i].id, type_id) || !web_querier_sel_match(sel, p->v[i].lk, p->v[i].lv, p->v[i].nl)) continue;
    p->hit[i] = true;
    p->nrecords += p->v[i].count;
    pp_buf_printf(&ids, "%s%lld", p->nseries++ ? "," : "", (long long)p->v[i].sid);
  }
  pp_buf_put(&ids, "]", 1);
  if (r == 0 && (ids.failed || !(p->ids = arena_strndup(&q->a.mem, ids.p, ids.len))))
    r = fail(q, "resource_exhausted", "out of memory");
  pp_buf_free(&ids);
  web_querier_sel_free(sel);
  return r;
}

/* ---- the peers (web_fanout.h): each asked the same call, local=1 ------------------------------- */

static bool has_peers(const qctx *q) { return q->x->fan && web_fanout_peers(q->x->fan); }

/* A message as protobuf, in the request's arena. */
static int packed(qctx *q, const ProtobufCMessage *m, uint8_t **buf, size_t *len) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *b = arena_alloc(&q->a.mem, n ? n : 1);
  if (!b) return fail(q, "resource_exhausted", "out of memory");
  *len = protobuf_c_message_pack(m, b);
  *buf = b;
  return 0;
}

/* What one peer's answer adds to ours: 0, or -1 with q's why (which stops the call). */
typedef int (*peer_fn)(qctx *q, const ProtobufCMessage *answer, void *ud);

typedef struct peer_call {
  qctx *q;
  const ProtobufCMessageDescriptor *d; /* the answer's */
  peer_fn fn;
  void *ud;
} peer_call;

static int on_peer_answer(void *ud, const char *peer, const char *body, size_t len, const web_fanout_meta *meta, char *why,
                          size_t nwhy, pp_err *err) {
  (void)peer, (void)meta;
  peer_call *c = ud;
  ProtobufCAllocator alloc = {.alloc = arena_budget_alloc, .free = arena_budget_free, .allocator_data = &c->q->a};
  ProtobufCMessage *m = protobuf_c_message_unpack(c->d, &alloc, len, (const uint8_t *)body);
  if (!m) {
    snprintf(why, nwhy, "its answer does not decode as %s within the query's memory budget", c->d->name);
    return 0;
  }
  return c->fn(c->q, m, c->ud) < 0 ? pp_err_set(err, PP_ELIMIT, "%s", c->q->why) : 0;
}

/* Asks every peer for `method` with the request rq (extra: more of the query, "&k=v") and hands
 * each answer (of descriptor d) to fn; their bodies share a quarter of the query's budget. A
 * peer that does not answer is in the request's fan-out info: the answer is partial. */
static int ask_peers(qctx *q, const char *method, const ProtobufCMessage *rq, const char *extra,
                     const ProtobufCMessageDescriptor *d, peer_fn fn, void *ud) {
  if (!has_peers(q)) return 0;
  uint8_t *buf = NULL;
  size_t len = 0;
  if (packed(q, rq, &buf, &len) < 0) return -1;
  char path[160];
  snprintf(path, sizeof path, "%s%s?local=1%s", WEB_QUERIER_PREFIX, method, extra ? extra : "");
  web_fanout_post post = {path, "application/proto", buf, len};
  peer_call c = {q, d, fn, ud};
  pp_err err = {0};
  q->code = NULL;
  if (web_fanout_post_all(q->x->fan, &post, q->x->budget / 4, on_peer_answer, &c, q->x->fi, &err) < 0)
    return q->code ? -1 : fail(q, err.code == PP_ELIMIT ? "resource_exhausted" : "internal", "%s", err.msg);
  return 0;
}

/* The pick's selection merged by every peer (their SelectMergeProfile: one sample type) and
 * merged into *pr, first cut to that one type: *si its column then. */
static int peers_merged(qctx *q, const qpick *p, size_t budget, pprof_profile **pr, int *si) {
  if (!has_peers(q)) return 0;
  if (*pr) {
    if (*si >= 64) return fail(q, "invalid_argument", "the sample type is past the 64 a profile may select from");
    pprof_keep_types(*pr, (uint64_t)1 << *si);
    *si = 0;
  }
  Qv1__SelectMergeProfileRequest rq;
  qv1__select_merge_profile_request__init(&rq);
  rq.profile_typeid = (char *)p->type_id;
  rq.label_selector = (char *)p->selector;
  rq.start = p->start;
  rq.end = p->end;
  uint8_t *buf = NULL;
  size_t len = 0;
  if (packed(q, &rq.base, &buf, &len) < 0) return -1;
  web_fanout_post post = {WEB_QUERIER_PREFIX "SelectMergeProfile?local=1", "application/proto", buf, len};
  pp_err err = {0};
  int r = web_fanout_merge_post(q->x->fan, &post, budget, pr, q->x->fi, &err);
  if (r == PP_ELIMIT)
    return fail(q, "resource_exhausted", "merging the profiles of every shard needs more than this query's memory budget of "
                "%.1f MiB (--web-query-memory): narrow the selection [%s]", (double)budget / 1048576, err.msg);
  if (r < 0) return fail(q, "internal", "%s", err.msg);
  if (*pr && (*si = pprof_sample_index(*pr, p->sample, &err)) < 0) {
    pprof_free(*pr);
    *pr = NULL;
    return fail(q, "internal", "the shards' merge: %s", err.msg);
  }
  return 0;
}

/* The merged profile of a pick (this store's and the peers') and the column of its sample
 * type; *ret NULL when nothing matched. */
static int merged(qctx *q, const qpick *p, size_t budget, pprof_profile **ret, int *si) {
  *ret = NULL;
  if (p->nseries) {
    store_matcher m = {STORE_MATCH_IDS, p->ids};
    pp_err err = {0};
    size_t count = 0;
    int r = store_merged_info(q->x->h->st, &m, 1, p->k->type, p->from, p->to, STORE_AGG_DEFAULT, q->x->max_records, budget,
                              ret, &count, NULL, &err);
    if (r == PP_ELIMIT)
      return fail(q, "resource_exhausted", "merging the profiles needs more than this query's memory budget of %.1f MiB "
                  "(--web-query-memory): narrow the selection [%s]", (double)budget / 1048576, err.msg);
    if (r < 0 && r != PP_EUSAGE) return fail(q, "internal", "%s", err.msg);
    if (r < 0) *ret = NULL; /* PP_EUSAGE: no profiles in range */
    if (*ret && (*si = pprof_sample_index(*ret, p->sample, &err)) < 0) {
      pprof_free(*ret);
      *ret = NULL;
      return fail(q, "invalid_argument", "%s", err.msg);
    }
  }
  return peers_merged(q, p, budget, ret, si);
}

static int stack_selector_ok(qctx *q, const Qv1__StackTraceSelector *s, bool pgo_ok) {
  if (s && s->n_call_site) return fail(q, "unimplemented", "stack_trace_selector.call_site is not supported");
  if (s && s->go_pgo && !pgo_ok) return fail(q, "unimplemented", "stack_trace_selector.go_pgo is only taken by SelectMergeProfile");
  return 0;
}

/* ---- flame graphs ------------------------------------------------------------------------------ */

typedef struct fnode {
  int64_t total[2], self[2];
  uint32_t kid0;  /* first child in kids[], and how many */
  uint32_t nkids;
} fnode;

typedef struct lvl {
  int64_t *v;
  size_t n, cap;
  int64_t end[2]; /* per input: where the level's last node so far ends */
} lvl;

static bool lvl_push(lvl *l, const int64_t *v, size_t n) {
  if (l->n + n > l->cap) {
    size_t nc = l->cap ? 2 * l->cap : 64;
    while (nc < l->n + n) nc *= 2;
    int64_t *nv = realloc(l->v, nc * sizeof *nv);
    if (!nv) return false;
    l->v = nv;
    l->cap = nc;
  }
  memcpy(l->v + l->n, v, n * sizeof *v);
  l->n += n;
  return true;
}

static int cmp_kid(const void *a, const void *b, void *tree) {
  const pprof_multitree *sort_tree = tree;
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  /* by name, as Pyroscope orders a flame graph's frames */
  int c = strcmp(sort_tree->names[x], sort_tree->names[y]);
  return c ? c : (x > y) - (x < y);
}

static int cmp_by_weight(const void *a, const void *b, void *weights) {
  const int64_t *sort_w = weights;
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  if (sort_w[x] != sort_w[y]) return sort_w[x] > sort_w[y] ? -1 : 1;
  return (x > y) - (x < y);
}

/* The tree as Pyroscope's flame graph levels: per level, per node left to right, [offset from
 * the previous node's end, total, self] per input, then the name's index. Nodes beyond the
 * max_nodes largest (by total over the inputs) are summed into one "other" child of their
 * parent. names[0] is "total", the root. */
static int flame(qctx *q, const pprof_multitree *t, size_t nin, size_t max_nodes, char ***ret_names, size_t *ret_nnames,
                 Qv1__Level ***ret_levels, size_t *ret_nlevels, int64_t *ret_max_self) {
  size_t n = t->nnodes;
  int r = 0;
  int64_t *w = malloc((n ? n : 1) * sizeof *w);
  uint32_t *kids = malloc((2 * n + 1) * sizeof *kids), *cnt = calloc(n + 1, sizeof *cnt);
  bool *keep = malloc(n ? n : 1);
  fnode *fn = calloc(2 * n + 1, sizeof *fn); /* the tree's nodes, then one "other" per parent */
  lvl *lv = NULL;
  size_t nlv = 0, nfn = n;
  uint32_t *stack = NULL, *other = NULL;
  htab names;
  memset(&names, 0, sizeof names);
  if (!w || !kids || !cnt || !keep || !fn || htab_init(&names, 256, 0) < 0) goto nomem;
  for (size_t i = 0; i < n; i++) {
    w[i] = 0;
    for (size_t k = 0; k < nin; k++) w[i] += llabs(t->total[i * nin + k]);
  }
  /* the max_nodes heaviest, ties to the earlier node (a parent comes before its children and
   * weighs at least as much, so a kept node's parent is kept too) */
  for (size_t i = 0; i < n; i++) keep[i] = n <= max_nodes;
  if (n > max_nodes) {
    uint32_t *ord = malloc(n * sizeof *ord);
    if (!ord) goto nomem;
    for (size_t i = 0; i < n; i++) ord[i] = (uint32_t)i;
    qsort_r(ord, n, sizeof *ord, cmp_by_weight, w);
    for (size_t i = 0; i < max_nodes; i++) keep[ord[i]] = true;
    free(ord);
  }
  for (size_t i = 1; i < n; i++) keep[i] = keep[i] && keep[t->parent[i]];
  if (!(other = malloc((n ? n : 1) * sizeof *other))) goto nomem;
  for (size_t i = 0; i < n; i++) other[i] = UINT32_MAX;
  for (size_t i = 0; i < n; i++) {
    for (size_t k = 0; k < nin; k++) fn[i].total[k] = t->total[i * nin + k], fn[i].self[k] = t->self[i * nin + k];
  }
  /* children: counted per parent (an "other" counts once), then filled */
  for (size_t i = 1; i < n; i++) {
    uint32_t pa = t->parent[i];
    if (!keep[pa]) continue;
    if (keep[i]) {
      cnt[pa]++;
    } else {
      if (other[pa] == UINT32_MAX) {
        other[pa] = (uint32_t)nfn;
        memset(&fn[nfn], 0, sizeof fn[nfn]);
        nfn++;
        cnt[pa]++;
      }
      for (size_t k = 0; k < nin; k++) fn[other[pa]].total[k] += fn[i].total[k], fn[other[pa]].self[k] += fn[i].total[k];
    }
  }
  uint32_t off = 0;
  for (size_t i = 0; i < n; i++) fn[i].kid0 = off, off += cnt[i], cnt[i] = 0;
  for (size_t i = 1; i < n; i++) {
    uint32_t pa = t->parent[i];
    if (keep[pa] && keep[i]) kids[fn[pa].kid0 + cnt[pa]++] = (uint32_t)i;
  }
  for (size_t i = 0; i < n; i++)
    if (keep[i] && other[i] != UINT32_MAX) kids[fn[i].kid0 + cnt[i]++] = other[i];
  for (size_t i = 0; i < n; i++) {
    fn[i].nkids = cnt[i];
    /* the tree's children by name; an "other" was put last and stays there */
    qsort_r(kids + fn[i].kid0, cnt[i] - (other[i] != UINT32_MAX), sizeof *kids, cmp_kid, (void *)t);
  }
  /* depth-first, leftmost first: within a level, nodes come left to right */
  if (!(stack = malloc((nfn + 1) * sizeof *stack))) goto nomem;
  int64_t *x = calloc((nfn + 1) * 2, sizeof *x); /* each node's left edge, per input */
  uint32_t *depth = calloc(nfn + 1, sizeof *depth);
  if (!x || !depth) {
    free(x);
    free(depth);
    goto nomem;
  }
  size_t sp = 0;
  stack[sp++] = 0;
  int64_t max_self = 0;
  while (sp && r == 0) {
    uint32_t i = stack[--sp];
    uint32_t d = depth[i];
    if (d >= nlv) {
      lvl *nl = realloc(lv, (d + 1) * sizeof *nl);
      if (!nl) {
        r = -1;
        break;
      }
      lv = nl;
      memset(lv + nlv, 0, (d + 1 - nlv) * sizeof *lv);
      nlv = d + 1;
    }
    const char *nm = i == 0 ? "total" : i >= n ? "other" : t->names[i];
    uint32_t ni;
    if (htab_intern(&names, nm, strlen(nm), &ni) < 0) {
      r = -1;
      break;
    }
    int64_t vals[7];
    size_t nv = 0;
    for (size_t k = 0; k < nin; k++) {
      /* offsets are relative to the end of the level's previous node */
      vals[nv++] = x[2 * i + k] - lv[d].end[k];
      lv[d].end[k] = x[2 * i + k] + fn[i].total[k];
      vals[nv++] = fn[i].total[k];
      vals[nv++] = fn[i].self[k];
      if (fn[i].self[k] > max_self) max_self = fn[i].self[k];
    }
    vals[nv++] = ni;
    if (!lvl_push(&lv[d], vals, nv)) {
      r = -1;
      break;
    }
    /* children's left edges: the parent's, then each after its elder siblings; pushed in
     * reverse so the leftmost is next */
    int64_t cx[2] = {x[2 * i], x[2 * i + 1]};
    for (uint32_t j = 0; j < fn[i].nkids; j++) {
      uint32_t c = kids[fn[i].kid0 + j];
      depth[c] = d + 1;
      for (size_t k = 0; k < nin; k++) x[2 * c + k] = cx[k], cx[k] += fn[c].total[k];
    }
    for (uint32_t j = fn[i].nkids; j-- > 0;) stack[sp++] = kids[fn[i].kid0 + j];
  }
  free(x);
  free(depth);
  if (r < 0) goto nomem;
  /* into the answer (the arena) */
  char **nv = arena_calloc(&q->a.mem, names.count ? names.count : 1, sizeof *nv);
  Qv1__Level **lp = arena_calloc(&q->a.mem, nlv ? nlv : 1, sizeof *lp);
  if (!nv || !lp) goto nomem;
  for (uint32_t i = 0; i < names.count; i++) {
    size_t len;
    const char *k = htab_key(&names, i, &len);
    if (!(nv[i] = arena_strndup(&q->a.mem, k, len))) goto nomem;
  }
  for (size_t d = 0; d < nlv; d++) {
    Qv1__Level *l = arena_alloc(&q->a.mem, sizeof *l);
    int64_t *vals = arena_alloc(&q->a.mem, (lv[d].n ? lv[d].n : 1) * sizeof *vals);
    if (!l || !vals) goto nomem;
    qv1__level__init(l);
    memcpy(vals, lv[d].v, lv[d].n * sizeof *vals);
    l->n_values = lv[d].n;
    l->values = vals;
    lp[d] = l;
  }
  *ret_names = nv;
  *ret_nnames = names.count;
  *ret_levels = lp;
  *ret_nlevels = nlv;
  *ret_max_self = max_self;
  goto out;
nomem:
  r = fail(q, "resource_exhausted", "the flame graph needs more memory than this query may take");
out:
  for (size_t d = 0; d < nlv; d++) free(lv[d].v);
  free(lv);
  free(w);
  free(kids);
  free(cnt);
  free(keep);
  free(fn);
  free(stack);
  free(other);
  htab_free(&names);
  return r;
}

/* what one call tree node costs, the tree's and flame()'s arrays together (about 170 bytes), with room */
#define QUERIER_NODE_BYTES 256

static size_t node_limit(int64_t max_nodes, bool *bad) {
  if (max_nodes < 0 || max_nodes > 200000) *bad = true;
  return max_nodes > 0 ? (size_t)max_nodes : 16384;
}

/* The flame graph of profiles ps (one, or left and right), into the answer's fields. */
static int flame_of(qctx *q, pprof_profile **ps, const int *si, size_t nin, size_t max_nodes, char ***names, size_t *nnames,
                    Qv1__Level ***levels, size_t *nlevels, int64_t *max_self, int64_t ticks[2]) {
  /* the call tree and flame()'s arrays within what the merged profiles left of the budget */
  size_t used = (ps[0] ? ps[0]->mem.reserved : 0) + (nin == 2 && ps[1] ? ps[1]->mem.reserved : 0);
  size_t node_cap = used < q->x->budget ? (q->x->budget - used) / QUERIER_NODE_BYTES : 0;
  if (!node_cap) return fail(q, "resource_exhausted", "the merged profiles took this query's whole memory budget");
  pprof_multitree t;
  memset(&t, 0, sizeof t);
  pp_err err = {0};
  /* an input without data (nothing matched): the other profile read twice, this side's values
   * zeroed in the tree (what an empty profile would give, without copying one) */
  int zeroed = -1;
  const pprof_profile *in[2] = {NULL, NULL};
  int sis[2] = {0, 0};
  for (size_t k = 0; k < nin; k++) {
    in[k] = ps[k];
    sis[k] = si[k];
    ticks[k] = 0;
  }
  for (size_t k = 0; k < nin; k++)
    if (!in[k]) {
      const pprof_profile *o = nin == 2 ? ps[1 - k] : NULL;
      if (!o) {
        /* nothing at all: the empty flame graph */
        char **nm = arena_alloc(&q->a.mem, sizeof *nm);
        Qv1__Level **lp = arena_alloc(&q->a.mem, sizeof *lp);
        Qv1__Level *l = arena_alloc(&q->a.mem, sizeof *l);
        int64_t *v = arena_calloc(&q->a.mem, 3 * nin + 1, sizeof *v);
        if (!nm || !lp || !l || !v) return fail(q, "resource_exhausted", "out of memory");
        nm[0] = "total";
        qv1__level__init(l);
        l->n_values = 3 * nin + 1;
        l->values = v;
        lp[0] = l;
        *names = nm, *nnames = 1, *levels = lp, *nlevels = 1, *max_self = 0;
        return 0;
      }
      in[k] = o;
      sis[k] = si[1 - k];
      zeroed = (int)k;
    }
  int r = pprof_multitree_compute(in, sis, nin, node_cap, &t, &err);
  if (r < 0)
    return fail(q, r == PP_ELIMIT ? "resource_exhausted" : "internal", "%s%s", err.msg,
                r == PP_ELIMIT ? " (within this query's memory budget, --web-query-memory)" : "");
  for (size_t i = 0; zeroed >= 0 && i < t.nnodes; i++) t.total[i * nin + (size_t)zeroed] = t.self[i * nin + (size_t)zeroed] = 0;
  for (size_t k = 0; k < nin; k++) ticks[k] = t.total[k];
  r = flame(q, &t, nin, max_nodes, names, nnames, levels, nlevels, max_self);
  pprof_multitree_release(&t);
  return r;
}

/* ---- the methods --------------------------------------------------------------------------------- */

/* A peer's profile types, label names or values into the set (ud). */
static int add_peer_types(qctx *q, const ProtobufCMessage *answer, void *ud) {
  const Qv1__ProfileTypesResponse *a = (const void *)answer;
  int r = 0;
  char sample[256];
  for (size_t i = 0; i < a->n_profile_types && r == 0; i++) /* (only ids of our form: they are split in five) */
    if (a->profile_types[i]->id && parse_type_id(a->profile_types[i]->id, sample, sizeof sample))
      r = strset_add(q, ud, a->profile_types[i]->id);
  return r;
}

static int add_peer_names(qctx *q, const ProtobufCMessage *answer, void *ud) {
  const Qv1__NamesResponse *a = (const void *)answer;
  int r = 0;
  for (size_t i = 0; i < a->n_names && r == 0; i++) r = strset_add(q, ud, a->names[i]);
  return r;
}


static int do_profile_types(qctx *q, const ProtobufCMessage *in, ProtobufCMessage **out) {
  const Qv1__ProfileTypesRequest *rq = (const void *)in;
  int64_t from, to;
  vseries *v;
  size_t n;
  if (range_ns(q, rq->start, rq->end, &from, &to) < 0 || list_vseries(q, NULL, from, to, &v, &n) < 0) return -1;
  strset s = {0};
  int r = htab_init(&s.h, 64, 0) < 0 ? fail(q, "resource_exhausted", "out of memory") : 0;
  for (size_t i = 0; i < n && r == 0; i++) r = strset_add(q, &s, v[i].id);
  if (r == 0) r = ask_peers(q, "ProfileTypes", in, NULL, &qv1__profile_types_response__descriptor, add_peer_types, &s);
  Qv1__ProfileTypesResponse *res = arena_alloc(&q->a.mem, sizeof *res);
  Qv1__ProfileType **pt = arena_calloc(&q->a.mem, s.n ? s.n : 1, sizeof *pt), *e = arena_calloc(&q->a.mem, s.n ? s.n : 1, sizeof *e);
  if (r == 0 && (!res || !pt || !e)) r = fail(q, "resource_exhausted", "out of memory");
  if (r == 0) {
    if (s.n) qsort(s.v, s.n, sizeof *s.v, cmp_str); /* (s.v is NULL when empty) */
    qv1__profile_types_response__init(res);
    for (size_t i = 0; i < s.n && r == 0; i++) {
      qv1__profile_type__init(&e[i]);
      char *id = adup(q, s.v[i]), *f[5];
      if (!id) {
        r = fail(q, "resource_exhausted", "out of memory");
        break;
      }
      e[i].id = (char *)s.v[i];
      /* the id's five parts, split in a copy */
      for (size_t k = 0; k < 5; k++) {
        f[k] = id;
        char *c = strchr(id, ':');
        if (c) *c = '\0', id = c + 1;
      }
      e[i].name = f[0], e[i].sample_type = f[1], e[i].sample_unit = f[2], e[i].period_type = f[3], e[i].period_unit = f[4];
      pt[i] = &e[i];
    }
    res->n_profile_types = s.n;
    res->profile_types = pt;
    *out = &res->base;
  }
  htab_free(&s.h);
  free(s.v);
  return r;
}

/* LabelNames (name NULL) and LabelValues (the values of name). */
static int do_label_names_values(qctx *q, const ProtobufCMessage *in, char **matchers, size_t nm, int64_t start, int64_t end,
                                 const char *name, ProtobufCMessage **out) {
  int64_t from, to;
  vseries *v;
  size_t n;
  web_querier_sel **sel;
  if (name && !*name) return fail(q, "invalid_argument", "name: want a label name");
  if (range_ns(q, start, end, &from, &to) < 0 || parse_matchers(q, matchers, nm, &sel) < 0) return -1;
  if (list_vseries(q, NULL, from, to, &v, &n) < 0) {
    free_matchers(sel);
    return -1;
  }
  strset s = {0};
  int r = htab_init(&s.h, 64, 0) < 0 ? fail(q, "resource_exhausted", "out of memory") : 0;
  for (size_t i = 0; i < n && r == 0; i++) {
    if (!match_any(sel, &v[i])) continue;
    for (size_t j = 0; j < v[i].nl && r == 0; j++)
      if (!name) r = strset_add(q, &s, v[i].lk[j]);
      else if (!strcmp(v[i].lk[j], name)) r = strset_add(q, &s, v[i].lv[j]);
  }
  free_matchers(sel);
  if (r == 0)
    r = ask_peers(q, name ? "LabelValues" : "LabelNames", in, NULL, &qv1__names_response__descriptor, add_peer_names, &s);
  Qv1__NamesResponse *res = arena_alloc(&q->a.mem, sizeof *res);
  char **names = arena_calloc(&q->a.mem, s.n ? s.n : 1, sizeof *names);
  if (r == 0 && (!res || !names)) r = fail(q, "resource_exhausted", "out of memory");
  if (r == 0) {
    if (s.n) qsort(s.v, s.n, sizeof *s.v, cmp_str); /* (s.v is NULL when empty) */
    qv1__names_response__init(res);
    for (size_t i = 0; i < s.n; i++) names[i] = (char *)s.v[i];
    res->n_names = s.n;
    res->names = names;
    *out = &res->base;
  }
  htab_free(&s.h);
  free(s.v);
  return r;
}

/* The peers' label sets not seen yet (keyed as do_series keys its own). */
typedef struct peer_sets {
  htab *seen;
  Qv1__Labels **v;
  size_t n, cap;
} peer_sets;

static int add_peer_sets(qctx *q, const ProtobufCMessage *answer, void *ud) {
  const Qv1__SeriesResponse *a = (const void *)answer;
  peer_sets *ps = ud;
  pp_buf key;
  pp_buf_init(&key, 0);
  int r = 0;
  for (size_t i = 0; i < a->n_labels_set && r == 0; i++) {
    const Qv1__Labels *l = a->labels_set[i];
    pp_buf_clear(&key);
    for (size_t j = 0; j < l->n_labels; j++) {
      const char *k = l->labels[j]->name ? l->labels[j]->name : "", *v = l->labels[j]->value ? l->labels[j]->value : "";
      pp_buf_put(&key, k, strlen(k) + 1);
      pp_buf_put(&key, v, strlen(v) + 1);
    }
    uint32_t idx;
    int nw = key.failed ? -1 : key.len ? htab_intern(ps->seen, key.p, key.len, &idx) : 0;
    if (nw < 0) r = fail(q, "resource_exhausted", "out of memory");
    if (nw != 1) continue;
    if (ps->n == ps->cap) {
      size_t nc = ps->cap ? 2 * ps->cap : 64;
      Qv1__Labels **nv = realloc(ps->v, nc * sizeof *nv);
      if (!nv) {
        r = fail(q, "resource_exhausted", "out of memory");
        break;
      }
      ps->v = nv, ps->cap = nc;
    }
    ps->v[ps->n++] = (Qv1__Labels *)l; /* (in the request's arena, as the answer is) */
  }
  pp_buf_free(&key);
  return r;
}

static int do_series(qctx *q, const ProtobufCMessage *in, ProtobufCMessage **out) {
  const Qv1__SeriesRequest *rq = (const void *)in;
  int64_t from, to;
  vseries *v;
  size_t n;
  web_querier_sel **sel;
  if (rq->n_label_names > 64) return fail(q, "invalid_argument", "more than 64 label_names");
  if (range_ns(q, rq->start, rq->end, &from, &to) < 0 || parse_matchers(q, rq->matchers, rq->n_matchers, &sel) < 0) return -1;
  if (list_vseries(q, NULL, from, to, &v, &n) < 0) {
    free_matchers(sel);
    return -1;
  }
  /* each series' label set (restricted to label_names), once: keyed by its text */
  strset s = {0};
  int r = htab_init(&s.h, 64, 0) < 0 ? fail(q, "resource_exhausted", "out of memory") : 0;
  size_t *first = NULL, nfirst = 0; /* the vseries giving each distinct set */
  pp_buf key;
  pp_buf_init(&key, 0);
  for (size_t i = 0; i < n && r == 0; i++) {
    if (!match_any(sel, &v[i])) continue;
    pp_buf_clear(&key);
    for (size_t j = 0; j < v[i].nl; j++) {
      bool want = !rq->n_label_names;
      for (size_t k = 0; k < rq->n_label_names && !want; k++) want = !strcmp(rq->label_names[k], v[i].lk[j]);
      if (!want) continue;
      pp_buf_put(&key, v[i].lk[j], strlen(v[i].lk[j]) + 1);
      pp_buf_put(&key, v[i].lv[j], strlen(v[i].lv[j]) + 1);
    }
    if (key.failed) r = fail(q, "resource_exhausted", "out of memory");
    uint32_t idx;
    int in_new = r == 0 ? htab_intern(&s.h, key.p ? key.p : "", key.len, &idx) : 0;
    if (in_new < 0) r = fail(q, "resource_exhausted", "out of memory");
    if (in_new == 1 && key.len) {
      size_t *nf = realloc(first, (nfirst + 1) * sizeof *nf);
      if (!nf) r = fail(q, "resource_exhausted", "out of memory");
      else first = nf, first[nfirst++] = i;
    }
  }
  pp_buf_free(&key);
  free_matchers(sel);
  peer_sets ps = {&s.h, NULL, 0, 0};
  if (r == 0) r = ask_peers(q, "Series", in, NULL, &qv1__series_response__descriptor, add_peer_sets, &ps);
  htab_free(&s.h);
  Qv1__SeriesResponse *res = arena_alloc(&q->a.mem, sizeof *res);
  Qv1__Labels **sets = arena_calloc(&q->a.mem, nfirst + ps.n ? nfirst + ps.n : 1, sizeof *sets);
  if (r == 0 && (!res || !sets)) r = fail(q, "resource_exhausted", "out of memory");
  for (size_t i = 0; i < nfirst && r == 0; i++) {
    const vseries *e = &v[first[i]];
    Qv1__Labels *l = arena_alloc(&q->a.mem, sizeof *l);
    Qv1__LabelPair **pp = arena_calloc(&q->a.mem, e->nl ? e->nl : 1, sizeof *pp);
    Qv1__LabelPair *pv = arena_calloc(&q->a.mem, e->nl ? e->nl : 1, sizeof *pv);
    if (!l || !pp || !pv) {
      r = fail(q, "resource_exhausted", "out of memory");
      break;
    }
    qv1__labels__init(l);
    for (size_t j = 0; j < e->nl; j++) {
      bool want = !rq->n_label_names;
      for (size_t k = 0; k < rq->n_label_names && !want; k++) want = !strcmp(rq->label_names[k], e->lk[j]);
      if (!want) continue;
      qv1__label_pair__init(&pv[l->n_labels]);
      pv[l->n_labels].name = (char *)e->lk[j];
      pv[l->n_labels].value = (char *)e->lv[j];
      pp[l->n_labels] = &pv[l->n_labels];
      l->n_labels++;
    }
    l->labels = pp;
    sets[i] = l;
  }
  free(first);
  for (size_t i = 0; i < ps.n && r == 0; i++) sets[nfirst + i] = ps.v[i];
  free(ps.v);
  if (r < 0) return r;
  qv1__series_response__init(res);
  res->n_labels_set = nfirst + ps.n;
  res->labels_set = sets;
  *out = &res->base;
  return 0;
}

/* One side of a flame graph request: its pick and merged profile. */
static int stacktraces_side(qctx *q, const Qv1__SelectMergeStacktracesRequest *rq, size_t budget, qpick *p,
                            pprof_profile **pr, int *si) {
  *pr = NULL;
  if (rq->format > 1) return fail(q, "unimplemented", "format %d: only the flame graph (PROFILE_FORMAT_FLAMEGRAPH) is served", rq->format);
  if (rq->n_profile_id_selector) return fail(q, "unimplemented", "profile_id_selector is not supported");
  if (stack_selector_ok(q, rq->stack_trace_selector, false) < 0) return -1;
  if (pick(q, rq->profile_typeid, rq->label_selector, rq->start, rq->end, p) < 0) return -1;
  return merged(q, p, budget, pr, si);
}

static int do_stacktraces(qctx *q, const ProtobufCMessage *in, ProtobufCMessage **out) {
  const Qv1__SelectMergeStacktracesRequest *rq = (const void *)in;
  bool bad = false;
  size_t max_nodes = node_limit(rq->max_nodes, &bad);
  if (bad) return fail(q, "invalid_argument", "max_nodes: 1..200000 (default 16384)");
  qpick p;
  pprof_profile *pr;
  int si = 0;
  if (stacktraces_side(q, rq, q->x->budget, &p, &pr, &si) < 0) return -1;
  Qv1__SelectMergeStacktracesResponse *res = arena_alloc(&q->a.mem, sizeof *res);
  Qv1__FlameGraph *fg = arena_alloc(&q->a.mem, sizeof *fg);
  if (!res || !fg) {
    pprof_free(pr);
    return fail(q, "resource_exhausted", "out of memory");
  }
  qv1__select_merge_stacktraces_response__init(res);
  qv1__flame_graph__init(fg);
  int64_t ticks[2];
  int r = flame_of(q, &pr, &si, 1, max_nodes, &fg->names, &fg->n_names, &fg->levels, &fg->n_levels, &fg->max_self, ticks);
  pprof_free(pr);
  if (r < 0) return r;
  fg->total = ticks[0];
  res->flamegraph = fg;
  *out = &res->base;
  return 0;
}

static int do_diff(qctx *q, const ProtobufCMessage *in, ProtobufCMessage **out) {
  const Qv1__DiffRequest *rq = (const void *)in;
  if (!rq->left || !rq->right) return fail(q, "invalid_argument", "left and right: both selections are needed");
  bool bad = false;
  node_limit(rq->left->max_nodes, &bad);
  size_t max_nodes = node_limit(rq->left->max_nodes > rq->right->max_nodes ? rq->left->max_nodes : rq->right->max_nodes, &bad);
  if (bad) return fail(q, "invalid_argument", "max_nodes: 1..200000 (default 16384)");
  qpick pl, pr_;
  pprof_profile *ps[2] = {NULL, NULL};
  int si[2] = {0, 0};
  int r = stacktraces_side(q, rq->left, q->x->budget, &pl, &ps[0], &si[0]);
  size_t used = ps[0] ? ps[0]->mem.reserved : 0;
  if (r == 0 && used >= q->x->budget) r = fail(q, "resource_exhausted", "the left selection took this query's whole memory budget");
  if (r == 0) r = stacktraces_side(q, rq->right, q->x->budget - used, &pr_, &ps[1], &si[1]);
  if (r == 0 && ps[0] && ps[1] &&
      strcmp(pprof_str(ps[0], ps[0]->sample_type[si[0]].unit), pprof_str(ps[1], ps[1]->sample_type[si[1]].unit)))
    r = fail(q, "invalid_argument", "left and right have different units");
  Qv1__DiffResponse *res = arena_alloc(&q->a.mem, sizeof *res);
  Qv1__FlameGraphDiff *fg = arena_alloc(&q->a.mem, sizeof *fg);
  if (r == 0 && (!res || !fg)) r = fail(q, "resource_exhausted", "out of memory");
  int64_t ticks[2] = {0, 0};
  if (r == 0) {
    qv1__diff_response__init(res);
    qv1__flame_graph_diff__init(fg);
    r = flame_of(q, ps, si, 2, max_nodes, &fg->names, &fg->n_names, &fg->levels, &fg->n_levels, &fg->max_self, ticks);
  }
  pprof_free(ps[0]);
  pprof_free(ps[1]);
  if (r < 0) return r;
  fg->total = ticks[0] + ticks[1];
  fg->leftticks = ticks[0];
  fg->rightticks = ticks[1];
  res->flamegraph = fg;
  *out = &res->base;
  return 0;
}

static int do_merge_profile(qctx *q, const ProtobufCMessage *in, web_resp *out) {
  const Qv1__SelectMergeProfileRequest *rq = (const void *)in;
  if (rq->n_profile_id_selector) return fail(q, "unimplemented", "profile_id_selector is not supported");
  if (stack_selector_ok(q, rq->stack_trace_selector, true) < 0) return -1;
  qpick p;
  pprof_profile *pr = NULL;
  int si = 0;
  if (pick(q, rq->profile_typeid, rq->label_selector, rq->start, rq->end, &p) < 0 || merged(q, &p, q->x->budget, &pr, &si) < 0)
    return -1;
  uint8_t *buf = NULL;
  size_t len = 0;
  pp_err err = {0};
  int r = 0;
  if (pr) {
    /* the one sample type asked for, as Pyroscope answers */
    if (si >= 64) r = fail(q, "invalid_argument", "the sample type is past the 64 a profile may select from");
    else pprof_keep_types(pr, (uint64_t)1 << si);
    const Qv1__GoPGO *g = rq->stack_trace_selector ? rq->stack_trace_selector->go_pgo : NULL;
    if (r == 0 && g) {
      pprof_pgo_opts o = {.keep_locations = g->keep_locations, .aggregate_callees = g->aggregate_callees};
      pprof_profile *trimmed = NULL;
      size_t used = pr->mem.reserved;
      int tr = used < q->x->budget ? pprof_pgo_trim(pr, &o, q->x->budget - used, &trimmed, &err) : PP_ELIMIT;
      if (tr < 0) r = fail(q, tr == PP_ELIMIT ? "resource_exhausted" : "internal", "go_pgo: %s", tr == PP_ELIMIT ? "over this query's memory budget" : err.msg);
      else pprof_free(pr), pr = trimmed;
    }
    if (r == 0 && pprof_encode(pr, 0, &buf, &len, &err) < 0) r = fail(q, "internal", "%s", err.msg);
    pprof_free(pr);
  }
  if (r < 0) {
    free(buf);
    return r;
  }
  if (!q->json) {
    /* the profile's protobuf is the answer's body as it is */
    pp_buf b;
    pp_buf_init(&b, 0);
    pp_buf_put(&b, buf ? buf : (uint8_t *)"", len);
    web_resp_buf(out, 200, "application/proto", &b);
    pp_buf_free(&b);
    free(buf);
    return 0;
  }
  ProtobufCAllocator alloc = {.alloc = arena_budget_alloc, .free = arena_budget_free, .allocator_data = &q->a};
  ProtobufCMessage *m = protobuf_c_message_unpack(&pprofwire__profile__descriptor, &alloc, len, buf ? buf : (uint8_t *)"");
  free(buf);
  if (!m) return fail(q, "resource_exhausted", "the profile needs more memory as JSON than this query may take");
  web_connect_answer(out, true, m, q->x->budget);
  return 0;
}

typedef struct spoint {
  uint32_t group;
  int64_t bucket;
  double sum;
  int64_t count;
} spoint;

static int cmp_spoint(const void *a, const void *b) {
  const spoint *x = a, *y = b;
  if (x->group != y->group) return x->group < y->group ? -1 : 1;
  return (x->bucket > y->bucket) - (x->bucket < y->bucket);
}

typedef struct sgroup {
  const vseries *first;   /* its labels: a local series of the group's, or */
  const Qv1__Series *peer; /* a peer's series of it (its labels are the group_by ones) */
  double total;
} sgroup;

static int cmp_sgroup_total(const void *a, const void *b) {
  const sgroup *x = a, *y = b;
  return (x->total < y->total) - (x->total > y->total);
}

/* The column of a sample type in a row's "type/unit,..." list, or -1. */
static int column_of(const char *types, const char *sample) {
  size_t sl = strlen(sample);
  int k = 0;
  for (const char *p = types; p && *p; k++) {
    if (!strncmp(p, sample, sl) && p[sl] == '/') return k;
    p = strchr(p, ',');
    if (p) p++;
  }
  return -1;
}

static int64_t total_at(const char *totals, int col) {
  const char *p = totals;
  for (int k = 0; p && k < col; k++) {
    p = strchr(p, ',');
    if (p) p++;
  }
  return p ? strtoll(p, NULL, 10) : 0;
}

/* series by their labels, name then value, pair by pair; fewer labels first on a tie */
static int cmp_series(const void *a, const void *b) {
  const Qv1__Series *x = *(Qv1__Series *const *)a, *y = *(Qv1__Series *const *)b;
  for (size_t t = 0; t < x->n_labels && t < y->n_labels; t++) {
    int c = strcmp(x->labels[t]->name, y->labels[t]->name);
    if (!c) c = strcmp(x->labels[t]->value, y->labels[t]->value);
    if (c) return c;
  }
  return (x->n_labels > y->n_labels) - (x->n_labels < y->n_labels);
}

/* SelectSeries' groups and their points (this store's and the peers'), grown as they come. */
typedef struct sacc {
  const Qv1__SelectSeriesRequest *rq;
  int64_t step_ms;
  htab bykey; /* group key (group_by values, each \0-ended) -> index in g */
  sgroup *g;
  size_t ng;
  spoint *pts;
  size_t npts, cap;
  pp_buf key;
  bool counts; /* the peers' answers being added are counts, not sums */
} sacc;

/* An empty accumulator for rq at step_ms; -1 (failed on q) when out of memory, and then a
 * sacc_free is still due. */
static int sacc_init(qctx *q, sacc *a, const Qv1__SelectSeriesRequest *rq, int64_t step_ms) {
  memset(a, 0, sizeof *a);
  a->rq = rq;
  a->step_ms = step_ms;
  pp_buf_init(&a->key, 0);
  return htab_init(&a->bykey, 64, 0) < 0 ? fail(q, "resource_exhausted", "out of memory") : 0;
}

static void sacc_free(sacc *a) {
  pp_buf_free(&a->key);
  free(a->pts);
  free(a->g);
  htab_free(&a->bykey);
}

/* The group of the key in a->key: its index, made when new (with first or peer for its labels). */
static int sacc_group(qctx *q, sacc *a, const vseries *first, const Qv1__Series *peer, uint32_t *gi) {
  int nw = a->key.failed ? -1 : htab_intern(&a->bykey, a->key.p ? a->key.p : "", a->key.len, gi);
  if (nw < 0) return fail(q, "resource_exhausted", "out of memory");
  if (nw == 1) {
    sgroup *ng = realloc(a->g, (a->ng + 1) * sizeof *ng);
    if (!ng) return fail(q, "resource_exhausted", "out of memory");
    a->g = ng;
    a->g[a->ng++] = (sgroup){.first = first, .peer = peer};
  }
  return 0;
}

static int sacc_point(qctx *q, sacc *a, uint32_t gi, int64_t bucket, double sum, int64_t count) {
  if (a->npts == a->cap) {
    size_t nc = a->cap ? 2 * a->cap : 256;
    spoint *np = realloc(a->pts, nc * sizeof *np);
    if (!np) return fail(q, "resource_exhausted", "out of memory");
    a->pts = np, a->cap = nc;
  }
  a->pts[a->npts++] = (spoint){gi, bucket, sum, count};
  a->g[gi].total += sum;
  return 0;
}

/* A peer's series (sums, or counts with a->counts) into the groups, point by point. */
static int add_peer_series(qctx *q, const ProtobufCMessage *answer, void *ud) {
  const Qv1__SelectSeriesResponse *res = (const void *)answer;
  sacc *a = ud;
  const Qv1__SelectSeriesRequest *rq = a->rq;
  int r = 0;
  for (size_t i = 0; i < res->n_series && r == 0; i++) {
    const Qv1__Series *e = res->series[i];
    pp_buf_clear(&a->key);
    for (size_t k = 0; k < rq->n_group_by; k++) {
      const char *val = "";
      for (size_t j = 0; j < e->n_labels; j++)
        if (e->labels[j]->name && e->labels[j]->value && !strcmp(e->labels[j]->name, rq->group_by[k])) val = e->labels[j]->value;
      pp_buf_put(&a->key, val, strlen(val) + 1);
    }
    uint32_t gi;
    if ((r = sacc_group(q, a, NULL, e, &gi)) < 0) break;
    for (size_t j = 0; j < e->n_points && r == 0; j++) {
      const Qv1__Point *pt = e->points[j];
      /* the same request's buckets: start + k * step; anything else is not of this query */
      if (pt->timestamp < rq->start || pt->timestamp > rq->end || (pt->timestamp - rq->start) % a->step_ms ||
          !isfinite(pt->value))
        continue;
      int64_t b = (pt->timestamp - rq->start) / a->step_ms;
      /* (a count past 2^53 is no count of profiles: kept there, so that sums stay in range) */
      int64_t c = pt->value >= 0x1p53 ? (int64_t)1 << 53 : pt->value > 0 ? llround(pt->value) : 0;
      r = a->counts ? sacc_point(q, a, gi, b, 0, c) : sacc_point(q, a, gi, b, pt->value, 0);
    }
  }
  return r;
}

/* This store's points of the pick into the groups. */
static int local_points(qctx *q, const qpick *p, sacc *a) {
  const Qv1__SelectSeriesRequest *rq = a->rq;
  store_row *rows = NULL;
  size_t nrows = 0;
  pp_err err = {0};
  store_matcher m = {STORE_MATCH_IDS, p->ids};
  if (store_list_points(q->x->h->st, &m, 1, p->k->type, p->from, p->to, q->x->max_records, &rows, &nrows, &err) < 0)
    return fail(q, "internal", "%s", err.msg);
  /* series id -> its vseries (the matching one of this type) */
  htab bysid;
  memset(&bysid, 0, sizeof bysid);
  uint32_t *vs_of = malloc((p->nv ? p->nv : 1) * sizeof *vs_of);
  int r = !vs_of || htab_init(&bysid, 64, 0) < 0 ? fail(q, "resource_exhausted", "out of memory") : 0;
  for (size_t i = 0; i < p->nv && r == 0; i++) {
    if (!p->hit[i]) continue;
    uint32_t idx;
    if (htab_intern(&bysid, &p->v[i].sid, sizeof p->v[i].sid, &idx) < 0) r = fail(q, "resource_exhausted", "out of memory");
    else vs_of[idx] = (uint32_t)i;
  }
  for (size_t i = 0; i < nrows && r == 0; i++) {
    int64_t si = htab_find(&bysid, &rows[i].series_id, sizeof rows[i].series_id);
    int col = si >= 0 ? column_of(rows[i].sample_types, p->sample) : -1;
    if (col < 0) continue;
    const vseries *v = &p->v[vs_of[si]];
    pp_buf_clear(&a->key);
    for (size_t k = 0; k < rq->n_group_by; k++) {
      const char *val = "";
      for (size_t j = 0; j < v->nl; j++)
        if (!strcmp(v->lk[j], rq->group_by[k])) val = v->lv[j];
      pp_buf_put(&a->key, val, strlen(val) + 1);
    }
    uint32_t gi;
    if ((r = sacc_group(q, a, v, NULL, &gi)) < 0) break;
    /* a rollup's totals are the mean of the profiles it stands for */
    int64_t cnt = rows[i].count > 0 ? rows[i].count : 1;
    double val = (double)total_at(rows[i].totals, col) * (double)cnt;
    int64_t end_ms = rows[i].end_ns / 1000000;
    int64_t b = end_ms < rq->start ? 0 : (end_ms - rq->start) / a->step_ms;
    r = sacc_point(q, a, gi, b, val, cnt);
  }
  store_rows_free(rows, nrows);
  free(vs_of);
  htab_free(&bysid);
  return r;
}

/* The groups' series, points of a bucket summed (averaged; or counted, for a peer that asked),
 * the largest `limit` groups by total alone when limit is set, in the order of their labels. */
static int series_of(qctx *q, sacc *a, Qv1__SelectSeriesResponse *res) {
  const Qv1__SelectSeriesRequest *rq = a->rq;
  bool *dropped = calloc(a->ng ? a->ng : 1, sizeof *dropped);
  if (!dropped) return fail(q, "resource_exhausted", "out of memory");
  int r = 0;
  if (rq->limit > 0 && (size_t)rq->limit < a->ng) {
    sgroup *c = malloc(a->ng * sizeof *c);
    if (!c) {
      free(dropped);
      return fail(q, "resource_exhausted", "out of memory");
    }
    memcpy(c, a->g, a->ng * sizeof *c);
    qsort(c, a->ng, sizeof *c, cmp_sgroup_total);
    double thr = c[rq->limit - 1].total;
    size_t kept = 0;
    for (size_t i = 0; i < a->ng; i++) {
      dropped[i] = a->g[i].total < thr || kept >= (size_t)rq->limit;
      if (!dropped[i]) kept++;
    }
    free(c);
  }
  if (a->npts) qsort(a->pts, a->npts, sizeof *a->pts, cmp_spoint);
  size_t nout = 0;
  for (size_t i = 0; i < a->ng; i++) nout += !dropped[i];
  Qv1__Series **sv = arena_calloc(&q->a.mem, nout ? nout : 1, sizeof *sv);
  if (!sv) r = fail(q, "resource_exhausted", "out of memory");
  size_t o = 0;
  const spoint *pts = a->pts;
  for (size_t s0 = 0; s0 < a->npts && r == 0;) {
    size_t e = s0;
    while (e < a->npts && pts[e].group == pts[s0].group) e++;
    uint32_t gi = pts[s0].group;
    if (dropped[gi]) {
      s0 = e;
      continue;
    }
    size_t nb = 0;
    for (size_t i = s0; i < e; i++) nb += i == s0 || pts[i].bucket != pts[i - 1].bucket;
    Qv1__Series *s = arena_alloc(&q->a.mem, sizeof *s);
    Qv1__Point **pp = arena_calloc(&q->a.mem, nb, sizeof *pp);
    Qv1__Point *pv = arena_calloc(&q->a.mem, nb, sizeof *pv);
    Qv1__LabelPair **lp = arena_calloc(&q->a.mem, rq->n_group_by ? rq->n_group_by : 1, sizeof *lp);
    Qv1__LabelPair *lv = arena_calloc(&q->a.mem, rq->n_group_by ? rq->n_group_by : 1, sizeof *lv);
    if (!s || !pp || !pv || !lp || !lv) {
      r = fail(q, "resource_exhausted", "out of memory");
      break;
    }
    qv1__series__init(s);
    const sgroup *g = &a->g[gi];
    for (size_t k = 0; k < rq->n_group_by; k++) {
      const char *val = NULL; /* (a label the group's series lack is left out, as Pyroscope does) */
      if (g->first) {
        for (size_t j = 0; j < g->first->nl; j++)
          if (!strcmp(g->first->lk[j], rq->group_by[k])) val = g->first->lv[j];
      } else {
        for (size_t j = 0; j < g->peer->n_labels; j++)
          if (g->peer->labels[j]->name && g->peer->labels[j]->value && !strcmp(g->peer->labels[j]->name, rq->group_by[k]))
            val = g->peer->labels[j]->value;
      }
      if (!val) continue;
      qv1__label_pair__init(&lv[s->n_labels]);
      lv[s->n_labels].name = rq->group_by[k];
      lv[s->n_labels].value = (char *)val;
      lp[s->n_labels] = &lv[s->n_labels];
      s->n_labels++;
    }
    s->labels = lp;
    size_t k = 0;
    for (size_t i = s0; i < e;) {
      size_t j = i;
      double sum = 0;
      int64_t cnt = 0;
      for (; j < e && pts[j].bucket == pts[i].bucket; j++) /* (counts saturate: many peers' answers) */
        sum += pts[j].sum, cnt = pts[j].count > INT64_MAX - cnt ? INT64_MAX : cnt + pts[j].count;
      qv1__point__init(&pv[k]);
      pv[k].timestamp = rq->start + pts[i].bucket * a->step_ms;
      pv[k].value = q->counts ? (double)cnt : rq->aggregation == 1 && cnt ? sum / (double)cnt : sum;
      pp[k] = &pv[k];
      k++;
      i = j;
    }
    s->n_points = nb;
    s->points = pp;
    sv[o++] = s;
    s0 = e;
  }
  if (r == 0) {
    qsort(sv, o, sizeof *sv, cmp_series);
    res->n_series = o;
    res->series = sv;
  }
  free(dropped);
  return r;
}

static int do_select_series(qctx *q, const ProtobufCMessage *in, ProtobufCMessage **out) {
  const Qv1__SelectSeriesRequest *rq = (const void *)in;
  if (rq->n_group_by > 16) return fail(q, "invalid_argument", "more than 16 group_by labels");
  if (!isfinite(rq->step) || rq->step < 0) return fail(q, "invalid_argument", "step: seconds, a positive number");
  if (rq->aggregation != 0 && rq->aggregation != 1)
    return fail(q, "invalid_argument", "aggregation: TIME_SERIES_AGGREGATION_TYPE_SUM or _AVERAGE");
  if (rq->limit < 0) return fail(q, "invalid_argument", "limit: 0 (all) or more");
  if (stack_selector_ok(q, rq->stack_trace_selector, false) < 0) return -1;
  if (!rq->start || !rq->end) return fail(q, "invalid_argument", "start and end: both are needed for a time series");
  if (rq->step > 1e9) return fail(q, "invalid_argument", "step: at most 1e9 seconds");
  int64_t step_ms = rq->step > 0 ? (int64_t)llround(rq->step * 1000) : 15000;
  if (step_ms < 1) step_ms = 1;
  if (rq->end > rq->start && (rq->end - rq->start) / step_ms + 1 > WEB_QUERIER_MAX_POINTS)
    return fail(q, "invalid_argument", "%lld steps of %.3f s: more than the %d points a series may have; take a longer step",
                (long long)((rq->end - rq->start) / step_ms + 1), step_ms / 1000.0, WEB_QUERIER_MAX_POINTS);
  for (size_t k = 0; k < rq->n_group_by; k++)
    if (!rq->group_by[k]) return fail(q, "invalid_argument", "group_by: a label name each");
  qpick p;
  if (pick(q, rq->profile_typeid, rq->label_selector, rq->start, rq->end, &p) < 0) return -1;
  /* every profile is a point read: as many as a merge may take (--web-max-records), not more */
  if (p.nrecords > (int64_t)q->x->max_records)
    return fail(q, "resource_exhausted", "%lld profiles in the selection's range, more than the %zu a time series reads: narrow "
                "the range or the selector", (long long)p.nrecords, q->x->max_records);
  Qv1__SelectSeriesResponse *res = arena_alloc(&q->a.mem, sizeof *res);
  if (!res) return fail(q, "resource_exhausted", "out of memory");
  qv1__select_series_response__init(res);
  *out = &res->base;
  sacc a;
  int r = sacc_init(q, &a, rq, step_ms);
  if (r == 0 && p.nseries) r = local_points(q, &p, &a);
  if (r == 0 && has_peers(q)) {
    /* the peers' sums of every group (the limit is the whole answer's), and for a mean each
     * bucket's profile count too */
    Qv1__SelectSeriesRequest pr = *rq;
    pr.limit = 0;
    pr.aggregation = 0;
    r = ask_peers(q, "SelectSeries", &pr.base, NULL, &qv1__select_series_response__descriptor, add_peer_series, &a);
    a.counts = true; /* (the answers from here on are counts) */
    if (r == 0 && rq->aggregation == 1)
      r = ask_peers(q, "SelectSeries", &pr.base, "&counts=1", &qv1__select_series_response__descriptor, add_peer_series, &a);
  }
  if (r == 0) r = series_of(q, &a, res);
  sacc_free(&a);
  return r;
}

/* ---- peers' answers, for the fuzz target ---------------------------------------------------------- */

int web_querier_peer_check(unsigned kind, const uint8_t *body, size_t len, char *why, size_t nwhy) {
  static const ProtobufCMessageDescriptor *const answers[4] = {
      &qv1__profile_types_response__descriptor, &qv1__names_response__descriptor, &qv1__series_response__descriptor,
      &qv1__select_series_response__descriptor};
  qctx q;
  memset(&q, 0, sizeof q);
  arena_init(&q.a.mem, WEB_QUERIER_MAX_BODY * 4);
  ProtobufCAllocator alloc = {.alloc = arena_budget_alloc, .free = arena_budget_free, .allocator_data = &q.a};
  ProtobufCMessage *m = protobuf_c_message_unpack(answers[kind % 4], &alloc, len, body);
  int r = m ? 0 : fail(&q, "invalid_argument", "does not decode as %s", answers[kind % 4]->name);
  if (r == 0 && kind % 4 < 2) { /* a set: the same answer twice adds nothing the second time */
    strset s = {0};
    peer_fn fn = kind % 4 ? add_peer_names : add_peer_types;
    r = htab_init(&s.h, 64, 0) < 0 ? fail(&q, "resource_exhausted", "out of memory") : fn(&q, m, &s);
    size_t n = s.n;
    if (r == 0 && (r = fn(&q, m, &s)) == 0 && s.n != n) abort();
    htab_free(&s.h);
    free(s.v);
  } else if (r == 0 && kind % 4 == 2) {
    htab seen;
    peer_sets ps = {.seen = &seen};
    r = htab_init(&seen, 64, 0) < 0 ? fail(&q, "resource_exhausted", "out of memory") : add_peer_sets(&q, m, &ps);
    size_t n = ps.n;
    if (r == 0 && (r = add_peer_sets(&q, m, &ps)) == 0 && ps.n != n) abort();
    htab_free(&seen);
    free(ps.v);
  } else if (r == 0) { /* SelectSeries: sums (and with kind & 4 counts too, for a mean), then the answer */
    static char *group_by[2] = {"service_name", "pod"};
    Qv1__SelectSeriesRequest rq;
    qv1__select_series_request__init(&rq);
    rq.start = 1000000, rq.end = 1000000 + 99 * 1000, rq.step = 1;
    rq.group_by = group_by, rq.n_group_by = kind & 8 ? 2 : 1;
    rq.aggregation = kind & 4 ? 1 : 0;
    rq.limit = kind & 16 ? 2 : 0;
    q.counts = kind & 32;
    sacc a;
    Qv1__SelectSeriesResponse res;
    qv1__select_series_response__init(&res);
    r = sacc_init(&q, &a, &rq, 1000);
    if (r == 0) r = add_peer_series(&q, m, &a);
    a.counts = true;
    if (r == 0 && rq.aggregation == 1) r = add_peer_series(&q, m, &a);
    if (r == 0) r = series_of(&q, &a, &res);
    for (size_t i = 0; r == 0 && i < res.n_series; i++) { /* points on the request's grid, in order, labels asked for */
      if (res.series[i]->n_labels > rq.n_group_by || (rq.limit && i >= (size_t)rq.limit)) abort();
      for (size_t j = 0; j < res.series[i]->n_points; j++) {
        int64_t ts = res.series[i]->points[j]->timestamp;
        if (ts < rq.start || ts > rq.end || (ts - rq.start) % 1000 ||
            (j && ts <= res.series[i]->points[j - 1]->timestamp))
          abort();
      }
    }
    sacc_free(&a);
  }
  if (r < 0) snprintf(why, nwhy, "%s", q.why);
  arena_free(&q.a.mem);
  return r;
}

/* ---- the entry point ------------------------------------------------------------------------------ */

void web_querier(const web_ctx *x, const char *method, const web_params *p, const web_push_body *b, web_resp *out) {
  static const struct {
    const char *name;
    const ProtobufCMessageDescriptor *d;
  } methods[] = {
      {"ProfileTypes", &qv1__profile_types_request__descriptor},
      {"LabelNames", &qv1__label_names_request__descriptor},
      {"LabelValues", &qv1__label_values_request__descriptor},
      {"Series", &qv1__series_request__descriptor},
      {"SelectMergeStacktraces", &qv1__select_merge_stacktraces_request__descriptor},
      {"SelectMergeProfile", &qv1__select_merge_profile_request__descriptor},
      {"SelectSeries", &qv1__select_series_request__descriptor},
      {"Diff", &qv1__diff_request__descriptor},
  };
  size_t mi = 0;
  while (mi < sizeof methods / sizeof methods[0] && strcmp(methods[mi].name, method)) mi++;
  if (mi == sizeof methods / sizeof methods[0]) {
    char msg[300];
    snprintf(msg, sizeof msg, "querier.v1.QuerierService/%.100s is not served by this collector", method);
    web_connect_error(out, "unimplemented", msg);
    return;
  }
  qctx q;
  memset(&q, 0, sizeof q);
  q.x = x;
  const char *counts = p ? web_param(p, "counts") : NULL;
  q.counts = counts && !strcmp(counts, "1");
  /* the request and the answer's structures: at most half the query's budget */
  arena_init(&q.a.mem, x->budget / 2);
  ProtobufCMessage *in = NULL, *res = NULL;
  pp_err err = {0};
  int r;
  if (web_connect_read(b->ctype, b->cenc, b->profile, b->profile_len, WEB_QUERIER_MAX_BODY, methods[mi].d, &q.a, &q.json, &in,
                       &err) < 0) {
    r = fail(&q, err.code == PP_ELIMIT ? "resource_exhausted" : "invalid_argument", "%s", err.msg);
  } else {
    switch (mi) {
    case 0: r = do_profile_types(&q, in, &res); break;
    case 1: {
      const Qv1__LabelNamesRequest *rq = (const void *)in;
      r = do_label_names_values(&q, in, rq->matchers, rq->n_matchers, rq->start, rq->end, NULL, &res);
      break;
    }
    case 2: {
      const Qv1__LabelValuesRequest *rq = (const void *)in;
      r = do_label_names_values(&q, in, rq->matchers, rq->n_matchers, rq->start, rq->end, rq->name ? rq->name : "", &res);
      break;
    }
    case 3: r = do_series(&q, in, &res); break;
    case 4: r = do_stacktraces(&q, in, &res); break;
    case 5: r = do_merge_profile(&q, in, out); break;
    case 6: r = do_select_series(&q, in, &res); break;
    default: r = do_diff(&q, in, &res); break;
    }
  }
  if (r < 0) web_connect_error(out, q.code ? q.code : "internal", q.why);
  else if (res) web_connect_answer(out, q.json, res, x->budget);
  arena_free(&q.a.mem);
}
