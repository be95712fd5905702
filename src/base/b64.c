/* base64; see b64.h. */
#include "b64.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int pp_b64_encode(const void *data, size_t len, char **ret, size_t *ret_len, pp_err *err) {
  const uint8_t *in = data;
  if (len > ((size_t)-1 - 4) / 4 * 3) return pp_err_set(err, PP_ELIMIT, "base64: input too large");
  size_t n = (len + 2) / 3 * 4;
  char *out = malloc(n + 1);
  if (!out) return pp_err_set(err, PP_ENOMEM, "out of memory");
  size_t o = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
    out[o++] = alphabet[v >> 18 & 63];
    out[o++] = alphabet[v >> 12 & 63];
    out[o++] = i + 1 < len ? alphabet[v >> 6 & 63] : '=';
    out[o++] = i + 2 < len ? alphabet[v & 63] : '=';
  }
  out[o] = '\0';
  *ret = out;
  *ret_len = o;
  return 0;
}

static int b64val(int c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

int pp_b64_decode(const char *in, const char *what, char **ret, size_t *ret_len, pp_err *err) {
  size_t n = strlen(in);
  char *out = malloc(n / 4 * 3 + 4);
  if (!out) return pp_err_set(err, PP_ENOMEM, "out of memory");
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)in[i];
    if (c == '=' || c == '\n' || c == '\r' || c == ' ') continue;
    int v = b64val(c);
    if (v < 0) {
      free(out);
      return pp_err_set(err, PP_EINVAL, "%s: not base64", what);
    }
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (char)(acc >> bits & 0xff);
    }
  }
  out[o] = '\0';
  *ret = out;
  *ret_len = o;
  return 0;
}
