/* scrape: the scrape engine. One event loop on libcurl's multi interface drives every
 * (monitor, profile type) job: no thread per target.
 *
 * A job's life (one per monitor and enabled type):
 *
 *     idle --due--> running --200 + valid pprof--> idle (next = grid slot, or now if back to back)
 *                      |
 *                      +--error, bad status, bad body--> idle (next = now + max(interval, backoff))
 *
 * backoff = min(5 min, 1 s * 2^(failures-1)) with +-20% jitter. First runs are spread over the
 * interval by a hash of the job, so a thousand targets do not start in the same millisecond.
 * Two CPU profiles of one endpoint never run at once; a 500 "cpu profiling already in use"
 * marks the job busy and backs off.
 *
 * Ownership and threads: the engine belongs to the thread that calls scrape_run; only
 * scrape_wakeup, scrape_targets_json and scrape_metrics may be called from other threads.
 * A fetched body is decoded on the engine's own worker thread (inflating a large or hostile
 * body must not hold up other targets' scrapes); the job counts as running until it is back.
 * Successful scrapes are handed to the sink (on the engine's thread) with the decoded profile;
 * nothing is handed over for a failed one, nor for a job a reload removed meanwhile.
 */
#ifndef COLLECTOR_SCRAPE_H
#define COLLECTOR_SCRAPE_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../base/buf.h"
#include "../base/pp_err.h"
#include "../codec/pprof.h"
#include "config.h"

typedef struct scrape_engine scrape_engine;

/* What a sink receives for one successful scrape. labels: monitor, endpoint and config labels. */
typedef struct scrape_result {
  const char *monitor;
  const char *type;     /* cfg_type_name */
  const cfg_kv *labels; /* the monitor's config labels */
  size_t nlabels;
  const char *endpoint;
  int64_t start_ns, end_ns;
  const uint8_t *data; /* the body as received (gzip pprof) */
  size_t len;
  const pprof_profile *profile;
} scrape_result;

typedef void (*scrape_sink)(void *ud, const scrape_result *r);

int scrape_new(scrape_sink sink, void *ud, scrape_engine **ret, pp_err *err);
void scrape_free(scrape_engine *e);

/* Replaces the job set with c's, as a diff: a job whose settings are unchanged keeps its
 * schedule and its health; removed jobs stop (a running one is abandoned); new ones start at
 * their spread offset. The engine keeps no pointer into c. */
int scrape_apply(scrape_engine *e, const cfg_config *c, pp_err *err);

/* One turn of the loop: starts due jobs, waits up to max_wait_ms for network activity or for
 * one of the extra fds (readable), handles completions. Returns the number of extra fds that
 * became readable (their revents are set), or a negative error. */
int scrape_run(scrape_engine *e, int max_wait_ms, struct curl_waitfd *extra, unsigned nextra);

/* Shutdown: from the first call on, no job starts any more; scrapes in flight go on as
 * scrape_run drives them, and finished ones still reach the sink. Returns how many are in
 * flight (transfers, and bodies being decoded); scrape_free abandons what is left. Engine
 * thread. */
size_t scrape_drain(scrape_engine *e);

/* Interrupts a scrape_run wait; safe from any thread. */
void scrape_wakeup(scrape_engine *e);

/* Health of every job, as the JSON of /api/v1/targets (caller owns the reference). */
json_t *scrape_targets_json(scrape_engine *e);

/* Appends the engine's metrics in Prometheus text format to b. */
void scrape_metrics(scrape_engine *e, pp_buf *b);

/* Counts for tests and metrics. */
typedef struct scrape_counts {
  size_t jobs, running, up;
  uint64_t scrapes, failures, bytes;
} scrape_counts;
void scrape_get_counts(scrape_engine *e, scrape_counts *ret);

#endif
