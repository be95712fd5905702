/* UTF-8 validation and replacement; see utf8.h. */
#include "utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid sequence at s[0..n), or 0 with *ret_bad = the length of the maximal
 * invalid subpart there (at least 1). Table 3-7 of the Unicode standard: the second byte's range
 * depends on the lead byte, later ones are always 80..BF. */
static size_t seq_len(const uint8_t *s, size_t n, size_t *ret_bad) {
  uint8_t b = s[0];
  if (b < 0x80) return 1;
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) need = 2;
  else if (b >= 0xE0 && b <= 0xEF) {
    need = 3;
    if (b == 0xE0) lo = 0xA0;      /* overlong */
    else if (b == 0xED) hi = 0x9F; /* surrogates */
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 4;
    if (b == 0xF0) lo = 0x90;      /* overlong */
    else if (b == 0xF4) hi = 0x8F; /* past U+10FFFF */
  } else {
    *ret_bad = 1; /* 80..C1, F5..FF never start a sequence */
    return 0;
  }
  for (size_t i = 1; i < need; i++) {
    if (i >= n || s[i] < lo || s[i] > hi) {
      *ret_bad = i;
      return 0;
    }
    lo = 0x80, hi = 0xBF;
  }
  return need;
}

bool pp_utf8_valid(const char *s, size_t len) {
  const uint8_t *p = (const uint8_t *)s;
  size_t i = 0, bad;
  while (i < len) {
    size_t k = seq_len(p + i, len - i, &bad);
    if (!k) return false;
    i += k;
  }
  return true;
}

char *pp_utf8_sanitize(const char *s, size_t len, size_t *ret_len) {
  const uint8_t *p = (const uint8_t *)s;
  /* each invalid byte becomes at most 3 bytes */
  if (len > (SIZE_MAX - 1) / 3) return NULL;
  char *out = malloc(3 * len + 1);
  if (!out) return NULL;
  size_t i = 0, o = 0, bad;
  while (i < len) {
    size_t k = seq_len(p + i, len - i, &bad);
    if (k) {
      memcpy(out + o, p + i, k);
      o += k;
      i += k;
    } else {
      memcpy(out + o, "\xEF\xBF\xBD", 3);
      o += 3;
      i += bad;
    }
  }
  out[o] = '\0';
  if (ret_len) *ret_len = o;
  return out;
}
