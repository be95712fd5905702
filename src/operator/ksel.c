/* Label selectors and endpoint port resolution; see ksel.h. */
#include "ksel.h"

#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 64
#define MAX_EXPRS 64
#define MAX_VALUES 256

typedef enum { OP_IN, OP_NOTIN, OP_EXISTS, OP_NOTEXISTS } op;

typedef struct expr {
  char *key;
  op op;
  char **values;
  size_t nvalues;
} expr;

struct ksel {
  char **keys, **vals; /* matchLabels */
  size_t nlabels;
  expr *exprs;
  size_t nexprs;
};

void ksel_free(ksel *s) {
  if (!s) return;
  for (size_t i = 0; i < s->nlabels; i++) {
    free(s->keys[i]);
    free(s->vals[i]);
  }
  free(s->keys);
  free(s->vals);
  for (size_t i = 0; i < s->nexprs; i++) {
    free(s->exprs[i].key);
    for (size_t k = 0; k < s->exprs[i].nvalues; k++) free(s->exprs[i].values[k]);
    free(s->exprs[i].values);
  }
  free(s->exprs);
  free(s);
}

static int fail(ksel *s, pp_err *err, int code, const char *fmt, const char *a, size_t i) {
  ksel_free(s);
  return pp_err_set(err, code, fmt, a, i);
}

int ksel_parse(const json_t *sel, ksel **ret, pp_err *err) {
  ksel *s = calloc(1, sizeof *s);
  if (!s) return pp_err_set(err, PP_ENOMEM, "out of memory");
  if (!sel || json_is_null(sel)) {
    *ret = s;
    return 0;
  }
  if (!json_is_object(sel)) return fail(s, err, PP_EINVAL, "selector: %s%zu", "must be an object", 0);
  const json_t *ml = json_object_get(sel, "matchLabels");
  if (ml && !json_is_null(ml)) {
    if (!json_is_object(ml)) return fail(s, err, PP_EINVAL, "selector.matchLabels: %s%zu", "must be an object", 0);
    size_t n = json_object_size(ml);
    if (n > MAX_LABELS) return fail(s, err, PP_ELIMIT, "selector.matchLabels: %s %zu", "more than", MAX_LABELS);
    s->keys = calloc(n + 1, sizeof *s->keys);
    s->vals = calloc(n + 1, sizeof *s->vals);
    if (!s->keys || !s->vals) return fail(s, err, PP_ENOMEM, "%s%zu", "out of memory", 0);
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)ml, k, v) {
      if (!json_is_string(v)) return fail(s, err, PP_EINVAL, "selector.matchLabels.%s: must be a string%.0zu", k, 0);
      s->keys[s->nlabels] = strdup(k);
      s->vals[s->nlabels] = strdup(json_string_value(v));
      s->nlabels++;
    }
  }
  const json_t *me = json_object_get(sel, "matchExpressions");
  if (me && !json_is_null(me)) {
    if (!json_is_array(me)) return fail(s, err, PP_EINVAL, "selector.matchExpressions: %s%zu", "must be a list", 0);
    size_t n = json_array_size(me);
    if (n > MAX_EXPRS) return fail(s, err, PP_ELIMIT, "selector.matchExpressions: %s %zu", "more than", MAX_EXPRS);
    s->exprs = calloc(n + 1, sizeof *s->exprs);
    if (!s->exprs) return fail(s, err, PP_ENOMEM, "%s%zu", "out of memory", 0);
    for (size_t i = 0; i < n; i++) {
      const json_t *e = json_array_get(me, i);
      const char *key = json_string_value(json_object_get(e, "key"));
      const char *o = json_string_value(json_object_get(e, "operator"));
      const json_t *vals = json_object_get(e, "values");
      if (!key || !*key) return fail(s, err, PP_EINVAL, "selector.matchExpressions[%s%zu]: key is required", "", i);
      expr *x = &s->exprs[s->nexprs++];
      x->key = strdup(key);
      if (o && !strcmp(o, "In")) x->op = OP_IN;
      else if (o && !strcmp(o, "NotIn")) x->op = OP_NOTIN;
      else if (o && !strcmp(o, "Exists")) x->op = OP_EXISTS;
      else if (o && !strcmp(o, "DoesNotExist")) x->op = OP_NOTEXISTS;
      else return fail(s, err, PP_EINVAL, "selector.matchExpressions[%s%zu]: operator must be In, NotIn, Exists or DoesNotExist", "", i);
      size_t nv = json_is_array(vals) ? json_array_size(vals) : 0;
      bool needs = x->op == OP_IN || x->op == OP_NOTIN;
      if (needs && nv == 0)
        return fail(s, err, PP_EINVAL, "selector.matchExpressions[%s%zu]: In and NotIn need values", "", i);
      if (!needs && nv)
        return fail(s, err, PP_EINVAL, "selector.matchExpressions[%s%zu]: Exists and DoesNotExist take no values", "", i);
      if (nv > MAX_VALUES) return fail(s, err, PP_ELIMIT, "selector.matchExpressions[%s%zu]: too many values", "", i);
      x->values = calloc(nv + 1, sizeof *x->values);
      if (!x->values) return fail(s, err, PP_ENOMEM, "%s%zu", "out of memory", 0);
      for (size_t k = 0; k < nv; k++) {
        const char *v = json_string_value(json_array_get(vals, k));
        if (!v) return fail(s, err, PP_EINVAL, "selector.matchExpressions[%s%zu]: values must be strings", "", i);
        x->values[x->nvalues++] = strdup(v);
      }
    }
  }
  *ret = s;
  return 0;
}

bool ksel_matches(const ksel *s, const json_t *labels) {
  for (size_t i = 0; i < s->nlabels; i++) {
    const char *v = json_string_value(json_object_get(labels, s->keys[i]));
    if (!v || strcmp(v, s->vals[i])) return false;
  }
  for (size_t i = 0; i < s->nexprs; i++) {
    const expr *x = &s->exprs[i];
    const char *v = json_string_value(json_object_get(labels, x->key));
    bool in = false;
    for (size_t k = 0; v && k < x->nvalues && !in; k++) in = !strcmp(v, x->values[k]);
    switch (x->op) {
    case OP_IN: if (!in) return false; break;
    case OP_NOTIN: if (in) return false; break; /* a missing label is "not in" */
    case OP_EXISTS: if (!v) return false; break;
    case OP_NOTEXISTS: if (v) return false; break;
    }
  }
  return true;
}

/* A port reference: a JSON integer, a numeric string, or a name. */
static bool port_eq(const json_t *ref, const json_t *port_obj) {
  json_int_t num = json_integer_value(json_object_get(port_obj, "port"));
  const char *name = json_string_value(json_object_get(port_obj, "name"));
  if (json_is_integer(ref)) return json_integer_value(ref) == num;
  const char *r = json_string_value(ref);
  if (!r) return false;
  char *end;
  long v = strtol(r, &end, 10);
  if (*r && !*end) return v == num;
  return name && !strcmp(name, r);
}

/* The slice port a Service port leads to: its targetPort (number or name) among the slice's. */
static int follow_service_port(const json_t *svc_port, const json_t *slice_ports) {
  const json_t *tp = json_object_get(svc_port, "targetPort");
  if (!tp) tp = json_object_get(svc_port, "port"); /* targetPort defaults to port */
  size_t i;
  const json_t *sp;
  /* EndpointSlice ports carry the Service port's name and the resolved number */
  /* (an unnamed Service port appears in slices with no name or an empty one) */
  const char *svc_name = json_string_value(json_object_get(svc_port, "name"));
  if (!svc_name) svc_name = "";
  json_array_foreach(slice_ports, i, sp) {
    const char *n = json_string_value(json_object_get(sp, "name"));
    if (!strcmp(n ? n : "", svc_name)) return (int)json_integer_value(json_object_get(sp, "port"));
  }
  if (json_is_integer(tp)) return (int)json_integer_value(tp);
  return -1;
}

int ksel_resolve_port(const json_t *ep, const json_t *service, const json_t *slice_ports, pp_err *err) {
  const json_t *svc_ports = json_object_get(json_object_get(service, "spec"), "ports");
  const json_t *port = json_object_get(ep, "port"), *target = json_object_get(ep, "targetPort");
  size_t i;
  const json_t *p;
  int r = -1;
  if (port && json_is_string(port)) {
    json_array_foreach(svc_ports, i, p) {
      const char *n = json_string_value(json_object_get(p, "name"));
      if (n && !strcmp(n, json_string_value(port))) r = follow_service_port(p, slice_ports);
    }
    if (r < 0) return pp_err_set(err, PP_EUSAGE, "no Service port named \"%s\"", json_string_value(port));
  } else if (target) {
    /* first the container port (what the slice lists), then, as the seed did, a Service port */
    json_array_foreach(slice_ports, i, p) if (port_eq(target, p)) r = (int)json_integer_value(json_object_get(p, "port"));
    if (r < 0) {
      json_array_foreach(svc_ports, i, p) if (port_eq(target, p)) r = follow_service_port(p, slice_ports);
    }
    if (r < 0) return pp_err_set(err, PP_EUSAGE, "targetPort matches neither a container port nor a Service port");
  } else {
    return pp_err_set(err, PP_EUSAGE, "endpoint needs port or targetPort");
  }
  if (r < 1 || r > 65535) return pp_err_set(err, PP_EUSAGE, "resolved port %d is outside 1..65535", r);
  return r;
}
