package file

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	// Image formats whose headers complete reads and whose pixels the worker decodes.
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/webp"

	"github.com/minio/minio-go/v7"

	"natter/shared/db"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/subject"
	"natter/shared/wire"
)

// maxParts bounds a multipart upload's parts (S3 allows 10,000; the reply lists
// one URL per part and must stay well under wire.MaxReply).
const maxParts = 500

// begin records a pending upload and answers where to PUT it. Limits are checked
// against what the client declares here and again against what arrived at
// complete.
func (s *Service) begin(ctx context.Context, c endpoint.Caller, r BeginReq) (BeginResp, error) {
	if s.s3 == nil {
		return BeginResp{}, errNoS3
	}
	if err := s.typeAllowed(r.MIME); err != nil {
		return BeginResp{}, err
	}
	kind := kindOf(r.MIME)
	if r.Purpose != PurposeAttachment && !thumbable[r.MIME] {
		return BeginResp{}, imerr.New(imerr.BadRequest, "an avatar must be a JPEG, PNG, GIF, WebP or BMP image")
	}
	if limit := s.maxSize(kind, r.Purpose); r.Size > limit {
		return BeginResp{}, tooLarge(r.Size, limit)
	}
	var sum []byte
	if r.SHA256 != "" {
		sum, _ = hex.DecodeString(r.SHA256)
	}
	duration := int64(0)
	if kind == wire.KindVideo || kind == wire.KindAudio {
		duration = r.DurationMS
	}
	id := s.ids.Next()
	parts := int64(0)
	if r.Size > s.cfg.MultipartAbove {
		parts = (r.Size + s.cfg.PartSize - 1) / s.cfg.PartSize
		if parts > maxParts {
			return BeginResp{}, tooLarge(r.Size, maxParts*s.cfg.PartSize)
		}
	}
	// The user's row lock orders their concurrent begins, so two cannot both
	// pass the quota with the room for one.
	err := db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, "SELECT 1 FROM users WHERE id = ? FOR UPDATE", c.UserID).Scan(&one); err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		var used, today int64
		err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(size), 0), COALESCE(SUM(IF(created_at > ?, size, 0)), 0)
			FROM files WHERE owner_id = ?`, s.now().Add(-24*time.Hour).UTC(), c.UserID).Scan(&used, &today)
		if err != nil {
			return fmt.Errorf("quota: %w", err)
		}
		if used+r.Size > s.cfg.Quota {
			return imerr.New(imerr.Conflict, "storage quota reached: %s of %s used", human(used), human(s.cfg.Quota))
		}
		if today+r.Size > s.cfg.DailyVolume {
			return imerr.New(imerr.Conflict, "daily upload volume reached: %s of %s in the last 24 hours", human(today), human(s.cfg.DailyVolume))
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO files (id, owner_id, purpose, name, size, mime, kind, declared_sha256, object_key, parts, duration_ms, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, c.UserID, r.Purpose, r.Name, r.Size, r.MIME, kind, sum, objectKey(id), parts, duration, s.now().UTC())
		return err
	})
	if err != nil {
		if _, ok := errors.AsType[*imerr.Error](err); ok {
			return BeginResp{}, err
		}
		return BeginResp{}, fmt.Errorf("begin upload: %w", err)
	}
	out := BeginResp{FileID: id, Method: http.MethodPut, Headers: map[string]string{"Content-Type": r.MIME},
		ExpiresAt: s.now().Add(s.cfg.UploadExpiry).UnixMilli()}
	if parts == 0 {
		u, err := s.presign.PresignHeader(ctx, http.MethodPut, s.bucket, stagingKey(id), s.cfg.UploadExpiry, nil,
			http.Header{"Content-Type": {r.MIME}, "Content-Length": {strconv.FormatInt(r.Size, 10)}})
		if err != nil {
			return BeginResp{}, fmt.Errorf("presign put: %w", err)
		}
		out.URL = u.String()
		return out, nil
	}
	uploadID, err := s.core.NewMultipartUpload(ctx, s.bucket, stagingKey(id), minio.PutObjectOptions{ContentType: r.MIME})
	if err != nil {
		return BeginResp{}, storeErr("start multipart upload", err)
	}
	if _, err := s.db.ExecContext(ctx, "UPDATE files SET upload_id = ? WHERE id = ?", uploadID, id); err != nil {
		return BeginResp{}, fmt.Errorf("record multipart upload: %w", err)
	}
	delete(out.Headers, "Content-Type") // parts carry no type: the upload has it
	for n := int64(1); n <= parts; n++ {
		size := min(s.cfg.PartSize, r.Size-(n-1)*s.cfg.PartSize)
		u, err := s.presign.PresignHeader(ctx, http.MethodPut, s.bucket, stagingKey(id), s.cfg.UploadExpiry,
			url.Values{"partNumber": {strconv.FormatInt(n, 10)}, "uploadId": {uploadID}},
			http.Header{"Content-Length": {strconv.FormatInt(size, 10)}})
		if err != nil {
			return BeginResp{}, fmt.Errorf("presign part: %w", err)
		}
		out.Parts = append(out.Parts, Part{Number: int(n), Size: size, URL: u.String()})
	}
	return out, nil
}

// complete checks what arrived (size, declared type, the type its bytes show,
// an image's dimensions), moves it where only the server writes and makes the
// file ready; the worker then hashes it and makes its thumbnail. A file that
// fails a check is deleted, object and row. A retry of a completed upload
// answers the file.
func (s *Service) complete(ctx context.Context, c endpoint.Caller, r CompleteReq) (wire.File, error) {
	if s.s3 == nil {
		return wire.File{}, errNoS3
	}
	f, err := s.load(ctx, r.FileID)
	if err != nil {
		return wire.File{}, err
	}
	if f.owner != c.UserID {
		return wire.File{}, errNoFile
	}
	if f.status == statusReady {
		return s.toWire(f), nil
	}
	if f.uploadID != "" {
		if err := s.finishParts(ctx, f); err != nil {
			return wire.File{}, err
		}
	}
	key := stagingKey(f.id)
	info, err := s.s3.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if minio.ToErrorResponse(err).Code == "NoSuchKey" {
		return wire.File{}, imerr.New(imerr.Conflict, "nothing was uploaded for this file yet")
	}
	if err != nil {
		return wire.File{}, storeErr("stat upload", err)
	}
	if info.Size != f.size {
		return wire.File{}, s.reject(ctx, f, imerr.New(imerr.BadRequest, "%d bytes arrived, %d were declared", info.Size, f.size))
	}
	if mt, err := normalMIME(info.ContentType); err != nil || mt != f.mime {
		return wire.File{}, s.reject(ctx, f, imerr.New(imerr.BadRequest, "stored as %q, declared %s", info.ContentType, f.mime))
	}
	head, err := s.readHead(ctx, key, f.size)
	if err != nil {
		return wire.File{}, err
	}
	sniffed, program := sniff(head)
	if program {
		return wire.File{}, s.reject(ctx, f, imerr.New(imerr.BadRequest, "programs are not accepted"))
	}
	if err := checkType(f.mime, sniffed); err != nil {
		return wire.File{}, s.reject(ctx, f, err)
	}
	if thumbable[f.mime] {
		cfg, _, err := image.DecodeConfig(bytes.NewReader(head))
		if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
			return wire.File{}, s.reject(ctx, f, imerr.New(imerr.BadRequest, "not a readable %s image", f.mime))
		}
		f.width, f.height = cfg.Width, cfg.Height
		if f.purpose != PurposeAttachment && int64(f.width)*int64(f.height) > s.cfg.ThumbMaxPixels {
			return wire.File{}, s.reject(ctx, f, imerr.New(imerr.TooLarge, "an avatar may have at most %d pixels", s.cfg.ThumbMaxPixels))
		}
	}
	if _, err := s.s3.CopyObject(ctx, minio.CopyDestOptions{Bucket: s.bucket, Object: objectKey(f.id)},
		minio.CopySrcOptions{Bucket: s.bucket, Object: key}); err != nil {
		return wire.File{}, storeErr("move upload", err)
	}
	if err := s.s3.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		s.log.Warn().Err(err).Int64("file", f.id).Msg("staging object not removed; the sweeper will")
	}
	now := s.now().UTC()
	res, err := s.db.ExecContext(ctx, "UPDATE files SET status = ?, width = ?, height = ?, object_key = ?, ready_at = ? WHERE id = ? AND status = ?",
		statusReady, f.width, f.height, objectKey(f.id), now, f.id, statusPending)
	if err != nil {
		return wire.File{}, fmt.Errorf("file ready: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 { // a concurrent complete won
		if f, err = s.load(ctx, f.id); err != nil {
			return wire.File{}, err
		}
		return s.toWire(f), nil
	}
	f.status, f.objectKey, f.readyAt = statusReady, objectKey(f.id), now
	s.announce(ctx, f.id)
	return s.toWire(f), nil
}

// finishParts completes a multipart upload from the parts that arrived; each
// must have the size its URL was signed for.
func (s *Service) finishParts(ctx context.Context, f fileRow) error {
	res, err := s.core.ListObjectParts(ctx, s.bucket, stagingKey(f.id), f.uploadID, 0, maxParts+1)
	if minio.ToErrorResponse(err).Code == "NoSuchUpload" {
		return nil // completed by an earlier attempt: the object tells the rest
	}
	if err != nil {
		return storeErr("list parts", err)
	}
	if len(res.ObjectParts) != f.parts {
		return imerr.New(imerr.Conflict, "%d of %d parts uploaded", len(res.ObjectParts), f.parts)
	}
	parts := make([]minio.CompletePart, 0, len(res.ObjectParts))
	for _, p := range res.ObjectParts {
		parts = append(parts, minio.CompletePart{PartNumber: p.PartNumber, ETag: p.ETag})
	}
	if _, err := s.core.CompleteMultipartUpload(ctx, s.bucket, stagingKey(f.id), f.uploadID, parts, minio.PutObjectOptions{}); err != nil {
		return storeErr("complete multipart upload", err)
	}
	return nil
}

// readHead reads the first sniffLen bytes of an object.
func (s *Service) readHead(ctx context.Context, key string, size int64) ([]byte, error) {
	opts := minio.GetObjectOptions{}
	if err := opts.SetRange(0, min(size, sniffLen)-1); err != nil {
		return nil, err
	}
	obj, err := s.s3.GetObject(ctx, s.bucket, key, opts)
	if err != nil {
		return nil, storeErr("read upload", err)
	}
	defer obj.Close()
	head, err := io.ReadAll(io.LimitReader(obj, sniffLen))
	if err != nil {
		return nil, storeErr("read upload", err)
	}
	return head, nil
}

// reject deletes a refused upload, object and row, and returns why.
func (s *Service) reject(ctx context.Context, f fileRow, why error) error {
	if err := s.s3.RemoveObject(ctx, s.bucket, stagingKey(f.id), minio.RemoveObjectOptions{}); err != nil {
		s.log.Warn().Err(err).Int64("file", f.id).Msg("refused upload not removed; the sweeper will")
	}
	if _, err := s.db.ExecContext(ctx, "DELETE FROM files WHERE id = ? AND status = ?", f.id, statusPending); err != nil {
		s.log.Warn().Err(err).Int64("file", f.id).Msg("refused upload's row not removed; the sweeper will")
	}
	return why
}

// Uploaded is the event (im.evt.file.uploaded) that hands a ready file to the
// processing worker.
type Uploaded struct {
	FileID int64 `json:"file_id,string"`
}

// announce publishes the file's Uploaded event to JetStream; should that fail,
// the sweeper publishes it again for files left unprocessed.
func (s *Service) announce(ctx context.Context, id int64) {
	if s.nc == nil {
		return
	}
	b, _ := json.Marshal(Uploaded{FileID: id})
	if _, err := s.js.Publish(ctx, subject.EvtFileUploaded, b); err != nil {
		s.log.Warn().Err(err).Int64("file", id).Msg("file.uploaded not published; the sweeper will")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// storeErr is an error of S3: unavailable when the server did not answer (a
// network error: no S3 error code), so clients retry; else internal.
func storeErr(what string, err error) error {
	if minio.ToErrorResponse(err).Code == "" {
		return imerr.Wrap(imerr.Unavailable, err, "file storage unavailable")
	}
	return fmt.Errorf("%s: %w", what, err)
}
