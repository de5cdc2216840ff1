package risk_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"natter/functions/file"
	"natter/functions/fntest"
	"natter/functions/message"
	"natter/functions/risk"
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

// TestCaptions: a media message's caption takes the list as text does.
func TestCaptions(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{S3: true})
	alice, _ := fntest.User(t, e, "alice", "d")
	bob, _ := fntest.User(t, e, "bob", "d")
	fntest.Befriend(t, e, alice, bob)
	addWords(t, e, risk.WordIn{Word: "darn", Action: "mask"}, risk.WordIn{Word: "违禁品", Action: "block"}, risk.WordIn{Word: "wirefraud", Action: "review"})
	f := upload(t, e, alice, "plan.txt", "text/plain", []byte("the plan\n"))
	n := 0
	send := func(caption string) (message.SendResp, error) {
		n++
		c, _ := json.Marshal(map[string]string{"file_id": fmt.Sprint(f.ID), "caption": caption})
		return fntest.Call[message.SendResp](t, e, "msg.send", alice, message.SendReq{To: bob.UserID, ClientMsgID: fmt.Sprintf("f%d", n), Type: wire.TypeFile, Content: c})
	}
	waitFor(t, "masked caption", func() bool {
		r, err := send("ＤＡＲＮ plan")
		return err == nil && strings.Contains(stored(t, e, r.ConvID, r.Seq), `"caption":"**** plan"`)
	})
	_, err := send("出售违禁品")
	fntest.WantCode(t, err, imerr.Forbidden)
	r, err := send("wirefraud here")
	if err != nil {
		t.Fatal(err)
	}
	q := fntest.Must[risk.ReviewListResp](t, e, "admin.review.list", auditor, risk.ReviewListReq{})
	if len(q.Items) != 1 || q.Items[0].Seq != r.Seq || q.Items[0].Excerpt != "wirefraud here" {
		t.Errorf("queue %+v", q.Items)
	}
}
