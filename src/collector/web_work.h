/* web_work: everything slow that a request asks for runs here, never on the server's threads,
 * so /healthz and /readyz answer at once however busy the queries are.
 *
 * Two lanes of worker threads, each with a short queue:
 *   query  render, timeline, profile(s): `slots` threads (default: the number of cores), so at
 *          most that many merges run at once; at most `queue` more wait (default 4 x slots)
 *   light  series, targets, metrics, reload, /raw and password hashing: WEB_LIGHT_THREADS
 * A job that cannot be queued is refused at once: 503 (errorType "unavailable") with
 * Retry-After, estimated from the recent run times and the queue's length: the lane's run time
 * (a moving average; 1 s before the first run ends) x (queued + running + 1) / its threads,
 * rounded up, within 1..WEB_RETRY_MAX_S. A job still queued after queue_wait is refused the
 * same way.
 *
 * One run per identical query: a job submitted with a key (web_work_key: the query and the
 * store's state) is first looked up in the cache, then joins the run of the same key already
 * queued or running (a "flight"), and only then becomes a job of its own. Ten people opening
 * one dashboard cost one merge.
 *
 * A request waits as a ticket: its connection is suspended and `wake(conn)` is called once the
 * ticket holds its answer (always exactly once, from some worker or the timer thread; the
 * server then resumes the connection and sends it). Every ticket has a deadline (its request's
 * arrival + deadline): past it, the answer is 503 (errorType "timeout") with Retry-After, and a
 * job already running goes on to fill the cache, so the retry finds the answer.
 *
 *   submit --> cache hit ----------------------------------------> answered now
 *          \-> same key in flight --> joins its waiters --\
 *          \-> queue full ---------------------------------> 503 now
 *          \-> queued ---(queue_wait)--> 503 ----------------------> wake
 *                     \--> running --> done: cache + every waiter --> wake
 *                  (each waiter past its deadline: 503 timeout --> wake)
 *
 * Memory: each job gets `budget` bytes (web_ctx.budget) for what it builds; slots x budget
 * (+ the cache) is what queries may hold at once.
 * Workers run 10 nice levels below the process (at most 19): ingest (the main thread) and the
 * probes go first on a busy machine.
 * Threads: every function is thread-safe.
 */
#ifndef COLLECTOR_WEB_WORK_H
#define COLLECTOR_WEB_WORK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/pp_err.h"
#include "web_cache.h"
#include "web_int.h"

#define WEB_LIGHT_THREADS 2
#define WEB_LIGHT_QUEUE 64
#define WEB_QUEUE_WAIT_NS ((int64_t)5 * 1000000000) /* "queue briefly" */
#define WEB_RETRY_MAX_S 60

typedef enum web_lane { WEB_LANE_QUERY, WEB_LANE_LIGHT } web_lane;

typedef struct web_work_opts {
  unsigned slots;        /* query threads (web_start: the cores, fewer if the memory asks); 0 = 1 */
  unsigned queue;        /* queries waiting at most; 0 = 4 x slots */
  int64_t queue_wait_ns; /* 0 = WEB_QUEUE_WAIT_NS (never past the deadline) */
  int64_t deadline_ns;   /* a request's time from arrival to answer */
  size_t budget;         /* each job's memory budget */
  web_cache *cache;      /* NULL = none */
  void (*wake)(void *conn);
} web_work_opts;

typedef struct web_work web_work;
typedef struct web_ticket web_ticket;

/* A job: fills *out (which starts zeroed) within budget bytes. Runs on a worker. */
typedef void (*web_job_fn)(void *arg, size_t budget, web_resp *out);

int web_work_start(const web_work_opts *o, web_work **ret, pp_err *err);
/* Refuses new jobs, answers every waiting ticket 503 (and wakes it), lets running jobs finish
 * and joins the threads. The pool stays valid for web_work_take/web_work_drop until freed. */
void web_work_stop(web_work *w);
void web_work_free(web_work *w);

/* The cache key of a query: the store's state, the path and the parameters sorted (so their
 * order does not matter). malloc'd. */
char *web_work_key(const char *state, const char *path, const web_params *p);

/* Submits fn(arg) for a request that arrived at arrived_ns (pp_clock_mono_ns). key NULL: not shared,
 * not cached. Returns a ticket (the caller suspends conn; wake(conn) follows), or NULL with the
 * answer in *now (a cache hit, or a refusal). arg is freed by free_arg (may be NULL) when no
 * longer needed, whichever way it went. */
web_ticket *web_work_submit(web_work *w, web_lane lane, const char *key, web_job_fn fn, void *arg,
                            void (*free_arg)(void *), void *conn, int64_t arrived_ns, web_resp *now);
/* After wake: moves the answer to *ret and lets go of the ticket. */
void web_work_take(web_work *w, web_ticket *t, web_resp *ret);
/* The connection went away without taking its answer: forget the ticket. */
void web_work_drop(web_work *w, web_ticket *t);

typedef struct web_work_stats {
  unsigned slots, queue_max;
  unsigned running, queued, peak_running; /* the query lane */
  unsigned light_running, light_queued;
  uint64_t ran;            /* query jobs run to the end */
  uint64_t shared;         /* requests that joined a run of the same query */
  uint64_t refused_full;   /* 503: the queue was full */
  uint64_t refused_wait;   /* 503: queued longer than queue_wait */
  uint64_t timeouts;       /* 503: past the request's deadline */
  uint64_t light_refused;  /* light jobs refused (full queue, wait) */
  double run_seconds;      /* query jobs' run time, summed */
} web_work_stats;
void web_work_get_stats(web_work *w, web_work_stats *ret);

#endif
