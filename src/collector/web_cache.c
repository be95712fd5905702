/* Recent answers by key, least recently used out first. See web_cache.h. */
#include "web_cache.h"

#include "../base/htab.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
  struct entry *prev, *next; /* the recency list, most recent first */
  struct entry *chain;       /* the hash bucket's list */
  uint64_t hash;
  char *key;
  web_resp r;
  size_t bytes;
} entry;

struct web_cache {
  pthread_mutex_t mu;
  entry **buckets;
  size_t nbuckets; /* power of two */
  entry *head, *tail;
  web_cache_stats st;
};

web_cache *web_cache_new(size_t max_bytes) {
  web_cache *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->nbuckets = 1024;
  c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
  if (!c->buckets) {
    free(c);
    return NULL;
  }
  c->st.max_bytes = max_bytes;
  pthread_mutex_init(&c->mu, NULL);
  return c;
}

static void unlink_entry(web_cache *c, entry *e) {
  if (e->prev) e->prev->next = e->next;
  else c->head = e->next;
  if (e->next) e->next->prev = e->prev;
  else c->tail = e->prev;
  entry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];
  while (*pp != e) pp = &(*pp)->chain;
  *pp = e->chain;
  c->st.entries--;
  c->st.bytes -= e->bytes;
}

static void free_entry(entry *e) {
  web_resp_release(&e->r);
  free(e->key);
  free(e);
}

void web_cache_free(web_cache *c) {
  if (!c) return;
  for (entry *e = c->head, *n; e; e = n) {
    n = e->next;
    free_entry(e);
  }
  free(c->buckets);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

static entry *find(web_cache *c, const char *key, uint64_t h) {
  for (entry *e = c->buckets[h & (c->nbuckets - 1)]; e; e = e->chain)
    if (e->hash == h && !strcmp(e->key, key)) return e;
  return NULL;
}

static void to_front(web_cache *c, entry *e) {
  e->prev = NULL;
  e->next = c->head;
  if (c->head) c->head->prev = e;
  c->head = e;
  if (!c->tail) c->tail = e;
}

static bool lookup(web_cache *c, const char *key, web_resp *ret, bool count) {
  if (!c || !c->st.max_bytes) return false;
  uint64_t h = htab_hash(key, strlen(key));
  pthread_mutex_lock(&c->mu);
  entry *e = find(c, key, h);
  if (e) {
    /* most recently used: to the front of the list */
    if (e->prev) e->prev->next = e->next;
    else c->head = e->next;
    if (e->next) e->next->prev = e->prev;
    else c->tail = e->prev;
    to_front(c, e);
    web_resp_copy(ret, &e->r);
    c->st.hits += count;
  } else {
    c->st.misses += count;
  }
  pthread_mutex_unlock(&c->mu);
  return e != NULL;
}

bool web_cache_get(web_cache *c, const char *key, web_resp *ret) { return lookup(c, key, ret, true); }

bool web_cache_peek(web_cache *c, const char *key, web_resp *ret) { return lookup(c, key, ret, false); }

void web_cache_put(web_cache *c, const char *key, const web_resp *r) {
  if (!c || !c->st.max_bytes) return;
  size_t klen = strlen(key);
  size_t bytes = sizeof(entry) + klen + 1 + (r->body ? sizeof(web_body) + r->body->len : 0);
  if (bytes > c->st.max_bytes / 8) return;
  entry *e = calloc(1, sizeof *e);
  char *k = malloc(klen + 1);
  if (!e || !k) {
    free(e);
    free(k);
    return;
  }
  memcpy(k, key, klen + 1);
  e->key = k;
  e->hash = htab_hash(key, klen);
  e->bytes = bytes;
  web_resp_copy(&e->r, r);
  pthread_mutex_lock(&c->mu);
  entry *old = find(c, key, e->hash);
  if (old) {
    unlink_entry(c, old);
    free_entry(old);
  }
  while (c->tail && (c->st.bytes + bytes > c->st.max_bytes || c->st.entries >= WEB_CACHE_MAX_ENTRIES)) {
    entry *t = c->tail;
    unlink_entry(c, t);
    free_entry(t);
    c->st.evictions++;
  }
  entry **b = &c->buckets[e->hash & (c->nbuckets - 1)];
  e->chain = *b;
  *b = e;
  to_front(c, e);
  c->st.entries++;
  c->st.bytes += bytes;
  pthread_mutex_unlock(&c->mu);
}

void web_cache_get_stats(web_cache *c, web_cache_stats *ret) {
  if (!c) {
    memset(ret, 0, sizeof *ret);
    return;
  }
  pthread_mutex_lock(&c->mu);
  *ret = c->st;
  pthread_mutex_unlock(&c->mu);
}
