/* Pushed profiles into the store (web_push.h). */
#include "web_push.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../base/arena.h"
#include "../base/b64.h"
#include "../base/clock.h"
#include "../base/gz.h"
#include "push.pb-c.h"
#include "web_api.h"
#include "web_connect.h"
#include "web_json.h"

/* ---- the name: APP{k=v,...} ------------------------------------------------------------------ */

static bool app_char(unsigned char c) {
  return isalnum(c) || c == '_' || c == '.' || c == '-' || c == '/' || c == ':';
}
static bool key_char(unsigned char c) {
  return isalnum(c) || c == '_' || c == '.';
}

static char *trim(char *s, char *end) {
  while (s < end && *s == ' ') s++;
  while (end > s && end[-1] == ' ') end--;
  *end = '\0';
  return s;
}

/* Pyroscope's type suffixes of an application name (its older clients named the type there) */
static const char *const type_suffix[] = {".cpu", ".itimer", ".wall", ".alloc_objects", ".alloc_space", ".inuse_objects",
                                          ".inuse_space", ".goroutines", ".goroutine", ".mutex_count", ".mutex_duration",
                                          ".block_count", ".block_duration"};

int web_push_name_parse(const char *name, web_push_name *ret, pp_err *err) {
  size_t len = strlen(name);
  ret->n = 0;
  if (len > WEB_PUSH_MAX_NAME) return pp_err_set(err, PP_ELIMIT, "name: %zu bytes, over the %d allowed", len, WEB_PUSH_MAX_NAME);
  memcpy(ret->buf, name, len + 1);
  char *s = ret->buf, *brace = strchr(s, '{');
  char *app_end = brace ? brace : s + len;
  if (brace && (len < 2 || s[len - 1] != '}'))
    return pp_err_set(err, PP_EINVAL, "name: a '{' without its closing '}' at the end (want APP{key=value,...})");
  char *app = trim(s, app_end);
  size_t alen = strlen(app);
  for (size_t i = 0; i < sizeof type_suffix / sizeof *type_suffix; i++) {
    size_t sl = strlen(type_suffix[i]);
    if (alen > sl && !strcmp(app + alen - sl, type_suffix[i])) {
      app[alen -= sl] = '\0';
      break;
    }
  }
  if (!alen || alen > 256) return pp_err_set(err, PP_EINVAL, "name: the application name must be 1 to 256 bytes");
  for (size_t i = 0; i < alen; i++)
    if (!app_char((unsigned char)app[i]))
      return pp_err_set(err, PP_EINVAL, "name: byte %zu of the application name is not one of A-Z a-z 0-9 _ . : / -", i);
  ret->app = app;
  if (!brace) return 0;
  char *p = brace + 1, *end = s + len - 1; /* the closing '}' */
  *end = '\0';
  while (p < end) {
    char *comma = memchr(p, ',', (size_t)(end - p));
    char *item_end = comma ? comma : end;
    char *eq = memchr(p, '=', (size_t)(item_end - p));
    char *item = p;
    p = comma ? comma + 1 : end;
    if (!eq) {
      /* "{}" and a trailing comma are fine; anything else without '=' is not */
      if (trim(item, item_end)[0]) return pp_err_set(err, PP_EINVAL, "name: a label without '=' (want key=value)");
      continue;
    }
    char *k = trim(item, eq), *v = trim(eq + 1, item_end);
    size_t kl = strlen(k);
    if (!kl || kl > 128) return pp_err_set(err, PP_EINVAL, "name: a label key must be 1 to 128 bytes");
    for (size_t i = 0; i < kl; i++)
      if (!key_char((unsigned char)k[i]))
        return pp_err_set(err, PP_EINVAL, "name: label key byte %zu is not one of A-Z a-z 0-9 _ .", i);
    if (strchr(v, '}')) return pp_err_set(err, PP_EINVAL, "name: a '}' inside a label value");
    size_t j = 0;
    while (j < ret->n && strcmp(ret->k[j], k)) j++;
    if (j == ret->n) {
      if (ret->n == WEB_PUSH_MAX_LABELS) return pp_err_set(err, PP_ELIMIT, "name: more than %d labels", WEB_PUSH_MAX_LABELS);
      ret->n++;
    }
    ret->k[j] = k;
    ret->v[j] = v;
  }
  return 0;
}

/* ---- times ---------------------------------------------------------------------------------- */

/* the earliest time a push may carry: 2000-01-01 */
#define PUSH_MIN_NS ((long long)946684800 * 1000000000)

/* from=/until= as ns: Unix seconds (older clients) or nanoseconds (pyroscope-go); 0 = absent */
static int push_time(const web_params *p, const char *k, int64_t *ret, char *why, size_t n) {
  const char *v = web_param(p, k);
  *ret = 0;
  if (!v || !*v) return 0;
  char *end;
  errno = 0;
  long long t = strtoll(v, &end, 10);
  if (errno || *end || t < 0) {
    snprintf(why, n, "%s: want Unix seconds or nanoseconds, got %.40s", k, v);
    return -1;
  }
  /* seconds below 10^10 (the year 2286), nanoseconds above; int64 nanoseconds end in 2262 */
  if (t < 10000000000LL) {
    if (t > INT64_MAX / 1000000000) {
      snprintf(why, n, "%s: %lld seconds is past what nanoseconds can hold (the year 2262)", k, t);
      return -1;
    }
    t *= 1000000000;
  }
  if (t < PUSH_MIN_NS) {
    snprintf(why, n, "%s: before the year 2000", k);
    return -1;
  }
  *ret = (int64_t)t;
  return 0;
}

/* ---- the profile's types -------------------------------------------------------------------- */

/* the index of the sample type named type (its first 64 only: the keep masks' width), or -1 */
static int column(const pprof_profile *pr, const char *type) {
  for (size_t i = 0; i < pr->nsample_type && i < 64; i++)
    if (!strcmp(pprof_str(pr, pr->sample_type[i].type), type)) return (int)i;
  return -1;
}

/* "mutex" or "block" for a contentions/delay profile, from the config's display-names
 * (pyroscope-go: mutex_count, block_count, ...); NULL when it does not say */
static const char *lock_kind(const web_push_body *b) {
  if (!b->config_len) return NULL;
  json_error_t je;
  json_t *c = json_loadb(b->config, b->config_len, JSON_REJECT_DUPLICATES, &je);
  const char *kind = NULL;
  const char *key;
  json_t *v;
  json_object_foreach(c, key, v) {
    const char *dn = json_string_value(json_object_get(v, "display-name"));
    if (dn && !strncmp(dn, "mutex_", 6)) kind = "mutex";
    else if (dn && !strncmp(dn, "block_", 6)) kind = "block";
  }
  json_decref(c);
  return kind;
}

/* What one pushed pprof becomes: up to two records, each a type and the columns it keeps. */
typedef struct push_part {
  const char *type;
  uint64_t keep; /* columns; all = ~0 */
} push_part;

/* cumulative: a heap's alloc_* count since the process started (as scraped): one heap record */
static int classify(const pprof_profile *pr, const char *lock, bool cumulative, push_part out[2], size_t *ret_n, char *why,
                    size_t n) {
  *ret_n = 0;
  int inuse_o = column(pr, "inuse_objects"), inuse_s = column(pr, "inuse_space"), alloc_o = column(pr, "alloc_objects"),
      alloc_s = column(pr, "alloc_space");
  if ((inuse_o >= 0 || inuse_s >= 0 || alloc_o >= 0 || alloc_s >= 0) && cumulative) {
    out[(*ret_n)++] = (push_part){"heap", ~0ull};
    return 0;
  }
  if (inuse_o >= 0 || inuse_s >= 0 || alloc_o >= 0 || alloc_s >= 0) {
    uint64_t inuse = (inuse_o >= 0 ? 1ull << inuse_o : 0) | (inuse_s >= 0 ? 1ull << inuse_s : 0);
    uint64_t alloc = (alloc_o >= 0 ? 1ull << alloc_o : 0) | (alloc_s >= 0 ? 1ull << alloc_s : 0);
    if (inuse) out[(*ret_n)++] = (push_part){"heap", inuse};
    if (alloc) out[(*ret_n)++] = (push_part){"allocs", alloc};
    return 0;
  }
  if (column(pr, "cpu") >= 0) {
    out[(*ret_n)++] = (push_part){"cpu", ~0ull};
    return 0;
  }
  if (column(pr, "goroutine") >= 0 || column(pr, "goroutines") >= 0) {
    out[(*ret_n)++] = (push_part){"goroutine", ~0ull};
    return 0;
  }
  if (column(pr, "threadcreate") >= 0) {
    out[(*ret_n)++] = (push_part){"threadcreate", ~0ull};
    return 0;
  }
  if (column(pr, "contentions") >= 0 && column(pr, "delay") >= 0) {
    const char *k = lock;
    if (!k) {
      snprintf(why, n, "a contentions/delay profile is a mutex or a block profile: say which in sample_type_config "
                       "(display-name mutex_count or block_count, as pyroscope-go does)");
      return -1;
    }
    out[(*ret_n)++] = (push_part){k, ~0ull};
    return 0;
  }
  snprintf(why, n, "profile type not recognised from its sample types (first: %.60s/%.30s); accepted: cpu, heap "
                   "(inuse_*, alloc_*), goroutine, threadcreate, mutex and block",
           pr->nsample_type ? pprof_str(pr, pr->sample_type[0].type) : "none",
           pr->nsample_type ? pprof_str(pr, pr->sample_type[0].unit) : "");
  return -1;
}

/* ---- one pushed profile into the store ------------------------------------------------------ */

static unsigned store_status(int code) {
  return code == PP_EINVAL || code == PP_ELIMIT ? 400 : code == PP_EUSAGE ? 503 : code == PP_EIO ? 507 : 500;
}

unsigned web_push_store(const web_ctx *x, const web_push_src *src, const uint8_t *data, size_t dlen, char *why,
                        size_t whyn) {
  pp_err err = {0};
  pprof_limits lim;
  pprof_limits_default(&lim);
  lim.max_memory = x->budget / 4; /* two decodings (a heap's halves); their encodings are smaller */
  pprof_profile *pr[2] = {NULL, NULL};
  push_part parts[2];
  size_t nparts = 0;
  unsigned status = 0;
  uint8_t *enc[2] = {NULL, NULL};
  size_t enclen[2] = {0, 0};
  if (pprof_decode(data, dlen, &lim, &pr[0], &err) < 0) {
    snprintf(why, whyn, "profile: %s", err.msg);
    status = err.code == PP_ENOMEM ? 500 : err.code == PP_ELIMIT ? 413 : 400;
    goto done;
  }
  if (classify(pr[0], src->lock_kind, src->cumulative, parts, &nparts, why, whyn) < 0) {
    status = 400;
    goto done;
  }
  /* times: the window the client says, in order (a flush of pyroscope-go can send until <
   * from), else the profile's own; a snapshot type is a point at the end */
  int64_t now = pp_clock_real_ns(), from = src->from, until = src->until;
  int64_t start = from && until ? (from < until ? from : until) : from ? from : until;
  int64_t end = from && until ? (from < until ? until : from) : start;
  if (!end) {
    /* the profile's own time and duration (Connect pushes carry no other), checked as from=
     * is: not before 2000, and no overflow */
    int64_t t = pr[0]->time_nanos, d = pr[0]->duration_nanos > 0 ? pr[0]->duration_nanos : 0;
    if (t <= 0) t = now;
    if (t < PUSH_MIN_NS || __builtin_add_overflow(t, d, &end)) {
      snprintf(why, whyn, "profile: time_nanos %lld and duration_nanos %lld are no time to store it at", (long long)pr[0]->time_nanos,
               (long long)pr[0]->duration_nanos);
      status = 400;
      goto done;
    }
    start = t;
  }
  if (end > now + (int64_t)WEB_PUSH_MAX_FUTURE_S * 1000000000) {
    snprintf(why, whyn, "until: %lld s ahead of this collector's clock (at most %d)", (long long)((end - now) / 1000000000),
             WEB_PUSH_MAX_FUTURE_S);
    status = 400;
    goto done;
  }
  if (nparts == 2 && pprof_decode(data, dlen, &lim, &pr[1], &err) < 0) {
    snprintf(why, whyn, "profile: %s", err.msg);
    status = 500;
    goto done;
  }
  store_label labels[WEB_PUSH_MAX_LABELS + 3];
  size_t nl = 0;
  labels[nl++] = (store_label){"service_name", src->app};
  labels[nl++] = (store_label){"monitor", src->app};
  labels[nl++] = (store_label){"endpoint", "push"};
  for (size_t i = 0; i < src->n && nl < WEB_PUSH_MAX_LABELS + 3; i++) {
    if (!strncmp(src->k[i], "__", 2) || !strcmp(src->k[i], "service_name") || !strcmp(src->k[i], "monitor") ||
        !strcmp(src->k[i], "endpoint"))
      continue;
    labels[nl++] = (store_label){src->k[i], src->v[i]};
  }
  store_record rec[2];
  for (size_t i = 0; i < nparts; i++) {
    bool snapshot = strcmp(parts[i].type, "cpu") && strcmp(parts[i].type, "allocs") && strcmp(parts[i].type, "mutex") &&
                    strcmp(parts[i].type, "block");
    const uint8_t *bytes = data;
    size_t len = dlen;
    if (parts[i].keep != ~0ull) {
      /* the columns of this record only; its bytes re-encoded so the old record format (which
       * keeps the bytes as given) stores the same profile */
      pprof_keep_types(pr[i], parts[i].keep);
      if (pprof_encode(pr[i], 1, &enc[i], &enclen[i], &err) < 0) {
        snprintf(why, whyn, "profile: %s", err.msg);
        status = 500;
        goto done;
      }
      bytes = enc[i];
      len = enclen[i];
    }
    rec[i] = (store_record){labels, nl, parts[i].type, snapshot ? end : start, end, bytes, len, pr[i]};
  }
  if (x->h->push(x->h->ud, rec, nparts, &err) < 0) {
    snprintf(why, whyn, "storing: %s", err.msg);
    status = store_status(err.code);
    goto done;
  }
done:
  for (int i = 0; i < 2; i++) {
    pprof_free(pr[i]);
    free(enc[i]);
  }
  return status;
}

/* ---- POST /ingest ------------------------------------------------------------------------------- */

void web_push_ingest(const web_ctx *x, const web_params *p, const web_push_body *b, web_resp *out) {
  char why[600];
  const char *name = web_param(p, "name"), *format = web_param(p, "format");
  if (!x->h->push) {
    web_resp_error(out, 501, "unavailable", "this collector does not take pushed profiles");
    return;
  }
  if (format && *format && strcmp(format, "pprof")) {
    snprintf(why, sizeof why, "format=%.40s: only pprof is taken", format);
    web_resp_error(out, 400, "bad_data", why);
    return;
  }
  web_push_name nm;
  pp_err err = {0};
  if (!name || !*name) {
    web_resp_error(out, 400, "bad_data", "name: required (APP or APP{key=value,...})");
    return;
  }
  if (web_push_name_parse(name, &nm, &err) < 0) {
    web_resp_error(out, 400, "bad_data", err.msg);
    return;
  }
  web_push_src src = {.app = nm.app, .k = nm.k, .v = nm.v, .n = nm.n};
  if (push_time(p, "from", &src.from, why, sizeof why) < 0 || push_time(p, "until", &src.until, why, sizeof why) < 0) {
    web_resp_error(out, 400, "bad_data", why);
    return;
  }
  if (!b->profile_len) {
    web_resp_error(out, 400, "bad_data", "no profile: want a multipart/form-data part named profile, or the pprof as the body");
    return;
  }
  if (b->config_len > WEB_PUSH_MAX_CONFIG) {
    web_resp_error(out, 413, "bad_data", "sample_type_config: over 64 KiB");
    return;
  }
  src.lock_kind = lock_kind(b);
  unsigned st = web_push_store(x, &src, b->profile, b->profile_len, why, sizeof why);
  if (!st) {
    web_resp_text(out, 200, "");
    return;
  }
  web_resp_error(out, st, st == 400 || st == 413 ? "bad_data" : "internal", why);
  if (st == 503) out->retry_after = 5;
}

/* ---- POST /push.v1.PusherService/Push (Connect, unary) --------------------------------------- */

/* One series of the request, whichever encoding it came in. */
typedef struct push_series {
  const char *k[WEB_PUSH_MAX_LABELS], *v[WEB_PUSH_MAX_LABELS];
  size_t n;
} push_series;

/* Fills src from a series' labels: the app from service_name, the kind from __name__, the
 * cumulative flag from __delta__="false". 0, or 400 with why. */
static unsigned series_src(const push_series *ps, web_push_src *src, char *why, size_t whyn) {
  memset(src, 0, sizeof *src);
  src->app = "unknown_service";
  /* Pyroscope's convention: __delta__="false" says the client sends deltas already (Alloy's
   * delta appender, godeltaprof); without it a memory profile is cumulative, as runtime/pprof
   * writes it and as Pyroscope would turn into deltas itself */
  src->cumulative = true;
  for (size_t i = 0; i < ps->n; i++) {
    if (!strcmp(ps->k[i], "service_name") && *ps->v[i]) src->app = ps->v[i];
    else if (!strcmp(ps->k[i], "__name__") && (!strcmp(ps->v[i], "mutex") || !strcmp(ps->v[i], "block"))) src->lock_kind = ps->v[i];
    else if (!strcmp(ps->k[i], "__delta__") && !strcmp(ps->v[i], "false")) src->cumulative = false;
  }
  size_t al = strlen(src->app);
  if (al > 256) {
    snprintf(why, whyn, "service_name: %zu bytes, over the 256 allowed", al);
    return 400;
  }
  /* label names as /ingest's (Prometheus' names plus '.'); values are any text, stored as such */
  for (size_t i = 0; i < ps->n; i++) {
    size_t kl = strlen(ps->k[i]);
    bool ok = kl && kl <= 128 && strlen(ps->v[i]) <= WEB_PUSH_MAX_NAME;
    for (size_t j = 0; ok && j < kl; j++) ok = key_char((unsigned char)ps->k[i][j]);
    if (!ok) {
      snprintf(why, whyn, "label %.60s: a name of 1 to 128 bytes of A-Z a-z 0-9 _ . and a value of at most %d bytes", ps->k[i],
               WEB_PUSH_MAX_NAME);
      return 400;
    }
  }
  src->k = ps->k;
  src->v = ps->v;
  src->n = ps->n;
  return 0;
}

/* Every sample of the request, series by series: 0, or the status of the first that failed. */
static unsigned push_request(const web_ctx *x, const Pushreq__PushRequest *rq, char *why, size_t whyn) {
  unsigned st = 0;
  for (size_t i = 0; !st && i < rq->n_series; i++) {
    const Pushreq__RawProfileSeries *se = rq->series[i];
    push_series ps = {.n = 0};
    if (se->n_labels > WEB_PUSH_MAX_LABELS) {
      snprintf(why, whyn, "series %zu: more than %d labels", i, WEB_PUSH_MAX_LABELS);
      return 400;
    }
    for (size_t j = 0; j < se->n_labels; j++) {
      /* (never NULL: both decoders initialise strings to "" and refuse a null element) */
      ps.k[ps.n] = se->labels[j]->name;
      ps.v[ps.n++] = se->labels[j]->value;
    }
    web_push_src src;
    if ((st = series_src(&ps, &src, why, whyn))) break;
    for (size_t j = 0; !st && j < se->n_samples; j++)
      st = web_push_store(x, &src, se->samples[j]->raw_profile.data, se->samples[j]->raw_profile.len, why, whyn);
  }
  return st;
}

int web_push_read(const web_ctx *x, const web_push_body *b, const ProtobufCMessageDescriptor *d, arena_budget *pa,
                  bool *json, ProtobufCMessage **ret, pp_err *err) {
  /* protobuf-c's allocations (and the JSON reader's) from an arena with an eighth of the
   * request's budget: a body of millions of empty messages fails as too large instead of taking
   * the memory (a protojson push's profiles are decoded from base64 into it: room for them) */
  size_t room = x->budget / 8 > 2 * b->profile_len + ((size_t)1 << 20) ? x->budget / 8 : 2 * b->profile_len + ((size_t)1 << 20);
  arena_init(&pa->mem, room);
  pa->exhausted = 0;
  return web_connect_read(b->ctype, b->cenc, b->profile, b->profile_len, WEB_MAX_PUSH_BODY, d, pa, json, ret, err);
}

void web_push_connect(const web_ctx *x, const web_push_body *b, web_resp *out) {
  char why[600];
  if (!x->h->push) {
    web_connect_error(out, "unimplemented", "this collector does not take pushed profiles");
    return;
  }
  arena_budget pa;
  ProtobufCMessage *m = NULL;
  bool json = false;
  pp_err err = {0};
  if (web_push_read(x, b, &pushreq__push_request__descriptor, &pa, &json, &m, &err) < 0) {
    web_connect_error(out, err.code == PP_ELIMIT ? "resource_exhausted" : "invalid_argument", err.msg);
    arena_free(&pa.mem);
    return;
  }
  unsigned st = push_request(x, (const Pushreq__PushRequest *)m, why, sizeof why);
  arena_free(&pa.mem);
  if (st) {
    web_connect_error(out, st == 400 || st == 413 ? "invalid_argument" : st == 503 ? "unavailable"
                           : st == 507 ? "resource_exhausted" : "internal", why);
    return;
  }
  /* the empty PushResponse */
  Pushreq__PushRequest empty = PUSHREQ__PUSH_REQUEST__INIT;
  web_connect_answer(out, json, &empty.base, 0);
}
