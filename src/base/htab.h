/* htab: interning of byte strings to dense indexes 0, 1, 2, ...
 *
 * This is the one hash table the codec uses: string tables, function/location/mapping
 * deduplication during merge, sample keys (stack + labels) and aggregation nodes all reduce
 * to "give me the stable index of this byte sequence". Keys are copied into the table, so the
 * caller may reuse its key buffer. Open addressing with linear probing; the table grows at 50%
 * load. A table created with a max_keys limit refuses to grow past it (PP_ELIMIT), so a
 * hostile profile cannot make it grow without bound. Not thread-safe.
 */
#ifndef PP_HTAB_H
#define PP_HTAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct htab_entry {
  uint64_t hash; /* full hash, kept to skip most key comparisons and to rehash cheaply */
  size_t off;    /* key offset in keys[] */
  size_t len;    /* key length */
} htab_entry;

typedef struct htab {
  uint32_t *slots;     /* 0 = empty, else entry index + 1 */
  size_t nslots;       /* power of two */
  htab_entry *entries; /* dense, in insertion order: index i is key i */
  size_t count;        /* number of keys */
  size_t cap;          /* capacity of entries[] */
  unsigned char *keys; /* all key bytes, back to back */
  size_t keys_len;
  size_t keys_cap;
  size_t max_keys; /* 0 = no limit (still bounded by uint32) */
} htab;

/* Prepares an empty table sized for about `expected` keys. Returns 0 or PP_ENOMEM. */
int htab_init(htab *t, size_t expected, size_t max_keys);

/* Finds key or inserts it. On success stores its index in *ret_index and returns 1 if the key
 * was inserted now, 0 if it was already there. Returns PP_ENOMEM or PP_ELIMIT (max_keys). */
int htab_intern(htab *t, const void *key, size_t len, uint32_t *ret_index);

/* Looks key up without inserting: its index, or -1. */
int64_t htab_find(const htab *t, const void *key, size_t len);

/* The bytes of key `index` (valid until the next insertion) and their length. */
const void *htab_key(const htab *t, uint32_t index, size_t *ret_len);

/* The bytes the table holds (slots, entries and key bytes, by capacity): what a caller with a
 * memory budget charges for it. */
size_t htab_bytes(const htab *t);

/* Forgets every key from index n on (keys 0..n-1 keep their indexes); no-op when the table
 * holds n keys or fewer. For a caller that interned keys it then had to take back. */
void htab_truncate(htab *t, size_t n);

/* Releases everything; accepts a zeroed table. */
void htab_free(htab *t);

/* The hash used by the table, exposed for callers that hash their own keys. */
uint64_t htab_hash(const void *key, size_t len);

#endif
