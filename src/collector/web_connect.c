/* Connect unary and protojson through protobuf-c's descriptors (see web_connect.h). */
#include "web_connect.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../base/b64.h"
#include "../base/gz.h"
#include "web_int.h"
#include "web_json.h"

/* protoc's JSON name of a field: underscores dropped, the letter after one upper-cased */
static void json_name(const char *proto, char *out, size_t n) {
  size_t o = 0;
  bool up = false;
  for (const char *p = proto; *p && o + 1 < n; p++) {
    if (*p == '_') {
      up = true;
      continue;
    }
    out[o++] = up && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
    up = false;
  }
  out[o] = '\0';
}

/* The int32 fields that stand for an enum of the API, and its value names. */
static const struct {
  const char *field, *name;
  int32_t value;
} enum_names[] = {
    {"format", "PROFILE_FORMAT_UNSPECIFIED", 0},
    {"format", "PROFILE_FORMAT_FLAMEGRAPH", 1},
    {"format", "PROFILE_FORMAT_TREE", 2},
    {"format", "PROFILE_FORMAT_DOT", 3},
    {"format", "PROFILE_FORMAT_PPROF", 4},
    {"aggregation", "TIME_SERIES_AGGREGATION_TYPE_SUM", 0},
    {"aggregation", "TIME_SERIES_AGGREGATION_TYPE_AVERAGE", 1},
    {"exemplar_type", "EXEMPLAR_TYPE_UNSPECIFIED", 0},
    {"exemplar_type", "EXEMPLAR_TYPE_NONE", 1},
    {"exemplar_type", "EXEMPLAR_TYPE_INDIVIDUAL", 2},
    {"exemplar_type", "EXEMPLAR_TYPE_SPAN", 3},
};

static size_t elem_size(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: return sizeof(int64_t);
  case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
  case PROTOBUF_C_TYPE_FLOAT: return sizeof(float);
  case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
  case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
  case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
  default: return sizeof(int32_t); /* int32, sint32, sfixed32, uint32, fixed32, enum */
  }
}

/* An integer member: a JSON integer, an integral real, or a string of digits. */
static bool int_of(json_t *v, long double lo, long double hi, long double *ret) {
  long double x;
  if (json_is_integer(v)) {
    x = (long double)json_integer_value(v);
  } else if (json_is_real(v)) {
    double d = json_real_value(v);
    if (d != floor(d)) return false;
    x = d;
  } else if (json_is_string(v)) {
    const char *s = json_string_value(v);
    char *end;
    errno = 0;
    if (*s == '-') {
      long long q = strtoll(s, &end, 10);
      if (errno || end == s || *end) return false;
      x = (long double)q;
    } else {
      unsigned long long q = strtoull(s, &end, 10);
      if (errno || end == s || *end || *s == '+' || *s == ' ') return false;
      x = (long double)q;
    }
  } else {
    return false;
  }
  if (x < lo || x > hi) return false;
  *ret = x;
  return true;
}

static int read_msg(const ProtobufCMessageDescriptor *d, json_t *obj, arena *a, int depth, ProtobufCMessage **ret,
                    pp_err *err);

static int bad(pp_err *err, const ProtobufCFieldDescriptor *f, const char *want) {
  char jn[128];
  json_name(f->name, jn, sizeof jn);
  return pp_err_set(err, PP_EINVAL, "%s: want %s", jn, want);
}

/* One value of field f from v into dst. */
static int read_value(const ProtobufCFieldDescriptor *f, json_t *v, void *dst, arena *a, int depth, pp_err *err) {
  long double x;
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    if (!int_of(v, (long double)INT64_MIN, (long double)INT64_MAX, &x)) return bad(err, f, "a 64-bit integer");
    *(int64_t *)dst = (int64_t)x;
    return 0;
  case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
    if (!int_of(v, 0, (long double)UINT64_MAX, &x)) return bad(err, f, "an unsigned 64-bit integer");
    *(uint64_t *)dst = (uint64_t)x;
    return 0;
  case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
    if (!int_of(v, 0, UINT32_MAX, &x)) return bad(err, f, "an unsigned 32-bit integer");
    *(uint32_t *)dst = (uint32_t)x;
    return 0;
  case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32: case PROTOBUF_C_TYPE_ENUM:
    if (json_is_string(v))
      for (size_t i = 0; i < sizeof enum_names / sizeof enum_names[0]; i++)
        if (!strcmp(enum_names[i].field, f->name) && !strcmp(enum_names[i].name, json_string_value(v))) {
          *(int32_t *)dst = enum_names[i].value;
          return 0;
        }
    if (!int_of(v, INT32_MIN, INT32_MAX, &x)) return bad(err, f, "a 32-bit integer");
    *(int32_t *)dst = (int32_t)x;
    return 0;
  case PROTOBUF_C_TYPE_BOOL:
    if (!json_is_boolean(v)) return bad(err, f, "true or false");
    *(protobuf_c_boolean *)dst = json_is_true(v);
    return 0;
  case PROTOBUF_C_TYPE_DOUBLE: case PROTOBUF_C_TYPE_FLOAT: {
    double d;
    if (json_is_number(v)) {
      d = json_number_value(v);
    } else if (json_is_string(v)) {
      const char *s = json_string_value(v);
      char *end;
      if (!strcmp(s, "NaN")) d = NAN;
      else if (!strcmp(s, "Infinity")) d = INFINITY;
      else if (!strcmp(s, "-Infinity")) d = -INFINITY;
      else if (d = strtod(s, &end), end == s || *end || isnan(d) || isinf(d)) return bad(err, f, "a number");
    } else {
      return bad(err, f, "a number");
    }
    if (f->type == PROTOBUF_C_TYPE_FLOAT) *(float *)dst = (float)d;
    else *(double *)dst = d;
    return 0;
  }
  case PROTOBUF_C_TYPE_STRING: {
    if (!json_is_string(v)) return bad(err, f, "a string");
    char *s = arena_strndup(a, json_string_value(v), json_string_length(v));
    if (!s) return pp_err_set(err, PP_ELIMIT, "the request is too large to read");
    *(char **)dst = s;
    return 0;
  }
  case PROTOBUF_C_TYPE_BYTES: {
    if (!json_is_string(v)) return bad(err, f, "base64 text");
    char *raw = NULL;
    size_t n = 0;
    if (pp_b64_decode(json_string_value(v), f->name, &raw, &n, err) < 0) return err->code;
    uint8_t *p = arena_alloc(a, n);
    if (p) memcpy(p, raw, n);
    free(raw);
    if (!p) return pp_err_set(err, PP_ELIMIT, "the request is too large to read");
    ((ProtobufCBinaryData *)dst)->data = p;
    ((ProtobufCBinaryData *)dst)->len = n;
    return 0;
  }
  case PROTOBUF_C_TYPE_MESSAGE:
    return read_msg(f->descriptor, v, a, depth + 1, (ProtobufCMessage **)dst, err);
  }
  return bad(err, f, "a value of a type this server does not read");
}

static int read_msg(const ProtobufCMessageDescriptor *d, json_t *obj, arena *a, int depth, ProtobufCMessage **ret,
                    pp_err *err) {
  if (depth > WEB_CONNECT_MAX_DEPTH) return pp_err_set(err, PP_ELIMIT, "nested more than %d deep", WEB_CONNECT_MAX_DEPTH);
  if (!json_is_object(obj)) return pp_err_set(err, PP_EINVAL, "%s: want an object", d->short_name);
  ProtobufCMessage *m = arena_calloc(a, 1, d->sizeof_message);
  if (!m) return pp_err_set(err, PP_ELIMIT, "the request is too large to read");
  d->message_init(m);
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    const ProtobufCFieldDescriptor *f = NULL;
    for (unsigned i = 0; !f && i < d->n_fields; i++) {
      char jn[128];
      json_name(d->fields[i].name, jn, sizeof jn);
      if (!strcmp(key, d->fields[i].name) || !strcmp(key, jn)) f = &d->fields[i];
    }
    if (!f || json_is_null(v)) continue; /* unknown (a newer client's), or the default */
    char *base = (char *)m;
    int r;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      if (!json_is_array(v)) return bad(err, f, "an array");
      size_t n = json_array_size(v), es = elem_size(f->type);
      char *arr = arena_calloc(a, n ? n : 1, es);
      if (!arr) return pp_err_set(err, PP_ELIMIT, "the request is too large to read");
      for (size_t i = 0; i < n; i++)
        if ((r = read_value(f, json_array_get(v, i), arr + i * es, a, depth, err)) < 0) return r;
      *(size_t *)(base + f->quantifier_offset) = n;
      *(void **)(base + f->offset) = arr;
    } else {
      if ((r = read_value(f, v, base + f->offset, a, depth, err)) < 0) return r;
      /* a oneof's member: the case says which one is set (the last one read wins, as in
       * protobuf's binary form) */
      if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) *(uint32_t *)(base + f->quantifier_offset) = f->id;
      else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset && f->type != PROTOBUF_C_TYPE_STRING &&
          f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_BYTES)
        *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
    }
  }
  *ret = m;
  return 0;
}

int web_connect_json_read(const ProtobufCMessageDescriptor *d, const char *json, size_t len, arena *a,
                    ProtobufCMessage **ret, pp_err *err) {
  json_error_t je;
  json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
  if (!root) return pp_err_set(err, PP_EINVAL, "not JSON: %s (line %d)", je.text, je.line);
  int r = read_msg(d, root, a, 0, ret, err);
  json_decref(root);
  return r;
}

/* ---- writing ---------------------------------------------------------------------------------- */

static void write_value(pp_buf *b, const ProtobufCFieldDescriptor *f, const void *p) {
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    pp_buf_printf(b, "\"%" PRId64 "\"", *(const int64_t *)p);
    break;
  case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
    pp_buf_printf(b, "\"%" PRIu64 "\"", *(const uint64_t *)p);
    break;
  case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
    pp_buf_printf(b, "%" PRIu32, *(const uint32_t *)p);
    break;
  case PROTOBUF_C_TYPE_BOOL:
    pp_buf_puts(b, *(const protobuf_c_boolean *)p ? "true" : "false");
    break;
  case PROTOBUF_C_TYPE_DOUBLE: case PROTOBUF_C_TYPE_FLOAT: {
    double d = f->type == PROTOBUF_C_TYPE_FLOAT ? *(const float *)p : *(const double *)p;
    if (isnan(d)) pp_buf_puts(b, "\"NaN\"");
    else if (isinf(d)) pp_buf_puts(b, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    else if (d == 0 && signbit(d)) pp_buf_puts(b, "-0.0"); /* ("-0" would read back as the integer 0) */
    else pp_buf_printf(b, "%.17g", d);
    break;
  }
  case PROTOBUF_C_TYPE_STRING:
    web_json_str(b, *(char *const *)p);
    break;
  case PROTOBUF_C_TYPE_BYTES: {
    const ProtobufCBinaryData *bd = p;
    char *s = NULL;
    size_t n = 0;
    pp_err err = {0};
    if (pp_b64_encode(bd->data, bd->len, &s, &n, &err) < 0) b->failed = true;
    else web_json_strn(b, s, n);
    free(s);
    break;
  }
  case PROTOBUF_C_TYPE_MESSAGE:
    web_connect_json_write(b, *(ProtobufCMessage *const *)p);
    break;
  default: /* int32, sint32, sfixed32, enum */
    pp_buf_printf(b, "%" PRId32, *(const int32_t *)p);
    break;
  }
}

/* whether a singular field holds its default, so proto3's JSON leaves it out */
static bool is_default(const ProtobufCFieldDescriptor *f, const char *base) {
  const void *p = base + f->offset;
  /* a oneof's member is written when it is the one set, whatever its value */
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) return *(const uint32_t *)(base + f->quantifier_offset) != f->id;
  if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset && f->type != PROTOBUF_C_TYPE_STRING &&
      f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_BYTES)
    return !*(const protobuf_c_boolean *)(base + f->quantifier_offset);
  switch (f->type) {
  case PROTOBUF_C_TYPE_STRING: return !*(char *const *)p || !**(char *const *)p;
  case PROTOBUF_C_TYPE_MESSAGE: return !*(void *const *)p;
  case PROTOBUF_C_TYPE_BYTES: return !((const ProtobufCBinaryData *)p)->len;
  case PROTOBUF_C_TYPE_DOUBLE: return *(const double *)p == 0 && !signbit(*(const double *)p);
  case PROTOBUF_C_TYPE_FLOAT: return *(const float *)p == 0 && !signbit(*(const float *)p);
  case PROTOBUF_C_TYPE_BOOL: return !*(const protobuf_c_boolean *)p;
  default: return elem_size(f->type) == 8 ? !*(const int64_t *)p : !*(const int32_t *)p;
  }
}

void web_connect_json_write(pp_buf *b, const ProtobufCMessage *m) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  const char *base = (const char *)m;
  bool first = true;
  pp_buf_put(b, "{", 1);
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    char jn[128];
    json_name(f->name, jn, sizeof jn);
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)(base + f->quantifier_offset), es = elem_size(f->type);
      if (!n) continue;
      const char *arr = *(char *const *)(base + f->offset);
      if (!first) pp_buf_put(b, ",", 1);
      first = false;
      web_json_key(b, jn);
      pp_buf_put(b, "[", 1);
      for (size_t k = 0; k < n && !b->failed; k++) {
        if (k) pp_buf_put(b, ",", 1);
        write_value(b, f, arr + k * es);
      }
      pp_buf_put(b, "]", 1);
    } else {
      if (is_default(f, base)) continue;
      if (!first) pp_buf_put(b, ",", 1);
      first = false;
      web_json_key(b, jn);
      write_value(b, f, base + f->offset);
    }
  }
  pp_buf_put(b, "}", 1);
}

/* ---- Connect's wire -------------------------------------------------------------------------- */

/* A JSON text's values, counted without parsing it (commas, and the opening of every object and
 * array, outside strings): jansson builds its whole tree, unbudgeted, before anything is read. */
static size_t json_values(const uint8_t *p, size_t n) {
  size_t v = 1;
  bool str = false;
  for (size_t i = 0; i < n; i++) {
    if (str) {
      if (p[i] == '\\') i++;
      else if (p[i] == '"') str = false;
    } else if (p[i] == '"') {
      str = true;
    } else if (p[i] == ',' || p[i] == '{' || p[i] == '[') {
      v++;
    }
  }
  return v;
}

/* The deepest nesting of messages in protobuf bytes of type d, up to limit (past it: limit + 1).
 * protobuf-c's unpack recurses once per level, and a message that may hold itself (OTLP's
 * AnyValue: arrays of arrays of ...) could nest a million levels in a few megabytes: the
 * stack would not hold them. Malformed bytes end the walk (unpack says what is wrong). */
static int pb_depth(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end, int limit) {
  if (limit < 0) return 1;
  int deepest = 0;
  while (p < end) {
    uint64_t tag = 0, n = 0;
    for (int sh = 0; p < end && sh < 64; sh += 7) {
      tag |= (uint64_t)(*p & 0x7f) << sh;
      if (!(*p++ & 0x80)) break;
    }
    switch (tag & 7) {
    case 0:
      while (p < end && (*p++ & 0x80)) {}
      break;
    case 1: p = (size_t)(end - p) < 8 ? end : p + 8; break;
    case 5: p = (size_t)(end - p) < 4 ? end : p + 4; break;
    case 2: {
      for (int sh = 0; p < end && sh < 64; sh += 7) {
        n |= (uint64_t)(*p & 0x7f) << sh;
        if (!(*p++ & 0x80)) break;
      }
      if (n > (uint64_t)(end - p)) return deepest;
      const ProtobufCFieldDescriptor *f = tag >> 3 <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3)) : NULL;
      if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
        int k = 1 + pb_depth(f->descriptor, p, p + n, limit - 1);
        if (k > deepest) deepest = k;
        if (deepest > limit) return deepest;
      }
      p += n;
      break;
    }
    default: return deepest; /* groups, or not a wire type */
    }
  }
  return deepest;
}

int web_connect_read(const char *ctype, const char *cenc, const uint8_t *body, size_t len, size_t max,
                     const ProtobufCMessageDescriptor *d, arena_budget *a, bool *json, ProtobufCMessage **ret,
                     pp_err *err) {
  *json = ctype && !strncasecmp(ctype, "application/json", 16);
  if (!*json && !(ctype && (!strncasecmp(ctype, "application/proto", 17) || !strncasecmp(ctype, "application/x-protobuf", 22))))
    return pp_err_set(err, PP_EINVAL, "Content-Type: want application/proto (or application/x-protobuf) or application/json");
  uint8_t *plain = NULL;
  if (cenc && *cenc && strcasecmp(cenc, "identity")) {
    if (strcasecmp(cenc, "gzip")) return pp_err_set(err, PP_EINVAL, "Content-Encoding: only gzip and identity are taken");
    int r = pp_gunzip(body, len, max, &plain, &len, err);
    if (r < 0) {
      char why[sizeof err->msg]; /* (the message is formatted into the buffer it is read from otherwise) */
      snprintf(why, sizeof why, "%s", err->msg);
      return pp_err_set(err, r == PP_ELIMIT ? PP_ELIMIT : PP_EINVAL, "gzip body: %s", why);
    }
    body = plain;
  } else if (len > max) {
    return pp_err_set(err, PP_ELIMIT, "the body is over the %zu bytes a request may carry", max);
  }
  int r = 0;
  if (*json && json_values(body, len) > WEB_CONNECT_MAX_JSON_VALUES) {
    r = pp_err_set(err, PP_ELIMIT, "the JSON body holds more than %d values", WEB_CONNECT_MAX_JSON_VALUES);
  } else if (*json) {
    r = web_connect_json_read(d, len ? (const char *)body : "{}", len ? len : 2, &a->mem, ret, err);
  } else if (pb_depth(d, body, body + len, WEB_CONNECT_MAX_PB_DEPTH) > WEB_CONNECT_MAX_PB_DEPTH) {
    r = pp_err_set(err, PP_ELIMIT, "messages nested more than %d deep", WEB_CONNECT_MAX_PB_DEPTH);
  } else {
    ProtobufCAllocator alloc = {.alloc = arena_budget_alloc, .free = arena_budget_free, .allocator_data = a};
    *ret = protobuf_c_message_unpack(d, &alloc, len, body);
    if (!*ret)
      r = a->exhausted ? pp_err_set(err, PP_ELIMIT, "the request needs more memory to decode than it may take")
                       : pp_err_set(err, PP_EINVAL, "not a %s (protobuf)", d->name);
  }
  free(plain);
  return r;
}

void web_connect_answer(web_resp *out, bool json, const ProtobufCMessage *m, size_t max) {
  web_connect_message(out, 200, json, "application/proto", m, max);
}

void web_connect_message(web_resp *out, unsigned status, bool json, const char *proto_ctype, const ProtobufCMessage *m,
                         size_t max) {
  pp_buf b;
  pp_buf_init(&b, max);
  if (json) {
    web_connect_json_write(&b, m);
  } else {
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *p = !max || n <= max ? malloc(n ? n : 1) : NULL;
    if (!p && n > max && max) b.over = true;
    if (p) pp_buf_put(&b, p, protobuf_c_message_pack(m, p));
    else b.failed = true;
    free(p);
  }
  if (b.over) web_connect_error(out, "resource_exhausted", "the answer is larger than this query's memory budget (--web-query-memory)");
  else if (b.failed) web_connect_error(out, "internal", "out of memory writing the answer");
  else web_resp_buf(out, status, json ? "application/json" : proto_ctype, &b);
  pp_buf_free(&b);
}

void web_connect_error(web_resp *out, const char *code, const char *msg) {
  static const struct {
    const char *code;
    unsigned status;
  } st[] = {{"canceled", 499},          {"invalid_argument", 400}, {"deadline_exceeded", 504},
            {"not_found", 404},         {"already_exists", 409},   {"permission_denied", 403},
            {"resource_exhausted", 429}, {"failed_precondition", 400}, {"aborted", 409},
            {"out_of_range", 400},      {"unimplemented", 501},    {"unavailable", 503},
            {"unauthenticated", 401}};
  unsigned http = 500;
  for (size_t i = 0; i < sizeof st / sizeof st[0]; i++)
    if (!strcmp(st[i].code, code)) http = st[i].status;
  pp_buf b;
  pp_buf_init(&b, 0);
  pp_buf_puts(&b, "{\"code\":");
  web_json_str(&b, code);
  pp_buf_puts(&b, ",\"message\":");
  web_json_str(&b, msg);
  pp_buf_puts(&b, "}");
  web_resp_buf(out, http, "application/json", &b);
  pp_buf_free(&b);
  if (http == 503) out->retry_after = 5;
}
