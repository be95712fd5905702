/* bin/operator: runs the PprofMonitor and PprofCollectorStack controllers (operator.h) with
 * health and metrics endpoints. Flags as the seed (--kubeconfig, -n/--namespace, --name) plus
 * --leader-elect, --metrics-addr, --health-addr, --install-crds, --log-level, --version. */
#include <curl/curl.h>
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kclient.h"
#include "operator.h"

#include "../base/log.h"
#include "../base/units.h"
#include "../base/version.h"

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) { stop_flag = sig; }

/* What the HTTP threads serve, refreshed by the loop (the operator itself is single-threaded). */
static pthread_mutex_t snap_mu = PTHREAD_MUTEX_INITIALIZER;
static char *snap_metrics;
static int snap_ready;

static enum MHD_Result serve(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                             const char *version, const char *upload, size_t *upload_len, void **state) {
  (void)cls, (void)version, (void)upload, (void)upload_len, (void)state;
  int code = 404;
  char *body = NULL;
  const char *ctype = "text/plain; charset=utf-8";
  if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
    code = 405;
    body = strdup("method not allowed\n");
  } else if (!strcmp(url, "/healthz") || !strcmp(url, "/livez")) {
    code = 200;
    body = strdup("ok\n");
  } else if (!strcmp(url, "/readyz")) {
    pthread_mutex_lock(&snap_mu);
    code = snap_ready ? 200 : 503;
    pthread_mutex_unlock(&snap_mu);
    body = strdup(code == 200 ? "ready\n" : "informers not synced yet\n");
  } else if (!strcmp(url, "/metrics")) {
    pthread_mutex_lock(&snap_mu);
    body = strdup(snap_metrics ? snap_metrics : "");
    pthread_mutex_unlock(&snap_mu);
    code = 200;
    ctype = "text/plain; version=0.0.4; charset=utf-8";
  } else {
    body = strdup("not found\n");
  }
  struct MHD_Response *r = MHD_create_response_from_buffer(body ? strlen(body) : 0, body, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header(r, "Content-Type", ctype);
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)code, r);
  MHD_destroy_response(r);
  return ret;
}

/* "host:port", ":port" or "0" (off). */
static struct MHD_Daemon *listen_on(const char *addr, const char *what) {
  if (!strcmp(addr, "0")) return NULL;
  const char *colon = strrchr(addr, ':');
  int port = atoi(colon ? colon + 1 : addr);
  if (port <= 0 || port > 65535) {
    fprintf(stderr, "operator: %s: bad address \"%s\"\n", what, addr);
    exit(2);
  }
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  char host[256] = "";
  if (colon && colon > addr) snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
  if (host[0] && inet_pton(AF_INET, strcmp(host, "localhost") ? host : "127.0.0.1", &sa.sin_addr) != 1) {
    fprintf(stderr, "operator: %s: bad host \"%s\"\n", what, host);
    exit(2);
  }
  struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, serve, NULL,
                                          MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_CONNECTION_LIMIT, 64U,
                                          MHD_OPTION_CONNECTION_TIMEOUT, 10U, MHD_OPTION_END);
  if (!d) {
    fprintf(stderr, "operator: %s: cannot listen on %s\n", what, addr);
    exit(1);
  }
  return d;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: operator [flags]\n"
          "  --kubeconfig PATH     kubeconfig (default $KUBECONFIG, ~/.kube/config; in a pod: its service account)\n"
          "  -n, --namespace NS    namespace of the collector config and lease (default pprof-controller)\n"
          "  --name NAME           operator name, prefix of what it creates (default pprof-operator)\n"
          "  --leader-elect        run only while holding the Lease <name>-leader (15 s lease, 10 s renew, 2 s retry)\n"
          "  --metrics-addr ADDR   /metrics on ADDR (default :8080, 0 = off)\n"
          "  --health-addr ADDR    /healthz and /readyz on ADDR (default :8081, 0 = off)\n"
          "  --install-crds=BOOL   apply the CRDs at start-up (default true)\n"
          "  --log-level LEVEL     debug, info, warn or error (default info)\n"
          "  --config-gzip-above BYTES  write config.yaml gzipped (binaryData) when larger (default 524288)\n"
          "  --shard-change-delay DURATION  a stack's new shard count takes effect this long after it is\n"
          "                        seen, once the config has reached every collector pod (default 150s)\n"
          "  --version             print the version and exit\n"
          "exit status: 0 stopped by a signal, 1 cannot start, 2 bad flags\n");
}

int main(int argc, char **argv) {
  const char *kubeconfig = NULL, *ns = "pprof-controller", *name = "pprof-operator";
  const char *metrics_addr = ":8080", *health_addr = ":8081";
  bool leader_elect = false, install_crds = true;
  size_t gzip_above = (size_t)512 << 10;
  int64_t shard_delay = 150;
  static const struct option lo[] = {{"kubeconfig", required_argument, 0, 'k'},   {"namespace", required_argument, 0, 'n'},
                                     {"name", required_argument, 0, 'N'},         {"leader-elect", optional_argument, 0, 'L'},
                                     {"metrics-addr", required_argument, 0, 'm'}, {"health-addr", required_argument, 0, 'H'},
                                     {"install-crds", optional_argument, 0, 'I'}, {"log-level", required_argument, 0, 'l'},
                                     {"version", no_argument, 0, 'V'},            {"help", no_argument, 0, 'h'},
                                     {"config-gzip-above", required_argument, 0, 'Z'},
                                     {"shard-change-delay", required_argument, 0, 'S'},
                                     {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "n:h", lo, NULL)) != -1) {
    switch (ch) {
    case 'k': kubeconfig = optarg; break;
    case 'n': ns = optarg; break;
    case 'N': name = optarg; break;
    case 'L': leader_elect = !optarg || !strcmp(optarg, "true"); break;
    case 'm': metrics_addr = optarg; break;
    case 'H': health_addr = optarg; break;
    case 'I':
      if (optarg && strcmp(optarg, "true") && strcmp(optarg, "false")) {
        fprintf(stderr, "operator: --install-crds wants true or false\n");
        return 2;
      }
      install_crds = !optarg || !strcmp(optarg, "true");
      break;
    case 'l':
      if (pp_log_level_from_name(optarg) < 0) {
        fprintf(stderr, "operator: --log-level wants debug, info, warn or error\n");
        return 2;
      }
      pp_log_set_level((pp_log_level)pp_log_level_from_name(optarg));
      break;
    case 'Z': {
      char *end;
      errno = 0;
      unsigned long long v = strtoull(optarg, &end, 10);
      if (errno || *end || end == optarg || v > (1ull << 30)) {
        fprintf(stderr, "operator: --config-gzip-above wants a byte count up to 1073741824\n");
        return 2;
      }
      gzip_above = (size_t)v;
      break;
    }
    case 'S': {
      double d;
      pp_err e;
      if (pp_parse_duration(optarg, &d, &e) < 0 || d < 1 || d > 3600 || d != (double)(int64_t)d) {
        fprintf(stderr, "operator: --shard-change-delay wants whole seconds from 1s to 1h, such as 150s\n");
        return 2;
      }
      shard_delay = (int64_t)d;
      break;
    }
    case 'V': printf("operator %s (revision %s)\n", PP_VERSION, PP_REVISION); return 0;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "operator: unexpected argument \"%s\"\n", argv[optind]);
    return 2;
  }
  if (!*ns || !*name || strlen(name) > 40) {
    fprintf(stderr, "operator: --namespace and --name must be set (--name at most 40 characters)\n");
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  srand((unsigned)getpid() ^ (unsigned)time(NULL));
  pp_err err = {0};
  kc_config cfg;
  int r;
  if (!kubeconfig && !getenv("KUBECONFIG") && getenv("KUBERNETES_SERVICE_HOST")) r = kc_config_incluster(&cfg, &err);
  else r = kc_config_kubeconfig(kubeconfig, &cfg, &err);
  if (r < 0) {
    fprintf(stderr, "operator: %s\n", err.msg);
    return 1;
  }
  kclient *c = NULL;
  char ua[128], host[128] = "", identity[300];
  snprintf(ua, sizeof ua, "pprof-operator/%s", PP_VERSION);
  gethostname(host, sizeof host - 1);
  snprintf(identity, sizeof identity, "%s_%d_%08x", host, (int)getpid(), (unsigned)rand());
  r = kc_new(&cfg, ua, &c, &err);
  kc_config_free(&cfg);
  if (r < 0) {
    fprintf(stderr, "operator: %s\n", err.msg);
    return 1;
  }
  op_opts oo = {name, ns, leader_elect, identity, install_crds, gzip_above, shard_delay};
  op *o = NULL;
  if (op_new(&oo, c, &o, &err) < 0) {
    fprintf(stderr, "operator: %s\n", err.msg);
    kc_free(c);
    return 1;
  }
  struct MHD_Daemon *hd = listen_on(health_addr, "--health-addr");
  struct MHD_Daemon *md = strcmp(metrics_addr, health_addr) ? listen_on(metrics_addr, "--metrics-addr") : NULL;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  pp_log(PP_LOG_INFO, "operator %s starting: name=%s namespace=%s leader-elect=%d identity=%s", PP_VERSION, name, ns,
         leader_elect, identity);
  int rc = 0;
  if (install_crds) {
    for (int attempt = 0; !stop_flag; attempt++) {
      if (op_install_crds(o, &err) == 0) break;
      pp_log(PP_LOG_WARN, "installing CRDs: %s", err.msg);
      if (attempt >= 30) {
        rc = 1;
        goto out;
      }
      sleep(1);
    }
  }
  while (!stop_flag) {
    op_step(o, 250);
    char *m = op_metrics(o);
    pthread_mutex_lock(&snap_mu);
    free(snap_metrics);
    snap_metrics = m;
    snap_ready = op_ready(o);
    pthread_mutex_unlock(&snap_mu);
  }
  op_release(o);
  pp_log(PP_LOG_INFO, "stopping");
out:
  if (hd) MHD_stop_daemon(hd);
  if (md) MHD_stop_daemon(md);
  op_free(o);
  kc_free(c);
  free(snap_metrics);
  curl_global_cleanup();
  return rc;
}
