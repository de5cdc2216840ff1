package file

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/image/draw"

	"natter/shared/subject"
)

// consumerName is the durable consumer every worker process shares: each
// uploaded file is processed once, by whichever worker pulls it.
const consumerName = "file-process"

// startProcessing consumes im.evt.file.uploaded durably: at most cfg.Workers
// files at once per process, each acknowledged once processed (or found gone),
// redelivered after a crash.
func (s *Service) startProcessing(ctx context.Context) error {
	cons, err := s.js.CreateOrUpdateConsumer(ctx, subject.EventStream, jetstream.ConsumerConfig{
		Durable:       consumerName,
		FilterSubject: subject.EvtFileUploaded,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       2 * time.Minute,
		MaxDeliver:    5,
		MaxAckPending: 64,
	})
	if err != nil {
		return fmt.Errorf("file consumer: %w", err)
	}
	slots := make(chan struct{}, max(s.cfg.Workers, 1))
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		go func() {
			defer func() { <-slots }()
			var ev Uploaded
			if err := json.Unmarshal(m.Data(), &ev); err != nil || ev.FileID <= 0 {
				_ = m.Term()
				return
			}
			pctx, cancel := context.WithTimeout(ctx, 90*time.Second)
			err := s.Process(pctx, ev.FileID)
			cancel()
			if err != nil {
				s.log.Warn().Err(err).Int64("file", ev.FileID).Msg("file processing failed; retried")
				_ = m.NakWithDelay(10 * time.Second)
				return
			}
			_ = m.Ack()
		}()
	}, jetstream.PullMaxMessages(max(s.cfg.Workers, 1)))
	if err != nil {
		return fmt.Errorf("file consumer: %w", err)
	}
	go func() {
		<-ctx.Done()
		cc.Stop()
	}()
	return nil
}

// Process hashes a ready file, deduplicates its object against an earlier file
// with the same bytes, and makes an image's thumbnail, in one read of the
// object. Processing a processed file does nothing.
func (s *Service) Process(ctx context.Context, id int64) error {
	f, err := s.load(ctx, id)
	if errors.Is(err, errNoFile) {
		return nil
	}
	if err != nil {
		return err
	}
	if f.status != statusReady || f.processed != procWaiting {
		return nil
	}
	obj, err := s.s3.GetObject(ctx, s.bucket, f.objectKey, minio.GetObjectOptions{})
	if err != nil {
		return fmt.Errorf("read %s: %w", f.objectKey, err)
	}
	defer obj.Close()
	h := sha256.New()
	body := io.TeeReader(io.LimitReader(obj, f.size), h)
	var thumb []byte
	var tw, th int
	state := procDone
	if s.hasThumb(f) {
		// The dimensions were read from this object's header at complete, and
		// only the server writes it since: no decompression bomb gets here.
		thumb, tw, th, err = makeThumb(body, s.thumbBox(f.purpose))
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			s.log.Warn().Err(err).Int64("file", id).Msg("no thumbnail")
			state = procFailed
		}
	}
	if _, err := io.Copy(io.Discard, body); err != nil { // the rest, for the hash
		return fmt.Errorf("read %s: %w", f.objectKey, err)
	}
	sum := h.Sum(nil)
	if thumb != nil {
		if _, err := s.s3.PutObject(ctx, s.bucket, thumbKey(id), bytes.NewReader(thumb), int64(len(thumb)),
			minio.PutObjectOptions{ContentType: "image/jpeg"}); err != nil {
			return fmt.Errorf("store thumbnail: %w", err)
		}
	}
	var tkey sql.NullString
	if thumb != nil {
		tkey = sql.NullString{String: thumbKey(id), Valid: true}
	}
	q := "UPDATE files SET sha256 = ?, processed = ?, thumb_key = ?, thumb_width = ?, thumb_height = ?"
	args := []any{sum, state, tkey, tw, th}
	// The hash and the move to an earlier copy's object are one write: a file
	// shows as processed once it is deduplicated too.
	key, err := s.dedupeTarget(ctx, f, sum)
	if err != nil {
		return err
	}
	if key != "" {
		// The file's own object goes later: presigned URLs handed out before now
		// may name it until they expire (the sweeper removes it then).
		q += ", object_key = ?, deduped_at = ?"
		args = append(args, key, s.now().UTC())
	}
	if _, err := s.db.ExecContext(ctx, q+" WHERE id = ?", append(args, id)...); err != nil {
		return fmt.Errorf("file processed: %w", err)
	}
	return nil
}

// dedupeTarget returns the object of the earliest file with the same bytes as
// f, to point f at ("": none); f's own object is deleted once the URLs that may
// name it have expired (Sweep). Only a later file moves to an earlier one's
// object, and that one keeps its own, so two files processed at once never swap
// objects and delete both; at worst neither is deduplicated. The other file may
// be anyone's: nothing about it reaches f's owner, who uploaded the bytes in
// full and gets the same answers either way.
func (s *Service) dedupeTarget(ctx context.Context, f fileRow, sum []byte) (string, error) {
	if f.objectKey != objectKey(f.id) {
		return "", nil
	}
	var first int64
	var key string
	err := s.db.QueryRowContext(ctx, "SELECT id, object_key FROM files WHERE sha256 = ? AND size = ? AND status = ? AND id < ? ORDER BY id LIMIT 1",
		sum, f.size, statusReady, f.id).Scan(&first, &key)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("dedupe: %w", err)
	}
	if key != objectKey(first) {
		return "", nil // never chain: the earliest keeps its own object
	}
	return key, nil
}

// makeThumb decodes an image and scales it to fit a box×box square (never up),
// flattened on white, as a JPEG.
func makeThumb(r io.Reader, box int) ([]byte, int, int, error) {
	src, _, err := image.Decode(r)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("decode: %w", err)
	}
	b := src.Bounds()
	w, h := thumbSize(b.Dx(), b.Dy(), box)
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.BiLinear.Scale(dst, dst.Bounds(), src, b, draw.Over, nil)
	var out bytes.Buffer
	if err := jpeg.Encode(&out, dst, &jpeg.Options{Quality: 80}); err != nil {
		return nil, 0, 0, fmt.Errorf("encode: %w", err)
	}
	return out.Bytes(), w, h, nil
}
