/* web_buf: a growable byte buffer with a hard cap, for the answers the web server builds.
 *
 * Stand-in: issue 12 asks for one capped buffer in src/base for the whole project (another
 * change makes it); until it lands, the web modules use this smallest one, and it goes when
 * that one exists.
 *
 * Contract: appends past `max` bytes (or a failed allocation) set `failed` and are dropped,
 * and every later append is ignored, so a writer checks once at the end. The bytes are always
 * NUL-terminated (one byte past len, not counted). web_buf_take hands the bytes to the caller
 * (malloc'd, free()) and leaves the buffer empty. Not thread-safe: one owner.
 */
#ifndef COLLECTOR_WEB_BUF_H
#define COLLECTOR_WEB_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct web_buf {
  char *p;     /* the bytes (NULL until the first append) */
  size_t len;  /* bytes written */
  size_t cap;  /* bytes allocated */
  size_t max;  /* cap on len; 0 = none */
  bool failed; /* an append went past max or out of memory: the contents are incomplete */
  bool over;   /* failed because of max (not malloc) */
} web_buf;

void web_buf_init(web_buf *b, size_t max);
void web_buf_put(web_buf *b, const void *data, size_t n);
void web_buf_puts(web_buf *b, const char *s);
void web_buf_printf(web_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The bytes, malloc'd and NUL-terminated (NULL if nothing was written or it failed); *ret_len
 * their length. The buffer is empty afterwards. */
char *web_buf_take(web_buf *b, size_t *ret_len);
void web_buf_free(web_buf *b);

#endif
