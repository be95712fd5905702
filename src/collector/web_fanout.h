/* web_fanout: one merge over every shard (issue 15 §3). A collector given peers (--peer URL, one
 * per other shard or collector) answers a merge (/api/v1/render and its base, /api/v1/profile,
 * /api/v1/pgo, /api/v1/regressions: every selection without id=) from its own store and from
 * each peer's: it asks every peer at once (libcurl's multi interface) for the same selection's
 * merged profile, GET PEER/api/v1/profile?...&local=1 (local=1: the peer answers from its own
 * store and never asks further, so peers may name each other), and merges the answers into its
 * own. Shards split the targets, so each series lives on one shard and the sum of the shards'
 * merges is the merge of everything for every aggregation: sum; avg, which averages each series
 * over time and then sums the series; latest, each series' newest. (A `shard: all` monitor is
 * scraped by every shard and so counted once per shard, as its data is stored once per shard.)
 *
 * The listings (timeline, series, profiles, targets) ask the peers the same request with local=1
 * (web_fanout_get) and append their entries, each marked with its peer; a record id is its
 * store's, so a record of a peer is asked of that peer alone (web_fanout_get_one), which must be
 * one of the lists' so a request never picks the address fetched. The Pyroscope query API's
 * calls are posted the same way, their body passed on as protobuf (web_fanout_post_all,
 * web_fanout_merge_post; web_querier.h says how the answers are put together).
 *
 * A peer list may name the collector itself (the operator writes one list, every shard's pod,
 * for all of them): each request carries WEB_FANOUT_FROM_HEADER with this collector's random
 * id, a collector asked with its own id answers 204 at once (web.c), and that answer is
 * skipped: not asked, not missing.
 *
 * A peer that does not answer (refused, timed out, a status other than 200 or 404, a body that
 * does not decode or does not fit the request's budget) makes the answer partial: the info says
 * which peers, and the caller says so in the answer and in the X-Pprof-Partial header. 404 (no
 * profiles there) is an answer with nothing in it.
 *
 * Limits: WEB_FANOUT_MAX_PEERS peers; each peer's answer within the request's budget (the part
 * the merge so far leaves) and within the peer timeout (default WEB_FANOUT_TIMEOUT_S). Runs on
 * web_work's worker threads (it blocks, as a merge from disk does); thread-safe. */
#ifndef COLLECTOR_WEB_FANOUT_H
#define COLLECTOR_WEB_FANOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/pp_err.h"
#include "../codec/pprof.h"
#include "store.h"
#include "upload.h"

#define WEB_FANOUT_MAX_PEERS 128
#define WEB_FANOUT_TIMEOUT_S 10.0
#define WEB_FANOUT_FROM_HEADER "X-Pprof-From"

typedef struct web_fanout web_fanout;

/* What the peers added to one answer, and who did not answer. */
typedef struct web_fanout_info {
  unsigned asked;     /* peers asked (over every merge of the request) */
  unsigned failed;    /* of which did not answer */
  uint64_t profiles;  /* records the peers merged (their X-Pprof-Profiles) */
  bool truncated;     /* a peer merged only its newest records (X-Pprof-Truncated) */
  char missing[512];  /* "PEER (why); ...": the peers that did not answer, cut short if long */
  /* Answers that came whole but lack history: peers whose answer said it was partial
   * (X-Pprof-Partial: their bucket-only history, or their own peers), named in missing too;
   * and this collector's history in the request's window only the object store holds (web.h's
   * bucket_only; web_note_window sets it). Either makes the answer partial as failed does. */
  unsigned partial_peers;
  upload_bucket_only bucket;
  /* The windows that met that history (web_note_window; a window noted twice, as pgo and
   * regressions parse their selection twice, is one), each read from the object store or not
   * (web_note_read): the answer lacks that history while one is not. More windows than fit
   * count as not read. */
  struct web_fanout_window {
    int64_t from, to;
    int agg; /* the selection's store_agg as asked (a diff's base may read where its main did not) */
    bool read;   /* a merge read it from the object store */
    bool missed; /* a merge over it did not (another selection over the same window may have) */
  } win[4];
  unsigned nwin;
  bool win_over;
  unsigned bucket_read;     /* merges that read the object store's part */
  uint64_t bucket_profiles; /* records that part merged */
  char bucket_why[160];     /* why the object store was not read, "" when not tried or not readable */
} web_fanout_info;

/* Whether info's answer lacks history only the object store holds. */
static inline bool web_fanout_bucket_lacks(const web_fanout_info *info) {
  if (!info->bucket.segments) return false;
  bool lacks = info->win_over;
  for (unsigned i = 0; i < info->nwin && !lacks; i++) lacks = !info->win[i].read || info->win[i].missed;
  return lacks;
}

/* Whether info makes an answer partial. */
static inline bool web_fanout_partial(const web_fanout_info *info) {
  return info->failed || info->partial_peers || web_fanout_bucket_lacks(info);
}

/* Peers are base URLs (sv_check_endpoint: http:// or https://, a host, no query; a trailing /
 * is dropped), copied. Two lists: the flags' (--peer), fixed, and the config's (query.peers),
 * replaced on each reload; a merge asks both as they are when it starts.
 * new: the flags' list: 0, or PP_EINVAL naming the bad one. timeout_s: per peer request, 0 =
 * WEB_FANOUT_TIMEOUT_S. token: sent to every peer as "Authorization: Bearer TOKEN" (NULL: no
 * credentials), copied; printable ASCII without spaces (RFC 6750's characters and more), or
 * PP_EINVAL, so it cannot add a header of its own. */
int web_fanout_new(const char *const *peers, size_t n, double timeout_s, const char *token, web_fanout **ret, pp_err *err);
/* Whether token can go into that header as it is (NULL: no). */
bool web_fanout_token_ok(const char *token);
/* Replaces the config's list (0, or PP_EINVAL and the list kept). Thread-safe. */
int web_fanout_set(web_fanout *f, const char *const *peers, size_t n, pp_err *err);
void web_fanout_free(web_fanout *f);
/* This collector's id (32 hex digits), which its requests to peers carry. */
const char *web_fanout_id(const web_fanout *f);
/* Peers in both lists now (f may be NULL: 0). */
size_t web_fanout_peers(web_fanout *f);

/* The selection a peer is asked for: type; from/to in ns (0: the peer's default); agg by name
 * ("sum", "avg", "latest"; NULL: the type's default); the label matchers. */
typedef struct web_fanout_sel {
  const char *type;
  int64_t from, to;
  const char *agg;
  const store_matcher *m;
  size_t nm;
} web_fanout_sel;

/* Asks every peer for sel's merge and merges the answers into *prof (NULL: nothing local; it
 * stays NULL when no peer had anything either), all within budget bytes (the profile in *prof
 * counted). 0 with info updated (a peer that did not answer is in info, not an error);
 * PP_ELIMIT when the merge passes the budget; PP_ENOMEM. On failure *prof is unchanged. */
int web_fanout_merge(web_fanout *f, const web_fanout_sel *sel, size_t budget, pprof_profile **prof,
                     web_fanout_info *info, pp_err *err);

/* ---- any other answer: the listings (timeline, series, profiles, targets) and one peer's record */

#define WEB_FANOUT_MAX_PATH 8192

/* What a peer's headers said of its answer. */
typedef struct web_fanout_meta {
  uint64_t profiles; /* X-Pprof-Profiles */
  bool truncated;    /* X-Pprof-Truncated */
  const char *type;  /* X-Pprof-Type (a cfg_type_name), or NULL */
  char partial[128]; /* X-Pprof-Partial ("" when absent): the answer lacks something, this says what */
} web_fanout_meta;

/* One line of a peer's answer's headers (n bytes as curl hands them, with their CRLF, not NUL-
 * terminated) read into m: what web_fanout_get does with each (exposed for the fuzz target).
 * Afterwards m->partial is printable ASCII, NUL-terminated, and m->type a cfg_type_name or NULL. */
void web_fanout__header(const char *p, size_t n, web_fanout_meta *m);

/* One peer's 200 answer. Returns 0, or an error that stops the whole request (over the budget,
 * out of memory); an answer that is not usable (does not parse) is not an error: fn writes why
 * into why (nwhy bytes) and the peer counts as missing. */
typedef int (*web_fanout_body_fn)(void *ud, const char *peer, const char *body, size_t len, const web_fanout_meta *meta,
                                  char *why, size_t nwhy, pp_err *err);

/* The path and query a peer is asked: route?local=1 and the request's parameters but local and
 * peer, escaped. 0, or -1 when it does not fit in cap. */
int web_fanout_path(const char *route, const char *const *k, const char *const *v, size_t n, char *out, size_t cap);

/* Asks every peer for path (web_fanout_path) at once and hands each 200 answer to fn, in the
 * peers' order; the answers share budget bytes (0: no cap). Peers that do not answer, or answer
 * something else than 200 or 404, are in info. 0, or fn's error. */
int web_fanout_get(web_fanout *f, const char *path, size_t budget, web_fanout_body_fn fn, void *ud, web_fanout_info *info,
                   pp_err *err);

/* The same, of one peer, which must be one of the lists' (as listed, a trailing / aside):
 * PP_EINVAL otherwise, so a request can never make the collector fetch an address of its
 * choosing. A peer that does not answer is in info (failed), not an error. */
int web_fanout_get_one(web_fanout *f, const char *peer, const char *path, size_t budget, web_fanout_body_fn fn, void *ud,
                       web_fanout_info *info, pp_err *err);

/* ---- requests with a body: the Pyroscope query API's calls (web_querier) */

/* A POST of body (len bytes, Content-Type ctype) to path, a path and query such as
 * web_fanout_path makes (local=1 in it). */
typedef struct web_fanout_post {
  const char *path;
  const char *ctype;
  const void *body;
  size_t len;
} web_fanout_post;

/* web_fanout_get's, with the request posted. */
int web_fanout_post_all(web_fanout *f, const web_fanout_post *post, size_t budget, web_fanout_body_fn fn, void *ud,
                        web_fanout_info *info, pp_err *err);
/* web_fanout_merge's, with the request posted: every peer's answer is a pprof profile merged
 * into *prof (the same errors). */
int web_fanout_merge_post(web_fanout *f, const web_fanout_post *post, size_t budget, pprof_profile **prof,
                          web_fanout_info *info, pp_err *err);

#endif
