/* The syncer: the commit points of the durability policy in store.h.
 *
 * Every sync_ns the syncer thread takes what the writer left it (the fds of segments rolled
 * since its last round, the active segment, whether a new file appeared) and makes it durable
 * in this order: the segments' data, the segments directory (new files' names), the data
 * directory (once, for the WAL's name), then the index's WAL. A round that starts at t0 covers every record whose store_append returned
 * before t0: its bytes were written to its segment and its row to the WAL before then. Rows can
 * still reach the disk before their record's bytes do (the kernel writes back in any order);
 * the CRC check at open drops those.
 *
 * The writer never waits for a round: it only passes fds under sync_mu. Ownership: a rolled
 * segment's fd becomes the syncer's (it syncs and closes it); the active fd stays the writer's,
 * and a round syncs a dup of it taken under the lock, so the writer may close its own at any
 * time after store__sync_forget. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store_int.h"

/* One step of a round: *ok stays true while every step succeeds; the first failure (with the
 * errno of the call that failed, so called before anything else can change it) goes into why. */
static void step(bool done, const char *what, bool *ok, char *why, size_t cap) {
  if (!done && *ok) snprintf(why, cap, "%s: %s", what, strerror(errno));
  *ok &= done;
}

/* One round; called and returns with sync_mu held (dropped while the disk works). */
static void sync_round(store *s, int *wal_fd, int *dir_fd) {
  int64_t t0 = pp_clock_real_ns();
  int *closed = s->sync_closed;
  size_t nclosed = s->nsync_closed;
  s->sync_closed = NULL;
  s->nsync_closed = s->sync_closed_cap = 0;
  int active = s->sync_active >= 0 ? dup(s->sync_active) : -1;
  int active_r = s->sync_active_r >= 0 ? dup(s->sync_active_r) : -1; /* the rollup tier's */
  bool dir = s->sync_dir;
  s->sync_dir = false;
  pthread_mutex_unlock(&s->sync_mu);

  bool ok = true;
  char why[sizeof s->stats.last_sync_error] = "";
  for (size_t i = 0; i < nclosed; i++) {
    step(fdatasync(closed[i]) == 0, "fdatasync of a rolled segment", &ok, why, sizeof why);
    close(closed[i]);
  }
  free(closed);
  if (active >= 0) {
    step(fdatasync(active) == 0, "fdatasync of the active segment", &ok, why, sizeof why);
    close(active);
  }
  if (active_r >= 0) {
    step(fdatasync(active_r) == 0, "fdatasync of the active rollup segment", &ok, why, sizeof why);
    close(active_r);
  }
  if (dir) {
    if (*dir_fd < 0) *dir_fd = open(s->segdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    step(*dir_fd >= 0 && fsync(*dir_fd) == 0, "fsync of the segments directory", &ok, why, sizeof why);
  }
  /* the WAL last: its rows point at the bytes synced above */
  if (*wal_fd < 0) {
    char p[4200];
    snprintf(p, sizeof p, "%s-wal", s->dbpath);
    *wal_fd = open(p, O_RDONLY | O_CLOEXEC);
    /* no WAL yet: nothing committed to it */
    step(*wal_fd >= 0 || errno == ENOENT, "opening the index's WAL", &ok, why, sizeof why);
    if (*wal_fd >= 0) {
      /* the names in the data directory (index, WAL, segments/), once: SQLite syncs the
       * directory only at its first checkpoint, and until then a power loss could lose the
       * WAL's name, and with it the rows of every segment (which repair would then delete) */
      int d = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      step(d >= 0 && fsync(d) == 0, "fsync of the data directory", &ok, why, sizeof why);
      if (d >= 0) close(d);
    }
  }
  if (*wal_fd >= 0) step(fdatasync(*wal_fd) == 0, "fdatasync of the index's WAL", &ok, why, sizeof why);
  int64_t t1 = pp_clock_real_ns();

  pthread_mutex_lock(&s->stats_mu);
  s->stats.syncs++;
  s->stats.sync_failing = !ok;
  if (ok) {
    s->stats.durable_ns = t0;
  } else {
    s->stats.sync_failures++;
    memcpy(s->stats.last_sync_error, why, sizeof why);
  }
  s->stats.last_sync_seconds = (double)(t1 - t0) / 1e9;
  pthread_mutex_unlock(&s->stats_mu);
  pthread_mutex_lock(&s->sync_mu);
}

static void *syncer_main(void *arg) {
  store *s = arg;
  int wal_fd = -1, dir_fd = -1;
  pthread_mutex_lock(&s->sync_mu);
  while (!s->sync_stop) {
    struct timespec until = pp_clock_real_deadline(s->sync_ns);
    int rc = 0;
    while (!s->sync_stop && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&s->sync_cv, &s->sync_mu, &until);
    if (s->sync_stop) break;
    sync_round(s, &wal_fd, &dir_fd);
  }
  /* the last round, so that stopping leaves everything on disk */
  sync_round(s, &wal_fd, &dir_fd);
  pthread_mutex_unlock(&s->sync_mu);
  if (wal_fd >= 0) close(wal_fd);
  if (dir_fd >= 0) close(dir_fd);
  return NULL;
}

int store__start_syncer(store *s, pp_err *err) {
  return store__thread_start(s, &s->syncer, &s->syncer_running, &s->sync_stop, syncer_main, "syncer", err);
}

void store__stop_syncer(store *s) {
  store__thread_stop(&s->syncer, &s->syncer_running, &s->sync_stop, &s->sync_mu, &s->sync_cv);
  /* without a syncer (sync_interval < 0), rolled fds were closed at once; none are left */
  for (size_t i = 0; i < s->nsync_closed; i++) close(s->sync_closed[i]);
  s->nsync_closed = 0;
  s->sync_active = s->sync_active_r = -1;
}

void store__sync_roll(store *s, int old_fd, int fd) {
  pthread_mutex_lock(&s->sync_mu);
  if (old_fd >= 0) {
    if (!s->syncer_running) {
      close(old_fd);
    } else if (s->nsync_closed == s->sync_closed_cap) {
      size_t nc = s->sync_closed_cap ? s->sync_closed_cap * 2 : 8;
      int *nv = realloc(s->sync_closed, nc * sizeof *nv);
      if (nv) {
        s->sync_closed = nv;
        s->sync_closed_cap = nc;
      }
    }
    if (s->syncer_running && s->nsync_closed < s->sync_closed_cap) s->sync_closed[s->nsync_closed++] = old_fd;
    else if (s->syncer_running) {
      /* no memory to hand it over: sync it here rather than lose the guarantee */
      fdatasync(old_fd);
      close(old_fd);
    }
  }
  s->sync_active = fd;
  if (fd >= 0) s->sync_dir = true;
  pthread_mutex_unlock(&s->sync_mu);
}

void store__sync_forget(store *s, int fd) {
  pthread_mutex_lock(&s->sync_mu);
  if (s->sync_active == fd) s->sync_active = -1;
  if (s->sync_active_r == fd) s->sync_active_r = -1;
  pthread_mutex_unlock(&s->sync_mu);
}
