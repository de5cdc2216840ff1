package file

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/minio/minio-go/v7"
)

// sweepLoop runs Sweep every SweepInterval (with jitter, so that workers
// started together do not sweep together) until ctx ends.
func (s *Service) sweepLoop(ctx context.Context) {
	for {
		d := s.cfg.SweepInterval + time.Duration(rand.Int64N(int64(s.cfg.SweepInterval/4)+1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		sctx, cancel := context.WithTimeout(ctx, s.cfg.SweepInterval)
		n, err := s.Sweep(sctx, s.now().Add(-s.cfg.PendingTTL))
		cancel()
		if err != nil && ctx.Err() == nil {
			s.log.Warn().Err(err).Msg("file sweep")
		} else if n > 0 {
			s.log.Info().Int("removed", n).Msg("abandoned uploads removed")
		}
	}
}

// sweepBatch bounds the rows one sweep handles; the next sweep takes the rest.
const sweepBatch = 500

// Sweep removes the uploads begun before cutoff and never completed (their
// object or parts, then their row), and staging objects older than cutoff
// (re-uploads after a complete), and announces again the ready files the worker
// has not processed for a while (an event lost between commit and publish). Any
// number of workers may sweep at once. It returns how many uploads it removed.
func (s *Service) Sweep(ctx context.Context, cutoff time.Time) (int, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id, COALESCE(upload_id, '') FROM files WHERE status = ? AND created_at < ? LIMIT ?",
		statusPending, cutoff.UTC(), sweepBatch)
	if err != nil {
		return 0, fmt.Errorf("pending uploads: %w", err)
	}
	type pending struct {
		id       int64
		uploadID string
	}
	var todo []pending
	for rows.Next() {
		var p pending
		if err := rows.Scan(&p.id, &p.uploadID); err != nil {
			rows.Close()
			return 0, err
		}
		todo = append(todo, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	removed := 0
	for _, p := range todo {
		if p.uploadID != "" {
			err := s.core.AbortMultipartUpload(ctx, s.bucket, stagingKey(p.id), p.uploadID)
			if err != nil && minio.ToErrorResponse(err).Code != "NoSuchUpload" {
				return removed, fmt.Errorf("abort upload %d: %w", p.id, err)
			}
		}
		if err := s.s3.RemoveObject(ctx, s.bucket, stagingKey(p.id), minio.RemoveObjectOptions{}); err != nil {
			return removed, fmt.Errorf("remove upload %d: %w", p.id, err)
		}
		if _, err := s.db.ExecContext(ctx, "DELETE FROM files WHERE id = ? AND status = ?", p.id, statusPending); err != nil {
			return removed, fmt.Errorf("remove upload %d: %w", p.id, err)
		}
		removed++
	}
	for obj := range s.s3.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: "up/", Recursive: true}) {
		if obj.Err != nil {
			return removed, fmt.Errorf("list staging objects: %w", obj.Err)
		}
		if obj.LastModified.Before(cutoff) {
			if err := s.s3.RemoveObject(ctx, s.bucket, obj.Key, minio.RemoveObjectOptions{}); err != nil {
				return removed, fmt.Errorf("remove %s: %w", obj.Key, err)
			}
		}
	}
	if err := s.sweepDuplicates(ctx, s.now().Add(-s.cfg.DownloadExpiry-time.Minute)); err != nil {
		return removed, err
	}
	rows, err = s.db.QueryContext(ctx, "SELECT id FROM files WHERE status = ? AND processed = ? AND ready_at < ? LIMIT ?",
		statusReady, procWaiting, s.now().Add(-5*time.Minute).UTC(), sweepBatch)
	if err != nil {
		return removed, fmt.Errorf("unprocessed files: %w", err)
	}
	var late []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return removed, err
		}
		late = append(late, id)
	}
	rows.Close()
	for _, id := range late {
		s.announce(ctx, id)
	}
	return removed, rows.Err()
}

// sweepDuplicates removes the own objects of files deduplicated before cutoff:
// no presigned URL naming them is valid any more.
func (s *Service) sweepDuplicates(ctx context.Context, cutoff time.Time) error {
	rows, err := s.db.QueryContext(ctx, "SELECT id FROM files WHERE deduped_at < ? LIMIT ?", cutoff.UTC(), sweepBatch)
	if err != nil {
		return fmt.Errorf("deduplicated files: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		if err := s.s3.RemoveObject(ctx, s.bucket, objectKey(id), minio.RemoveObjectOptions{}); err != nil {
			return fmt.Errorf("remove duplicate %d: %w", id, err)
		}
		if _, err := s.db.ExecContext(ctx, "UPDATE files SET deduped_at = NULL WHERE id = ?", id); err != nil {
			return fmt.Errorf("duplicate %d removed: %w", id, err)
		}
	}
	return nil
}
