/* The parallel decode pipeline (pprof.h: pprof_decode_pipeline).
 *
 *   workers:  next -> fetch(i) -> decode -> slot[i], done[i]   (never more than `window` ahead)
 *   caller:   wait done[i] -> consume(slot[i]) -> free -> merged = i + 1 -> wake workers
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pprof_int.h"

#define MAX_THREADS 16

typedef struct pipe_state {
  size_t n, window;
  pprof_limits limits;
  pprof_fetch_fn fetch;
  void *ud;
  pprof_profile **slot;
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
    uint8_t *buf = NULL;
    size_t len = 0;
    pprof_profile *p = NULL;
    if (ps->fetch(ps->ud, i, &buf, &len, &ps->errs[i]) >= 0) {
      /* the fetched bytes are part of this input's max_memory (pprof.h) */
      pprof_limits lim = ps->limits;
      if (lim.max_memory && len >= lim.max_memory)
        pp_err_set(&ps->errs[i], PP_ELIMIT,
                   "decoded profile needs more than the memory limit of %zu bytes",
                   lim.max_memory);
      else {
        if (lim.max_memory) lim.max_memory -= len;
        if (pprof_decode(buf, len, &lim, &p, &ps->errs[i]) < 0) {
          p = NULL;
          if (strstr(ps->errs[i].msg, "memory limit"))
            pp_err_set(&ps->errs[i], PP_ELIMIT,
                       "decoded profile needs more than the memory limit of %zu bytes",
                       ps->limits.max_memory);
        }
      }
      free(buf);
    }
    pthread_mutex_lock(&ps->mu);
    ps->slot[i] = p;
    ps->done[i] = true;
    pthread_cond_broadcast(&ps->cv);
    pthread_mutex_unlock(&ps->mu);
  }
}

int pprof_decode_pipeline(size_t n, unsigned threads, size_t window, const pprof_limits *limits,
                          pprof_fetch_fn fetch, pprof_consume_fn consume, void *ud, pp_err *err) {
  if (threads == 0) threads = 2;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  if (window == 0) window = 2 * threads + 2;
  if (n == 0) return 0;
  pipe_state ps = {.n = n, .window = window, .fetch = fetch, .ud = ud};
  if (limits) ps.limits = *limits;
  else pprof_limits_default(&ps.limits);
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
    pprof_profile *p = ps.slot[i];
    ps.slot[i] = NULL;
    pthread_mutex_unlock(&ps.mu);
    r = consume(ud, i, p, &ps.errs[i], err);
    pprof_free(p);
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
    pprof_free(ps.slot[i]);
  free(ps.slot);
  free(ps.done);
  free(ps.errs);
  pthread_mutex_destroy(&ps.mu);
  pthread_cond_destroy(&ps.cv);
  return r;
}
