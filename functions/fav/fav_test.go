package fav_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

	"natter/functions/fav"
	"natter/functions/file"
	"natter/functions/fntest"
	"natter/functions/message"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/testenv"
	"natter/shared/wire"
)

func upload(t *testing.T, e *testenv.Env, c endpoint.Caller, name, mime string, body []byte) wire.File {
	t.Helper()
	b := fntest.Must[file.BeginResp](t, e, "file.upload.begin", c, file.BeginReq{Name: name, Size: int64(len(body)), MIME: mime})
	req, _ := http.NewRequest(http.MethodPut, b.URL, bytes.NewReader(body))
	for k, v := range b.Headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %v %v", resp, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return fntest.Must[wire.File](t, e, "file.upload.complete", c, file.CompleteReq{FileID: b.FileID})
}

func canGet(t *testing.T, e *testenv.Env, c endpoint.Caller, id int64) bool {
	t.Helper()
	_, err := fntest.Call[file.GetResp](t, e, "file.get", c, file.GetReq{FileID: id})
	return err == nil
}

// TestSnapshotsSurviveRecall: a saved message is a snapshot: the sender's
// recall leaves it (content and file) with whoever saved it, and a saved file
// stays downloadable for them until the favorite is removed.
func TestSnapshotsSurviveRecall(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{S3: true})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	carol, _ := fntest.User(t, e, "carol", "c1")
	fntest.Befriend(t, e, alice, bob)
	conv := fmt.Sprintf("d:%d:%d", alice.UserID, bob.UserID)

	txt, _ := json.Marshal(message.TextContent{Text: "meet at noon"})
	m1 := fntest.Must[message.SendResp](t, e, "msg.send", alice, message.SendReq{ConvID: conv, ClientMsgID: "t1", Type: wire.TypeText, Content: txt})
	f := upload(t, e, alice, "plan.txt", "text/plain", []byte("the plan\n"))
	fc, _ := json.Marshal(map[string]string{"file_id": fmt.Sprint(f.ID)})
	m2 := fntest.Must[message.SendResp](t, e, "msg.send", alice, message.SendReq{ConvID: conv, ClientMsgID: "f1", Type: wire.TypeFile, Content: fc})

	// A stranger cannot save what they cannot see.
	_, err := fntest.Call[fav.Favorite](t, e, "fav.add", carol, fav.AddReq{Message: &fav.MsgRef{ID: m1.ID}})
	fntest.WantCode(t, err, imerr.NotFound)
	_, err = fntest.Call[fav.Favorite](t, e, "fav.add", carol, fav.AddReq{FileID: f.ID})
	fntest.WantCode(t, err, imerr.NotFound)

	s1 := fntest.Must[fav.Favorite](t, e, "fav.add", bob, fav.AddReq{Message: &fav.MsgRef{ID: m1.ID}, Tags: []string{"plans", "plans", "work"}})
	if s1.Kind != fav.KindMessage || s1.Message == nil || string(s1.Message.Content) != string(txt) || len(s1.Tags) != 2 {
		t.Fatalf("saved %+v", s1)
	}
	again := fntest.Must[fav.Favorite](t, e, "fav.add", bob, fav.AddReq{Message: &fav.MsgRef{ConvID: conv, Seq: m1.Seq}})
	if again.ID != s1.ID {
		t.Fatalf("saving again made favorite %d, want %d", again.ID, s1.ID)
	}
	s2 := fntest.Must[fav.Favorite](t, e, "fav.add", bob, fav.AddReq{Message: &fav.MsgRef{ID: m2.ID}, Tags: []string{"plans"}})
	note := fntest.Must[fav.Favorite](t, e, "fav.add", bob, fav.AddReq{Note: "buy milk", Key: "n1", Tags: []string{"home"}})
	if retry := fntest.Must[fav.Favorite](t, e, "fav.add", bob, fav.AddReq{Note: "buy milk", Key: "n1"}); retry.ID != note.ID {
		t.Fatalf("a retried note made %d, want %d", retry.ID, note.ID)
	}

	// Alice recalls both messages.
	for _, id := range []int64{m1.ID, m2.ID} {
		fntest.Must[message.RecallResp](t, e, "msg.recall", alice, message.RecallReq{MsgRef: message.MsgRef{ID: id}})
	}
	_, err = fntest.Call[fav.Favorite](t, e, "fav.add", bob, fav.AddReq{Message: &fav.MsgRef{ID: m1.ID}, Tags: []string{"x"}})
	if err != nil { // saved before the recall: the existing favorite
		t.Fatalf("saving a saved, since recalled message: %v", err)
	}
	l := fntest.Must[fav.ListResp](t, e, "fav.list", bob, fav.ListReq{Tag: "plans"})
	if len(l.Favorites) != 2 || l.Favorites[0].ID != s2.ID || l.Favorites[1].ID != s1.ID {
		t.Fatalf("by tag: %+v", l)
	}
	if c := l.Favorites[1].Message; c == nil || string(c.Content) != string(txt) || c.Seq != m1.Seq || c.Sender != alice.UserID {
		t.Fatalf("the snapshot after a recall: %+v", c)
	}
	// The recalled file message's file: bob keeps it through his favorite.
	if !canGet(t, e, bob, f.ID) {
		t.Fatal("a saved message's file is gone after the recall")
	}
	notes := fntest.Must[fav.ListResp](t, e, "fav.list", bob, fav.ListReq{Kind: fav.KindNote})
	if len(notes.Favorites) != 1 || notes.Favorites[0].Note != "buy milk" || notes.Favorites[0].Tags[0] != "home" {
		t.Fatalf("notes %+v", notes)
	}
	page := fntest.Must[fav.ListResp](t, e, "fav.list", bob, fav.ListReq{Limit: 2})
	if len(page.Favorites) != 2 || !page.HasMore {
		t.Fatalf("page 1 %+v", page)
	}
	page = fntest.Must[fav.ListResp](t, e, "fav.list", bob, fav.ListReq{Limit: 2, Before: page.Favorites[1].ID})
	if len(page.Favorites) != 1 || page.HasMore {
		t.Fatalf("page 2 %+v", page)
	}
	// Removing the favorite takes the file's access with it.
	if r := fntest.Must[fav.RemoveResp](t, e, "fav.remove", bob, fav.RemoveReq{ID: s2.ID}); !r.Removed {
		t.Fatal("not removed")
	}
	if r := fntest.Must[fav.RemoveResp](t, e, "fav.remove", bob, fav.RemoveReq{ID: s2.ID}); r.Removed {
		t.Fatal("removed twice")
	}
	if canGet(t, e, bob, f.ID) {
		t.Fatal("the file is still bob's to see without message or favorite")
	}
	// Another user's favorite is not removable.
	if r := fntest.Must[fav.RemoveResp](t, e, "fav.remove", carol, fav.RemoveReq{ID: s1.ID}); r.Removed {
		t.Fatal("carol removed bob's favorite")
	}
	// A file favorite.
	own := upload(t, e, carol, "mine.txt", "text/plain", []byte("mine\n"))
	ff := fntest.Must[fav.Favorite](t, e, "fav.add", carol, fav.AddReq{FileID: own.ID})
	if ff.Kind != fav.KindFile || ff.File == nil || ff.File.Name != "mine.txt" {
		t.Fatalf("file favorite %+v", ff)
	}
	// Requests that make no sense.
	for _, r := range []fav.AddReq{{}, {Note: "a", FileID: own.ID}, {Note: "a", Tags: make([]string, 11)}} {
		_, err := fntest.Call[fav.Favorite](t, e, "fav.add", carol, r)
		fntest.WantCode(t, err, imerr.BadRequest)
	}
}
