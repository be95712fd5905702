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

/* Builds a pprof_multitree node by node. Each input has its own strings, so names are
 * interned once per input into the builder's name ids (mtb_names: an input's frame node ->
 * name id); children are then keyed by (parent, name id), 8 bytes whatever the name, and
 * every node of one name points at that name's one copy in the tree's arena. Shared by
 * pprof_multitree_compute and pprof_focus_compute. With stamps, each node's total and self
 * take a sample's value once however often the sample reaches the node (mtb_add_total,
 * mtb_add_self with the sample's stamp).
 * Samples of a profile share most of their stacks with the sample before (Go writes them in
 * the order its profile buckets hash to, pprof-tool's and the store's merges keep the first
 * occurrence's order, and stacks of a program start with the same few frames), so the builder
 * keeps the last walk from the root (path: name ids and nodes by depth): while a walk follows
 * it, each node is known from one compare instead of a lookup. */
typedef struct mtb {
  htab children; /* (parent, name id) -> node - 1 */
  htab name_ids; /* name bytes -> name id */
  const char **name_of; /* name id -> the name, in names_mem */
  size_t name_cap;
  const char **names;
  uint32_t *parent, *depth;
  int64_t *self, *total;  /* cap * n each */
  uint64_t *seen_t, *seen_s; /* stamps, or NULL */
  size_t cap, nn, n, max_nodes;
  arena *names_mem; /* the tree's arena: a profile's strings may go before the tree */
  uint32_t *path_nid, *path_node; /* the last walk: depth -> name id, node */
  size_t path_len, path_cap;
} mtb;

static void mtb_free(mtb *b) {
  htab_free(&b->children);
  htab_free(&b->name_ids);
  free(b->name_of);
  free(b->names);
  free(b->parent);
  free(b->depth);
  free(b->self);
  free(b->total);
  free(b->seen_t);
  free(b->seen_s);
  free(b->path_nid);
  free(b->path_node);
  memset(b, 0, sizeof *b);
}

/* An empty tree holding its root (node 0, name root_name). */
static int mtb_init(mtb *b, size_t n, size_t max_nodes, bool stamps, const char *root_name, arena *names_mem,
                    pp_err *err) {
  memset(b, 0, sizeof *b);
  b->cap = 1024;
  b->n = n;
  b->max_nodes = max_nodes;
  b->names_mem = names_mem;
  b->names = malloc(b->cap * sizeof *b->names);
  b->parent = malloc(b->cap * sizeof *b->parent);
  b->depth = malloc(b->cap * sizeof *b->depth);
  b->self = calloc(b->cap * n, sizeof *b->self);
  b->total = calloc(b->cap * n, sizeof *b->total);
  if (stamps) {
    b->seen_t = calloc(b->cap, sizeof *b->seen_t);
    b->seen_s = calloc(b->cap, sizeof *b->seen_s);
  }
  if (htab_init(&b->children, 1024, max_nodes) < 0 || htab_init(&b->name_ids, 256, 0) < 0 || !b->names ||
      !b->parent || !b->depth || !b->self || !b->total || (stamps && (!b->seen_t || !b->seen_s)) ||
      !(b->names[0] = arena_strndup(names_mem, root_name, strlen(root_name)))) {
    mtb_free(b);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  b->nn = 1;
  b->parent[0] = 0;
  b->depth[0] = 0;
  return 0;
}

/* The name ids of an input's frame nodes (f's names): *ret (f->nnodes entries, the caller
 * frees it). */
static int mtb_names(mtb *b, const frames *f, uint32_t **ret, pp_err *err) {
  uint32_t *ids = malloc((f->nnodes ? f->nnodes : 1) * sizeof *ids);
  if (!ids) return pp_err_set(err, PP_ENOMEM, "out of memory");
  for (size_t i = 0; i < f->nnodes; i++) {
    size_t nl = strlen(f->names[i]);
    int ir = htab_intern(&b->name_ids, f->names[i], nl, &ids[i]);
    if (ir == 1) {
      if (ids[i] >= b->name_cap) {
        size_t nc = b->name_cap ? 2 * b->name_cap : 256;
        const char **no = realloc(b->name_of, nc * sizeof *no);
        if (!no) ir = PP_ENOMEM;
        else b->name_of = no, b->name_cap = nc;
      }
      if (ir == 1 && !(b->name_of[ids[i]] = arena_strndup(b->names_mem, f->names[i], nl))) ir = PP_ENOMEM;
    }
    if (ir < 0) {
      free(ids);
      return pp_err_set(err, PP_ENOMEM, "out of memory");
    }
  }
  *ret = ids;
  return 0;
}

static int mtb_grow(mtb *b, pp_err *err) {
  size_t nc = b->cap * 2, n = b->n;
  const char **a = realloc(b->names, nc * sizeof *a);
  if (a) b->names = a;
  uint32_t *p = realloc(b->parent, nc * sizeof *p);
  if (p) b->parent = p;
  uint32_t *c = realloc(b->depth, nc * sizeof *c);
  if (c) b->depth = c;
  int64_t *d = realloc(b->self, nc * n * sizeof *d);
  if (d) b->self = d;
  int64_t *e = realloc(b->total, nc * n * sizeof *e);
  if (e) b->total = e;
  bool ok = a && p && c && d && e;
  if (ok && b->seen_t) {
    uint64_t *f = realloc(b->seen_t, nc * sizeof *f);
    if (f) b->seen_t = f;
    uint64_t *g = realloc(b->seen_s, nc * sizeof *g);
    if (g) b->seen_s = g;
    ok = f && g;
    if (ok) {
      memset(b->seen_t + b->cap, 0, b->cap * sizeof *f);
      memset(b->seen_s + b->cap, 0, b->cap * sizeof *g);
    }
  }
  if (!ok) return pp_err_set(err, PP_ENOMEM, "out of memory");
  memset(b->self + b->cap * n, 0, b->cap * n * sizeof *b->self);
  memset(b->total + b->cap * n, 0, b->cap * n * sizeof *b->total);
  b->cap = nc;
  return 0;
}

/* One step of a walk from the root: the child named by name id nid (mtb_names) of *cur, the
 * walk's node at depth d (d = 0: the root), created if new, into *cur. */
static inline int mtb_step(mtb *b, size_t d, uint32_t nid, uint32_t *cur, pp_err *err) {
  /* the walks before went through the same nodes down to here: the path holds the child */
  if (d < b->path_len && b->path_nid[d] == nid) {
    *cur = b->path_node[d];
    return 0;
  }
  uint32_t key[2] = {*cur, nid};
  uint32_t idx;
  int ir = htab_intern(&b->children, key, sizeof key, &idx);
  if (ir < 0)
    return ir == PP_ELIMIT ? pp_err_set(err, PP_ELIMIT, "call tree exceeds %zu nodes", b->max_nodes)
                           : pp_err_set(err, PP_ENOMEM, "out of memory");
  uint32_t child = idx + 1;
  if (ir == 1) {
    if (b->nn == b->cap && mtb_grow(b, err) < 0) return PP_ENOMEM;
    b->names[child] = b->name_of[nid];
    b->parent[child] = *cur;
    b->depth[child] = b->depth[*cur] + 1;
    b->nn++;
  }
  if (d >= b->path_cap) {
    size_t nc = b->path_cap ? 2 * b->path_cap : 64;
    while (nc <= d) nc *= 2;
    uint32_t *pn = realloc(b->path_nid, nc * sizeof *pn);
    if (pn) b->path_nid = pn;
    uint32_t *pd = realloc(b->path_node, nc * sizeof *pd);
    if (pd) b->path_node = pd;
    if (!pn || !pd) return pp_err_set(err, PP_ENOMEM, "out of memory");
    b->path_cap = nc;
  }
  /* the path is now this walk's, down to here */
  b->path_nid[d] = nid;
  b->path_node[d] = child;
  b->path_len = d + 1;
  *cur = child;
  return 0;
}

static inline void mtb_add_total(mtb *b, uint32_t node, size_t k, int64_t v, uint64_t stamp) {
  if (b->seen_t) {
    if (b->seen_t[node] == stamp) return;
    b->seen_t[node] = stamp;
  }
  b->total[node * b->n + k] = wrap_add(b->total[node * b->n + k], v);
}

static inline void mtb_add_self(mtb *b, uint32_t node, size_t k, int64_t v, uint64_t stamp) {
  if (b->seen_s) {
    if (b->seen_s[node] == stamp) return;
    b->seen_s[node] = stamp;
  }
  b->self[node * b->n + k] = wrap_add(b->self[node * b->n + k], v);
}

/* Copies the nodes into t (whose arena already holds the names) and frees the builder. */
static int mtb_finish(mtb *b, pprof_multitree *t, pp_err *err) {
  size_t nn = b->nn, n = b->n;
  t->ninputs = n;
  t->names = arena_alloc(&t->mem, nn * sizeof *t->names);
  t->parent = arena_alloc(&t->mem, nn * sizeof *t->parent);
  t->depth = arena_alloc(&t->mem, nn * sizeof *t->depth);
  t->self = arena_alloc(&t->mem, nn * n * sizeof *t->self);
  t->total = arena_alloc(&t->mem, nn * n * sizeof *t->total);
  if (!t->names || !t->parent || !t->depth || !t->self || !t->total) {
    mtb_free(b);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  memcpy(t->names, b->names, nn * sizeof *t->names);
  memcpy(t->parent, b->parent, nn * sizeof *t->parent);
  memcpy(t->depth, b->depth, nn * sizeof *t->depth);
  memcpy(t->self, b->self, nn * n * sizeof *t->self);
  memcpy(t->total, b->total, nn * n * sizeof *t->total);
  t->nnodes = nn;
  mtb_free(b);
  return 0;
}

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
  mtb b;
  int r = mtb_init(&b, n, max_nodes, false, "", &t->mem, err);
  if (r < 0) return r;
  frames f = {0};
  for (size_t k = 0; k < n && r == 0; k++) {
    const pprof_profile *p = ps[k];
    if ((r = frames_build(p, &t->mem, &f, err)) < 0) break;
    uint32_t *nid = NULL;
    if ((r = mtb_names(&b, &f, &nid, err)) < 0) break;
    for (size_t i = 0; i < p->nsample && r == 0; i++) {
      const pprof_sample *s = &p->sample[i];
      int64_t v = s->value[si[k]];
      if (v == 0) continue;
      uint32_t cur = 0;
      size_t d = 0;
      mtb_add_total(&b, 0, k, v, 0);
      for (uint32_t j = s->nloc; j-- > 0 && r == 0;) {
        uint32_t l = s->loc[j];
        for (uint32_t q = f.loc_off[l + 1]; q-- > f.loc_off[l];) {
          if ((r = mtb_step(&b, d++, nid[f.loc_nodes[q]], &cur, err)) < 0) break;
          mtb_add_total(&b, cur, k, v, 0);
        }
      }
      if (r == 0) mtb_add_self(&b, cur, k, v, 0);
    }
    free(nid);
    frames_free(&f);
  }
  if (r == 0) r = mtb_finish(&b, t, err);
  else mtb_free(&b);
  frames_free(&f);
  if (r < 0) pprof_multitree_release(t);
  return r;
}

void pprof_multitree_release(pprof_multitree *t) {
  arena_free(&t->mem);
  t->names = NULL;
  t->nnodes = 0;
}

/* ---- focus (sandwich and lines) ------------------------------------------------------------ */

/* The lines of the focus function: (line, file) -> entry, values ninputs each. */
typedef struct focus_lines {
  htab keys;
  pprof_focus_line *e;
  int64_t *flat, *cum;
  uint64_t *seen;
  size_t cap, n, ninputs;
  unsigned char *key;
  size_t keycap;
} focus_lines;

static void focus_lines_free(focus_lines *fl) {
  htab_free(&fl->keys);
  free(fl->e);
  free(fl->flat);
  free(fl->cum);
  free(fl->seen);
  free(fl->key);
  memset(fl, 0, sizeof *fl);
}

/* Adds v to the entry of (file, line): cum once per stamp, flat when leaf. */
static int focus_lines_add(focus_lines *fl, arena *mem, const char *file, size_t flen, int64_t line, size_t k,
                           int64_t v, bool leaf, uint64_t stamp, pp_err *err) {
  size_t kl = 8 + flen;
  if (kl > fl->keycap) {
    unsigned char *nk = realloc(fl->key, kl * 2);
    if (!nk) return pp_err_set(err, PP_ENOMEM, "out of memory");
    fl->key = nk;
    fl->keycap = kl * 2;
  }
  memcpy(fl->key, &line, 8);
  memcpy(fl->key + 8, file, flen);
  uint32_t idx;
  int ir = htab_intern(&fl->keys, fl->key, kl, &idx);
  if (ir < 0) return pp_err_set(err, PP_ENOMEM, "out of memory");
  if (ir == 1) {
    if (fl->n == fl->cap) {
      size_t nc = fl->cap ? fl->cap * 2 : 64, n = fl->ninputs;
      pprof_focus_line *e = realloc(fl->e, nc * sizeof *e);
      if (e) fl->e = e;
      int64_t *a = realloc(fl->flat, nc * n * sizeof *a);
      if (a) fl->flat = a;
      int64_t *c = realloc(fl->cum, nc * n * sizeof *c);
      if (c) fl->cum = c;
      uint64_t *s = realloc(fl->seen, nc * sizeof *s);
      if (s) fl->seen = s;
      if (!e || !a || !c || !s) return pp_err_set(err, PP_ENOMEM, "out of memory");
      memset(fl->flat + fl->cap * n, 0, (nc - fl->cap) * n * sizeof *a);
      memset(fl->cum + fl->cap * n, 0, (nc - fl->cap) * n * sizeof *c);
      memset(fl->seen + fl->cap, 0, (nc - fl->cap) * sizeof *s);
      fl->cap = nc;
    }
    char *f = arena_strndup(mem, file, flen);
    if (!f) return pp_err_set(err, PP_ENOMEM, "out of memory");
    fl->e[idx] = (pprof_focus_line){.file = f, .line = line};
    fl->n++;
  }
  size_t n = fl->ninputs;
  if (fl->seen[idx] != stamp) {
    fl->seen[idx] = stamp;
    fl->cum[idx * n + k] = wrap_add(fl->cum[idx * n + k], v);
  }
  if (leaf) fl->flat[idx * n + k] = wrap_add(fl->flat[idx * n + k], v);
  return 0;
}

static int cmp_focus_line(const void *a, const void *b) {
  const pprof_focus_line *x = a, *y = b;
  if (x->flat[0] != y->flat[0]) return x->flat[0] > y->flat[0] ? -1 : 1;
  if (x->cum[0] != y->cum[0]) return x->cum[0] > y->cum[0] ? -1 : 1;
  int c = strcmp(x->file, y->file);
  if (c) return c;
  return x->line < y->line ? -1 : x->line > y->line;
}

/* One input's samples into the focus: trees, lines and the function's values. */
static int focus_input(const pprof_profile *p, size_t k, int si, const char *name, mtb *callees, mtb *callers,
                       focus_lines *fl, pprof_focus *fo, uint64_t *stamp, pp_err *err) {
  frames f;
  int r = frames_build(p, &fo->mem, &f, err);
  if (r < 0) return r;
  bool *isf = calloc(f.nnodes + 1, sizeof *isf);
  uint32_t *ce = NULL, *cr = NULL; /* the frame nodes' name ids in callees and in callers */
  size_t cap = 256;
  uint32_t *st = malloc(cap * sizeof *st), *stq = malloc(cap * sizeof *stq), *stl = malloc(cap * sizeof *stl);
  if (!isf || !st || !stq || !stl) {
    r = pp_err_set(err, PP_ENOMEM, "out of memory");
    goto out;
  }
  bool any = false;
  for (size_t i = 0; i < f.nnodes; i++) any |= isf[i] = strcmp(f.names[i], name) == 0;
  if (any && ((r = mtb_names(callees, &f, &ce, err)) < 0 || (r = mtb_names(callers, &f, &cr, err)) < 0)) goto out;
  for (size_t i = 0; any && i < p->nsample && r == 0; i++) {
    const pprof_sample *s = &p->sample[i];
    int64_t v = s->value[si];
    if (v == 0 || s->nloc == 0) continue;
    /* the stack's frames, root first */
    size_t d = 0;
    bool has = false;
    for (uint32_t j = s->nloc; j-- > 0;) {
      uint32_t l = s->loc[j];
      for (uint32_t q = f.loc_off[l + 1]; q-- > f.loc_off[l];) {
        if (d == cap) {
          cap *= 2;
          uint32_t *a = realloc(st, cap * sizeof *a);
          if (a) st = a;
          uint32_t *b = realloc(stq, cap * sizeof *b);
          if (b) stq = b;
          uint32_t *c = realloc(stl, cap * sizeof *c);
          if (c) stl = c;
          if (!a || !b || !c) {
            r = pp_err_set(err, PP_ENOMEM, "out of memory");
            goto out;
          }
        }
        st[d] = f.loc_nodes[q];
        stl[d] = l;
        stq[d] = q - f.loc_off[l];
        has |= isf[st[d]];
        d++;
      }
    }
    if (!has) continue;
    uint64_t sn = ++*stamp;
    fo->found = true;
    fo->cum[k] = wrap_add(fo->cum[k], v);
    if (isf[st[d - 1]]) fo->flat[k] = wrap_add(fo->flat[k], v);
    mtb_add_total(callees, 0, k, v, sn);
    mtb_add_total(callers, 0, k, v, sn);
    for (size_t a = 0; a < d && r == 0;) {
      if (!isf[st[a]]) {
        a++;
        continue;
      }
      size_t e = a;
      while (e + 1 < d && isf[st[e + 1]]) e++;
      /* the run a..e is one occurrence: callees below it, callers above it */
      uint32_t cur = 0;
      for (size_t q = e + 1; q < d && r == 0; q++)
        if ((r = mtb_step(callees, q - e - 1, ce[st[q]], &cur, err)) == 0) mtb_add_total(callees, cur, k, v, sn);
      if (r == 0) mtb_add_self(callees, cur, k, v, sn);
      cur = 0;
      for (size_t q = a; q-- > 0 && r == 0;)
        if ((r = mtb_step(callers, a - 1 - q, cr[st[q]], &cur, err)) == 0) mtb_add_total(callers, cur, k, v, sn);
      if (r == 0) mtb_add_self(callers, cur, k, v, sn);
      /* the lines of every frame of the run */
      for (size_t q = a; q <= e && r == 0; q++) {
        const pprof_location *loc = &p->location[stl[q]];
        const char *file = "";
        size_t flen = 0;
        int64_t line = 0;
        if (loc->nline) {
          const pprof_line *ln = &loc->line[stq[q]];
          if (ln->function) {
            const pprof_function *fn = &p->function[ln->function - 1];
            file = p->strings[fn->filename];
            flen = p->string_len[fn->filename];
            line = ln->line;
          }
        }
        r = focus_lines_add(fl, &fo->mem, file, flen, line, k, v, q == d - 1, sn, err);
      }
      a = e + 1;
    }
  }
out:
  free(isf);
  free(ce);
  free(cr);
  free(st);
  free(stq);
  free(stl);
  frames_free(&f);
  return r;
}

int pprof_focus_compute(const pprof_profile *const *ps, const int *si, size_t n, const char *name,
                        size_t max_nodes, pprof_focus *fo, pp_err *err) {
  memset(fo, 0, sizeof *fo);
  arena_init(&fo->mem, 0);
  arena_init(&fo->callees.mem, 0);
  arena_init(&fo->callers.mem, 0);
  fo->ninputs = n;
  if (n == 0 || n > 16) return pp_err_set(err, PP_EUSAGE, "focus takes 1..16 profiles");
  for (size_t k = 0; k < n; k++)
    if (si[k] < 0 || (size_t)si[k] >= ps[k]->nsample_type)
      return pp_err_set(err, PP_EUSAGE, "sample index %d outside profile %zu's types", si[k], k);
  if (max_nodes == 0) max_nodes = (size_t)4 << 20;
  fo->flat = arena_calloc(&fo->mem, n, sizeof *fo->flat);
  fo->cum = arena_calloc(&fo->mem, n, sizeof *fo->cum);
  if (!fo->flat || !fo->cum) return pp_err_set(err, PP_ENOMEM, "out of memory");
  mtb callees, callers;
  focus_lines fl = {.ninputs = n};
  int r = mtb_init(&callees, n, max_nodes, true, name, &fo->callees.mem, err);
  if (r < 0) return r;
  if ((r = mtb_init(&callers, n, max_nodes, true, name, &fo->callers.mem, err)) < 0) {
    mtb_free(&callees);
    return r;
  }
  if (htab_init(&fl.keys, 64, 0) < 0) r = pp_err_set(err, PP_ENOMEM, "out of memory");
  uint64_t stamp = 0;
  for (size_t k = 0; k < n && r == 0; k++)
    r = focus_input(ps[k], k, si[k], name, &callees, &callers, &fl, fo, &stamp, err);
  if (r == 0) {
    r = mtb_finish(&callees, &fo->callees, err);
    if (r == 0) r = mtb_finish(&callers, &fo->callers, err);
  }
  if (r == 0) {
    size_t kept = 0;
    for (size_t i = 0; i < fl.n; i++) {
      bool nz = false;
      for (size_t k = 0; k < n; k++) nz |= fl.flat[i * n + k] != 0 || fl.cum[i * n + k] != 0;
      if (nz) kept++;
    }
    fo->lines = arena_alloc(&fo->mem, (kept ? kept : 1) * sizeof *fo->lines);
    int64_t *vals = arena_alloc(&fo->mem, (kept ? kept : 1) * 2 * n * sizeof *vals);
    if (!fo->lines || !vals) {
      r = pp_err_set(err, PP_ENOMEM, "out of memory");
    } else {
      size_t o = 0;
      for (size_t i = 0; i < fl.n; i++) {
        bool nz = false;
        for (size_t k = 0; k < n; k++) nz |= fl.flat[i * n + k] != 0 || fl.cum[i * n + k] != 0;
        if (!nz) continue;
        fo->lines[o] = fl.e[i];
        fo->lines[o].flat = vals + o * 2 * n;
        fo->lines[o].cum = vals + o * 2 * n + n;
        memcpy(fo->lines[o].flat, fl.flat + i * n, n * sizeof *vals);
        memcpy(fo->lines[o].cum, fl.cum + i * n, n * sizeof *vals);
        o++;
      }
      fo->nlines = kept;
      qsort(fo->lines, kept, sizeof *fo->lines, cmp_focus_line);
    }
  }
  mtb_free(&callees); /* no-ops after mtb_finish */
  mtb_free(&callers);
  focus_lines_free(&fl);
  if (r < 0) pprof_focus_release(fo);
  return r;
}

void pprof_focus_release(pprof_focus *fo) {
  pprof_multitree_release(&fo->callees);
  pprof_multitree_release(&fo->callers);
  arena_free(&fo->mem);
  fo->lines = NULL;
  fo->nlines = 0;
  fo->flat = fo->cum = NULL;
}
