package msgstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"natter/functions/fntest"
	"natter/functions/msgstore"
	"natter/shared/config"
	"natter/shared/convid"
	"natter/shared/db"
	"natter/shared/ids"
	"natter/shared/testenv"
	"natter/shared/wire"
)

// start returns a Store with its writers running (a long linger, so concurrent
// appends share batches) and the registry of its metrics.
func start(t *testing.T, e *testenv.Env, linger time.Duration) (*msgstore.Store, *prometheus.Registry) {
	t.Helper()
	scripts, err := db.OpenScripts(t.Context(), config.MySQL{DSN: e.MySQL.DSN, MaxOpenConns: 4, MaxIdleConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = scripts.Close() })
	reg := prometheus.NewRegistry()
	s := msgstore.New(e.DB, ids.NewGenerator(1), nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := s.Start(ctx, msgstore.BatchConfig{Writers: 1, Linger: linger, Metrics: reg, Scripts: scripts}); err != nil {
		t.Fatal(err)
	}
	return s, reg
}

// groupConv creates a group conversation with members 1..n (no group rows: the
// store needs only the conversation and its members).
func groupConv(t *testing.T, e *testenv.Env, g int64, users []int64) string {
	t.Helper()
	conv := convid.OfGroup(g).Raw
	if _, err := e.DB.Exec("INSERT INTO conversations (id, kind) VALUES (?, 2)", conv); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if _, err := e.DB.Exec("INSERT INTO conversation_members (user_id, conv_id, target_id) VALUES (?, ?, ?)", u, conv, g); err != nil {
			t.Fatal(err)
		}
	}
	return conv
}

func msg(conv string, sender int64, cid string) *wire.Message {
	return &wire.Message{ConvID: conv, Sender: sender, ClientMsgID: cid, Type: wire.TypeText, Content: []byte(`{"text":"x"}`)}
}

// TestChangeInOrder mixes sends and changes on one conversation (and sends on
// another): every change is stored in its own transaction in order with the
// sends, the pushes (After) run in seq order, and a slow change holds only its
// own conversation.
func TestChangeInOrder(t *testing.T) {
	e := testenv.Start(t)
	s, _ := start(t, e, 5*time.Millisecond)
	users := fntest.SeedUsers(t, e, "ord", 4)
	a := groupConv(t, e, 1, users)
	b := groupConv(t, e, 2, users)

	var mu sync.Mutex
	pushed := map[string][]int64{}
	after := func(m *wire.Message, _ bool) {
		mu.Lock()
		pushed[m.ConvID] = append(pushed[m.ConvID], m.Seq)
		mu.Unlock()
	}

	// A slow change on a: while it runs, b's sends must go on.
	release := make(chan struct{})
	changed := make(chan error, 1)
	go func() {
		_, err := s.Change(t.Context(), a, func(tx *sql.Tx) (*wire.Message, error) {
			<-release
			return msg(a, users[0], "slow-change"), nil
		}, after)
		changed <- err
	}()
	time.Sleep(50 * time.Millisecond) // the change is running
	done := make(chan error, 1)
	go func() {
		_, err := s.Append(t.Context(), msg(b, users[1], "b-during"), msgstore.AppendOptions{After: after})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a send to another conversation waited for a change")
	}
	aDuring := make(chan error, 1)
	go func() { // held behind the change
		_, err := s.Append(t.Context(), msg(a, users[1], "a-during"), msgstore.AppendOptions{After: after})
		aDuring <- err
	}()
	select {
	case err := <-aDuring:
		t.Fatalf("a send to the changing conversation went through meanwhile: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-changed; err != nil {
		t.Fatal(err)
	}
	if err := <-aDuring; err != nil {
		t.Fatal(err)
	}

	// Many of both at once.
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if i%10 == 0 {
				_, err = s.Change(t.Context(), a, func(tx *sql.Tx) (*wire.Message, error) {
					if i%20 == 0 {
						return nil, nil // nothing changed: no message
					}
					return msg(a, users[0], fmt.Sprint("c", i)), nil
				}, after)
			} else {
				_, err = s.Append(t.Context(), msg(a, users[i%4], fmt.Sprint("m", i)), msgstore.AppendOptions{After: after})
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for conv, seqs := range pushed {
		for i := range seqs {
			if seqs[i] != int64(i+1) {
				t.Fatalf("%s pushes in order %v", conv, seqs)
			}
		}
	}
	// 1 slow change + 1 held send + 90 sends + 5 changes that wrote a message.
	if n := len(pushed[a]); n != 97 {
		t.Fatalf("%d pushes in %s, want 97", n, a)
	}
}

// TestBatchSplit: a retried client_msg_id inside a batch costs its batch-mates
// nothing: they are stored as a batch again and the retry gets the first answer.
func TestBatchSplit(t *testing.T) {
	e := testenv.Start(t)
	s, reg := start(t, e, 100*time.Millisecond)
	users := fntest.SeedUsers(t, e, "split", 2)
	conv := groupConv(t, e, 1, users)
	first := msg(conv, users[0], "again")
	if _, err := s.Append(t.Context(), first, msgstore.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make([]*wire.Message, 10)
	dups := make([]bool, 10)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := msg(conv, users[1], fmt.Sprint("n", i))
			if i == 5 {
				m = msg(conv, users[0], "again")
			}
			dup, err := s.Append(t.Context(), m, msgstore.AppendOptions{})
			if err != nil {
				t.Error(err)
			}
			results[i], dups[i] = m, dup
		}()
	}
	wg.Wait()
	if !dups[5] || results[5].Seq != first.Seq || results[5].ID != first.ID {
		t.Fatalf("retry: dup %v, %+v; first %+v", dups[5], results[5], first)
	}
	seen := map[int64]bool{first.Seq: true}
	for i, m := range results {
		if i == 5 {
			continue
		}
		if dups[i] || m.Seq < 2 || m.Seq > 10 || seen[m.Seq] {
			t.Fatalf("message %d: dup %v seq %d", i, dups[i], m.Seq)
		}
		seen[m.Seq] = true
	}
	if n := counter(t, reg, "natter_message_batch_splits_total"); n != 1 {
		t.Fatalf("%v batch splits, want 1 (the batch stored again without the retry)", n)
	}
}

// TestMentionsBatched: mentions are marked by the batch script, @all for every
// member but the sender.
func TestMentionsBatched(t *testing.T) {
	e := testenv.Start(t)
	s, _ := start(t, e, 20*time.Millisecond)
	users := fntest.SeedUsers(t, e, "men", 4)
	conv := groupConv(t, e, 1, users)
	var wg sync.WaitGroup
	var one, all *wire.Message
	wg.Add(2)
	go func() {
		defer wg.Done()
		one = msg(conv, users[0], "one")
		if _, err := s.Append(t.Context(), one, msgstore.AppendOptions{Mentions: msgstore.Mentions{Users: []int64{users[1]}}}); err != nil {
			t.Error(err)
		}
	}()
	go func() {
		defer wg.Done()
		all = msg(conv, users[3], "all")
		if _, err := s.Append(t.Context(), all, msgstore.AppendOptions{Mentions: msgstore.Mentions{All: true}}); err != nil {
			t.Error(err)
		}
	}()
	wg.Wait()
	want := map[int64]int64{users[0]: all.Seq, users[1]: max(one.Seq, all.Seq), users[2]: all.Seq, users[3]: 0}
	for u, seq := range want {
		var got int64
		if err := e.DB.QueryRow("SELECT mention_seq FROM conversation_members WHERE conv_id = ? AND user_id = ?", conv, u).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != seq {
			t.Errorf("user %d mention_seq %d, want %d", u, got, seq)
		}
	}
}

func TestEnsureDirect(t *testing.T) {
	e := testenv.Start(t)
	s, _ := start(t, e, time.Millisecond)
	users := fntest.SeedUsers(t, e, "dir", 2)
	conv := convid.OfDirect(users[0], users[1])
	for range 2 { // the second time from memory
		if err := s.EnsureDirect(t.Context(), conv); err != nil {
			t.Fatal(err)
		}
	}
	var members int
	if err := e.DB.QueryRow("SELECT COUNT(*) FROM conversation_members WHERE conv_id = ?", conv.Raw).Scan(&members); err != nil || members != 2 {
		t.Fatalf("%d members (%v)", members, err)
	}
	if err := s.EnsureDirect(t.Context(), convid.OfDirect(users[0], 99999999)); !errors.Is(err, msgstore.ErrUserNotFound) {
		t.Fatalf("to nobody: %v", err)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			return mf.Metric[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestHeldInOrder: while a change runs, a send, another change and another send
// queue behind it for the same conversation; they are stored in that order, one
// transaction at a time (the second change waits for the send before it).
func TestHeldInOrder(t *testing.T) {
	e := testenv.Start(t)
	s, _ := start(t, e, time.Millisecond)
	users := fntest.SeedUsers(t, e, "held", 2)
	conv := groupConv(t, e, 1, users)

	var mu sync.Mutex
	var order []string
	after := func(m *wire.Message, _ bool) {
		mu.Lock()
		order = append(order, fmt.Sprintf("%s@%d", m.ClientMsgID, m.Seq))
		mu.Unlock()
	}
	release := make(chan struct{})
	var wg sync.WaitGroup
	change := func(id string, wait chan struct{}) {
		defer wg.Done()
		if _, err := s.Change(t.Context(), conv, func(tx *sql.Tx) (*wire.Message, error) {
			if wait != nil {
				<-wait
			}
			return msg(conv, users[0], id), nil
		}, after); err != nil {
			t.Error(err)
		}
	}
	sendMsg := func(id string) {
		defer wg.Done()
		if _, err := s.Append(t.Context(), msg(conv, users[1], id), msgstore.AppendOptions{After: after}); err != nil {
			t.Error(err)
		}
	}
	wg.Add(4)
	go change("c1", release)
	time.Sleep(50 * time.Millisecond) // c1 runs
	go sendMsg("s1")
	time.Sleep(30 * time.Millisecond) // queued, in this order
	go change("c2", nil)
	time.Sleep(30 * time.Millisecond)
	go sendMsg("s2")
	time.Sleep(30 * time.Millisecond)
	close(release)
	wg.Wait()
	want := []string{"c1@1", "s1@2", "c2@3", "s2@4"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("stored and pushed %v, want %v", order, want)
	}
}
