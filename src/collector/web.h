/* web: the collector's HTTP server (libmicrohttpd, internal thread pool) on :8989.
 *
 * Routes in this module: /healthz, /readyz, /metrics, /api/v1/targets, /api/v1/series,
 * /api/v1/profile (gzip pprof for `go tool pprof`), POST /reload and POST /-/reload, and a
 * plain index page at /. docs/api.md documents parameters and answers.
 *
 * Limits: at most WEB_MAX_PARAMS query parameters of at most WEB_MAX_PARAM_LEN bytes each,
 * request bodies are read and discarded (nothing here takes a body), merges read at most
 * WEB_MAX_RECORDS records, a page of /api/v1/series holds at most WEB_MAX_SERIES_PAGE entries.
 * Every answer carries a restrictive Content-Security-Policy.
 * Threads: handlers run on MHD's threads and use only thread-safe entry points (store
 * queries, scrape_targets_json, the hooks).
 */
#ifndef COLLECTOR_WEB_H
#define COLLECTOR_WEB_H

#include <stdbool.h>
#include <stddef.h>

#include "../base/pp_err.h"
#include "scrape.h"
#include "store.h"

#define WEB_MAX_PARAMS 64
#define WEB_MAX_PARAM_LEN 1024
#define WEB_MAX_RECORDS 20000
#define WEB_MAX_SERIES_PAGE 100000

/* Optional authentication for the UI and API (off when both are NULL/empty); /healthz and
 * /readyz stay open. users: "name:hash" lines as htpasswd -B writes them (any crypt(3) hash
 * libxcrypt knows: bcrypt $2b$, sha512 $6$, yescrypt $y$); token: a bearer token. */
typedef struct web_auth {
  char **users; /* "name:hash" */
  size_t nusers;
  char *token;
} web_auth;

/* Reads a users file (PP_EINVAL naming the bad line) or a token file into *auth. */
int web_auth_load_users(const char *path, web_auth *auth, pp_err *err);
int web_auth_load_token(const char *path, web_auth *auth, pp_err *err);

typedef struct web_hooks {
  void *ud;
  store *st;
  scrape_engine *eng;
  /* Reloads the config; 0, or negative with a message in err (answered as 400, or as 503
   * while ready says no: the collector is stopping and refuses reloads). */
  int (*reload)(void *ud, pp_err *err);
  bool (*ready)(void *ud);
  /* Appends the program's own metrics (reloads, ingest, store) in Prometheus text format. */
  void (*metrics)(void *ud, char **buf, size_t *len, size_t *cap);
  const web_auth *auth; /* NULL = open */
} web_hooks;

typedef struct web web;

/* Listens on addr ("", "0.0.0.0", "127.0.0.1", "::"...) and port. */
int web_start(const char *addr, int port, const web_hooks *hooks, web **ret, pp_err *err);
void web_stop(web *w);

/* Parses a time given as Unix seconds (fractions allowed) or RFC 3339 UTC; ns since epoch. */
int web_parse_time(const char *s, int64_t *ret_ns);

#endif
