package msgevent_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"natter/functions/fntest"
	"natter/functions/message"
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
