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
void web_api_tags(const web_ctx *x, const web_params *p, web_resp *out);

#endif
