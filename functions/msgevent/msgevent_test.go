package msgevent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"natter/functions/fntest"
	"natter/functions/message"
	"natter/functions/msgevent"
	"natter/functions/msgstore"
	"natter/shared/bus"
	"natter/shared/subject"
	"natter/shared/testenv"
	"natter/shared/wire"
)

// TestEvents: every stored message is on IM_MESSAGES once, a retried send
// included; edits and recalls follow, with the mentions of a send.
func TestEvents(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a")
	bob, _ := fntest.User(t, e, "bob", "b")
	fntest.Befriend(t, e, alice, bob)
	content, _ := json.Marshal(message.RichContent{Text: "hi @bob", Mentions: []int64{bob.UserID}})
	req := message.SendReq{To: bob.UserID, ClientMsgID: "m1", Type: "rich", Content: content}
	first := fntest.Must[message.SendResp](t, e, "msg.send", alice, req)
	if again := fntest.Must[message.SendResp](t, e, "msg.send", alice, req); !again.Duplicate {
		t.Fatal("retry not a duplicate")
	}
	text, _ := json.Marshal(message.TextContent{Text: "edited"})
	fntest.Must[wire.Message](t, e, "msg.edit", alice, message.EditReq{MsgRef: message.MsgRef{ID: first.ID}, Type: "text", Content: text})
	fntest.Must[message.RecallResp](t, e, "msg.recall", alice, message.RecallReq{MsgRef: message.MsgRef{ID: first.ID}})

	js, err := jetstream.New(e.NC)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, subject.MessageStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 3 {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, m.Subject())
		switch m.Subject() {
		case subject.EvtMessageSent:
			var ev wire.MessageSent
			if err := json.Unmarshal(m.Data(), &ev); err != nil || ev.Seq != first.Seq || ev.ConvID != first.ConvID || len(ev.Mentions) != 1 {
				t.Fatalf("sent %s (%v)", m.Data(), err)
			}
		case subject.EvtMessageRecalled:
			var ev wire.MessageRecalled
			if err := json.Unmarshal(m.Data(), &ev); err != nil || ev.Seq != first.Seq || ev.By != alice.UserID {
				t.Fatalf("recalled %s (%v)", m.Data(), err)
			}
		}
	}
	want := []string{subject.EvtMessageSent, subject.EvtMessageEdited, subject.EvtMessageRecalled}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events %v, want %v", got, want)
		}
	}
	if m, err := cons.Next(jetstream.FetchMaxWait(300 * time.Millisecond)); err == nil {
		t.Fatalf("one more event: %s %s (the retry published twice?)", m.Subject(), m.Data())
	}
}

// TestBatch: the messages of one transaction are one event, which DecodeSent
// reads back in order with their mentions; a lone message keeps its own form and
// id; content past the batch bound splits the batch.
func TestBatch(t *testing.T) {
	e := testenv.Start(t)
	ctx := t.Context()
	if err := bus.EnsureStreams(ctx, e.NC); err != nil {
		t.Fatal(err)
	}
	pub, err := msgevent.New(ctx, e.NC, zerolog.Nop(), nil, msgevent.Config{})
	if err != nil {
		t.Fatal(err)
	}
	msg := func(conv string, seq int64, text string) *wire.Message {
		c, _ := json.Marshal(map[string]string{"text": text})
		return &wire.Message{ConvID: conv, Seq: seq, ID: seq, Sender: 1, Type: "text", Content: c, SentAt: 1}
	}
	pub.Sent([]msgstore.Stored{
		{Message: msg("d:1:2", 7, "a"), Mentions: msgstore.Mentions{Users: []int64{2}}},
		{Message: msg("g:9", 3, "b")},
		{Message: msg("d:1:2", 8, "c")},
	})
	pub.Sent([]msgstore.Stored{{Message: msg("d:1:2", 9, "alone")}})
	big := strings.Repeat("x", 200<<10)
	pub.Sent([]msgstore.Stored{{Message: msg("g:9", 4, big)}, {Message: msg("g:9", 5, big)}, {Message: msg("g:9", 6, "small")}})

	js, err := jetstream.New(e.NC)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(ctx, subject.MessageStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		id   string
		seqs []int64
	}
	var events []got
	for len(events) < 4 {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("after %v: %v", events, err)
		}
		evs, err := wire.DecodeSent(m.Data())
		if err != nil {
			t.Fatal(err)
		}
		g := got{id: m.Headers().Get(jetstream.MsgIDHeader)}
		for _, ev := range evs {
			g.seqs = append(g.seqs, ev.Seq)
		}
		if len(events) == 0 && (len(evs[0].Mentions) != 1 || evs[0].Mentions[0] != 2 || evs[1].ConvID != "g:9") {
			t.Fatalf("first event %s", m.Data())
		}
		events = append(events, g)
	}
	want := []got{{"sent:d:1:2:7+3", []int64{7, 3, 8}}, {"sent:d:1:2:9", []int64{9}}, {"sent:g:9:4", []int64{4}}, {"sent:g:9:5+2", []int64{5, 6}}}
	if fmt.Sprint(events) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", events, want)
	}
}
