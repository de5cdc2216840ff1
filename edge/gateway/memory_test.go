package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lxzan/gws"
)

// TestMemoryNonReadingClients measures what clients that never read cost the
// edge: the security probes' two scenarios, small requests for large replies,
// and a flood of large pushes. It loads the machine, so it runs only with
// EDGE_MEMTEST=1, on its own:
//
//	EDGE_MEMTEST=1 go test -count=1 -run TestMemoryNonReadingClients -v ./edge/gateway/
//
// The numbers are the whole test process's (edge, clients, stub functions and
// the in-process NATS server); what grows with the load is the edge's queues.
func TestMemoryNonReadingClients(t *testing.T) {
	if os.Getenv("EDGE_MEMTEST") == "" {
		t.Skip("EDGE_MEMTEST not set")
	}
	t.Run("replies", func(t *testing.T) {
		// Each client sends requests at the default rate limit for 3 s and reads nothing.
		const clients, replyBytes, sending = 4, 512 << 10, 3 * time.Second
		f := newFixture(t, nil)
		cs := make([]*client, clients)
		for i := range cs {
			cs[i] = f.dial(t, newUser(), "s1", noRead)
		}
		var sent atomic.Int64
		m := measure(t, f, func() {
			var wg sync.WaitGroup
			for _, c := range cs {
				wg.Go(func() {
					_ = c.sock.NetConn().SetWriteDeadline(time.Now().Add(sending))
					frame := fmt.Appendf(nil, `{"id":"h","op":%q,"data":{"reply_bytes":%d}}`, bigOp, replyBytes)
					tick := time.NewTicker(time.Second / 60)
					defer tick.Stop()
					for range tick.C {
						if c.sock.WriteMessage(gws.OpcodeText, frame) != nil {
							return // the deadline, or the edge closed it
						}
						sent.Add(1)
					}
				})
			}
			wg.Wait()
			time.Sleep(time.Second)
		})
		t.Logf("%d clients sent %d requests for %d KiB replies, %d served: %s; %v connections left",
			clients, sent.Load(), replyBytes>>10, f.stub.big.Load(), m, f.metric(t, "natter_edge_connections"))
	})
	t.Run("pushes", func(t *testing.T) {
		// A group of slow members gets a flood of large messages.
		const clients, pushes, pushBytes = 30, 300, 40 << 10
		f := newFixture(t, nil)
		users := make([]int64, clients)
		for i := range users {
			users[i] = newUser()
			f.dial(t, users[i], "s1", noRead)
		}
		frame := `{"event":"msg.new","data":{"content":"` + blob(pushBytes) + `"}}`
		m := measure(t, f, func() {
			// One message to the group every 5 ms (240 MB/s in all), so that what
			// NATS holds in transit does not dwarf the edge's queues.
			for range pushes {
				for _, uid := range users {
					if err := env.NC.Publish("im.deliver."+strconv.FormatInt(uid, 10), []byte(frame)); err != nil {
						t.Error(err)
						return
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
			_ = env.NC.Flush()
			time.Sleep(2 * time.Second)
		})
		t.Logf("%d clients, %d pushes of %d KiB each: %s; %v pushes dropped, %v connections left",
			clients, pushes, pushBytes>>10, m, f.metric(t, "natter_edge_pushes_dropped_total"), f.metric(t, "natter_edge_connections"))
	})
}

// usage is memory before and at the peak of a load.
type usage struct {
	heapBefore, heapPeak uint64 // HeapInuse
	rssBefore, rssPeak   uint64 // VmRSS
	queuedPeak           uint64 // natter_edge_queued_bytes
}

func (u usage) String() string {
	mb := func(n uint64) string { return strconv.FormatUint(n>>20, 10) + " MB" }
	return fmt.Sprintf("heap in use %s -> peak %s, RSS %s -> peak %s, edge queues peak %s",
		mb(u.heapBefore), mb(u.heapPeak), mb(u.rssBefore), mb(u.rssPeak), mb(u.queuedPeak))
}

// measure runs load while sampling the heap, RSS and f's queued bytes every 50 ms.
func measure(t *testing.T, f *fixture, load func()) usage {
	t.Helper()
	runtime.GC()
	var u usage
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	u.heapBefore, u.rssBefore = ms.HeapInuse, rss(t)
	u.heapPeak, u.rssPeak = u.heapBefore, u.rssBefore
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			runtime.ReadMemStats(&ms)
			u.heapPeak = max(u.heapPeak, ms.HeapInuse)
			u.rssPeak = max(u.rssPeak, rss(t))
			u.queuedPeak = max(u.queuedPeak, uint64(f.metric(t, "natter_edge_queued_bytes")))
		}
	}()
	load()
	cancel()
	<-done
	return u
}

// rss is the process's resident set size in bytes.
func rss(t *testing.T) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
