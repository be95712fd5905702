#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct arena_chunk {
  arena_chunk *next; /* older chunk */
  size_t size;       /* usable bytes in data[] */
  size_t off;        /* next free offset in data[] */
  _Alignas(16) unsigned char data[];
};

/* Chunks start small so tiny profiles stay tiny, then grow geometrically so large ones make
 * few malloc calls. */
#define ARENA_MIN_CHUNK ((size_t)16 * 1024)
#define ARENA_MAX_CHUNK ((size_t)8 * 1024 * 1024)

void arena_init(arena *a, size_t budget) {
  a->head = NULL;
  a->used = 0;
  a->reserved = 0;
  a->budget = budget;
}

void *arena_alloc(arena *a, size_t size) {
  size_t need = (size + 15) & ~(size_t)15;
  if (need < size) return NULL;
  arena_chunk *c = a->head;
  if (!c || c->size - c->off < need) {
    size_t csize = c ? c->size * 2 : ARENA_MIN_CHUNK;
    if (csize > ARENA_MAX_CHUNK) csize = ARENA_MAX_CHUNK;
    if (csize < need) csize = need;
    if (csize > SIZE_MAX - sizeof(arena_chunk)) return NULL;
    if (a->budget && (a->reserved + csize > a->budget || a->reserved + csize < a->reserved))
      return NULL;
    arena_chunk *n = malloc(sizeof(arena_chunk) + csize);
    if (!n) return NULL;
    n->size = csize;
    n->off = 0;
    /* A big one-off request goes behind the current chunk so the remaining space in the
     * current chunk is not abandoned. */
    if (c && need > c->size && c->size - c->off > ARENA_MIN_CHUNK) {
      n->next = c->next;
      c->next = n;
    } else {
      n->next = c;
      a->head = n;
    }
    a->reserved += csize;
    c = n;
  }
  void *p = c->data + c->off;
  c->off += need;
  a->used += need;
  return p;
}

void *arena_calloc(arena *a, size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) return NULL;
  void *p = arena_alloc(a, n * size);
  if (p) memset(p, 0, n * size);
  return p;
}

char *arena_strndup(arena *a, const char *s, size_t len) {
  if (len == SIZE_MAX) return NULL;
  char *p = arena_alloc(a, len + 1);
  if (!p) return NULL;
  if (len) memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

void arena_free(arena *a) {
  arena_chunk *c = a->head;
  while (c) {
    arena_chunk *next = c->next;
    free(c);
    c = next;
  }
  a->head = NULL;
  a->used = 0;
  a->reserved = 0;
}

void *arena_budget_alloc(void *arena_budget_ptr, size_t size) {
  arena_budget *b = arena_budget_ptr;
  void *p = arena_alloc(&b->mem, size);
  if (!p) b->exhausted = 1;
  return p;
}

void arena_budget_free(void *arena_budget_ptr, void *ptr) {
  (void)arena_budget_ptr;
  (void)ptr;
}
