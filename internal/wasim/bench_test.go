package wasim

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

// Benchmarks (go test ./internal/wasim -run XXX -bench . -benchtime 1x):
// one pair-and-login, bringing up 100 logged-in sessions (time and heap
// per session, client and server together in this process), and
// sustained send→ack messages per second.

func BenchmarkPairAndLogin(b *testing.B) {
	s := newServer(b)
	for i := 0; i < b.N; i++ {
		tc := newLenientClient(b, s)
		pairByQR(b, s, tc, fmt.Sprintf("1666%05d", i))
	}
}

func BenchmarkHundredSessions(b *testing.B) {
	for i := 0; i < b.N; i++ {
		s := newServer(b)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		for j := 0; j < 100; j++ {
			tc := newLenientClient(b, s)
			pairByQR(b, s, tc, fmt.Sprintf("1777%03d%02d", i, j))
		}
		elapsed := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(elapsed.Seconds(), "s/100-sessions")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/100/1024, "KiB-heap/session")
	}
}

func BenchmarkSendAck(b *testing.B) {
	s := newServer(b)
	tc := newLenientClient(b, s)
	pairByQR(b, s, tc, "16880001")
	ct, _ := s.Contact("16880002")
	ct.SetReceipts(ReceiptPolicy{NoDelivered: true, ReadAfter: -1})
	ctx := context.Background()
	// Establish the session first (the first send carries the prekey message).
	if _, err := tc.SendMessage(ctx, ct.JID(), &waE2E.Message{Conversation: proto.String("warm-up")}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := tc.SendMessage(ctx, ct.JID(), &waE2E.Message{Conversation: proto.String("bench")}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
