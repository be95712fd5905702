/* web: the collector's HTTP server (libmicrohttpd) on :8989: the UI, the API, /metrics, the
 * probes. docs/api.md documents the routes, their parameters and answers.
 *
 * Probes first: the server's own threads only parse, route and send. /healthz and /readyz are
 * answered there before anything else (no credentials, no parameters, no store), and so are
 * cached answers and the UI's files; everything that reads the store or waits (queries, lists,
 * /metrics, reloads, password hashing) runs on web_work's workers while its connection is
 * suspended. So a probe never waits behind a query, however many run.
 *
 * Limits (every one answered clearly, never by a stall):
 *   connections  WEB_MAX_PER_ADDRESS from one client address (the rest are closed at once),
 *                WEB_MAX_CONNECTIONS in all (the rest wait unaccepted in the listen backlog, a
 *                probe among them); a request whose headers or body stop arriving for
 *                WEB_IDLE_TIMEOUT_S is closed, and so is an idle keep-alive connection
 *   lists        a page of /api/v1/series holds at most WEB_MAX_SERIES_PAGE entries (limit=, after=);
 *                /raw is always paged: WEB_RAW_PAGE series a page unless limit= says (at most
 *                WEB_MAX_RAW_PAGE), the next page linked
 *   requests     headers within 64 KiB (libmicrohttpd answers 431 past it); at most
 *                WEB_MAX_PARAMS query parameters of at most WEB_MAX_PARAM_LEN bytes (400);
 *                a body over WEB_MAX_BODY (by Content-Length, or as a chunked body arrives) is
 *                refused with 413 and the connection closed, without reading it
 *   queries      at most max_queries at once (default: the number of cores), a short queue,
 *                then 503 with Retry-After; each request a deadline (503 "timeout") and a
 *                memory budget (422); identical queries share one run, and recent answers are
 *                cached by query and store state (web_work.h, web_cache.h, web_api.h)
 *   auth         web_auth.h: verified credentials cached, failures rate-limited (429)
 * Every answer carries a restrictive Content-Security-Policy and nosniff.
 * Threads: handlers run on libmicrohttpd's threads and web_work's; they use only thread-safe
 * entry points (store queries, scrape_targets_json/metrics, the hooks).
 */
#ifndef COLLECTOR_WEB_H
#define COLLECTOR_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/pp_err.h"
#include "scrape.h"
#include "store.h"
#include "upload.h"
#include "web_auth.h"

#define WEB_MAX_PARAMS 64
#define WEB_MAX_PARAM_LEN 1024
#define WEB_MAX_RECORDS 20000
#define WEB_MAX_SERIES_PAGE 100000
#define WEB_RAW_PAGE 1000      /* an HTML table a browser shows at once */
#define WEB_MAX_RAW_PAGE 10000
#define WEB_MAX_BODY ((size_t)64 << 10)
#define WEB_MAX_CONNECTIONS 1024
#define WEB_MAX_PER_ADDRESS 64
#define WEB_IDLE_TIMEOUT_S 10
#define WEB_QUERY_TIMEOUT_S 30
#define WEB_QUERY_MEMORY ((uint64_t)256 << 20) /* all queries together, unless the cgroup allows less */
#define WEB_QUERY_MEMORY_MIN ((uint64_t)32 << 20) /* one query's least budget: fewer slots rather than less */
#define WEB_CACHE_BYTES ((uint64_t)32 << 20)

typedef struct web_hooks {
  void *ud;
  store *st;
  scrape_engine *eng;
  /* Reloads the config; 0, or negative with a message in err (answered as 400, or as 503
   * while ready says no: the collector is stopping and refuses reloads). */
  int (*reload)(void *ud, pp_err *err);
  bool (*ready)(void *ud);
  /* Stores pushed profiles (web_push.h) on the store's writer thread and waits for it: 0 when
   * all n are appended, else the first failure (PP_EUSAGE: the collector is stopping). NULL:
   * pushes are refused (501). */
  int (*push)(void *ud, const store_record *recs, size_t n, pp_err *err);
  /* Appends the program's own metrics (reloads, ingest, store) in Prometheus text format. */
  void (*metrics)(void *ud, pp_buf *b);
  /* History only the object store holds (upload.h; segments 0: none). now: listed now, with the
   * store's deletions then in *ret_seq (upload_bucket_only_now; it reads the store: workers
   * only), else the last upload scan's count (cheap, for cache keys; *ret_seq not a store's).
   * Read now once per job as it starts; an answer whose window meets that range and that does
   * not read it (bucket_merged) says it is partial and why (web_fanout_info.bucket). NULL: none. */
  void (*bucket_only)(void *ud, bool now, upload_bucket_only *ret, uint64_t *ret_seq);
  /* That history's part of a merge (bucket.h's bucket_merged): the selection's merge over
   * [from, to] by agg (resolved) from the object store, listed now (sum: *ret; avg and latest:
   * per series, *parts, for the local merge to join); seq: store_deletions read before the
   * local merge (avg, latest: before this, the local merge after it). BUCKET_NONE: none of it in
   * the window (nothing lacks);
   * BUCKET_NOT_READ: not readable for that merge (the answer stays partial); BUCKET_RACED: a
   * segment left the store since seq (the local merge and this list may count it twice or not at
   * all: not read, err says why); 0 with *ret; PP_EUSAGE: read, nothing of the selection there;
   * another error: not read, err says why (the answer stays partial and says it). *held: the
   * history only the bucket holds as listed for it, whatever the result (the last scan's count
   * when the store could not be listed), which a partial answer names. NULL: merges never read
   * the bucket. */
  int (*bucket_merged)(void *ud, uint64_t seq, const store_matcher *m, size_t nm, const char *type, int64_t from, int64_t to,
                       store_agg agg, size_t max_records, size_t budget, pprof_profile **ret, size_t *ret_count,
                       store_series_part **parts, size_t *nparts, store_merge_info *info, upload_bucket_only *held,
                       pp_err *err);
  /* That history's part of a timeline (bucket.h's bucket_points: store_list_points' rows of it,
   * at most limit, ids the cache's, for bucket_each_profile while *ret_gen holds), listed now;
   * seq, results and *held as bucket_merged's (0: *ret, to store_rows_free, *ret_n may be 0).
   * NULL: timelines never read the bucket. */
  int (*bucket_points)(void *ud, uint64_t seq, const store_matcher *m, size_t nm, const char *type, int64_t from, int64_t to,
                       size_t limit, store_row **ret, size_t *ret_n, uint64_t *ret_gen, upload_bucket_only *held,
                       pp_err *err);
  /* The records bucket_points listed, each as a profile to fn (bucket.h's bucket_each_profile:
   * BUCKET_RACED when the cache changed since; store_each_profile's results). NULL: decoded
   * timelines do not read the bucket. */
  int (*bucket_each_profile)(void *ud, uint64_t gen, const int64_t *ids, size_t n, const pprof_limits *limits,
                             store_profile_fn fn, void *fud, pp_err *err);
  /* That history's part of a series listing (bindex.h's bindex_series: its entries, at most
   * max_entries; *ret_unknown: what the index lacks of it, which makes the listing partial),
   * listed now; seq, results and *held as bucket_merged's (0: *ret, to store_series_free, *ret_n
   * may be 0). NULL: series listings never read the bucket. */
  int (*bucket_series)(void *ud, uint64_t seq, const store_matcher *m, size_t nm, const char *type, int64_t from, int64_t to,
                       size_t max_entries, store_series_info **ret, size_t *ret_n, size_t *ret_unknown,
                       upload_bucket_only *held, pp_err *err);
  const web_auth *auth; /* NULL = open */
} web_hooks;

typedef struct web_opts {
  unsigned max_queries;     /* queries at once; 0 = the number of cores (fewer if the memory asks) */
  double query_timeout_s;   /* a request's deadline */
  uint64_t query_memory;    /* all running queries' memory, split evenly between the slots */
  uint64_t cache_bytes;     /* 0 = no cache */
  size_t max_records;       /* records one merge reads at most, the newest (answers say when more
                               matched: "truncated"); 0 = WEB_MAX_RECORDS */
  const char *const *peers; /* the other shards' base URLs merges also ask (web_fanout.h) */
  size_t npeers;
  double peer_timeout_s;    /* 0 = WEB_FANOUT_TIMEOUT_S */
  const char *peer_token;   /* the bearer token the peers are asked with (NULL: none) */
} web_opts;

/* The defaults: cores, WEB_QUERY_TIMEOUT_S, WEB_QUERY_MEMORY (or half the cgroup's memory
 * limit when that is less), WEB_CACHE_BYTES, WEB_MAX_RECORDS. */
void web_opts_default(web_opts *o);

typedef struct web web;

/* Listens on addr ("", "0.0.0.0", "127.0.0.1", "::"...) and port. */
int web_start(const char *addr, int port, const web_hooks *hooks, const web_opts *opts, web **ret, pp_err *err);
/* The config's peers (query.peers; web_fanout.h): merges started from now on ask them besides
 * web_opts.peers. 0, or PP_EINVAL and the old list kept. Thread-safe. */
int web_set_peers(web *w, const char *const *peers, size_t n, pp_err *err);
/* Answers what still waits (503), lets running queries finish, closes every connection. */
void web_stop(web *w);

/* Parses a time given as Unix seconds (fractions allowed) or RFC 3339 UTC; ns since epoch. */
int web_parse_time(const char *s, int64_t *ret_ns);

#endif
