/* Embedded files; see blob.h. */
#include "blob.h"

#include <string.h>

const pp_blob *pp_blob_find(const pp_blob *table, const char *name) {
  for (const pp_blob *b = table; b && b->name; b++)
    if (!strcmp(b->name, name)) return b;
  return NULL;
}
