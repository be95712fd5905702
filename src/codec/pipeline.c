/* The parallel pipelines (pprof.h: pprof_item_pipeline, pprof_decode_pipeline).
 *
 *   workers:  next -> load(i) -> slot[i], done[i]   (never more than `window` ahead)
 *   caller:   wait done[i] -> consume(slot[i]) -> free -> consumed = i + 1 -> wake workers
 * The decode pipeline is the item pipeline whose load fetches and decodes a profile.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pprof_int.h"

#define MAX_THREADS 16

typedef struct pipe_state {
  size_t n, window;
  pprof_item_load_fn load;
  pprof_item_free_fn free_item;
  void *ud;
  void **slot;
  pp_err *errs; /* why slot[i] is NULL */
  bool *done;
  size_t next, consumed;
  bool stop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
} pipe_state;

static void *worker(void *arg) {
  pipe_state *ps = arg;
  for (;;) {
    pthread_mutex_lock(&ps->mu);
    while (!ps->stop && ps->next < ps->n && ps->next - ps->consumed >= ps->window)
      pthread_cond_wait(&ps->cv, &ps->mu);
    if (ps->stop || ps->next >= ps->n) {
      pthread_mutex_unlock(&ps->mu);
      return NULL;
    }
    size_t i = ps->next++;
    pthread_mutex_unlock(&ps->mu);
    void *item = NULL;
    if (ps->load(ps->ud, i, &item, &ps->errs[i]) < 0) item = NULL;
    pthread_mutex_lock(&ps->mu);
    ps->slot[i] = item;
    ps->done[i] = true;
    pthread_cond_broadcast(&ps->cv);
    pthread_mutex_unlock(&ps->mu);
  }
}

int pprof_item_pipeline(size_t n, unsigned threads, size_t window, pprof_item_load_fn load,
                        pprof_item_free_fn free_item, pprof_item_consume_fn consume, void *ud, pp_err *err) {
  if (threads == 0) threads = 2;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  if (window == 0) window = 2 * threads + 2;
  if (n == 0) return 0;
  pipe_state ps = {.n = n, .window = window, .load = load, .free_item = free_item, .ud = ud};
  ps.slot = calloc(n, sizeof *ps.slot);
  ps.done = calloc(n, sizeof *ps.done);
  ps.errs = calloc(n, sizeof *ps.errs);
  if (!ps.slot || !ps.done || !ps.errs) {
    free(ps.slot);
    free(ps.done);
    free(ps.errs);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  pthread_mutex_init(&ps.mu, NULL);
  pthread_cond_init(&ps.cv, NULL);
  pthread_t th[MAX_THREADS];
  unsigned started = 0;
  for (unsigned t = 0; t < threads && t < n; t++)
    if (pthread_create(&th[t], NULL, worker, &ps) == 0) started++;
  int r = started ? 0 : pp_err_set(err, PP_ENOMEM, "cannot start decoding threads");
  for (size_t i = 0; i < n && r == 0; i++) {
    pthread_mutex_lock(&ps.mu);
    while (!ps.done[i])
      pthread_cond_wait(&ps.cv, &ps.mu);
    void *item = ps.slot[i];
    ps.slot[i] = NULL;
    pthread_mutex_unlock(&ps.mu);
    r = consume(ud, i, item, &ps.errs[i], err);
    if (item) free_item(item);
    pthread_mutex_lock(&ps.mu);
    ps.consumed = i + 1;
    if (r < 0) ps.stop = true;
    pthread_cond_broadcast(&ps.cv);
    pthread_mutex_unlock(&ps.mu);
  }
  pthread_mutex_lock(&ps.mu);
  ps.stop = true;
  pthread_cond_broadcast(&ps.cv);
  pthread_mutex_unlock(&ps.mu);
  for (unsigned t = 0; t < started; t++)
    pthread_join(th[t], NULL);
  for (size_t i = 0; i < n; i++)
    if (ps.slot[i]) free_item(ps.slot[i]);
  free(ps.slot);
  free(ps.done);
  free(ps.errs);
  pthread_mutex_destroy(&ps.mu);
  pthread_cond_destroy(&ps.cv);
  return r;
}

/* ---- the decode pipeline: items are decoded profiles ---- */

typedef struct decode_state {
  pprof_limits limits;
  pprof_fetch_fn fetch;
  pprof_consume_fn consume;
  void *ud;
} decode_state;

static int decode_load(void *ud, size_t i, void **ret, pp_err *ierr) {
  decode_state *ds = ud;
  uint8_t *buf = NULL;
  size_t len = 0;
  pprof_profile *p = NULL;
  if (ds->fetch(ds->ud, i, &buf, &len, ierr) < 0) return -1;
  /* the fetched bytes are part of this input's max_memory (pprof.h) */
  pprof_limits lim = ds->limits;
  int r;
  if (lim.max_memory && len >= lim.max_memory)
    r = pp_err_set(ierr, PP_ELIMIT, "decoded profile needs more than the memory limit of %zu bytes", lim.max_memory);
  else {
    if (lim.max_memory) lim.max_memory -= len;
    if ((r = pprof_decode(buf, len, &lim, &p, ierr)) < 0 && strstr(ierr->msg, "memory limit"))
      pp_err_set(ierr, PP_ELIMIT, "decoded profile needs more than the memory limit of %zu bytes",
                 ds->limits.max_memory);
  }
  free(buf);
  *ret = p;
  return r;
}

static void decode_free(void *item) {
  pprof_free(item);
}

static int decode_consume(void *ud, size_t i, void *item, const pp_err *ierr, pp_err *err) {
  decode_state *ds = ud;
  return ds->consume(ds->ud, i, item, ierr, err);
}

int pprof_decode_pipeline(size_t n, unsigned threads, size_t window, const pprof_limits *limits,
                          pprof_fetch_fn fetch, pprof_consume_fn consume, void *ud, pp_err *err) {
  decode_state ds = {.fetch = fetch, .consume = consume, .ud = ud};
  if (limits) ds.limits = *limits;
  else pprof_limits_default(&ds.limits);
  return pprof_item_pipeline(n, threads, window, decode_load, decode_free, decode_consume, &ds, err);
}
