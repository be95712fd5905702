/* Text that may be any bytes, written as valid JSON and HTML. See web_json.h. */
#include "web_json.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The WHATWG UTF-8 decoder, one character at a time: the lead byte fixes how many bytes follow
 * and the range the first of them must be in (which excludes overlong forms, surrogates and
 * code points past U+10FFFF); a byte outside the range ends the sequence without being taken. */
size_t web_json_utf8_next(const unsigned char *s, size_t n, uint32_t *ret_cp) {
  unsigned c = s[0];
  if (c < 0x80) {
    *ret_cp = c;
    return 1;
  }
  size_t need;
  unsigned lo = 0x80, hi = 0xBF;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) need = 1, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF) {
    need = 2, cp = c & 0x0F;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3, cp = c & 0x07;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    *ret_cp = 0xFFFD;
    return 1;
  }
  size_t i = 1;
  for (; i <= need; i++) {
    if (i >= n || s[i] < lo || s[i] > hi) {
      *ret_cp = 0xFFFD;
      return i;
    }
    cp = (cp << 6) | (s[i] & 0x3F);
    lo = 0x80, hi = 0xBF;
  }
  *ret_cp = cp;
  return i;
}

static void put_u(web_buf *b, unsigned v) {
  static const char hex[] = "0123456789abcdef";
  char e[6] = {'\\', 'u', hex[(v >> 12) & 15], hex[(v >> 8) & 15], hex[(v >> 4) & 15], hex[v & 15]};
  web_buf_put(b, e, 6);
}

void web_json_strn(web_buf *b, const char *s, size_t n) {
  web_buf_put(b, "\"", 1);
  const unsigned char *u = (const unsigned char *)s;
  size_t run = 0; /* plain ASCII bytes waiting to be copied in one go */
  for (size_t i = 0; i < n;) {
    unsigned c = u[i];
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
      run++, i++;
      continue;
    }
    web_buf_put(b, u + i - run, run);
    run = 0;
    if (c < 0x80) {
      switch (c) {
      case '"': web_buf_put(b, "\\\"", 2); break;
      case '\\': web_buf_put(b, "\\\\", 2); break;
      case '\n': web_buf_put(b, "\\n", 2); break;
      case '\r': web_buf_put(b, "\\r", 2); break;
      case '\t': web_buf_put(b, "\\t", 2); break;
      default: put_u(b, c);
      }
      i++;
      continue;
    }
    uint32_t cp;
    i += web_json_utf8_next(u + i, n - i, &cp);
    if (cp >= 0x10000) {
      cp -= 0x10000;
      put_u(b, 0xD800 + (cp >> 10));
      put_u(b, 0xDC00 + (cp & 0x3FF));
    } else {
      put_u(b, cp);
    }
  }
  web_buf_put(b, u + n - run, run);
  web_buf_put(b, "\"", 1);
}

void web_json_str(web_buf *b, const char *s) { web_json_strn(b, s ? s : "", s ? strlen(s) : 0); }

void web_json_key(web_buf *b, const char *key) {
  web_json_str(b, key);
  web_buf_put(b, ":", 1);
}

void web_json_text(web_buf *b, const char *s, size_t n, int html) {
  const unsigned char *u = (const unsigned char *)s;
  size_t run = 0;
  for (size_t i = 0; i < n;) {
    unsigned c = u[i];
    bool special = html && (c == '<' || c == '>' || c == '&' || c == '"' || c == '\'');
    if (c < 0x80 && !special) {
      run++, i++;
      continue;
    }
    web_buf_put(b, u + i - run, run);
    run = 0;
    if (special) {
      const char *e = c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : c == '"' ? "&quot;" : "&#39;";
      web_buf_puts(b, e);
      i++;
      continue;
    }
    uint32_t cp;
    size_t k = web_json_utf8_next(u + i, n - i, &cp);
    /* (a valid U+FFFD in the input is these same three bytes) */
    if (cp == 0xFFFD) web_buf_put(b, "\xEF\xBF\xBD", 3);
    else web_buf_put(b, u + i, k);
    i += k;
  }
  web_buf_put(b, u + n - run, run);
}

json_t *web_json_load_labels(const char *labels_json) {
  json_t *o = labels_json ? json_loads(labels_json, 0, NULL) : NULL;
  if (!o && labels_json) {
    /* jansson refuses invalid UTF-8: make the text valid (the JSON syntax is ASCII, so the
     * structure survives) and read it again */
    web_buf fixed;
    web_buf_init(&fixed, 0);
    web_json_text(&fixed, labels_json, strlen(labels_json), 0);
    if (!fixed.failed && fixed.p) o = json_loads(fixed.p, 0, NULL);
    web_buf_free(&fixed);
  }
  if (o && !json_is_object(o)) {
    json_decref(o);
    o = NULL;
  }
  return o;
}

void web_json_labels(web_buf *b, const char *labels_json) {
  json_t *o = web_json_load_labels(labels_json);
  web_buf_put(b, "{", 1);
  if (json_is_object(o)) {
    const char *k;
    json_t *v;
    bool first = true;
    json_object_foreach(o, k, v) {
      if (!first) web_buf_put(b, ",", 1);
      first = false;
      web_json_key(b, k);
      if (json_is_string(v)) {
        web_json_strn(b, json_string_value(v), json_string_length(v));
      } else {
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
        web_buf_puts(b, t ? t : "null");
        free(t);
      }
    }
  }
  web_buf_put(b, "}", 1);
  json_decref(o);
}
