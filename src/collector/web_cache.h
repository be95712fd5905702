/* web_cache: recent answers of the expensive endpoints (render, timeline, profile), so that ten
 * people looking at one dashboard cost one merge.
 *
 * Keys are made by the caller from the store's state and the query (web_work_key): an answer
 * is only found again while the store holds the same records, so a hit is always the answer a
 * fresh computation would give (rollups change how a merge reads, never what it answers:
 * store.h). Entries of an older store state are never looked up again and leave as the least
 * recently used.
 *
 * Bounded by bytes (the bodies and keys it holds): putting past the bound evicts the least
 * recently used entries (also past WEB_CACHE_MAX_ENTRIES entries, which keeps lookups short); an
 * answer bigger than an eighth of the bound is not kept. max_bytes
 * 0 disables the cache. Bodies are shared by reference: a hit hands out a new reference, no
 * copy. Thread-safe (one mutex).
 */
#ifndef COLLECTOR_WEB_CACHE_H
#define COLLECTOR_WEB_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "web_int.h"

#define WEB_CACHE_MAX_ENTRIES 4096

typedef struct web_cache web_cache;

/* NULL on out of memory. */
web_cache *web_cache_new(size_t max_bytes);
void web_cache_free(web_cache *c);

/* On a hit, *ret is a copy of the answer (its own body reference) and true is returned.
 * web_cache_get counts the hit or miss in the stats, web_cache_peek (a second look) does not. */
bool web_cache_get(web_cache *c, const char *key, web_resp *ret);
bool web_cache_peek(web_cache *c, const char *key, web_resp *ret);
/* Keeps the answer (a reference to its body) under key, replacing an older one. */
void web_cache_put(web_cache *c, const char *key, const web_resp *r);

typedef struct web_cache_stats {
  uint64_t hits, misses, evictions;
  size_t entries, bytes, max_bytes;
} web_cache_stats;
void web_cache_get_stats(web_cache *c, web_cache_stats *ret);

#endif
