package search_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"

	"natter/functions/fav"
	"natter/functions/file"
	"natter/functions/fntest"
	"natter/functions/friend"
	"natter/functions/group"
	"natter/functions/message"
	"natter/functions/search"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/testenv"
	"natter/shared/wire"
)

func userIDs(r search.UserSearchResp) []int64 {
	out := []int64{}
	for _, u := range r.Users {
		out = append(out, u.UserID)
	}
	return out
}

// TestUserSearch: by exact username or nickname prefix (any case); privacy
// (search: nobody) and blocks (a blocked user does not find the blocker)
// decide who is found.
func TestUserSearch(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	carol, _ := fntest.User(t, e, "carol", "c1")
	dave, _ := fntest.User(t, e, "dave", "d1")
	for _, u := range []struct {
		c    endpoint.Caller
		nick string
	}{{alice, "Alice Wonder"}, {bob, "Alibaba"}, {carol, "Alina"}} {
		if _, err := e.DB.Exec("UPDATE users SET nickname = ? WHERE id = ?", u.nick, u.c.UserID); err != nil {
			t.Fatal(err)
		}
	}
	find := func(as endpoint.Caller, q string) []int64 {
		t.Helper()
		return userIDs(fntest.Must[search.UserSearchResp](t, e, "user.search", as, search.NameSearchReq{Query: q}))
	}
	if got, want := find(dave, "ali"), []int64{bob.UserID, alice.UserID, carol.UserID}; !slices.Equal(got, want) {
		t.Fatalf("ali: %v, want %v (by nickname)", got, want)
	}
	if got := find(dave, "CAROL"); !slices.Equal(got, []int64{carol.UserID}) {
		t.Fatalf("exact username: %v", got)
	}
	// carol asks not to be found: nobody finds her.
	nobody := friend.Nobody
	fntest.Must[friend.Privacy](t, e, "account.privacy.set", carol, friend.PrivacySetReq{Search: &nobody})
	if got := find(dave, "carol"); len(got) != 0 {
		t.Fatalf("a stranger found a private user: %v", got)
	}
	if got := find(carol, "carol"); !slices.Equal(got, []int64{carol.UserID}) {
		t.Fatalf("one finds oneself: %v", got)
	}
	// bob blocks dave: dave no longer finds bob, bob still finds dave.
	fntest.Must[friend.Empty](t, e, "block.add", bob, friend.UserReq{UserID: dave.UserID})
	if got := find(dave, "alibaba"); len(got) != 0 {
		t.Fatalf("the blocked user found the blocker: %v", got)
	}
	if got := find(bob, "dave"); !slices.Equal(got, []int64{dave.UserID}) {
		t.Fatalf("the blocker finds the blocked: %v", got)
	}
	// LIKE's wildcards are plain characters.
	if got := find(dave, "%"); len(got) != 0 {
		t.Fatalf("%%: %v", got)
	}
}

// TestUserSearchFriends: search "friends" lets only friends find a user,
// "nobody" not even them.
func TestUserSearchFriends(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	carol, _ := fntest.User(t, e, "carol", "c1")
	fntest.Befriend(t, e, alice, carol)
	find := func(as endpoint.Caller) []int64 {
		t.Helper()
		return userIDs(fntest.Must[search.UserSearchResp](t, e, "user.search", as, search.NameSearchReq{Query: "carol"}))
	}
	friends, nobody := friend.Friends, friend.Nobody
	p := fntest.Must[friend.Privacy](t, e, "account.privacy.set", carol, friend.PrivacySetReq{Search: &friends})
	if p.Search != friend.Friends {
		t.Fatalf("privacy %+v", p)
	}
	if got := find(alice); !slices.Equal(got, []int64{carol.UserID}) {
		t.Fatalf("a friend: %v", got)
	}
	if got := find(bob); len(got) != 0 {
		t.Fatalf("a stranger: %v", got)
	}
	fntest.Must[friend.Privacy](t, e, "account.privacy.set", carol, friend.PrivacySetReq{Search: &nobody})
	if got := find(alice); len(got) != 0 {
		t.Fatalf("a friend, with nobody: %v", got)
	}
}

// TestGroupSearch: public groups (open or approval) by the start of their
// name, the caller's own groups by any part of it; invite-only and dismissed
// groups stay hidden from strangers.
func TestGroupSearch(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	mk := func(name, policy string) group.Info {
		return fntest.Must[group.Info](t, e, "group.create", alice, group.CreateReq{Name: name, JoinPolicy: policy})
	}
	open := mk("Rust Lovers", group.PolicyOpen)
	approval := mk("rust club 北京", group.PolicyApproval)
	secret := mk("Rust insiders", group.PolicyInvite)
	gone := mk("Rust old", group.PolicyOpen)
	fntest.Must[json.RawMessage](t, e, "group.dismiss", alice, group.GroupReq{GroupID: gone.GroupID})
	find := func(as endpoint.Caller, q string) []int64 {
		t.Helper()
		out := []int64{}
		for _, g := range fntest.Must[search.GroupSearchResp](t, e, "group.search", as, search.NameSearchReq{Query: q}).Groups {
			out = append(out, g.GroupID)
		}
		slices.Sort(out)
		return out
	}
	if got, want := find(bob, "rust"), []int64{open.GroupID, approval.GroupID}; !slices.Equal(got, want) {
		t.Fatalf("stranger: %v, want %v", got, want)
	}
	if got, want := find(alice, "rust"), []int64{open.GroupID, approval.GroupID, secret.GroupID}; !slices.Equal(got, want) {
		t.Fatalf("owner: %v, want %v", got, want)
	}
	if got, want := find(alice, "北京"), []int64{approval.GroupID}; !slices.Equal(got, want) {
		t.Fatalf("own group by a part of its name: %v, want %v", got, want)
	}
	if got := find(bob, "insiders"); len(got) != 0 {
		t.Fatalf("stranger found an invite-only group: %v", got)
	}
}

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

// TestFileAndFavSearch: file names in the caller's conversations (not a
// stranger's, not a recalled message's), and the caller's favorites.
func TestFileAndFavSearch(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{S3: true})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	carol, _ := fntest.User(t, e, "carol", "c1")
	fntest.Befriend(t, e, alice, bob)
	direct := fmt.Sprintf("d:%d:%d", alice.UserID, bob.UserID)
	sendFile := func(name string) message.SendResp {
		f := upload(t, e, alice, name, "text/plain", []byte("contents of "+name+"\n"))
		fc, _ := json.Marshal(map[string]string{"file_id": fmt.Sprint(f.ID)})
		clientIDs++
		return fntest.Must[message.SendResp](t, e, "msg.send", alice, message.SendReq{ConvID: direct, ClientMsgID: fmt.Sprintf("f%d", clientIDs), Type: wire.TypeFile, Content: fc})
	}
	q3 := sendFile("Quarterly-Report Q3.txt")
	q4 := sendFile("quarterly report q4 季度.txt")
	fileSeqs := func(as endpoint.Caller, r search.FileSearchReq) []int64 {
		t.Helper()
		out := []int64{}
		for _, f := range fntest.Must[search.FileSearchResp](t, e, "file.search", as, r).Files {
			out = append(out, f.Seq)
		}
		return out
	}
	if got := fileSeqs(bob, search.FileSearchReq{Query: "QUARTERLY"}); !slices.Equal(got, []int64{q4.Seq, q3.Seq}) {
		t.Fatalf("bob: %v", got)
	}
	if got := fileSeqs(bob, search.FileSearchReq{Query: "季度", ConvID: direct}); !slices.Equal(got, []int64{q4.Seq}) {
		t.Fatalf("bob 季度: %v", got)
	}
	if got := fileSeqs(carol, search.FileSearchReq{Query: "quarterly"}); len(got) != 0 {
		t.Fatalf("a stranger found %v", got)
	}
	_, err := fntest.Call[search.FileSearchResp](t, e, "file.search", carol, search.FileSearchReq{Query: "quarterly", ConvID: direct})
	fntest.WantCode(t, err, imerr.NotFound)
	page := fntest.Must[search.FileSearchResp](t, e, "file.search", bob, search.FileSearchReq{Query: "quarterly", Limit: 1})
	if !page.HasMore || len(page.Files) != 1 {
		t.Fatalf("page %+v", page)
	}
	if got := fileSeqs(bob, search.FileSearchReq{Query: "quarterly", Before: page.NextBefore}); !slices.Equal(got, []int64{q3.Seq}) {
		t.Fatalf("next page %v", got)
	}
	fntest.Must[message.RecallResp](t, e, "msg.recall", alice, message.RecallReq{MsgRef: message.MsgRef{ID: q3.ID}})
	if got := fileSeqs(bob, search.FileSearchReq{Query: "quarterly"}); !slices.Equal(got, []int64{q4.Seq}) {
		t.Fatalf("after the recall: %v", got)
	}

	// Favorites: bob's own only.
	m := send(t, e, alice, direct, "明天的会议纪要 and the Café menu")
	fntest.Must[fav.Favorite](t, e, "fav.add", bob, fav.AddReq{Message: &fav.MsgRef{ID: m.ID}})
	fntest.Must[fav.Favorite](t, e, "fav.add", bob, fav.AddReq{Message: &fav.MsgRef{ID: q4.ID}})
	fntest.Must[fav.Favorite](t, e, "fav.add", bob, fav.AddReq{Note: "buy cafe beans", Key: "n1"})
	favs := func(as endpoint.Caller, q string) []string {
		t.Helper()
		out := []string{}
		for _, f := range fntest.Must[search.FavSearchResp](t, e, "fav.search", as, search.FavSearchReq{Query: q}).Favorites {
			out = append(out, f.Kind+":"+f.Snippet.Text)
		}
		return out
	}
	if got, want := favs(bob, "cafe"), []string{"note:buy cafe beans", "message:明天的会议纪要 and the Café menu"}; !slices.Equal(got, want) {
		t.Fatalf("bob cafe: %v, want %v", got, want)
	}
	if got := favs(bob, "会议纪要"); len(got) != 1 {
		t.Fatalf("bob 会议纪要: %v", got)
	}
	if got := favs(bob, "季度"); len(got) != 1 {
		t.Fatalf("bob 季度 (a saved file message): %v", got)
	}
	if got := favs(alice, "cafe"); len(got) != 0 {
		t.Fatalf("alice found bob's favorites: %v", got)
	}
}
