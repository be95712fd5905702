/* web_labels: pprof sample labels (pprof.Do, pprof.Labels) in the data endpoints, as functions of
 * a request's parameters or of one decoded profile; web_api.c calls them (docs/api.md,
 * "Sample labels").
 *
 *   tag=KEY=VALUE, tag=KEY!=VALUE   which samples a selection keeps (web_tags_parse;
 *                                   pprof_filter_tags does the keeping)
 *   /api/v1/tags                    the keys and values of a profile with their totals
 *                                   (web_labels_write)
 *   timeline points                 one record's figures when a timeline filters, groups or
 *                                   follows a function (web_point_compute)
 *
 * Label keys and values are untrusted bytes: every one reaches an answer through web_json.
 * Limits: WEB_MAX_TAGS filters of WEB_TAGS_MEM bytes together (each also under the parameter
 * cap, WEB_MAX_PARAM_LEN); a listing holds
 * WEB_MAX_TAG_KEYS keys of WEB_MAX_TAG_VALUES values each (the largest; the answer says
 * "truncated"); a group_by keeps WEB_MAX_GROUPS values (PP_ELIMIT beyond: the client narrows).
 * Threads: reentrant; nothing shared.
 */
#ifndef COLLECTOR_WEB_LABELS_H
#define COLLECTOR_WEB_LABELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/buf.h"
#include "../base/htab.h"
#include "../codec/pprof.h"
#include "web_int.h"

#define WEB_MAX_TAGS PPROF_MAX_TAG_FILTERS
#define WEB_MAX_TAG_KEYS 64
#define WEB_MAX_TAG_VALUES 1000
#define WEB_MAX_GROUPS 200
#define WEB_TAGS_MEM 8192 /* bytes of all tag= parameters of one selection together */

/* The tag= parameters of a request (or its base_tag=): the filters point into mem, so a
 * web_tags is filled in place and never copied by value. */
typedef struct web_tags {
  pprof_tag_filter f[WEB_MAX_TAGS];
  size_t n;
  char mem[WEB_TAGS_MEM];
} web_tags;

/* Reads every parameter named `name` ("tag" or "base_tag") into *t, in request order. -1 with
 * a message in why (for a 400) when one is not KEY=VALUE / KEY!=VALUE or there are more than
 * WEB_MAX_TAGS, or than WEB_TAGS_MEM bytes together. Returns the number read. */
int web_tags_parse(const web_params *p, const char *name, web_tags *t, char *why, size_t n);

/* `"total":N,"keys":[{"key":..,"values":[{"value":..,"total":N},...]},...],"truncated":B` of
 * sample type si of p: each string label (key, value) with the sum of the values of the samples
 * that carry it (a sample with two values of a key counts under both); keys sorted by name (bytes),
 * values by total descending then value; total = the sum over all samples. */
int web_labels_write(pp_buf *b, const pprof_profile *p, int si);

/* What a timeline point needs from one record's profile. */
typedef struct web_point_opts {
  const pprof_tag_filter *tags; /* samples for which these do not all hold are left out */
  size_t ntags;
  const char *group_by; /* NULL = no grouping */
  const char *function; /* NULL = none */
} web_point_opts;

/* One record's figures into *ret: total of column col over the kept samples; with function
 * (a function name, matched by its bytes on every frame, inline ones included), its flat (the
 * samples whose innermost frame it is) and cum (those with it anywhere in the stack, once per
 * sample), as pprof_top counts a named function (0 when absent); with group_by, per group
 * (index into *groups: the key's values joined by ',' as pprof_tag_root names them, "" for
 * samples without the key; interned across records) the total, flat and cum, in vals[] as
 * ngroups x 3 (ngroups: the groups known when this record was done; those it lacks are 0).
 * vals is malloc'd: web_point_release. PP_ELIMIT when groups would pass
 * WEB_MAX_GROUPS (the caller's table is made with that cap), PP_ENOMEM. */
typedef struct web_point {
  int64_t total, flat, cum;
  int64_t *vals; /* with group_by: 3 per group, ngroups entries */
  size_t ngroups;
} web_point;

int web_point_compute(const pprof_profile *p, int col, const web_point_opts *o, htab *groups, web_point *ret, pp_err *err);
void web_point_release(web_point *w);

#endif
