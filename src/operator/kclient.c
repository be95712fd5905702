/* Kubernetes API client; see kclient.h for the contract. */
#include "kclient.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../base/b64.h"
#include "../base/buf.h"
#include "../base/file.h"
#include "kyaml.h"

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

void kc_config_free(kc_config *c) {
  if (!c) return;
  free(c->server);
  free(c->token);
  free(c->token_file);
  free(c->ca_pem);
  free(c->cert_pem);
  free(c->key_pem);
  free(c->namespace_);
  free(c->exec_json);
  memset(c, 0, sizeof *c);
}

static int read_file(const char *path, size_t max, char **ret, size_t *ret_len, pp_err *err) {
  size_t n;
  int r = pp_read_file(path, max, (uint8_t **)ret, &n, err);
  if (r == 0 && ret_len) *ret_len = n;
  return r;
}

static const char *str_at(const json_t *o, const char *key) { return json_string_value(json_object_get(o, key)); }

static json_t *named(const json_t *list, const char *name, const char *field) {
  size_t i;
  json_t *e;
  json_array_foreach(list, i, e) {
    const char *n = str_at(e, "name");
    if (n && name && !strcmp(n, name)) return json_object_get(e, field);
  }
  return NULL;
}

/* A path from a kubeconfig, relative to the kubeconfig's directory. */
static char *resolve(const char *base_dir, const char *p) {
  char *out = NULL;
  if (p[0] == '/') return strdup(p);
  if (asprintf(&out, "%s/%s", base_dir, p) < 0) return NULL;
  return out;
}

/* data (base64) or file: PEM bytes. */
static int pem_from(const json_t *o, const char *data_key, const char *file_key, const char *dir, char **ret,
                    size_t *ret_len, pp_err *err) {
  const char *d = str_at(o, data_key), *f = str_at(o, file_key);
  if (d) return pp_b64_decode(d, data_key, ret, ret_len, err);
  if (f) {
    char *p = resolve(dir, f);
    if (!p) return pp_err_set(err, PP_ENOMEM, "out of memory");
    int r = read_file(p, 1 << 20, ret, ret_len, err);
    free(p);
    return r;
  }
  return 0;
}

int kc_config_kubeconfig(const char *path, kc_config *ret, pp_err *err) {
  memset(ret, 0, sizeof *ret);
  char buf[PATH_MAX];
  if (!path || !*path) path = getenv("KUBECONFIG");
  if (path && strchr(path, ':')) { /* a list: the first file is where the current context lives, mostly */
    snprintf(buf, sizeof buf, "%.*s", (int)(strchr(path, ':') - path), path);
    path = buf;
  }
  if (!path || !*path) {
    const char *home = getenv("HOME");
    snprintf(buf, sizeof buf, "%s/.kube/config", home ? home : "");
    path = buf;
  }
  json_t *kc;
  int r = kyaml_load_file(path, &kc, err);
  if (r < 0) return r;
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = '\0';
  else snprintf(dir, sizeof dir, ".");
  const char *cur = str_at(kc, "current-context");
  json_t *ctx = named(json_object_get(kc, "contexts"), cur, "context");
  if (!cur || !ctx) {
    r = pp_err_set(err, PP_EINVAL, "%s: no current context%s%s", path, cur ? " named " : "", cur ? cur : "");
    goto out;
  }
  json_t *cluster = named(json_object_get(kc, "clusters"), str_at(ctx, "cluster"), "cluster");
  json_t *user = named(json_object_get(kc, "users"), str_at(ctx, "user"), "user");
  const char *server = str_at(cluster, "server");
  if (!server) {
    r = pp_err_set(err, PP_EINVAL, "%s: context %s has no cluster server", path, cur);
    goto out;
  }
  ret->server = strdup(server);
  size_t sl = strlen(ret->server);
  while (sl && ret->server[sl - 1] == '/') ret->server[--sl] = '\0';
  ret->insecure = json_is_true(json_object_get(cluster, "insecure-skip-tls-verify"));
  if (str_at(ctx, "namespace")) ret->namespace_ = strdup(str_at(ctx, "namespace"));
  if ((r = pem_from(cluster, "certificate-authority-data", "certificate-authority", dir, &ret->ca_pem, &ret->ca_len, err)) < 0 ||
      (r = pem_from(user, "client-certificate-data", "client-certificate", dir, &ret->cert_pem, &ret->cert_len, err)) < 0 ||
      (r = pem_from(user, "client-key-data", "client-key", dir, &ret->key_pem, &ret->key_len, err)) < 0)
    goto out;
  if (str_at(user, "token")) ret->token = strdup(str_at(user, "token"));
  else if (str_at(user, "tokenFile")) ret->token_file = resolve(dir, str_at(user, "tokenFile"));
  else if (json_is_object(json_object_get(user, "exec"))) {
    json_t *ex = json_deep_copy(json_object_get(user, "exec"));
    const char *cmd = str_at(ex, "command");
    if (!cmd || !*cmd) {
      json_decref(ex);
      r = pp_err_set(err, PP_EINVAL, "%s: user %s: exec without a command", path, str_at(ctx, "user"));
      goto out;
    }
    if (strchr(cmd, '/') && cmd[0] != '/') { /* relative to the kubeconfig, as client-go does */
      char *abs = resolve(dir, cmd);
      json_object_set_new(ex, "command", json_string(abs ? abs : cmd));
      free(abs);
    }
    ret->exec_json = json_dumps(ex, JSON_COMPACT);
    json_decref(ex);
  } else if (json_object_get(user, "auth-provider")) {
    r = pp_err_set(err, PP_EUSAGE, "%s: user %s uses an auth-provider, which Kubernetes removed; "
                   "use an exec plugin, a token, token file or client certificate", path, str_at(ctx, "user"));
    goto out;
  }
out:
  json_decref(kc);
  if (r < 0) kc_config_free(ret);
  return r;
}

int kc_config_incluster(kc_config *ret, pp_err *err) {
  memset(ret, 0, sizeof *ret);
  const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !port) return pp_err_set(err, PP_EUSAGE, "not in a cluster: KUBERNETES_SERVICE_HOST/PORT unset");
  bool v6 = strchr(host, ':') != NULL;
  if (asprintf(&ret->server, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port) < 0) return PP_ENOMEM;
  ret->token_file = strdup(SA_DIR "/token");
  char *ns = NULL;
  if (read_file(SA_DIR "/namespace", 256, &ns, NULL, NULL) == 0) {
    ns[strcspn(ns, "\r\n")] = '\0';
    ret->namespace_ = ns;
  }
  int r = read_file(SA_DIR "/ca.crt", 1 << 20, &ret->ca_pem, &ret->ca_len, err);
  if (r < 0) kc_config_free(ret);
  return r;
}

/* ---- client ---------------------------------------------------------------------------------- */

/* What CURLOPT_PRIVATE of every transfer on the multi handle points to, so kc_poll can tell
 * a request from a watch. */
enum { X_REQ = 1, X_WATCH };

struct kclient {
  kc_config cfg;
  CURL *easy; /* kc_do's, reused */
  CURLM *multi; /* every kc_start request and every watch */
  char *ua;
  char *token;
  time_t token_read;
  time_t token_expiry; /* from an exec plugin; 0 = none given */
  uint64_t requests;
  size_t inflight;                   /* non-priority requests on the multi handle */
  kc_req *queue_head, *queue_tail;   /* non-priority requests waiting for one of them to end */
  kc_req *active;                    /* every started request (priority or not), to cancel them */
  /* an exec credential plugin run in flight: kc_poll waits on its output with the transfers */
  pid_t exec_pid;         /* 0 = none running */
  int exec_fd;            /* its stdout */
  bool exec_eof;          /* stdout closed: waiting for it to exit */
  pp_buf exec_out;        /* what it printed so far (at most 1 MiB) */
  time_t exec_deadline;   /* killed past this (30 s) */
  time_t exec_failed_at;  /* the last run failed (not started again for EXEC_RETRY_S) */
  time_t token_obtained;  /* when the plugin's credential arrived */
  char exec_error[512];   /* why the last run failed */
};

#define EXEC_TIMEOUT_S 30
#define EXEC_RETRY_S 5
#define EXEC_AHEAD_S 60 /* a plugin's credential is renewed up to this long before it expires */

static int exec_begin(kclient *c, pp_err *err);
static int exec_pump(kclient *c, int wait_ms, pp_err *err);

/* The credentials a request carries. With an exec plugin: renewed in the background (kc_poll
 * drives the plugin) before they expire, so requests go on with the current
 * ones meanwhile; only with wait (start-up, kc_do) does a request wait for the plugin, and
 * without usable credentials the others fail at once (their callers retry). */
static int refresh_token(kclient *c, bool wait, pp_err *err) {
  if (c->cfg.exec_json) {
    time_t now = time(NULL);
    bool have = c->token || c->cfg.cert_pem;
    bool valid = have && (!c->token_expiry || now < c->token_expiry - 10);
    /* from a quarter of its life on, at most EXEC_AHEAD_S before it expires */
    time_t ahead = c->token_expiry ? (c->token_expiry - c->token_obtained) * 3 / 4 : 0;
    if (ahead > EXEC_AHEAD_S) ahead = EXEC_AHEAD_S;
    bool due = !have || (c->token_expiry && now >= c->token_expiry - ahead);
    if (due && !c->exec_pid && (wait || now - c->exec_failed_at >= EXEC_RETRY_S)) {
      pp_err e = {0};
      if (exec_begin(c, &e) < 0) {
        snprintf(c->exec_error, sizeof c->exec_error, "%s", e.msg);
        c->exec_failed_at = now;
      }
    }
    if (valid) return 0;
    if (wait && c->exec_pid) {
      int r;
      while ((r = exec_pump(c, 1000, err)) == 0) {
      }
      return r < 0 ? r : 0;
    }
    return pp_err_set(err, PP_EIO, "no credentials yet: %s", c->exec_pid ? "the exec plugin is running" : c->exec_error);
  }
  if (!c->cfg.token_file) return 0;
  time_t now = time(NULL);
  if (c->token && now - c->token_read < 60) return 0;
  char *t;
  int r = read_file(c->cfg.token_file, 64 << 10, &t, NULL, err);
  if (r < 0) return c->token ? 0 : r; /* keep the last good token while the file is swapped */
  t[strcspn(t, "\r\n")] = '\0';
  free(c->token);
  c->token = t;
  c->token_read = now;
  return 0;
}

static void setup_tls(CURL *h, const kc_config *cfg) {
  if (cfg->ca_pem) {
    struct curl_blob b = {cfg->ca_pem, cfg->ca_len, CURL_BLOB_COPY};
    curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
  }
  if (cfg->cert_pem && cfg->key_pem) {
    struct curl_blob cb = {cfg->cert_pem, cfg->cert_len, CURL_BLOB_COPY};
    struct curl_blob kb = {cfg->key_pem, cfg->key_len, CURL_BLOB_COPY};
    curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cb);
    curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &kb);
    curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
  }
  if (cfg->insecure) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
}

static char *dupmem(const char *p, size_t n) {
  char *d = malloc(n ? n : 1);
  if (d && n) memcpy(d, p, n);
  return d;
}

int kc_new(const kc_config *cfg, const char *ua, kclient **ret, pp_err *err) {
  kclient *c = calloc(1, sizeof *c);
  if (!c) return pp_err_set(err, PP_ENOMEM, "out of memory");
  c->cfg.server = strdup(cfg->server);
  c->cfg.token = cfg->token ? strdup(cfg->token) : NULL;
  c->cfg.token_file = cfg->token_file ? strdup(cfg->token_file) : NULL;
  c->cfg.insecure = cfg->insecure;
  c->cfg.namespace_ = cfg->namespace_ ? strdup(cfg->namespace_) : NULL;
  c->cfg.exec_json = cfg->exec_json ? strdup(cfg->exec_json) : NULL;
  if (cfg->ca_pem) c->cfg.ca_pem = dupmem(cfg->ca_pem, c->cfg.ca_len = cfg->ca_len);
  if (cfg->cert_pem) c->cfg.cert_pem = dupmem(cfg->cert_pem, c->cfg.cert_len = cfg->cert_len);
  if (cfg->key_pem) c->cfg.key_pem = dupmem(cfg->key_pem, c->cfg.key_len = cfg->key_len);
  c->ua = strdup(ua ? ua : "pprof-operator");
  c->token = c->cfg.token ? strdup(c->cfg.token) : NULL;
  c->easy = curl_easy_init();
  c->multi = curl_multi_init();
  if (!c->easy || !c->multi || !c->cfg.server || !c->ua) {
    kc_free(c);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  c->exec_fd = -1;
  int r = refresh_token(c, true, err);
  if (r < 0) {
    kc_free(c);
    return r;
  }
  *ret = c;
  return 0;
}

static void req_free(kc_req *r);

void kc_free(kclient *c) {
  if (!c) return;
  while (c->active) kc_cancel(c, c->active);
  while (c->queue_head) kc_cancel(c, c->queue_head);
  if (c->exec_pid > 0) {
    kill(c->exec_pid, SIGKILL);
    waitpid(c->exec_pid, NULL, 0);
  }
  if (c->exec_fd >= 0) close(c->exec_fd);
  pp_buf_free(&c->exec_out);
  if (c->multi) curl_multi_cleanup(c->multi); /* the caller has cancelled its watches */
  if (c->easy) curl_easy_cleanup(c->easy);
  kc_config_free(&c->cfg);
  free(c->ua);
  free(c->token);
  free(c);
}

uint64_t kc_requests(const kclient *c) { return c->requests; }

char *kc_escape(const char *s) {
  char *e = curl_easy_escape(NULL, s, 0);
  char *out = e ? strdup(e) : NULL;
  curl_free(e);
  return out;
}


static size_t on_body(char *data, size_t sz, size_t n, void *ud) {
  pp_buf *b = ud;
  size_t len = sz * n;
  return pp_buf_put(b, data, len) ? len : 0; /* past max (b->over) or out of memory: the transfer stops */
}

/* Starts the exec credential plugin; exec_pump reads its answer. */
static int exec_begin(kclient *c, pp_err *err) {
  json_t *ex = json_loads(c->cfg.exec_json, 0, NULL);
  const char *cmd = str_at(ex, "command");
  const char *api = str_at(ex, "apiVersion");
  if (!api) api = "client.authentication.k8s.io/v1";
  char *argv[66];
  int argc = 0;
  argv[argc++] = (char *)cmd;
  size_t i;
  json_t *a;
  json_array_foreach(json_object_get(ex, "args"), i, a) {
    if (argc < 65 && json_string_value(a)) argv[argc++] = (char *)json_string_value(a);
  }
  argv[argc] = NULL;
  char info[256];
  snprintf(info, sizeof info, "{\"apiVersion\":\"%.100s\",\"kind\":\"ExecCredential\",\"spec\":{\"interactive\":false}}", api);
  int fds[2];
  if (!cmd || pipe2(fds, O_CLOEXEC) < 0) {
    json_decref(ex);
    return pp_err_set(err, PP_EIO, "exec plugin: %s", cmd ? strerror(errno) : "no command");
  }
  /* the child's environment is built here: between fork and exec a threaded process may only
   * make async-signal-safe calls, so no setenv (malloc) there */
  extern char **environ;
  size_t nenv = 0;
  while (environ[nenv]) nenv++;
  size_t nextra = json_array_size(json_object_get(ex, "env")) + 1;
  char **envp = calloc(nenv + nextra + 1, sizeof *envp);
  char **owned = calloc(nextra, sizeof *owned);
  size_t ne = 0, no = 0;
  json_t *e;
  json_array_foreach(json_object_get(ex, "env"), i, e) {
    const char *n = str_at(e, "name"), *v = str_at(e, "value");
    if (envp && owned && n && v && asprintf(&owned[no], "%s=%s", n, v) >= 0) envp[ne++] = owned[no++];
  }
  if (envp && owned && asprintf(&owned[no], "KUBERNETES_EXEC_INFO=%s", info) >= 0) envp[ne++] = owned[no++];
  for (size_t k = 0; envp && k < nenv; k++) {
    const char *eq = strchr(environ[k], '=');
    bool shadowed = false;
    for (size_t m = 0; eq && m < no && !shadowed; m++)
      shadowed = !strncmp(owned[m], environ[k], (size_t)(eq - environ[k]) + 1);
    if (!shadowed) envp[ne++] = environ[k];
  }
  pid_t pid = envp && owned ? fork() : -1;
  if (pid == 0) {
    dup2(fds[1], 1);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0); /* not interactive */
    execvpe(cmd, argv, envp);
    _exit(127);
  }
  int saved = errno;
  for (size_t m = 0; m < no; m++) free(owned[m]);
  free(owned);
  free(envp);
  close(fds[1]);
  json_decref(ex);
  if (pid < 0) {
    close(fds[0]);
    return pp_err_set(err, PP_EIO, "exec plugin: %s", strerror(saved));
  }
  fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
  c->exec_pid = pid;
  c->exec_fd = fds[0];
  c->exec_eof = false;
  pp_buf_init(&c->exec_out, 1 << 20);
  c->exec_deadline = time(NULL) + EXEC_TIMEOUT_S;
  return 0;
}

/* The plugin's run is over (status from waitpid, or r < 0 with err set): its output, if it
 * succeeded, becomes the credentials. */
static int exec_finish(kclient *c, int r, int status, pp_err *err) {
  json_t *ex = json_loads(c->cfg.exec_json, 0, NULL);
  const char *cmd = str_at(ex, "command");
  if (r == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
    r = pp_err_set(err, PP_EIO, "exec plugin %s failed (exit status %d)", cmd, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  json_t *cred = r == 0 && c->exec_out.p ? json_loadb(c->exec_out.p, c->exec_out.len, 0, NULL) : NULL;
  const json_t *st = json_object_get(cred, "status");
  const char *kind = str_at(cred, "kind"), *tok = str_at(st, "token");
  const char *cert = str_at(st, "clientCertificateData"), *key = str_at(st, "clientKeyData");
  if (r == 0 && (!kind || strcmp(kind, "ExecCredential") || (!tok && !(cert && key))))
    r = pp_err_set(err, PP_EINVAL, "exec plugin %s: output is not an ExecCredential with a token or certificate", cmd);
  if (r == 0) {
    if (tok) {
      free(c->token);
      c->token = strdup(tok);
    }
    if (cert && key) {
      free(c->cfg.cert_pem);
      free(c->cfg.key_pem);
      c->cfg.cert_pem = dupmem(cert, c->cfg.cert_len = strlen(cert));
      c->cfg.key_pem = dupmem(key, c->cfg.key_len = strlen(key));
    }
    c->token_read = c->token_obtained = time(NULL);
    c->token_expiry = 0;
    const char *exp = str_at(st, "expirationTimestamp");
    struct tm tm = {0};
    if (exp && strptime(exp, "%Y-%m-%dT%H:%M:%S", &tm)) c->token_expiry = timegm(&tm);
    c->exec_error[0] = '\0';
  } else {
    snprintf(c->exec_error, sizeof c->exec_error, "%s", err->msg);
    c->exec_failed_at = time(NULL);
  }
  json_decref(cred);
  json_decref(ex);
  close(c->exec_fd);
  c->exec_fd = -1;
  c->exec_pid = 0;
  pp_buf_free(&c->exec_out);
  return r < 0 ? r : 1;
}

/* Moves the plugin's run along: reads what it printed (waiting up to wait_ms for more), reaps
 * it when it is done, kills it past its deadline or over 1 MiB of output. 1 = finished with
 * credentials, 0 = still running, < 0 = failed (err). */
static int exec_pump(kclient *c, int wait_ms, pp_err *err) {
  if (!c->exec_pid) return 1;
  if (!c->exec_eof && wait_ms > 0) {
    struct pollfd pf = {c->exec_fd, POLLIN, 0};
    poll(&pf, 1, wait_ms);
  }
  while (!c->exec_eof) {
    char buf[4096];
    ssize_t n = read(c->exec_fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {
      c->exec_eof = true;
      break;
    }
    if (on_body(buf, 1, (size_t)n, &c->exec_out) != (size_t)n) {
      kill(c->exec_pid, SIGKILL);
      waitpid(c->exec_pid, NULL, 0);
      return exec_finish(c, pp_err_set(err, PP_ELIMIT, "exec plugin: more than 1 MiB of output"), 0, err);
    }
  }
  if (time(NULL) > c->exec_deadline) {
    kill(c->exec_pid, SIGKILL);
    waitpid(c->exec_pid, NULL, 0);
    return exec_finish(c, pp_err_set(err, PP_EIO, "exec plugin: no answer within %d s", EXEC_TIMEOUT_S), 0, err);
  }
  if (!c->exec_eof) return 0;
  int status = 0;
  pid_t w = waitpid(c->exec_pid, &status, WNOHANG);
  if (w == 0) { /* stdout closed, not exited yet: look again shortly */
    if (wait_ms > 0) {
      struct timespec ts = {0, 10000000};
      nanosleep(&ts, NULL);
    }
    return 0;
  }
  return exec_finish(c, w < 0 ? pp_err_set(err, PP_EIO, "exec plugin: %s", strerror(errno)) : 0, status, err);
}

static struct curl_slist *headers(kclient *c, const char *ctype) {
  struct curl_slist *h = NULL;
  char line[8192];
  h = curl_slist_append(h, "Accept: application/json");
  if (ctype) {
    snprintf(line, sizeof line, "Content-Type: %s", ctype);
    h = curl_slist_append(h, line);
  }
  if (c->token) {
    snprintf(line, sizeof line, "Authorization: Bearer %s", c->token);
    h = curl_slist_append(h, line);
  }
  return h;
}

/* Sets up h for one request (kc_do's and kc_start's): URL, method, headers, body, limits.
 * *ret_url, *ret_payload and *ret_hd are the caller's to free once the transfer is over. */
static int setup_request(kclient *c, CURL *h, bool wait, const char *method, const char *path, const char *ctype,
                         const json_t *body, long timeout_ms, pp_buf *b, char **ret_url, char **ret_payload,
                         struct curl_slist **ret_hd, pp_err *err) {
  int r = refresh_token(c, wait, err);
  if (r < 0) return r;
  char *url = NULL;
  if (asprintf(&url, "%s%s", c->cfg.server, path) < 0) return pp_err_set(err, PP_ENOMEM, "out of memory");
  char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
  if (body && !payload) {
    free(url);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  setup_tls(h, &c->cfg);
  struct curl_slist *hd = headers(c, payload ? (ctype ? ctype : "application/json") : NULL);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
  curl_easy_setopt(h, CURLOPT_USERAGENT, c->ua);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  if (payload) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
  } else if (!strcmp(method, "GET")) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  }
  c->requests++;
  *ret_url = url;
  *ret_payload = payload;
  *ret_hd = hd;
  return 0;
}

/* The outcome of a finished request: its status (or a negative code), its JSON body, its
 * error message. */
static int finish_request(kclient *c, CURL *h, CURLcode cc, const char *method, const char *path, pp_buf *b, json_t **ret,
                          pp_err *err) {
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  *ret = NULL;
  if (cc != CURLE_OK)
    return b->over ? pp_err_set(err, PP_ELIMIT, "%s %s: response over %zu bytes", method, path, b->max)
                   : pp_err_set(err, PP_EIO, "%s %s: %s", method, path, curl_easy_strerror(cc));
  json_t *j = b->len ? json_loadb(b->p, b->len, 0, NULL) : NULL;
  if (status == 401 && c->cfg.exec_json) { /* revoked or rotated: ask the plugin again next time */
    free(c->token);
    c->token = NULL;
    c->token_expiry = 0;
  }
  if (status >= 400) {
    const char *reason = str_at(j, "reason"), *msg = str_at(j, "message");
    pp_err_set(err, PP_EIO, "%s %s: %ld %s: %.200s", method, path, status, reason ? reason : "",
               msg ? msg : (b->p ? b->p : ""));
  }
  *ret = j;
  return (int)status;
}

int kc_do(kclient *c, const char *method, const char *path, const char *ctype, const json_t *body, json_t **ret,
          pp_err *err) {
  if (ret) *ret = NULL;
  CURL *h = c->easy;
  curl_easy_reset(h);
  pp_buf b;
  pp_buf_init(&b, KC_MAX_RESPONSE);
  char *url, *payload;
  struct curl_slist *hd;
  int r = setup_request(c, h, true, method, path, ctype, body, KC_DEFAULT_TIMEOUT_MS, &b, &url, &payload, &hd, err);
  if (r < 0) return r;
  CURLcode cc = curl_easy_perform(h);
  json_t *j = NULL;
  r = finish_request(c, h, cc, method, path, &b, &j, err);
  curl_slist_free_all(hd);
  free(payload);
  free(url);
  pp_buf_free(&b);
  if (ret) *ret = j;
  else json_decref(j);
  return r;
}

/* ---- requests on the event loop ------------------------------------------------------------ */

struct kc_req {
  int kind; /* X_REQ */
  kclient *c;
  CURL *h;
  struct curl_slist *hd;
  char *url, *payload, *method, *path;
  pp_buf body;
  bool priority, started;
  kc_done_fn fn;
  void *ud;
  kc_req *prev, *next; /* in c->active once started, in c->queue_* before */
};

static void unlink_req(kc_req **head, kc_req **tail, kc_req *r) {
  if (r->prev) r->prev->next = r->next;
  else *head = r->next;
  if (r->next) r->next->prev = r->prev;
  else if (tail) *tail = r->prev;
  r->prev = r->next = NULL;
}

static void req_free(kc_req *r) {
  if (!r) return;
  if (r->h) curl_easy_cleanup(r->h);
  curl_slist_free_all(r->hd);
  free(r->url);
  free(r->payload);
  free(r->method);
  free(r->path);
  pp_buf_free(&r->body);
  free(r);
}

static void start_req(kclient *c, kc_req *r) {
  r->started = true;
  if (!r->priority) c->inflight++;
  r->next = c->active;
  if (c->active) c->active->prev = r;
  c->active = r;
  curl_multi_add_handle(c->multi, r->h);
}

int kc_start(kclient *c, const char *method, const char *path, const char *ctype, const json_t *body, const kc_req_opts *o,
             kc_done_fn fn, void *ud, kc_req **ret, pp_err *err) {
  kc_req *r = calloc(1, sizeof *r);
  if (!r || !(r->h = curl_easy_init()) || !(r->method = strdup(method)) || !(r->path = strdup(path))) {
    req_free(r);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  r->kind = X_REQ;
  r->c = c;
  r->fn = fn;
  r->ud = ud;
  r->priority = o && o->priority;
  pp_buf_init(&r->body, KC_MAX_RESPONSE);
  long timeout = o && o->timeout_ms > 0 ? o->timeout_ms : KC_DEFAULT_TIMEOUT_MS;
  int rc = setup_request(c, r->h, false, method, path, ctype, body, timeout, &r->body, &r->url, &r->payload, &r->hd, err);
  if (rc < 0) {
    req_free(r);
    return rc;
  }
  curl_easy_setopt(r->h, CURLOPT_PRIVATE, r);
  if (r->priority || c->inflight < KC_MAX_INFLIGHT) {
    start_req(c, r);
  } else { /* FIFO: the oldest waiting request goes next */
    r->prev = c->queue_tail;
    if (c->queue_tail) c->queue_tail->next = r;
    else c->queue_head = r;
    c->queue_tail = r;
  }
  if (ret) *ret = r;
  return 0;
}

/* One of the KC_MAX_INFLIGHT places freed up: the next waiting request takes it. */
static void release_slot(kclient *c, kc_req *r) {
  if (r->priority) return;
  c->inflight--;
  if (c->queue_head && c->inflight < KC_MAX_INFLIGHT) {
    kc_req *n = c->queue_head;
    unlink_req(&c->queue_head, &c->queue_tail, n);
    start_req(c, n);
  }
}

void kc_cancel(kclient *c, kc_req *r) {
  if (!r) return;
  if (r->started) {
    curl_multi_remove_handle(c->multi, r->h);
    unlink_req(&c->active, NULL, r);
    release_slot(c, r);
  } else {
    unlink_req(&c->queue_head, &c->queue_tail, r);
  }
  req_free(r);
}

size_t kc_waiting(const kclient *c) {
  size_t n = 0;
  for (const kc_req *r = c->queue_head; r; r = r->next) n++;
  return n;
}

static void req_done(kclient *c, kc_req *r, CURLcode cc) {
  curl_multi_remove_handle(c->multi, r->h);
  unlink_req(&c->active, NULL, r);
  release_slot(c, r);
  pp_err err = {0};
  json_t *body = NULL;
  int st = finish_request(c, r->h, cc, r->method, r->path, &r->body, &body, &err);
  r->fn(r->ud, st, body, &err);
  json_decref(body);
  req_free(r);
}

/* ---- watches ---------------------------------------------------------------------------------- */

struct kc_watch {
  int kind; /* X_WATCH */
  CURL *h;
  struct curl_slist *hd;
  kc_event_fn fn;
  kc_watch_end_fn end;
  void *ud;
  pp_buf line;
  int reason;    /* KC_WATCH_*: why the stream stopped, when our side stopped it */
  char why[200]; /* what was wrong with the event */
};

static size_t on_stream(char *data, size_t sz, size_t n, void *ud) {
  kc_watch *w = ud;
  size_t len = sz * n;
  if (w->reason) return 0;
  for (size_t i = 0; i < len; i++) {
    if (data[i] != '\n') {
      if (on_body(data + i, 1, 1, &w->line) != 1) { /* an event over KC_MAX_EVENT */
        w->reason = KC_WATCH_EVENT_TOO_LARGE;
        snprintf(w->why, sizeof w->why, "an event over %zu bytes", (size_t)KC_MAX_EVENT);
        return 0;
      }
      continue;
    }
    if (w->line.len) {
      json_error_t je;
      json_t *ev = json_loadb(w->line.p, w->line.len, 0, &je);
      size_t evlen = w->line.len;
      if (w->line.cap > (256u << 10)) pp_buf_free(&w->line); /* one big event (a 2 MB ConfigMap) must not pin its buffer */
      else pp_buf_clear(&w->line);
      const char *type = str_at(ev, "type");
      json_t *obj = json_object_get(ev, "object");
      if (!type || !json_is_object(obj)) {
        w->reason = KC_WATCH_EVENT_INVALID;
        snprintf(w->why, sizeof w->why, "an event of %zu bytes that is not {type, object}%s%.80s", evlen, ev ? "" : ": ",
                 ev ? "" : je.text);
        json_decref(ev);
        return 0;
      }
      bool go_on = w->fn(w->ud, type, obj);
      json_decref(ev);
      if (!go_on) {
        w->reason = KC_WATCH_STOPPED;
        return 0;
      }
    }
  }
  return len;
}

int kc_watch_start(kclient *c, const char *path, kc_event_fn fn, kc_watch_end_fn end, void *ud, kc_watch **ret,
                   pp_err *err) {
  int r = refresh_token(c, false, err);
  if (r < 0) return r;
  kc_watch *w = calloc(1, sizeof *w);
  char *url = NULL;
  if (!w || asprintf(&url, "%s%s", c->cfg.server, path) < 0 || !(w->h = curl_easy_init())) {
    free(w);
    free(url);
    return pp_err_set(err, PP_ENOMEM, "out of memory");
  }
  w->kind = X_WATCH;
  w->fn = fn;
  w->end = end;
  w->ud = ud;
  pp_buf_init(&w->line, KC_MAX_EVENT);
  w->hd = headers(c, NULL);
  setup_tls(w->h, &c->cfg);
  curl_easy_setopt(w->h, CURLOPT_URL, url);
  curl_easy_setopt(w->h, CURLOPT_HTTPHEADER, w->hd);
  curl_easy_setopt(w->h, CURLOPT_USERAGENT, c->ua);
  curl_easy_setopt(w->h, CURLOPT_WRITEFUNCTION, on_stream);
  curl_easy_setopt(w->h, CURLOPT_WRITEDATA, w);
  curl_easy_setopt(w->h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  /* the server ends the watch at timeoutSeconds; this only catches a dead connection */
  curl_easy_setopt(w->h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(w->h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(w->h, CURLOPT_LOW_SPEED_TIME, 900L);
  curl_easy_setopt(w->h, CURLOPT_PRIVATE, w);
  free(url);
  c->requests++;
  if (curl_multi_add_handle(c->multi, w->h) != CURLM_OK) {
    curl_easy_cleanup(w->h);
    curl_slist_free_all(w->hd);
    free(w);
    return pp_err_set(err, PP_EIO, "cannot start the watch");
  }
  *ret = w;
  return 0;
}

long kc_watch_status(const kc_watch *w) {
  long status = 0;
  curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &status);
  return status;
}

static void watch_free(kclient *c, kc_watch *w) {
  curl_multi_remove_handle(c->multi, w->h);
  curl_easy_cleanup(w->h);
  curl_slist_free_all(w->hd);
  pp_buf_free(&w->line);
  free(w);
}

void kc_watch_cancel(kclient *c, kc_watch *w) {
  if (w) watch_free(c, w);
}

static void watch_done(kclient *c, kc_watch *w, CURLcode cc) {
  kc_watch_end e = {.reason = w->reason, .http_status = kc_watch_status(w)};
  if (!e.reason) e.reason = cc == CURLE_OK && e.http_status == 200 ? KC_WATCH_CLOSED : KC_WATCH_FAILED;
  if (w->why[0]) snprintf(e.msg, sizeof e.msg, "%s", w->why);
  else if (e.reason == KC_WATCH_FAILED)
    snprintf(e.msg, sizeof e.msg, "%s (HTTP %ld)", cc == CURLE_OK ? "refused" : curl_easy_strerror(cc), e.http_status);
  kc_watch_end_fn end = w->end;
  void *ud = w->ud;
  watch_free(c, w);
  end(ud, &e);
}

/* ---- the loop ---------------------------------------------------------------------------------- */

void kc_poll(kclient *c, int max_wait_ms) {
  int running;
  /* curl_multi_poll also wakes for libcurl's own timers (connect and request timeouts), and for
   * the output of an exec plugin renewing the credentials */
  struct curl_waitfd exec = {.fd = c->exec_fd, .events = CURL_WAIT_POLLIN};
  bool plugin = c->exec_pid && !c->exec_eof;
  if (c->exec_pid && c->exec_eof && max_wait_ms > 100) max_wait_ms = 100; /* reaping it */
  curl_multi_poll(c->multi, plugin ? &exec : NULL, plugin ? 1 : 0, max_wait_ms > 0 ? max_wait_ms : 0, NULL);
  if (c->exec_pid) {
    pp_err err = {0};
    exec_pump(c, 0, &err); /* a failure is kept in exec_error for the requests that need it */
  }
  curl_multi_perform(c->multi, &running);
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(c->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    int *kind = NULL;
    CURL *h = m->easy_handle;
    CURLcode cc = m->data.result;
    curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&kind);
    /* a callback may cancel other transfers: curl drops their messages with them */
    if (kind && *kind == X_REQ) req_done(c, (kc_req *)kind, cc);
    else if (kind && *kind == X_WATCH) watch_done(c, (kc_watch *)kind, cc);
  }
}
