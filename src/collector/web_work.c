/* The query pool: lanes of workers, queues, flights of identical queries, deadlines. See
 * web_work.h.
 *
 * Invariants (all under mu): a flight is in `flights` from submit until its job finished or it
 * was dropped from its queue; a queued flight is also in its lane's queue; a ticket is in
 * exactly one flight's waiters until answered, and answered exactly once; a ticket holds two
 * references (the pool's, dropped when it is answered or dropped, and the connection's,
 * dropped by take or drop). A wake list is walked without mu, reading each ticket's next and
 * conn before waking it: the woken connection may take (and free) its ticket at once. */
#include "web_work.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef struct flight flight;

struct web_ticket {
  web_ticket *next;      /* in its flight's waiters */
  web_ticket *next_wake; /* in a wake list */
  flight *fl;            /* NULL once answered */
  void *conn;
  int64_t deadline; /* monotonic ns */
  bool answered;
  int refs;
  web_resp resp;
};

struct flight {
  flight *next_q;               /* in its lane's queue */
  flight *next_all, *prev_all;  /* in flights */
  char *key;                    /* NULL: not shared */
  web_lane lane;
  web_job_fn fn;
  void *arg;
  void (*free_arg)(void *);
  web_ticket *waiters;
  int64_t queued_at;
  bool running;
};

typedef struct lane {
  struct web_work *w;
  pthread_cond_t cv; /* work queued, or stopping */
  pthread_t *th;
  unsigned nth, started;
  flight *qh, *qt;
  unsigned queued, queue_max, running, peak;
  double avg_s; /* recent run time (moving average) */
} lane;

struct web_work {
  web_work_opts o;
  pthread_mutex_t mu;
  pthread_cond_t timer_cv; /* a new ticket (a deadline to watch), or stopping */
  pthread_t timer;
  bool timer_started, stopping;
  lane lanes[2];
  flight *flights;
  web_work_stats st;
};

/* ---- keys ------------------------------------------------------------------------------------- */

static int cmp_pair(const void *a, const void *b) {
  const char *const *x = a, *const *y = b;
  int c = strcmp(x[0], y[0]);
  return c ? c : strcmp(x[1], y[1]);
}

char *web_work_key(const char *state, const char *path, const web_params *p) {
  const char *pairs[WEB_MAX_PARAMS][2];
  for (size_t i = 0; i < p->n; i++) pairs[i][0] = p->k[i], pairs[i][1] = p->v[i];
  qsort(pairs, p->n, sizeof pairs[0], cmp_pair);
  /* lengths first: any bytes may be in a value, and no two queries may share a key */
  pp_buf b;
  pp_buf_init(&b, 0);
  pp_buf_printf(&b, "%zu:%s%zu:%s", strlen(state), state, strlen(path), path);
  for (size_t i = 0; i < p->n; i++)
    pp_buf_printf(&b, "%zu:%s%zu:%s", strlen(pairs[i][0]), pairs[i][0], strlen(pairs[i][1]), pairs[i][1]);
  return pp_buf_take(&b, NULL);
}

/* ---- answering --------------------------------------------------------------------------------- */

/* mu held: gives t its answer and puts it on the wake list. */
static void answer(web_ticket *t, const web_resp *r, web_ticket **wake) {
  web_resp_copy(&t->resp, r);
  t->answered = true;
  t->fl = NULL;
  t->refs--; /* the pool's; the connection's stays until take */
  t->next_wake = *wake;
  *wake = t;
}

static void wake_all(web_work *w, web_ticket *list) {
  while (list) {
    web_ticket *next = list->next_wake;
    void *conn = list->conn;
    w->o.wake(conn);
    list = next;
  }
}

/* mu held: seconds a refused client should wait, from the lane's recent run times and what is
 * ahead of it. */
static unsigned retry_after(const lane *l) {
  double per = l->avg_s > 0 ? l->avg_s : 1;
  double s = ceil(per * (double)(l->queued + l->running + 1) / (double)l->nth);
  return s < 1 ? 1 : s > WEB_RETRY_MAX_S ? WEB_RETRY_MAX_S : (unsigned)s;
}

static void refusal(web_resp *r, const lane *l, const char *type, const char *msg) {
  web_resp_error(r, 503, type, msg);
  r->retry_after = retry_after(l);
}

static void free_flight(flight *f) {
  if (!f) return;
  if (f->free_arg) f->free_arg(f->arg);
  free(f->key);
  free(f);
}

/* mu held: takes f out of flights (and its lane's queue if still queued). */
static void unlink_flight(web_work *w, flight *f) {
  if (f->prev_all) f->prev_all->next_all = f->next_all;
  else w->flights = f->next_all;
  if (f->next_all) f->next_all->prev_all = f->prev_all;
  if (!f->running) {
    lane *l = &w->lanes[f->lane];
    flight **pp = &l->qh, *prev = NULL;
    while (*pp && *pp != f) prev = *pp, pp = &(*pp)->next_q;
    if (*pp) {
      *pp = f->next_q;
      if (l->qt == f) l->qt = prev;
      l->queued--;
    }
  }
}

/* ---- threads ------------------------------------------------------------------------------------ */

static bool cacheable(const web_resp *r) { return r->status == 200 || r->status == 404 || r->status == 422; }

static void *worker(void *p) {
  lane *l = p;
  web_work *w = l->w;
  /* below the probes' and the ingest's threads when the machine is busy: 10 below whatever
   * the process runs at (an absolute 10 would lift the workers above the rest of a process
   * started under nice, as root may) */
  id_t tid = (id_t)syscall(SYS_gettid);
  errno = 0;
  int prio = getpriority(PRIO_PROCESS, tid);
  if (errno == 0) setpriority(PRIO_PROCESS, tid, prio + 10 > 19 ? 19 : prio + 10);
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->stopping && !l->qh) pthread_cond_wait(&l->cv, &w->mu);
    if (!l->qh) break;
    flight *f = l->qh;
    l->qh = f->next_q;
    if (!l->qh) l->qt = NULL;
    l->queued--;
    f->running = true;
    if (++l->running > l->peak) l->peak = l->running;
    pthread_mutex_unlock(&w->mu);

    web_resp out;
    memset(&out, 0, sizeof out);
    int64_t t0 = pp_clock_mono_ns();
    f->fn(f->arg, w->o.budget, &out);
    double secs = (double)(pp_clock_mono_ns() - t0) / 1e9;
    /* into the cache before the flight ends: a request for the same key finds one or the other */
    if (f->key && w->o.cache && cacheable(&out)) web_cache_put(w->o.cache, f->key, &out);

    pthread_mutex_lock(&w->mu);
    l->running--;
    l->avg_s = l->avg_s > 0 ? 0.8 * l->avg_s + 0.2 * secs : secs;
    if (l == &w->lanes[WEB_LANE_QUERY]) {
      w->st.ran++;
      w->st.run_seconds += secs;
    }
    unlink_flight(w, f);
    web_ticket *wake = NULL;
    for (web_ticket *t = f->waiters, *n; t; t = n) {
      n = t->next;
      answer(t, &out, &wake);
    }
    f->waiters = NULL;
    pthread_mutex_unlock(&w->mu);
    wake_all(w, wake);
    web_resp_release(&out);
    free_flight(f);
    pthread_mutex_lock(&w->mu);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

/* Refuses what waited too long in a queue and answers tickets past their deadline. */
static void *timer(void *p) {
  web_work *w = p;
  pthread_mutex_lock(&w->mu);
  while (!w->stopping) {
    int64_t now = pp_clock_mono_ns(), next = now + 1000000000;
    web_ticket *wake = NULL;
    for (flight *f = w->flights, *fnext; f; f = fnext) {
      fnext = f->next_all;
      lane *l = &w->lanes[f->lane];
      int64_t wait_end = f->queued_at + w->o.queue_wait_ns;
      if (!f->running && now >= wait_end) {
        web_resp r;
        memset(&r, 0, sizeof r);
        refusal(&r, l, "unavailable", "every query slot stayed busy; retry later");
        for (web_ticket *t = f->waiters, *n; t; t = n) {
          n = t->next;
          answer(t, &r, &wake);
          if (f->lane == WEB_LANE_QUERY) w->st.refused_wait++;
          else w->st.light_refused++;
        }
        f->waiters = NULL;
        web_resp_release(&r);
        unlink_flight(w, f);
        free_flight(f);
        continue;
      }
      if (!f->running && wait_end < next) next = wait_end;
      web_ticket **pp = &f->waiters;
      while (*pp) {
        web_ticket *t = *pp;
        if (t->deadline <= now) {
          *pp = t->next;
          web_resp r;
          memset(&r, 0, sizeof r);
          refusal(&r, l, "timeout", f->running ? "the query did not finish in time; its answer will be kept for a retry"
                                               : "the query did not start in time; retry later");
          answer(t, &r, &wake);
          web_resp_release(&r);
          w->st.timeouts++;
        } else {
          if (t->deadline < next) next = t->deadline;
          pp = &t->next;
        }
      }
      if (!f->running && !f->waiters) {
        /* queued, and nobody waits for it any more */
        unlink_flight(w, f);
        free_flight(f);
      }
    }
    if (wake) {
      pthread_mutex_unlock(&w->mu);
      wake_all(w, wake);
      pthread_mutex_lock(&w->mu);
      continue;
    }
    struct timespec ts = pp_clock_timespec(next); /* timer_cv waits on CLOCK_MONOTONIC */
    pthread_cond_timedwait(&w->timer_cv, &w->mu, &ts);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

/* ---- life ------------------------------------------------------------------------------------- */

int web_work_start(const web_work_opts *o, web_work **ret, pp_err *err) {
  web_work *w = calloc(1, sizeof *w);
  if (!w) return pp_err_set(err, PP_ENOMEM, "out of memory");
  w->o = *o;
  if (!w->o.slots) w->o.slots = 1; /* web_start picks the count (cores, memory) */
  if (!w->o.queue) w->o.queue = 4 * w->o.slots;
  if (!w->o.queue_wait_ns) w->o.queue_wait_ns = WEB_QUEUE_WAIT_NS;
  if (w->o.deadline_ns && w->o.queue_wait_ns > w->o.deadline_ns) w->o.queue_wait_ns = w->o.deadline_ns;
  pthread_mutex_init(&w->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w->timer_cv, &ca);
  pthread_condattr_destroy(&ca);
  unsigned nth[2] = {w->o.slots, WEB_LIGHT_THREADS}, qmax[2] = {w->o.queue, WEB_LIGHT_QUEUE};
  int r = 0;
  for (int k = 0; k < 2; k++) {
    lane *l = &w->lanes[k];
    l->w = w;
    l->nth = nth[k];
    l->queue_max = qmax[k];
    pthread_cond_init(&l->cv, NULL);
    l->th = calloc(l->nth, sizeof *l->th);
    if (!l->th) r = pp_err_set(err, PP_ENOMEM, "out of memory");
    for (unsigned i = 0; r == 0 && i < l->nth; i++) {
      int e = pthread_create(&l->th[i], NULL, worker, l);
      if (e) r = pp_err_set(err, PP_EIO, "cannot start a web worker: %s", strerror(e));
      else l->started++;
    }
  }
  if (r == 0) {
    int e = pthread_create(&w->timer, NULL, timer, w);
    if (e) r = pp_err_set(err, PP_EIO, "cannot start the web timer: %s", strerror(e));
    else w->timer_started = true;
  }
  if (r < 0) {
    web_work_stop(w);
    web_work_free(w);
    return r;
  }
  w->st.slots = w->o.slots;
  w->st.queue_max = w->o.queue;
  *ret = w;
  return 0;
}

void web_work_stop(web_work *w) {
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  if (w->stopping) {
    pthread_mutex_unlock(&w->mu);
    return;
  }
  w->stopping = true;
  web_ticket *wake = NULL;
  web_resp r;
  memset(&r, 0, sizeof r);
  web_resp_error(&r, 503, "unavailable", "the collector is stopping");
  r.retry_after = 1;
  for (flight *f = w->flights, *fnext; f; f = fnext) {
    fnext = f->next_all;
    for (web_ticket *t = f->waiters, *n; t; t = n) {
      n = t->next;
      answer(t, &r, &wake);
    }
    f->waiters = NULL;
    if (!f->running) {
      unlink_flight(w, f);
      free_flight(f);
    }
  }
  web_resp_release(&r);
  for (int k = 0; k < 2; k++) pthread_cond_broadcast(&w->lanes[k].cv);
  pthread_cond_broadcast(&w->timer_cv);
  pthread_mutex_unlock(&w->mu);
  wake_all(w, wake);
  for (int k = 0; k < 2; k++)
    for (unsigned i = 0; i < w->lanes[k].started; i++) pthread_join(w->lanes[k].th[i], NULL);
  if (w->timer_started) pthread_join(w->timer, NULL);
  for (int k = 0; k < 2; k++) w->lanes[k].started = 0;
  w->timer_started = false;
}

void web_work_free(web_work *w) {
  if (!w) return;
  for (int k = 0; k < 2; k++) {
    pthread_cond_destroy(&w->lanes[k].cv);
    free(w->lanes[k].th);
  }
  pthread_cond_destroy(&w->timer_cv);
  pthread_mutex_destroy(&w->mu);
  free(w);
}

/* ---- requests ----------------------------------------------------------------------------------- */

web_ticket *web_work_submit(web_work *w, web_lane ln, const char *key, web_job_fn fn, void *arg,
                            void (*free_arg)(void *), void *conn, int64_t arrived_ns, web_resp *now) {
  memset(now, 0, sizeof *now);
  if (key && w->o.cache && web_cache_peek(w->o.cache, key, now)) {
    if (free_arg) free_arg(arg);
    return NULL;
  }
  web_ticket *t = calloc(1, sizeof *t);
  flight *f = calloc(1, sizeof *f);
  char *k = key ? strdup(key) : NULL;
  lane *l = &w->lanes[ln];
  pthread_mutex_lock(&w->mu);
  flight *same = NULL;
  for (flight *x = key ? w->flights : NULL; x && !same; x = x->next_all)
    if (x->key && !strcmp(x->key, key)) same = x;
  const char *why = NULL;
  if (!t || !f || (key && !k)) why = "out of memory";
  else if (w->stopping) why = "the collector is stopping";
  else if (!same && l->queued >= l->queue_max) why = "too many queries at once; retry later";
  if (why) {
    refusal(now, l, "unavailable", why);
    if (ln == WEB_LANE_QUERY && !strncmp(why, "too many", 8)) w->st.refused_full++;
    else if (ln == WEB_LANE_LIGHT) w->st.light_refused++;
    pthread_mutex_unlock(&w->mu);
    free(t);
    free(f);
    free(k);
    if (free_arg) free_arg(arg);
    return NULL;
  }
  t->conn = conn;
  t->refs = 2;
  t->deadline = arrived_ns + w->o.deadline_ns;
  if (same) {
    /* one run for every request of this query: wait for the one in flight */
    t->fl = same;
    t->next = same->waiters;
    same->waiters = t;
    w->st.shared++;
    free(f);
    free(k);
    if (free_arg) free_arg(arg);
  } else {
    f->key = k;
    f->lane = ln;
    f->fn = fn;
    f->arg = arg;
    f->free_arg = free_arg;
    f->queued_at = pp_clock_mono_ns();
    f->waiters = t;
    t->fl = f;
    if (l->qt) l->qt->next_q = f;
    else l->qh = f;
    l->qt = f;
    l->queued++;
    f->next_all = w->flights;
    if (w->flights) w->flights->prev_all = f;
    w->flights = f;
    pthread_cond_signal(&l->cv);
  }
  pthread_cond_signal(&w->timer_cv);
  pthread_mutex_unlock(&w->mu);
  return t;
}

void web_work_take(web_work *w, web_ticket *t, web_resp *ret) {
  pthread_mutex_lock(&w->mu);
  if (!t->answered) {
    /* not woken yet (cannot happen: the server takes only after wake); forget it */
    pthread_mutex_unlock(&w->mu);
    web_work_drop(w, t);
    memset(ret, 0, sizeof *ret);
    web_resp_error(ret, 500, "internal", "answer taken before it was ready");
    return;
  }
  *ret = t->resp;
  memset(&t->resp, 0, sizeof t->resp);
  bool last = --t->refs == 0;
  pthread_mutex_unlock(&w->mu);
  if (last) free(t);
}

void web_work_drop(web_work *w, web_ticket *t) {
  pthread_mutex_lock(&w->mu);
  if (!t->answered && t->fl) {
    web_ticket **pp = &t->fl->waiters;
    while (*pp && *pp != t) pp = &(*pp)->next;
    if (*pp) *pp = t->next;
    t->fl = NULL;
    t->refs--; /* the pool's */
  }
  bool last = --t->refs == 0;
  pthread_mutex_unlock(&w->mu);
  if (last) {
    web_resp_release(&t->resp);
    free(t);
  }
}

void web_work_get_stats(web_work *w, web_work_stats *ret) {
  pthread_mutex_lock(&w->mu);
  *ret = w->st;
  ret->running = w->lanes[WEB_LANE_QUERY].running;
  ret->queued = w->lanes[WEB_LANE_QUERY].queued;
  ret->peak_running = w->lanes[WEB_LANE_QUERY].peak;
  ret->light_running = w->lanes[WEB_LANE_LIGHT].running;
  ret->light_queued = w->lanes[WEB_LANE_LIGHT].queued;
  pthread_mutex_unlock(&w->mu);
}
