/* Aggregation: per-function flat/cum (pprof_top) and the call tree (pprof_tree).
 *
 * Both group frames the way `go tool pprof` does at its default "functions" granularity
 * (google/pprof: Profile.Aggregate(function=true) then graph.nodeInfo): a frame is keyed by its
 * function name alone; a frame without a name is keyed by its mapping's file and the function's
 * start line. Every location is first turned into its list of frame nodes (one per line, inline
 * frames included, innermost first), so each sample is a walk over small integer arrays.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/htab.h"
#include "pprof_int.h"

typedef struct frames {
  htab keys;          /* frame key -> node index */
  const char **names; /* node index -> display name */
  size_t nnodes;
  uint32_t *loc_off; /* nlocation + 1 offsets into loc_nodes */
  uint32_t *loc_nodes;
} frames;

static void frames_free(frames *f) {
  htab_free(&f->keys);
  free(f->names);
  free(f->loc_off);
  free(f->loc_nodes);
  memset(f, 0, sizeof *f);
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* Builds the node tables; display names that need formatting are allocated from names_mem. */
static int frames_build(const pprof_profile *p, arena *names_mem, frames *f, pp_err *err) {
  memset(f, 0, sizeof *f);
  unsigned char *key = NULL;
  size_t total_lines = 0;
  for (size_t i = 0; i < p->nlocation; i++)
    total_lines += p->location[i].nline ? p->location[i].nline : 1;
  if (htab_init(&f->keys, p->nfunction + 16, 0) < 0) goto nomem;
  f->loc_off = malloc((p->nlocation + 1) * sizeof *f->loc_off);
  f->loc_nodes = malloc((total_lines ? total_lines : 1) * sizeof *f->loc_nodes);
  size_t names_cap = p->nfunction + 16;
  f->names = malloc(names_cap * sizeof *f->names);
  if (!f->loc_off || !f->loc_nodes || !f->names) goto nomem;

  /* Keys hold the name (or binary file name) by content: a string table may repeat a string. */
  size_t maxlen = 0;
  for (size_t i = 0; i < p->nstrings; i++)
    if (p->string_len[i] > maxlen) maxlen = p->string_len[i];
  key = malloc(maxlen + 16);
  if (!key) goto nomem;
  size_t k = 0;
  for (size_t i = 0; i < p->nlocation; i++) {
    const pprof_location *l = &p->location[i];
    f->loc_off[i] = (uint32_t)k;
    uint32_t nl = l->nline ? l->nline : 1;
    for (uint32_t j = 0; j < nl; j++) {
      const pprof_function *fn = NULL;
      if (l->nline && l->line[j].function) fn = &p->function[l->line[j].function - 1];
      size_t klen;
      uint32_t obj = 0;
      if (fn && p->string_len[fn->name]) {
        key[0] = 'N';
        memcpy(key + 1, p->strings[fn->name], p->string_len[fn->name]);
        klen = 1 + p->string_len[fn->name];
      } else {
        obj = l->mapping ? p->mapping[l->mapping - 1].filename : 0;
        int64_t start = fn ? fn->start_line : 0;
        key[0] = 'O';
        memcpy(key + 1, &start, 8);
        memcpy(key + 9, p->strings[obj], p->string_len[obj]);
        klen = 9 + p->string_len[obj];
      }
      uint32_t node;
      int r = htab_intern(&f->keys, key, klen, &node);
      if (r < 0) goto nomem;
      if (r == 1) {
        if (node >= names_cap) {
          names_cap *= 2;
          const char **nn = realloc(f->names, names_cap * sizeof *nn);
          if (!nn) goto nomem;
          f->names = nn;
        }
        const char *name;
        if (key[0] == 'N') {
          name = p->strings[fn->name];
        } else {
          if (p->string_len[obj]) {
            const char *b = base_name(p->strings[obj]);
            size_t bl = strlen(b);
            char *s = arena_alloc(names_mem, bl + 3);
            if (!s) goto nomem;
            s[0] = '[';
            memcpy(s + 1, b, bl);
            s[bl + 1] = ']';
            s[bl + 2] = '\0';
            name = s;
          } else {
            name = "<unknown>";
          }
        }
        f->names[node] = name;
        f->nnodes = node + 1;
      }
      f->loc_nodes[k++] = node;
    }
  }
  f->loc_off[p->nlocation] = (uint32_t)k;
  free(key);
  return 0;
nomem:
  free(key);
  frames_free(f);
  return pp_err_set(err, PP_ENOMEM, "out of memory");
}

int pprof_sample_index(const pprof_profile *p, const char *spec, pp_err *err) {
  if (p->nsample_type == 0) return pp_err_set(err, PP_EUSAGE, "profile has no sample types");
  if (!spec || !*spec) {
    if (p->default_sample_type) {
      for (size_t i = 0; i < p->nsample_type; i++)
        if (p->sample_type[i].type == p->default_sample_type ||
            strcmp(p->strings[p->sample_type[i].type], p->strings[p->default_sample_type]) == 0)
          return (int)i;
    }
    return (int)p->nsample_type - 1;
  }
  char *end;
  long v = strtol(spec, &end, 10);
  if (*end == '\0' && end != spec) {
    if (v >= 0 && (size_t)v < p->nsample_type) return (int)v;
  } else {
    for (size_t i = 0; i < p->nsample_type; i++)
      if (strcmp(p->strings[p->sample_type[i].type], spec) == 0) return (int)i;
  }
  char avail[256] = "";
  size_t off = 0;
  for (size_t i = 0; i < p->nsample_type && off < sizeof avail - 1; i++) {
    int n = snprintf(avail + off, sizeof avail - off, "%s%zu=%s", i ? ", " : "", i,
                     p->strings[p->sample_type[i].type]);
    if (n < 0) break;
    off += (size_t)n;
  }
  return pp_err_set(err, PP_EUSAGE, "no sample type \"%s\" (available: %s)", spec, avail);
}

/* ---- top ---------------------------------------------------------------------------------- */

static int cmp_stat(const void *a, const void *b) {
  const pprof_func_stat *x = a, *y = b;
  if (x->flat != y->flat) return x->flat > y->flat ? -1 : 1;
  int c = strcmp(x->name, y->name);
  if (c) return c;
  return x->cum > y->cum ? -1 : x->cum < y->cum;
}

static inline int64_t wrap_add(int64_t a, int64_t b) {
  return (int64_t)((uint64_t)a + (uint64_t)b);
}

int pprof_top_compute(const pprof_profile *p, int si, pprof_top *t, pp_err *err) {
  memset(t, 0, sizeof *t);
  arena_init(&t->mem, 0);
  if (si < 0 || (size_t)si >= p->nsample_type)
    return pp_err_set(err, PP_EUSAGE, "sample index %d outside 0..%zu", si, p->nsample_type);
  frames f;
  int r = frames_build(p, &t->mem, &f, err);
  if (r < 0) return r;
  int64_t *flat = calloc(f.nnodes + 1, sizeof *flat);
  int64_t *cum = calloc(f.nnodes + 1, sizeof *cum);
  uint32_t *stamp = calloc(f.nnodes + 1, sizeof *stamp);
  if (!flat || !cum || !stamp) {
    r = pp_err_set(err, PP_ENOMEM, "out of memory");
    goto out;
  }
  uint32_t cur = 0;
  int64_t total = 0;
  for (size_t i = 0; i < p->nsample; i++) {
    const pprof_sample *s = &p->sample[i];
    int64_t v = s->value[si];
    if (v == 0) continue;
    total = wrap_add(total, v < 0 ? (int64_t)(0 - (uint64_t)v) : v); /* |INT64_MIN| wraps, as in Go */
    if (s->nloc == 0) continue;
    if (++cur == 0) { /* stamps wrapped: clear them once every 4G samples */
      memset(stamp, 0, (f.nnodes + 1) * sizeof *stamp);
      cur = 1;
    }
    uint32_t leaf = f.loc_nodes[f.loc_off[s->loc[0]]];
    flat[leaf] = wrap_add(flat[leaf], v);
    for (uint32_t j = 0; j < s->nloc; j++) {
      uint32_t l = s->loc[j];
      for (uint32_t k = f.loc_off[l]; k < f.loc_off[l + 1]; k++) {
        uint32_t n = f.loc_nodes[k];
        if (stamp[n] != cur) {
          stamp[n] = cur;
          cum[n] = wrap_add(cum[n], v);
        }
      }
    }
  }
  /* A node is listed unless both its values are 0 (google/pprof's selectNodesForGraph): nodes
   * only in zero samples, or whose values cancel out in a diff, are left out. */
  size_t n = 0;
  for (size_t i = 0; i < f.nnodes; i++)
    n += flat[i] != 0 || cum[i] != 0;
  t->funcs = arena_alloc(&t->mem, (n ? n : 1) * sizeof *t->funcs);
  if (!t->funcs) {
    r = pp_err_set(err, PP_ENOMEM, "out of memory");
    goto out;
  }
  for (size_t i = 0, o = 0; i < f.nnodes; i++) {
    if (flat[i] == 0 && cum[i] == 0) continue;
    t->funcs[o].name = f.names[i];
    t->funcs[o].flat = flat[i];
    t->funcs[o].cum = cum[i];
    o++;
  }
  t->nfuncs = n;
  t->total = total;
  qsort(t->funcs, n, sizeof *t->funcs, cmp_stat);
out:
  free(flat);
  free(cum);
  free(stamp);
  frames_free(&f);
  if (r < 0) pprof_top_release(t);
  return r;
}

void pprof_top_release(pprof_top *t) {
  arena_free(&t->mem);
  t->funcs = NULL;
  t->nfuncs = 0;
}

/* ---- call tree ---------------------------------------------------------------------------- */

int pprof_tree_compute(const pprof_profile *p, int si, size_t max_nodes, pprof_tree *t,
                       pp_err *err) {
  memset(t, 0, sizeof *t);
  arena_init(&t->mem, 0);
  if (si < 0 || (size_t)si >= p->nsample_type)
    return pp_err_set(err, PP_EUSAGE, "sample index %d outside 0..%zu", si, p->nsample_type);
  if (max_nodes == 0) max_nodes = (size_t)16 << 20;
  frames f;
  int r = frames_build(p, &t->mem, &f, err);
  if (r < 0) return r;
  htab children; /* (parent, frame node) -> tree node - 1 */
  size_t cap = 1024;
  pprof_tree_node *nodes = malloc(cap * sizeof *nodes);
  if (htab_init(&children, 1024, max_nodes) < 0 || !nodes) {
    r = pp_err_set(err, PP_ENOMEM, "out of memory");
    goto out;
  }
  size_t nn = 1;
  nodes[0] = (pprof_tree_node){.name = ""};
  for (size_t i = 0; i < p->nsample; i++) {
    const pprof_sample *s = &p->sample[i];
    int64_t v = s->value[si];
    if (v == 0) continue;
    uint32_t cur = 0;
    nodes[0].total = wrap_add(nodes[0].total, v);
    for (uint32_t j = s->nloc; j-- > 0;) {
      uint32_t l = s->loc[j];
      for (uint32_t k = f.loc_off[l + 1]; k-- > f.loc_off[l];) {
        uint32_t key[2] = {cur, f.loc_nodes[k]};
        uint32_t idx;
        int ir = htab_intern(&children, key, sizeof key, &idx);
        if (ir < 0) {
          r = ir == PP_ELIMIT ? pp_err_set(err, PP_ELIMIT, "call tree exceeds %zu nodes", max_nodes)
                              : pp_err_set(err, PP_ENOMEM, "out of memory");
          goto out;
        }
        uint32_t child = idx + 1;
        if (ir == 1) {
          if (nn == cap) {
            cap *= 2;
            pprof_tree_node *nb = realloc(nodes, cap * sizeof *nb);
            if (!nb) {
              r = pp_err_set(err, PP_ENOMEM, "out of memory");
              goto out;
            }
            nodes = nb;
          }
          nodes[child] = (pprof_tree_node){.name = f.names[key[1]],
                                           .parent = cur,
                                           .next_sibling = nodes[cur].first_child,
                                           .depth = nodes[cur].depth + 1};
          nodes[cur].first_child = child;
          nn++;
        }
        nodes[child].total = wrap_add(nodes[child].total, v);
        cur = child;
      }
    }
    nodes[cur].self = wrap_add(nodes[cur].self, v);
  }
  t->nodes = arena_alloc(&t->mem, nn * sizeof *t->nodes);
  if (!t->nodes) {
    r = pp_err_set(err, PP_ENOMEM, "out of memory");
    goto out;
  }
  memcpy(t->nodes, nodes, nn * sizeof *nodes);
  t->nnodes = nn;
out:
  free(nodes);
  htab_free(&children);
  frames_free(&f);
  if (r < 0) pprof_tree_release(t);
  return r;
}

void pprof_tree_release(pprof_tree *t) {
  arena_free(&t->mem);
  t->nodes = NULL;
  t->nnodes = 0;
}

/* ---- multi-profile call tree --------------------------------------------------------------- */

int pprof_multitree_compute(const pprof_profile *const *ps, const int *si, size_t n,
                            size_t max_nodes, pprof_multitree *t, pp_err *err) {
  memset(t, 0, sizeof *t);
  arena_init(&t->mem, 0);
  t->ninputs = n;
  if (n == 0 || n > 16) return pp_err_set(err, PP_EUSAGE, "multitree takes 1..16 profiles");
  for (size_t k = 0; k < n; k++)
    if (si[k] < 0 || (size_t)si[k] >= ps[k]->nsample_type)
      return pp_err_set(err, PP_EUSAGE, "sample index %d outside profile %zu's types", si[k], k);
  if (max_nodes == 0) max_nodes = (size_t)4 << 20;
  /* Children are keyed by (parent, name by content), since each input has its own strings. */
  htab children;
  size_t cap = 1024;
  const char **names = malloc(cap * sizeof *names);
  uint32_t *parent = malloc(cap * sizeof *parent), *depth = malloc(cap * sizeof *depth);
  int64_t *self = calloc(cap * n, sizeof *self), *total = calloc(cap * n, sizeof *total);
  unsigned char *key = NULL;
  size_t keycap = 0;
  int r = 0;
  frames f = {0};
  if (htab_init(&children, 1024, max_nodes) < 0 || !names || !parent || !depth || !self || !total) {
    r = pp_err_set(err, PP_ENOMEM, "out of memory");
    goto out;
  }
  size_t nn = 1;
  names[0] = "";
  parent[0] = 0;
  depth[0] = 0;
  for (size_t k = 0; k < n && r == 0; k++) {
    const pprof_profile *p = ps[k];
    if ((r = frames_build(p, &t->mem, &f, err)) < 0) break;
    for (size_t i = 0; i < p->nsample; i++) {
      const pprof_sample *s = &p->sample[i];
      int64_t v = s->value[si[k]];
      if (v == 0) continue;
      uint32_t cur = 0;
      total[k] = wrap_add(total[k], v);
      for (uint32_t j = s->nloc; j-- > 0 && r == 0;) {
        uint32_t l = s->loc[j];
        for (uint32_t q = f.loc_off[l + 1]; q-- > f.loc_off[l];) {
          const char *name = f.names[f.loc_nodes[q]];
          size_t nl = strlen(name), kl = 4 + nl;
          if (kl > keycap) {
            keycap = kl * 2;
            unsigned char *nk = realloc(key, keycap);
            if (!nk) {
              r = pp_err_set(err, PP_ENOMEM, "out of memory");
              break;
            }
            key = nk;
          }
          memcpy(key, &cur, 4);
          memcpy(key + 4, name, nl);
          uint32_t idx;
          int ir = htab_intern(&children, key, kl, &idx);
          if (ir < 0) {
            r = ir == PP_ELIMIT
                    ? pp_err_set(err, PP_ELIMIT, "call tree exceeds %zu nodes", max_nodes)
                    : pp_err_set(err, PP_ENOMEM, "out of memory");
            break;
          }
          uint32_t child = idx + 1;
          if (ir == 1) {
            if (nn == cap) {
              size_t nc = cap * 2;
              const char **a = realloc(names, nc * sizeof *a);
              if (a) names = a;
              uint32_t *b = realloc(parent, nc * sizeof *b);
              if (b) parent = b;
              uint32_t *c = realloc(depth, nc * sizeof *c);
              if (c) depth = c;
              int64_t *d = realloc(self, nc * n * sizeof *d);
              if (d) self = d;
              int64_t *e = realloc(total, nc * n * sizeof *e);
              if (e) total = e;
              if (!a || !b || !c || !d || !e) {
                r = pp_err_set(err, PP_ENOMEM, "out of memory");
                break;
              }
              memset(self + cap * n, 0, cap * n * sizeof *self);
              memset(total + cap * n, 0, cap * n * sizeof *total);
              cap = nc;
            }
            /* names live in the tree's arena: a profile's strings may go before the tree */
            names[child] = arena_strndup(&t->mem, name, nl);
            parent[child] = cur;
            depth[child] = depth[cur] + 1;
            nn++;
          }
          total[child * n + k] = wrap_add(total[child * n + k], v);
          cur = child;
        }
      }
      if (r == 0) self[cur * n + k] = wrap_add(self[cur * n + k], v);
    }
    frames_free(&f);
  }
  if (r == 0) {
    t->names = arena_alloc(&t->mem, nn * sizeof *t->names);
    t->parent = arena_alloc(&t->mem, nn * sizeof *t->parent);
    t->depth = arena_alloc(&t->mem, nn * sizeof *t->depth);
    t->self = arena_alloc(&t->mem, nn * n * sizeof *t->self);
    t->total = arena_alloc(&t->mem, nn * n * sizeof *t->total);
    if (!t->names || !t->parent || !t->depth || !t->self || !t->total) {
      r = pp_err_set(err, PP_ENOMEM, "out of memory");
    } else {
      memcpy(t->names, names, nn * sizeof *names);
      memcpy(t->parent, parent, nn * sizeof *parent);
      memcpy(t->depth, depth, nn * sizeof *depth);
      memcpy(t->self, self, nn * n * sizeof *self);
      memcpy(t->total, total, nn * n * sizeof *total);
      t->nnodes = nn;
    }
  }
out:
  frames_free(&f);
  htab_free(&children);
  free(names);
  free(parent);
  free(depth);
  free(self);
  free(total);
  free(key);
  if (r < 0) pprof_multitree_release(t);
  return r;
}

void pprof_multitree_release(pprof_multitree *t) {
  arena_free(&t->mem);
  t->names = NULL;
  t->nnodes = 0;
}
