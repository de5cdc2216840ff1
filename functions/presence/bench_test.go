package presence_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"natter/functions/account"
	"natter/functions/deliver"
	"natter/functions/fntest"
	"natter/functions/friend"
	"natter/functions/presence"
	"natter/shared/endpoint"
	"natter/shared/testenv"
)

// BenchmarkPresenceChurn measures issue 13's presence case: 10,000 online users
// with 200 friends each, 100 disconnects and 100 connects a second for 20 s, on
// the real registry (Redis), notifier (MySQL friends, Redis online set) and
// delivery (NATS), while presence.get asks for 200 users 20 times a second. It
// reports the announcements and pushes per second, this process's CPU (notifier,
// registry calls, presence.get's worker and the load itself), and presence.get's
// latency. Seeding 2,000,000 friendship rows takes a minute: run it alone.
//
//	go test -run '^$' -bench BenchmarkPresenceChurn -benchtime 1x ./functions/presence/
func BenchmarkPresenceChurn(b *testing.B) {
	const users, half = 10_000, 100 // each befriends the next 100: 200 friends each
	e := testenv.Start(b)
	fntest.Start(b, e, fntest.Options{})
	ids := fntest.SeedUsers(b, e, "p", users)
	seedFriends(b, e, ids, half)
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dl, err := deliver.New(ctx, deliver.Deps{NC: e.NC, Log: zerolog.Nop(), Metrics: reg})
	if err != nil {
		b.Fatal(err)
	}
	r := presence.NewRegistry(e.RDB, 3*time.Minute)
	n, err := presence.NewNotifier(ctx, presence.NotifierDeps{Registry: r, Watchers: friend.NewRelations(e.DB), Deliver: dl, DB: e.DB,
		Log: zerolog.Nop(), Metrics: reg, Config: presence.Config{Grace: time.Second, Queue: 100_000}})
	if err != nil {
		b.Fatal(err)
	}
	conn := func(u int64) string { return fmt.Sprint("c", u) }
	for _, u := range ids {
		if _, err := r.Connect(ctx, u, conn(u), "d", "edge", 5, "kick_oldest"); err != nil {
			b.Fatal(err)
		}
	}
	viewer := endpoint.Caller{UserID: ids[0], DeviceID: "d"}
	b.ResetTimer()
	cpu0, wall0 := cpuTime(), time.Now()
	base := counter(b, reg, "natter_deliver_pushes_total")
	baseAnn := counter(b, reg, "natter_presence_announced_total")

	// presence.get of 200 users 20 times a second, on its own goroutine.
	latc := make(chan []time.Duration)
	go func() {
		var lat []time.Duration
		asks := time.NewTicker(50 * time.Millisecond)
		defer asks.Stop()
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end); {
			<-asks.C
			want := make([]int64, 200)
			for i := range want {
				want[i] = ids[rand.IntN(len(ids))]
			}
			start := time.Now()
			if _, err := fntest.Call[account.PresenceGetResp](b, e, "presence.get", viewer, account.PresenceGetReq{UserIDs: want}); err != nil {
				b.Error(err)
			}
			lat = append(lat, time.Since(start))
		}
		latc <- lat
	}()
	stop := time.After(20 * time.Second)
	churn := time.NewTicker(10 * time.Millisecond) // a disconnect and a connect each tick
	defer churn.Stop()
	type gone struct {
		user int64
		at   time.Time
	}
	var offline []gone
loop:
	for {
		select {
		case <-stop:
			break loop
		case <-churn.C:
			u := ids[rand.IntN(len(ids))]
			if online, err := r.Disconnect(ctx, u, conn(u)); err == nil && !online {
				n.MaybeOffline(u)
				offline = append(offline, gone{u, time.Now()})
			}
			// Reconnect someone gone for longer than the grace: a real change.
			if len(offline) > 0 && time.Since(offline[0].at) > 3*time.Second {
				v := offline[0].user
				offline = offline[1:]
				if res, err := r.Connect(ctx, v, conn(v), "d", "edge", 5, "kick_oldest"); err == nil && res.CameOnline {
					n.Online(v)
				}
			}
		}
	}
	lat := <-latc
	time.Sleep(2 * time.Second) // the last offline announcements (grace 1 s)
	wall := time.Since(wall0).Seconds()
	b.ReportMetric((counter(b, reg, "natter_presence_announced_total")-baseAnn)/wall, "announced/s")
	b.ReportMetric((counter(b, reg, "natter_deliver_pushes_total")-base)/wall, "pushes/s")
	b.ReportMetric((cpuTime()-cpu0).Seconds()/wall*100, "cpu-%")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*50/100].Microseconds())/1000, "get-p50-ms")
	b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "get-p95-ms")
}

// seedFriends makes every user friends with the next half users (both rows).
func seedFriends(b *testing.B, e *testenv.Env, ids []int64, half int) {
	b.Helper()
	var q strings.Builder
	args := make([]any, 0, 4000)
	flush := func() {
		if len(args) == 0 {
			return
		}
		if _, err := e.DB.Exec("INSERT INTO friendships (user_id, friend_id) VALUES "+strings.TrimSuffix(q.String(), ","), args...); err != nil {
			b.Fatal(err)
		}
		q.Reset()
		args = args[:0]
	}
	for i, u := range ids {
		for k := 1; k <= half; k++ {
			v := ids[(i+k)%len(ids)]
			q.WriteString("(?,?),(?,?),")
			args = append(args, u, v, v, u)
			if len(args) >= 4000 {
				flush()
			}
		}
	}
	flush()
}

func counter(b *testing.B, reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.Metric {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
