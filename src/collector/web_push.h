/* web_push: profiles pushed to the collector (issue 16 §2), stored like scraped ones.
 *
 *   POST /push.v1.PusherService/Push   Pyroscope's push API over Connect (web_push_connect)
 *   POST /ingest?name=APP{k=v,...}&from=&until=[&format=pprof][&spyName=..&sampleRate=..]
 *        Pyroscope's ingest API as the pyroscope-go SDK (v1.x) calls it: the body is
 *        multipart/form-data with a `profile` part (gzip or plain pprof) and an optional
 *        `sample_type_config` part (JSON: per sample type its units, aggregation,
 *        display-name, cumulative), or the pprof itself as the whole body. from/until are
 *        Unix seconds or nanoseconds (the SDK sends nanoseconds; older clients seconds).
 *
 * What is stored: one record per profile type the pprof holds, found from its sample types
 * (cpu: samples/count + cpu/nanoseconds; goroutine(s); threadcreate; heap: inuse_* and
 * alloc_*; contentions + delay: mutex or block as the config's display-name says). A heap
 * profile from the SDK (godeltaprof) has inuse_* as the current amounts and alloc_* as what
 * was allocated since the last upload, so it becomes two records: `heap` (inuse_*, averaged
 * over time like a scraped heap) and `allocs` (alloc_*, summed). Labels: `service_name` and
 * `monitor` = APP, `endpoint` = "push", then the name's labels; a label whose key starts with
 * "__" (the SDK's `__session_id__`, or our own `__k8s_*`) or names one of those three is
 * dropped, so a client cannot pose as a scraped Kubernetes target.
 *
 * Before the body is read (web.c): credentials that fail the fast check get 401/429, and a
 * body that would take all pushes' bodies in memory past WEB_PUSH_INFLIGHT gets 503.
 * Limits (a clear 4xx each, nothing stored): the body WEB_MAX_PUSH_BODY (413, web.c), the
 * name WEB_PUSH_MAX_NAME bytes with at most WEB_PUSH_MAX_LABELS labels, the config part
 * WEB_PUSH_MAX_CONFIG, the pprof the decoder's limits and the request's memory budget; an
 * unknown profile type, or a time more than WEB_PUSH_MAX_FUTURE_S ahead of the clock, is 400.
 * A profile is acknowledged (200) only once the store has appended it (the writer thread does,
 * through web_hooks.push); a stopping collector answers 503.
 * Threads: runs on web_work's workers.
 */
#ifndef COLLECTOR_WEB_PUSH_H
#define COLLECTOR_WEB_PUSH_H

#include <protobuf-c/protobuf-c.h>

#include "../base/arena.h"
#include "web_int.h"

#define WEB_PUSH_CONNECT_PATH "/push.v1.PusherService/Push"
#define WEB_MAX_PUSH_BODY ((size_t)16 << 20)
/* push bodies held in memory at once, all requests together (past it: 503 with Retry-After) */
#define WEB_PUSH_INFLIGHT ((size_t)128 << 20)
#define WEB_PUSH_MAX_NAME 1024
#define WEB_PUSH_MAX_LABELS 32
#define WEB_PUSH_MAX_CONFIG ((size_t)64 << 10)
#define WEB_PUSH_MAX_FUTURE_S 600

/* A pushed name parsed: APP{k=v,...}. Strings point into buf. */
typedef struct web_push_name {
  char buf[WEB_PUSH_MAX_NAME + 1];
  const char *app;
  const char *k[WEB_PUSH_MAX_LABELS], *v[WEB_PUSH_MAX_LABELS];
  size_t n;
} web_push_name;

/* Parses name (NUL-terminated) into *ret: 0, or PP_EINVAL / PP_ELIMIT with why in err. The
 * application name is 1..256 bytes of [A-Za-z0-9_.:/-]; a suffix naming a Pyroscope profile
 * type (".cpu", ".inuse_space", ...) is dropped (the pprof says its type); label keys are
 * 1..128 bytes of [A-Za-z0-9_.], values any bytes but ',' '}' and NUL, spaces around both
 * trimmed; a key given twice keeps its last value. */
int web_push_name_parse(const char *name, web_push_name *ret, pp_err *err);

/* The request body as web.c collected it: for /ingest the pprof bytes (the `profile` part, or
 * the whole body) and the config part (may be empty); for Connect the whole body in profile,
 * with its Content-Type and Content-Encoding (malloc'd, or NULL), and for OTLP its schema version. */
typedef struct web_push_body {
  uint8_t *profile;
  size_t profile_len;
  char *config;
  size_t config_len;
  char *ctype, *cenc;
  char *version; /* OTLP's OTLP-Profiles-Development-Version header (malloc'd, or NULL) */
} web_push_body;

void web_push_ingest(const web_ctx *x, const web_params *p, const web_push_body *b, web_resp *out);

/* What a pushed profile says of itself and where it is from. */
typedef struct web_push_src {
  const char *app;
  const char *const *k, *const *v; /* its labels; "__*" and our three are dropped */
  size_t n;
  const char *lock_kind; /* "mutex" / "block" for a contentions profile, NULL: not said */
  bool cumulative;       /* a heap as Go's /debug/pprof/heap has it (alloc_* since start): one record */
  int64_t from, until;   /* ns, 0 = not given: the profile's own time_nanos and duration_nanos */
} web_push_src;

/* Decodes (gzip or plain pprof, with the decoder's limits and a quarter of the request's
 * budget), classifies and stores one pushed pprof as the records above say, through
 * web_hooks.push: 0, or the HTTP status to answer with (400 bad or unknown profile, 413 over a
 * limit, 503 stopping, 507 disk full, 500) and why in why. Shared by every push protocol
 * (web_otlp.c too). */
unsigned web_push_store(const web_ctx *x, const web_push_src *src, const uint8_t *data, size_t dlen, char *why,
                        size_t whyn);

/* A pushed body read as a message of type d (web_connect_read: its Content-Type and
 * Content-Encoding, WEB_MAX_PUSH_BODY plain bytes at most) from *pa, an arena this sets up with
 * an eighth of the request's budget (at least twice the body and 1 MiB); the caller frees
 * pa->mem, also when this fails. 0, or PP_EINVAL / PP_ELIMIT with why in err. */
int web_push_read(const web_ctx *x, const web_push_body *b, const ProtobufCMessageDescriptor *d, arena_budget *pa,
                  bool *json, ProtobufCMessage **ret, pp_err *err);

/* POST /push.v1.PusherService/Push: Connect's unary protocol (not gRPC), the body a
 * push.v1.PushRequest as application/proto or application/json (protojson: rawProfile in
 * base64), gzip or identity Content-Encoding. Each series' labels become the record's:
 * `service_name` the app (absent: "unknown_service"), `__name__` says mutex or block for a
 * contentions profile; a heap is cumulative (alloc_* since the process started: stored whole as
 * heap, as a scraped one is) unless `__delta__="false"` says the client sends deltas already
 * (Pyroscope's convention: then heap + allocs as for /ingest); other "__" labels are dropped. The window
 * is each profile's own time_nanos and duration_nanos. Answers as Connect does: 200 with an empty
 * PushResponse, else {"code","message"} with the code's status (invalid_argument 400,
 * unavailable 503, resource_exhausted 429, internal 500). The samples before a failing one stay
 * stored (as with Pyroscope, a push is not a transaction). */
void web_push_connect(const web_ctx *x, const web_push_body *b, web_resp *out);

#endif
