package api

import (
	"net/http"
	"sync"

	"waappliance/peers"
)

// streamCaps counts the open event streams per peer key and in total, so
// one peer cannot hold an unbounded number of them: each costs a goroutine,
// buffers and a query per appended event.
type streamCaps struct {
	perPeer, total int // 0: no cap

	mu    sync.Mutex
	open  map[peers.Key]int
	count int
}

// acquire counts a new stream of p or refuses it with 429
// too_many_streams; release must be called once the stream ends.
func (c *streamCaps) acquire(p *peers.Peer) (release func(), err error) {
	limit := c.perPeer
	if p.MaxStreams > 0 {
		limit = p.MaxStreams
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.total > 0 && c.count >= c.total:
		return nil, tooManyStreams("the appliance already holds its maximum of %d event streams; retry later", c.total)
	case limit > 0 && c.open[p.PublicKey] >= limit:
		return nil, tooManyStreams("this peer already holds its maximum of %d event streams; close one, then retry", limit)
	}
	if c.open == nil {
		c.open = map[peers.Key]int{}
	}
	c.open[p.PublicKey]++
	c.count++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.count--
			if c.open[p.PublicKey]--; c.open[p.PublicKey] <= 0 {
				delete(c.open, p.PublicKey)
			}
		})
	}, nil
}

func tooManyStreams(format string, limit int) *apiError {
	e := errorf(http.StatusTooManyRequests, "too_many_streams", format, limit)
	e.Header = http.Header{"Retry-After": {"1"}}
	return e
}
