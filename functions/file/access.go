package file

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"natter/shared/convid"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/validate"
	"natter/shared/wire"
)

// File statuses.
const (
	statusPending = 0
	statusReady   = 1
)

// Processing states.
const (
	procWaiting = 0
	procDone    = 1
	procFailed  = 2
)

// errNoFile answers for a file the caller may not see, exactly as for one that
// does not exist.
var errNoFile = imerr.New(imerr.NotFound, "file not found")

// fileRow is a files row.
type fileRow struct {
	id, owner, size   int64
	purpose, name     string
	mime, kind        string
	status, processed int
	sha256            []byte
	objectKey         string
	uploadID          string
	parts             int
	width, height     int
	durationMS        int64
	thumbKey          string
	thumbW, thumbH    int
	createdAt         time.Time
	readyAt           time.Time
}

const fileColumns = "id, owner_id, size, purpose, name, mime, kind, status, processed, sha256, object_key, COALESCE(upload_id, ''), parts, width, height, duration_ms, COALESCE(thumb_key, ''), thumb_width, thumb_height, created_at, ready_at"

// fileColumnsF is fileColumns of the table aliased f.
const fileColumnsF = "f.id, f.owner_id, f.size, f.purpose, f.name, f.mime, f.kind, f.status, f.processed, f.sha256, f.object_key, COALESCE(f.upload_id, ''), f.parts, f.width, f.height, f.duration_ms, COALESCE(f.thumb_key, ''), f.thumb_width, f.thumb_height, f.created_at, f.ready_at"

type scanner interface{ Scan(...any) error }

func scanFile(sc scanner) (fileRow, error) {
	var f fileRow
	var ready sql.NullTime
	err := sc.Scan(&f.id, &f.owner, &f.size, &f.purpose, &f.name, &f.mime, &f.kind, &f.status, &f.processed, &f.sha256,
		&f.objectKey, &f.uploadID, &f.parts, &f.width, &f.height, &f.durationMS, &f.thumbKey, &f.thumbW, &f.thumbH, &f.createdAt, &ready)
	f.readyAt = ready.Time
	return f, err
}

// load reads a file of any status; a missing one is errNoFile.
func (s *Service) load(ctx context.Context, id int64) (fileRow, error) {
	f, err := scanFile(s.db.QueryRowContext(ctx, "SELECT "+fileColumns+" FROM files WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return fileRow{}, errNoFile
	}
	if err != nil {
		return fileRow{}, fmt.Errorf("load file: %w", err)
	}
	return f, nil
}

// thumbBox is the square a file's thumbnail fits in.
func (s *Service) thumbBox(purpose string) int {
	if purpose != PurposeAttachment {
		return s.cfg.AvatarThumbSize
	}
	return s.cfg.ThumbSize
}

// thumbSize is the size of the thumbnail of a w×h image in a box×box square:
// scaled down to fit, never up.
func thumbSize(w, h, box int) (int, int) {
	if w <= box && h <= box {
		return w, h
	}
	if w >= h {
		return box, max(1, h*box/w)
	}
	return max(1, w*box/h), box
}

// hasThumb says whether the worker makes (or made) a thumbnail for f.
func (s *Service) hasThumb(f fileRow) bool {
	return thumbable[f.mime] && f.width > 0 && int64(f.width)*int64(f.height) <= s.cfg.ThumbMaxPixels && f.processed != procFailed
}

func (s *Service) toWire(f fileRow) wire.File {
	out := wire.File{ID: f.id, Owner: f.owner, Purpose: f.purpose, Name: f.name, Size: f.size, MIME: f.mime, Kind: f.kind,
		Width: f.width, Height: f.height, DurationMS: f.durationMS, CreatedAt: f.createdAt.UnixMilli()}
	if f.thumbKey != "" {
		out.Thumb = &wire.Thumb{Width: f.thumbW, Height: f.thumbH}
	} else if s.hasThumb(f) {
		w, h := thumbSize(f.width, f.height, s.thumbBox(f.purpose))
		out.Thumb = &wire.Thumb{Width: w, Height: h}
	}
	if len(f.sha256) == 32 {
		out.SHA256 = hex.EncodeToString(f.sha256)
	}
	return out
}

// visible loads a ready file that user may see: their own upload; an avatar
// (profiles and groups show them to every user); a file carried by a message
// the user can read now (a member of its conversation, the message within the
// history shown to them and not recalled); or a file the user saved as a
// favorite (a file, or a message carrying it). Anything else is errNoFile.
func (s *Service) visible(ctx context.Context, user, id int64) (fileRow, error) {
	f, err := s.load(ctx, id)
	if err != nil {
		return fileRow{}, err
	}
	if f.status != statusReady {
		return fileRow{}, errNoFile
	}
	if f.owner == user || f.purpose != PurposeAttachment {
		return f, nil
	}
	var one int
	err = s.db.QueryRowContext(ctx, `SELECT 1 FROM message_files mf
		JOIN messages m ON m.conv_id = mf.conv_id AND m.sender_id = mf.sender_id AND m.client_msg_id = mf.client_msg_id
		JOIN conversation_members cm ON cm.conv_id = mf.conv_id AND cm.user_id = ?
		WHERE mf.file_id = ? AND m.recalled_by = 0 AND m.seq > cm.min_seq
		UNION ALL SELECT 1 FROM favorites WHERE file_id = ? AND user_id = ?
		LIMIT 1`, user, id, id, user).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fileRow{}, errNoFile
	}
	if err != nil {
		return fileRow{}, fmt.Errorf("file access: %w", err)
	}
	return f, nil
}

// Visible returns the metadata of a file user may see, or a not_found error:
// for other domains (favorites), wired in functions/worker.
func (s *Service) Visible(ctx context.Context, user, id int64) (wire.File, error) {
	f, err := s.visible(ctx, user, id)
	if err != nil {
		return wire.File{}, err
	}
	return s.toWire(f), nil
}

// Attach lets user send file id in a message of conv (client key clientMsgID)
// when they may see it, and returns its metadata. The link it records grants
// the conversation's members access once that message is stored; a send that
// never commits grants nothing.
func (s *Service) Attach(ctx context.Context, user, id int64, conv, clientMsgID string) (wire.File, error) {
	f, err := s.visible(ctx, user, id)
	if err != nil {
		return wire.File{}, err
	}
	if _, err := s.db.ExecContext(ctx, "INSERT IGNORE INTO message_files (file_id, conv_id, sender_id, client_msg_id, kind) VALUES (?, ?, ?, ?, ?)",
		id, conv, user, clientMsgID, f.kind); err != nil {
		return wire.File{}, fmt.Errorf("link file: %w", err)
	}
	return s.toWire(f), nil
}

// get answers a file's metadata and presigned GETs of it (and of its
// thumbnail, once made).
func (s *Service) get(ctx context.Context, c endpoint.Caller, r GetReq) (GetResp, error) {
	if s.s3 == nil {
		return GetResp{}, errNoS3
	}
	f, err := s.visible(ctx, c.UserID, r.FileID)
	if err != nil {
		return GetResp{}, err
	}
	out := GetResp{File: s.toWire(f), ExpiresAt: s.now().Add(s.cfg.DownloadExpiry).UnixMilli()}
	// Media shows inline; anything else downloads under its name, never rendered
	// from the S3 origin.
	disposition := "attachment"
	if f.kind != wire.KindFile {
		disposition = "inline"
	}
	params := url.Values{
		"response-content-type":        {f.mime},
		"response-content-disposition": {disposition + "; filename*=UTF-8''" + url.PathEscape(f.name)},
	}
	u, err := s.presign.PresignedGetObject(ctx, s.bucket, f.objectKey, s.cfg.DownloadExpiry, params)
	if err != nil {
		return GetResp{}, fmt.Errorf("presign get: %w", err)
	}
	out.URL = u.String()
	if f.thumbKey != "" {
		u, err := s.presign.PresignedGetObject(ctx, s.bucket, f.thumbKey, s.cfg.DownloadExpiry, url.Values{"response-content-type": {"image/jpeg"}})
		if err != nil {
			return GetResp{}, fmt.Errorf("presign thumbnail: %w", err)
		}
		out.ThumbURL = u.String()
	}
	return out, nil
}

// list pages a conversation's files (newest message first) or the caller's own
// uploads (newest first).
func (s *Service) list(ctx context.Context, c endpoint.Caller, r ListReq) (ListResp, error) {
	limit := validate.Limit(r.Limit, 50, 100)
	kinds := []any{r.Kind}
	switch r.Kind {
	case "":
		kinds = []any{wire.KindImage, wire.KindVideo, wire.KindAudio, wire.KindFile}
	case kindMedia:
		kinds = []any{wire.KindImage, wire.KindVideo}
	}
	in := strings.TrimSuffix(strings.Repeat("?,", len(kinds)), ",")
	var rows *sql.Rows
	var err error
	if r.ConvID == "" {
		q := "SELECT " + fileColumns + ", '', 0, 0, NULL FROM files WHERE owner_id = ? AND status = ? AND kind IN (" + in + ")"
		args := append([]any{c.UserID, statusReady}, kinds...)
		if r.BeforeID > 0 {
			q += " AND id < ?"
			args = append(args, r.BeforeID)
		}
		rows, err = s.db.QueryContext(ctx, q+" ORDER BY id DESC LIMIT ?", append(args, limit+1)...)
	} else {
		conv, perr := convid.Parse(r.ConvID)
		if perr != nil {
			return ListResp{}, perr
		}
		if conv.Kind == convid.Direct && !conv.Has(c.UserID) {
			return ListResp{}, errNoConversation
		}
		var minSeq int64
		err := s.db.QueryRowContext(ctx, "SELECT min_seq FROM conversation_members WHERE conv_id = ? AND user_id = ?", conv.Raw, c.UserID).Scan(&minSeq)
		if errors.Is(err, sql.ErrNoRows) {
			if conv.Kind == convid.Direct {
				return ListResp{Files: []Listed{}}, nil // no message yet
			}
			return ListResp{}, errNoConversation
		}
		if err != nil {
			return ListResp{}, fmt.Errorf("membership: %w", err)
		}
		q := "SELECT " + fileColumnsF + `, m.conv_id, m.seq, m.sender_id, m.created_at FROM message_files mf
			JOIN messages m ON m.conv_id = mf.conv_id AND m.sender_id = mf.sender_id AND m.client_msg_id = mf.client_msg_id
			JOIN files f ON f.id = mf.file_id
			WHERE mf.conv_id = ? AND mf.kind IN (` + in + ") AND m.recalled_by = 0 AND m.seq > ?"
		args := append(append([]any{conv.Raw}, kinds...), minSeq)
		if r.Before > 0 {
			q += " AND m.seq < ?"
			args = append(args, r.Before)
		}
		rows, err = s.db.QueryContext(ctx, q+" ORDER BY m.seq DESC LIMIT ?", append(args, limit+1)...)
		if err != nil {
			return ListResp{}, fmt.Errorf("list files: %w", err)
		}
	}
	if err != nil {
		return ListResp{}, fmt.Errorf("list files: %w", err)
	}
	defer rows.Close()
	out := ListResp{Files: []Listed{}}
	budget := wire.NewBudget()
	for rows.Next() {
		var l Listed
		var f fileRow
		var ready, sent sql.NullTime
		if err := rows.Scan(&f.id, &f.owner, &f.size, &f.purpose, &f.name, &f.mime, &f.kind, &f.status, &f.processed, &f.sha256,
			&f.objectKey, &f.uploadID, &f.parts, &f.width, &f.height, &f.durationMS, &f.thumbKey, &f.thumbW, &f.thumbH, &f.createdAt, &ready,
			&l.ConvID, &l.Seq, &l.Sender, &sent); err != nil {
			return ListResp{}, fmt.Errorf("scan file: %w", err)
		}
		f.readyAt = ready.Time
		if sent.Valid {
			l.SentAt = sent.Time.UnixMilli()
		}
		l.File = s.toWire(f)
		if len(out.Files) == limit || !budget.Take(l.File.EncodedSize()+len(l.ConvID)+64) {
			out.HasMore = true
			break
		}
		out.Files = append(out.Files, l)
	}
	return out, rows.Err()
}

var errNoConversation = imerr.New(imerr.NotFound, "conversation not found")

// Avatar checks that id is user's own ready image uploaded with purpose
// (avatar or group_avatar) and returns the path clients load it from: its
// thumbnail through the edge's download route (GET /api/v1/files/<id>?thumb=1),
// which every user may see. The account and group domains call it (wired in
// functions/worker).
func (s *Service) Avatar(ctx context.Context, user, id int64, purpose string) (string, error) {
	f, err := s.load(ctx, id)
	if err != nil {
		return "", err
	}
	if f.owner != user || f.status != statusReady {
		return "", errNoFile
	}
	if f.purpose != purpose {
		return "", imerr.New(imerr.BadRequest, "avatar: upload the image with purpose %s", purpose)
	}
	return AvatarPath(id), nil
}

// AvatarPath is where clients load avatar id from.
func AvatarPath(id int64) string { return "/api/v1/files/" + itoa(id) + "?thumb=1" }
