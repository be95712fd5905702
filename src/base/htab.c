#include "htab.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pp_err.h"

static inline uint64_t rd64(const unsigned char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static inline uint64_t mix(uint64_t a, uint64_t b) {
  __uint128_t r = (__uint128_t)a * b;
  return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* A multiply-mix hash over 8-byte words: keys here are short (ids, string indexes, names) and
 * this does one 128-bit multiply per word. Not cryptographic; inputs from profiles can at
 * worst cause long probe chains, bounded by max_keys. */
uint64_t htab_hash(const void *key, size_t len) {
  const unsigned char *p = key;
  const uint64_t k0 = 0xa0761d6478bd642full, k1 = 0xe7037ed1a0b428dbull;
  uint64_t h = 0x8bb84b93962eacc9ull ^ (len * k1);
  while (len >= 8) {
    h = mix(h ^ rd64(p), k0);
    p += 8;
    len -= 8;
  }
  if (len) {
    uint64_t t = 0;
    memcpy(&t, p, len);
    h = mix(h ^ t ^ ((uint64_t)len << 56), k1);
  }
  return mix(h, k0 ^ 0x589965cc75374cc3ull);
}

/* memcmp with len 0 may still not be given NULL (the key buffer starts unallocated). */
static inline bool key_eq(const htab *t, const htab_entry *e, uint64_t h, const void *key,
                          size_t len) {
  return e->hash == h && e->len == len && (len == 0 || memcmp(t->keys + e->off, key, len) == 0);
}

static int resize_slots(htab *t, size_t nslots) {
  uint32_t *s = calloc(nslots, sizeof *s);
  if (!s) return PP_ENOMEM;
  size_t mask = nslots - 1;
  for (size_t i = 0; i < t->count; i++) {
    size_t j = (size_t)t->entries[i].hash & mask;
    while (s[j])
      j = (j + 1) & mask;
    s[j] = (uint32_t)(i + 1);
  }
  free(t->slots);
  t->slots = s;
  t->nslots = nslots;
  return 0;
}

int htab_init(htab *t, size_t expected, size_t max_keys) {
  memset(t, 0, sizeof *t);
  t->max_keys = max_keys;
  size_t n = 16;
  while (n < expected * 2 && n < ((size_t)1 << 31))
    n <<= 1;
  return resize_slots(t, n);
}

int64_t htab_find(const htab *t, const void *key, size_t len) {
  uint64_t h = htab_hash(key, len);
  size_t mask = t->nslots - 1;
  for (size_t j = (size_t)h & mask;; j = (j + 1) & mask) {
    uint32_t s = t->slots[j];
    if (!s) return -1;
    const htab_entry *e = &t->entries[s - 1];
    if (key_eq(t, e, h, key, len)) return s - 1;
  }
}

int htab_intern(htab *t, const void *key, size_t len, uint32_t *ret_index) {
  uint64_t h = htab_hash(key, len);
  size_t mask = t->nslots - 1;
  size_t j = (size_t)h & mask;
  for (;; j = (j + 1) & mask) {
    uint32_t s = t->slots[j];
    if (!s) break;
    const htab_entry *e = &t->entries[s - 1];
    if (key_eq(t, e, h, key, len)) {
      *ret_index = s - 1;
      return 0;
    }
  }
  if ((t->max_keys && t->count >= t->max_keys) || t->count >= UINT32_MAX - 1) return PP_ELIMIT;
  if (t->count == t->cap) {
    size_t ncap = t->cap ? t->cap * 2 : 64;
    htab_entry *ne = realloc(t->entries, ncap * sizeof *ne);
    if (!ne) return PP_ENOMEM;
    t->entries = ne;
    t->cap = ncap;
  }
  if (t->keys_cap - t->keys_len < len) {
    size_t ncap = t->keys_cap ? t->keys_cap : 256;
    while (ncap - t->keys_len < len) {
      if (ncap > SIZE_MAX / 2) return PP_ENOMEM;
      ncap *= 2;
    }
    unsigned char *nk = realloc(t->keys, ncap);
    if (!nk) return PP_ENOMEM;
    t->keys = nk;
    t->keys_cap = ncap;
  }
  if (len) memcpy(t->keys + t->keys_len, key, len);
  htab_entry *e = &t->entries[t->count];
  e->hash = h;
  e->off = t->keys_len;
  e->len = len;
  t->keys_len += len;
  t->slots[j] = (uint32_t)(t->count + 1);
  *ret_index = (uint32_t)t->count;
  t->count++;
  if (t->count * 2 > t->nslots) {
    int r = resize_slots(t, t->nslots * 2);
    if (r < 0) return r; /* the key is stored; only the resize failed */
  }
  return 1;
}

const void *htab_key(const htab *t, uint32_t index, size_t *ret_len) {
  const htab_entry *e = &t->entries[index];
  if (ret_len) *ret_len = e->len;
  /* keys[] is allocated with the first key that has bytes: a table holding only empty keys
   * (a profile's string table starts with "") has none, and NULL + 0 is undefined */
  return t->keys ? t->keys + e->off : (const void *)"";
}

void htab_free(htab *t) {
  free(t->slots);
  free(t->entries);
  free(t->keys);
  memset(t, 0, sizeof *t);
}

size_t htab_bytes(const htab *t) {
  return t->nslots * sizeof *t->slots + t->cap * sizeof *t->entries + t->keys_cap;
}

void htab_truncate(htab *t, size_t n) {
  if (t->count <= n) return;
  t->keys_len = t->entries[n].off;
  t->count = n;
  /* the slots of the keys kept, placed again as insertion would (linear probing) */
  memset(t->slots, 0, t->nslots * sizeof *t->slots);
  for (size_t i = 0; i < n; i++) {
    size_t s = t->entries[i].hash & (t->nslots - 1);
    while (t->slots[s]) s = (s + 1) & (t->nslots - 1);
    t->slots[s] = (uint32_t)i + 1;
  }
}
