package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"natter/shared/endpoint"
	"natter/shared/imerr"
)

// The edge's two file routes, beside the op table's: a streamed upload for
// clients that cannot PUT to S3 themselves, and a download that redirects to a
// presigned URL so that <img src> works. Both only call the file domain's ops
// as the user; the edge decides nothing about files.

// Op names the routes call.
const (
	opFileBegin    = "file.upload.begin"
	opFileComplete = "file.upload.complete"
	opFileGet      = "file.get"
)

// uploadBuffer is what the edge holds of an upload at a time, per request: the
// body streams from the client to S3 through it.
const uploadBuffer = 64 << 10

// s3Client carries streamed uploads to presigned URLs; with addr, it connects
// there whatever the URL's host.
func s3Client(addr string) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	dial := d.DialContext
	if addr != "" {
		dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}
	}
	return &http.Client{Transport: &http.Transport{
		Proxy: http.ProxyFromEnvironment, DialContext: dial, MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second,
		ResponseHeaderTimeout: time.Minute, WriteBufferSize: uploadBuffer,
	}}
}

// fileCaller authenticates an HTTP file route (the Authorization header, or
// ?token= as for the WebSocket, so that <img src> can carry one) and applies
// the user's HTTP rate limit and the session check every HTTP call gets.
func (g *Gateway) fileCaller(r *http.Request, reqID string) (endpoint.Caller, *imerr.Error) {
	token := bearer(r)
	if token == "" {
		token = r.URL.Query().Get("token")
	}
	claims, e := g.authenticate(token)
	if e != nil {
		return endpoint.Caller{}, e
	}
	c := endpoint.Caller{UserID: claims.UserID, DeviceID: claims.DeviceID, SessionID: claims.SessionID, Role: claims.Role,
		RequestID: reqID, ClientIP: clientAddr(r)}
	if !g.userLimits.allow("u:"+strconv.FormatInt(c.UserID, 10), time.Now()) {
		return endpoint.Caller{}, imerr.New(imerr.RateLimited, "too many requests: slow down")
	}
	if e := g.checkSession(r.Context(), c); e != nil {
		return endpoint.Caller{}, e
	}
	return c, nil
}

// fileFailure answers a file route's error, counted and logged as serveOp's are.
func (g *Gateway) fileFailure(w http.ResponseWriter, name, reqID string, e *imerr.Error, start time.Time) {
	g.m.observe("http", name, e, time.Since(start))
	logFailure(g.log.Warn().Str("req_id", reqID).Str("op", name), e)
	if e.Code == imerr.RateLimited {
		w.Header().Set("Retry-After", "1")
	}
	writeJSONError(w, e)
}

// serveDownload answers GET /api/v1/files/{file_id}[?thumb=1] with a redirect to
// the presigned URL file.get gives the caller (the thumbnail's when asked for
// and made).
func (g *Gateway) serveDownload(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := requestID(r, g)
	w.Header().Set(HeaderRequestID, reqID)
	c, e := g.fileCaller(r, reqID)
	if e != nil {
		g.fileFailure(w, opFileGet, reqID, e, start)
		return
	}
	id := r.PathValue("file_id")
	if _, err := strconv.ParseInt(id, 10, 64); err != nil {
		g.fileFailure(w, opFileGet, reqID, imerr.New(imerr.BadRequest, "file_id must be an integer"), start)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.RequestTimeout)
	out, err := endpoint.Request(ctx, g.nc, opFileGet, c, []byte(`{"file_id":"`+id+`"}`))
	cancel()
	if err != nil {
		g.fileFailure(w, opFileGet, reqID, clientError(err), start)
		return
	}
	var got struct {
		URL      string `json:"url"`
		ThumbURL string `json:"thumb_url"`
	}
	if err := json.Unmarshal(out, &got); err != nil || got.URL == "" {
		g.fileFailure(w, opFileGet, reqID, imerr.New(imerr.Internal, "file.get answered no url"), start)
		return
	}
	to := got.URL
	if t := r.URL.Query().Get("thumb"); t != "" && t != "0" && got.ThumbURL != "" {
		to = got.ThumbURL
	}
	g.m.observe("http", opFileGet, nil, time.Since(start))
	// The URL expires: caches must not keep the redirect longer than a moment.
	w.Header().Set("Cache-Control", "private, max-age=60")
	http.Redirect(w, r, to, http.StatusFound)
}

// beginReply is the part of file.upload.begin's reply the upload needs.
type beginReply struct {
	FileID  string            `json:"file_id"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Parts   []struct {
		Size int64  `json:"size"`
		URL  string `json:"url"`
	} `json:"parts"`
}

// serveUpload streams POST /api/v1/files (a multipart form: size, then
// optionally purpose and duration_ms, then the file) to S3: it asks
// file.upload.begin for presigned PUTs as the caller, copies the file part to
// them through a small buffer, never holding the file, and answers
// file.upload.complete's reply.
func (g *Gateway) serveUpload(w http.ResponseWriter, r *http.Request) {
	const name = "file.upload"
	start := time.Now()
	reqID := requestID(r, g)
	w.Header().Set(HeaderRequestID, reqID)
	fail := func(e *imerr.Error) { g.fileFailure(w, name, reqID, e, start) }
	c, e := g.fileCaller(r, reqID)
	if e != nil {
		fail(e)
		return
	}
	// The server's read and write deadlines are for small calls; an upload
	// takes as long as the client's link needs, up to UploadTimeout.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(g.cfg.UploadTimeout))
	_ = rc.SetWriteDeadline(time.Now().Add(g.cfg.UploadTimeout + g.cfg.RequestTimeout))
	mr, err := r.MultipartReader()
	if err != nil {
		fail(imerr.New(imerr.BadRequest, "want a multipart/form-data body"))
		return
	}
	begin := map[string]any{}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			fail(imerr.New(imerr.BadRequest, "the form has no file"))
			return
		}
		if err != nil {
			fail(imerr.Wrap(imerr.BadRequest, err, "malformed multipart body"))
			return
		}
		if part.FileName() == "" {
			if e := formField(part, begin); e != nil {
				fail(e)
				return
			}
			continue
		}
		if _, ok := begin["size"]; !ok {
			fail(imerr.New(imerr.BadRequest, "send the size field before the file"))
			return
		}
		out, e := g.streamUpload(r.Context(), c, begin, part)
		if e != nil {
			fail(e)
			return
		}
		g.m.observe("http", name, nil, time.Since(start))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out)
		return
	}
}

// formField reads one small form field into the begin request.
func formField(part *multipart.Part, begin map[string]any) *imerr.Error {
	b, err := io.ReadAll(io.LimitReader(part, 257))
	if err != nil {
		return imerr.Wrap(imerr.BadRequest, err, "malformed multipart body")
	}
	if len(b) > 256 {
		return imerr.New(imerr.BadRequest, "form field %q over 256 bytes", part.FormName())
	}
	v := strings.TrimSpace(string(b))
	switch field := part.FormName(); field {
	case "size", "duration_ms":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return imerr.New(imerr.BadRequest, "%s must be an integer", field)
		}
		begin[field] = n
	case "purpose", "sha256", "name":
		begin[field] = v
	}
	return nil
}

// streamUpload begins the upload, copies part to the presigned URL(s) and
// completes it, returning complete's reply.
func (g *Gateway) streamUpload(ctx context.Context, c endpoint.Caller, begin map[string]any, part *multipart.Part) ([]byte, *imerr.Error) {
	if _, ok := begin["name"]; !ok {
		begin["name"] = path.Base(strings.ReplaceAll(part.FileName(), `\`, "/"))
	}
	mt := part.Header.Get("Content-Type")
	if mt == "" {
		mt = "application/octet-stream"
	}
	if parsed, _, err := mime.ParseMediaType(mt); err == nil {
		mt = parsed
	}
	begin["mime"] = mt
	body, _ := json.Marshal(begin)
	rctx, cancel := context.WithTimeout(ctx, g.cfg.RequestTimeout)
	out, err := endpoint.Request(rctx, g.nc, opFileBegin, c, body)
	cancel()
	if err != nil {
		return nil, clientError(err)
	}
	var b beginReply
	if err := json.Unmarshal(out, &b); err != nil {
		return nil, imerr.Wrap(imerr.Internal, err, "file.upload.begin answered something else")
	}
	// S3 PUTs read the part through this, at most uploadBuffer at a time.
	src := &boundedPart{r: part}
	if b.URL != "" {
		size, _ := begin["size"].(int64)
		if e := g.putPart(ctx, b.URL, b.Headers, src, size); e != nil {
			return nil, e
		}
	}
	for _, p := range b.Parts {
		if e := g.putPart(ctx, p.URL, b.Headers, src, p.Size); e != nil {
			return nil, e
		}
	}
	if n, _ := part.Read(make([]byte, 1)); n > 0 {
		return nil, imerr.New(imerr.BadRequest, "the file is longer than size")
	}
	rctx, cancel = context.WithTimeout(ctx, g.cfg.RequestTimeout)
	defer cancel()
	out, err = endpoint.Request(rctx, g.nc, opFileComplete, c, []byte(`{"file_id":"`+b.FileID+`"}`))
	if err != nil {
		return nil, clientError(err)
	}
	return out, nil
}

// putPart PUTs exactly size bytes of src to a presigned URL.
func (g *Gateway) putPart(ctx context.Context, url string, hdr map[string]string, src *boundedPart, size int64) *imerr.Error {
	src.left = size
	// The transport may go on reading a request's body after Do returns (an early
	// answer, an error). Closing it ourselves waits out a read in progress and ends
	// the transport's reading before the part is read further (next PUT, caller).
	body := &putBody{src: src}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, body)
	if err != nil {
		return imerr.Wrap(imerr.Internal, err, "bad upload URL")
	}
	req.ContentLength = size
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := g.s3HTTP.Do(req)
	_ = body.Close()
	if src.short {
		return imerr.New(imerr.BadRequest, "the file is shorter than size")
	}
	if err != nil {
		if ctx.Err() != nil {
			return imerr.Wrap(imerr.BadRequest, err, "the upload was cut off")
		}
		return imerr.Wrap(imerr.Unavailable, err, "file storage unreachable")
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return imerr.New(imerr.Unavailable, "file storage refused the upload: %d %s", resp.StatusCode, strings.TrimSpace(firstLine(msg)))
	}
	return nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}

// putBody is one PUT's view of the part; once closed it reads nothing.
type putBody struct {
	src  *boundedPart
	mu   sync.Mutex
	done bool
}

func (b *putBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return 0, io.ErrClosedPipe
	}
	return b.src.Read(p)
}

func (b *putBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = true
	return nil
}

// boundedPart reads the next left bytes of a form's file part, at most
// uploadBuffer per read; short says the part ended first.
type boundedPart struct {
	r     io.Reader
	left  int64
	short bool
}

func (p *boundedPart) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	if len(b) > uploadBuffer {
		b = b[:uploadBuffer]
	}
	n, err := p.r.Read(b)
	p.left -= int64(n)
	if errors.Is(err, io.EOF) {
		if p.left > 0 {
			p.short = true
			return n, io.ErrUnexpectedEOF
		}
		err = nil
	}
	return n, err
}
