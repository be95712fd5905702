/* kyaml: YAML documents (kubeconfig, the CRDs we install) as jansson values.
 *
 * Uses libyaml's document API. Plain scalars are typed as YAML 1.2's core schema does (null,
 * true/false, integers, floats); quoted scalars stay strings. Anchors and aliases are refused
 * (a billion-laughs document cannot expand), as are documents over KYAML_MAX_BYTES or nested
 * deeper than KYAML_MAX_DEPTH. kyaml_load_all returns every document of a stream as a JSON
 * array (empty documents skipped). Ownership: the caller owns the returned value (json_decref).
 */
#ifndef OPERATOR_KYAML_H
#define OPERATOR_KYAML_H

#include <jansson.h>
#include <stddef.h>

#include "../base/pp_err.h"

#define KYAML_MAX_BYTES ((size_t)4 << 20)
#define KYAML_MAX_DEPTH 64

int kyaml_load_all(const char *text, size_t len, const char *what, json_t **ret, pp_err *err);
/* The first (only) document. */
int kyaml_load(const char *text, size_t len, const char *what, json_t **ret, pp_err *err);
int kyaml_load_file(const char *path, json_t **ret, pp_err *err);

#endif
