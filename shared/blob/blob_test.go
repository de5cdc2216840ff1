package blob_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"natter/shared/blob"
	"natter/shared/testenv"
)

// TestObjectsAndPresignedURLs checks the S3 client against the real S3 server:
// bucket creation, put/get with metadata, and presigned PUT and GET as clients
// will use them for files.
func TestObjectsAndPresignedURLs(t *testing.T) {
	e := testenv.Start(t)
	_, conf := e.S3(t)
	ctx := context.Background()
	mc, err := blob.Open(ctx, conf) // the bucket exists: Open must accept that too
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("hello natter")
	if _, err := mc.PutObject(ctx, conf.Bucket, "a/b.txt", bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{ContentType: "text/plain", UserMetadata: map[string]string{"owner": "7"}}); err != nil {
		t.Fatal(err)
	}
	info, err := mc.StatObject(ctx, conf.Bucket, "a/b.txt", minio.StatObjectOptions{})
	if err != nil || info.Size != int64(len(body)) || info.UserMetadata["Owner"] != "7" {
		t.Fatalf("stat %+v %v", info, err)
	}

	put, err := mc.PresignedPutObject(ctx, conf.Bucket, "up/c.bin", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, put.String(), bytes.NewReader([]byte("uploaded")))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("presigned PUT: %v %v", resp, err)
	}
	resp.Body.Close()

	get, err := mc.PresignedGetObject(ctx, conf.Bucket, "up/c.bin", time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(get.String())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(got) != "uploaded" {
		t.Fatalf("presigned GET: %d %q", resp.StatusCode, got)
	}
	tampered := get.String() + "x"
	if resp, err := http.Get(tampered); err != nil || resp.StatusCode == http.StatusOK {
		t.Fatalf("tampered URL accepted: %v %v", resp, err)
	}
}
