/* cli.c — parsing aqueue-run's options; everything after the script is the script's. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <luajit.h>
#include <uv.h>

#include "engine.h"

static const char usage[] =
    "usage: aqueue-run [options] script.lua [args...]\n"
    "       aqueue-run [options] -e CODE [args...]\n"
    "       aqueue-run [options] - [args...]      (the script from stdin)\n"
    "\n"
    "Runs script.lua: its items are processed by concurrent workers until all are done.\n"
    "The script's arguments are in the global `arg`, as with luajit.\n"
    "\n"
    "options:\n"
    "  -w, --workers N    num_workers (wins over the script's run_queue{ num_workers = })\n"
    "  --order MODE       lifo | fifo | priority (wins over the script's run_queue{ order = })\n"
    "  --max-items N      stop cleanly once N items have started (run_queue's max_items)\n"
    "  --max-time S       stop cleanly after S seconds (run_queue's max_time)\n"
    "  -e CODE            run CODE as the script; the arguments that follow are its own\n"
    "  --state FILE       persist the queue in FILE; rerunning with the same FILE resumes\n"
    "  --fresh            with --state: discard an unfinished run in FILE and start anew\n"
    "  --status           with --state: print the run's pending, done and failed items\n"
    "                     (no script needed; nothing runs)\n"
    "  --retry-failed     with --state or --redis: put the failed items back to be run\n"
    "                     again (then run the script, if given)\n"
    "  --redis URL        share the run with other processes through Redis:\n"
    "                     redis://[:password@]host[:port][/db] or unix:///path/to/socket;\n"
    "                     --fresh, --status and --retry-failed work on the run as\n"
    "                     with --state\n"
    "  --run NAME         with --redis: the run's name (default: the script's file\n"
    "                     name without its extension)\n"
    "  --progress MODE    auto | tty | plain | json | none: the live display\n"
    "                     (auto: tty when stderr is a terminal, else plain)\n"
    "  --version          print the version and exit\n"
    "  -h, --help         print this help and exit\n"
    "\n"
    "exit status: 0 all items succeeded; 1 the script raised or items failed;\n"
    "2 bad usage or unreadable script; 130 interrupted (Ctrl-C).\n";

void cli_print_help(void) { fputs(usage, stdout); }

void cli_print_version(void) {
  printf("aqueue-run %s (%s, libuv %s)\n", AQUEUE_VERSION, LUAJIT_VERSION, uv_version_string());
}

static int bad_usage(const char *fmt, const char *what) {
  fprintf(stderr, "aqueue-run: ");
  fprintf(stderr, fmt, what);
  fprintf(stderr, "\nTry 'aqueue-run --help'.\n");
  return AQ_EXIT_USAGE;
}

/* Where the queue is kept: --state FILE or --redis URL (not both), and the
 * options that work on it. `script` is the script's argv (NULL when there is
 * none: -e, or nothing runs). Returns 0 or the usage error's status. */
static int check_store_options(const aq_cli *cli, const char *script) {
  const char *needs = cli->fresh ? "--fresh" : cli->status ? "--status" : cli->retry_failed ? "--retry-failed" : NULL;
  if (cli->state && cli->redis)
    return bad_usage("%s", "--state and --redis cannot be combined: a run is kept in a state file or in Redis");
  if (needs && !cli->state && !cli->redis) return bad_usage("%s needs --state FILE or --redis URL", needs);
  if (cli->run && !cli->redis) return bad_usage("%s", "--run needs --redis URL");
  if (!cli->redis || cli->run) return 0;
  if (cli->status) return bad_usage("%s", "--status with --redis needs --run NAME (no script names the run)");
  if (cli->retry_failed && !script)
    return bad_usage("%s", "--retry-failed with --redis needs --run NAME when no script names the run");
  if (!script || strcmp(script, "-") == 0)
    return bad_usage("%s", "--redis needs --run NAME when the script is not a file (-e, stdin): nothing names the run");
  return 0;
}

/* The value of an option given as "--opt value", "--opt=value" or "-wvalue";
 * advances *i past a separate value. NULL when it is missing. */
static const char *option_value(int argc, char **argv, int *i, const char *arg, size_t name_len) {
  if (arg[name_len] == '=') return arg + name_len + 1;
  if (arg[name_len] != '\0') return arg + name_len; /* -w4 */
  if (*i + 1 >= argc) return NULL;
  return argv[++*i];
}

static int parse_workers(const char *text, int *out) {
  char *end;
  long n = strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || n < 1 || n > 10000000) return -1;
  *out = (int)n;
  return 0;
}

/* --max-items: a whole number from 1 to 2^53 (exact in a Lua number). */
static int parse_max_items(const char *text, long long *out) {
  char *end;
  errno = 0;
  long long n = strtoll(text, &end, 10);
  if (*text == '\0' || *end != '\0' || errno || n < 1 || n > (1LL << 53)) return -1;
  *out = n;
  return 0;
}

/* --max-time: seconds, a finite number > 0. */
static int parse_max_time(const char *text, double *out) {
  char *end;
  errno = 0;
  double s = strtod(text, &end);
  if (*text == '\0' || *end != '\0' || errno || !(s > 0) || !isfinite(s)) return -1;
  *out = s;
  return 0;
}

static int matches(const char *arg, const char *name) {
  size_t n = strlen(name);
  return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

int cli_parse(int argc, char **argv, aq_cli *cli) {
  memset(cli, 0, sizeof *cli);
  cli->order = -1;
  cli->progress = -1;
  int i = 1;
  for (; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--") == 0) {
      i++;
      break;
    }
    if (arg[0] != '-' || arg[1] == '\0') break; /* the script */
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
      cli->show_help = 1;
      return 0;
    }
    if (strcmp(arg, "--version") == 0) {
      cli->show_version = 1;
      return 0;
    }
    if (strncmp(arg, "-w", 2) == 0 && strncmp(arg, "--", 2) != 0) {
      const char *v = option_value(argc, argv, &i, arg, 2);
      if (!v || parse_workers(v, &cli->workers) != 0)
        return bad_usage("-w needs a whole number of workers from 1 to 10000000, got '%s'", v ? v : "");
    } else if (matches(arg, "--workers")) {
      const char *v = option_value(argc, argv, &i, arg, 9);
      if (!v || parse_workers(v, &cli->workers) != 0)
        return bad_usage("--workers needs a whole number from 1 to 10000000, got '%s'", v ? v : "");
    } else if (strncmp(arg, "-e", 2) == 0) {
      const char *v = option_value(argc, argv, &i, arg, 2);
      if (!v) return bad_usage("-e needs the code to run%s", "");
      cli->code = v;
    } else if (matches(arg, "--max-items")) {
      const char *v = option_value(argc, argv, &i, arg, 11);
      if (!v || parse_max_items(v, &cli->max_items) != 0)
        return bad_usage("--max-items needs a whole number of items >= 1, got '%s'", v ? v : "");
    } else if (matches(arg, "--max-time")) {
      const char *v = option_value(argc, argv, &i, arg, 10);
      if (!v || parse_max_time(v, &cli->max_time) != 0)
        return bad_usage("--max-time needs a number of seconds > 0, got '%s'", v ? v : "");
    } else if (matches(arg, "--order")) {
      const char *v = option_value(argc, argv, &i, arg, 7);
      if (v && strcmp(v, "lifo") == 0) cli->order = AQ_ORDER_LIFO;
      else if (v && strcmp(v, "fifo") == 0) cli->order = AQ_ORDER_FIFO;
      else if (v && strcmp(v, "priority") == 0) cli->order = AQ_ORDER_PRIORITY;
      else return bad_usage("--order must be lifo, fifo or priority, got '%s'", v ? v : "");
    } else if (matches(arg, "--progress")) {
      const char *v = option_value(argc, argv, &i, arg, 10);
      cli->progress = v ? display_parse_mode(v) : -1;
      if (cli->progress < 0)
        return bad_usage("--progress must be auto, tty, plain, json or none, got '%s'", v ? v : "");
    } else if (matches(arg, "--state")) {
      const char *v = option_value(argc, argv, &i, arg, 7);
      if (!v || *v == '\0') return bad_usage("--state needs a file name%s", "");
      cli->state = v;
    } else if (matches(arg, "--redis")) {
      const char *v = option_value(argc, argv, &i, arg, 7);
      if (!v || *v == '\0') return bad_usage("--redis needs a URL (redis://host:port/db)%s", "");
      cli->redis = v;
    } else if (matches(arg, "--run")) {
      const char *v = option_value(argc, argv, &i, arg, 5);
      if (!v || *v == '\0' || strpbrk(v, "{}"))
        return bad_usage("--run needs a name without braces, got '%s'", v ? v : "");
      cli->run = v;
    } else if (strcmp(arg, "--fresh") == 0) {
      cli->fresh = 1;
    } else if (strcmp(arg, "--status") == 0) {
      cli->status = 1;
    } else if (strcmp(arg, "--retry-failed") == 0) {
      cli->retry_failed = 1;
    } else {
      return bad_usage("unknown option '%s'", arg);
    }
  }
  int rc = check_store_options(cli, cli->code || i >= argc ? NULL : argv[i]);
  if (rc != 0) return rc;
  if (cli->fresh && (cli->status || cli->retry_failed))
    return bad_usage("%s", "--fresh cannot be combined with --status or --retry-failed");
  if (cli->status) {
    if (i < argc || cli->code)
      return bad_usage("%s", cli->redis ? "--status runs no script: give only --redis URL --run NAME --status"
                                        : "--status runs no script: give only --state FILE --status");
    return 0;
  }
  if (cli->code) {
    cli->script_index = i; /* what follows are the script's arguments */
    return 0;
  }
  if (i >= argc) {
    if (cli->retry_failed) return 0; /* only put the failed items back */
    return bad_usage("%s", "no script given");
  }
  cli->script_index = i;
  return 0;
}
