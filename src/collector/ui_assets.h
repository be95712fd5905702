/* ui_assets: the web UI's files, compiled into the binary (tools/embed.py generates the table
 * from src/collector/ui/ at build time). Terminated by an entry with name == NULL. */
#ifndef COLLECTOR_UI_ASSETS_H
#define COLLECTOR_UI_ASSETS_H

#include <stddef.h>

typedef struct ui_asset {
  const char *name; /* file name, e.g. "app.js" */
  const char *content_type;
  const unsigned char *data;
  size_t len;
} ui_asset;

extern const ui_asset ui_assets[];

#endif
