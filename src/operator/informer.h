/* informer: a cache of one resource kept current by list + watch, as client-go's reflector.
 *
 * Lists (paginated: limit 500, 100 for compact caches, one page at a time on the client's
 * event loop, never blocking it; the cache is replaced when the last page is in) with a
 * consistent read, then watches from the list's resourceVersion with bookmarks and a random
 * 5-10 minute timeoutSeconds. A watch that the server ends resumes from the last
 * resourceVersion seen; one that fails (connection dropped, 5xx, 429, an ERROR event) resumes
 * after a backoff of 0.8 s doubling to 30 s with jitter, reset after two healthy minutes,
 * without relisting; one that ends on an event it cannot read (over KC_MAX_EVENT bytes, or not
 * JSON) is a failure too, and since that event is lost, the cache is listed afresh after the
 * backoff; a 410 Gone (event or status) relists at once. A relist's differences with the cache
 * are delivered as events, so deletions missed while disconnected are noticed. Every change
 * calls the handler with the object (and the previous version for MODIFIED/DELETED); objects
 * are borrowed for the call. Failures call the health callback once when they start (with
 * what failed) and once when the informer works again (NULL), not once per retry.
 * Ownership: the cache owns its objects; inf_get returns borrowed pointers valid until the
 * loop runs again (kc_poll or inf_tick). Not thread-safe: driven by the operator's loop.
 */
#ifndef OPERATOR_INFORMER_H
#define OPERATOR_INFORMER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "kclient.h"

typedef struct informer informer;
typedef void (*inf_change_fn)(void *ud, informer *inf, const char *type, const json_t *obj,
                              const json_t *old);

typedef struct inf_opts {
  const char *name;           /* for logs and metrics: "services" */
  const char *path;           /* collection path: /api/v1/services */
  const char *label_selector; /* or NULL */
  inf_change_fn fn;
  void *ud;
  bool compact;                   /* cache JSON text, not trees: for the big caches (Services,
                                   * EndpointSlices); read entries with inf_decode; inf_get and the
                                   * handler's `old` are not available (NULL) */
  void (*transform)(json_t *obj); /* or NULL: edits each object before it is cached and handled */
  const char *index_label; /* compact caches: kept beside each entry as "namespace/<value>" */
  /* or NULL: called when the informer starts failing (error: what failed) and when it works
   * again (error NULL) */
  void (*health)(void *ud, informer *inf, const char *error);
} inf_opts;

typedef struct inf_stats {
  uint64_t lists, watches, watch_restarts, errors, events;
  uint64_t relists;        /* lists after the first: 410 Gone, or events lost to a bad event */
  uint64_t relists_gone;   /* of which after 410 Gone */
  uint64_t watch_failures; /* watches that failed: connection, HTTP status, ERROR event */
  uint64_t bad_events;     /* watches that ended on an event over KC_MAX_EVENT or not JSON */
} inf_stats;

int inf_new(kclient *c, const inf_opts *o, informer **ret, pp_err *err);
void inf_free(informer *inf);
/* Starts a list or a watch when one is due; returns ms until it next wants to run. What they
 * bring is handled as kc_poll runs their callbacks. */
int64_t inf_tick(informer *inf, int64_t now_ms);
/* Has listed at least once. */
bool inf_synced(const informer *inf);
/* A list is being read: the cache will be replaced when its last page is in. */
bool inf_listing(const informer *inf);
/* Borrowed; not for compact informers (NULL). */
const json_t *inf_get(const informer *inf, const char *ns, const char *name);
/* The cache: an object keyed "namespace/name" (or "name"), borrowed; its values are entries,
 * which inf_decode turns into objects (a new reference; NULL if out of memory). */
const json_t *inf_items(const informer *inf);
json_t *inf_decode(const informer *inf, const json_t *entry);
/* A compact entry's "namespace/<index_label value>" (NULL without one): lets a pass group
 * entries without decoding them. */
const char *inf_entry_index(const informer *inf, const json_t *entry);
/* Puts an object this process just wrote (the API server's answer) into the cache, as the
 * watch will shortly: later reads see the write at once (client-go's mutation cache). No
 * handler runs. */
void inf_observe(informer *inf, json_t *obj);
const char *inf_name(const informer *inf);
void inf_get_stats(const informer *inf, inf_stats *ret);
/* The last error, for logs ("" when healthy). */
const char *inf_last_error(const informer *inf);

#endif
