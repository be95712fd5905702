/* kclient: a small Kubernetes API client on libcurl and jansson.
 *
 * Configuration comes from a kubeconfig (its current context: server, token or token file,
 * client certificate and key as data or files, CA as data or file, insecure-skip-tls-verify,
 * namespace) or from the pod's service account (KUBERNETES_SERVICE_HOST/PORT, token and CA
 * under /var/run/secrets/kubernetes.io/serviceaccount; the token file is re-read every
 * minute, as bound tokens rotate). exec credential plugins (client.authentication.k8s.io
 * ExecCredential, run as kubectl runs them: command, args, env, KUBERNETES_EXEC_INFO) give a
 * token or a client certificate, kept until its expirationTimestamp and fetched again after a
 * 401; a plugin gets 30 s and 1 MiB of output. auth-provider entries are refused.
 *
 * Requests are synchronous (kc_do) on one reused connection; watches are streams the caller
 * drives through a curl multi handle (kc_watch_*). Responses over KC_MAX_RESPONSE bytes fail
 * with PP_ELIMIT; watch events over KC_MAX_EVENT bytes end the watch.
 * Errors: a failed request returns a negative PP_E* code; an answer from the API server
 * returns its HTTP status (>= 100) with *ret_body the parsed JSON, and for status >= 400 the
 * Status object's message in err (so "409 AlreadyExists: ..." reads as the server said it).
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

/* One request. path includes the query string; body may be NULL; content_type NULL = JSON.
 * *ret_body (may be NULL on return) is owned by the caller. */
int kc_do(kclient *c, const char *method, const char *path, const char *content_type,
          const json_t *body, json_t **ret_body, pp_err *err);

/* Requests made since kc_new (for metrics and benchmarks). */
uint64_t kc_requests(const kclient *c);

/* ---- watches: one easy handle per stream, added to the caller's multi handle ------------- */

/* Called per event line: type ("ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR") and the
 * object (borrowed). Returning false stops the stream. */
typedef bool (*kc_event_fn)(void *ud, const char *type, json_t *object);

typedef struct kc_watch kc_watch;
int kc_watch_start(kclient *c, CURLM *multi, const char *path, kc_event_fn fn, void *ud,
                   kc_watch **ret, pp_err *err);
/* The stream's handle, to match CURLMSG_DONE messages. */
CURL *kc_watch_handle(const kc_watch *w);
/* After CURLMSG_DONE: the transfer's result and HTTP status (0 if none arrived). */
void kc_watch_result(const kc_watch *w, CURLcode *ret_code, long *ret_status);
void kc_watch_free(kc_watch *w, CURLM *multi);

/* A percent-encoded copy of s for a query string (malloc'd). */
char *kc_escape(const char *s);

#endif
