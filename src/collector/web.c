/* The collector's HTTP server. See web.h. */
#include "web.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct web {
  struct MHD_Daemon *d;
  web_hooks h;
};

typedef struct params {
  const char *k[WEB_MAX_PARAMS], *v[WEB_MAX_PARAMS];
  size_t n;
  bool too_many, too_long;
} params;

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
  (void)kind;
  params *p = cls;
  if (p->n == WEB_MAX_PARAMS) {
    p->too_many = true;
    return MHD_NO;
  }
  if (strlen(key) > WEB_MAX_PARAM_LEN || (value && strlen(value) > WEB_MAX_PARAM_LEN)) {
    p->too_long = true;
    return MHD_NO;
  }
  p->k[p->n] = key;
  p->v[p->n] = value ? value : "";
  p->n++;
  return MHD_YES;
}

static const char *param(const params *p, const char *k) {
  for (size_t i = 0; i < p->n; i++)
    if (!strcmp(p->k[i], k)) return p->v[i];
  return NULL;
}

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, const char *ctype, void *buf,
                                size_t len, enum MHD_ResponseMemoryMode mode, const char *disposition) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, buf, mode);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, "Content-Type", ctype);
  MHD_add_response_header(r, "Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(r, "Cache-Control", "no-store");
  if (disposition) MHD_add_response_header(r, "Content-Disposition", disposition);
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *text) {
  return send_buf(c, status, "text/plain; charset=utf-8", (void *)text, strlen(text), MHD_RESPMEM_MUST_COPY, NULL);
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *j) {
  char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
  json_decref(j);
  if (!s) return send_text(c, 500, "cannot encode JSON\n");
  return send_buf(c, status, "application/json", s, strlen(s), MHD_RESPMEM_MUST_FREE, NULL);
}

/* Prometheus-style error envelope. */
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *type, const char *msg) {
  return send_json(c, status, json_pack("{s:s,s:s,s:s}", "status", "error", "errorType", type, "error", msg));
}

/* Exact: nanosecond timestamps have 19 digits, more than a double holds, so the seconds and
 * the fraction are parsed as integers. */
static int parse_frac_ns(const char *s, const char **rest) {
  int64_t ns = 0;
  int digits = 0;
  while (*s >= '0' && *s <= '9') {
    if (digits < 9) ns = ns * 10 + (*s - '0'), digits++;
    s++;
  }
  while (digits++ < 9) ns *= 10;
  *rest = s;
  return (int)ns;
}

int web_parse_time(const char *s, int64_t *ret) {
  if (!s || !*s) return -1;
  const char *p = s;
  int64_t sec = 0;
  int n = 0;
  while (*p >= '0' && *p <= '9' && n < 11) sec = sec * 10 + (*p++ - '0'), n++;
  if (n > 0 && (*p == '\0' || *p == '.')) {
    int64_t frac = 0;
    if (*p == '.') {
      frac = parse_frac_ns(p + 1, &p);
      if (*p) return -1;
    }
    if (sec > 9200000000LL) return -1;
    *ret = sec * 1000000000 + frac;
    return 0;
  }
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return -1;
  int64_t frac = 0;
  if (*rest == '.') frac = parse_frac_ns(rest + 1, &rest);
  if (strcmp(rest, "Z") && strcmp(rest, "+00:00")) return -1;
  time_t t = timegm(&tm);
  if (t < 0 || t > 9200000000LL) return -1; /* past year 2262 does not fit in int64 nanoseconds */
  *ret = (int64_t)t * 1000000000 + frac;
  return 0;
}

static bool label_name_ok(const char *s) {
  if (!(isalpha((unsigned char)*s) || *s == '_')) return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_') return false;
  return true;
}

/* The selection shared by the data endpoints: type, time range, label matchers. */
typedef struct selection {
  const char *type;
  int64_t from, to;
  store_matcher m[WEB_MAX_PARAMS];
  size_t nm;
  store_agg agg;
} selection;

static const char *const reserved[] = {"type", "from", "to", "agg", "name", "limit", NULL};

static int parse_selection(const params *p, selection *s, bool need_type, char *why, size_t n) {
  memset(s, 0, sizeof *s);
  s->type = param(p, "type");
  if (s->type) {
    int t = cfg_type_from_name(s->type);
    if (t < 0) return snprintf(why, n, "unknown type \"%.64s\" (cpu, heap, allocs, block, mutex, goroutine, threadcreate)", s->type), -1;
    s->type = cfg_type_name[t];
  } else if (need_type) {
    return snprintf(why, n, "missing parameter type"), -1;
  }
  const char *from = param(p, "from"), *to = param(p, "to");
  if (from && web_parse_time(from, &s->from) < 0) return snprintf(why, n, "from: want Unix seconds or RFC 3339"), -1;
  if (to && web_parse_time(to, &s->to) < 0) return snprintf(why, n, "to: want Unix seconds or RFC 3339"), -1;
  if (s->to && s->from > s->to) return snprintf(why, n, "from is after to"), -1;
  const char *agg = param(p, "agg");
  if (!agg || !strcmp(agg, "")) s->agg = STORE_AGG_DEFAULT;
  else if (!strcmp(agg, "sum")) s->agg = STORE_AGG_SUM;
  else if (!strcmp(agg, "avg")) s->agg = STORE_AGG_AVG;
  else if (!strcmp(agg, "latest")) s->agg = STORE_AGG_LATEST;
  else return snprintf(why, n, "agg: want sum, avg or latest"), -1;
  const char *name = param(p, "name");
  if (name) s->m[s->nm++] = (store_matcher){"monitor", name};
  for (size_t i = 0; i < p->n; i++) {
    bool res = false;
    for (const char *const *r = reserved; *r && !res; r++) res = !strcmp(*r, p->k[i]);
    if (res) continue;
    if (!label_name_ok(p->k[i])) return snprintf(why, n, "\"%.64s\" is not a label name", p->k[i]), -1;
    s->m[s->nm++] = (store_matcher){p->k[i], p->v[i]};
  }
  return 0;
}

static enum MHD_Result api_profile(web *w, struct MHD_Connection *c, const params *p) {
  selection s;
  char why[256];
  if (parse_selection(p, &s, true, why, sizeof why) < 0) return send_error(c, 400, "bad_data", why);
  pprof_profile *prof = NULL;
  size_t count = 0;
  pp_err err = {0};
  int r = store_merged(w->h.st, s.m, s.nm, s.type, s.from, s.to, s.agg, WEB_MAX_RECORDS, &prof, &count, &err);
  if (r == PP_EUSAGE) return send_error(c, 404, "not_found", err.msg);
  if (r < 0) return send_error(c, 500, "internal", err.msg);
  uint8_t *buf;
  size_t len;
  r = pprof_encode(prof, 1, &buf, &len, &err);
  pprof_free(prof);
  if (r < 0) return send_error(c, 500, "internal", err.msg);
  /* a file name from request input: only safe characters survive */
  char fname[160], disp[200];
  const char *name = param(p, "name");
  snprintf(fname, sizeof fname, "%s-%s.pb.gz", name ? name : "profile", s.type);
  for (char *q = fname; *q; q++)
    if (!isalnum((unsigned char)*q) && *q != '.' && *q != '-' && *q != '_') *q = '_';
  snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", fname);
  return send_buf(c, 200, "application/octet-stream", buf, len, MHD_RESPMEM_MUST_FREE, disp);
}

static enum MHD_Result api_series(web *w, struct MHD_Connection *c, const params *p) {
  selection s;
  char why[256];
  if (parse_selection(p, &s, false, why, sizeof why) < 0) return send_error(c, 400, "bad_data", why);
  store_series_info *v;
  size_t n;
  pp_err err = {0};
  if (store_list_series(w->h.st, s.m, s.nm, s.type, s.from, s.to, &v, &n, &err) < 0)
    return send_error(c, 500, "internal", err.msg);
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *labels = json_loads(v[i].labels_json, 0, NULL);
    json_t *types = json_array();
    char *st = v[i].sample_types, *save = NULL;
    for (char *tok = strtok_r(st, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
      char *slash = strchr(tok, '/');
      if (slash) *slash = '\0';
      json_array_append_new(types, json_pack("{s:s,s:s}", "type", tok, "unit", slash ? slash + 1 : ""));
    }
    json_array_append_new(arr, json_pack("{s:o,s:s,s:o,s:I,s:I,s:I}", "labels", labels ? labels : json_object(),
                                         "profileType", v[i].type, "sampleTypes", types, "firstUnixNano",
                                         (json_int_t)v[i].first_ns, "lastUnixNano", (json_int_t)v[i].last_ns,
                                         "profiles", (json_int_t)v[i].count));
  }
  store_series_free(v, n);
  return send_json(c, 200, json_pack("{s:s,s:o}", "status", "success", "data", arr));
}

static enum MHD_Result api_profiles(web *w, struct MHD_Connection *c, const params *p) {
  selection s;
  char why[256];
  if (parse_selection(p, &s, true, why, sizeof why) < 0) return send_error(c, 400, "bad_data", why);
  const char *lim = param(p, "limit");
  long limit = 1000;
  if (lim) {
    char *end;
    limit = strtol(lim, &end, 10);
    if (*end || limit < 1 || limit > WEB_MAX_RECORDS) return send_error(c, 400, "bad_data", "limit: want 1..20000");
  }
  store_row *rows;
  size_t n;
  pp_err err = {0};
  if (store_list_rows(w->h.st, s.m, s.nm, s.type, s.from, s.to, (size_t)limit, &rows, &n, &err) < 0)
    return send_error(c, 500, "internal", err.msg);
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *totals = json_array();
    char *save = NULL;
    for (char *tok = strtok_r(rows[i].totals, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
      json_array_append_new(totals, json_integer(strtoll(tok, NULL, 10)));
    json_t *labels = json_loads(rows[i].labels_json, 0, NULL);
    json_array_append_new(arr, json_pack("{s:I,s:o,s:s,s:I,s:I,s:I,s:s,s:o}", "id", (json_int_t)rows[i].id, "labels",
                                         labels ? labels : json_object(), "profileType", rows[i].type, "startUnixNano",
                                         (json_int_t)rows[i].start_ns, "endUnixNano", (json_int_t)rows[i].end_ns, "bytes",
                                         (json_int_t)rows[i].size, "sampleTypes", rows[i].sample_types, "totals", totals));
  }
  store_rows_free(rows, n);
  return send_json(c, 200, json_pack("{s:s,s:o}", "status", "success", "data", arr));
}

static void html_escape(char **buf, size_t *len, size_t *cap, const char *s);

static void bput(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
  if (*len + n + 1 > *cap) {
    size_t nc = (*cap ? *cap * 2 : 4096) + n;
    char *nb = realloc(*buf, nc);
    if (!nb) return;
    *buf = nb;
    *cap = nc;
  }
  memcpy(*buf + *len, s, n);
  *len += n;
  (*buf)[*len] = '\0';
}

static void html_escape(char **buf, size_t *len, size_t *cap, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '<': bput(buf, len, cap, "&lt;", 4); break;
    case '>': bput(buf, len, cap, "&gt;", 4); break;
    case '&': bput(buf, len, cap, "&amp;", 5); break;
    case '"': bput(buf, len, cap, "&quot;", 6); break;
    case '\'': bput(buf, len, cap, "&#39;", 5); break;
    default: bput(buf, len, cap, s, 1);
    }
  }
}

/* A plain page of targets and their health until the UI lands (issue 4). */
static enum MHD_Result index_page(web *w, struct MHD_Connection *c) {
  char *b = NULL;
  size_t len = 0, cap = 0;
  const char *head = "<!doctype html><html><head><meta charset=\"utf-8\"><title>pprof-controller</title></head>"
                     "<body><h1>pprof-controller collector</h1><p>API: <a href=\"/api/v1/targets\">targets</a>, "
                     "<a href=\"/api/v1/series\">series</a>, <a href=\"/metrics\">metrics</a>.</p>"
                     "<table border=\"1\"><tr><th>monitor</th><th>type</th><th>health</th><th>last error</th>"
                     "<th>profile</th></tr>";
  bput(&b, &len, &cap, head, strlen(head));
  json_t *t = scrape_targets_json(w->h.eng);
  size_t i;
  json_t *o;
  json_array_foreach(t, i, o) {
    const char *mon = json_string_value(json_object_get(o, "monitor"));
    const char *type = json_string_value(json_object_get(o, "type"));
    const char *health = json_string_value(json_object_get(o, "health"));
    const char *err = json_string_value(json_object_get(o, "lastError"));
    const char *parts[] = {mon, type, health, err};
    bput(&b, &len, &cap, "<tr>", 4);
    for (int k = 0; k < 4; k++) {
      bput(&b, &len, &cap, "<td>", 4);
      html_escape(&b, &len, &cap, parts[k] ? parts[k] : "");
      bput(&b, &len, &cap, "</td>", 5);
    }
    /* the link's query is built from untrusted names: percent-encode, then HTML-escape */
    char *enc = curl_easy_escape(NULL, mon ? mon : "", 0);
    char link[2400];
    snprintf(link, sizeof link, "/api/v1/profile?type=%s&name=%s", type ? type : "cpu", enc ? enc : "");
    curl_free(enc);
    bput(&b, &len, &cap, "<td><a href=\"", 13);
    html_escape(&b, &len, &cap, link);
    bput(&b, &len, &cap, "\">download</a></td></tr>", 24);
  }
  json_decref(t);
  bput(&b, &len, &cap, "</table></body></html>", 22);
  if (!b) return send_text(c, 500, "out of memory\n");
  return send_buf(c, 200, "text/html; charset=utf-8", b, len, MHD_RESPMEM_MUST_FREE, NULL);
}

typedef struct req {
  bool is_post;
} req;

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_size, void **con_cls) {
  (void)version;
  (void)upload_data;
  web *w = cls;
  if (!*con_cls) {
    /* first call: headers only; keep a marker so the body (if any) is drained and ignored */
    static req marker;
    *con_cls = &marker;
    return MHD_YES;
  }
  if (*upload_size) {
    *upload_size = 0;
    return MHD_YES;
  }
  bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
  bool post = !strcmp(method, "POST");
  params p = {0};
  MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_param, &p);
  if (p.too_many) return send_error(c, 400, "bad_data", "too many query parameters");
  if (p.too_long) return send_error(c, 400, "bad_data", "query parameter too long");

  if (!strcmp(url, "/healthz")) return get ? send_text(c, 200, "ok\n") : send_text(c, 405, "method not allowed\n");
  if (!strcmp(url, "/readyz")) {
    bool ok = w->h.ready && w->h.ready(w->h.ud);
    return send_text(c, ok ? 200 : 503, ok ? "ready\n" : "not ready\n");
  }
  if (!strcmp(url, "/reload") || !strcmp(url, "/-/reload")) {
    if (!post) return send_text(c, 405, "use POST\n");
    pp_err err = {0};
    if (w->h.reload(w->h.ud, &err) < 0) {
      char msg[600];
      snprintf(msg, sizeof msg, "%s\n", err.msg);
      return send_text(c, 400, msg);
    }
    return send_text(c, 200, "config reloaded\n");
  }
  if (!get) return send_text(c, 405, "method not allowed\n");
  if (!strcmp(url, "/metrics")) {
    char *b = NULL;
    size_t len = 0, cap = 0;
    scrape_metrics(w->h.eng, &b, &len, &cap);
    if (w->h.metrics) w->h.metrics(w->h.ud, &b, &len, &cap);
    if (!b) return send_text(c, 500, "out of memory\n");
    return send_buf(c, 200, "text/plain; version=0.0.4; charset=utf-8", b, len, MHD_RESPMEM_MUST_FREE, NULL);
  }
  if (!strcmp(url, "/api/v1/targets"))
    return send_json(c, 200, json_pack("{s:s,s:o}", "status", "success", "data", scrape_targets_json(w->h.eng)));
  if (!strcmp(url, "/api/v1/series")) return api_series(w, c, &p);
  if (!strcmp(url, "/api/v1/profile")) return api_profile(w, c, &p);
  if (!strcmp(url, "/api/v1/profiles")) return api_profiles(w, c, &p);
  if (!strcmp(url, "/")) return index_page(w, c);
  return send_text(c, 404, "not found\n");
}

int web_start(const char *addr, int port, const web_hooks *hooks, web **ret, pp_err *err) {
  web *w = calloc(1, sizeof *w);
  if (!w) return pp_err_set(err, PP_ENOMEM, "out of memory");
  w->h = *hooks;
  /* epoll (MHD_USE_AUTO): with thousands of targets our sockets pass FD_SETSIZE, which select cannot take */
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
  struct sockaddr_in sa4;
  struct sockaddr_in6 sa6;
  struct sockaddr *sa = NULL;
  if (addr && *addr && strcmp(addr, "0.0.0.0")) {
    memset(&sa4, 0, sizeof sa4);
    memset(&sa6, 0, sizeof sa6);
    if (inet_pton(AF_INET, addr, &sa4.sin_addr) == 1) {
      sa4.sin_family = AF_INET;
      sa4.sin_port = htons((uint16_t)port);
      sa = (struct sockaddr *)&sa4;
    } else if (inet_pton(AF_INET6, addr, &sa6.sin6_addr) == 1) {
      sa6.sin6_family = AF_INET6;
      sa6.sin6_port = htons((uint16_t)port);
      sa = (struct sockaddr *)&sa6;
      flags |= MHD_USE_IPv6;
    } else {
      free(w);
      return pp_err_set(err, PP_EINVAL, "listen address \"%s\" is not an IP address", addr);
    }
  }
  w->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handle, w, MHD_OPTION_THREAD_POOL_SIZE, 4,
                          MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_CONNECTION_LIMIT, 256u,
                          MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
                          sa ? MHD_OPTION_SOCK_ADDR : MHD_OPTION_END, sa, MHD_OPTION_END);
  if (!w->d) {
    free(w);
    return pp_err_set(err, PP_EIO, "cannot listen on %s:%d (in use, or not permitted)", addr && *addr ? addr : "*", port);
  }
  *ret = w;
  return 0;
}

void web_stop(web *w) {
  if (!w) return;
  MHD_stop_daemon(w->d);
  free(w);
}
