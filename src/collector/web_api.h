/* web_api: the data endpoints, as functions from a request's parameters to an answer, with no
 * HTTP server in sight (web.c routes to them and runs them on web_work's workers).
 *
 *   /api/v1/render     flame graph (pruned to max_nodes) and top table, optionally vs a base
 *   /api/v1/timeline   per-record totals of one sample type, one series of points per label set
 *   /api/v1/profile    the merged (or base-subtracted) profile, gzip pprof for go tool pprof
 *   /api/v1/tags       the pprof sample labels (keys, values, totals) of a selection
 *   /api/v1/profiles   the stored records
 *   /api/v1/series     the stored (series, type)s
 *   /api/v1/targets    the scrape jobs and their health
 *   /raw               the seed's list of stored series, as HTML
 *   /api/v1/pgo        the merged CPU profile trimmed for `go build -pgo` (web_pgo.c)
 *   /api/v1/regressions functions whose share grew most from a base to a selection (web_pgo.c)
 * docs/api.md documents parameters and answers.
 *
 * Every string from a profile or the store reaches the answer through web_json (invalid
 * UTF-8 made valid, one string in, one string out); a sample type may be asked for by its name
 * as the answers show it.
 * Memory: ctx->budget bounds what one call holds: the merged profiles (their arenas), the call
 * tree (through its node cap) and the answer's bytes. Past it the answer is 422 (errorType
 * "execution", as Prometheus says of a query that would load too much) naming the budget; the
 * client narrows the selection. Each is measured once built: the store's merge itself is
 * bounded by WEB_MAX_RECORDS records and the decoder's limits, not by the budget, so its peak
 * can pass the budget before the 422.
 * Threads: reentrant; uses only the store's and the engine's thread-safe entry points.
 */
#ifndef COLLECTOR_WEB_API_H
#define COLLECTOR_WEB_API_H

#include "web_int.h"

void web_api_render(const web_ctx *x, const web_params *p, web_resp *out);
void web_api_timeline(const web_ctx *x, const web_params *p, web_resp *out);
void web_api_profile(const web_ctx *x, const web_params *p, web_resp *out);
void web_api_profiles(const web_ctx *x, const web_params *p, web_resp *out);
void web_api_series(const web_ctx *x, const web_params *p, web_resp *out);
void web_api_targets(const web_ctx *x, const web_params *p, web_resp *out);
void web_api_raw(const web_ctx *x, const web_params *p, web_resp *out);
void web_api_pgo(const web_ctx *x, const web_params *p, web_resp *out);
void web_api_regressions(const web_ctx *x, const web_params *p, web_resp *out);

/* For routes outside web_api.c: the merged profile of the request's selection (base = false)
 * or of its comparison (base = true: the base_ parameters, render's rules), merged within
 * budget bytes. Returns 0 with *ret_profile (the caller frees it) and, when ret_count is not
 * NULL, how many records it merged; 1 when base is asked and the request has no base_
 * parameter (nothing set); -1 with the error answer (400 bad selection, 404 nothing stored,
 * 422 over the budget, 500) already in *out. */
int web_api_merge(const web_ctx *x, const web_params *p, bool base, size_t budget, pprof_profile **ret_profile,
                  size_t *ret_count, web_resp *out);
/* A numeric parameter: dflt when absent, *bad set when not an integer in [min, max]. */
long web_api_num_param(const web_params *p, const char *k, long dflt, long min, long max, bool *bad);
/* The sample type `want` names in a profile (name, index, as answers show it, or the default),
 * or -1 with the reason in why. */
int web_api_pick_sample(const pprof_profile *pr, const char *want, char *why, size_t n);
/* The profile's size as budgets count it (its arena's reserved bytes; 0 for NULL). */
size_t web_api_profile_bytes(const pprof_profile *p);
void web_api_tags(const web_ctx *x, const web_params *p, web_resp *out);

#endif
