/*
 * http_parse.h: a small, strict parser of HTTP/1.x request heads (RFC 9112)
 * for examples/http_server.c.
 *
 * It reads the request line (METHOD SP TARGET SP HTTP/1.x CRLF) and the
 * header fields up to the empty line, and works out the framing: the body
 * length (Content-Length) and whether the connection stays open. Lines end
 * in CRLF; a bare CR or LF, obs-fold, a space before a field's colon,
 * control characters, a missing or repeated Host (HTTP/1.1) and conflicting
 * Content-Lengths are refused. Transfer-Encoding (chunked bodies) is not
 * decoded: such requests are refused with 501.
 */
#ifndef SP_EXAMPLES_HTTP_PARSE_H
#define SP_EXAMPLES_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const char *method; /* points into the parsed buffer */
  size_t method_len;
  const char *target;
  size_t target_len;
  int minor;              /* HTTP/1.<minor> */
  int keep_alive;         /* 1: the connection may carry another request */
  int64_t content_length; /* body bytes after the head (0 when none) */
} http_req_t;

/* Parses the request head at the start of buf[0, len). Returns its length
 * (empty lines before the request line, which RFC 9112 says to skip,
 * included) once the empty line that ends it is in buf; 0 when more bytes
 * are needed (nothing wrong so far); or a negated status when the request
 * must be refused: -400 (malformed), -501 (Transfer-Encoding), -505 (HTTP
 * major version other than 1). *req is complete only for a result > 0. */
int http_parse_request(const char *buf, size_t len, http_req_t *req);

#endif /* SP_EXAMPLES_HTTP_PARSE_H */
