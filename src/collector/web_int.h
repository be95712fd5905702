/* What the web modules share: request parameters, answers and their bodies.
 *
 *   web.c         the server: libmicrohttpd, connection limits, the request's life (body cap,
 *                 suspension while work runs elsewhere), routing, the security headers
 *   web_auth.c    credentials: files, Basic (bcrypt cached) and bearer, failure rate limits
 *   web_api.c     the data endpoints: selection, render, timeline, profile(s), series, /raw
 *   web_pgo.c     /api/v1/pgo and /api/v1/regressions, on web_api.c's selection (web_api_merge)
 *   web_assets.c  the UI's files compiled into the binary
 *   web_work.c    the query pool: N slots, a short queue, deadlines, one run per identical query
 *   web_cache.c   recent answers by query and store state
 *   web_json.c    text from profiles made valid (JSON, HTML); pp_buf.c its buffer
 *
 * An answer (web_resp) is built away from libmicrohttpd, on whatever thread computed it, and
 * sent by web.c; its body is shared by reference with the cache and with every request that
 * asked the same, so a hit costs no copy.
 */
#ifndef COLLECTOR_WEB_INT_H
#define COLLECTOR_WEB_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scrape.h"
#include "store.h"
#include "web.h"
#include "web_fanout.h"
#include "../base/clock.h"
#include "../base/buf.h"

/* Query parameters in request order. The strings belong to the connection, or, after
 * web_params_copy, to the copy (released by web_params_release). */
typedef struct web_params {
  const char *k[WEB_MAX_PARAMS], *v[WEB_MAX_PARAMS];
  size_t n;
  bool too_many, too_long;
  char *mem; /* a copy's strings */
} web_params;

const char *web_param(const web_params *p, const char *k);
int web_params_copy(web_params *dst, const web_params *src);
void web_params_release(web_params *p);

/* An immutable answer body shared by reference (atomic count). */
typedef struct web_body {
  int refs;
  size_t len;
  char *data; /* NUL-terminated; the bytes the pp_buf built, taken without a copy */
} web_body;

/* Takes the buffer's bytes into a new body with one reference, leaving the buffer empty (NULL,
 * and the buffer as it was, when it failed or memory ran out). */
web_body *web_body_from(pp_buf *b);
web_body *web_body_ref(web_body *x);
void web_body_unref(web_body *x);

/* An answer. Strings are static; body is a reference; data/len a static body (assets). */
typedef struct web_resp {
  unsigned status;
  const char *ctype;
  web_body *body;
  const void *data;
  size_t len;
  unsigned retry_after;  /* seconds for Retry-After; 0 = no header */
  const char *location;  /* Location, or NULL */
  const char *www_auth;  /* WWW-Authenticate, or NULL */
  char disposition[200]; /* Content-Disposition, or "" */
  char partial[192];     /* X-Pprof-Partial (shards or history missing: web_fanout.h), or "" */
  uint64_t profiles;     /* X-Pprof-Profiles: the records a merged profile holds; 0 = no header */
  bool truncated;        /* X-Pprof-Truncated: true (the merge read only the newest records) */
  const char *ptype;     /* X-Pprof-Type: the profile's type (a static name), or NULL */
} web_resp;

void web_resp_release(web_resp *r);
/* A copy holding its own reference to the body. */
void web_resp_copy(web_resp *dst, const web_resp *src);
/* The buffer as the answer (500 when it failed for lack of memory, 422 over the budget). */
void web_resp_buf(web_resp *r, unsigned status, const char *ctype, pp_buf *b);
void web_resp_text(web_resp *r, unsigned status, const char *text);
/* The Prometheus-style error envelope {"status":"error","errorType":..,"error":..}. */
void web_resp_error(web_resp *r, unsigned status, const char *type, const char *msg);

/* What the data endpoints work with. budget: the request's memory budget in bytes (answers
 * and the profiles a merge leaves in memory count against it). */
typedef struct web_ctx {
  const web_hooks *h;
  size_t budget;
  size_t max_records; /* the records one merge may read (web_opts.max_records; 0: WEB_MAX_RECORDS) */
  web_fanout *fan;       /* the peers merges also ask (web_fanout_peers may be 0) */
  web_fanout_info *fi;   /* what they added to this request's answer (with fan) */
  upload_bucket_only bo; /* history only the object store holds (web_hooks.bucket_only) */
  uint64_t seq;          /* the store's deletions when bo was read (store_deletions) */
} web_ctx;

/* A window [from, to] (ns; 0 = unbounded) the answer covers, read with agg (a store_agg as
 * asked; the query API's: STORE_AGG_DEFAULT): when it meets the history only the object store
 * holds, the answer lacks it and says so (x->fi->bucket) unless a merge reads that window from
 * the object store (web_note_read, same from, to and agg, read true) and none failed to (read
 * false: two selections over one window, a diff's sides without from/to, are both needed). Every window a data endpoint reads
 * comes here (web_api.c's selections, web_querier.c's ranges); a record fetched by id has none.
 * A read (true) of a window never noted adds nothing (it lacked nothing); a failed one (false)
 * adds it: a segment deleted since the request came can be of a window x->bo did not meet. */
void web_note_window(const web_ctx *x, int64_t from, int64_t to, int agg);
void web_note_read(const web_ctx *x, int64_t from, int64_t to, int agg, bool read);


#endif
