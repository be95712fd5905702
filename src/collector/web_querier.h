/* web_querier: Pyroscope's query API, querier.v1.QuerierService, which Grafana's Pyroscope data
 * source calls (issue 16 §1): Connect unary POSTs (web_connect.h) to
 * /querier.v1.QuerierService/METHOD, answered from the store as our own API answers.
 *
 *   ProfileTypes            the profile types with data in [start, end]
 *   LabelNames, LabelValues the label names / one label's values of the series that match
 *                           any of `matchers` (all series when none)
 *   Series                  those series' label sets (only label_names when given)
 *   SelectMergeStacktraces  the merged flame graph of one profile type and selector
 *   SelectMergeProfile      the same merge as a pprof profile (google.v1.Profile), one sample
 *                           type; stack_trace_selector.go_pgo trims it as /api/v1/pgo does
 *   SelectSeries            the selection's totals per step, one series per group_by value
 *   Diff                    two selections' flame graphs in one (left = base, right = new)
 * Anything else: unimplemented (SelectMergeSpanProfile, SelectHeatmap, GetProfileStats,
 * AnalyzeQuery; profile_id_selector, stack_trace_selector.call_site, formats other than the
 * flame graph).
 *
 * The model. Each stored series and type with profiles in range shows as one series per sample
 * type it offers, with Pyroscope's labels:
 *   __profile_type__  NAME:SAMPLE:UNIT:PERIOD_TYPE:PERIOD_UNIT, NAME by our type: cpu ->
 *                     process_cpu (cpu:nanoseconds), heap -> memory (its inuse_* columns only;
 *                     space:bytes), allocs -> memory (alloc_* only), goroutine -> goroutines,
 *                     mutex, block (contentions:count), threadcreate
 *   __name__          NAME
 *   service_name      a pushed series' own; else NAMESPACE/SERVICE for a Kubernetes target
 *                     (__k8s_namespace/__k8s_name), SERVICE alone without a namespace, else the
 *                     monitor's name
 *   namespace, service  __k8s_namespace and __k8s_name
 *   every other label as stored, except those starting with "__"
 * Selectors are Prometheus': {name="v", name!="v", name=~"re", name!~"re"}, "" or {} for all;
 * an absent label is ""; regular expressions are PCRE2's (Perl's syntax, which covers RE2's
 * for what selectors use), matched against the whole value, '.' matching newlines; at most
 * WEB_QUERIER_MAX_REGEX bytes, a selector's compiled together at most WEB_QUERIER_MAX_REGEX_TOTAL
 * bytes, and a match that passes WEB_QUERIER_REGEX_MATCH_LIMIT steps counts as no match.
 * Times are Unix milliseconds, end inclusive; a
 * profile belongs to the millisecond it ended in. Merges, their aggregation (sum or average
 * by type), their record limit and memory budget are /api/v1/render's.
 *
 * Over every shard: a collector with peers (web_fanout.h) asks each the same call with local=1
 * (POSTed as protobuf, all at once) and puts their answers with its own: the profile types,
 * label names and values and label sets as one set each; a merge (SelectMergeStacktraces, Diff,
 * SelectMergeProfile) as the merge of the peers' SelectMergeProfile answers with its own, which
 * holds for every aggregation since each series lives on one shard; SelectSeries' points of a
 * group summed bucket by bucket (the peers asked for sums, limit 0; with AVERAGE also for each
 * bucket's profile count, local=1&counts=1, so that the mean is of all the group's profiles),
 * and limit applied to the whole. A peer that does not answer makes the answer partial: the
 * X-Pprof-Partial header (Connect's messages have no field for it).
 *
 * Limits, each a clear invalid_argument or resource_exhausted: the body WEB_QUERIER_MAX_BODY,
 * a selector WEB_QUERIER_MAX_SELECTOR bytes with WEB_QUERIER_MAX_MATCHERS matchers, a regular
 * expression WEB_QUERIER_MAX_REGEX bytes, WEB_QUERIER_MAX_SERIES series in range, max_nodes
 * 1..200000 (default 16384), WEB_QUERIER_MAX_POINTS steps per series.
 * Threads: runs on web_work's workers.
 */
#ifndef COLLECTOR_WEB_QUERIER_H
#define COLLECTOR_WEB_QUERIER_H

#include "web_int.h"
#include "web_push.h"

#define WEB_QUERIER_PREFIX "/querier.v1.QuerierService/"
#define WEB_QUERIER_MAX_BODY ((size_t)1 << 20)
#define WEB_QUERIER_MAX_SELECTOR 4096
#define WEB_QUERIER_MAX_MATCHERS 32
#define WEB_QUERIER_MAX_REGEX 512
/* the compiled size of a selector's (and of a request's) regular expressions, in bytes */
#define WEB_QUERIER_MAX_REGEX_TOTAL (256 << 10)
/* PCRE2's match_limit and depth_limit for one match of one label value */
#define WEB_QUERIER_REGEX_MATCH_LIMIT 100000
/* matchers of all a request's selectors together */
#define WEB_QUERIER_MAX_MATCHERS_TOTAL 64
#define WEB_QUERIER_MAX_SERIES 100000
#define WEB_QUERIER_MAX_POINTS 11000

/* One call: method is the URL's part after WEB_QUERIER_PREFIX; p the URL's parameters (counts=1:
 * SelectSeries' values are each bucket's profile count, for the collector asking; x->fan NULL
 * when the call is a peer's, local=1); b the body as web.c collected it (web_push_body's profile,
 * ctype and cenc). */
void web_querier(const web_ctx *x, const char *method, const web_params *p, const web_push_body *b, web_resp *out);

/* For the fuzz target: body taken as a peer's answer, by kind % 4: ProfileTypes, LabelNames (or
 * LabelValues: the same message), Series, SelectSeries; put into an empty answer as the methods
 * put their peers' (SelectSeries: grouped by service_name, and pod with kind & 8; a mean, the
 * same answer then added as counts, with kind & 4; limit 2 with kind & 16; answering counts
 * with kind & 32), then the answer built. Aborts when an invariant breaks: a set's second copy
 * of the same answer adds nothing; every point is on the request's grid, in time order. 0, or
 * -1 when it does not decode or is refused (why says why). */
int web_querier_peer_check(unsigned kind, const uint8_t *body, size_t len, char *why, size_t nwhy);

/* A selector parsed (exposed for the fuzz target): 0, or -1 with why. */
typedef struct web_querier_sel web_querier_sel;
int web_querier_sel_parse(const char *text, web_querier_sel **ret, char *why, size_t whyn);
/* whether labels (k[i]=v[i], n of them) match it */
bool web_querier_sel_match(const web_querier_sel *s, const char *const *k, const char *const *v, size_t n);
void web_querier_sel_free(web_querier_sel *s);

#endif
