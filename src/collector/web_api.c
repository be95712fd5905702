/* The data endpoints. See web_api.h. */
#include "web_api.h"

#include "../base/htab.h"
#include "bucket.h"
#include "web_json.h"
#include "web_labels.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What one call-tree node costs while the render is built (the tree's arrays and hash, the
 * pruning arrays), for the tree's node cap under the budget. */
#define NODE_BYTES 160

/* ---- times ------------------------------------------------------------------------------------ */

/* Exact: nanosecond timestamps have 19 digits, more than a double holds, so the seconds and
 * the fraction are parsed as integers. */
static int parse_frac_ns(const char *s, const char **rest) {
  int64_t ns = 0;
  int digits = 0;
  while (*s >= '0' && *s <= '9') {
    if (digits < 9) ns = ns * 10 + (*s - '0'), digits++;
    s++;
  }
  while (digits++ < 9) ns *= 10;
  *rest = s;
  return (int)ns;
}

int web_parse_time(const char *s, int64_t *ret) {
  if (!s || !*s) return -1;
  const char *p = s;
  int64_t sec = 0;
  int n = 0;
  while (*p >= '0' && *p <= '9' && n < 11) sec = sec * 10 + (*p++ - '0'), n++;
  if (n > 0 && (*p == '\0' || *p == '.')) {
    int64_t frac = 0;
    if (*p == '.') {
      frac = parse_frac_ns(p + 1, &p);
      if (*p) return -1;
    }
    if (sec > 9200000000LL) return -1;
    *ret = sec * 1000000000 + frac;
    return 0;
  }
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return -1;
  int64_t frac = 0;
  if (*rest == '.') frac = parse_frac_ns(rest + 1, &rest);
  if (strcmp(rest, "Z") && strcmp(rest, "+00:00")) return -1;
  time_t t = timegm(&tm);
  if (t < 0 || t > 9200000000LL) return -1; /* past year 2262 does not fit in int64 nanoseconds */
  *ret = (int64_t)t * 1000000000 + frac;
  return 0;
}

/* ---- selections ------------------------------------------------------------------------------ */

static bool label_name_ok(const char *s) {
  if (!(isalpha((unsigned char)*s) || *s == '_')) return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_') return false;
  return true;
}

/* The selection shared by the data endpoints: type, time range, label matchers; the samples it
 * keeps (tag=, web_labels.h); or one record (id=). Filled in place (tags point into itself). */
typedef struct selection {
  const char *type;
  int64_t from, to;
  store_matcher m[WEB_MAX_PARAMS];
  size_t nm;
  store_agg agg;
  int64_t id; /* > 0: that stored record instead of a merge; its type wins */
  bool local; /* local=1: this collector's store only, no peers asked (web_fanout.h) */
  const char *peer; /* with id=: the record is that peer's (one of web_fanout's lists) */
  unsigned fail_status; /* set by select_profile when a peer failed it: the HTTP status to answer */
  web_tags tags;
} selection;

static const char *const reserved[] = {"type", "from", "to", "agg", "name", "limit", "after", "sample", "max_nodes", "top",
                                       "focus", "tag", "id", "group_by", "function", "encoding", "local", "peer",
                                       /* web_pgo.c */ "by", "keep_locations", "aggregate_callees", NULL};

/* local=: 1 for this collector's `what` only (the peers not asked), 0 or absent for every shard's */
static int parse_local(const web_params *p, bool *local, const char *what, char *why, size_t n) {
  const char *v = web_param(p, "local");
  if (v && strcmp(v, "1") && strcmp(v, "0")) return snprintf(why, n, "local: 1 (this collector's %s only) or 0", what), -1;
  *local = v && !strcmp(v, "1");
  return 0;
}

/* The selection p asks for; its window (none with id=) is one the answer covers (web_note_window). */
static int parse_selection(const web_ctx *x, const web_params *p, selection *s, bool need_type, char *why, size_t n) {
  memset(s, 0, sizeof *s);
  const char *id = web_param(p, "id");
  if (id) {
    char *end;
    long long v = strtoll(id, &end, 10);
    if (end == id || *end || v <= 0) return snprintf(why, n, "id: want a stored profile's id (a positive integer, as /api/v1/profiles lists)"), -1;
    s->id = v;
    need_type = false; /* the record's */
  }
  if (web_tags_parse(p, "tag", &s->tags, why, n) < 0) return -1;
  if (parse_local(p, &s->local, "profiles", why, n) < 0) return -1;
  s->peer = web_param(p, "peer");
  if (s->peer && (!s->id || s->local))
    return snprintf(why, n, "peer: names whose record id= is (a timeline entry's \"peer\"), so only with id= and without local=1"), -1;
  s->type = web_param(p, "type");
  if (s->type) {
    int t = cfg_type_from_name(s->type);
    if (t < 0) return snprintf(why, n, "unknown type \"%.64s\" (cpu, heap, allocs, block, mutex, goroutine, threadcreate)", s->type), -1;
    s->type = cfg_type_name[t];
  } else if (need_type) {
    return snprintf(why, n, "missing parameter type"), -1;
  }
  const char *from = web_param(p, "from"), *to = web_param(p, "to");
  if (from && web_parse_time(from, &s->from) < 0) return snprintf(why, n, "from: want Unix seconds or RFC 3339"), -1;
  if (to && web_parse_time(to, &s->to) < 0) return snprintf(why, n, "to: want Unix seconds or RFC 3339"), -1;
  if (s->to && s->from > s->to) return snprintf(why, n, "from is after to"), -1;
  const char *agg = web_param(p, "agg");
  if (!agg || !strcmp(agg, "")) s->agg = STORE_AGG_DEFAULT;
  else if (!strcmp(agg, "sum")) s->agg = STORE_AGG_SUM;
  else if (!strcmp(agg, "avg")) s->agg = STORE_AGG_AVG;
  else if (!strcmp(agg, "latest")) s->agg = STORE_AGG_LATEST;
  else return snprintf(why, n, "agg: want sum, avg or latest"), -1;
  const char *name = web_param(p, "name");
  if (name) s->m[s->nm++] = (store_matcher){"monitor", name};
  for (size_t i = 0; i < p->n; i++) {
    bool res = !strncmp(p->k[i], "base_", 5); /* the comparison's own selection */
    for (const char *const *r = reserved; *r && !res; r++) res = !strcmp(*r, p->k[i]);
    if (res) continue;
    if (!label_name_ok(p->k[i])) return snprintf(why, n, "\"%.64s\" is not a label name", p->k[i]), -1;
    s->m[s->nm++] = (store_matcher){p->k[i], p->v[i]};
  }
  if (!s->id) web_note_window(x, s->from, s->to, (int)s->agg);
  return 0;
}

/* The comparison ("base") of a selection: base_from, base_to, base_agg, base_name and base_LABEL
 * parameters; labels default to the main selection's when no base_ label is given. Returns 0
 * with *ret_has = false when no base_ parameter is present. */
static int parse_base(const web_ctx *x, const web_params *p, const selection *main_sel, selection *b, bool *ret_has,
                      char *why, size_t n) {
  web_params bp;
  memset(&bp, 0, sizeof bp);
  bool any_label = false;
  for (size_t i = 0; i < p->n; i++) {
    if (strncmp(p->k[i], "base_", 5)) continue;
    bp.k[bp.n] = p->k[i] + 5;
    bp.v[bp.n] = p->v[i];
    bp.n++;
    const char *k = p->k[i] + 5;
    if (strcmp(k, "from") && strcmp(k, "to") && strcmp(k, "agg") && strcmp(k, "tag") && strcmp(k, "id")) any_label = true;
  }
  *ret_has = bp.n > 0;
  if (!bp.n) return 0;
  if (main_sel->type && bp.n < WEB_MAX_PARAMS) {
    bp.k[bp.n] = "type";
    bp.v[bp.n] = main_sel->type;
    bp.n++;
  }
  if (parse_selection(x, &bp, b, true, why, n) < 0) return -1;
  if (!any_label) {
    memcpy(b->m, main_sel->m, main_sel->nm * sizeof *b->m);
    b->nm = main_sel->nm;
  }
  /* tag filters, like labels, are the main selection's unless base_tag= says */
  if (!web_param(&bp, "tag") && web_tags_parse(p, "tag", &b->tags, why, n) < 0) return -1;
  return 0;
}

static const char *const agg_names[] = {[STORE_AGG_SUM] = "sum", [STORE_AGG_AVG] = "avg", [STORE_AGG_LATEST] = "latest"};

/* The peers' merges of the selection added to the local one (r: the local merge's result, 0 or
 * PP_EUSAGE for nothing here). Tag filters are applied to the sum afterwards, as they commute
 * with merging. */
static int fan_out(const web_ctx *x, const selection *s, size_t budget, int r, pprof_profile **ret, size_t *ret_count,
                   store_merge_info *info, pp_err *err) {
  if (r == PP_EUSAGE) {
    *ret = NULL;
    if (ret_count) *ret_count = 0;
  }
  web_fanout_sel fs = {s->type, s->from, s->to, agg_names[s->agg], s->m, s->nm};
  uint64_t before = x->fi->profiles;
  pp_err ferr = {0};
  int fr = web_fanout_merge(x->fan, &fs, budget, ret, x->fi, &ferr);
  if (fr < 0) {
    if (r == 0) pprof_free(*ret), *ret = NULL;
    *err = ferr;
    return fr;
  }
  if (!*ret) return r == PP_EUSAGE ? r : pp_err_set(err, PP_EUSAGE, "no profiles");
  uint64_t theirs = x->fi->profiles - before;
  if (ret_count) *ret_count += (size_t)theirs;
  if (info) info->records += theirs, info->truncated |= x->fi->truncated;
  return 0;
}

/* The answer lacks history only the object store holds: held (listed after the request came:
 * the segments deleted since are in it) names the range when the request's listing did not
 * meet this window. */
static void name_bucket(const web_ctx *x, const upload_bucket_only *held) {
  if (!x->fi->bucket.segments) x->fi->bucket = *held;
}

/* The history only the object store holds when the bucket is not read: the windows were noted
 * against what it held when the request came (x->bo); a segment local retention deleted since
 * may be of this window too, and then the answer lacks it and says so. */
static bool recheck_bucket(const web_ctx *x, const selection *s) {
  if (store_deletions(x->h->st) == x->seq) return false;
  upload_bucket_only now;
  uint64_t seq;
  x->h->bucket_only(x->h->ud, true, &now, &seq);
  if (!now.segments || now.to_ns < s->from || (s->to && now.from_ns > s->to)) return false;
  name_bucket(x, &now);
  web_note_read(x, s->from, s->to, (int)s->agg, false);
  return true;
}

#define WEB_RACED 1 /* from_bucket, bucket_rows: the store changed under the listing; do it again */
#define WEB_READ 2
#define WEB_MERGE_TRIES 3

/* What a bucket hook's result br (web.h; held, berr: as it gave them) makes of the answer over
 * s's window: WEB_READ (the window read: the part is added), 0 (nothing to add: the bucket held
 * none of it, or it was not read and the answer says it is partial and why), WEB_RACED (ask
 * again; never on the last try) or PP_ENOMEM (err set: the answer fails). */
static int bucket_outcome(const web_ctx *x, const selection *s, int br, bool last, const upload_bucket_only *held,
                          const pp_err *berr, pp_err *err) {
  if (br == BUCKET_RACED && !last) return WEB_RACED;
  if (br == BUCKET_NONE) return web_note_read(x, s->from, s->to, (int)s->agg, true), 0;
  if (br == PP_ENOMEM) return *err = *berr, br;
  if (br == BUCKET_NOT_READ || br == BUCKET_RACED || (br < 0 && br != PP_EUSAGE)) {
    name_bucket(x, held);
    if (br != BUCKET_NOT_READ) snprintf(x->fi->bucket_why, sizeof x->fi->bucket_why, "%.150s", berr->msg);
    web_note_read(x, s->from, s->to, (int)s->agg, false);
    return 0;
  }
  web_note_read(x, s->from, s->to, (int)s->agg, true);
  x->fi->bucket_read++;
  return br == PP_EUSAGE ? 0 : WEB_READ;
}

/* The history only the object store holds added to the local merge (r: its result, 0 or
 * PP_EUSAGE; seq: store_deletions before it), when the selection's window meets it and it can
 * be read for the aggregation (bucket.h); the window is then read (web_note_read). Otherwise, or
 * when reading fails, the answer stays as it is and says it is partial (web_note_window noted
 * the window). A segment deleted from the store since seq may have been counted by the local
 * merge or not: WEB_RACED (the local result freed) asks for both again, unless last. */
static int from_bucket(const web_ctx *x, const selection *s, uint64_t seq, bool last, size_t budget, int r,
                       pprof_profile **ret, size_t *ret_count, store_merge_info *info, pp_err *err) {
  if (!x->h->bucket_only || !x->fi || !s->type) return r;
  if (!x->h->bucket_merged) return (void)recheck_bucket(x, s), r;
  store_agg agg = s->agg == STORE_AGG_DEFAULT ? store_default_agg(s->type, false) : s->agg;
  size_t used = r == 0 ? (*ret)->mem.reserved : 0;
  size_t left = budget ? (budget > used ? budget - used : 1) : 0;
  pprof_profile *p = NULL;
  size_t n = 0;
  store_merge_info bi;
  memset(&bi, 0, sizeof bi);
  upload_bucket_only held = {0};
  pp_err berr = {0};
  /* (listed now, after the local merge: the segments deleted since the request came are in it) */
  store_series_part *parts = NULL;
  size_t nparts = 0;
  int br = x->h->bucket_merged(x->h->ud, seq, s->m, s->nm, s->type, s->from, s->to, agg, x->max_records, left, &p, &n,
                               &parts, &nparts, &bi, &held, &berr);
  store_series_parts_free(parts, nparts); /* (a sum's part is one profile: none) */
  int o = bucket_outcome(x, s, br, last, &held, &berr, err);
  if (o == WEB_RACED || o < 0) {
    if (r == 0) pprof_free(*ret), *ret = NULL;
    return o;
  }
  if (o != WEB_READ) return r;
  x->fi->bucket_profiles += bi.records;
  if (r == PP_EUSAGE) {
    *ret = p;
    if (ret_count) *ret_count = n;
    if (info) *info = bi;
    return 0;
  }
  pprof_profile *sum = NULL, *both[2] = {*ret, p};
  int mr = pprof_merge_within(both, 2, budget, &sum, err);
  pprof_free(p);
  pprof_free(*ret);
  *ret = NULL;
  if (mr < 0) return mr;
  *ret = sum;
  if (ret_count) *ret_count += n;
  if (info) {
    info->records += bi.records, info->rollups += bi.rollups, info->truncated |= bi.truncated;
    if (bi.resolution_ns > info->resolution_ns) info->resolution_ns = bi.resolution_ns;
  }
  return 0;
}

/* A merge by avg or latest over history the object store holds too: those are per series over
 * time, so the bucket's part is read first, per series (bucket_merged), and the local merge
 * joins its series to it (store_merged_with), each series divided once by all its records or
 * taking its newest of both. The local merge comes after the listing here: a segment local
 * retention deleted in between is in neither, so any deletion since seq asks for both again
 * (WEB_RACED), and on the last try the answer says it is partial and why. The bucket's part
 * is read within the whole budget and the local merge gets what it left: when the two do not
 * fit together, the local merge is done again alone within the whole budget and the answer says
 * it lacks the bucket's part and why, as it did before that history could be read. Results as
 * from_bucket's. */
static int merge_with_bucket(const web_ctx *x, const selection *s, store_agg agg, uint64_t seq, bool last, size_t budget,
                             pprof_profile **ret, size_t *ret_count, store_merge_info *info, pp_err *err) {
  unsigned read_before = x->fi->bucket_read; /* (a window read for a try asked again is not counted) */
  pprof_profile *sum = NULL;
  size_t nsum = 0, nparts = 0, used = 0;
  store_series_part *parts = NULL;
  store_merge_info bi;
  memset(&bi, 0, sizeof bi);
  upload_bucket_only held = {0};
  pp_err berr = {0};
  int br = x->h->bucket_merged(x->h->ud, seq, s->m, s->nm, s->type, s->from, s->to, agg, x->max_records, budget, &sum,
                               &nsum, &parts, &nparts, &bi, &held, &berr);
  pprof_free(sum); /* (a sum's: none by avg or latest) */
  int o = bucket_outcome(x, s, br, last, &held, &berr, err);
  if (o == WEB_RACED || o < 0) return store_series_parts_free(parts, nparts), o;
  if (o != WEB_READ) store_series_parts_free(parts, nparts), parts = NULL, nparts = 0;
  for (size_t i = 0; i < nparts; i++) used += parts[i].p->mem.reserved;
  size_t left = budget ? (budget > used ? budget - used : 1) : 0;
  int r = store_merged_with(x->h->st, s->m, s->nm, s->type, s->from, s->to, agg, x->max_records, left, parts, nparts,
                            ret, ret_count, info, err);
  store_series_parts_free(parts, nparts);
  if (r == PP_ELIMIT && nparts) {
    x->fi->bucket_read = read_before, o = 0;
    name_bucket(x, &held);
    snprintf(x->fi->bucket_why, sizeof x->fi->bucket_why,
             "its part and the local merge were over the query's memory budget together: %.60s", err->msg);
    web_note_read(x, s->from, s->to, (int)s->agg, false);
    memset(err, 0, sizeof *err);
    r = store_merged_with(x->h->st, s->m, s->nm, s->type, s->from, s->to, agg, x->max_records, budget, NULL, 0, ret,
                          ret_count, info, err);
  }
  if (store_deletions(x->h->st) != seq) {
    if (!last) {
      if (r == 0) pprof_free(*ret), *ret = NULL;
      x->fi->bucket_read = read_before;
      return WEB_RACED;
    }
    if (recheck_bucket(x, s) && !x->fi->bucket_why[0])
      snprintf(x->fi->bucket_why, sizeof x->fi->bucket_why, "local retention deleted segments while the answer read the store (ask again)");
  }
  if (o == WEB_READ) {
    x->fi->bucket_profiles += bi.records;
    if (r == 0 && info) {
      info->records += bi.records, info->truncated |= bi.truncated;
      if (bi.resolution_ns > info->resolution_ns) info->resolution_ns = bi.resolution_ns;
    }
  }
  return r;
}

/* A peer's record (id= and peer=): asked of that peer alone, GET PEER/api/v1/profile?id=N&local=1,
 * its type from the answer's X-Pprof-Type. */
typedef struct peer_rec {
  size_t budget;
  pprof_profile *p;
  const char *type;
} peer_rec;

static int on_record(void *ud, const char *peer, const char *body, size_t len, const web_fanout_meta *meta, char *why,
                     size_t nwhy, pp_err *err) {
  (void)peer, (void)err;
  peer_rec *o = ud;
  pprof_limits lim;
  pprof_limits_default(&lim);
  lim.max_memory = o->budget;
  pp_err de = {0};
  if (pprof_decode((const uint8_t *)body, len, &lim, &o->p, &de) < 0) snprintf(why, nwhy, "its answer does not decode: %.200s", de.msg);
  else o->type = meta->type;
  return 0;
}

static int peer_record(const web_ctx *x, selection *s, size_t budget, pprof_profile **ret, pp_err *err) {
  char path[64];
  snprintf(path, sizeof path, "/api/v1/profile?local=1&id=%lld", (long long)s->id);
  peer_rec o = {budget, NULL, NULL};
  web_fanout_info fi;
  memset(&fi, 0, sizeof fi);
  int r = web_fanout_get_one(x->fan, s->peer, path, budget, on_record, &o, &fi, err);
  if (r == PP_EINVAL) s->fail_status = 400;
  if (r < 0) return r;
  if (fi.failed) {
    s->fail_status = 502;
    return pp_err_set(err, PP_EIO, "the peer did not answer: %s", fi.missing);
  }
  if (!o.p) return pp_err_set(err, PP_EUSAGE, "no profile with id %lld at that peer", (long long)s->id);
  s->type = o.type ? o.type : "unknown";
  *ret = o.p;
  return 0;
}

/* The profile of a selection: its one record (id=, decoded within budget) or the merge of its
 * records (store_merged_info within budget), then its tag= filters applied. With id= the
 * selection's type becomes the record's. Errors as store_merged_info's (PP_EUSAGE: nothing). */
static int select_profile(const web_ctx *x, selection *s, size_t budget, pprof_profile **ret, size_t *ret_count,
                          store_merge_info *info, pp_err *err) {
  int r;
  if (s->id && s->peer) {
    r = peer_record(x, s, budget, ret, err);
    if (r == 0 && ret_count) *ret_count = 1;
    if (r == 0 && info) memset(info, 0, sizeof *info), info->records = 1;
  } else if (s->id) {
    store_row row;
    uint8_t *buf;
    size_t len;
    if ((r = store_read_row(x->h->st, s->id, &row, &buf, &len, err)) < 0) return r;
    int t = cfg_type_from_name(row.type);
    s->type = t >= 0 ? cfg_type_name[t] : "unknown";
    store_row_release(&row);
    pprof_limits lim;
    pprof_limits_default(&lim);
    lim.max_memory = budget;
    r = pprof_decode(buf, len, &lim, ret, err);
    free(buf);
    if (r == 0 && ret_count) *ret_count = 1;
    if (r == 0 && info) memset(info, 0, sizeof *info), info->records = 1;
  } else {
    /* the local store and the bucket's part taken with no segment deleted in between, else again
     * (a deletion is rare next to a merge: a few tries suffice; the last answers partial) */
    store_agg agg = s->agg == STORE_AGG_DEFAULT && s->type ? store_default_agg(s->type, false) : s->agg;
    bool per_series = agg != STORE_AGG_SUM && x->h->bucket_merged && x->h->bucket_only && x->fi && s->type;
    for (int tries = 1;; tries++) {
      uint64_t seq = store_deletions(x->h->st);
      bool last = tries == WEB_MERGE_TRIES;
      if (per_series) {
        r = merge_with_bucket(x, s, agg, seq, last, budget, ret, ret_count, info, err);
      } else {
        r = store_merged_info(x->h->st, s->m, s->nm, s->type, s->from, s->to, s->agg, x->max_records, budget, ret,
                              ret_count, info, err);
        if (r == 0 || r == PP_EUSAGE) r = from_bucket(x, s, seq, last, budget, r, ret, ret_count, info, err);
      }
      if (r != WEB_RACED) break;
    }
    if (!s->local && web_fanout_peers(x->fan) && (r == 0 || r == PP_EUSAGE)) r = fan_out(x, s, budget, r, ret, ret_count, info, err);
  }
  if (r == 0) pprof_filter_tags(*ret, s->tags.f, s->tags.n);
  return r;
}

/* ,"partial":..: whether shards or history are missing from the answer and which (web_fanout.h);
 * only when the collector has peers or history only the object store holds. */
static void partial(pp_buf *a, const web_ctx *x) {
  if (!x->fi || (!x->fi->asked && !web_fanout_peers(x->fan) && !x->fi->bucket.segments)) return;
  if (x->fi->bucket_read) /* this collector's history the object store held, read for the answer */
    pp_buf_printf(a, ",\"bucketRead\":{\"windows\":%u,\"profiles\":%llu}", x->fi->bucket_read,
                  (unsigned long long)x->fi->bucket_profiles);
  pp_buf_printf(a, ",\"partial\":%s", web_fanout_partial(x->fi) ? "true" : "false");
  if (x->fi->asked || web_fanout_peers(x->fan)) {
    pp_buf_printf(a, ",\"shards\":{\"asked\":%u,\"missing\":%u,\"partial\":%u", x->fi->asked, x->fi->failed,
                  x->fi->partial_peers);
    if (x->fi->failed || x->fi->partial_peers) pp_buf_puts(a, ",\"why\":"), web_json_str(a, x->fi->missing);
    pp_buf_puts(a, "}");
  }
  if (web_fanout_bucket_lacks(x->fi)) { /* this collector's own history the answer lacks */
    pp_buf_printf(a, ",\"bucketOnly\":{\"segments\":%llu,\"fromUnixNano\":%lld,\"toUnixNano\":%lld",
                  (unsigned long long)x->fi->bucket.segments, (long long)x->fi->bucket.from_ns,
                  (long long)x->fi->bucket.to_ns);
    if (x->fi->bucket_why[0]) pp_buf_puts(a, ",\"why\":"), web_json_str(a, x->fi->bucket_why);
    pp_buf_puts(a, "}");
  }
}

/* ---- sample types ------------------------------------------------------------------------------- */

/* raw as the answers show it (made valid UTF-8) equals shown. */
static bool shown_eq(const char *raw, const char *shown) {
  pp_buf b;
  pp_buf_init(&b, 0);
  web_json_text(&b, raw, strlen(raw), 0);
  bool eq = !b.failed && !strcmp(b.p ? b.p : "", shown);
  pp_buf_free(&b);
  return eq;
}

/* The sample type a request asks for: a name, an index or the default (pprof_sample_index),
 * or a name as the answers show it. */
static int pick_sample(const pprof_profile *pr, const char *want, char *why, size_t n) {
  pp_err err = {0};
  int si = pprof_sample_index(pr, want, &err);
  for (size_t i = 0; si < 0 && want && *want && i < pr->nsample_type; i++)
    if (shown_eq(pprof_str(pr, pr->sample_type[i].type), want)) si = (int)i;
  if (si < 0) snprintf(why, n, "%s", err.msg);
  return si;
}

/* The same sample type (by name) in another profile, or -1. */
static int same_sample(const pprof_profile *a, int si, const pprof_profile *b) {
  const char *name = pprof_str(a, a->sample_type[si].type);
  for (size_t i = 0; i < b->nsample_type; i++)
    if (!strcmp(pprof_str(b, b->sample_type[i].type), name)) return (int)i;
  return -1;
}

static long num_param(const web_params *p, const char *k, long dflt, long min, long max, bool *bad) {
  const char *v = web_param(p, k);
  if (!v) return dflt;
  char *end;
  long x = strtol(v, &end, 10);
  if (*end || end == v || x < min || x > max) *bad = true;
  return x;
}

static int cmp_desc_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x > y ? -1 : x < y;
}

static inline int64_t abs64(int64_t v) { return v < 0 ? -v : v; }

/* The k-th largest (0-based) of v[0..n), k < n; v is reordered. Selection instead of a sort:
 * expected O(n) for where max_nodes cuts a 137k-node tree. Each round splits the range three
 * ways around its middle element (totals repeat a lot); a pivot sequence that shrinks it too
 * slowly (a crafted profile) ends in a sort of what is left. */
static int64_t kth_largest(int64_t *v, size_t n, size_t k) {
  size_t lo = 0, hi = n; /* [lo, hi) holds the k-th */
  for (int round = 0; hi - lo > 1; round++) {
    if (round == 64) {
      qsort(v + lo, hi - lo, sizeof *v, cmp_desc_i64);
      return v[k];
    }
    int64_t pivot = v[lo + (hi - lo) / 2], t;
    size_t gt = lo, i = lo, lt = hi; /* [lo, gt) > pivot, [gt, i) == pivot, [lt, hi) < pivot */
    while (i < lt) {
      if (v[i] > pivot) t = v[gt], v[gt++] = v[i], v[i++] = t;
      else if (v[i] < pivot) t = v[--lt], v[lt] = v[i], v[i] = t;
      else i++;
    }
    if (k < gt) hi = gt;
    else if (k >= lt) lo = lt;
    else return pivot;
  }
  return v[k];
}

/* x / g as an int32 (g divides x), or false when it does not fit */
static bool scaled_i32(int64_t x, uint64_t g, int32_t *ret) {
  uint64_t m = (x < 0 ? 0 - (uint64_t)x : (uint64_t)x) / g;
  if (m > INT32_MAX) return false;
  *ret = x < 0 ? -(int32_t)m : (int32_t)m;
  return true;
}

static uint64_t gcd_u64(uint64_t a, uint64_t b) {
  while (b) {
    uint64_t r = a % b;
    a = b;
    b = r;
  }
  return a;
}

static size_t profile_bytes(const pprof_profile *p) { return p ? p->mem.reserved : 0; }

static void over_budget(web_resp *out, const char *what, size_t need, size_t budget) {
  char msg[400];
  snprintf(msg, sizeof msg,
           "%s took %.1f MiB, over this query's memory budget of %.1f MiB (--web-query-memory): narrow the "
           "selection (a shorter time range, fewer series) or ask for fewer nodes",
           what, (double)need / 1048576, (double)budget / 1048576);
  web_resp_error(out, 422, "execution", msg);
}

/* The buffer as the 200 answer, or 422 naming the budget when it went past it; frees it. */
static void answer(const web_ctx *x, web_resp *out, const char *what, const char *ctype, pp_buf *b) {
  if (b->over) over_budget(out, what, b->len, x->budget);
  else web_resp_buf(out, 200, ctype, b);
  pp_buf_free(b);
}

/* What an answer was made of (store_merge_info.resolution_ns): "raw" while every window was
 * answered from its profiles (or rollups equal to them), else the widest rollup that stood in
 * for profiles tiered retention deleted. */
static const char *const resolution_names[] = {"raw", "10m", "1h"}; /* by rank, finest first */

static int resolution_rank_ns(int64_t ns) { return ns >= STORE_ROLLUP_HOUR_NS ? 2 : ns >= STORE_ROLLUP_NS ? 1 : 0; }

static const char *resolution_name(int64_t ns) { return resolution_names[resolution_rank_ns(ns)]; }

/* A peer's "resolution" as a rank; 0 (raw) for anything else */
static int resolution_rank(const char *name) {
  for (int k = 2; name && k > 0; k--)
    if (!strcmp(name, resolution_names[k])) return k;
  return 0;
}

/* A merge stopped by its memory cap (store_merged_within, pprof_merger_set_limit) while it ran. */
static void over_budget_merging(web_resp *out, size_t budget, const pp_err *err) {
  char msg[1000];
  snprintf(msg, sizeof msg,
           "merging the profiles needed more, over this query's memory budget of %.1f MiB (--web-query-memory): "
           "narrow the selection (a shorter time range, fewer series) [%s]",
           (double)budget / 1048576, err && err->msg[0] ? err->msg : "the selection alone");
  web_resp_error(out, 422, "execution", msg);
}

static void store_error(const web_ctx *x, web_resp *out, int r, const pp_err *err, const selection *s) {
  if (s && s->fail_status) web_resp_error(out, s->fail_status, s->fail_status == 400 ? "bad_data" : "unavailable", err->msg);
  else if (r == PP_ELIMIT) over_budget_merging(out, x->budget, err);
  else if (r == PP_EUSAGE) web_resp_error(out, 404, "not_found", err->msg);
  else web_resp_error(out, 500, "internal", err->msg);
}

static void put_i64(pp_buf *b, int64_t v) { pp_buf_printf(b, "%lld", (long long)v); }

static void value_type(pp_buf *b, const pprof_profile *p, const pprof_value_type *t) {
  pp_buf_puts(b, "{\"type\":");
  web_json_str(b, pprof_str(p, t->type));
  pp_buf_puts(b, ",\"unit\":");
  web_json_str(b, pprof_str(p, t->unit));
  pp_buf_puts(b, "}");
}

/* ---- /api/v1/render --------------------------------------------------------------------------- */

/* The flame graph's nodes, pruned to max_nodes (the largest |total| summed over inputs; a node
 * needs its parent kept, which ids guarantee to be decided first: a parent is created before its
 * children), and the names they use, each once, into names. Into nodes: the JSON array of
 * [name, parent, self, total(, baseSelf, baseTotal)]; or, with bin (encoding=binary), the object
 * {"offset":O,"count":N,"values":V(,"scale":G)} while the block itself is appended to bin at
 * offset O: name and parent as N int32 each, then self, total(, baseSelf, baseTotal) as N
 * doubles each, or with G as N int32 each that G multiplies, all little-endian. A browser parses 100k nodes as JSON arrays in about as long as the server takes
 * to compute them; typed arrays over the block cost it nothing. */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the binary render encoding writes host-order int32 and doubles: little-endian hosts only"
#endif
static int write_nodes(const pprof_multitree *t, size_t nin, long max_nodes, pp_buf *names, pp_buf *nodes,
                       pp_buf *bin, size_t *ret_kept, size_t *ret_pruned) {
  int64_t *key = malloc(t->nnodes * sizeof *key), *sorted = malloc(t->nnodes * sizeof *sorted);
  int32_t *remap = malloc(t->nnodes * sizeof *remap);
  /* binary: the kept nodes' ids and name indexes, written column by column at the end */
  int32_t *kid = bin ? malloc(t->nnodes * sizeof *kid) : NULL, *kname = bin ? malloc(t->nnodes * sizeof *kname) : NULL;
  htab nameidx;
  int r = htab_init(&nameidx, 1024, 0);
  size_t kept = 0, pruned = 0;
  if (!key || !sorted || !remap || (bin && (!kid || !kname)) || r < 0) {
    r = PP_ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < t->nnodes; i++) {
    key[i] = 0;
    for (size_t k = 0; k < nin; k++) key[i] += abs64(t->total[i * nin + k]);
    sorted[i] = key[i];
  }
  int64_t threshold = kth_largest(sorted, t->nnodes, (size_t)max_nodes < t->nnodes ? (size_t)max_nodes - 1 : t->nnodes - 1);
  if (!bin) pp_buf_put(nodes, "[", 1);
  for (size_t i = 0; i < t->nnodes; i++) {
    remap[i] = -1;
    bool parent_ok = i == 0 || remap[t->parent[i]] >= 0;
    if (parent_ok && key[i] >= threshold && kept < (size_t)max_nodes) {
      /* a name is interned by its bytes and written once, whatever it holds: the array's
       * length always equals the indexes handed out */
      uint32_t ni;
      int added = htab_intern(&nameidx, t->names[i], strlen(t->names[i]), &ni);
      if (added < 0) {
        r = added;
        goto out;
      }
      if (added == 1) {
        if (ni) pp_buf_put(names, ",", 1);
        web_json_str(names, t->names[i]);
      }
      if (bin) {
        kid[kept] = (int32_t)i;
        kname[kept] = (int32_t)ni;
      } else {
        if (kept) pp_buf_put(nodes, ",", 1);
        pp_buf_printf(nodes, "[%u,%d,%lld,%lld", ni, i ? remap[t->parent[i]] : -1, (long long)t->self[i * nin],
                      (long long)t->total[i * nin]);
        if (nin == 2) pp_buf_printf(nodes, ",%lld,%lld", (long long)t->self[i * nin + 1], (long long)t->total[i * nin + 1]);
        pp_buf_put(nodes, "]", 1);
      }
      remap[i] = (int32_t)kept++;
    } else {
      pruned++;
    }
  }
  if (!bin) {
    pp_buf_put(nodes, "]", 1);
  } else {
    /* the values as int32 times one factor when they are all multiples of a factor (below 2^53,
     * so a double holds it exactly) that brings them into int32's range: a CPU profile's are
     * multiples of its period, and the block is 40% smaller; else as doubles */
    uint64_t g = 0;
    for (size_t c = 0; c < 2 * nin; c++) {
      const int64_t *col = c % 2 ? t->total : t->self;
      for (size_t j = 0; j < kept && g != 1; j++) {
        int64_t x = col[(size_t)kid[j] * nin + c / 2];
        g = gcd_u64(g, x < 0 ? 0 - (uint64_t)x : (uint64_t)x);
      }
    }
    if (g == 0) g = 1; /* every value 0 */
    bool small = g < ((uint64_t)1 << 53);
    for (size_t c = 0; small && c < 2 * nin; c++) {
      const int64_t *col = c % 2 ? t->total : t->self;
      int32_t q;
      for (size_t j = 0; j < kept && small; j++) small = scaled_i32(col[(size_t)kid[j] * nin + c / 2], g, &q);
    }
    pp_buf_printf(nodes, "{\"offset\":%zu,\"count\":%zu,\"values\":%zu", bin->len, kept, 2 * nin);
    if (small) pp_buf_printf(nodes, ",\"scale\":%llu", (unsigned long long)g);
    pp_buf_put(nodes, "}", 1);
    pp_buf_put(bin, kname, kept * sizeof *kname);
    for (size_t j = 0; j < kept; j++) kname[j] = kid[j] ? remap[t->parent[kid[j]]] : -1; /* parents */
    pp_buf_put(bin, kname, kept * sizeof *kname);
    double *v = malloc((kept ? kept : 1) * sizeof *v);
    if (!v) {
      r = PP_ENOMEM;
      goto out;
    }
    for (size_t c = 0; c < 2 * nin; c++) { /* self, total(, baseSelf, baseTotal) */
      const int64_t *col = c % 2 ? t->total : t->self;
      if (small) {
        for (size_t j = 0; j < kept; j++) /* (kname is free again: its parents are written) */
          scaled_i32(col[(size_t)kid[j] * nin + c / 2], g, &kname[j]);
        pp_buf_put(bin, kname, kept * sizeof *kname);
      } else {
        for (size_t j = 0; j < kept; j++) v[j] = (double)col[(size_t)kid[j] * nin + c / 2];
        pp_buf_put(bin, v, kept * sizeof *v);
      }
    }
    free(v);
  }
  r = 0;
out:
  htab_free(&nameidx);
  free(key);
  free(sorted);
  free(remap);
  free(kid);
  free(kname);
  *ret_kept = kept;
  *ret_pruned = pruned;
  return r;
}

/* The top table, with the base's values by function name (functions only the base has are rows
 * too, with flat and cum 0, or a comparison would not show what vanished). */
static int write_top(const pprof_top *tc, const pprof_top *tb, long topn, pp_buf *top) {
  htab bnames;
  memset(&bnames, 0, sizeof bnames);
  bool *in_cmp = NULL;
  size_t rows = 0;
  int r = 0;
  if (tb) {
    /* the base's functions by name (top tables are sorted by value), and which the comparison has */
    if (htab_init(&bnames, tb->nfuncs + 16, 0) < 0 || !(in_cmp = calloc(tb->nfuncs + 1, sizeof *in_cmp))) {
      r = PP_ENOMEM;
      goto out;
    }
    for (size_t k = 0; k < tb->nfuncs && r == 0; k++) {
      uint32_t ix;
      if (htab_intern(&bnames, tb->funcs[k].name, strlen(tb->funcs[k].name), &ix) < 0) r = PP_ENOMEM;
    }
    if (r < 0) goto out;
  }
  for (size_t i = 0; i < tc->nfuncs; i++) {
    int64_t k = tb ? htab_find(&bnames, tc->funcs[i].name, strlen(tc->funcs[i].name)) : -1;
    if (k >= 0) in_cmp[k] = true;
    if (i >= (size_t)topn) continue;
    if (rows++) pp_buf_put(top, ",", 1);
    pp_buf_puts(top, "{\"name\":");
    web_json_str(top, tc->funcs[i].name);
    pp_buf_printf(top, ",\"flat\":%lld,\"cum\":%lld", (long long)tc->funcs[i].flat, (long long)tc->funcs[i].cum);
    if (tb)
      pp_buf_printf(top, ",\"baseFlat\":%lld,\"baseCum\":%lld", (long long)(k >= 0 ? tb->funcs[k].flat : 0),
                     (long long)(k >= 0 ? tb->funcs[k].cum : 0));
    pp_buf_put(top, "}", 1);
  }
  for (size_t k = 0; tb && k < tb->nfuncs && rows < (size_t)topn; k++) {
    if (in_cmp[k]) continue;
    if (rows++) pp_buf_put(top, ",", 1);
    pp_buf_puts(top, "{\"name\":");
    web_json_str(top, tb->funcs[k].name);
    pp_buf_printf(top, ",\"flat\":0,\"cum\":0,\"baseFlat\":%lld,\"baseCum\":%lld", (long long)tb->funcs[k].flat,
                   (long long)tb->funcs[k].cum);
    pp_buf_put(top, "}", 1);
  }
out:
  free(in_cmp);
  htab_free(&bnames);
  return r;
}

/* One focus tree as {"names":[..],"nodes":[..],"pruned":{..}}, in render's node format (bin: as
 * write_nodes). */
static int write_focus_tree(const pprof_multitree *t, long max_nodes, size_t budget, pp_buf *out, pp_buf *bin) {
  pp_buf names, nodes;
  pp_buf_init(&names, budget);
  pp_buf_init(&nodes, budget);
  size_t kept = 0, pruned = 0;
  int r = write_nodes(t, t->ninputs, max_nodes, &names, &nodes, bin, &kept, &pruned);
  pp_buf_puts(out, "{\"names\":[");
  pp_buf_put(out, names.p, names.len);
  pp_buf_puts(out, "],\"nodes\":");
  pp_buf_put(out, nodes.p, nodes.len);
  pp_buf_printf(out, ",\"pruned\":{\"nodes\":%zu,\"kept\":%zu}}", pruned, kept);
  if (names.failed || nodes.failed) out->failed = true, out->over = out->over || names.over || nodes.over;
  pp_buf_free(&names);
  pp_buf_free(&nodes);
  return r;
}

/* render's focus=NAME: the function's callers and callees trees and its lines (pprof_focus), as
 * the value of "focus" (null when no sample has the function). Each tree gets half of node_cap
 * while it is built and max_nodes when written; at most topn lines. */
static int write_focus(const pprof_profile *const *ps, const int *sis, size_t nin, const char *name, long max_nodes,
                       long topn, size_t node_cap, size_t budget, pp_buf *out, pp_buf *bin, pp_err *err) {
  pprof_focus f;
  int r = pprof_focus_compute(ps, sis, nin, name, node_cap / 2 ? node_cap / 2 : 1, &f, err);
  if (r < 0) return r;
  if (!f.found) {
    pp_buf_puts(out, "null");
    pprof_focus_release(&f);
    return 0;
  }
  pp_buf_puts(out, "{\"name\":");
  web_json_str(out, name);
  pp_buf_printf(out, ",\"flat\":%lld,\"cum\":%lld", (long long)f.flat[0], (long long)f.cum[0]);
  if (nin == 2) pp_buf_printf(out, ",\"baseFlat\":%lld,\"baseCum\":%lld", (long long)f.flat[1], (long long)f.cum[1]);
  pp_buf_puts(out, ",\"callers\":");
  if (r == 0) r = write_focus_tree(&f.callers, max_nodes, budget, out, bin);
  pp_buf_puts(out, ",\"callees\":");
  if (r == 0) r = write_focus_tree(&f.callees, max_nodes, budget, out, bin);
  pp_buf_puts(out, ",\"lines\":[");
  for (size_t i = 0; i < f.nlines && i < (size_t)topn; i++) {
    const pprof_focus_line *l = &f.lines[i];
    if (i) pp_buf_put(out, ",", 1);
    pp_buf_puts(out, "{\"file\":");
    web_json_str(out, l->file);
    pp_buf_printf(out, ",\"line\":%lld,\"flat\":%lld,\"cum\":%lld", (long long)l->line, (long long)l->flat[0],
                  (long long)l->cum[0]);
    if (nin == 2) pp_buf_printf(out, ",\"baseFlat\":%lld,\"baseCum\":%lld", (long long)l->flat[1], (long long)l->cum[1]);
    pp_buf_put(out, "}", 1);
  }
  pp_buf_puts(out, "]}");
  pprof_focus_release(&f);
  if (r < 0) pp_err_set(err, r, "out of memory");
  return r;
}

/* group_by=KEY on render: the root's children become one frame per value of the sample label
 * KEY, as `go tool pprof -tagroot=KEY` makes them (pprof_tag_root), in both profiles. */
static int group_by_root(const web_params *p, pprof_profile *cmp, pprof_profile *base, char *why, size_t n) {
  const char *key = web_param(p, "group_by");
  pp_err err = {0};
  int r = 0;
  if (key && (r = pprof_tag_root(cmp, key, WEB_MAX_GROUPS, &err)) == 0 && base)
    r = pprof_tag_root(base, key, WEB_MAX_GROUPS, &err);
  if (r < 0) snprintf(why, n, "%s%s", err.msg, r == PP_ELIMIT ? ": narrow the selection with tag=" : "");
  return r;
}

/* Node values: [name, parent, self, total] and, with a base, [.., baseSelf, baseTotal]. What
 * pruning hid is total - self - sum(children). */
void web_api_render(const web_ctx *x, const web_params *p, web_resp *out) {
  selection s, b;
  bool has_base = false, bad = false;
  char why[600];
  if (parse_selection(x, p, &s, true, why, sizeof why) < 0 || parse_base(x, p, &s, &b, &has_base, why, sizeof why) < 0) {
    web_resp_error(out, 400, "bad_data", why);
    return;
  }
  long max_nodes = num_param(p, "max_nodes", 4096, 1, 200000, &bad);
  long topn = num_param(p, "top", 500, 1, 20000, &bad);
  if (bad) {
    web_resp_error(out, 400, "bad_data", "max_nodes: 1..200000, top: 1..20000");
    return;
  }
  const char *focus = web_param(p, "focus");
  if (focus && !*focus) {
    web_resp_error(out, 400, "bad_data", "focus: want a function name, as in names");
    return;
  }
  if (web_param(p, "group_by") && !*web_param(p, "group_by")) {
    web_resp_error(out, 400, "bad_data", "group_by: want a sample label's key");
    return;
  }
  const char *enc = web_param(p, "encoding");
  if (enc && strcmp(enc, "json") && strcmp(enc, "binary")) {
    web_resp_error(out, 400, "bad_data", "encoding: json (the default) or binary");
    return;
  }
  bool binary = enc && !strcmp(enc, "binary");
  pprof_profile *cmp = NULL, *base = NULL;
  size_t ncmp = 0, nbase = 0;
  pp_err err = {0};
  pprof_multitree t;
  memset(&t, 0, sizeof t);
  bool have_t = false, have_tc = false, have_tb = false;
  pprof_top tc, tb;
  pp_buf names, nodes, top, a, fb, bin, body;
  pp_buf_init(&bin, x->budget);
  pp_buf_init(&body, x->budget);
  pp_buf_init(&fb, x->budget);
  pp_buf_init(&names, x->budget);
  pp_buf_init(&nodes, x->budget);
  pp_buf_init(&top, x->budget);
  pp_buf_init(&a, x->budget);
  /* the merges run within the budget (each the part the ones before left), so an over-budget
   * selection stops while merging instead of after */
  store_merge_info ci = {0}, bi = {0};
  int r = select_profile(x, &s, x->budget, &cmp, &ncmp, &ci, &err);
  if (r == 0 && has_base && profile_bytes(cmp) >= x->budget) {
    r = PP_ELIMIT;
    err.msg[0] = '\0';
  }
  if (r == 0 && has_base) r = select_profile(x, &b, x->budget - profile_bytes(cmp), &base, &nbase, &bi, &err);
  if (r < 0) {
    store_error(x, out, r, &err, &s);
    goto done;
  }
  if ((r = group_by_root(p, cmp, base, why, sizeof why)) < 0) {
    web_resp_error(out, r == PP_ELIMIT ? 422 : 500, r == PP_ELIMIT ? "execution" : "internal", why);
    goto done;
  }
  size_t used = profile_bytes(cmp) + profile_bytes(base);
  if (used > x->budget) {
    over_budget(out, "the merged profiles", used, x->budget);
    goto done;
  }
  int si = pick_sample(cmp, web_param(p, "sample"), why, sizeof why), bsi = 0;
  if (si >= 0 && base && (bsi = same_sample(cmp, si, base)) < 0) {
    snprintf(why, sizeof why, "the base has no sample type %s", pprof_str(cmp, cmp->sample_type[si].type));
    si = -1;
  }
  if (si < 0) {
    web_resp_error(out, 400, "bad_data", why);
    goto done;
  }
  const pprof_profile *ps[2] = {cmp, base};
  int sis[2] = {si, bsi};
  size_t nin = base ? 2 : 1;
  size_t node_cap = (x->budget - used) / NODE_BYTES;
  r = pprof_multitree_compute(ps, sis, nin, node_cap ? node_cap : 1, &t, &err);
  if (r == PP_ELIMIT) {
    over_budget(out, "the call tree", used + node_cap * NODE_BYTES, x->budget);
    goto done;
  }
  if (r < 0) {
    web_resp_error(out, 500, "internal", err.msg);
    goto done;
  }
  have_t = true;
  used += t.nnodes * NODE_BYTES;
  size_t kept = 0, pruned = 0;
  if (write_nodes(&t, nin, max_nodes, &names, &nodes, binary ? &bin : NULL, &kept, &pruned) < 0 ||
      pprof_top_compute(cmp, si, &tc, NULL) < 0) {
    web_resp_error(out, 500, "internal", "out of memory");
    goto done;
  }
  have_tc = true;
  if (base && pprof_top_compute(base, bsi, &tb, NULL) < 0) {
    web_resp_error(out, 500, "internal", "top table failed");
    goto done;
  }
  have_tb = base != NULL;
  if (write_top(&tc, have_tb ? &tb : NULL, topn, &top) < 0) {
    web_resp_error(out, 500, "internal", "out of memory");
    goto done;
  }
  if (focus && (r = write_focus(ps, sis, nin, focus, max_nodes, topn, (x->budget - used) / NODE_BYTES, x->budget, &fb,
                                binary ? &bin : NULL, &err)) < 0) {
    if (r == PP_ELIMIT) over_budget(out, "the focus trees", x->budget, x->budget);
    else web_resp_error(out, 500, "internal", err.msg);
    goto done;
  }
  pp_buf_puts(&a, "{\"status\":\"success\",\"data\":{\"profileType\":");
  web_json_str(&a, s.type);
  pp_buf_puts(&a, ",\"sampleType\":");
  value_type(&a, cmp, &cmp->sample_type[si]);
  /* truncated: more records matched than a merge reads (--web-max-records): the total is the
   * newest ones' only, and the answer says so rather than pass it off as the whole range's */
  pp_buf_printf(&a, ",\"profiles\":%zu,\"resolution\":\"%s\",\"truncated\":%s,\"total\":%lld,\"names\":[", ncmp,
                resolution_name(ci.resolution_ns > bi.resolution_ns ? ci.resolution_ns : bi.resolution_ns),
                ci.truncated || bi.truncated ? "true" : "false", (long long)tc.total);
  pp_buf_put(&a, names.p, names.len);
  pp_buf_puts(&a, "],\"nodes\":");
  pp_buf_put(&a, nodes.p, nodes.len);
  pp_buf_printf(&a, ",\"pruned\":{\"nodes\":%zu,\"kept\":%zu},\"top\":[", pruned, kept);
  pp_buf_put(&a, top.p, top.len);
  pp_buf_puts(&a, "],\"sampleTypes\":[");
  for (size_t i = 0; i < cmp->nsample_type; i++) {
    if (i) pp_buf_put(&a, ",", 1);
    value_type(&a, cmp, &cmp->sample_type[i]);
  }
  pp_buf_put(&a, "]", 1);
  if (have_tb) pp_buf_printf(&a, ",\"baseTotal\":%lld,\"baseProfiles\":%zu", (long long)tb.total, nbase);
  if (focus) pp_buf_puts(&a, ",\"focus\":"), pp_buf_put(&a, fb.p, fb.len);
  partial(&a, x);
  pp_buf_puts(&a, "}}");
  if (names.failed || nodes.failed || top.failed || fb.failed || bin.failed)
    a.failed = true, a.over = names.over || nodes.over || top.over || fb.over || bin.over;
  used += names.len + nodes.len + top.len + fb.len + bin.len;
  if (binary && !a.failed) {
    /* "PPRB", version 1 and the JSON's length (uint32 each, little-endian), the JSON, zeros up
     * to a multiple of 8 (the doubles' alignment), then the node blocks (docs/api.md) */
    uint32_t head[3] = {0, 1, (uint32_t)a.len}; /* a.len checked below */
    memcpy(&head[0], "PPRB", 4);
    static const char zeros[8];
    /* the body copies the JSON and the blocks, which used and a already count once */
    if (a.len > UINT32_MAX || used + 2 * a.len + bin.len + sizeof head + 8 > x->budget) {
      a.failed = a.over = true;
    } else {
      pp_buf_put(&body, head, sizeof head);
      pp_buf_put(&body, a.p, a.len);
      pp_buf_put(&body, zeros, (8 - (sizeof head + a.len) % 8) % 8);
      pp_buf_put(&body, bin.p, bin.len);
      if (body.failed) a.failed = true, a.over = body.over;
    }
  }
  if (a.failed && a.over) over_budget(out, "the answer", used + a.len, x->budget);
  else if (binary && !a.failed) web_resp_buf(out, 200, "application/vnd.pprof-controller.render", &body);
  else web_resp_buf(out, 200, "application/json", &a);
done:
  if (have_tc) pprof_top_release(&tc);
  if (have_tb) pprof_top_release(&tb);
  if (have_t) pprof_multitree_release(&t);
  pprof_free(cmp);
  pprof_free(base);
  pp_buf_free(&names);
  pp_buf_free(&fb);
  pp_buf_free(&nodes);
  pp_buf_free(&top);
  pp_buf_free(&a);
  pp_buf_free(&bin);
  pp_buf_free(&body);
}

/* ---- listings over every shard ------------------------------------------------------------------ */

/* A listing's answer (timeline, series, profiles, targets) on a collector with peers: each
 * peer's answer to the same request (local=1) is appended to the data array, every entry of it
 * marked "peer": URL, so an entry's ids can be asked of that peer (id= and peer=). Series live on
 * one shard each, so the entries do not repeat (but a `shard: all` monitor's, once per shard). */
typedef struct listing {
  pp_buf *b;           /* the answer, its data array open */
  size_t entries;      /* in it so far, the local ones counted */
  int coarsest;        /* timeline: the coarsest resolution seen (0 raw, 1 10m, 2 1h) */
  long long skipped, unreadable; /* timeline: the peers' rollupsSkipped and recordsUnreadable */
} listing;

/* A peer's listing: its data array, held by *doc; NULL (and *doc NULL) with why when the answer
 * is not one. */
static json_t *peer_listing(const char *body, size_t len, json_t **doc, char *why, size_t nwhy) {
  json_error_t je;
  *doc = json_loadb(body, len, 0, &je);
  json_t *data = json_object_get(*doc, "data");
  if (json_is_array(data)) return data;
  snprintf(why, nwhy, "its answer is not a listing: %.200s", *doc ? "no data array" : je.text);
  json_decref(*doc);
  *doc = NULL;
  return NULL;
}

static int on_listing(void *ud, const char *peer, const char *body, size_t len, const web_fanout_meta *meta, char *why,
                      size_t nwhy, pp_err *err) {
  (void)meta;
  listing *l = ud;
  json_t *doc, *data = peer_listing(body, len, &doc, why, nwhy);
  if (!data) return 0;
  size_t i;
  json_t *e;
  int r = 0;
  json_array_foreach(data, i, e) {
    if (!json_is_object(e)) continue;
    json_object_set_new(e, "peer", json_string(peer));
    char *t = json_dumps(e, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!t) {
      r = pp_err_set(err, PP_ENOMEM, "out of memory");
      break;
    }
    if (l->entries++) pp_buf_put(l->b, ",", 1);
    pp_buf_puts(l->b, t);
    free(t);
  }
  int rank = resolution_rank(json_string_value(json_object_get(doc, "resolution")));
  if (rank > l->coarsest) l->coarsest = rank;
  json_t *v = json_object_get(doc, "rollupsSkipped");
  if (json_is_integer(v) && json_integer_value(v) > 0) l->skipped += json_integer_value(v);
  v = json_object_get(doc, "recordsUnreadable");
  if (json_is_integer(v) && json_integer_value(v) > 0) l->unreadable += json_integer_value(v);
  json_decref(doc);
  if (r == 0 && l->b->over) r = pp_err_set(err, PP_ELIMIT, "the peers' entries passed the answer's budget");
  return r;
}

/* Appends the peers' entries to l (nothing with local=1 or without peers): 0; PP_EINVAL when the
 * request is too long to pass on; PP_ELIMIT, PP_ENOMEM. */
static int listing_fan_out(const web_ctx *x, const web_params *p, const char *route, listing *l, pp_err *err) {
  const char *local = web_param(p, "local");
  if ((local && !strcmp(local, "1")) || !web_fanout_peers(x->fan)) return 0;
  char path[WEB_FANOUT_MAX_PATH];
  if (web_fanout_path(route, p->k, p->v, p->n, path, sizeof path) < 0)
    return pp_err_set(err, PP_EINVAL, "the query is too long to pass on to the peers");
  /* the peers' bodies, parsed one at a time, share half of what the answer has left */
  size_t left = x->budget > l->b->len ? (x->budget - l->b->len) / 2 : 1;
  return web_fanout_get(x->fan, path, left ? left : 1, on_listing, l, x->fi, err);
}

static void listing_error(const web_ctx *x, web_resp *out, int r, const pp_err *err) {
  if (r == PP_ELIMIT) {
    /* not over_budget: the peers' entries were cut off where they passed it, so what the whole
     * answer would take is not known */
    char msg[300];
    snprintf(msg, sizeof msg,
             "the answer with the peers' entries passed this query's memory budget of %.1f MiB (--web-query-memory): "
             "narrow the selection, or ask each shard with local=1",
             (double)x->budget / 1048576);
    web_resp_error(out, 422, "execution", msg);
  } else {
    web_resp_error(out, r == PP_EINVAL ? 400 : 500, r == PP_EINVAL ? "bad_data" : "internal", err->msg);
  }
}

/* ---- /api/v1/timeline ------------------------------------------------------------------------- */

/* The column of a record's sample types ("type/unit,...") that `want` names (by name, as stored or
 * as shown, or by index), or the last (Go's default for every type but allocs); -1 if none. */
static int timeline_column(const char *sample_types, const char *want) {
  int col = -1, k = 0;
  char *types = strdup(sample_types ? sample_types : "");
  if (!types) return -1;
  char *save = NULL;
  for (char *tok = strtok_r(types, ",", &save); tok; tok = strtok_r(NULL, ",", &save), k++) {
    char *slash = strchr(tok, '/');
    if (slash) *slash = '\0';
    if (want && (!strcmp(tok, want) || shown_eq(tok, want) || (atoi(want) == k && want[0] >= '0' && want[0] <= '9'))) col = k;
  }
  free(types);
  if (!want) col = k - 1;
  return col;
}

static long long column_value(const char *totals, int col) {
  const char *s = totals ? totals : "";
  for (int k = 0; k < col && s; k++) {
    s = strchr(s, ',');
    if (s) s++;
  }
  return s ? strtoll(s, NULL, 10) : 0;
}

/* A timeline that filters (tag=), groups (group_by=) or follows a function (function=) reads
 * every raw record as a profile (store_each_profile: built from its segment's symbols, each
 * table loaded once), its figures computed here, one web_point per row. */
typedef struct tl_decode {
  const store_row *rows;
  const size_t *pick; /* input i -> row */
  const int *col;     /* row -> sample column */
  web_point *pts;     /* row -> figures */
  bool *unreadable;   /* row -> left out (see tl_consume) */
  size_t nunreadable;
  web_point_opts o;
  htab groups;
  size_t bytes, budget; /* what the points hold, and may */
} tl_decode;

/* A record that cannot be read (retention deleted it after the listing, or it is damaged) is
 * left out of its series and counted ("recordsUnreadable"), as a merge skips it; one over the
 * memory share (422) or out of memory (500) fails the answer. */
static int tl_consume(void *ud, size_t i, const pprof_profile *pr, const pp_err *input_err, pp_err *err) {
  tl_decode *d = ud;
  size_t row = d->pick[i];
  if (!pr) {
    if (input_err->code == PP_ELIMIT || input_err->code == PP_ENOMEM) {
      *err = *input_err;
      return input_err->code;
    }
    d->unreadable[row] = true;
    d->nunreadable++;
    return 0;
  }
  if (d->col[row] >= (int)pr->nsample_type) return pp_err_set(err, PP_EINVAL, "record %lld: no sample column %d", (long long)d->rows[row].id, d->col[row]);
  int r = web_point_compute(pr, d->col[row], &d->o, &d->groups, &d->pts[row], err);
  d->bytes += d->pts[row].ngroups * 3 * sizeof(int64_t) + sizeof(web_point);
  if (r == 0 && d->bytes > d->budget)
    r = pp_err_set(err, PP_ELIMIT, "the timeline's points took more than %zu bytes", d->budget);
  return r;
}

/* One entry's points: [start, end, value] (a rollup's [start, end, value, resolution, count]);
 * with decoded figures, value = the group's (or the filtered) total; then "ids", and with
 * function= "flat" and "cum", aligned with the points. g < 0: no group. */
static void tl_entry(pp_buf *b, const store_row *rows, const uint32_t *order, size_t k0, size_t k1, const long long *val,
                     const web_point *pts, long g, const char *function, const char *group_by, const char *group) {
  pp_buf_puts(b, "{\"labels\":");
  web_json_labels(b, rows[order[k0]].labels_json);
  if (group_by) {
    pp_buf_puts(b, ",\"tag\":{");
    web_json_str(b, group_by);
    pp_buf_put(b, ":", 1);
    web_json_str(b, group);
    pp_buf_put(b, "}", 1);
  }
  pp_buf_puts(b, ",\"points\":[");
  for (size_t k = k0; k < k1; k++) {
    const store_row *r = &rows[order[k]];
    const web_point *w = pts ? &pts[order[k]] : NULL;
    long long v = !w ? val[order[k]] : g < 0 ? w->total : (size_t)g < w->ngroups ? w->vals[g * 3] : 0;
    /* a rollup's point says its width and how many profiles it stands for (its value is
     * their mean) */
    if (r->id < 0)
      pp_buf_printf(b, "%s[%lld,%lld,%lld,\"%s\",%lld]", k > k0 ? "," : "", (long long)r->start_ns, (long long)r->end_ns, v,
                    resolution_name(r->end_ns - r->start_ns + 1), (long long)r->count);
    else
      pp_buf_printf(b, "%s[%lld,%lld,%lld]", k > k0 ? "," : "", (long long)r->start_ns, (long long)r->end_ns, v);
  }
  pp_buf_puts(b, "],\"ids\":[");
  for (size_t k = k0; k < k1; k++) {
    if (rows[order[k]].id <= 0) pp_buf_printf(b, "%snull", k > k0 ? "," : ""); /* a rollup's, the bucket's */
    else pp_buf_printf(b, "%s%lld", k > k0 ? "," : "", (long long)rows[order[k]].id);
  }
  pp_buf_put(b, "]", 1);
  for (int f = 1; function && f <= 2; f++) {
    pp_buf_puts(b, f == 1 ? ",\"flat\":[" : ",\"cum\":[");
    for (size_t k = k0; k < k1; k++) {
      const web_point *w = &pts[order[k]];
      long long v = g < 0 ? (f == 1 ? w->flat : w->cum) : (size_t)g < w->ngroups ? w->vals[g * 3 + f] : 0;
      pp_buf_printf(b, "%s%lld", k > k0 ? "," : "", v);
    }
    pp_buf_put(b, "]", 1);
  }
  pp_buf_put(b, "}", 1);
}

/* The records only the object store holds among a listing's rows (bucket_rows), for a decoded
 * timeline to read: ids[i] the cache's id of row i (0: a local row, or a rollup's), valid while
 * the cache stays as gen; held: the range the listing named; kept: how many of the rows are the
 * bucket's. */
typedef struct bucket_listing {
  int64_t *ids;
  uint64_t gen;
  upload_bucket_only held;
  size_t kept;
} bucket_listing;

/* A timeline's or /api/v1/profiles' rows (*rows, *n: the local store's, oldest first; seq:
 * store_deletions before they were listed) with the points only the object store holds put in
 * among them by end time (id 0), the newest limit of all kept, when the window meets that
 * history and it can be read (as a sum can: bucket.h); else, or when reading fails, the answer
 * says it is partial (bucket_outcome). With bl (a decoded timeline: its points need the
 * records), where to read them (bucket_listing; bl->ids freed by the caller); without the hook
 * that reads them, a decoded timeline does not read the bucket. WEB_RACED: *rows freed, ask
 * again; 0; PP_ENOMEM. */
static int bucket_rows(const web_ctx *x, const selection *s, uint64_t seq, bool last, bucket_listing *bl, size_t limit,
                       store_row **rows, size_t *n, pp_err *err) {
  if (!x->h->bucket_only || !x->fi) return 0;
  if (!x->h->bucket_points || (bl && !x->h->bucket_each_profile)) return (void)recheck_bucket(x, s), 0;
  store_row *b = NULL;
  size_t nb = 0;
  upload_bucket_only held = {0};
  pp_err berr = {0};
  uint64_t gen = 0;
  int br = x->h->bucket_points(x->h->ud, seq, s->m, s->nm, s->type, s->from, s->to, limit, &b, &nb, &gen, &held, &berr);
  int o = bucket_outcome(x, s, br, last, &held, &berr, err);
  if (o == WEB_RACED) store_rows_free(*rows, *n), *rows = NULL, *n = 0;
  if (o != WEB_READ || !nb) return store_rows_free(b, nb), o == WEB_READ ? 0 : o;
  store_row *all = malloc((*n + nb) * sizeof *all);
  int64_t *ids = bl ? calloc(*n + nb, sizeof *ids) : NULL;
  if (!all || (bl && !ids)) {
    free(all);
    free(ids);
    store_rows_free(b, nb);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  size_t i = 0, j = 0, k = 0;
  while (i < *n || j < nb) {
    if (j == nb || (i < *n && (*rows)[i].end_ns <= b[j].end_ns)) {
      all[k++] = (*rows)[i++];
      continue;
    }
    if (ids) ids[k] = b[j].id;
    all[k] = b[j++];
    all[k++].id = 0; /* the cache's ids name nothing a request can ask for */
  }
  free(*rows);
  free(b);
  /* the newest limit, as the store lists them */
  size_t drop = limit && k > limit ? k - limit : 0;
  for (size_t d = 0; d < drop; d++) store_row_release(&all[d]);
  memmove(all, all + drop, (k - drop) * sizeof *all);
  if (ids) memmove(ids, ids + drop, (k - drop) * sizeof *ids);
  *rows = all, *n = k - drop;
  size_t kept = 0;
  for (size_t d = 0; d < *n; d++) kept += all[d].id == 0; /* (the bucket's points kept) */
  x->fi->bucket_profiles += kept;
  if (bl) *bl = (bucket_listing){ids, gen, held, kept};
  return 0;
}

void web_api_timeline(const web_ctx *x, const web_params *p, web_resp *out) {
  selection s;
  char why[600];
  if (parse_selection(x, p, &s, true, why, sizeof why) < 0) {
    web_resp_error(out, 400, "bad_data", why);
    return;
  }
  const char *group_by = web_param(p, "group_by"), *function = web_param(p, "function");
  if (s.id || (group_by && !*group_by) || (function && !*function)) {
    web_resp_error(out, 400, "bad_data",
                   s.id ? "id: a timeline is of a selection, not of one profile" : "group_by and function: want a non-empty name");
    return;
  }
  bool decoded = s.tags.n || group_by || function;
  store_row *rows;
  size_t n;
  pp_err err = {0};
  bucket_listing bl = {0}; /* a decoded timeline's records only the object store holds */
  /* raw profiles, rollups where tiered retention deleted them (store_list_points), and the
   * points only the object store holds, listed with no segment deleted in between (else again,
   * as a merge: select_profile) */
  for (int tries = 1;; tries++) {
    uint64_t seq = store_deletions(x->h->st);
    if (store_list_points(x->h->st, s.m, s.nm, s.type, s.from, s.to, x->max_records, &rows, &n, &err) < 0) {
      web_resp_error(out, 500, "internal", err.msg);
      return;
    }
    int br = bucket_rows(x, &s, seq, tries == WEB_MERGE_TRIES, decoded ? &bl : NULL, x->max_records, &rows, &n, &err);
    if (br == WEB_RACED) continue;
    if (br < 0) {
      store_rows_free(rows, n);
      web_resp_error(out, 503, "unavailable", err.msg);
      return;
    }
    break;
  }
  /* a rollup's row ends 1 ns before its window does (store_list_points) */
  int64_t coarsest = 0;
  size_t skipped = 0;
  for (size_t i = 0; i < n; i++)
    if (rows[i].id < 0 && rows[i].end_ns - rows[i].start_ns + 1 > coarsest) coarsest = rows[i].end_ns - rows[i].start_ns + 1;
  const char *want = web_param(p, "sample");
  /* one series per label set, in the order first seen; its points in the rows' order */
  uint32_t *series = malloc((n + 1) * sizeof *series), *order = malloc((n + 1) * sizeof *order);
  size_t *first = malloc((n + 1) * sizeof *first), *start = calloc(n + 2, sizeof *start), *pick = malloc((n + 1) * sizeof *pick);
  long long *val = malloc((n + 1) * sizeof *val);
  int *cols = malloc((n + 1) * sizeof *cols);
  web_point *pts = decoded ? calloc(n + 1, sizeof *pts) : NULL;
  bool *unreadable = decoded ? calloc(n + 1, sizeof *unreadable) : NULL;
  htab ids;
  memset(&ids, 0, sizeof ids);
  tl_decode d;
  memset(&d, 0, sizeof d);
  bool ok = series && order && first && start && pick && val && cols && ((pts && unreadable) || !decoded) && htab_init(&ids, 64, 0) == 0 &&
            htab_init(&d.groups, 64, WEB_MAX_GROUPS) == 0;
  size_t nseries = 0, npick = 0;
  for (size_t i = 0; ok && i < n; i++) {
    int col = timeline_column(rows[i].sample_types, want);
    series[i] = UINT32_MAX;
    cols[i] = col;
    if (col < 0) continue;
    /* rollups cannot be split by label or function: a decoded timeline leaves them out */
    if (decoded && rows[i].id < 0) {
      skipped++;
      continue;
    }
    if (decoded) pick[npick++] = i;
    val[i] = column_value(rows[i].totals, col);
    uint32_t id;
    int added = htab_intern(&ids, rows[i].labels_json, strlen(rows[i].labels_json), &id);
    if (added < 0) ok = false;
    else if (added == 1) first[nseries++] = i;
    series[i] = id;
    start[id + 1]++;
  }
  int status = ok ? 200 : 500;
  if (ok && decoded && npick) {
    d.rows = rows, d.col = cols, d.pts = pts, d.unreadable = unreadable;
    d.o = (web_point_opts){s.tags.f, s.tags.n, group_by, function};
    d.budget = x->budget / 4;
    pprof_limits lim;
    pprof_limits_default(&lim);
    lim.max_memory = x->budget / 4; /* one record's profile at a time */
    /* the local records (pick), then the object store's (bpick, read from its cache) */
    int64_t *pids = malloc(npick * sizeof *pids), *bids = malloc(npick * sizeof *bids);
    size_t *bpick = malloc(npick * sizeof *bpick), nl = 0, nbk = 0;
    int r = pids && bids && bpick ? 0 : pp_err_set(&err, PP_ENOMEM, "out of memory");
    for (size_t i = 0; r == 0 && i < npick; i++) {
      size_t row = pick[i];
      if (rows[row].id > 0) pick[nl] = row, pids[nl++] = rows[row].id; /* (nl <= i: pick read before written) */
      else bpick[nbk] = row, bids[nbk++] = bl.ids[row];
    }
    d.pick = pick;
    if (r == 0 && nl) r = store_each_profile(x->h->st, pids, nl, &lim, tl_consume, &d, &err);
    if (r == 0 && nbk) {
      d.pick = bpick;
      pp_err berr = {0};
      int br = x->h->bucket_each_profile(x->h->ud, bl.gen, bids, nbk, &lim, tl_consume, &d, &berr);
      if (br == PP_ELIMIT || br == PP_ENOMEM || br == PP_EINVAL) { /* (tl_consume's: the answer's, as a local record's) */
        r = br, err = berr;
      } else if (br != 0) {
        /* the cache changed since the listing, or its store failed: the answer goes without
         * those points, partial and why */
        for (size_t k = 0; k < nbk; k++) unreadable[bpick[k]] = true;
        x->fi->bucket_read--, x->fi->bucket_profiles -= bl.kept;
        name_bucket(x, &bl.held);
        snprintf(x->fi->bucket_why, sizeof x->fi->bucket_why, "%.150s", berr.msg);
        web_note_read(x, s.from, s.to, (int)s.agg, false);
      }
    }
    free(pids);
    free(bids);
    free(bpick);
    if (r < 0) status = r == PP_ELIMIT ? 422 : 500, ok = false;
    for (size_t i = 0; ok && i < n; i++)
      if (unreadable[i]) {
        start[series[i] + 1]--;
        series[i] = UINT32_MAX;
      }
  }
  pp_buf b;
  pp_buf_init(&b, x->budget);
  if (ok) {
    for (size_t j = 0; j < nseries; j++) start[j + 1] += start[j];
    size_t *fill = calloc(nseries + 1, sizeof *fill);
    if (!fill) ok = false;
    for (size_t i = 0; ok && i < n; i++)
      if (series[i] != UINT32_MAX) order[start[series[i]] + fill[series[i]]++] = (uint32_t)i;
    free(fill);
  }
  if (ok) {
    pp_buf_puts(&b, "{\"status\":\"success\",\"data\":[");
    size_t entries = 0;
    for (size_t j = 0; j < nseries; j++) {
      if (start[j] == start[j + 1]) continue; /* every record of it unreadable */
      if (!group_by) {
        if (entries++) pp_buf_put(&b, ",", 1);
        tl_entry(&b, rows, order, start[j], start[j + 1], val, pts, -1, function, NULL, NULL);
        continue;
      }
      /* one entry per value of the key this series has (a nonzero figure in some point) */
      for (size_t g = 0; g < d.groups.count; g++) {
        bool has = false;
        for (size_t k = start[j]; k < start[j + 1] && !has; k++) {
          const web_point *w = &pts[order[k]];
          has = g < w->ngroups && (w->vals[g * 3] || w->vals[g * 3 + 1] || w->vals[g * 3 + 2]);
        }
        if (!has) continue;
        size_t glen;
        const char *gk = htab_key(&d.groups, (uint32_t)g, &glen);
        char *gname = strndup(gk, glen);
        if (!gname) {
          ok = false;
          break;
        }
        if (entries++) pp_buf_put(&b, ",", 1);
        tl_entry(&b, rows, order, start[j], start[j + 1], val, pts, (long)g, function, group_by, gname);
        free(gname);
      }
    }
    listing l = {&b, entries, resolution_rank_ns(coarsest), 0, 0};
    int fr = listing_fan_out(x, p, "/api/v1/timeline", &l, &err);
    if (fr < 0) {
      ok = false;
      status = fr;
    }
    pp_buf_printf(&b, "],\"resolution\":\"%s\"", resolution_names[l.coarsest]);
    if (decoded)
      pp_buf_printf(&b, ",\"rollupsSkipped\":%lld,\"recordsUnreadable\":%lld", (long long)skipped + l.skipped,
                    (long long)d.nunreadable + l.unreadable);
    partial(&b, x);
    pp_buf_put(&b, "}", 1);
  }
  for (size_t i = 0; pts && i < n; i++) web_point_release(&pts[i]);
  free(pts);
  free(unreadable);
  htab_free(&d.groups);
  htab_free(&ids);
  free(series);
  free(order);
  free(first);
  free(start);
  free(pick);
  free(val);
  free(cols);
  free(bl.ids);
  store_rows_free(rows, n);
  if (ok) {
    answer(x, out, "the answer", "application/json", &b);
  } else if (status < 0) {
    listing_error(x, out, status, &err);
    pp_buf_free(&b);
  } else if (status == 422) {
    over_budget_merging(out, x->budget, &err);
    pp_buf_free(&b);
  } else {
    web_resp_error(out, 500, "internal", err.msg[0] ? err.msg : "out of memory");
    pp_buf_free(&b);
  }
}

/* ---- /api/v1/profile -------------------------------------------------------------------------- */

void web_api_profile(const web_ctx *x, const web_params *p, web_resp *out) {
  selection s, b;
  char why[600];
  bool has_base = false;
  if (parse_selection(x, p, &s, true, why, sizeof why) < 0 || parse_base(x, p, &s, &b, &has_base, why, sizeof why) < 0) {
    web_resp_error(out, 400, "bad_data", why);
    return;
  }
  pprof_profile *prof = NULL, *base = NULL, *d = NULL;
  size_t count = 0;
  pp_err err = {0};
  store_merge_info pinfo = {0};
  int r = select_profile(x, &s, x->budget, &prof, &count, &pinfo, &err);
  if (r < 0) {
    store_error(x, out, r, &err, &s);
    return;
  }
  if (has_base) {
    r = profile_bytes(prof) < x->budget ? select_profile(x, &b, x->budget - profile_bytes(prof), &base, NULL, NULL, &err)
                                        : PP_ELIMIT;
    size_t used = profile_bytes(prof) + profile_bytes(base);
    if (r == PP_ELIMIT || (r == 0 && used >= x->budget)) {
      over_budget_merging(out, x->budget, r == PP_ELIMIT ? &err : NULL);
      goto done;
    }
    /* pprof_diff's merge, capped at what the two inputs leave */
    pprof_merger *dm = NULL;
    if (r == 0 && (r = pprof_merger_new(&dm, &err)) == 0) {
      pprof_merger_set_limit(dm, x->budget - used);
      if ((r = pprof_merger_add(dm, prof, 1, &err)) == 0 && (r = pprof_merger_add(dm, base, -1, &err)) == 0)
        r = pprof_merger_finish(dm, &d, &err);
      else
        pprof_merger_free(dm);
    }
    if (r == PP_ELIMIT) {
      over_budget_merging(out, x->budget, &err);
      goto done;
    }
    if (r < 0) {
      web_resp_error(out, r == PP_EUSAGE ? 404 : 400, r == PP_EUSAGE ? "not_found" : "bad_data", err.msg);
      goto done;
    }
    pprof_free(prof);
    prof = d;
  }
  if (profile_bytes(prof) + profile_bytes(base) > x->budget) {
    over_budget(out, "the merged profile", profile_bytes(prof) + profile_bytes(base), x->budget);
    goto done;
  }
  uint8_t *buf;
  size_t len;
  if ((r = pprof_encode(prof, 1, &buf, &len, &err)) < 0) {
    web_resp_error(out, 500, "internal", err.msg);
    goto done;
  }
  pp_buf wb;
  pp_buf_init(&wb, x->budget);
  pp_buf_put(&wb, buf, len);
  free(buf);
  if (wb.over) {
    over_budget(out, "the encoded profile", len, x->budget);
    pp_buf_free(&wb);
    goto done;
  }
  web_resp_buf(out, 200, "application/octet-stream", &wb);
  pp_buf_free(&wb);
  /* what a collector asking this one for its part (web_fanout.h) adds to its own answer */
  if (!has_base) out->profiles = count, out->truncated = pinfo.truncated, out->ptype = s.type;
  /* a file name from request input: only safe characters survive */
  char fname[160];
  const char *name = web_param(p, "name");
  snprintf(fname, sizeof fname, "%s-%s.pb.gz", name ? name : "profile", s.type);
  for (char *q = fname; *q; q++)
    if (!isalnum((unsigned char)*q) && *q != '.' && *q != '-' && *q != '_') *q = '_';
  if (out->status == 200) snprintf(out->disposition, sizeof out->disposition, "attachment; filename=\"%s\"", fname);
done:
  pprof_free(prof);
  pprof_free(base);
}

/* ---- lists ----------------------------------------------------------------------------------- */

/* Paged listings (/api/v1/series, /raw): limit=N entries, then after=<the previous page's
 * "next">, which is "series_id:type" of its last entry. *cur from after; false if it is not
 * one. */
static bool parse_after(const char *after, store_series_cursor *cur) {
  char *end;
  long long id = strtoll(after, &end, 10);
  int t = end != after && *end == ':' ? cfg_type_from_name(end + 1) : -1;
  if (id < 0 || t < 0) return false;
  *cur = (store_series_cursor){id, cfg_type_name[t]};
  return true;
}

/* The "next" of a page of n entries ("" when no page follows). */
static void page_next(char *next, size_t cap, const store_series_info *v, size_t n, bool more) {
  next[0] = '\0';
  if (more && n) snprintf(next, cap, "%lld:%s", (long long)v[n - 1].series_id, v[n - 1].type);
}

/* entries one listing takes from the object store's series index at most (more: partial) */
#define WEB_MAX_BUCKET_SERIES ((size_t)1 << 20)

/* The series only the object store holds joined to a listing's (*v, *n: the local store's;
 * seq: store_deletions before they were listed), when the window meets that history: an entry
 * of both is one (counts added, the ends and sample types of the newer), the others come after
 * the local ones. Read from the bucket's series index (web.h's bucket_series), not the bucket;
 * what it lacks (segments uploaded before it, window edges that cut a segment's entries) makes
 * the answer partial and says so. A page (paged) is of one store: it does not read it, and
 * says so when the window meets it. WEB_RACED: *v freed, ask again; 0; PP_ENOMEM. */
static int bucket_series(const web_ctx *x, const selection *s, uint64_t seq, bool last, bool paged,
                         store_series_info **v, size_t *n, pp_err *err) {
  if (!x->h->bucket_only || !x->fi) return 0;
  if (!x->h->bucket_series || paged) return (void)recheck_bucket(x, s), 0;
  store_series_info *b = NULL;
  size_t nb = 0, unknown = 0;
  upload_bucket_only held = {0};
  pp_err berr = {0};
  int br = x->h->bucket_series(x->h->ud, seq, s->m, s->nm, s->type, s->from, s->to, WEB_MAX_BUCKET_SERIES, &b, &nb,
                               &unknown, &held, &berr);
  int o = bucket_outcome(x, s, br, last, &held, &berr, err);
  if (o == WEB_RACED) store_series_free(*v, *n), *v = NULL, *n = 0;
  if (o != WEB_READ) return store_series_free(b, nb), o == WEB_READ ? 0 : o;
  if (unknown) {
    name_bucket(x, &held);
    snprintf(x->fi->bucket_why, sizeof x->fi->bucket_why,
             "%zu of its segments or series entries are not in the object store's series index (uploaded before it, "
             "or cut by the window's edges)",
             unknown);
    web_note_read(x, s->from, s->to, (int)s->agg, false);
  }
  if (!nb) return 0;
  store_series_info *all = realloc(*v, (*n + nb) * sizeof *all);
  htab keys = {0};
  pp_buf key;
  pp_buf_init(&key, 0);
  int r = all && htab_init(&keys, *n + 16, 0) == 0 ? 0 : pp_err_set(err, PP_ENOMEM, "out of memory");
  if (all) *v = all;
  /* the local entries by labels and type (each once in a listing) */
  for (size_t i = 0; i < *n && r == 0; i++) {
    uint32_t idx;
    pp_buf_clear(&key);
    pp_buf_puts(&key, all[i].labels_json);
    pp_buf_put(&key, "", 1);
    pp_buf_puts(&key, all[i].type);
    if (key.failed || htab_intern(&keys, key.p, key.len, &idx) < 0) r = pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  size_t k = *n;
  for (size_t j = 0; j < nb && r == 0; j++) {
    pp_buf_clear(&key);
    pp_buf_puts(&key, b[j].labels_json);
    pp_buf_put(&key, "", 1);
    pp_buf_puts(&key, b[j].type);
    if (key.failed) {
      r = pp_err_set(err, PP_ENOMEM, "out of memory");
      break;
    }
    int64_t at = htab_find(&keys, key.p, key.len);
    if (at < 0) {
      all[k++] = b[j];
      b[j] = (store_series_info){0};
      continue;
    }
    store_series_info *e = &all[at];
    e->count += b[j].count;
    if (b[j].first_ns < e->first_ns) e->first_ns = b[j].first_ns;
    if (b[j].last_ns > e->last_ns) {
      e->last_ns = b[j].last_ns;
      char *t = e->sample_types;
      e->sample_types = b[j].sample_types, b[j].sample_types = t;
    }
  }
  if (r == 0) *n = k;
  else
    for (size_t j = *n; j < k; j++) free(all[j].labels_json), free(all[j].type), free(all[j].sample_types);
  htab_free(&keys);
  pp_buf_free(&key);
  store_series_free(b, nb);
  return r;
}

void web_api_series(const web_ctx *x, const web_params *p, web_resp *out) {
  selection s;
  char why[256];
  if (parse_selection(x, p, &s, false, why, sizeof why) < 0) {
    web_resp_error(out, 400, "bad_data", why);
    return;
  }
  /* pages: limit=N entries, then after=<the previous page's "next"> (parse_after) */
  const char *after = web_param(p, "after");
  bool bad = false;
  long limit = num_param(p, "limit", 0, 1, WEB_MAX_SERIES_PAGE, &bad);
  if (bad) {
    web_resp_error(out, 400, "bad_data", "limit: want 1..100000");
    return;
  }
  store_series_cursor cur = {0, NULL};
  if (after && !parse_after(after, &cur)) {
    web_resp_error(out, 400, "bad_data", "after: want the \"next\" of a previous page");
    return;
  }
  /* a page's cursor is a place in one store: pages are of one collector's */
  if ((limit || after) && !s.local && web_fanout_peers(x->fan)) {
    web_resp_error(out, 400, "bad_data",
                   "limit and after: pages are of one collector's series; add local=1 and ask each shard, or leave them out "
                   "for every shard's series in one answer");
    return;
  }
  store_series_info *v;
  size_t n;
  bool more = false;
  pp_err err = {0};
  /* the store's series and those only the object store holds, listed with no segment deleted in
   * between (else again, as a timeline's points) */
  for (int tries = 1;; tries++) {
    uint64_t seq = store_deletions(x->h->st);
    if (store_list_series(x->h->st, s.m, s.nm, s.type, s.from, s.to, after ? &cur : NULL, (size_t)limit, &v, &n, &more,
                          &err) < 0) {
      web_resp_error(out, 500, "internal", err.msg);
      return;
    }
    int br = bucket_series(x, &s, seq, tries == WEB_MERGE_TRIES, limit || after, &v, &n, &err);
    if (br == WEB_RACED) continue;
    if (br < 0) {
      store_series_free(v, n);
      web_resp_error(out, 503, "unavailable", err.msg);
      return;
    }
    break;
  }
  char next[64];
  page_next(next, sizeof next, v, n, more);
  pp_buf b;
  pp_buf_init(&b, x->budget);
  pp_buf_puts(&b, "{\"status\":\"success\",\"data\":[");
  for (size_t i = 0; i < n; i++) {
    pp_buf_puts(&b, i ? ",{\"labels\":" : "{\"labels\":");
    web_json_labels(&b, v[i].labels_json);
    pp_buf_puts(&b, ",\"profileType\":");
    web_json_str(&b, v[i].type);
    pp_buf_puts(&b, ",\"sampleTypes\":[");
    char *st = v[i].sample_types, *save = NULL;
    int k = 0;
    for (char *tok = strtok_r(st, ",", &save); tok; tok = strtok_r(NULL, ",", &save), k++) {
      char *slash = strchr(tok, '/');
      if (slash) *slash = '\0';
      pp_buf_puts(&b, k ? ",{\"type\":" : "{\"type\":");
      web_json_str(&b, tok);
      pp_buf_puts(&b, ",\"unit\":");
      web_json_str(&b, slash ? slash + 1 : "");
      pp_buf_put(&b, "}", 1);
    }
    pp_buf_printf(&b, "],\"firstUnixNano\":%lld,\"lastUnixNano\":%lld,\"profiles\":%lld}", (long long)v[i].first_ns,
                   (long long)v[i].last_ns, (long long)v[i].count);
  }
  listing l = {&b, n, 0, 0, 0};
  int r = listing_fan_out(x, p, "/api/v1/series", &l, &err);
  pp_buf_puts(&b, "]");
  if (next[0]) {
    pp_buf_puts(&b, ",\"next\":");
    web_json_str(&b, next);
  }
  partial(&b, x);
  pp_buf_puts(&b, "}");
  store_series_free(v, n);
  if (r < 0) {
    listing_error(x, out, r, &err);
    pp_buf_free(&b);
    return;
  }
  answer(x, out, "the answer", "application/json", &b);
}

void web_api_profiles(const web_ctx *x, const web_params *p, web_resp *out) {
  selection s;
  char why[256];
  if (parse_selection(x, p, &s, true, why, sizeof why) < 0) {
    web_resp_error(out, 400, "bad_data", why);
    return;
  }
  bool bad = false;
  long limit = num_param(p, "limit", 1000, 1, WEB_MAX_RECORDS, &bad);
  if (bad) {
    web_resp_error(out, 400, "bad_data", "limit: want 1..20000");
    return;
  }
  store_row *rows;
  size_t n;
  pp_err err = {0};
  /* the store's records and those only the object store holds (id null: nothing here names
   * them), listed with no segment deleted in between, as a timeline's points (bucket_rows) */
  for (int tries = 1;; tries++) {
    uint64_t seq = store_deletions(x->h->st);
    if (store_list_rows(x->h->st, s.m, s.nm, s.type, s.from, s.to, (size_t)limit, &rows, &n, &err) < 0) {
      web_resp_error(out, 500, "internal", err.msg);
      return;
    }
    int br = bucket_rows(x, &s, seq, tries == WEB_MERGE_TRIES, NULL, (size_t)limit, &rows, &n, &err);
    if (br == WEB_RACED) continue;
    if (br < 0) {
      store_rows_free(rows, n);
      web_resp_error(out, 503, "unavailable", err.msg);
      return;
    }
    break;
  }
  pp_buf b;
  pp_buf_init(&b, x->budget);
  pp_buf_puts(&b, "{\"status\":\"success\",\"data\":[");
  for (size_t i = 0; i < n; i++) {
    if (rows[i].id) pp_buf_printf(&b, "%s{\"id\":%lld,\"labels\":", i ? "," : "", (long long)rows[i].id);
    else pp_buf_puts(&b, i ? ",{\"id\":null,\"labels\":" : "{\"id\":null,\"labels\":");
    web_json_labels(&b, rows[i].labels_json);
    pp_buf_puts(&b, ",\"profileType\":");
    web_json_str(&b, rows[i].type);
    pp_buf_printf(&b, ",\"startUnixNano\":%lld,\"endUnixNano\":%lld,\"bytes\":%llu,\"sampleTypes\":", (long long)rows[i].start_ns,
                   (long long)rows[i].end_ns, (unsigned long long)rows[i].size);
    web_json_str(&b, rows[i].sample_types);
    pp_buf_puts(&b, ",\"totals\":[");
    char *save = NULL;
    int k = 0;
    for (char *tok = strtok_r(rows[i].totals, ",", &save); tok; tok = strtok_r(NULL, ",", &save), k++) {
      if (k) pp_buf_put(&b, ",", 1);
      put_i64(&b, strtoll(tok, NULL, 10));
    }
    pp_buf_puts(&b, "]}");
  }
  /* limit= holds for each shard */
  listing l = {&b, n, 0, 0, 0};
  int r = listing_fan_out(x, p, "/api/v1/profiles", &l, &err);
  pp_buf_puts(&b, "]");
  partial(&b, x);
  pp_buf_puts(&b, "}");
  store_rows_free(rows, n);
  if (r < 0) {
    listing_error(x, out, r, &err);
    pp_buf_free(&b);
    return;
  }
  answer(x, out, "the answer", "application/json", &b);
}

void web_api_targets(const web_ctx *x, const web_params *p, web_resp *out) {
  bool local;
  char why[200];
  if (parse_local(p, &local, "targets", why, sizeof why) < 0) {
    web_resp_error(out, 400, "bad_data", why);
    return;
  }
  json_t *d = scrape_targets_json(x->h->eng);
  size_t n = json_array_size(d);
  char *s = d ? json_dumps(d, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
  json_decref(d);
  if (!s || s[0] != '[') {
    free(s);
    web_resp_error(out, 500, "internal", "cannot list the targets");
    return;
  }
  pp_buf b;
  pp_buf_init(&b, x->budget);
  pp_buf_puts(&b, "{\"status\":\"success\",\"data\":");
  pp_buf_put(&b, s, strlen(s) - 1); /* the array left open for the peers' */
  free(s);
  pp_err err = {0};
  listing l = {&b, n, 0, 0, 0};
  int r = listing_fan_out(x, p, "/api/v1/targets", &l, &err);
  pp_buf_puts(&b, "]");
  partial(&b, x);
  pp_buf_puts(&b, "}");
  if (r < 0) {
    listing_error(x, out, r, &err);
    pp_buf_free(&b);
    return;
  }
  answer(x, out, "the answer", "application/json", &b);
}

/* ---- /raw ---------------------------------------------------------------------------------------- */

static void html(pp_buf *b, const char *s) { web_json_text(b, s, strlen(s), 1); }

/* The seed's list of stored series, as a plain page with download links; in pages like
 * /api/v1/series (limit=, after=), WEB_RAW_PAGE series unless limit= says, so a store of
 * a million series is not one page. */
/* One /raw row: a series' labels (JSON text), type and profile count, its download link (the
 * merge of its labels, which with peers is over every shard, so it serves a peer's series too),
 * and the peer that holds it (NULL: this collector). */
static void raw_row(pp_buf *b, const char *labels_json, const char *type, long long count, const char *peer) {
  pp_buf_puts(b, "<tr><td>");
  html(b, labels_json);
  pp_buf_puts(b, "</td><td>");
  html(b, type);
  pp_buf_printf(b, "</td><td>%lld</td><td>", count);
  /* a link built from stored labels: each value percent-encoded, then the whole HTML-escaped */
  pp_buf link;
  pp_buf_init(&link, 64 << 10);
  pp_buf_puts(&link, "/api/v1/profile?type=");
  pp_buf_puts(&link, type); /* (one of cfg_type_name: nothing to encode) */
  json_t *labels = web_json_load_labels(labels_json);
  const char *k;
  json_t *val;
  json_object_foreach(labels, k, val) {
    char *ek = curl_easy_escape(NULL, k, 0), *ev = curl_easy_escape(NULL, json_string_value(val) ? json_string_value(val) : "", 0);
    if (ek && ev) pp_buf_printf(&link, "&%s=%s", ek, ev);
    curl_free(ek);
    curl_free(ev);
  }
  json_decref(labels);
  pp_buf_puts(b, "<a href=\"");
  if (link.p) html(b, link.p);
  pp_buf_puts(b, "\">pprof</a></td><td>");
  if (peer) html(b, peer);
  pp_buf_puts(b, "</td></tr>");
  pp_buf_free(&link);
}

/* A peer's /api/v1/series (local=1) as /raw rows. */
static int on_raw_peer(void *ud, const char *peer, const char *body, size_t len, const web_fanout_meta *meta, char *why,
                       size_t nwhy, pp_err *err) {
  (void)meta;
  pp_buf *b = ud;
  json_t *doc, *data = peer_listing(body, len, &doc, why, nwhy);
  if (!data) return 0;
  size_t i;
  json_t *e;
  int r = 0;
  json_array_foreach(data, i, e) {
    json_t *labels = json_object_get(e, "labels"), *count = json_object_get(e, "profiles");
    const char *type = json_string_value(json_object_get(e, "profileType"));
    int ty = type ? cfg_type_from_name(type) : -1;
    if (!json_is_object(labels) || ty < 0) continue; /* (a type of ours only: it goes into the link as it is) */
    char *lj = json_dumps(labels, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!lj) {
      r = pp_err_set(err, PP_ENOMEM, "out of memory");
      break;
    }
    raw_row(b, lj, cfg_type_name[ty], json_is_integer(count) ? (long long)json_integer_value(count) : 0, peer);
    free(lj);
    if (b->over) break;
  }
  json_decref(doc);
  if (r == 0 && b->over) r = pp_err_set(err, PP_ELIMIT, "the peers' series passed the answer's budget");
  return r;
}

void web_api_raw(const web_ctx *x, const web_params *p, web_resp *out) {
  bool bad = false;
  long limit = num_param(p, "limit", WEB_RAW_PAGE, 1, WEB_MAX_RAW_PAGE, &bad);
  if (bad) {
    char why[80];
    snprintf(why, sizeof why, "limit: want 1..%d series a page (default %d)", WEB_MAX_RAW_PAGE, WEB_RAW_PAGE);
    web_resp_error(out, 400, "bad_data", why);
    return;
  }
  const char *after = web_param(p, "after"), *local = web_param(p, "local");
  store_series_cursor cur = {0, NULL};
  if (after && !parse_after(after, &cur)) {
    web_resp_error(out, 400, "bad_data", "after: want the \"next\" of a previous page");
    return;
  }
  if (local && strcmp(local, "0") && strcmp(local, "1")) {
    web_resp_error(out, 400, "bad_data", "local: 1 (this collector's series only) or 0");
    return;
  }
  store_series_info *v;
  size_t n;
  bool more = false;
  pp_err err = {0};
  uint64_t seq = store_deletions(x->h->st);
  if (store_list_series(x->h->st, NULL, 0, NULL, 0, 0, after ? &cur : NULL, (size_t)limit, &v, &n, &more, &err) < 0) {
    web_resp_error(out, 500, "internal", err.msg);
    return;
  }
  char next[64];
  page_next(next, sizeof next, v, n, more);
  /* the last page lists the series only the object store holds after the local ones, from its
   * series index (bucket_series), as rows of their own: the local rows of earlier pages count
   * the local profiles, these the bucket's (a deletion between the two lists makes it partial) */
  store_series_info *bv = NULL;
  size_t nb = 0, unknown = 0;
  if (!next[0] && x->h->bucket_series && x->h->bucket_only && x->fi) {
    selection all = {.agg = STORE_AGG_DEFAULT};
    upload_bucket_only held = {0};
    pp_err berr = {0};
    web_note_window(x, 0, 0, (int)all.agg);
    int br = x->h->bucket_series(x->h->ud, seq, NULL, 0, NULL, 0, 0, WEB_MAX_BUCKET_SERIES, &bv, &nb, &unknown, &held, &berr);
    if (bucket_outcome(x, &all, br, true, &held, &berr, &err) != WEB_READ) store_series_free(bv, nb), bv = NULL, nb = 0;
    if (unknown) {
      name_bucket(x, &held);
      snprintf(x->fi->bucket_why, sizeof x->fi->bucket_why,
               "%zu of its segments are not in the object store's series index (uploaded before it)", unknown);
      web_note_read(x, 0, 0, (int)all.agg, false);
    }
  }
  pp_buf b;
  pp_buf_init(&b, x->budget);
  pp_buf_puts(&b, "<!doctype html><html><head><meta charset=\"utf-8\"><title>stored series</title>"
                   "<link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/ui/app.css\"></head><body><main><h1>Stored series</h1>"
                   "<table><tr><th>labels</th><th>type</th><th>profiles</th><th>download</th><th>shard</th></tr>");
  for (size_t i = 0; i < n; i++) raw_row(&b, v[i].labels_json, v[i].type, (long long)v[i].count, NULL);
  store_series_free(v, n);
  for (size_t i = 0; i < nb; i++) raw_row(&b, bv[i].labels_json, bv[i].type, (long long)bv[i].count, "object store");
  store_series_free(bv, nb);
  /* the pages are of this collector's store; its last one lists the peers' series after its own */
  int r = 0;
  if (!next[0] && !(local && !strcmp(local, "1")) && web_fanout_peers(x->fan))
    r = web_fanout_get(x->fan, "/api/v1/series?local=1", x->budget > b.len ? (x->budget - b.len) / 2 : 1, on_raw_peer, &b,
                       x->fi, &err);
  if (r < 0) {
    listing_error(x, out, r, &err);
    pp_buf_free(&b);
    return;
  }
  pp_buf_puts(&b, "</table>");
  if (x->fi->failed) {
    pp_buf_printf(&b, "<p class=\"partial\">%u of %u shards did not answer: their series are missing (", x->fi->failed,
                  x->fi->asked);
    html(&b, x->fi->missing);
    pp_buf_puts(&b, ")</p>");
  }
  if (web_fanout_bucket_lacks(x->fi)) {
    pp_buf_printf(&b, "<p class=\"partial\">History in the object store only (%llu segments) is missing here",
                  (unsigned long long)x->fi->bucket.segments);
    if (x->fi->bucket_why[0]) pp_buf_puts(&b, ": "), html(&b, x->fi->bucket_why);
    pp_buf_puts(&b, "</p>");
  }
  if (next[0]) {
    /* the cursor is digits, ':' and a type name: nothing to encode */
    pp_buf_printf(&b, "<p><a rel=\"next\" href=\"/raw?limit=%ld&amp;after=", limit);
    html(&b, next);
    pp_buf_puts(&b, "\">next page</a></p>");
  }
  pp_buf_puts(&b, "</main></body></html>");
  answer(x, out, "the page", "text/html; charset=utf-8", &b);
}

/* ---- for the routes in other files ------------------------------------------------------------- */

int web_api_merge(const web_ctx *x, const web_params *p, bool base, size_t budget, pprof_profile **ret_profile,
                  size_t *ret_count, web_resp *out) {
  selection s, b;
  bool has_base = false;
  char why[600];
  if (parse_selection(x, p, &s, true, why, sizeof why) < 0 ||
      (base && parse_base(x, p, &s, &b, &has_base, why, sizeof why) < 0)) {
    web_resp_error(out, 400, "bad_data", why);
    return -1;
  }
  if (base && !has_base) return 1;
  selection *q = base ? &b : &s;
  pp_err err = {0};
  size_t count = 0;
  /* the render's path: id= and tag= hold for these routes too */
  int r = select_profile(x, q, budget, ret_profile, &count, NULL, &err);
  if (r < 0) {
    store_error(x, out, r, &err, q);
    return -1;
  }
  if (ret_count) *ret_count = count;
  return 0;
}

long web_api_num_param(const web_params *p, const char *k, long dflt, long min, long max, bool *bad) {
  return num_param(p, k, dflt, min, max, bad);
}

int web_api_pick_sample(const pprof_profile *pr, const char *want, char *why, size_t n) {
  return pick_sample(pr, want, why, n);
}

size_t web_api_profile_bytes(const pprof_profile *p) { return profile_bytes(p); }

/* ---- /api/v1/tags ------------------------------------------------------------------------------ */

/* The sample labels of a selection (or of one record, id=) after its tag= filters: every key
 * and value with its total in the sample type asked for (web_labels_write). */
void web_api_tags(const web_ctx *x, const web_params *p, web_resp *out) {
  selection s;
  char why[600];
  if (parse_selection(x, p, &s, true, why, sizeof why) < 0) {
    web_resp_error(out, 400, "bad_data", why);
    return;
  }
  pprof_profile *prof = NULL;
  size_t count = 0;
  pp_err err = {0};
  int r = select_profile(x, &s, x->budget, &prof, &count, NULL, &err);
  if (r < 0) {
    store_error(x, out, r, &err, &s);
    return;
  }
  int si = pick_sample(prof, web_param(p, "sample"), why, sizeof why);
  if (si < 0) {
    web_resp_error(out, 400, "bad_data", why);
    pprof_free(prof);
    return;
  }
  pp_buf b;
  pp_buf_init(&b, x->budget > profile_bytes(prof) ? x->budget - profile_bytes(prof) : 1);
  pp_buf_puts(&b, "{\"status\":\"success\",\"data\":{\"profileType\":");
  web_json_str(&b, s.type);
  pp_buf_puts(&b, ",\"sampleType\":");
  value_type(&b, prof, &prof->sample_type[si]);
  pp_buf_printf(&b, ",\"profiles\":%zu,", count);
  r = web_labels_write(&b, prof, si);
  pp_buf_puts(&b, "}}");
  pprof_free(prof);
  if (r < 0) {
    web_resp_error(out, 500, "internal", "out of memory");
    pp_buf_free(&b);
    return;
  }
  answer(x, out, "the answer", "application/json", &b);
}
