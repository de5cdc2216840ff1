package file_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"net/http"
	"testing"
	"time"

	"natter/functions/account"
	"natter/functions/conv"
	"natter/functions/file"
	"natter/functions/fntest"
	"natter/functions/group"
	"natter/functions/message"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/subject"
	"natter/shared/testenv"
	"natter/shared/wire"
)

func sendFile(t *testing.T, e *testenv.Env, from endpoint.Caller, conv, cid, typ string, id int64) (message.SendResp, error) {
	t.Helper()
	content, _ := json.Marshal(map[string]string{"file_id": fmt.Sprint(id), "caption": "see", "name": "forged.exe", "size": "1"})
	return fntest.Call[message.SendResp](t, e, "msg.send", from, message.SendReq{ConvID: conv, ClientMsgID: cid, Type: typ, Content: content})
}

func canGet(t *testing.T, e *testenv.Env, c endpoint.Caller, id int64) bool {
	t.Helper()
	_, err := fntest.Call[file.GetResp](t, e, "file.get", c, file.GetReq{FileID: id})
	if err != nil && imerr.CodeOf(err) != imerr.NotFound {
		t.Fatalf("file.get: %v", err)
	}
	return err == nil
}

// TestMediaMessagesAndAccess: a media message's content comes from the file's
// stored metadata, whatever the client says; who may download the file follows
// the conversation (members now, within the history shown to them, not
// recalled), row by row.
func TestMediaMessagesAndAccess(t *testing.T) {
	e, _ := start(t, file.Config{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	carol, _ := fntest.User(t, e, "carol", "c1")
	dave, _ := fntest.User(t, e, "dave", "d1")
	eve, _ := fntest.User(t, e, "eve", "e1")
	fntest.Befriend(t, e, alice, bob)
	fntest.Befriend(t, e, bob, carol)
	direct := fmt.Sprintf("d:%d:%d", alice.UserID, bob.UserID)

	img := upload(t, e, alice, "cat.png", "image/png", pngOf(t, 640, 480))
	if img.Width != 640 || img.Height != 480 || img.Thumb == nil || img.Thumb.Width != 320 || img.Thumb.Height != 240 {
		t.Fatalf("image metadata %+v", img)
	}
	doc := upload(t, e, alice, "notes.txt", "text/plain", []byte("plain notes\n"))

	// Nobody but alice sees her files before she sends them.
	if !canGet(t, e, alice, img.ID) || canGet(t, e, bob, img.ID) {
		t.Fatal("before sending: only the uploader")
	}
	// Bob cannot send alice's file before he can see it.
	_, err := sendFile(t, e, bob, direct, "b-steal", wire.TypeImage, img.ID)
	fntest.WantCode(t, err, imerr.NotFound)
	// A type that does not fit the file's kind.
	_, err = sendFile(t, e, alice, direct, "a-voice", wire.TypeVoice, img.ID)
	fntest.WantCode(t, err, imerr.BadRequest)

	toBob, err := e.NC.SubscribeSync(subject.Deliver(bob.UserID))
	if err != nil {
		t.Fatal(err)
	}
	sent, err := sendFile(t, e, alice, direct, "a-img", wire.TypeImage, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The push, the conversation list and the history carry the metadata.
	pm, err := toBob.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var push struct {
		Event string       `json:"event"`
		Data  wire.Message `json:"data"`
	}
	var pushed message.MediaContent
	if json.Unmarshal(pm.Data, &push) != nil || push.Event != wire.EvtMsgNew || json.Unmarshal(push.Data.Content, &pushed) != nil ||
		pushed.Name != "cat.png" || pushed.Width != 640 {
		t.Fatalf("push %s", pm.Data)
	}
	cl := fntest.Must[conv.ListResp](t, e, "conv.list", bob, conv.ListReq{})
	if len(cl.Conversations) != 1 || cl.Conversations[0].Preview != "[Image]" || cl.Conversations[0].Last.Type != wire.TypeImage {
		t.Fatalf("conv.list %+v", cl.Conversations)
	}
	h := fntest.Must[message.HistoryResp](t, e, "msg.history", bob, message.HistoryReq{ConvID: direct})
	var got message.MediaContent
	if len(h.Messages) != 1 || h.Messages[0].Type != wire.TypeImage || json.Unmarshal(h.Messages[0].Content, &got) != nil {
		t.Fatalf("history %+v", h.Messages)
	}
	want := message.MediaContent{FileID: img.ID, Name: "cat.png", Size: img.Size, MIME: "image/png", Width: 640, Height: 480,
		Thumb: &wire.Thumb{Width: 320, Height: 240}, Caption: "see"}
	if got.FileID != want.FileID || got.Name != want.Name || got.Size != want.Size || got.MIME != want.MIME ||
		got.Width != want.Width || got.Height != want.Height || *got.Thumb != *want.Thumb || got.Caption != want.Caption {
		t.Fatalf("content %+v, want %+v", got, want)
	}
	if !canGet(t, e, bob, img.ID) || canGet(t, e, carol, img.ID) {
		t.Fatal("after sending: the peer sees it, a stranger does not")
	}

	// Forwarding: bob sends the same file to carol, no new upload.
	toCarol := fmt.Sprintf("d:%d:%d", min(bob.UserID, carol.UserID), max(bob.UserID, carol.UserID))
	if _, err := sendFile(t, e, bob, toCarol, "b-fwd", wire.TypeImage, img.ID); err != nil {
		t.Fatalf("forward: %v", err)
	}
	if !canGet(t, e, carol, img.ID) {
		t.Fatal("the forwarded file is not carol's to see")
	}

	// A group that hides history from newcomers.
	g := fntest.Must[group.Info](t, e, "group.create", alice, group.CreateReq{Name: "crew", Members: []int64{bob.UserID, dave.UserID}})
	conv := fmt.Sprintf("g:%d", g.GroupID)
	if _, err := sendFile(t, e, alice, conv, "g-doc", wire.TypeFile, doc.ID); err != nil {
		t.Fatal(err)
	}
	fntest.Must[json.RawMessage](t, e, "group.invite", alice, group.UsersReq{GroupID: g.GroupID, UserIDs: []int64{eve.UserID}})
	if !canGet(t, e, dave, doc.ID) {
		t.Fatal("a member does not see a file sent in the group")
	}
	if canGet(t, e, eve, doc.ID) {
		t.Fatal("a newcomer sees a file sent before they joined a group that hides history")
	}
	// The gallery: a member's, a newcomer's, a stranger's.
	l := fntest.Must[file.ListResp](t, e, "file.list", dave, file.ListReq{ConvID: conv})
	if len(l.Files) != 1 || l.Files[0].ID != doc.ID || l.Files[0].Seq == 0 || l.Files[0].Sender != alice.UserID {
		t.Fatalf("gallery %+v", l)
	}
	if l := fntest.Must[file.ListResp](t, e, "file.list", eve, file.ListReq{ConvID: conv}); len(l.Files) != 0 {
		t.Fatalf("newcomer's gallery %+v", l)
	}
	_, err = fntest.Call[file.ListResp](t, e, "file.list", carol, file.ListReq{ConvID: conv})
	fntest.WantCode(t, err, imerr.NotFound)

	// A member who left no longer sees it.
	fntest.Must[json.RawMessage](t, e, "group.leave", dave, group.GroupReq{GroupID: g.GroupID})
	if canGet(t, e, dave, doc.ID) {
		t.Fatal("a member who left still sees the group's file")
	}

	// Recalls: alice's message goes, bob's forward stays: bob and carol still
	// see the image through it. Then bob recalls his forward: they see it no
	// more; alice, its uploader, does.
	fntest.Must[message.RecallResp](t, e, "msg.recall", alice, message.RecallReq{MsgRef: message.MsgRef{ID: sent.ID}})
	if !canGet(t, e, bob, img.ID) || !canGet(t, e, carol, img.ID) {
		t.Fatal("a recall took a file its members see through another message")
	}
	fwd := fntest.Must[message.HistoryResp](t, e, "msg.history", bob, message.HistoryReq{ConvID: toCarol})
	fntest.Must[message.RecallResp](t, e, "msg.recall", bob, message.RecallReq{MsgRef: message.MsgRef{ID: fwd.Messages[0].ID}})
	if canGet(t, e, bob, img.ID) || canGet(t, e, carol, img.ID) {
		t.Fatal("a recalled message's file is still downloadable by those who saw it only through it")
	}
	if !canGet(t, e, alice, img.ID) {
		t.Fatal("the uploader lost her file")
	}
	// Own uploads, by kind.
	own := fntest.Must[file.ListResp](t, e, "file.list", alice, file.ListReq{Kind: wire.KindImage})
	if len(own.Files) != 1 || own.Files[0].ID != img.ID {
		t.Fatalf("own images %+v", own)
	}
	own = fntest.Must[file.ListResp](t, e, "file.list", alice, file.ListReq{Limit: 1})
	if len(own.Files) != 1 || !own.HasMore || own.Files[0].ID != doc.ID {
		t.Fatalf("own uploads, page 1: %+v", own)
	}
	own = fntest.Must[file.ListResp](t, e, "file.list", alice, file.ListReq{Limit: 1, BeforeID: doc.ID})
	if len(own.Files) != 1 || own.HasMore || own.Files[0].ID != img.ID {
		t.Fatalf("own uploads, page 2: %+v", own)
	}
}

// TestThumbnails: the worker, fed by im.evt.file.uploaded, makes a thumbnail of
// a real JPEG and PNG, fitting 320×320 (never scaled up), and hashes them.
func TestThumbnails(t *testing.T) {
	e, _ := start(t, file.Config{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	tests := []struct {
		name, mime string
		body       []byte
		w, h       int
	}{
		{"photo.jpg", "image/jpeg", jpegOf(t, 1200, 900), 320, 240},
		{"tall.png", "image/png", pngOf(t, 300, 900), 106, 320},
		{"small.png", "image/png", pngOf(t, 40, 30), 40, 30},
	}
	for _, tt := range tests {
		f := upload(t, e, alice, tt.name, tt.mime, tt.body)
		deadline := time.Now().Add(20 * time.Second)
		var g file.GetResp
		for g.ThumbURL == "" && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			g = fntest.Must[file.GetResp](t, e, "file.get", alice, file.GetReq{FileID: f.ID})
		}
		if g.ThumbURL == "" || g.Thumb == nil || g.Thumb.Width != tt.w || g.Thumb.Height != tt.h || g.SHA256 == "" {
			t.Fatalf("%s: %+v", tt.name, g)
		}
		code, b, hdr := fetch(t, g.ThumbURL)
		if code != http.StatusOK || hdr.Get("Content-Type") != "image/jpeg" {
			t.Fatalf("%s: thumbnail GET %d %s", tt.name, code, hdr.Get("Content-Type"))
		}
		cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
		if err != nil || format != "jpeg" || cfg.Width != tt.w || cfg.Height != tt.h {
			t.Fatalf("%s: thumbnail %s %dx%d %v", tt.name, format, cfg.Width, cfg.Height, err)
		}
	}
}

// TestDedupe: the same bytes uploaded by two users are stored once (the later
// file points at the earlier object), and both download them; the later
// uploader's answers are those of any upload.
func TestDedupe(t *testing.T) {
	e, svc := start(t, file.Config{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	body := bytes.Repeat([]byte("same bytes "), 500)
	a := upload(t, e, alice, "a.txt", "text/plain", body)
	waitProcessed(t, e, alice, a.ID)
	b := upload(t, e, bob, "b.txt", "text/plain", body)
	if b.Owner != bob.UserID || b.Name != "b.txt" {
		t.Fatalf("bob's file %+v", b)
	}
	gb := waitProcessed(t, e, bob, b.ID)
	var key string
	if err := e.DB.QueryRow("SELECT object_key FROM files WHERE id = ?", b.ID).Scan(&key); err != nil || key != fmt.Sprintf("f/%d", a.ID) {
		t.Fatalf("bob's object %q %v, want alice's", key, err)
	}
	// A URL handed out before the dedupe still works until it expires: the
	// duplicate object stays until then, and the sweeper removes it after.
	if code, got, _ := fetch(t, gb.URL); code != http.StatusOK || !bytes.Equal(got, body) {
		t.Fatalf("bob's download: %d", code)
	}
	if !objectExists(t, e, fmt.Sprintf("f/%d", b.ID)) {
		t.Fatal("the duplicate object went while URLs may name it")
	}
	if _, err := svc.Sweep(context.Background(), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !objectExists(t, e, fmt.Sprintf("f/%d", b.ID)) {
		t.Fatal("the duplicate object went before the URLs expired")
	}
	if _, err := e.DB.Exec("UPDATE files SET deduped_at = deduped_at - INTERVAL 1 HOUR WHERE id = ?", b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Sweep(context.Background(), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if objectExists(t, e, fmt.Sprintf("f/%d", b.ID)) {
		t.Fatal("the duplicate object was kept")
	}
	if code, got, _ := fetch(t, fntest.Must[file.GetResp](t, e, "file.get", bob, file.GetReq{FileID: b.ID}).URL); code != http.StatusOK || !bytes.Equal(got, body) {
		t.Fatalf("bob's download after the sweep: %d", code)
	}
	if canGet(t, e, bob, a.ID) {
		t.Fatal("deduplication let bob see alice's file")
	}
}

// TestSweepAbandoned: an upload begun and never completed is removed by the
// sweeper, object and row, once older than the cutoff; a completed file stays.
func TestSweepAbandoned(t *testing.T) {
	e, svc := start(t, file.Config{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	kept := upload(t, e, alice, "kept.txt", "text/plain", []byte("kept"))
	body := []byte("abandoned")
	b := fntest.Must[file.BeginResp](t, e, "file.upload.begin", alice, file.BeginReq{Name: "gone.txt", Size: int64(len(body)), MIME: "text/plain"})
	put(t, b, body)
	ctx := context.Background()
	if n, err := svc.Sweep(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("a young upload swept: %d %v", n, err)
	}
	if n, err := svc.Sweep(ctx, time.Now().Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	if fileRowCount(t, e, b.FileID) != 0 || objectExists(t, e, key("up", b.FileID)) {
		t.Fatal("the abandoned upload is still there")
	}
	_, err := fntest.Call[wire.File](t, e, "file.upload.complete", alice, file.CompleteReq{FileID: b.FileID})
	fntest.WantCode(t, err, imerr.NotFound)
	if !canGet(t, e, alice, kept.ID) || !objectExists(t, e, key("f", kept.ID)) {
		t.Fatal("the sweeper took a completed file")
	}
}

// TestAvatars: profile and group avatars are images uploaded with their
// purpose, stored as the path of their thumbnail (128×128) through the edge,
// which every user may load.
func TestAvatars(t *testing.T) {
	e, _ := start(t, file.Config{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	me := uploadAs(t, e, alice, "me.png", "image/png", file.PurposeAvatar, pngOf(t, 600, 300))
	if me.Thumb == nil || me.Thumb.Width != 128 || me.Thumb.Height != 64 {
		t.Fatalf("avatar %+v", me)
	}
	attachment := upload(t, e, alice, "cat.png", "image/png", pngOf(t, 60, 30))
	bobs := uploadAs(t, e, bob, "bob.png", "image/png", file.PurposeAvatar, pngOf(t, 60, 30))
	set := func(c endpoint.Caller, id int64) (account.Profile, error) {
		v := fmt.Sprint(id)
		return fntest.Call[account.Profile](t, e, "account.profile.update", c, account.UpdateProfileReq{Avatar: &v})
	}
	p, err := set(alice, me.ID)
	if err != nil || p.Avatar != file.AvatarPath(me.ID) {
		t.Fatalf("profile %+v %v", p, err)
	}
	_, err = set(alice, attachment.ID) // not uploaded as an avatar
	fntest.WantCode(t, err, imerr.BadRequest)
	_, err = set(alice, bobs.ID) // someone else's
	fntest.WantCode(t, err, imerr.NotFound)
	free := "https://tracker.example/pixel.gif"
	_, err = fntest.Call[account.Profile](t, e, "account.profile.update", alice, account.UpdateProfileReq{Avatar: &free})
	fntest.WantCode(t, err, imerr.BadRequest)
	if !canGet(t, e, bob, me.ID) {
		t.Fatal("an avatar is not everyone's to load")
	}
	// A group's avatar: purpose group_avatar.
	ga := uploadAs(t, e, alice, "crew.png", "image/png", file.PurposeGroupAvatar, pngOf(t, 64, 64))
	_, err = fntest.Call[group.Info](t, e, "group.create", alice, group.CreateReq{Name: "crew", Avatar: fmt.Sprint(me.ID)})
	fntest.WantCode(t, err, imerr.BadRequest)
	g := fntest.Must[group.Info](t, e, "group.create", alice, group.CreateReq{Name: "crew", Avatar: fmt.Sprint(ga.ID)})
	if g.Avatar != file.AvatarPath(ga.ID) {
		t.Fatalf("group avatar %q", g.Avatar)
	}
}
