/* The collector's HTTP server: connections, the life of a request, routing. See web.h.
 *
 * A request's life (the access handler is called once with the headers, once per piece of
 * body, once at the end, and again after each resume):
 *
 *   headers --(Content-Length over WEB_MAX_BODY)--> 413, close
 *      |
 *   body pieces --(over WEB_MAX_BODY)--> 413, close
 *      |
 *   end --> /healthz, /readyz, static answers, cache hits: answered here
 *      |--> credentials to hash --> suspended --(light worker)--> resumed --> end again
 *      \--> a job (query or light lane) --> suspended --(worker, or the deadline)--> resumed
 *                                                                 --> its answer sent
 */
#include "web.h"

#include "web_api.h"
#include "web_assets.h"
#include "web_cache.h"
#include "web_int.h"
#include "web_json.h"
#include "web_otlp.h"
#include "web_push.h"
#include "web_querier.h"
#include "web_work.h"

#include "../base/log.h"
#include "../base/metrics.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* not an HTTP status: the answer of a credentials check that let the request in */
#define AUTH_OK_STATUS 1

struct web {
  struct MHD_Daemon *d;
  web_hooks h;
  web_opts o;
  size_t budget;          /* one query's memory budget */
  web_work *work;
  web_cache *cache;
  web_auth_state *auth;   /* NULL when auth is off */
  web_fanout *fan;        /* the peers merges also ask (--peer, query.peers; maybe none) */
  uint64_t refused_bodies; /* 413s (atomic) */
  size_t push_bytes;       /* push bodies held in memory now, all requests (atomic; WEB_PUSH_INFLIGHT) */
  uint64_t push_busy;      /* pushes refused for that (atomic) */
};

/* ---- parameters, bodies, answers (web_int.h) ---------------------------------------------------- */

const char *web_param(const web_params *p, const char *k) {
  for (size_t i = 0; i < p->n; i++)
    if (!strcmp(p->k[i], k)) return p->v[i];
  return NULL;
}

int web_params_copy(web_params *dst, const web_params *src) {
  size_t total = 0;
  for (size_t i = 0; i < src->n; i++) total += strlen(src->k[i]) + strlen(src->v[i]) + 2;
  memset(dst, 0, sizeof *dst);
  char *m = malloc(total ? total : 1);
  if (!m) return PP_ENOMEM;
  dst->mem = m;
  for (size_t i = 0; i < src->n; i++) {
    size_t kl = strlen(src->k[i]) + 1, vl = strlen(src->v[i]) + 1;
    dst->k[i] = memcpy(m, src->k[i], kl);
    dst->v[i] = memcpy(m + kl, src->v[i], vl);
    m += kl + vl;
  }
  dst->n = src->n;
  return 0;
}

void web_params_release(web_params *p) {
  free(p->mem);
  memset(p, 0, sizeof *p);
}

web_body *web_body_from(pp_buf *b) {
  if (b->failed) return NULL;
  web_body *x = malloc(sizeof *x);
  if (!x) return NULL;
  size_t len = 0;
  char *p = b->p ? pp_buf_take(b, &len) : calloc(1, 1); /* nothing written: an empty body */
  if (!p) {
    free(x);
    return NULL;
  }
  /* the buffer's own bytes, not a copy (an answer can be as big as the query's memory budget);
   * the slack its doubling left is given back (in place, with glibc) */
  char *fit = realloc(p, len + 1);
  x->refs = 1;
  x->len = len;
  x->data = fit ? fit : p;
  return x;
}

web_body *web_body_ref(web_body *x) {
  if (x) __atomic_add_fetch(&x->refs, 1, __ATOMIC_RELAXED);
  return x;
}

void web_body_unref(web_body *x) {
  if (x && __atomic_sub_fetch(&x->refs, 1, __ATOMIC_ACQ_REL) == 0) {
    free(x->data);
    free(x);
  }
}

void web_resp_release(web_resp *r) {
  web_body_unref(r->body);
  memset(r, 0, sizeof *r);
}

void web_resp_copy(web_resp *dst, const web_resp *src) {
  *dst = *src;
  web_body_ref(dst->body);
}

void web_resp_buf(web_resp *r, unsigned status, const char *ctype, pp_buf *b) {
  if (b->failed && b->over) {
    web_resp_error(r, 422, "execution", "the answer is over this query's memory budget (--web-query-memory)");
    return;
  }
  web_body *x = web_body_from(b);
  if (!x) {
    web_resp_error(r, 503, "unavailable", "out of memory");
    r->retry_after = 5;
    return;
  }
  web_resp_release(r);
  r->status = status;
  r->ctype = ctype;
  r->body = x;
}

void web_resp_text(web_resp *r, unsigned status, const char *text) {
  pp_buf b;
  pp_buf_init(&b, 0);
  web_json_text(&b, text, strlen(text), 0);
  web_resp_buf(r, status, "text/plain; charset=utf-8", &b);
  pp_buf_free(&b);
}

void web_resp_error(web_resp *r, unsigned status, const char *type, const char *msg) {
  pp_buf b;
  pp_buf_init(&b, 0);
  pp_buf_puts(&b, "{\"status\":\"error\",\"errorType\":");
  web_json_str(&b, type);
  pp_buf_puts(&b, ",\"error\":");
  web_json_str(&b, msg);
  pp_buf_puts(&b, "}");
  web_body *x = web_body_from(&b);
  pp_buf_free(&b);
  web_resp_release(r);
  r->status = x ? status : 500;
  r->ctype = "application/json";
  r->body = x;
}

/* ---- sending --------------------------------------------------------------------------------------- */

static void body_done(void *cls) { web_body_unref(cls); }

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

/* Sends the answer (its body reference goes to libmicrohttpd, which lets go when sent). */
static enum MHD_Result send_resp(struct MHD_Connection *c, web_resp *a) {
  struct MHD_Response *r;
  if (a->body) {
    r = MHD_create_response_from_buffer_with_free_callback_cls(a->body->len, a->body->data, body_done, a->body);
    if (r) a->body = NULL; /* now libmicrohttpd's */
  } else {
    r = MHD_create_response_from_buffer(a->len, (void *)(a->data ? a->data : ""), MHD_RESPMEM_PERSISTENT);
  }
  if (!r) {
    web_resp_release(a);
    return MHD_NO;
  }
  if (a->ctype) MHD_add_response_header(r, "Content-Type", a->ctype);
  if (a->retry_after) {
    char v[16];
    snprintf(v, sizeof v, "%u", a->retry_after);
    MHD_add_response_header(r, "Retry-After", v);
  }
  if (a->location) MHD_add_response_header(r, "Location", a->location);
  if (a->www_auth) MHD_add_response_header(r, "WWW-Authenticate", a->www_auth);
  if (a->disposition[0]) MHD_add_response_header(r, "Content-Disposition", a->disposition);
  if (a->partial[0]) MHD_add_response_header(r, "X-Pprof-Partial", a->partial);
  if (a->profiles) {
    char v[24];
    snprintf(v, sizeof v, "%" PRIu64, a->profiles);
    MHD_add_response_header(r, "X-Pprof-Profiles", v);
  }
  if (a->truncated) MHD_add_response_header(r, "X-Pprof-Truncated", "true");
  if (a->ptype) MHD_add_response_header(r, "X-Pprof-Type", a->ptype);
  unsigned status = a->status ? a->status : 500;
  web_resp_release(a);
  return queue(c, status, r);
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *text) {
  web_resp a;
  memset(&a, 0, sizeof a);
  a.status = status;
  a.ctype = "text/plain; charset=utf-8";
  a.data = text;
  a.len = strlen(text);
  return send_resp(c, &a);
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *type, const char *msg) {
  web_resp a;
  memset(&a, 0, sizeof a);
  web_resp_error(&a, status, type, msg);
  return send_resp(c, &a);
}

/* ---- requests ---------------------------------------------------------------------------------- */

typedef struct req {
  web *w;
  int64_t arrived;   /* monotonic ns: the deadline counts from here */
  size_t body;       /* body bytes seen (and dropped) */
  bool authed;       /* credentials checked and good */
  bool refused;      /* answered before its body was read: what still comes is dropped */
  web_ticket *t;     /* waiting for a worker */
  bool has_pending;  /* an answer to send when resumed */
  web_resp pending;
  char addr[INET6_ADDRSTRLEN];
  /* a push (POST /ingest): the body kept, up to WEB_MAX_PUSH_BODY; multipart/form-data parts
   * through libmicrohttpd's post processor (web_push.h says which parts count) */
  bool push;
  bool querier; /* a push-like body: a Connect call of the query API (web_querier.h), up to WEB_QUERIER_MAX_BODY */
  struct MHD_PostProcessor *pp;
  web_push_body pb;
  size_t profile_cap, config_cap;
  bool push_nomem, push_bad; /* out of memory; multipart/form-data without a boundary */
  bool auth_checked;         /* a push's credentials were checked as its headers came: auth_result */
  web_auth_result auth_result;
  size_t push_held;          /* what this request counts in web.push_bytes */
} req;

/* Appends n bytes to *buf (cap *cap), growing it up to max (+1, so "over" is seen): false when
 * memory ran out. Bytes past max are dropped: the body's own cap answers for them. */
static bool push_append(uint8_t **buf, size_t *len, size_t *cap, size_t max, const char *data, size_t n) {
  if (*len + n > max + 1) n = max + 1 > *len ? max + 1 - *len : 0;
  if (!n) return true;
  if (*len + n > *cap) {
    size_t nc = *cap ? *cap : 16384;
    while (nc < *len + n) nc *= 2;
    uint8_t *b = realloc(*buf, nc);
    if (!b) return false;
    *buf = b;
    *cap = nc;
  }
  memcpy(*buf + *len, data, n);
  *len += n;
  return true;
}

static enum MHD_Result push_part(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                 const char *content_type, const char *transfer_encoding, const char *data, uint64_t off,
                                 size_t size) {
  (void)kind, (void)filename, (void)content_type, (void)transfer_encoding, (void)off;
  req *r = cls;
  bool ok = true;
  /* a part without a quoted name="..." comes with no key: not one we take */
  if (!key) return MHD_YES;
  if (!strcmp(key, "profile"))
    ok = push_append(&r->pb.profile, &r->pb.profile_len, &r->profile_cap, WEB_MAX_PUSH_BODY, data, size);
  else if (!strcmp(key, "sample_type_config"))
    ok = push_append((uint8_t **)&r->pb.config, &r->pb.config_len, &r->config_cap, WEB_PUSH_MAX_CONFIG, data, size);
  if (!ok) r->push_nomem = true;
  return ok ? MHD_YES : MHD_NO;
}

/* Counts this request's body as held up to `total` bytes (no more than WEB_PUSH_INFLIGHT for all
 * pushes together): false when that would pass it. */
static bool push_reserve(web *w, req *r, size_t total) {
  if (total <= r->push_held) return true;
  size_t more = total - r->push_held;
  size_t now = __atomic_add_fetch(&w->push_bytes, more, __ATOMIC_RELAXED);
  if (now > WEB_PUSH_INFLIGHT) {
    __atomic_sub_fetch(&w->push_bytes, more, __ATOMIC_RELAXED);
    return false;
  }
  r->push_held = total;
  return true;
}

static enum MHD_Result push_busy(web *w, struct MHD_Connection *c) {
  __atomic_add_fetch(&w->push_busy, 1, __ATOMIC_RELAXED);
  web_resp a;
  memset(&a, 0, sizeof a);
  web_resp_text(&a, 503, "too many pushes in flight (their bodies would pass 128 MiB); retry later\n");
  a.retry_after = 2;
  return send_resp(c, &a);
}

static void push_release(req *r) {
  if (r->pp) MHD_destroy_post_processor(r->pp);
  r->pp = NULL;
  if (r->push_held) __atomic_sub_fetch(&r->w->push_bytes, r->push_held, __ATOMIC_RELAXED);
  r->push_held = 0;
  free(r->pb.profile);
  free(r->pb.config);
  free(r->pb.ctype);
  free(r->pb.cenc);
  free(r->pb.version);
  memset(&r->pb, 0, sizeof r->pb);
}

static void client_address(struct MHD_Connection *c, char *buf, size_t n) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  snprintf(buf, n, "?");
  if (!ci || !ci->client_addr) return;
  const struct sockaddr *sa = ci->client_addr;
  if (sa->sa_family == AF_INET) inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)n);
  else if (sa->sa_family == AF_INET6) inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)n);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
  (void)c;
  (void)toe;
  web *w = cls;
  req *r = *con_cls;
  if (!r) return;
  if (r->t) web_work_drop(w->work, r->t);
  if (r->has_pending) web_resp_release(&r->pending);
  push_release(r);
  free(r);
  *con_cls = NULL;
}

static void wake(void *conn) { MHD_resume_connection(conn); }

static enum MHD_Result refuse_body(web *w, struct MHD_Connection *c, req *r) {
  static const char msg[] = "request body refused: nothing here takes one over 64 KiB, nor a chunked one\n";
  static const char push_msg[] = "request body refused: a push (POST /ingest) carries at most 16 MiB\n";
  static const char query_msg[] = "request body refused: a query API call carries at most 1 MiB\n";
  r->refused = true;
  __atomic_add_fetch(&w->refused_bodies, 1, __ATOMIC_RELAXED);
  const char *m = r->querier ? query_msg : r->push ? push_msg : msg;
  struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(m), (void *)m, MHD_RESPMEM_PERSISTENT);
  if (!resp) return MHD_NO;
  MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
  MHD_add_response_header(resp, "Connection", "close");
  return queue(c, 413, resp);
}

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
  (void)kind;
  web_params *p = cls;
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

/* ---- jobs ---------------------------------------------------------------------------------------- */

typedef enum job_kind { JOB_RENDER, JOB_TIMELINE, JOB_PROFILE, JOB_PROFILES, JOB_SERIES, JOB_TARGETS, JOB_RAW,
                        JOB_METRICS, JOB_RELOAD, JOB_AUTH, JOB_PGO, JOB_REGRESSIONS, JOB_TAGS, JOB_PUSH, JOB_PUSH_CONNECT,
                        JOB_OTLP, JOB_QUERIER } job_kind;

/* The push routes (POST only): their job, or -1 for any other path. */
static int push_job(const char *url) {
  return !strcmp(url, "/ingest") ? JOB_PUSH : !strcmp(url, WEB_PUSH_CONNECT_PATH) ? JOB_PUSH_CONNECT
                                         : !strcmp(url, WEB_OTLP_PATH)          ? JOB_OTLP : -1;
}

typedef struct job {
  web *w;
  job_kind kind;
  web_params p;
  char *user, *pass; /* JOB_AUTH */
  char addr[INET6_ADDRSTRLEN];
  web_push_body pb; /* JOB_PUSH, JOB_PUSH_CONNECT, JOB_OTLP, JOB_QUERIER: the request's body, taken from it */
  char *method;     /* JOB_QUERIER: the method's name */
  bool history;     /* reads the stored history: what only the bucket holds is listed as it starts */
} job;

static void job_free(void *arg) {
  job *j = arg;
  web_params_release(&j->p);
  if (j->pass) explicit_bzero(j->pass, strlen(j->pass));
  free(j->user);
  free(j->pass);
  free(j->pb.profile);
  free(j->pb.config);
  free(j->pb.ctype);
  free(j->pb.cenc);
  free(j->pb.version);
  free(j->method);
  free(j);
}

static void write_metrics(web *w, pp_buf *b);

static void job_run(void *arg, size_t budget, web_resp *out) {
  job *j = arg;
  web *w = j->w;
  web_fanout_info fi;
  memset(&fi, 0, sizeof fi);
  web_ctx x = {.h = &w->h, .budget = budget, .max_records = w->o.max_records ? w->o.max_records : WEB_MAX_RECORDS,
               .fan = w->fan, .fi = &fi};
  /* the history only the object store holds as a query starts (the store listed: on a worker) */
  if (w->h.bucket_only && j->history) w->h.bucket_only(w->h.ud, true, &x.bo, &x.seq);
  switch (j->kind) {
  case JOB_RENDER: web_api_render(&x, &j->p, out); break;
  case JOB_TIMELINE: web_api_timeline(&x, &j->p, out); break;
  case JOB_PROFILE: web_api_profile(&x, &j->p, out); break;
  case JOB_PROFILES: web_api_profiles(&x, &j->p, out); break;
  case JOB_SERIES: web_api_series(&x, &j->p, out); break;
  case JOB_TARGETS: web_api_targets(&x, &j->p, out); break;
  case JOB_RAW: web_api_raw(&x, &j->p, out); break;
  case JOB_PGO: web_api_pgo(&x, &j->p, out); break;
  case JOB_REGRESSIONS: web_api_regressions(&x, &j->p, out); break;
  case JOB_TAGS: web_api_tags(&x, &j->p, out); break;
  case JOB_PUSH: web_push_ingest(&x, &j->p, &j->pb, out); break;
  case JOB_PUSH_CONNECT: web_push_connect(&x, &j->pb, out); break;
  case JOB_OTLP: web_otlp_profiles(&x, &j->pb, out); break;
  case JOB_QUERIER: {
    /* local=1: a peer's call, answered from this store alone (web_querier.h) */
    const char *local = web_param(&j->p, "local");
    if (local && !strcmp(local, "1")) x.fan = NULL;
    web_querier(&x, j->method, &j->p, &j->pb, out);
    break;
  }
  case JOB_METRICS: {
    pp_buf b;
    pp_buf_init(&b, budget);
    write_metrics(w, &b);
    web_resp_buf(out, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
    pp_buf_free(&b);
    break;
  }
  case JOB_RELOAD: {
    pp_err err = {0};
    if (w->h.reload(w->h.ud, &err) < 0) {
      char msg[600];
      snprintf(msg, sizeof msg, "%s\n", err.msg);
      /* 503 while ready says no: the collector is stopping and refuses reloads (web.h) */
      web_resp_text(out, w->h.ready && !w->h.ready(w->h.ud) ? 503 : 400, msg);
    } else {
      web_resp_text(out, 200, "config reloaded\n");
    }
    break;
  }
  case JOB_AUTH:
    if (web_auth_verify(w->auth, j->user, j->pass, j->addr) == WEB_AUTH_OK) {
      out->status = AUTH_OK_STATUS;
    } else {
      web_resp_text(out, 401, "unauthorized\n");
      out->www_auth = w->h.auth->nusers ? "Basic realm=\"pprof-controller\", charset=\"UTF-8\"" : "Bearer";
    }
    break;
  }
  /* an answer some shards or some history are missing from says so (web_fanout.h); the body
   * says which */
  if (web_fanout_partial(&fi) && out->status == 200) {
    size_t len = 0;
    if (fi.failed)
      len += (size_t)snprintf(out->partial, sizeof out->partial, "%u of %u shard answers missing", fi.failed, fi.asked);
    if (fi.partial_peers && len < sizeof out->partial)
      len += (size_t)snprintf(out->partial + len, sizeof out->partial - len, "%s%u shard answers partial", len ? "; " : "",
                              fi.partial_peers);
    if (web_fanout_bucket_lacks(&fi) && len < sizeof out->partial) {
      char a[32], b[32];
      pp_clock_rfc3339(fi.bucket.from_ns, a, sizeof a), pp_clock_rfc3339(fi.bucket.to_ns, b, sizeof b);
      snprintf(out->partial + len, sizeof out->partial - len, "%shistory %s to %s in the object store only", len ? "; " : "",
               a, b);
    }
  }
}

/* The window's entry in x->fi (added when new and add; NULL when none fits) */
static struct web_fanout_window *window(const web_ctx *x, int64_t from, int64_t to, int agg, bool add) {
  web_fanout_info *fi = x->fi;
  for (unsigned i = 0; i < fi->nwin; i++)
    if (fi->win[i].from == from && fi->win[i].to == to && fi->win[i].agg == agg) return &fi->win[i];
  if (!add) return NULL;
  if (fi->nwin == sizeof fi->win / sizeof *fi->win) return fi->win_over = true, NULL;
  fi->win[fi->nwin] = (struct web_fanout_window){from, to, agg, false, false};
  return &fi->win[fi->nwin++];
}

void web_note_window(const web_ctx *x, int64_t from, int64_t to, int agg) {
  if (!x->bo.segments || !x->fi || x->bo.to_ns < from || (to && x->bo.from_ns > to)) return;
  x->fi->bucket = x->bo; /* (a request with several windows, a diff's two, names the range once) */
  window(x, from, to, agg, true);
}

void web_note_read(const web_ctx *x, int64_t from, int64_t to, int agg, bool read) {
  /* (a window read that was never noted lacked nothing: not added) */
  struct web_fanout_window *w = x->fi ? window(x, from, to, agg, !read) : NULL;
  if (w && read) w->read = true;
  else if (w) w->missed = true;
}

/* The store's state for cache keys: appends and deletions so far (rollups do not change answers),
 * and the history only the object store holds, which the uploader learns of up to a scan after
 * the deletion (an answer cached in between would otherwise stay whole while it is not). */
static void store_state(web *w, const upload_bucket_only *bo, char *buf, size_t n) {
  store_stats s;
  store_get_stats(w->h.st, &s);
  snprintf(buf, n, "%" PRIu64 "+%" PRIu64 "+%" PRIu64 "+%" PRIu64 "@%" PRId64 "-%" PRId64,
           s.profiles + s.retention_deleted_profiles, s.retention_deleted_profiles, store_deletions(w->h.st), bo->segments,
           bo->from_ns, bo->to_ns);
}

/* Runs the job on a worker: answered now (a cached answer, a refusal), or suspended until it is. */
static enum MHD_Result submit(web *w, struct MHD_Connection *c, req *r, web_lane lane, job *j, const char *url, bool keyed) {
  char *key = NULL;
  if (keyed) {
    /* (the last upload scan's count: no store listing on the event loop; any deletion changes
     * the store's state in the key anyway, store_deletions) */
    upload_bucket_only bo = {0};
    uint64_t seq;
    if (w->h.bucket_only) w->h.bucket_only(w->h.ud, false, &bo, &seq);
    char state[160];
    store_state(w, &bo, state, sizeof state);
    key = web_work_key(state, url, &j->p);
    web_resp hit;
    memset(&hit, 0, sizeof hit);
    if (key && web_cache_get(w->cache, key, &hit)) {
      free(key);
      job_free(j);
      return send_resp(c, &hit);
    }
  }
  /* suspended before the job exists, so its wake can never come first */
  MHD_suspend_connection(c);
  web_resp now;
  r->t = web_work_submit(w->work, lane, key, job_run, j, job_free, c, r->arrived, &now);
  free(key);
  if (!r->t) {
    r->pending = now;
    r->has_pending = true;
    MHD_resume_connection(c);
  }
  return MHD_YES;
}

static job *new_job(web *w, job_kind kind, const web_params *p) {
  job *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  j->w = w;
  j->kind = kind;
  if (p && web_params_copy(&j->p, p) < 0) {
    free(j);
    return NULL;
  }
  return j;
}

/* ---- routing ------------------------------------------------------------------------------------- */

/* A request's credentials: the Authorization header and, for Basic, the user and password
 * (libmicrohttpd's copies: creds_release wipes and frees them). */
typedef struct creds {
  const char *header;
  char *user, *pass;
} creds;

static void creds_release(creds *cr) {
  if (cr->pass) explicit_bzero(cr->pass, strlen(cr->pass));
  MHD_free(cr->user);
  MHD_free(cr->pass);
  cr->user = cr->pass = NULL;
}

/* The fast check (web_auth_check) of the request's credentials, once a request: the check takes
 * a failure token when its cache cannot say yes, and a push is checked as its headers come,
 * before its body, then routed. *cr gets the credentials either way. */
static web_auth_result fast_auth(web *w, struct MHD_Connection *c, req *r, creds *cr, unsigned *retry) {
  cr->header = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  cr->pass = NULL;
  cr->user = cr->header && !strncmp(cr->header, "Basic ", 6) ? MHD_basic_auth_get_username_password(c, &cr->pass) : NULL;
  if (!r->auth_checked) {
    r->auth_result = web_auth_check(w->auth, cr->header, cr->user, cr->pass, r->addr, retry);
    r->auth_checked = true;
  }
  return r->auth_result;
}

static enum MHD_Result unauthorized(web *w, struct MHD_Connection *c, unsigned status, unsigned retry) {
  web_resp a;
  memset(&a, 0, sizeof a);
  if (status == 429) {
    web_resp_text(&a, 429, "too many failed logins from this address; retry later\n");
    a.retry_after = retry ? retry : 1;
  } else {
    web_resp_text(&a, 401, "unauthorized\n");
    a.www_auth = w->h.auth->nusers ? "Basic realm=\"pprof-controller\", charset=\"UTF-8\"" : "Bearer";
  }
  return send_resp(c, &a);
}

static enum MHD_Result route(web *w, struct MHD_Connection *c, req *r, const char *url, const char *method) {
  bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
  bool post = !strcmp(method, "POST");
  /* the probes: before parameters, credentials and anything that could wait */
  if (!strcmp(url, "/healthz")) return get ? send_text(c, 200, "ok\n") : send_text(c, 405, "method not allowed\n");
  if (!strcmp(url, "/readyz")) {
    bool ok = w->h.ready && w->h.ready(w->h.ud);
    return send_text(c, ok ? 200 : 503, ok ? "ready\n" : "not ready\n");
  }
  web_params p;
  memset(&p, 0, sizeof p);
  MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_param, &p);
  if (p.too_many) return send_error(c, 400, "bad_data", "too many query parameters");
  if (p.too_long) return send_error(c, 400, "bad_data", "query parameter too long");

  /* everything past the health endpoints needs credentials when auth is configured */
  if (w->auth && !r->authed) {
    creds cr;
    unsigned retry = 0;
    web_auth_result ar = fast_auth(w, c, r, &cr, &retry);
    enum MHD_Result ret = MHD_YES;
    if (ar == WEB_AUTH_OK) {
      r->authed = true;
    } else if (ar == WEB_AUTH_VERIFY) {
      job *j = new_job(w, JOB_AUTH, NULL);
      if (j && (j->user = strdup(cr.user)) && (j->pass = strdup(cr.pass))) {
        snprintf(j->addr, sizeof j->addr, "%s", r->addr);
        ret = submit(w, c, r, WEB_LANE_LIGHT, j, url, false);
      } else {
        if (j) job_free(j);
        ret = send_error(c, 503, "unavailable", "out of memory");
      }
    } else {
      ret = unauthorized(w, c, ar == WEB_AUTH_LIMITED ? 429 : 401, retry);
    }
    creds_release(&cr);
    if (!r->authed) return ret;
  }

  /* lane: where the job waits its turn; asking: its lane when it waits on the peers too (a
   * listing that would otherwise hold up /metrics on the light lane) or -1 when the route never
   * asks them, as it reads no stored history; keyed: the answer is cached and shared by query
   * and store state */
  static const struct {
    const char *path;
    job_kind kind;
    web_lane lane;
    int asking;
    bool keyed;
  } jobs[] = {
      {"/api/v1/render", JOB_RENDER, WEB_LANE_QUERY, WEB_LANE_QUERY, true},
      {"/api/v1/timeline", JOB_TIMELINE, WEB_LANE_QUERY, WEB_LANE_QUERY, true},
      {"/api/v1/profile", JOB_PROFILE, WEB_LANE_QUERY, WEB_LANE_QUERY, true},
      {"/api/v1/profiles", JOB_PROFILES, WEB_LANE_QUERY, WEB_LANE_QUERY, true},
      {"/api/v1/series", JOB_SERIES, WEB_LANE_LIGHT, WEB_LANE_QUERY, false},
      {"/api/v1/targets", JOB_TARGETS, WEB_LANE_LIGHT, WEB_LANE_QUERY, false},
      {"/metrics", JOB_METRICS, WEB_LANE_LIGHT, -1, false},
      {"/raw", JOB_RAW, WEB_LANE_LIGHT, WEB_LANE_QUERY, false},
      {"/api/v1/pgo", JOB_PGO, WEB_LANE_QUERY, WEB_LANE_QUERY, true},
      {"/api/v1/regressions", JOB_REGRESSIONS, WEB_LANE_QUERY, WEB_LANE_QUERY, true},
      {"/api/v1/tags", JOB_TAGS, WEB_LANE_QUERY, WEB_LANE_QUERY, true},
  };
  /* asked by itself, through a peer list that names it (web_fanout.h): a listing, a merge or a
   * call of the query API */
  const char *from = MHD_lookup_connection_value(c, MHD_HEADER_KIND, WEB_FANOUT_FROM_HEADER);
  if (from && !strcmp(from, web_fanout_id(w->fan))) {
    web_resp self;
    memset(&self, 0, sizeof self);
    self.status = 204;
    return send_resp(c, &self);
  }
  if (r->push) {
    if (r->push_bad) return send_error(c, 400, "bad_data", "multipart/form-data without a boundary");
    if (r->push_nomem) return send_error(c, 503, "unavailable", "out of memory");
    if (r->pb.profile_len > WEB_MAX_PUSH_BODY) return send_error(c, 413, "bad_data", "profile: over the 16 MiB a push may carry");
    if (r->querier && r->pb.profile_len > WEB_QUERIER_MAX_BODY)
      return send_error(c, 413, "bad_data", "a query API call carries at most 1 MiB");
    job *j = new_job(w, r->querier ? JOB_QUERIER : (job_kind)push_job(url), &p);
    if (!j) return send_error(c, 503, "unavailable", "out of memory");
    j->history = r->querier;
    if (r->querier && !(j->method = strdup(url + strlen(WEB_QUERIER_PREFIX)))) {
      job_free(j);
      return send_error(c, 503, "unavailable", "out of memory");
    }
    j->pb = r->pb; /* the job owns the body now */
    memset(&r->pb, 0, sizeof r->pb);
    r->profile_cap = r->config_cap = 0;
    /* the deadline counts from the whole body, not from its headers: a slow upload is not a
     * slow query */
    r->arrived = pp_clock_mono_ns();
    return submit(w, c, r, WEB_LANE_QUERY, j, url, false);
  }
  if (push_job(url) >= 0 || !strncmp(url, WEB_QUERIER_PREFIX, strlen(WEB_QUERIER_PREFIX)))
    return send_text(c, 405, "use POST\n");
  if (!strcmp(url, "/reload") || !strcmp(url, "/-/reload")) {
    if (!post) return send_text(c, 405, "use POST\n");
    job *j = new_job(w, JOB_RELOAD, NULL);
    return j ? submit(w, c, r, WEB_LANE_LIGHT, j, url, false) : send_error(c, 503, "unavailable", "out of memory");
  }
  if (!get) return send_text(c, 405, "method not allowed\n");
  for (size_t i = 0; i < sizeof jobs / sizeof jobs[0]; i++) {
    if (strcmp(url, jobs[i].path)) continue;
    job *j = new_job(w, jobs[i].kind, &p);
    if (j) j->history = jobs[i].asking >= 0;
    /* an answer that asked the peers is not kept: their stores change apart from ours */
    const char *local = web_param(&p, "local");
    bool asks = jobs[i].asking >= 0 && web_fanout_peers(w->fan) && !(local && !strcmp(local, "1"));
    bool keyed = jobs[i].keyed && !asks;
    web_lane lane = asks ? (web_lane)jobs[i].asking : jobs[i].lane;
    return j ? submit(w, c, r, lane, j, url, keyed) : send_error(c, 503, "unavailable", "out of memory");
  }
  /* the UI: one page that routes on the path; its files come from the compiled-in table */
  const pp_blob *a = web_assets_find(url);
  if (a) {
    web_resp ar;
    memset(&ar, 0, sizeof ar);
    ar.status = 200;
    ar.ctype = a->content_type;
    ar.data = a->data;
    ar.len = a->len;
    return send_resp(c, &ar);
  }
  if (!strncmp(url, "/ui/", 4)) return send_text(c, 404, "not found\n");
  if (!strcmp(url, "/favicon.ico")) {
    web_resp fa;
    memset(&fa, 0, sizeof fa);
    fa.status = 204;
    fa.ctype = "image/x-icon";
    return send_resp(c, &fa);
  }
  if (!strncmp(url, "/pprof/web", 10)) {
    /* the seed's per-file pprof web UI: its successor is the explorer */
    web_resp ra;
    memset(&ra, 0, sizeof ra);
    ra.status = 302;
    ra.location = "/explorer";
    return send_resp(c, &ra);
  }
  return send_text(c, 404, "not found\n");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_size, void **con_cls) {
  (void)version;
  web *w = cls;
  req *r = *con_cls;
  if (!r) {
    /* first call: the headers. A body over the cap is refused before a byte of it is read. */
    if (!(r = calloc(1, sizeof *r))) return MHD_NO;
    r->w = w;
    r->arrived = pp_clock_mono_ns();
    client_address(c, r->addr, sizeof r->addr);
    *con_cls = r;
    /* pushes are the one route that takes a body of any size (up to WEB_MAX_PUSH_BODY); calls of
     * the query API (Connect: the request is the body) take up to WEB_QUERIER_MAX_BODY */
    r->querier = !strcmp(method, "POST") && !strncmp(url, WEB_QUERIER_PREFIX, strlen(WEB_QUERIER_PREFIX));
    r->push = r->querier || (!strcmp(method, "POST") && push_job(url) >= 0);
    size_t cap = r->querier ? WEB_QUERIER_MAX_BODY : r->push ? WEB_MAX_PUSH_BODY : WEB_MAX_BODY;
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
      char *end;
      errno = 0;
      unsigned long long n = strtoull(cl, &end, 10);
      if (errno || end == cl || n > cap) return refuse_body(w, c, r);
    }
    /* a chunked body's size is known only once read, and libmicrohttpd cannot answer in the
     * middle of one: only a push may be chunked (past its cap the connection is closed) */
    const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding");
    if (te && strcasecmp(te, "identity") && !r->push) return refuse_body(w, c, r);
    if (!r->push) return MHD_YES;
    /* A push's body is held in memory until it is all there: credentials that fail the fast
     * check (none, an unknown user, a wrong token, an address over its failures) are refused
     * before a byte of it is read, and all pushes together hold at most WEB_PUSH_INFLIGHT. */
    if (w->auth) {
      creds cr;
      unsigned retry = 0;
      web_auth_result ar = fast_auth(w, c, r, &cr, &retry); /* its answer serves the route too */
      creds_release(&cr);
      if (ar == WEB_AUTH_DENIED || ar == WEB_AUTH_LIMITED) {
        r->refused = true;
        return unauthorized(w, c, ar == WEB_AUTH_LIMITED ? 429 : 401, retry);
      }
    }
    size_t want = cl ? (size_t)strtoull(cl, NULL, 10) : 0;
    if (!push_reserve(w, r, want)) {
      r->refused = true;
      return push_busy(w, c);
    }
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    const char *ce = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
    const char *pv = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "OTLP-Profiles-Development-Version");
    if ((ct && !(r->pb.ctype = strndup(ct, 200))) || (ce && !(r->pb.cenc = strndup(ce, 100))) ||
        (pv && !(r->pb.version = strndup(pv, 32))))
      r->push_nomem = true;
    if (ct && !strncasecmp(ct, "multipart/form-data", 19) && !strcmp(url, "/ingest")) {
      r->pp = MHD_create_post_processor(c, 65536, push_part, r);
      if (!r->pp) r->push_bad = true; /* no boundary (or one past libmicrohttpd's limit): 400 as it ends */
    }
    return MHD_YES;
  }
  if (*upload_size && r->push) {
    if (r->refused) {
      *upload_size = 0; /* answered already (401, 429, 503): what still comes is dropped */
      return MHD_YES;
    }
    r->body += *upload_size;
    if (r->body > (r->querier ? WEB_QUERIER_MAX_BODY : WEB_MAX_PUSH_BODY)) return MHD_NO;
    /* a chunked body reserves as it comes (a Content-Length one did at its headers) */
    if (r->body > r->push_held && !push_reserve(w, r, r->body)) return MHD_NO;
    bool ok = r->pp ? MHD_post_process(r->pp, upload_data, *upload_size) == MHD_YES
                    : push_append(&r->pb.profile, &r->pb.profile_len, &r->profile_cap, WEB_MAX_PUSH_BODY, upload_data, *upload_size);
    if (!ok && !r->pp) r->push_nomem = true;
    *upload_size = 0;
    return MHD_YES;
  }
  if (*upload_size) {
    /* nothing here takes a body: a small one (under its Content-Length cap) is dropped */
    r->body += *upload_size;
    *upload_size = 0;
    return r->body > WEB_MAX_BODY ? MHD_NO : MHD_YES;
  }
  if (r->refused) return MHD_YES;
  if (r->has_pending) {
    r->has_pending = false;
    return send_resp(c, &r->pending);
  }
  if (r->t) {
    /* resumed: a worker answered */
    web_resp a;
    web_work_take(w->work, r->t, &a);
    r->t = NULL;
    if (a.status != AUTH_OK_STATUS) return send_resp(c, &a);
    web_resp_release(&a);
    r->authed = true; /* and on to the route it asked for */
  }
  return route(w, c, r, url, method);
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

/* libmicrohttpd's own messages (a connection refused past a limit, a client that went away):
 * through the program's logger, at most one a second, so a flood of connections is one line and
 * a count, not thousands. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  static int64_t last;
  static unsigned long dropped;
  char msg[400];
  vsnprintf(msg, sizeof msg, fmt, ap);
  msg[strcspn(msg, "\r\n")] = '\0';
  int64_t now = pp_clock_mono_ns(), prev = __atomic_load_n(&last, __ATOMIC_RELAXED);
  if (now - prev < 1000000000 || !__atomic_compare_exchange_n(&last, &prev, now, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    __atomic_add_fetch(&dropped, 1, __ATOMIC_RELAXED);
    return;
  }
  unsigned long d = __atomic_exchange_n(&dropped, 0, __ATOMIC_RELAXED);
  if (d) pp_log(PP_LOG_WARN, "http server: %s (and %lu more messages in the last second)", msg, d);
  else pp_log(PP_LOG_WARN, "http server: %s", msg);
}

/* ---- metrics ------------------------------------------------------------------------------------- */

/* One sample (after the family's HELP/TYPE when help is given), with a reason label if set. */
static void metric(pp_buf *b, const char *name, const char *type, const char *help, const char *reason, double v) {
  if (help) pp_metrics_head(b, name, type, help);
  pp_metrics_f64(b, name, &(pp_metric_label){"reason", reason}, reason ? 1 : 0, v);
}

static void write_metrics(web *w, pp_buf *b) {
  scrape_metrics(w->h.eng, b);
  if (w->h.metrics) w->h.metrics(w->h.ud, b);
  web_work_stats ws;
  web_work_get_stats(w->work, &ws);
  web_cache_stats cs;
  web_cache_get_stats(w->cache, &cs);
  metric(b, "collector_web_query_slots", "gauge", "Queries that may run at once (--web-max-queries).", NULL, ws.slots);
  metric(b, "collector_web_query_queue_size", "gauge", "Queries that may wait for a slot.", NULL, ws.queue_max);
  metric(b, "collector_web_query_memory_budget_bytes", "gauge", "One query's memory budget (--web-query-memory / slots).", NULL,
         (double)w->budget);
  metric(b, "collector_web_queries_running", "gauge", "Queries running now.", NULL, ws.running);
  metric(b, "collector_web_queries_queued", "gauge", "Queries waiting for a slot now.", NULL, ws.queued);
  metric(b, "collector_web_queries_running_peak", "gauge", "Most queries running at once since start.", NULL, ws.peak_running);
  metric(b, "collector_web_queries_total", "counter", "Queries run to the end.", NULL, (double)ws.ran);
  metric(b, "collector_web_query_seconds_total", "counter", "Time queries ran.", NULL, ws.run_seconds);
  metric(b, "collector_web_queries_shared_total", "counter", "Requests answered by a run of the same query already in flight.",
         NULL, (double)ws.shared);
  metric(b, "collector_web_queries_rejected_total", "counter", "Requests answered 503: queue full, waited too long, past the deadline.",
         "queue_full", (double)ws.refused_full);
  metric(b, "collector_web_queries_rejected_total", "counter", NULL, "queue_wait", (double)ws.refused_wait);
  metric(b, "collector_web_queries_rejected_total", "counter", NULL, "deadline", (double)ws.timeouts);
  metric(b, "collector_web_light_rejected_total", "counter", "Lists, metrics, reloads and logins answered 503 (their queue full).",
         NULL, (double)ws.light_refused);
  metric(b, "collector_web_cache_hits_total", "counter", "Answers served from the cache.", NULL, (double)cs.hits);
  metric(b, "collector_web_cache_misses_total", "counter", "Queries not in the cache.", NULL, (double)cs.misses);
  metric(b, "collector_web_cache_evictions_total", "counter", "Answers evicted from the cache.", NULL, (double)cs.evictions);
  metric(b, "collector_web_cache_bytes", "gauge", "Bytes the cache holds (--web-cache-size bounds them).", NULL, (double)cs.bytes);
  metric(b, "collector_web_cache_entries", "gauge", "Answers the cache holds.", NULL, (double)cs.entries);
  metric(b, "collector_web_requests_refused_total", "counter", "Requests refused before they were read.",
         "body_too_large", (double)__atomic_load_n(&w->refused_bodies, __ATOMIC_RELAXED));
  metric(b, "collector_web_requests_refused_total", NULL, NULL, "push_bodies_in_flight",
         (double)__atomic_load_n(&w->push_busy, __ATOMIC_RELAXED));
  metric(b, "collector_web_push_body_bytes", "gauge", "Bytes of push bodies held in memory now (at most 128 MiB).", NULL,
         (double)__atomic_load_n(&w->push_bytes, __ATOMIC_RELAXED));
  if (w->auth) {
    web_auth_counts ac;
    web_auth_get_counts(w->auth, &ac);
    metric(b, "collector_web_auth_verifications_total", "counter", "Password hashes computed.", NULL, (double)ac.verifications);
    metric(b, "collector_web_auth_cache_hits_total", "counter", "Logins accepted from the verified-credentials cache.", NULL,
           (double)ac.cache_hits);
    metric(b, "collector_web_auth_failures_total", "counter", "Logins refused.", NULL, (double)ac.failures);
    metric(b, "collector_web_auth_rate_limited_total", "counter", "Logins refused by the per-address limit (429).", NULL,
           (double)ac.limited);
  }
}

/* ---- life ---------------------------------------------------------------------------------------- */

/* The cgroup's memory limit (v2, then v1), or 0. */
static uint64_t cgroup_memory_limit(void) {
  const char *files[] = {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"};
  for (size_t i = 0; i < 2; i++) {
    FILE *f = fopen(files[i], "r");
    if (!f) continue;
    unsigned long long v = 0;
    int ok = fscanf(f, "%llu", &v) == 1;
    fclose(f);
    if (ok && v > 0 && v < ((uint64_t)1 << 50)) return v;
  }
  return 0;
}

void web_opts_default(web_opts *o) {
  memset(o, 0, sizeof *o);
  o->query_timeout_s = WEB_QUERY_TIMEOUT_S;
  o->query_memory = WEB_QUERY_MEMORY;
  uint64_t lim = cgroup_memory_limit();
  if (lim && lim / 2 < o->query_memory) o->query_memory = lim / 2;
  o->cache_bytes = WEB_CACHE_BYTES;
  o->max_records = WEB_MAX_RECORDS;
}

int web_start(const char *addr, int port, const web_hooks *hooks, const web_opts *opts, web **ret, pp_err *err) {
  web *w = calloc(1, sizeof *w);
  if (!w) return pp_err_set(err, PP_ENOMEM, "out of memory");
  w->h = *hooks;
  w->o = *opts;
  int r = 0;
  if (web_auth_enabled(hooks->auth) && !(w->auth = web_auth_state_new(hooks->auth))) r = pp_err_set(err, PP_ENOMEM, "out of memory");
  if (r == 0) r = web_fanout_new(w->o.peers, w->o.npeers, w->o.peer_timeout_s, w->o.peer_token, &w->fan, err);
  if (r == 0 && w->o.cache_bytes && !(w->cache = web_cache_new(w->o.cache_bytes))) r = pp_err_set(err, PP_ENOMEM, "out of memory");
  /* slots from the cores, fewer when the memory cannot give each its least budget */
  web_work_opts wo = {.slots = w->o.max_queries, .deadline_ns = (int64_t)(w->o.query_timeout_s * 1e9), .cache = w->cache, .wake = wake};
  if (!wo.slots) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
    uint64_t by_memory = w->o.query_memory / WEB_QUERY_MEMORY_MIN;
    wo.slots = n < 1 ? 1 : (unsigned)n;
    if (by_memory < wo.slots) wo.slots = by_memory ? (unsigned)by_memory : 1;
  }
  w->budget = (size_t)(w->o.query_memory / wo.slots);
  wo.budget = w->budget;
  if (r == 0) r = web_work_start(&wo, &w->work, err);
  if (r < 0) {
    web_cache_free(w->cache);
    web_auth_state_free(w->auth);
    web_fanout_free(w->fan);
    free(w);
    return r;
  }
  /* epoll (MHD_USE_AUTO): with thousands of targets our sockets pass FD_SETSIZE, which select cannot take */
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
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
      r = pp_err_set(err, PP_EINVAL, "listen address \"%s\" is not an IP address", addr);
    }
  }
  if (r == 0) {
    /* two threads: they only parse, route and send (web.h) */
    /* the logger first: libmicrohttpd logs (to stderr, unformatted) whatever it says before it */
    w->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handle, w, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                            MHD_OPTION_THREAD_POOL_SIZE, 2u, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)WEB_IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)WEB_MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)WEB_MAX_PER_ADDRESS,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_NOTIFY_COMPLETED, completed, w,
                            MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
                            sa ? MHD_OPTION_SOCK_ADDR : MHD_OPTION_END, sa, MHD_OPTION_END);
    if (!w->d) r = pp_err_set(err, PP_EIO, "cannot listen on %s:%d (in use, or not permitted)", addr && *addr ? addr : "*", port);
  }
  if (r < 0) {
    web_work_stop(w->work);
    web_work_free(w->work);
    web_cache_free(w->cache);
    web_auth_state_free(w->auth);
    web_fanout_free(w->fan);
    free(w);
    return r;
  }
  *ret = w;
  return 0;
}

int web_set_peers(web *w, const char *const *peers, size_t n, pp_err *err) { return web_fanout_set(w->fan, peers, n, err); }

void web_stop(web *w) {
  if (!w) return;
  /* no new connections; what waits is answered and resumed before the daemon stops (a suspended
   * connection must not be there when it does) */
  MHD_socket fd = MHD_quiesce_daemon(w->d);
  if (fd != MHD_INVALID_SOCKET) close(fd);
  web_work_stop(w->work);
  MHD_stop_daemon(w->d);
  web_work_free(w->work);
  web_cache_free(w->cache);
  web_auth_state_free(w->auth);
  web_fanout_free(w->fan);
  free(w);
}
