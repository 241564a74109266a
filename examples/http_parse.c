/*
 * http_parse.c: the request-head parser of examples/http_server.c (see
 * http_parse.h for the contract).
 *
 * Model: every call parses the head from the start of the buffer, one line
 * at a time; a line that is not complete yet ends the call with 0 (more
 * bytes needed), so a malformed line is refused as soon as it is complete,
 * without waiting for the end of the head. Heads are small and the server
 * bounds them, so reparsing a partial head costs little.
 */
#include "examples/http_parse.h"

#include <string.h>

enum { NEED_MORE = -1, BAD = -2 };

/* tchar (RFC 9110 5.6.2): the characters of methods and field names. */
static int is_tchar(unsigned char c) {
  return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
         (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Returns the index of the CR of the first CRLF at or after `from`,
 * NEED_MORE when there is none yet, BAD for a bare CR or LF. */
static long line_end(const char *buf, size_t len, size_t from) {
  for (size_t i = from; i < len; i++) {
    if (buf[i] == '\n') return BAD;
    if (buf[i] != '\r') continue;
    if (i + 1 == len) return NEED_MORE;
    return buf[i + 1] == '\n' ? (long)i : BAD;
  }
  return NEED_MORE;
}

/* Case-insensitive comparison of s[0, n) with the lower-case word w. */
static int is_word(const char *s, size_t n, const char *w) {
  if (strlen(w) != n) return 0;
  for (size_t i = 0; i < n; i++)
    if ((s[i] | 0x20) != w[i]) return 0;
  return 1;
}

/* METHOD SP TARGET SP HTTP/1.x in line[0, n); returns 0 or -status. */
static int parse_request_line(const char *line, size_t n, http_req_t *req) {
  size_t i = 0;
  while (i < n && is_tchar((unsigned char)line[i])) i++;
  if (i == 0 || i == n || line[i] != ' ') return -400;
  req->method = line;
  req->method_len = i;
  size_t t = ++i;
  while (i < n && (unsigned char)line[i] > ' ' && (unsigned char)line[i] < 0x7f) i++;
  if (i == t || i == n || line[i] != ' ') return -400;
  req->target = line + t;
  req->target_len = i - t;
  const char *v = line + i + 1;
  if (n - i - 1 != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.') return -400;
  if (v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9') return -400;
  if (v[5] != '1') return -505;
  req->minor = v[7] - '0';
  req->keep_alive = req->minor >= 1; /* HTTP/1.0 closes unless asked not to */
  return 0;
}

/* Sets *out to the decimal value of s[0, n); 0, or -400 if it is not one. */
static int parse_length(const char *s, size_t n, int64_t *out) {
  int64_t v = 0;
  if (n == 0) return -400;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9' || v > (INT64_MAX - 9) / 10) return -400;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 0;
}

/* Applies a Connection value: a comma-separated list of options. */
static void parse_connection(const char *s, size_t n, http_req_t *req, int *close) {
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && s[j] != ',') j++;
    size_t a = i, b = j;
    while (a < b && (s[a] == ' ' || s[a] == '\t')) a++;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) b--;
    if (is_word(s + a, b - a, "close")) *close = 1;
    else if (is_word(s + a, b - a, "keep-alive")) req->keep_alive = 1;
    i = j + 1;
  }
}

typedef struct {
  int hosts, close, have_length;
} seen_t;

/* One field line, name ":" OWS value OWS, in line[0, n); 0 or -status. */
static int parse_field(const char *line, size_t n, http_req_t *req, seen_t *seen) {
  size_t i = 0;
  while (i < n && is_tchar((unsigned char)line[i])) i++;
  if (i == 0 || i == n || line[i] != ':') return -400; /* also obs-fold, "name :" */
  const char *name = line;
  size_t name_len = i++;
  for (size_t k = i; k < n; k++) {
    unsigned char c = (unsigned char)line[k];
    if ((c < ' ' && c != '\t') || c == 0x7f) return -400;
  }
  while (i < n && (line[i] == ' ' || line[i] == '\t')) i++;
  while (n > i && (line[n - 1] == ' ' || line[n - 1] == '\t')) n--;
  const char *val = line + i;
  size_t val_len = n - i;
  if (is_word(name, name_len, "host")) {
    seen->hosts++;
  } else if (is_word(name, name_len, "content-length")) {
    int64_t len;
    if (parse_length(val, val_len, &len) < 0) return -400;
    if (seen->have_length && len != req->content_length) return -400;
    seen->have_length = 1;
    req->content_length = len;
  } else if (is_word(name, name_len, "transfer-encoding")) {
    return -501;
  } else if (is_word(name, name_len, "connection")) {
    parse_connection(val, val_len, req, &seen->close);
  }
  return 0;
}

int http_parse_request(const char *buf, size_t len, http_req_t *req) {
  size_t pos = 0;
  while (len - pos >= 2 && buf[pos] == '\r' && buf[pos + 1] == '\n') pos += 2;
  memset(req, 0, sizeof *req);
  seen_t seen = {0, 0, 0};
  for (int first = 1;; first = 0) {
    long end = line_end(buf, len, pos);
    if (end == NEED_MORE) return 0;
    if (end == BAD) return -400;
    const char *line = buf + pos;
    size_t n = (size_t)end - pos;
    pos = (size_t)end + 2;
    if (first) {
      int rc = parse_request_line(line, n, req);
      if (rc < 0) return rc;
    } else if (n == 0) {
      break; /* the empty line: end of the head */
    } else {
      int rc = parse_field(line, n, req, &seen);
      if (rc < 0) return rc;
    }
  }
  if (req->minor >= 1 && seen.hosts != 1) return -400; /* RFC 9112 3.2 */
  if (seen.hosts > 1) return -400;
  if (seen.close) req->keep_alive = 0;
  return (int)pos;
}
