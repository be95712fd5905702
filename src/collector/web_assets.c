/* The UI's files. See web_assets.h. */
#include "web_assets.h"

#include <string.h>

PP_BLOB_TABLE(ui_assets);

const pp_blob *web_assets_find(const char *url) {
  static const char *const pages[] = {"/", "/targets", "/explorer", "/compare", "/dashboard", NULL};
  for (const char *const *p = pages; *p; p++)
    if (!strcmp(url, *p)) return pp_blob_find(ui_assets, "index.html");
  if (!strncmp(url, "/ui/", 4)) return pp_blob_find(ui_assets, url + 4);
  return NULL;
}
