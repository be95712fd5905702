/* Work queue; see kqueue.h. */
#include "kqueue.h"

#include <stdlib.h>
#include <string.h>

typedef struct item {
  char *key;
  bool queued, processing, dirty;
  int64_t ready_at;  /* when queued: not before this */
  unsigned failures; /* for kq_retry */
} item;

struct kq {
  item *v;
  size_t n, cap;
};

kq *kq_new(void) { return calloc(1, sizeof(kq)); }

void kq_free(kq *q) {
  if (!q) return;
  for (size_t i = 0; i < q->n; i++) free(q->v[i].key);
  free(q->v);
  free(q);
}

static item *find(kq *q, const char *key, bool create) {
  for (size_t i = 0; i < q->n; i++)
    if (!strcmp(q->v[i].key, key)) return &q->v[i];
  if (!create) return NULL;
  if (q->n == q->cap) {
    size_t nc = q->cap ? q->cap * 2 : 16;
    item *nv = realloc(q->v, nc * sizeof *nv);
    if (!nv) return NULL;
    q->v = nv;
    q->cap = nc;
  }
  item *it = &q->v[q->n];
  memset(it, 0, sizeof *it);
  if (!(it->key = strdup(key))) return NULL;
  q->n++;
  return it;
}

static void enqueue(kq *q, const char *key, int64_t at) {
  item *it = find(q, key, true);
  if (!it) return;
  if (it->processing) {
    it->dirty = true;
    if (!it->ready_at || at < it->ready_at) it->ready_at = at;
    return;
  }
  if (it->queued) {
    if (at < it->ready_at) it->ready_at = at; /* the earlier add wins */
    return;
  }
  it->queued = true;
  it->ready_at = at;
}

void kq_add(kq *q, const char *key) { enqueue(q, key, 0); }
void kq_add_after(kq *q, const char *key, int64_t delay_ms, int64_t now) { enqueue(q, key, now + delay_ms); }

void kq_retry(kq *q, const char *key, int64_t now) {
  item *it = find(q, key, true);
  if (!it) return;
  int64_t d = 5;
  for (unsigned i = 0; i < it->failures && d < 1000000; i++) d *= 2;
  if (d > 1000000) d = 1000000;
  it->failures++;
  enqueue(q, key, now + d);
}

void kq_forget(kq *q, const char *key) {
  item *it = find(q, key, false);
  if (it) it->failures = 0;
}

unsigned kq_failures(const kq *q, const char *key) {
  for (size_t i = 0; i < q->n; i++)
    if (!strcmp(q->v[i].key, key)) return q->v[i].failures;
  return 0;
}

const char *kq_get(kq *q, int64_t now) {
  item *best = NULL;
  for (size_t i = 0; i < q->n; i++) {
    item *it = &q->v[i];
    if (it->queued && !it->processing && it->ready_at <= now && (!best || it->ready_at < best->ready_at)) best = it;
  }
  if (!best) return NULL;
  best->queued = false;
  best->processing = true;
  best->dirty = false;
  best->ready_at = 0;
  return best->key;
}

void kq_done(kq *q, const char *key) {
  item *it = find(q, key, false);
  if (!it) return;
  it->processing = false;
  if (it->dirty) {
    it->dirty = false;
    it->queued = true;
  } else if (!it->failures) {
    /* nothing pending and nothing to remember: drop the key (keeps the table small) */
    free(it->key);
    *it = q->v[--q->n];
  }
}

size_t kq_len(const kq *q) {
  size_t n = 0;
  for (size_t i = 0; i < q->n; i++) n += q->v[i].queued;
  return n;
}

int64_t kq_next_ms(const kq *q, int64_t now) {
  int64_t best = -1;
  for (size_t i = 0; i < q->n; i++) {
    const item *it = &q->v[i];
    if (!it->queued || it->processing) continue;
    int64_t d = it->ready_at > now ? it->ready_at - now : 0;
    if (best < 0 || d < best) best = d;
  }
  return best;
}
