package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"natter/loadtest/report"
	"natter/loadtest/seed"
)

// FileConfig sizes the file scenario.
type FileConfig struct {
	Common
	// Users are seeded with a session each; Concurrency workers (closed loop)
	// each upload a file of Size bytes as one of them, then download it.
	Users, Concurrency, Size int
	// Edge streams uploads through the edge (POST /api/v1/files) instead of
	// PUTting them to the presigned URL.
	Edge bool
}

// File drives uploads and downloads of Size-byte files: begin, PUT to the
// presigned URL (or the edge's streamed upload), complete; then GET
// /api/v1/files/{id}, following its redirect to S3. It reports p50/p95/p99 of
// each and the bytes per second both ways.
func File(ctx context.Context, t Target, cfg FileConfig) (*report.Result, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	cfg.Common = cfg.Common.withDefaults()
	cfg.Concurrency = max(cfg.Concurrency, 1)
	cfg.Users = max(cfg.Users, 1)
	if cfg.Size < 64 {
		return nil, errors.New("file: -size must be at least 64")
	}
	started := time.Now()
	sd := seed.New(t.DB, t.Signer, cfg.Prefix)
	if cfg.Cleanup {
		defer cleanup(sd)
	}
	users, err := sd.Users(ctx, cfg.Users, "load")
	if err != nil {
		return nil, err
	}
	seeded := time.Since(started)
	body := make([]byte, cfg.Size) // one pseudo-random body; each upload differs in its first bytes
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range body {
		body[i] = byte(rnd.Uint32())
	}

	const opUp, opDown = "upload", "download"
	rec := report.NewRecorder([]string{"uploads", "downloads"}, []string{opUp, opDown})
	uploads, downloads := rec.Counter("uploads"), rec.Counter("downloads")
	var upBytes, downBytes atomic.Int64
	hc := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
		MaxIdleConns: cfg.Concurrency * 4, MaxIdleConnsPerHost: cfg.Concurrency * 4, IdleConnTimeout: time.Minute, DisableCompression: true,
	}}
	defer hc.CloseIdleConnections()
	fail := func(op string, err error) {
		var ae apiError
		if errors.As(err, &ae) {
			rec.Error(op + ":" + string(ae))
		} else if ctx.Err() == nil {
			rec.Error(op + ":" + errCode(err))
		}
	}
	var seq atomic.Int64
	one := func(ctx context.Context, w int) {
		i := int(seq.Add(1))
		u := users[i%len(users)]
		base := t.base(i)
		// Each file unique (no deduplication helps): its first bytes name the
		// run and the upload; the rest is shared.
		data := make([]byte, 64)
		copy(data, fmt.Sprintf("%s/%d/%d/", cfg.Prefix, i, w))
		start := time.Now()
		id, err := fileUpload(ctx, hc, base, u.Token, cfg.Edge, fmt.Sprintf("load-%d.bin", i), io.MultiReader(bytes.NewReader(data), bytes.NewReader(body[64:])), int64(cfg.Size))
		if err != nil {
			fail(opUp, err)
			return
		}
		rec.Hist(opUp).Record(time.Since(start))
		uploads.Add(1)
		upBytes.Add(int64(cfg.Size))
		start = time.Now()
		n, err := fileDownload(ctx, hc, base, u.Token, id)
		if err != nil {
			fail(opDown, err)
			return
		}
		rec.Hist(opDown).Record(time.Since(start))
		downloads.Add(1)
		downBytes.Add(n)
	}

	res := newResult("file", cfg.Common, started, map[string]any{
		"users": cfg.Users, "concurrency": cfg.Concurrency, "size": cfg.Size, "through_edge": cfg.Edge,
		"duration": cfg.Duration.String(), "edges": fmt.Sprint(t.Edges), "prefix": cfg.Prefix,
	})
	pctx, stopProgress := context.WithCancel(ctx)
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		rec.Run(pctx, time.Second, cfg.Progress, func() string { return "file" })
	}()
	watch := watchStack()
	a := rec.Mark()
	sctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	var started64 atomic.Int64
	for w := range cfg.Concurrency {
		wg.Go(func() {
			for sctx.Err() == nil {
				if cfg.MaxRequests > 0 && started64.Add(1) > cfg.MaxRequests {
					return
				}
				one(ctx, w)
			}
		})
	}
	wg.Wait()
	secs := time.Since(a.At).Seconds()
	b := rec.Mark()
	procs := watch.Stop()
	stopProgress()
	<-progressDone
	rec.Sample()
	finish(res, rec, rec.Window(a, b), procs)
	res.Values["seed_seconds"] = round(seeded.Seconds(), 2)
	res.Values["upload_mib_per_s"] = round(float64(upBytes.Load())/secs/(1<<20), 1)
	res.Values["download_mib_per_s"] = round(float64(downBytes.Load())/secs/(1<<20), 1)
	res.Rates["uploads"] = round(float64(res.Counts["uploads"])/secs, 1)
	res.Rates["downloads"] = round(float64(res.Counts["downloads"])/secs, 1)
	res.Notes = append(res.Notes, "an upload is file.upload.begin, the PUT (presigned, or streamed through the edge) and file.upload.complete; a download is GET /api/v1/files/{id} and the S3 GET it redirects to")
	return res, nil
}

// fileUpload uploads size bytes of r and returns the file id.
func fileUpload(ctx context.Context, hc *http.Client, base, token string, viaEdge bool, name string, r io.Reader, size int64) (string, error) {
	var f struct {
		FileID string `json:"file_id"`
	}
	if viaEdge {
		pr, pw := io.Pipe()
		mw := newMultipart(pw)
		go func() { pw.CloseWithError(mw.write(name, size, r)) }()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/files", pr)
		req.Header.Set("Content-Type", mw.contentType())
		err := apiDo(hc, req, token, &f)
		return f.FileID, err
	}
	var b struct {
		FileID  string            `json:"file_id"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
		Parts   []struct {
			Size int64  `json:"size"`
			URL  string `json:"url"`
		} `json:"parts"`
	}
	begin, _ := json.Marshal(map[string]any{"name": name, "size": size, "mime": "application/octet-stream"})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/content/files/upload", bytes.NewReader(begin))
	if err := apiDo(hc, req, token, &b); err != nil {
		return "", err
	}
	put := func(url string, n int64) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, url, io.LimitReader(r, n))
		req.ContentLength = n
		for k, v := range b.Headers {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return apiError("s3_" + strconv.Itoa(resp.StatusCode))
		}
		return nil
	}
	if b.URL != "" {
		if err := put(b.URL, size); err != nil {
			return "", err
		}
	}
	for _, p := range b.Parts {
		if err := put(p.URL, p.Size); err != nil {
			return "", err
		}
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/content/files/"+b.FileID+"/complete", nil)
	err := apiDo(hc, req, token, &f)
	return f.FileID, err
}

// fileDownload reads a file through the edge's redirect and returns its length.
func fileDownload(ctx context.Context, hc *http.Client, base, token, id string) (int64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/files/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req) // the redirect to S3 is followed without the Authorization header (another host)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, apiError("http_" + strconv.Itoa(resp.StatusCode))
	}
	return io.Copy(io.Discard, resp.Body)
}

// apiDo sends an edge call as the token's user and decodes its JSON reply (or
// its error code) into out.
func apiDo(hc *http.Client, req *http.Request, token string, out any) error {
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
			return apiError(e.Error.Code)
		}
		return apiError("http_" + strconv.Itoa(resp.StatusCode))
	}
	return json.Unmarshal(b, out)
}
