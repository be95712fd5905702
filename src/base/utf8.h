/* utf8: text from untrusted bytes. Profiles and label values may hold any bytes, while JSON,
 * the SQLite index and the UI want UTF-8; this module makes the two meet the way browsers do.
 *
 * pp_utf8_sanitize replaces every maximal invalid subpart (the Unicode standard's rule, which
 * the WHATWG decoder and so every browser follows: a lead byte plus the continuation bytes that
 * can still complete it, or one byte that cannot start a sequence) with U+FFFD (EF BF BD), and
 * keeps valid text byte for byte. Overlong forms, surrogates (ED A0..BF) and code points past
 * U+10FFFF are invalid. The replacement is a function of the bytes: the same input always gives
 * the same text, so values replaced on the way in can be matched by replacing the query too. */
#ifndef PP_UTF8_H
#define PP_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..len) is valid UTF-8 (NUL bytes are valid UTF-8). */
bool pp_utf8_valid(const char *s, size_t len);

/* s[0..len) with invalid subparts replaced, malloc'd and NUL-terminated (at most 3 * len bytes
 * plus the NUL); *ret_len (may be NULL) gets its length. NULL when out of memory. */
char *pp_utf8_sanitize(const char *s, size_t len, size_t *ret_len);

#endif
