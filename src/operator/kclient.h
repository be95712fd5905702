/* kclient: a small Kubernetes API client on libcurl and jansson.
 *
 * Configuration comes from a kubeconfig (its current context: server, token or token file,
 * client certificate and key as data or files, CA as data or file, insecure-skip-tls-verify,
 * namespace) or from the pod's service account (KUBERNETES_SERVICE_HOST/PORT, token and CA
 * under /var/run/secrets/kubernetes.io/serviceaccount; the token file is re-read every
 * minute, as bound tokens rotate). exec credential plugins (client.authentication.k8s.io
 * ExecCredential, run as kubectl runs them: command, args, env, KUBERNETES_EXEC_INFO) give a
 * token or a client certificate, kept until its expirationTimestamp and fetched again after a
 * 401; a plugin gets 30 s and 1 MiB of output. Once running, the plugin is run again in the
 * background (kc_poll reads its output) from a quarter of the credential's life on, at most 60 s
 * before it expires, so requests never wait for it; only kc_new and kc_do wait. Without usable
 * credentials (after a 401, or while a failing plugin is retried every 5 s) requests fail at
 * once with the plugin's error. auth-provider entries are refused.
 *
 * Requests run on one curl multi handle that the client owns: kc_start queues a request and
 * returns at once, kc_watch_start opens a watch stream, and kc_poll waits for network activity
 * and runs the callbacks of whatever finished, so the operator's one loop drives every list,
 * watch and write together and nothing waits for anything else. At most KC_MAX_INFLIGHT
 * requests run at once (the rest wait in order), except priority ones (the lease), which
 * start at once whatever else is in flight. kc_do is the synchronous form, for start-up and
 * shutdown only (never inside the loop). Responses over KC_MAX_RESPONSE bytes fail with
 * PP_ELIMIT; a watch event over KC_MAX_EVENT bytes, or one that is not JSON {type, object},
 * ends its watch with that reason (kc_watch_end), as an error, not as a normal end.
 * Errors: a failed request returns (or calls back with) a negative PP_E* code; an answer from
 * the API server returns its HTTP status (>= 100) with the parsed JSON body, and for status
 * >= 400 the Status object's message in err (so "409 AlreadyExists: ..." reads as the server
 * said it). Callbacks run inside kc_poll; they may start and cancel other requests and watches,
 * but not cancel their own, and must not call kc_poll.
 * Not thread-safe: one kclient per thread.
 */
#ifndef OPERATOR_KCLIENT_H
#define OPERATOR_KCLIENT_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../base/pp_err.h"

#define KC_MAX_RESPONSE ((size_t)256 << 20)
#define KC_MAX_EVENT ((size_t)16 << 20)
#define KC_MAX_INFLIGHT 16            /* requests at once, priority ones not counted */
#define KC_DEFAULT_TIMEOUT_MS 60000   /* a whole request, unless kc_req_opts says otherwise */

typedef struct kc_config {
  char *server;     /* https://host:port, no trailing slash */
  char *token;      /* bearer token, or NULL */
  char *token_file; /* re-read periodically when set */
  char *ca_pem;     /* CA bundle (PEM bytes) or NULL */
  size_t ca_len;
  char *cert_pem, *key_pem; /* client certificate and key (PEM) or NULL */
  size_t cert_len, key_len;
  bool insecure;
  char *namespace_; /* the context's namespace, or NULL */
  char *exec_json;  /* the user's exec plugin stanza (JSON text, command resolved), or NULL */
} kc_config;

void kc_config_free(kc_config *c);
/* path NULL = $KUBECONFIG or ~/.kube/config. */
int kc_config_kubeconfig(const char *path, kc_config *ret, pp_err *err);
int kc_config_incluster(kc_config *ret, pp_err *err);

typedef struct kclient kclient;

int kc_new(const kc_config *cfg, const char *user_agent, kclient **ret, pp_err *err);
void kc_free(kclient *c);

/* One request, synchronously (start-up and shutdown only). path includes the query string;
 * body may be NULL; content_type NULL = JSON. *ret_body (may be NULL on return) is owned by
 * the caller. */
int kc_do(kclient *c, const char *method, const char *path, const char *content_type,
          const json_t *body, json_t **ret_body, pp_err *err);

/* Requests made since kc_new (for metrics and benchmarks). */
uint64_t kc_requests(const kclient *c);

/* ---- requests on the event loop ------------------------------------------------------------ */

typedef struct kc_req kc_req;

/* Called once, from kc_poll, when a request ends: status is the HTTP status (>= 100) or a
 * negative PP_E* when no answer came (refused, timed out, over KC_MAX_RESPONSE); body the
 * parsed JSON answer, borrowed for the call (NULL when none); err says what went wrong when
 * status < 0 or >= 400. The request is freed after the call. */
typedef void (*kc_done_fn)(void *ud, int status, json_t *body, const pp_err *err);

typedef struct kc_req_opts {
  int timeout_ms; /* the whole request; 0 = KC_DEFAULT_TIMEOUT_MS */
  bool priority;  /* starts at once, never waits behind the KC_MAX_INFLIGHT others */
} kc_req_opts;

/* Starts (or queues) a request; fn runs later, from kc_poll, never from kc_start. *ret (may
 * be NULL) identifies it for kc_cancel until fn has run. opts may be NULL. */
int kc_start(kclient *c, const char *method, const char *path, const char *content_type,
             const json_t *body, const kc_req_opts *opts, kc_done_fn fn, void *ud, kc_req **ret,
             pp_err *err);
/* Drops a request that has not ended yet; its callback never runs. */
void kc_cancel(kclient *c, kc_req *r);
/* Requests waiting for a place (KC_MAX_INFLIGHT were running). */
size_t kc_waiting(const kclient *c);

/* Waits at most max_wait_ms for network activity (less when libcurl has a timer due), moves
 * every transfer along and runs the callbacks of those that ended: requests' done callbacks,
 * watches' event and end callbacks. */
void kc_poll(kclient *c, int max_wait_ms);

/* ---- watches: streams of events ------------------------------------------------------------- */

/* Called per event line: type ("ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR") and the
 * object (borrowed). Returning false stops the stream (KC_WATCH_STOPPED). */
typedef bool (*kc_event_fn)(void *ud, const char *type, json_t *object);

typedef enum kc_watch_reason {
  KC_WATCH_CLOSED = 1,      /* the server ended the stream cleanly (its timeoutSeconds) */
  KC_WATCH_STOPPED,         /* the event callback returned false */
  KC_WATCH_EVENT_TOO_LARGE, /* an event over KC_MAX_EVENT: it was not delivered */
  KC_WATCH_EVENT_INVALID,   /* a line that is not JSON {type, object}: it was not delivered */
  KC_WATCH_FAILED,          /* the connection failed or the server refused (http_status) */
} kc_watch_reason;

typedef struct kc_watch_end {
  kc_watch_reason reason;
  long http_status; /* 0 if no answer arrived */
  char msg[256];    /* what went wrong ("" for KC_WATCH_CLOSED and KC_WATCH_STOPPED) */
} kc_watch_end;

/* Called once when a watch ends, from kc_poll; the watch is already freed. */
typedef void (*kc_watch_end_fn)(void *ud, const kc_watch_end *end);

typedef struct kc_watch kc_watch;
int kc_watch_start(kclient *c, const char *path, kc_event_fn fn, kc_watch_end_fn end, void *ud,
                   kc_watch **ret, pp_err *err);
/* The HTTP status so far (0 before the response's headers). */
long kc_watch_status(const kc_watch *w);
/* Closes a watch that has not ended; its end callback never runs. */
void kc_watch_cancel(kclient *c, kc_watch *w);

/* A percent-encoded copy of s for a query string (malloc'd). */
char *kc_escape(const char *s);

#endif
