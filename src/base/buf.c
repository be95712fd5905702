/* A capped growable buffer. See buf.h. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pp_buf_init(pp_buf *b, size_t max) {
  memset(b, 0, sizeof *b);
  b->max = max;
}

static bool grow(pp_buf *b, size_t n) {
  if (b->failed) return false;
  if (b->max && (n > b->max || b->len > b->max - n)) {
    b->failed = b->over = true;
    return false;
  }
  if (b->len + n + 1 <= b->cap) return true;
  size_t nc = b->cap ? b->cap : 256;
  while (nc < b->len + n + 1) nc *= 2;
  if (b->max && nc > b->max + 1) nc = b->max + 1;
  char *np = realloc(b->p, nc);
  if (!np) {
    b->failed = true;
    return false;
  }
  b->p = np;
  b->cap = nc;
  return true;
}

bool pp_buf_put(pp_buf *b, const void *data, size_t n) {
  if (!grow(b, n)) return false;
  if (n) memcpy(b->p + b->len, data, n);
  b->len += n;
  b->p[b->len] = '\0';
  return true;
}

bool pp_buf_puts(pp_buf *b, const char *s) { return pp_buf_put(b, s, strlen(s)); }

bool pp_buf_printf(pp_buf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->failed = true;
    return false;
  }
  if ((size_t)n < sizeof tmp) return pp_buf_put(b, tmp, (size_t)n);
  if (!grow(b, (size_t)n)) return false;
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return true;
}

char *pp_buf_take(pp_buf *b, size_t *ret_len) {
  char *p = b->failed ? NULL : b->p;
  if (b->failed) free(b->p);
  if (ret_len) *ret_len = p ? b->len : 0;
  size_t max = b->max;
  pp_buf_init(b, max);
  return p;
}

void pp_buf_clear(pp_buf *b) {
  b->len = 0;
  b->failed = b->over = false;
  if (b->p) b->p[0] = '\0';
}

void pp_buf_free(pp_buf *b) {
  free(b->p);
  pp_buf_init(b, b->max);
}
