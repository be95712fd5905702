/* Fuzz target for the query API's parsers (web_querier.h, web_connect.h). The first byte picks:
 *   's'       the rest is a label selector (web_querier_sel_parse), matched against fixed
 *             label sets; a refusal says why (non-empty, NUL-terminated within its buffer).
 *             The rest is also taken as a label value, quoted Go's way (and with backquotes,
 *             and as a regular expression when it is plain enough), in {k="..."} selectors
 *             that must parse and match exactly that value.
 *   'p'       a peer's answer to a call this collector forwards (web_querier_peer_check): the
 *             second byte its kind, the rest the protobuf body.
 *   otherwise a querier.v1 request, the type byte % 8 (the table below), the rest its body:
 *             as protojson (web_connect_json_read) and, when that reads, written back
 *             (web_connect_json_write): that must be JSON whose members are protoc's JSON
 *             names of the fields, read again, and the second write give the same bytes; the
 *             message packed as protobuf must unpack to the same packed bytes. The same body
 *             as protobuf, unpacked from a budgeted arena as web_connect_read does, and when
 *             that decodes, written as JSON and checked the same way. The selectors a read
 *             message holds (label_selector, matchers) go through the selector checks too.
 * Everything is released (arena_free), so LeakSanitizer sees any leak. */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/collector/web_connect.h"
#include "../src/collector/web_querier.h"
#include "querier.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define QFUZZ_MAX_INPUT ((size_t)64 << 10)
#define QFUZZ_BUDGET ((size_t)1 << 20)

static const ProtobufCMessageDescriptor *const requests[8] = {
    &qv1__profile_types_request__descriptor,
    &qv1__label_names_request__descriptor,
    &qv1__label_values_request__descriptor,
    &qv1__series_request__descriptor,
    &qv1__select_merge_stacktraces_request__descriptor,
    &qv1__select_merge_profile_request__descriptor,
    &qv1__select_series_request__descriptor,
    &qv1__diff_request__descriptor,
};

/* ---- selectors --------------------------------------------------------------------------- */

static const char *const set_k[] = {"service_name", "pod", "__name__"};
static const char *const set_v[] = {"a/b", "p-0", "process_cpu"};

/* parses text: 0 with *ret, or -1 after checking the reason is there */
static int sel_parse(const char *text, web_querier_sel **ret) {
  char why[256];
  memset(why, 'x', sizeof why);
  if (web_querier_sel_parse(text, ret, why, sizeof why) == 0) {
    if (!*ret) abort();
    return 0;
  }
  if (*ret || !memchr(why, '\0', sizeof why) || !why[0]) abort(); /* a refusal always says why */
  return -1;
}

/* any selector: whatever parses matches without crashing, the empty set too */
static void check_selector(const char *text) {
  web_querier_sel *s;
  if (sel_parse(text, &s) < 0) return;
  bool all = web_querier_sel_match(s, set_k, set_v, 3);
  bool one = web_querier_sel_match(s, set_k, set_v, 1);
  bool none = web_querier_sel_match(s, NULL, NULL, 0);
  (void)all, (void)one, (void)none;
  web_querier_sel_free(s);
}

/* {k<op>QUOTED}, which must parse; 1 when it matches k=v, 0 when not */
static int must_match(const char *op, const char *quoted, const char *v) {
  size_t n = strlen(quoted) + 16;
  char *text = malloc(n);
  if (!text) abort();
  snprintf(text, n, "{ k %s %s }", op, quoted);
  web_querier_sel *s;
  if (sel_parse(text, &s) < 0) abort(); /* a well-formed selector is refused */
  const char *k = "k";
  int r = web_querier_sel_match(s, &k, &v, 1);
  web_querier_sel_free(s);
  free(text);
  return r;
}

/* v quoted: Go's escapes in "..", or raw in `..`; the regex form escapes the specials of a
 * regular expression (PCRE2's, as RE2's) (then NULL when v has bytes that would need more) */
static char *quote(const char *v, char q, bool regex) {
  size_t n = strlen(v), o = 0;
  char *out = malloc(4 * n + 3);
  if (!out) abort();
  out[o++] = q;
  for (const char *p = v; *p; p++) {
    if (q == '`') {
      if (*p == '`') return free(out), NULL;
      out[o++] = *p;
      continue;
    }
    if (regex) {
      if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr(" _-/:,=.*+?()|", *p)))
        return free(out), NULL;
      if (strchr(".*+?()|", *p)) out[o++] = '\\', out[o++] = '\\'; /* \\ in the quotes: \ in the pattern */
      out[o++] = *p;
      continue;
    }
    switch (*p) {
    case '\n': out[o++] = '\\', out[o++] = 'n'; break;
    case '\t': out[o++] = '\\', out[o++] = 't'; break;
    case '\r': out[o++] = '\\', out[o++] = 'r'; break;
    case '\\': case '"': case '\'': out[o++] = '\\', out[o++] = *p; break;
    default: out[o++] = *p;
    }
  }
  out[o++] = q;
  out[o] = '\0';
  return out;
}

/* v as a label value in selectors that say "exactly v" and "anything but v" */
static void check_value(const char *v) {
  if (strlen(v) > WEB_QUERIER_MAX_REGEX) return;
  size_t n = strlen(v);
  char *other = malloc(n + 2);
  if (!other) abort();
  memcpy(other, v, n);
  memcpy(other + n, "x", 2);
  static const char quotes[] = {'"', '\'', '`'};
  for (size_t i = 0; i < 3; i++) {
    char *q = quote(v, quotes[i], false);
    if (!q) continue;
    if (must_match("=", q, v) != 1 || must_match("=", q, other) != 0 || must_match("!=", q, v) != 0 ||
        must_match("!=", q, other) != 1)
      abort();
    free(q);
  }
  char *re = 2 * n <= WEB_QUERIER_MAX_REGEX ? quote(v, '"', true) : NULL; /* escaped, within the limit */
  if (re) {
    if (must_match("=~", re, v) != 1 || must_match("=~", re, other) != 0 || must_match("!~", re, v) != 0 ||
        must_match("!~", re, other) != 1)
      abort();
    free(re);
  }
  free(other);
}

/* the selectors a request holds, through the same checks */
static void check_message_selectors(const ProtobufCMessage *m) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  const char *base = (const char *)m;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED) {
      const ProtobufCMessage *sub = *(ProtobufCMessage *const *)(base + f->offset);
      if (sub) check_message_selectors(sub);
    } else if (f->type == PROTOBUF_C_TYPE_STRING && !strcmp(f->name, "label_selector")) {
      check_selector(*(char *const *)(base + f->offset));
    } else if (f->type == PROTOBUF_C_TYPE_STRING && !strcmp(f->name, "matchers")) {
      size_t n = *(const size_t *)(base + f->quantifier_offset);
      char *const *arr = *(char *const *const *)(base + f->offset);
      for (size_t k = 0; k < n; k++) check_selector(arr[k]);
    }
  }
}

/* ---- requests ------------------------------------------------------------------------------ */

/* m as JSON into b (which must not fail: no cap) */
static void write_json(pp_buf *b, const ProtobufCMessage *m) {
  pp_buf_init(b, 0);
  web_connect_json_write(b, m);
  if (b->failed || !b->p) abort();
}

/* protoc's JSON name of a field, written here again so the writer's names are checked against
 * something other than the reader that shares its code: after '_' a letter is upper-cased */
static void protoc_json_name(const char *proto, char *out, size_t n) {
  size_t o = 0;
  for (bool up = false; *proto && o + 1 < n; proto++) {
    if (*proto == '_') {
      up = true;
    } else {
      out[o++] = up ? (char)toupper((unsigned char)*proto) : *proto;
      up = false;
    }
  }
  out[o] = '\0';
}

/* every member of the written object v is the JSON name of a field of d, at every level */
static void check_names(const ProtobufCMessageDescriptor *d, json_t *v) {
  if (!json_is_object(v)) abort();
  const char *key;
  json_t *val;
  json_object_foreach(v, key, val) {
    const ProtobufCFieldDescriptor *f = NULL;
    for (unsigned i = 0; !f && i < d->n_fields; i++) {
      char jn[128];
      protoc_json_name(d->fields[i].name, jn, sizeof jn);
      if (!strcmp(key, jn)) f = &d->fields[i];
    }
    if (!f) abort(); /* a member that is no field's JSON name */
    if (f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
    if (f->label != PROTOBUF_C_LABEL_REPEATED) check_names(f->descriptor, val);
    else for (size_t k = 0; k < json_array_size(val); k++) check_names(f->descriptor, json_array_get(val, k));
  }
}

/* what web_connect_json_write makes of m is JSON with protoc's names, reads back, and writing
 * that gives the same bytes */
static void check_json_round_trip(const ProtobufCMessageDescriptor *d, const ProtobufCMessage *m) {
  pp_buf b1, b2;
  write_json(&b1, m);
  json_t *root = json_loadb(b1.p, b1.len, JSON_REJECT_DUPLICATES, NULL);
  if (!root) abort(); /* not JSON */
  check_names(d, root);
  json_decref(root);
  /* a larger budget than the first read's: the output reads with no more allocations than the
   * input did, but in another order, so the arena's chunks may fill differently */
  arena a;
  arena_init(&a, 4 * QFUZZ_BUDGET);
  ProtobufCMessage *m2 = NULL;
  pp_err err = {0};
  if (web_connect_json_read(d, b1.p, b1.len, &a, &m2, &err) < 0) abort(); /* its own output refused */
  write_json(&b2, m2);
  if (b1.len != b2.len || memcmp(b1.p, b2.p, b1.len)) abort(); /* not idempotent */
  pp_buf_free(&b1);
  pp_buf_free(&b2);
  arena_free(&a);
}

/* packed as protobuf, m unpacks (with malloc) to a message that packs to the same bytes */
static void check_pack(const ProtobufCMessageDescriptor *d, const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *p1 = malloc(n ? n : 1);
  if (!p1 || protobuf_c_message_pack(m, p1) != n) abort();
  ProtobufCMessage *u = protobuf_c_message_unpack(d, NULL, n, p1);
  if (!u) abort(); /* what we hold does not go over the wire */
  size_t n2 = protobuf_c_message_get_packed_size(u);
  uint8_t *p2 = malloc(n2 ? n2 : 1);
  if (!p2 || protobuf_c_message_pack(u, p2) != n2 || n2 != n || memcmp(p1, p2, n)) abort();
  protobuf_c_message_free_unpacked(u, NULL);
  free(p1);
  free(p2);
}

static void check_request(const ProtobufCMessageDescriptor *d, const uint8_t *body, size_t len) {
  arena a;
  arena_init(&a, QFUZZ_BUDGET);
  ProtobufCMessage *m = NULL;
  pp_err err = {0};
  if (web_connect_json_read(d, (const char *)body, len, &a, &m, &err) == 0) {
    if (!m || m->descriptor != d) abort();
    check_json_round_trip(d, m);
    check_pack(d, m);
    check_message_selectors(m);
  } else if (!err.msg[0] || (err.code != PP_EINVAL && err.code != PP_ELIMIT)) {
    abort(); /* a refusal always says why */
  }
  arena_free(&a);

  /* the body as protobuf, as web_connect_read unpacks it */
  arena_budget ab = {0};
  arena_init(&ab.mem, QFUZZ_BUDGET);
  ProtobufCAllocator alloc = {.alloc = arena_budget_alloc, .free = arena_budget_free, .allocator_data = &ab};
  ProtobufCMessage *pm = protobuf_c_message_unpack(d, &alloc, len, body);
  if (pm) {
    check_json_round_trip(d, pm);
    check_message_selectors(pm);
  }
  arena_free(&ab.mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > QFUZZ_MAX_INPUT) return 0;
  if (data[0] == 'p' && size >= 2) { /* a peer's answer (web_querier_peer_check aborts on a broken invariant) */
    char why[256];
    memset(why, 'x', sizeof why);
    if (web_querier_peer_check(data[1], data + 2, size - 2, why, sizeof why) < 0 && (!memchr(why, '\0', sizeof why) || !why[0]))
      abort(); /* a refusal says why */
    return 0;
  }
  if (data[0] != 's') {
    check_request(requests[data[0] % 8], data + 1, size - 1);
    return 0;
  }
  char *s = malloc(size);
  if (!s) return 0;
  memcpy(s, data + 1, size - 1);
  s[size - 1] = '\0';
  check_selector(s);
  check_value(s);
  free(s);
  return 0;
}
