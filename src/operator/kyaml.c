/* YAML to JSON for the operator; see kyaml.h. */
#include "kyaml.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "../base/file.h"

static json_t *scalar(const yaml_node_t *n) {
  const char *v = (const char *)n->data.scalar.value;
  size_t len = n->data.scalar.length;
  if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return json_stringn(v, len);
  if (!len || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL")) return json_null();
  if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE")) return json_true();
  if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE")) return json_false();
  char *end;
  errno = 0;
  long long i = strtoll(v, &end, 10);
  if (*end == '\0' && errno == 0 && (v[0] == '-' || v[0] == '+' || (v[0] >= '0' && v[0] <= '9'))) return json_integer(i);
  if (strspn(v, "0123456789+-.eE") == len && strpbrk(v, "0123456789")) {
    double d = strtod(v, &end);
    if (*end == '\0' && isfinite(d)) return json_real(d); /* 4e444 stays text: JSON has no inf */
  }
  return json_stringn(v, len);
}

/* n as JSON in *ret: 0, or a negative PP_E* code, also in err (which may be NULL: the code
 * never comes from err). */
static int convert(yaml_document_t *doc, yaml_node_t *n, int depth, json_t **ret, pp_err *err) {
  if (depth > KYAML_MAX_DEPTH)
    return pp_err_set(err, PP_ELIMIT, "line %zu: nested deeper than %d levels", n->start_mark.line + 1, KYAML_MAX_DEPTH);
  if (n->type == YAML_SCALAR_NODE) {
    /* scalar() fails only on text that is not UTF-8 (jansson refuses it) or out of memory */
    json_t *v = scalar(n);
    if (!v) return pp_err_set(err, PP_EINVAL, "line %zu: a scalar that is not valid UTF-8 text", n->start_mark.line + 1);
    *ret = v;
    return 0;
  }
  if (n->type == YAML_SEQUENCE_NODE) {
    json_t *a = json_array();
    if (!a) return pp_err_set(err, PP_ENOMEM, "out of memory");
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
      json_t *v = NULL;
      int r = convert(doc, yaml_document_get_node(doc, *it), depth + 1, &v, err);
      if (r == 0 && json_array_append_new(a, v) < 0) r = pp_err_set(err, PP_ENOMEM, "out of memory");
      if (r < 0) {
        json_decref(a);
        return r;
      }
    }
    *ret = a;
    return 0;
  }
  if (n->type == YAML_MAPPING_NODE) {
    json_t *o = json_object();
    if (!o) return pp_err_set(err, PP_ENOMEM, "out of memory");
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
      yaml_node_t *k = yaml_document_get_node(doc, p->key);
      int r = 0;
      json_t *v = NULL;
      char *key = NULL;
      if (!k || k->type != YAML_SCALAR_NODE) r = pp_err_set(err, PP_EINVAL, "line %zu: mapping keys must be scalars", n->start_mark.line + 1);
      if (r == 0) r = convert(doc, yaml_document_get_node(doc, p->value), depth + 1, &v, err);
      if (r == 0 && !(key = strndup((const char *)k->data.scalar.value, k->data.scalar.length))) {
        json_decref(v);
        r = pp_err_set(err, PP_ENOMEM, "out of memory");
      }
      if (r == 0 && json_object_set_new(o, key, v) < 0) r = pp_err_set(err, PP_ENOMEM, "out of memory");
      free(key);
      if (r < 0) {
        json_decref(o);
        return r;
      }
    }
    *ret = o;
    return 0;
  }
  return pp_err_set(err, PP_EINVAL, "unsupported YAML node");
}

/* Aliases are refused before the document is composed: libyaml would share the node, and a
 * chain of them expands exponentially once converted. */
static int has_alias(const char *text, size_t len, const char *what, pp_err *err) {
  yaml_parser_t p;
  yaml_event_t ev;
  int r = 0;
  if (!yaml_parser_initialize(&p)) return pp_err_set(err, PP_ENOMEM, "out of memory");
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  for (;;) {
    if (!yaml_parser_parse(&p, &ev)) {
      r = pp_err_set(err, PP_EINVAL, "%s:%zu:%zu: %s", what, p.problem_mark.line + 1, p.problem_mark.column + 1,
                     p.problem ? p.problem : "invalid YAML");
      break;
    }
    yaml_event_type_t t = ev.type;
    if (t == YAML_ALIAS_EVENT) r = pp_err_set(err, PP_EINVAL, "%s:%zu: aliases are not accepted", what, ev.start_mark.line + 1);
    yaml_event_delete(&ev);
    if (r < 0 || t == YAML_STREAM_END_EVENT) break;
  }
  yaml_parser_delete(&p);
  return r;
}

int kyaml_load_all(const char *text, size_t len, const char *what, json_t **ret, pp_err *err) {
  if (len > KYAML_MAX_BYTES) return pp_err_set(err, PP_ELIMIT, "%s: %zu bytes is over the %zu byte limit", what, len, KYAML_MAX_BYTES);
  int r = has_alias(text, len, what, err);
  if (r < 0) return r;
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) return pp_err_set(err, PP_ENOMEM, "out of memory");
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  json_t *all = json_array();
  for (;;) {
    yaml_document_t doc;
    if (!yaml_parser_load(&p, &doc)) {
      r = pp_err_set(err, PP_EINVAL, "%s:%zu:%zu: %s", what, p.problem_mark.line + 1, p.problem_mark.column + 1,
                     p.problem ? p.problem : "invalid YAML");
      break;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
      yaml_document_delete(&doc);
      break; /* end of stream */
    }
    bool empty = root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0;
    json_t *v = NULL;
    if (!empty) r = convert(&doc, root, 0, &v, err);
    yaml_document_delete(&doc);
    if (r < 0) break;
    if (v) json_array_append_new(all, v);
  }
  yaml_parser_delete(&p);
  if (r < 0) {
    json_decref(all);
    return r;
  }
  *ret = all;
  return 0;
}

int kyaml_load(const char *text, size_t len, const char *what, json_t **ret, pp_err *err) {
  json_t *all;
  int r = kyaml_load_all(text, len, what, &all, err);
  if (r < 0) return r;
  if (json_array_size(all) == 0) {
    json_decref(all);
    return pp_err_set(err, PP_EINVAL, "%s: no YAML document", what);
  }
  *ret = json_incref(json_array_get(all, 0));
  json_decref(all);
  return 0;
}

int kyaml_load_file(const char *path, json_t **ret, pp_err *err) {
  uint8_t *buf;
  size_t n;
  int r = pp_read_file(path, KYAML_MAX_BYTES, &buf, &n, err);
  if (r < 0) return r;
  r = kyaml_load((const char *)buf, n, path, ret, err);
  free(buf);
  return r;
}
