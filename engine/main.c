/* main.c — aqueue-run: parse the command line, make the engine (core/), give
 * it the built-in bindings (modules/), run the script. The one file that
 * knows both floors. */
#include <stdio.h>

#include "builtin.h"
#include "cli.h"
#include "core_lua.h"
#include "engine.h"

int main(int argc, char **argv) {
  aq_cli cli;
  int status = cli_parse(argc, argv, &cli);
  if (status != 0) return status;
  if (cli.show_help) {
    cli_print_help();
    return 0;
  }
  if (cli.show_version) {
    cli_print_version();
    return 0;
  }
  aq_engine *E = engine_create();
  if (!E) return AQ_EXIT_FAILED;
  core_lua_open(aq_engine_state(E));
  aq_builtin_modules_open(aq_engine_state(E));
  E->cli_workers = cli.workers;
  E->cli_order = cli.order;
  E->cli_progress = cli.progress;
  E->cli_state = cli.state;
  E->cli_redis = cli.redis;
  E->cli_run = cli.run;
  E->cli_fresh = cli.fresh;
  E->cli_retry_failed = cli.retry_failed;
  E->cli_max_items = (double)cli.max_items;
  E->cli_max_time = cli.max_time;
  if (cli.code) status = engine_load_script(E, NULL, cli.code, argc, argv, cli.script_index);
  else if (cli.script_index) status = engine_load_script(E, argv[cli.script_index], NULL, argc, argv, cli.script_index);
  else if (cli.redis) status = engine_load_tool(E, "aqueue.redis_tool", cli.status ? "status" : "retry_failed");
  else status = engine_load_tool(E, "aqueue.state_tool", cli.status ? "status" : "retry_failed");
  if (status == 0) status = engine_run(E);
  status = engine_destroy(E, status);
  fflush(stdout);
  return status;
}
