package api

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
)

// RefuseConn answers a new tunnel connection that is over a connection cap
// (the peer's own, or the appliance's total when total is true) with a
// JSON 429 too_many_connections and Connection: close, without handing it
// to net/http: the connection is never counted and never read as a
// request. The caller sets c's deadlines (netstack.RefuseTimeout) and
// closes c afterwards.
//
// The answer is written at once, before the request is read; HTTP/1.1
// clients read a response that arrives early. The request is then drained
// until the client closes or the deadline passes, so closing c does not
// reset the connection with unread data and destroy the answer in flight.
func RefuseConn(c net.Conn, total bool, limit int) {
	msg := fmt.Sprintf("this peer already holds its maximum of %d connections to the API; reuse keep-alive connections or close one, then retry", limit)
	if total {
		msg = fmt.Sprintf("the appliance already holds its maximum of %d connections; retry later", limit)
	}
	var body bytes.Buffer
	writeJSON(&headerlessWriter{&body}, http.StatusTooManyRequests,
		errorBody{errorDetail{Code: "too_many_connections", Message: msg, RequestID: newRequestID()}})
	resp := "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nConnection: close\r\nRetry-After: 1\r\n" +
		"Content-Length: " + strconv.Itoa(body.Len()) + "\r\n\r\n" + body.String()
	if _, err := io.WriteString(c, resp); err != nil {
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	io.CopyN(io.Discard, c, 64<<10)
}

// headerlessWriter lets writeJSON encode into a buffer: the status and
// headers are written by RefuseConn itself.
type headerlessWriter struct{ b *bytes.Buffer }

func (w *headerlessWriter) Header() http.Header         { return http.Header{} }
func (w *headerlessWriter) WriteHeader(int)             {}
func (w *headerlessWriter) Write(p []byte) (int, error) { return w.b.Write(p) }
