/* web_json: the one way the web server writes text it did not make itself (JSON answers and the
 * HTML of /raw) from strings that may be any bytes.
 *
 * Profiles are untrusted: function, file and mapping names, sample types and label values
 * may hold invalid UTF-8. jansson refuses such a string (json_string returns NULL), which
 * used to drop it silently and shift every later index of a render's `names` array. Here every
 * string is written, always: pp_utf8_sanitize (base/utf8.h) replaces each maximal invalid
 * subpart with one U+FFFD, the rule browsers (and Python's "replace") apply, so the UI shows
 * what a browser would show for the same bytes and one string in is one string out.
 *
 * JSON strings are written as UTF-8 with RFC 8259's escapes (quote, backslash, control
 * characters). Writers append to a pp_buf and never fail by themselves; the buffer's cap and
 * allocation failures show in its `failed` flag.
 */
#ifndef COLLECTOR_WEB_JSON_H
#define COLLECTOR_WEB_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "../base/buf.h"

/* A JSON string literal with quotes: s[0..n), or a NUL-terminated s (NULL writes ""). */
void web_json_strn(pp_buf *b, const char *s, size_t n);
void web_json_str(pp_buf *b, const char *s);

/* "key": -- a member name and its colon. */
void web_json_key(pp_buf *b, const char *key);

/* Valid UTF-8 text (invalid sequences as U+FFFD, bytes EF BF BD); html also escapes < > & " '. */
void web_json_text(pp_buf *b, const char *s, size_t n, int html);

/* The store's labels (a JSON object of strings, labels_json of store.h) as a JSON object,
 * re-written through the rules above; "{}" when the text is not such an object. */
void web_json_labels(pp_buf *b, const char *labels_json);

/* The same labels read into a jansson object (invalid UTF-8 made valid first), or NULL. */
struct json_t *web_json_load_labels(const char *labels_json);

#endif
