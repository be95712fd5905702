/* buf: the project's one growable byte buffer, with a hard cap. Everything that builds bytes
 * of unknown length (HTTP answers, /metrics text, fetched bodies, manifests, keys) uses it, so
 * a limit and an out-of-memory are handled in one place and the same way.
 *
 * Contract:
 * - Cap: `max` bytes of content (the NUL below not counted); 0 = no cap. An append that would
 *   take len past max is refused whole (nothing of it is written), so len == max is accepted
 *   and max + 1 is not.
 * - Sticky failure: a refused append (past max, or malloc failing) sets `failed` (and `over`
 *   when the cap was the reason); every later append is ignored, so a writer appends freely
 *   and checks once at the end. The bytes written before the failure stay readable in p/len.
 * - The content is always NUL-terminated (one byte past len, not counted) once anything was
 *   written; p is NULL before that.
 * - Ownership: the buffer owns p. pp_buf_take hands the bytes to the caller (malloc'd, free())
 *   and leaves the buffer empty with the same cap; after a failure it frees them and returns
 *   NULL. pp_buf_free releases them and keeps the cap.
 * - Not thread-safe: one owner at a time.
 */
#ifndef PP_BUF_H
#define PP_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct pp_buf {
  char *p;     /* the bytes (NULL until the first append) */
  size_t len;  /* bytes written */
  size_t cap;  /* bytes allocated */
  size_t max;  /* cap on len; 0 = none */
  bool failed; /* an append went past max or out of memory: the contents are incomplete */
  bool over;   /* failed because of max (not malloc) */
} pp_buf;

void pp_buf_init(pp_buf *b, size_t max);
/* Appends n bytes (all or, on failure, none). Returns false once the buffer has failed. */
bool pp_buf_put(pp_buf *b, const void *data, size_t n);
bool pp_buf_puts(pp_buf *b, const char *s);
bool pp_buf_printf(pp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The bytes, malloc'd and NUL-terminated (NULL if nothing was written or it failed); *ret_len
 * their length. The buffer is empty afterwards. */
char *pp_buf_take(pp_buf *b, size_t *ret_len);
/* Empties the buffer for reuse: len 0, the failure cleared, the memory (and the cap) kept. */
void pp_buf_clear(pp_buf *b);
void pp_buf_free(pp_buf *b);

#endif
