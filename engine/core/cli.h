/* cli.h — the command line of aqueue-run (SPEC section 3). */
#ifndef AQ_CLI_H
#define AQ_CLI_H

typedef struct {
  int workers;        /* -w/--workers, 0 when not given */
  int order;          /* --order as an aq_order, -1 when not given */
  int progress;       /* --progress as an aq_progress, -1 when not given */
  const char *state;  /* --state FILE, NULL when not given */
  const char *redis;  /* --redis URL, NULL when not given */
  const char *run;    /* --run NAME (with --redis), NULL when not given */
  int fresh, status, retry_failed; /* --fresh, --status, --retry-failed */
  long long max_items; /* --max-items N, 0 when not given */
  double max_time;     /* --max-time S, 0 when not given */
  const char *code;    /* -e CODE: run CODE as the script; NULL when not given */
  /* argv index of the script ("-": stdin); arguments after it are the
   * script's. With -e, the index of the first script argument (argc when
   * none). 0 when nothing runs (--status, --retry-failed alone). */
  int script_index;
  int show_help, show_version;
} aq_cli;

/* Parses argv into *cli. Returns 0, or an exit status after printing the
 * problem (or the help/version text: then 0 with show_help/show_version set). */
int cli_parse(int argc, char **argv, aq_cli *cli);

void cli_print_help(void);
void cli_print_version(void);

#endif
