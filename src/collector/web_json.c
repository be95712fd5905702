/* Text that may be any bytes, written as valid JSON and HTML. See web_json.h. */
#include "web_json.h"

#include "../base/utf8.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Runs fn over s[0..n) made valid UTF-8: the bytes themselves when they are (the common case,
 * no copy), else pp_utf8_sanitize's copy; a copy that cannot be made marks the buffer failed. */
static void with_valid(pp_buf *b, const char *s, size_t n, void (*fn)(pp_buf *, const unsigned char *, size_t, int),
                       int arg) {
  if (pp_utf8_valid(s, n)) {
    fn(b, (const unsigned char *)s, n, arg);
    return;
  }
  size_t m;
  char *fixed = pp_utf8_sanitize(s, n, &m);
  if (!fixed) {
    b->failed = true;
    return;
  }
  fn(b, (const unsigned char *)fixed, m, arg);
  free(fixed);
}

static void put_u(pp_buf *b, unsigned v) {
  static const char hex[] = "0123456789abcdef";
  char e[6] = {'\\', 'u', '0', '0', hex[(v >> 4) & 15], hex[v & 15]};
  pp_buf_put(b, e, 6);
}

/* u[0..n) is valid UTF-8: copied, with RFC 8259's escapes for the quote, the backslash and
 * control characters */
static void json_body(pp_buf *b, const unsigned char *u, size_t n, int unused) {
  (void)unused;
  size_t run = 0; /* bytes waiting to be copied in one go */
  for (size_t i = 0; i < n; i++) {
    unsigned c = u[i];
    if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7F) {
      run++;
      continue;
    }
    pp_buf_put(b, u + i - run, run);
    run = 0;
    switch (c) {
    case '"': pp_buf_put(b, "\\\"", 2); break;
    case '\\': pp_buf_put(b, "\\\\", 2); break;
    case '\n': pp_buf_put(b, "\\n", 2); break;
    case '\r': pp_buf_put(b, "\\r", 2); break;
    case '\t': pp_buf_put(b, "\\t", 2); break;
    default: put_u(b, c);
    }
  }
  pp_buf_put(b, u + n - run, run);
}

void web_json_strn(pp_buf *b, const char *s, size_t n) {
  pp_buf_put(b, "\"", 1);
  with_valid(b, s, n, json_body, 0);
  pp_buf_put(b, "\"", 1);
}

void web_json_str(pp_buf *b, const char *s) { web_json_strn(b, s ? s : "", s ? strlen(s) : 0); }

void web_json_key(pp_buf *b, const char *key) {
  web_json_str(b, key);
  pp_buf_put(b, ":", 1);
}

/* u[0..n) is valid UTF-8: copied, html escaping < > & " ' */
static void text_body(pp_buf *b, const unsigned char *u, size_t n, int html) {
  if (!html) {
    pp_buf_put(b, u, n);
    return;
  }
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned c = u[i];
    if (c != '<' && c != '>' && c != '&' && c != '"' && c != '\'') {
      run++;
      continue;
    }
    pp_buf_put(b, u + i - run, run);
    run = 0;
    pp_buf_puts(b, c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : c == '"' ? "&quot;" : "&#39;");
  }
  pp_buf_put(b, u + n - run, run);
}

void web_json_text(pp_buf *b, const char *s, size_t n, int html) { with_valid(b, s, n, text_body, html); }

json_t *web_json_load_labels(const char *labels_json) {
  json_t *o = labels_json ? json_loads(labels_json, 0, NULL) : NULL;
  if (!o && labels_json) {
    /* jansson refuses invalid UTF-8: make the text valid (the JSON syntax is ASCII, so the
     * structure survives) and read it again */
    char *fixed = pp_utf8_sanitize(labels_json, strlen(labels_json), NULL);
    if (fixed) o = json_loads(fixed, 0, NULL);
    free(fixed);
  }
  if (o && !json_is_object(o)) {
    json_decref(o);
    o = NULL;
  }
  return o;
}

void web_json_labels(pp_buf *b, const char *labels_json) {
  json_t *o = web_json_load_labels(labels_json);
  pp_buf_put(b, "{", 1);
  if (json_is_object(o)) {
    const char *k;
    json_t *v;
    bool first = true;
    json_object_foreach(o, k, v) {
      if (!first) pp_buf_put(b, ",", 1);
      first = false;
      web_json_key(b, k);
      if (json_is_string(v)) {
        web_json_strn(b, json_string_value(v), json_string_length(v));
      } else {
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
        pp_buf_puts(b, t ? t : "null");
        free(t);
      }
    }
  }
  pp_buf_put(b, "}", 1);
  json_decref(o);
}
