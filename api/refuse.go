package api

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// refuseStep bounds each step of RefuseConn: reading the request head,
// writing the answer, draining the rest.
const refuseStep = 500 * time.Millisecond

// RefuseConn answers a new tunnel connection that is over a connection cap
// (the peer's own, or the appliance's total when total is true) with a
// JSON 429 too_many_connections and Connection: close, without handing it
// to net/http: the connection is never counted and never served. The
// caller closes c afterwards.
//
// The request head is read first (up to 16 KiB, within refuseStep), so the
// answer comes after the request as HTTP clients expect (one that arrives
// before a client has sent its request can be taken for an unsolicited
// response); a client that sends nothing gets the answer after refuseStep.
// The rest is then drained until the client closes or refuseStep passes,
// so closing c does not reset the connection with unread data and destroy
// the answer in flight. It takes at most 3 × refuseStep.
func RefuseConn(c net.Conn, total bool, limit int) {
	br := bufio.NewReaderSize(c, 4<<10)
	c.SetReadDeadline(time.Now().Add(refuseStep))
	for n := 0; n < 16<<10; {
		line, err := br.ReadSlice('\n')
		n += len(line)
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			break
		}
		if err == nil && (len(line) == 1 || (len(line) == 2 && line[0] == '\r')) {
			break // the blank line that ends the head
		}
	}
	msg := fmt.Sprintf("this peer already holds its maximum of %d connections to the API; reuse keep-alive connections or close one, then retry", limit)
	if total {
		msg = fmt.Sprintf("the appliance already holds its maximum of %d connections; retry later", limit)
	}
	var body bytes.Buffer
	writeJSON(&headerlessWriter{&body}, http.StatusTooManyRequests,
		errorBody{errorDetail{Code: "too_many_connections", Message: msg, RequestID: newRequestID()}})
	resp := "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nConnection: close\r\nRetry-After: 1\r\n" +
		"Content-Length: " + strconv.Itoa(body.Len()) + "\r\n\r\n" + body.String()
	c.SetWriteDeadline(time.Now().Add(refuseStep))
	if _, err := io.WriteString(c, resp); err != nil {
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(refuseStep))
	io.CopyN(io.Discard, br, 64<<10)
}

// headerlessWriter lets writeJSON encode into a buffer: the status and
// headers are written by RefuseConn itself.
type headerlessWriter struct{ b *bytes.Buffer }

func (w *headerlessWriter) Header() http.Header         { return http.Header{} }
func (w *headerlessWriter) WriteHeader(int)             {}
func (w *headerlessWriter) Write(p []byte) (int, error) { return w.b.Write(p) }
