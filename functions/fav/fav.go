// Package fav serves favorites: messages (saved as snapshots), files and notes a
// user keeps, with tags.
package fav

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"natter/functions/msgstore"
	"natter/shared/convid"
	"natter/shared/db"
	"natter/shared/endpoint"
	"natter/shared/ids"
	"natter/shared/imerr"
	"natter/shared/validate"
	"natter/shared/wire"
)

// Files is what favorites need of the file domain, which implements it (wired
// in functions/worker): the metadata of a file user may see, or not_found.
type Files interface {
	Visible(ctx context.Context, user, fileID int64) (wire.File, error)
}

// Deps are what the domain needs.
type Deps struct {
	DB    *sql.DB
	Files Files // nil: files cannot be saved
}

// Service implements the favorite endpoints.
type Service struct {
	db    *sql.DB
	files Files
}

// New returns the favorites service.
func New(d Deps) *Service { return &Service{db: d.DB, files: d.Files} }

// Endpoints lists the domain's endpoints.
func (s *Service) Endpoints() []endpoint.Endpoint {
	return []endpoint.Endpoint{
		endpoint.Handle("fav.add", s.add),
		endpoint.Handle("fav.list", s.list),
		endpoint.Handle("fav.remove", s.remove),
	}
}

var (
	errNoMessage = imerr.New(imerr.NotFound, "message not found")
	errNoFav     = imerr.New(imerr.NotFound, "favorite not found")
)

// add saves a message snapshot, a file or a note. Saving the same message or
// file again answers the first favorite (its tags as they are), and so does a
// note with the same key.
func (s *Service) add(ctx context.Context, c endpoint.Caller, r AddReq) (Favorite, error) {
	fv := Favorite{Tags: r.Tags}
	var key string
	var fileID int64
	var content []byte
	var conv string
	var seq, msgID, sender int64
	var msgType string
	var sentAt sql.NullTime
	switch {
	case r.Message != nil:
		// Saved before (and maybe recalled since): the favorite as it is.
		if fv, err := s.saved(ctx, c.UserID, *r.Message); err == nil || !errors.Is(err, errNoFav) {
			return fv, err
		}
		m, err := s.message(ctx, c.UserID, *r.Message)
		if err != nil {
			return Favorite{}, err
		}
		fv.Kind, fv.Message = KindMessage, &m
		key = "m:" + itoa(m.ID)
		content, conv, seq, msgID, sender, msgType = m.Content, m.ConvID, m.Seq, m.ID, m.Sender, m.Type
		sentAt = sql.NullTime{Time: time.UnixMilli(m.SentAt).UTC(), Valid: true}
		fileID = fileOf(m.Content)
	case r.FileID > 0:
		if s.files == nil {
			return Favorite{}, imerr.New(imerr.Unavailable, "files are not served here")
		}
		f, err := s.files.Visible(ctx, c.UserID, r.FileID)
		if err != nil {
			return Favorite{}, err
		}
		fv.Kind, fv.File = KindFile, &f
		key, fileID = "f:"+itoa(f.ID), f.ID
		content, _ = json.Marshal(f)
	default:
		fv.Kind, fv.Note = KindNote, r.Note
		key = "n:" + r.Key
		if r.Key == "" {
			key = "n:~" + ids.Token(16)
		}
		content, _ = json.Marshal(map[string]string{"text": r.Note})
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	fv.CreatedAt = now.UnixMilli()
	err := db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO favorites (user_id, kind, dedupe_key, conv_id, seq, msg_id, sender_id, msg_type, content, file_id, sent_at, created_at)
			VALUES (?, ?, ?, NULLIF(?, ''), ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.UserID, fv.Kind, key, conv, seq, msgID, sender, msgType, content, fileID, sentAt, now)
		if db.IsDuplicate(err) {
			return errExists
		}
		if err != nil {
			return err
		}
		if fv.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		for _, t := range fv.Tags {
			if _, err := tx.ExecContext(ctx, "INSERT INTO favorite_tags (user_id, tag, fav_id) VALUES (?, ?, ?)", c.UserID, t, fv.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errExists) {
		return s.byKey(ctx, c.UserID, key)
	}
	if err != nil {
		return Favorite{}, fmt.Errorf("add favorite: %w", err)
	}
	return fv, nil
}

var errExists = errors.New("already saved")

// message loads a message user can see now (a member of its conversation, the
// message within the history shown to them), not recalled and not a system one.
func (s *Service) message(ctx context.Context, user int64, r MsgRef) (wire.Message, error) {
	if r.ID != 0 {
		err := s.db.QueryRowContext(ctx, "SELECT conv_id, seq FROM messages WHERE id = ?", r.ID).Scan(&r.ConvID, &r.Seq)
		if errors.Is(err, sql.ErrNoRows) {
			return wire.Message{}, errNoMessage
		}
		if err != nil {
			return wire.Message{}, fmt.Errorf("find message: %w", err)
		}
	}
	conv, err := convid.Parse(r.ConvID)
	if err != nil {
		return wire.Message{}, err
	}
	if conv.Kind == convid.Direct && !conv.Has(user) {
		return wire.Message{}, errNoMessage
	}
	var minSeq int64
	err = s.db.QueryRowContext(ctx, "SELECT min_seq FROM conversation_members WHERE conv_id = ? AND user_id = ?", conv.Raw, user).Scan(&minSeq)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && r.Seq <= minSeq) {
		return wire.Message{}, errNoMessage
	}
	if err != nil {
		return wire.Message{}, fmt.Errorf("membership: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+msgstore.SelectColumns+" FROM messages WHERE conv_id = ? AND seq = ?", conv.Raw, r.Seq)
	if err != nil {
		return wire.Message{}, fmt.Errorf("load message: %w", err)
	}
	ms, err := msgstore.ScanMessages(rows, nil)
	if err != nil {
		return wire.Message{}, err
	}
	if len(ms) == 0 {
		return wire.Message{}, errNoMessage
	}
	m := ms[0]
	switch {
	case m.Recalled:
		return wire.Message{}, imerr.New(imerr.Conflict, "the message was recalled")
	case m.Type == wire.TypeSystem:
		return wire.Message{}, imerr.New(imerr.BadRequest, "system messages cannot be saved")
	}
	// The snapshot: what the message is, not how it was reacted to.
	m.Mod, m.Reactions = 0, nil
	return m, nil
}

// fileOf is the file a media message's content refers to, or 0.
func fileOf(content json.RawMessage) int64 {
	var c struct {
		FileID int64 `json:"file_id,string"`
	}
	if json.Unmarshal(content, &c) != nil {
		return 0
	}
	return c.FileID
}

// saved returns the caller's favorite of the message r names, or errNoFav.
func (s *Service) saved(ctx context.Context, user int64, r MsgRef) (Favorite, error) {
	id := r.ID
	if id == 0 {
		err := s.db.QueryRowContext(ctx, "SELECT id FROM messages WHERE conv_id = ? AND seq = ?", r.ConvID, r.Seq).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return Favorite{}, errNoFav
		}
		if err != nil {
			return Favorite{}, fmt.Errorf("find message: %w", err)
		}
	}
	return s.byKey(ctx, user, "m:"+itoa(id))
}

func (s *Service) byKey(ctx context.Context, user int64, key string) (Favorite, error) {
	out, err := s.query(ctx, "SELECT "+favColumns+" FROM favorites f WHERE f.user_id = ? AND f.dedupe_key = ?", user, key)
	if err != nil {
		return Favorite{}, err
	}
	if len(out) == 0 {
		return Favorite{}, errNoFav
	}
	return out[0], nil
}

const favColumns = "f.id, f.kind, COALESCE(f.conv_id, ''), f.seq, f.msg_id, f.sender_id, f.msg_type, f.content, f.sent_at, f.created_at"

// query runs a favorites query of favColumns and attaches the tags.
func (s *Service) query(ctx context.Context, q string, args ...any) ([]Favorite, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("favorites: %w", err)
	}
	defer rows.Close()
	out := []Favorite{}
	for rows.Next() {
		var f Favorite
		var conv, typ string
		var seq, msgID, sender int64
		var content []byte
		var sent sql.NullTime
		var created time.Time
		if err := rows.Scan(&f.ID, &f.Kind, &conv, &seq, &msgID, &sender, &typ, &content, &sent, &created); err != nil {
			return nil, fmt.Errorf("scan favorite: %w", err)
		}
		f.CreatedAt, f.Tags = created.UnixMilli(), []string{}
		switch f.Kind {
		case KindMessage:
			f.Message = &wire.Message{ConvID: conv, Seq: seq, ID: msgID, Sender: sender, Type: typ, Content: content, SentAt: sent.Time.UnixMilli()}
		case KindFile:
			var fl wire.File
			if err := json.Unmarshal(content, &fl); err != nil {
				return nil, fmt.Errorf("favorite %d: %w", f.ID, err)
			}
			f.File = &fl
		case KindNote:
			var n struct{ Text string }
			_ = json.Unmarshal(content, &n)
			f.Note = n.Text
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	if len(out) == 0 {
		return out, nil
	}
	idx := make(map[int64]int, len(out))
	args = args[:0]
	for i, f := range out {
		idx[f.ID] = i
		args = append(args, f.ID)
	}
	trows, err := s.db.QueryContext(ctx, "SELECT fav_id, tag FROM favorite_tags WHERE fav_id IN ("+
		strings.TrimSuffix(strings.Repeat("?,", len(args)), ",")+") ORDER BY fav_id, tag", args...)
	if err != nil {
		return nil, fmt.Errorf("favorite tags: %w", err)
	}
	defer trows.Close()
	for trows.Next() {
		var id int64
		var tag string
		if err := trows.Scan(&id, &tag); err != nil {
			return nil, err
		}
		out[idx[id]].Tags = append(out[idx[id]].Tags, tag)
	}
	return out, trows.Err()
}

// list pages the caller's favorites, newest first.
func (s *Service) list(ctx context.Context, c endpoint.Caller, r ListReq) (ListResp, error) {
	limit := validate.Limit(r.Limit, defLimit, maxLimit)
	q := "SELECT " + favColumns + " FROM favorites f"
	args := []any{}
	if r.Tag != "" {
		q += " JOIN favorite_tags t ON t.fav_id = f.id AND t.user_id = f.user_id AND t.tag = ?"
		args = append(args, r.Tag)
	}
	q += " WHERE f.user_id = ?"
	args = append(args, c.UserID)
	if r.Kind != "" {
		q += " AND f.kind = ?"
		args = append(args, r.Kind)
	}
	if r.Before > 0 {
		q += " AND f.id < ?"
		args = append(args, r.Before)
	}
	q += " ORDER BY f.id DESC LIMIT ?"
	favs, err := s.query(ctx, q, append(args, limit+1)...)
	if err != nil {
		return ListResp{}, err
	}
	out := ListResp{Favorites: favs}
	if len(favs) > limit {
		out.Favorites, out.HasMore = favs[:limit], true
	}
	budget := wire.NewBudget()
	for i := range out.Favorites {
		if !budget.Take(out.Favorites[i].size()) {
			out.Favorites, out.HasMore = out.Favorites[:i], true
			break
		}
	}
	return out, nil
}

// remove deletes one of the caller's favorites; removing it again removes nothing.
func (s *Service) remove(ctx context.Context, c endpoint.Caller, r RemoveReq) (RemoveResp, error) {
	var out RemoveResp
	err := db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM favorites WHERE id = ? AND user_id = ?", r.ID, c.UserID)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		out.Removed = n > 0
		_, err = tx.ExecContext(ctx, "DELETE FROM favorite_tags WHERE fav_id = ? AND user_id = ?", r.ID, c.UserID)
		return err
	})
	if err != nil {
		return RemoveResp{}, fmt.Errorf("remove favorite: %w", err)
	}
	return out, nil
}

func itoa(n int64) string { return fmt.Sprint(n) }
