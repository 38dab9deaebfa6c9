/*
 * http_errors.c — a failed request's outcome in the one shape of every I/O
 * failure: nil, "CODE: message", "CODE" (README "I/O failures").
 */
#include <errno.h>
#include <string.h>

#include "http.h"

/* The code of a failed transfer. CURLINFO_OS_ERRNO is read for a failed
 * connect only: curl sets it then and keeps it in the easy handle, which the
 * pool reuses, so for any other failure it may be an earlier request's (a
 * timeout would say "connection refused"). */
static const char *failure_code(const http_req *r) {
  if (r->too_big) return "EFBIG";
  switch (r->code) {
  case CURLE_COULDNT_CONNECT: {
    long os_errno = r->os_errno; /* http_wire.c's; curl keeps its own */
    if (r->easy) curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os_errno);
    if (os_errno == EHOSTUNREACH) return "EHOSTUNREACH";
    if (os_errno == ENETUNREACH) return "ENETUNREACH";
    if (os_errno == ETIMEDOUT) return "ETIMEDOUT";
    return "ECONNREFUSED";
  }
  case CURLE_OPERATION_TIMEDOUT:
    return "ETIMEDOUT";
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    return "EAI_NONAME";
  case CURLE_UNSUPPORTED_PROTOCOL:
    return "EPROTONOSUPPORT";
  case CURLE_URL_MALFORMAT:
    return "EINVAL";
  case CURLE_TOO_MANY_REDIRECTS:
    return AQ_EREDIRECTS;
  case CURLE_PEER_FAILED_VERIFICATION: /* also CURLE_SSL_CACERT */
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_ISSUER_ERROR:
    return AQ_ECERT;
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_SHUTDOWN_FAILED:
  case CURLE_SSL_CLIENTCERT:
  case CURLE_USE_SSL_FAILED:
    return AQ_ETLS;
  case CURLE_SEND_ERROR: /* the connection broke, or ended before the whole response */
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
    return "ECONNRESET";
  case CURLE_WEIRD_SERVER_REPLY: /* the server does not speak valid HTTP */
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_BAD_CONTENT_ENCODING:
    return "EPROTO";
  case CURLE_FILESIZE_EXCEEDED: /* max_body, by the Content-Length */
    return "EFBIG";
  case CURLE_OUT_OF_MEMORY:
  case CURLE_WRITE_ERROR: /* on_body refuses bytes when out of memory (a file error is the fs's) */
    return "ENOMEM";
  default:
    return AQ_EHTTP;
  }
}

/* The URL a failure is about: where the transfer was when it failed (after
 * redirects), else the one asked for. */
static const char *failure_url(const http_req *r) {
  char *url = r->eff_url; /* http_wire.c's */
  if (r->easy) curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &url);
  return url && url[0] ? url : r->url;
}

/* curl's words are its error code's text and, when it wrote one, the
 * request's own error buffer. */
void http_resume_curl_failure(http_req *r, aq_task *task) {
  const char *code = failure_code(r);
  const char *what = curl_easy_strerror(r->code);
  char *detail = r->errbuf;
  size_t n = strlen(detail);
  while (n > 0 && (detail[n - 1] == '\n' || detail[n - 1] == '\r')) detail[--n] = '\0';
  const char *sep = ": ";
  if (n == 0) sep = detail = "";
  else if (strstr(detail, what)) what = sep = "";
  if (strcmp(code, "EFBIG") == 0) {
    aq_task_resume_failure(task, code, "response body larger than max_body = %.0f bytes: %s", (double)r->max_body,
                           failure_url(r));
    return;
  }
  const char *desc = aq_error_text(code); /* every code above has one */
  aq_task_resume_failure(task, code, "%s: %s (%s%s%s)", desc ? desc : "failed", failure_url(r), what, sep, detail);
}

void http_resume_fs_failure(http_req *r, aq_task *task) {
  const char *code = uv_err_name(r->fs_error);
  if (strcmp(r->fs_what, "rename") == 0)
    aq_task_resume_failure(task, code, "cannot rename %s to %s: %s", r->part, r->path, uv_strerror(r->fs_error));
  else
    aq_task_resume_failure(task, code, "cannot %s output file %s: %s", r->fs_what, r->path, uv_strerror(r->fs_error));
}
