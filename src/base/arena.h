/* arena: bump allocation for things that die together (one decoded profile, one request).
 *
 * Memory comes from a list of chunks and is released all at once by arena_free(). Each arena
 * has a byte budget fixed at init: an allocation that would take the total past it fails
 * (returns NULL) instead of growing without bound, which is how untrusted input that asks for
 * huge structures gets a clean PP_ENOMEM/PP_ELIMIT instead of taking the process down.
 * Not thread-safe; an arena belongs to one owner.
 */
#ifndef PP_ARENA_H
#define PP_ARENA_H

#include <stddef.h>

typedef struct arena_chunk arena_chunk;

typedef struct arena {
  arena_chunk *head; /* newest chunk; allocation happens at its end */
  size_t used;       /* bytes handed out, for reporting */
  size_t reserved;   /* bytes obtained from malloc, counted against budget */
  size_t budget;     /* maximum for reserved; 0 means unlimited */
} arena;

/* Initialises an empty arena; allocates nothing yet. budget 0 = no limit. */
void arena_init(arena *a, size_t budget);

/* Returns size bytes aligned to 16, or NULL when malloc fails or the budget would be exceeded.
 * size 0 returns a valid unique pointer. Contents are uninitialised. */
void *arena_alloc(arena *a, size_t size);

/* As arena_alloc, zero-filled; n*size overflow returns NULL. */
void *arena_calloc(arena *a, size_t n, size_t size);

/* Copies len bytes and appends a NUL. */
char *arena_strndup(arena *a, const char *s, size_t len);

/* Releases every chunk; the arena may be reused after arena_init. Accepts a zeroed arena. */
void arena_free(arena *a);

/* An arena as a decoder's allocator (protobuf-c's ProtobufCAllocator: .alloc = arena_budget_alloc,
 * .free = arena_budget_free, .allocator_data = the arena_budget): everything a decoding makes is
 * released with the arena, and `exhausted` tells "over the budget" from "malformed" when the
 * decoder fails. */
typedef struct arena_budget {
  arena mem;
  int exhausted; /* an allocation was refused */
} arena_budget;
void *arena_budget_alloc(void *arena_budget_ptr, size_t size);
void arena_budget_free(void *arena_budget_ptr, void *ptr); /* nothing: the arena releases it */

#endif
