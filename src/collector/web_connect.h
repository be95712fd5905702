/* web_connect: Connect's unary protocol (connectrpc.com), as Pyroscope's APIs speak it
 * (push.v1 in web_push.c, querier.v1 in web_querier.c): a POST whose body is one protobuf
 * message, as application/proto or as application/json (protojson), identity or gzip encoded;
 * the answer the same way, or an error envelope {"code":..,"message":..} with the HTTP status
 * Connect gives the code.
 *
 * The JSON side is driven by the messages' protobuf-c descriptors, so one reader and one writer
 * serve every message. Field names: a member is the field's JSON name (protoc's rule:
 * underscores dropped, the letter after one upper-cased: profile_typeID -> profileTypeID) or its
 * proto name, as protojson reads both. Values as protojson has them: 64-bit integers as strings
 * or numbers, 32-bit ones and doubles as numbers ("NaN", "Infinity", "-Infinity" as strings),
 * bytes as base64, repeated fields as arrays, messages as objects, null as the default. The int32
 * fields named in the table in web_connect.c (format, aggregation, exemplar_type) also take
 * their enum's value names; a oneof's member sets its case. Unknown members are skipped (a newer
 * client's fields), as Connect's servers do. OTLP/HTTP (web_otlp.c) reads through here too: its
 * application/x-protobuf is application/proto.
 *
 * Limits: nesting WEB_CONNECT_MAX_DEPTH deep (JSON) or WEB_CONNECT_MAX_PB_DEPTH (protobuf); everything a message holds comes from the arena
 * passed in, whose budget bounds the request (PP_ELIMIT past it). Errors name the member.
 * Threads: none kept; callers own their arenas.
 */
#ifndef COLLECTOR_WEB_CONNECT_H
#define COLLECTOR_WEB_CONNECT_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include <stdbool.h>
#include <stdint.h>

#include "../base/arena.h"
#include "../base/buf.h"
#include "../base/pp_err.h"

#define WEB_CONNECT_MAX_DEPTH 16
/* the same for protobuf bodies, whose nesting is checked before protobuf-c unpacks them (it
 * recurses once per level) */
#define WEB_CONNECT_MAX_PB_DEPTH 32
/* values a JSON body may hold (jansson's tree of them is built before any budget applies) */
#define WEB_CONNECT_MAX_JSON_VALUES 200000

/* A request body as a message: checks Content-Type (application/proto or application/json,
 * *json says which) and Content-Encoding (identity or gzip, the plain body at most max bytes),
 * then decodes it as type d from the arena (protobuf-c's unpack with the arena as allocator, or
 * web_connect_json_read). An empty body is the empty message. 0, or PP_EINVAL / PP_ELIMIT with
 * the reason in err. */
int web_connect_read(const char *ctype, const char *cenc, const uint8_t *body, size_t len, size_t max,
                     const ProtobufCMessageDescriptor *d, arena_budget *a, bool *json, ProtobufCMessage **ret,
                     pp_err *err);

/* The message as the 200 answer, in the request's encoding; resource_exhausted when it is over
 * max bytes (0 = no cap). */
struct web_resp;
void web_connect_answer(struct web_resp *out, bool json, const ProtobufCMessage *m, size_t max);

/* The same with any status, and proto_ctype as the protobuf answer's Content-Type (OTLP/HTTP's
 * application/x-protobuf). */
void web_connect_message(struct web_resp *out, unsigned status, bool json, const char *proto_ctype, const ProtobufCMessage *m,
                         size_t max);

/* An error answer: code is Connect's ("invalid_argument", "not_found", "resource_exhausted",
 * "unimplemented", "unavailable", "internal", ...), which also picks the HTTP status. */
void web_connect_error(struct web_resp *out, const char *code, const char *msg);

/* Reads JSON text json[0..len) as a message of type d into *ret (allocated from a, with every
 * string, array and sub-message it holds): 0, or PP_EINVAL (not JSON, not an object, a member
 * of the wrong kind, an integer out of its field's range), PP_ELIMIT (over the arena's budget
 * or nested too deep). Never call protobuf_c_message_free_unpacked on it: the arena owns it. */
int web_connect_json_read(const ProtobufCMessageDescriptor *d, const char *json, size_t len, arena *a,
                    ProtobufCMessage **ret, pp_err *err);

/* Writes m as a JSON object: fields in number order, those at their default (0, "", false, an
 * empty array, an absent message) left out, as protojson writes proto3. Strings that are not
 * valid UTF-8 are written as web_json does (each invalid sequence one U+FFFD). */
void web_connect_json_write(pp_buf *b, const ProtobufCMessage *m);

#endif
