/*
 * exec.c — the C half of aqueue.exec ("aqueue.exec_core"): runs a program
 * with uv_spawn, feeds it its stdin, captures all of its stdout and stderr,
 * and yields the task until the program has exited and both outputs have
 * ended. lua/aqueue/exec.lua checks the arguments and gives the public shape.
 * Written against the public API (aqueue.h) only.
 *
 * Results, luv style:
 *   { code =, signal =, stdout =, stderr = }   whatever the exit code
 *   nil, "ENOENT: no such file or directory: prog", "ENOENT"   spawn failed
 *   nil, "ETIMEDOUT: killed after a timeout of 2 s: prog", "ETIMEDOUT"
 *
 * The child runs in a session (so a process group) of its own: a timeout or
 * a cancel kills the whole group with SIGKILL, so a shell's children die with
 * it instead of holding the output pipes open; and the Ctrl-C typed at the
 * terminal reaches aqueue-run alone, which decides (first Ctrl-C: let running
 * items finish; second: cancel them, which kills their programs).
 *
 * Ownership: an exec_call holds a uv_process_t, two or three uv_pipe_t, maybe
 * a uv_timer_t, a uv_write_t on the stdin pipe, the stdin copy and the output
 * buffers. It belongs to this file from l_exec until the close callback of
 * its last handle frees it (exec_call.handles counts them). Exactly one of
 * these ends the task's wait: complete() resumes it (exit and both outputs
 * ended, or exit after a timeout), or cancel_exec() forgets it. Either then
 * closes every handle but the process, which is closed in on_child_exit: closing it
 * before would leave the child unreaped (a zombie) — so a cancelled call
 * lives on, unseen, until its killed child has been reaped.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "aqueue.h"
#include "builtin.h"

typedef struct {
  char *data;
  size_t len, cap;
} out_buf;

typedef struct {
  uv_process_t proc;
  uv_pipe_t in, out, err; /* the child's stdin (only when given), stdout, stderr */
  uv_timer_t timer;       /* only with a timeout */
  uv_write_t write;       /* feeds stdin */
  aq_task *task;          /* NULL once resumed or cancelled */
  int handles;            /* handles not yet closed: the last close frees the call */
  int streams_open;       /* stdout and stderr not yet at their end */
  int has_in, has_timer, exited, timed_out;
  int64_t exit_status;
  int term_signal;
  int read_err;           /* the first failure reading an output, 0 when none */
  double timeout;
  char *input;            /* a copy of stdin (the Lua string may go away), */
  size_t input_len;
  char *name;             /* and the program's name, in the call's block */
  out_buf output[2];      /* stdout, stderr */
} exec_call;

/* --- closing and freeing --- */

static void on_closed(uv_handle_t *handle) {
  exec_call *x = handle->data;
  if (--x->handles > 0) return;
  free(x->output[0].data);
  free(x->output[1].data);
  free(x); /* with its name and stdin copy */
}

static void close_handle(uv_handle_t *handle) {
  if (!uv_is_closing(handle)) uv_close(handle, on_closed);
}

/* Closes everything but the process handle, which on_child_exit closes. Closing
 * the stdin pipe cancels a pending write (its callback runs first). */
static void close_io(exec_call *x) {
  if (x->has_in) close_handle((uv_handle_t *)&x->in);
  close_handle((uv_handle_t *)&x->out);
  close_handle((uv_handle_t *)&x->err);
  if (x->has_timer) close_handle((uv_handle_t *)&x->timer);
}

/* SIGKILL to the child's process group (it leads one: UV_PROCESS_DETACHED),
 * or to the child alone should that fail. Only while the child is unreaped or
 * some of its group still holds our pipes, so the id cannot have been reused. */
static void kill_child(exec_call *x) {
  if (uv_kill(-x->proc.pid, SIGKILL) != 0 && !x->exited) uv_process_kill(&x->proc, SIGKILL);
}

/* --- the answer --- */

static int push_exec_results(lua_State *L, exec_call *x) {
  if (x->timed_out)
    return aq_push_failure(L, "ETIMEDOUT", "killed after a timeout of %f s: %s", x->timeout, x->name);
  if (x->read_err)
    return aq_push_failure(L, uv_err_name(x->read_err), "%s: %s", uv_strerror(x->read_err), x->name);
  lua_createtable(L, 0, 4);
  /* Killed by a signal: the shell's 128 + signal, so that `code ~= 0`
   * always means the program did not succeed. */
  lua_pushnumber(L, x->term_signal ? 128 + x->term_signal : (double)x->exit_status);
  lua_setfield(L, -2, "code");
  lua_pushinteger(L, x->term_signal);
  lua_setfield(L, -2, "signal");
  lua_pushlstring(L, x->output[0].data ? x->output[0].data : "", x->output[0].len);
  lua_setfield(L, -2, "stdout");
  lua_pushlstring(L, x->output[1].data ? x->output[1].data : "", x->output[1].len);
  lua_setfield(L, -2, "stderr");
  return 1;
}

/* Resumes the task once the child has exited and both outputs have ended —
 * or, after a timeout, as soon as the killed child has been reaped, without
 * waiting for an output some escaped grandchild may hold open. */
static void maybe_complete(exec_call *x) {
  if (!x->task || !x->exited || (x->streams_open > 0 && !x->timed_out)) return;
  aq_task *task = x->task;
  x->task = NULL;
  aq_task_resume(task, push_exec_results(aq_task_state(task), x));
  close_io(x);
}

/* --- callbacks --- */

static void on_child_exit(uv_process_t *proc, int64_t exit_status, int term_signal) {
  exec_call *x = proc->data;
  x->exited = 1;
  x->exit_status = exit_status;
  x->term_signal = term_signal;
  close_handle((uv_handle_t *)proc); /* reaped: nothing left to wait for */
  maybe_complete(x);
}

/* Reads go straight into the output buffer, grown by doubling. */
static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  exec_call *x = handle->data;
  out_buf *b = &x->output[handle == (uv_handle_t *)&x->err];
  if (b->cap - b->len < suggested) {
    size_t cap = b->cap ? b->cap : suggested;
    while (cap - b->len < suggested) cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data) { /* the read callback gets UV_ENOBUFS */
      *buf = uv_buf_init(NULL, 0);
      return;
    }
    b->data = data;
    b->cap = cap;
  }
  *buf = uv_buf_init(b->data + b->len, (unsigned int)(b->cap - b->len));
}

static void on_child_output(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  exec_call *x = stream->data;
  if (nread > 0) {
    x->output[stream == (uv_stream_t *)&x->err].len += (size_t)nread;
    return;
  }
  if (nread == 0) return; /* nothing this time (EAGAIN) */
  if (nread != UV_EOF && !x->read_err) x->read_err = (int)nread;
  close_handle((uv_handle_t *)stream);
  x->streams_open--;
  maybe_complete(x);
}

/* All of stdin was written (or the child closed its end: EPIPE, or the call
 * ended: ECANCELED). Either way, closing our end gives the child its EOF.
 * A child that does not read its input is not an error. */
static void on_written(uv_write_t *req, int status) {
  (void)status;
  exec_call *x = req->data;
  close_handle((uv_handle_t *)&x->in);
}

static void on_timeout(uv_timer_t *timer) {
  exec_call *x = timer->data;
  x->timed_out = 1;
  kill_child(x); /* on_child_exit completes; already exited: completes now */
  maybe_complete(x);
}

/* The task is cancelled: kill the child, close the pipes and the timer, and
 * let on_child_exit reap the child and close the last handle. The task is gone. */
static void cancel_exec(aq_task *task, void *data) {
  (void)task;
  exec_call *x = data;
  x->task = NULL;
  if (!x->exited) kill_child(x);
  close_io(x);
}

/* --- the binding --- */

static void free_env(char **env) {
  if (!env) return;
  for (char **e = env; *e; e++) free(*e);
  free(env);
}

static char *join_env(const char *name, size_t name_len, const char *value, size_t value_len) {
  char *s = malloc(name_len + value_len + 2);
  if (s) {
    memcpy(s, name, name_len);
    s[name_len] = '=';
    memcpy(s + name_len + 1, value, value_len);
    s[name_len + value_len + 1] = '\0';
  }
  return s;
}

/* The child's environment: ours, where the table at idx (name -> string, or
 * false to remove) overrides. Returns a NULL-terminated array to free with
 * free_env, or NULL when out of memory. */
static char **build_env(lua_State *L, int idx) {
  uv_env_item_t *items;
  int count;
  if (uv_os_environ(&items, &count) != 0) return NULL;
  size_t extra = lua_objlen(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    extra++;
    lua_pop(L, 1);
  }
  char **env = calloc((size_t)count + extra + 1, sizeof *env);
  size_t n = 0;
  int ok = env != NULL;
  for (int i = 0; ok && i < count; i++) {
    lua_getfield(L, idx, items[i].name);
    int overridden = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (overridden) continue;
    env[n] = join_env(items[i].name, strlen(items[i].name), items[i].value, strlen(items[i].value));
    ok = env[n++] != NULL;
  }
  uv_os_free_environ(items, count);
  lua_pushnil(L);
  while (ok && lua_next(L, idx)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_isstring(L, -1)) {
      size_t name_len, value_len;
      const char *name = lua_tolstring(L, -2, &name_len);
      const char *value = lua_tolstring(L, -1, &value_len);
      env[n] = join_env(name, name_len, value, value_len);
      ok = env[n++] != NULL;
    }
    lua_pop(L, 1);
  }
  if (!ok) {
    lua_pop(L, 1); /* the nil or key that lua_next did not consume */
    free_env(env);
    return NULL;
  }
  return env;
}

/* Starts the child; returns 0, or a negative uv error (the child never ran). */
static int spawn(uv_loop_t *loop, exec_call *x, const char **argv, char **env, const char *cwd) {
  uv_pipe_init(loop, &x->out, 0);
  uv_pipe_init(loop, &x->err, 0);
  if (x->has_in) uv_pipe_init(loop, &x->in, 0);
  x->proc.data = x->out.data = x->err.data = x->in.data = x->timer.data = x->write.data = x;
  x->handles = 3 + x->has_in; /* uv_spawn initializes the process handle, even when it fails */

  uv_stdio_container_t stdio[3];
  stdio[0].flags = x->has_in ? (uv_stdio_flags)(UV_CREATE_PIPE | UV_READABLE_PIPE) : UV_IGNORE; /* /dev/null */
  stdio[0].data.stream = (uv_stream_t *)&x->in;
  stdio[1].flags = (uv_stdio_flags)(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  stdio[1].data.stream = (uv_stream_t *)&x->out;
  stdio[2].flags = (uv_stdio_flags)(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  stdio[2].data.stream = (uv_stream_t *)&x->err;
  uv_process_options_t options;
  memset(&options, 0, sizeof options);
  options.exit_cb = on_child_exit;
  options.file = argv[0];
  options.args = (char **)argv;
  options.env = env;
  options.cwd = cwd;
  options.flags = UV_PROCESS_DETACHED; /* its own session: see the top of the file */
  options.stdio_count = 3;
  options.stdio = stdio;
  return uv_spawn(loop, &x->proc, &options);
}

/* The child runs: capture its outputs, feed its stdin, arm the timeout. */
static void start_io(uv_loop_t *loop, exec_call *x) {
  x->streams_open = 2;
  int r = uv_read_start((uv_stream_t *)&x->out, on_alloc, on_child_output);
  if (r == 0) r = uv_read_start((uv_stream_t *)&x->err, on_alloc, on_child_output);
  if (r != 0) { /* cannot capture: kill it, and report once it is reaped */
    x->read_err = r;
    x->streams_open = 0;
    kill_child(x);
  }
  if (x->has_in) {
    uv_buf_t buf = uv_buf_init(x->input, (unsigned int)x->input_len);
    if (x->input_len == 0 || uv_write(&x->write, (uv_stream_t *)&x->in, &buf, 1, on_written) != 0)
      close_handle((uv_handle_t *)&x->in); /* EOF at once */
  }
  if (x->timeout > 0) {
    uv_timer_init(loop, &x->timer);
    x->has_timer = 1;
    x->handles++;
    aq_timer_start(&x->timer, on_timeout, x->timeout);
  }
}

/* exec_core.exec(argv, stdin, cwd, env, timeout): argv a non-empty array of
 * strings; stdin a string, or nil for /dev/null; cwd a string or nil; env a
 * table (see build_env), or nil to inherit ours; timeout seconds, or nil.
 * lua/aqueue/exec.lua checks all of that first, with friendlier messages. */
static int l_exec(lua_State *L) {
  aq_task *task = aq_task_current(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  size_t input_len = 0;
  const char *input = luaL_optlstring(L, 2, NULL, &input_len);
  const char *cwd = luaL_optstring(L, 3, NULL);
  int has_env = !lua_isnoneornil(L, 4);
  if (has_env) luaL_checktype(L, 4, LUA_TTABLE);
  double timeout = luaL_optnumber(L, 5, 0);
  if (input_len > 0xffffffffu) return luaL_argerror(L, 2, "stdin is larger than 4 GB");
  int argc = (int)lua_objlen(L, 1);
  if (argc < 1) return luaL_argerror(L, 1, "the program is missing");
  for (int i = 1; i <= argc; i++) {
    lua_rawgeti(L, 1, i);
    int is_string = lua_type(L, -1) == LUA_TSTRING;
    lua_pop(L, 1);
    if (!is_string) return luaL_argerror(L, 1, "the arguments must be strings");
  }
  lua_rawgeti(L, 1, 1);
  const char *name = lua_tostring(L, -1); /* kept alive by the table */
  lua_pop(L, 1);
  size_t name_len = strlen(name);

  /* One block holds the call, the program's name and the copy of stdin. */
  exec_call *x = calloc(1, sizeof *x + name_len + 1 + input_len);
  const char **argv = calloc((size_t)argc + 1, sizeof *argv);
  char **env = has_env ? build_env(L, 4) : NULL;
  if (!x || !argv || (has_env && !env)) {
    free(x);
    free(argv);
    free_env(env);
    return luaL_error(L, "out of memory");
  }
  /* The strings stay in the table, on the stack, during uv_spawn, which has
   * the child exec them before it returns. */
  for (int i = 0; i < argc; i++) {
    lua_rawgeti(L, 1, i + 1);
    argv[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  x->name = (char *)(x + 1);
  memcpy(x->name, name, name_len + 1);
  x->input = x->name + name_len + 1;
  if (input_len > 0) memcpy(x->input, input, input_len);
  x->input_len = input_len;
  x->has_in = input != NULL;
  x->timeout = timeout;

  uv_loop_t *loop = aq_engine_loop(aq_engine_from_lua(L));
  int r = spawn(loop, x, argv, env, cwd);
  free(argv);
  free_env(env);
  if (r != 0) { /* no child: answer at once, and close what was opened */
    if (cwd) aq_push_failure(L, uv_err_name(r), "%s: %s (in %s)", uv_strerror(r), x->name, cwd);
    else aq_push_failure(L, uv_err_name(r), "%s: %s", uv_strerror(r), x->name);
    close_handle((uv_handle_t *)&x->proc);
    close_io(x);
    return 3;
  }
  x->task = task;
  start_io(loop, x);
  return aq_task_yield(L, cancel_exec, x);
}

int aq_open_exec(lua_State *L) {
  /* Writing stdin to a program that has exited raises SIGPIPE, whose default
   * action would end aqueue-run: ignore it (the write fails with EPIPE
   * instead), unless the embedder chose a handler. libuv resets signal
   * dispositions in the child, so programs still get the default. */
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
  }
  static const luaL_Reg functions[] = {{"exec", l_exec}, {NULL, NULL}};
  lua_newtable(L);
  luaL_register(L, NULL, functions);
  return 1;
}
